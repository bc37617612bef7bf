//! The wire format of SPEC §2: the C structs, the fixed constants, and a codec that reads
//! and writes message bytes without any I/O (so fuzzers and Miri can run it).
//!
//! On a queue a message is a SysV `mtype` (a C `long`) followed by `mtext`: the two names,
//! the header, and `msg_size` payload bytes. The `mtext` layout does not depend on the
//! target (every field is 4-byte sized and aligned); only `long` does.
//!
//! ## Extensions (SPEC §2: "may add control types from the reserved range")
//! A mipc-rs library and relay that have greeted each other (`MIPC_MSG_TYPE_HELLO`) may
//! append a 4-byte *call tag* after the payload: `mtext` is then `msg_size + 4` bytes longer
//! than the header. The tag is a native-endian `u32`: bit 31 set for an answer, clear for a
//! request; bits 0-30 the caller's call id (never 0). The relay never sends a tag to an entry
//! that did not greet it, so a legacy peer only ever sees the exact SPEC §2 bytes. The tag is
//! what lets a caller tell its own answer from a late one (docs/PROTOCOL.md).
#![allow(non_camel_case_types, non_snake_case)]

/// Batches of parked requests, relay to library; no C program sees one.
///
/// cbindgen:ignore
pub mod answered;
pub mod batch;
pub mod control;
pub mod events;
mod msgbuf;
pub mod samples;
/// The tools' control channel (`mipc list/stats/monitor/wait`); not part of the C API.
///
/// cbindgen:ignore
pub mod tool;

pub use msgbuf::{Build, MsgBuf};

pub use crate::name::MIPC_NAME_MAX_LEN;
use crate::name::{MipcName, NameError};
use std::fmt;
use std::mem::{offset_of, size_of};
use std::num::NonZeroU32;
use std::os::raw::{c_char, c_int, c_long, c_uchar, c_uint};

pub use control::{Control, Envelope, Kind};

/// Largest payload of one message, in bytes.
pub const MIPC_MSG_MAX_LEN: usize = 2048;
/// Default SysV key of the relay's root queue ("MIPC"); `MIPC_ROOT_KEY` overrides it.
pub const MIPC_MSG_ROOT_KEY: c_int = 0x4D49_5043;
/// Success.
pub const MIPC_OK: c_int = 0;
/// Failure; `mipc_last_error()` tells why.
pub const MIPC_ERROR: c_int = -1;
/// Boolean true of the legacy API.
pub const MIPC_TRUE: c_int = 1;
/// Boolean false of the legacy API.
pub const MIPC_FALSE: c_int = 0;
/// Timeout meaning "wait forever".
pub const MIPC_MSG_SYNC_WAIT_FOREVER: c_int = -1;
/// Legacy size of the per-process table; kept for source compatibility, the table grows.
pub const MIPC_USER_INFO_NUM: c_int = 10;

/// Register / unregister notice; payload is one `MIPC_THREAD_INFO_T`.
pub const MIPC_MSG_TYPE_NOTICE: c_uint = 0x7FFF_FF00;
/// Ping; answered with an `int` 0.
pub const MIPC_MSG_TYPE_PING: c_uint = 0x7FFF_FF01;
/// mipc-rs extension: a library greets the relay, the relay answers (docs/PROTOCOL.md).
pub const MIPC_MSG_TYPE_HELLO: c_uint = 0x7FFF_FF02;
/// mipc-rs extension: the relay's error answer to a tagged sync call.
pub const MIPC_MSG_TYPE_ERROR: c_uint = 0x7FFF_FF03;
/// mipc-rs extension: a library's own wake-up (timeout, or a watched peer died), put on its
/// own queue.
pub const MIPC_MSG_TYPE_WAKE: c_uint = 0x7FFF_FF04;
/// mipc-rs extension: a library asks the relay for an entry's queue (the direct path).
pub const MIPC_MSG_TYPE_LOOKUP: c_uint = 0x7FFF_FF05;
/// First type of the reserved control range.
pub const MIPC_MSG_TYPE_RESERVED_MIN: c_uint = 0x7FFF_FF00;
/// Last type of the reserved control range.
pub const MIPC_MSG_TYPE_RESERVED_MAX: c_uint = 0x7FFF_FFFF;
/// Largest application api id.
pub const MIPC_API_ID_MAX: c_uint = 0x7FFF_FEFF;

// Event control types (docs/PROTOCOL.md §9; `events.rs` has their payloads and re-exports
// these).
/// mipc-rs extension: an entry subscribes to an event name or prefix pattern.
pub const MIPC_MSG_TYPE_SUBSCRIBE: c_uint = 0x7FFF_FF10;
/// mipc-rs extension: an entry drops one of its subscriptions.
pub const MIPC_MSG_TYPE_UNSUBSCRIBE: c_uint = 0x7FFF_FF11;
/// mipc-rs extension: a publisher hands the relay one event to fan out.
pub const MIPC_MSG_TYPE_PUBLISH: c_uint = 0x7FFF_FF12;
/// mipc-rs extension: an event as a subscriber receives it (`src_name` the publisher,
/// `dst_name` the event name, payload the data).
pub const MIPC_MSG_TYPE_EVENT: c_uint = 0x7FFF_FF13;
/// mipc-rs extension: a sender hands the relay one message for every registered entry.
pub const MIPC_MSG_TYPE_BROADCAST: c_uint = 0x7FFF_FF14;
/// mipc-rs extension: several one-way requests the relay parked for one receiver, in one
/// SysV message (`batch.rs`); the library takes it apart, a program never sees one.
pub const MIPC_MSG_TYPE_BATCH: c_uint = 0x7FFF_FF15;
/// mipc-rs extension: a library's message to its own serving loop (`mipc_serve`,
/// `Endpoint::run`) to end it; like WAKE it never passes through the relay.
pub const MIPC_MSG_TYPE_STOP: c_uint = 0x7FFF_FF1F;

/// Message header (SPEC §2).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MIPC_MSG_HDR_T {
    /// Api id, or a reserved control type.
    pub msg_type: c_uint,
    /// Bytes used in `payload[]`.
    pub msg_size: c_uint,
    /// 0: no answer wanted; >0: caller waits this many ms; -1: caller waits forever.
    pub sync_flag: c_int,
}

/// Names, header and payload of a message (SPEC §2).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sysV_msg_payload {
    /// Sender's entry name, NUL-terminated.
    pub src_name: [c_char; MIPC_NAME_MAX_LEN],
    /// Destination entry name, NUL-terminated.
    pub dst_name: [c_char; MIPC_NAME_MAX_LEN],
    /// Header.
    pub msg_hdr: MIPC_MSG_HDR_T,
    /// Payload; only `msg_hdr.msg_size` bytes are sent.
    pub payload: [c_uchar; MIPC_MSG_MAX_LEN],
}

/// A whole SysV message as legacy programs declare it (SPEC §2).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sysV_msg {
    /// SysV `mtype`: the api id (> 0).
    pub r#type: c_long,
    /// The message.
    pub msg_payload: sysV_msg_payload,
}

/// Registration record carried by `MIPC_MSG_TYPE_NOTICE` (SPEC §2).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MIPC_THREAD_INFO_T {
    /// 1: register this entry; 0: unregister it.
    pub flag_is_hold: c_int,
    /// Thread of the entry.
    pub thread_id: libc::pthread_t,
    /// Entry name, NUL-terminated.
    pub name: [c_char; MIPC_NAME_MAX_LEN],
    /// The entry's own SysV queue id.
    pub mqd: c_int,
}

// Layout checks (SPEC §2: natural C layout; `long` and `pthread_t` follow the pointer width).
const _: () = {
    assert!(size_of::<MIPC_MSG_HDR_T>() == 12);
    assert!(offset_of!(sysV_msg_payload, dst_name) == 32);
    assert!(offset_of!(sysV_msg_payload, msg_hdr) == 64);
    assert!(offset_of!(sysV_msg_payload, payload) == 76);
    assert!(size_of::<sysV_msg_payload>() == 2124);
    assert!(offset_of!(sysV_msg, msg_payload) == size_of::<c_long>());
};
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<sysV_msg>() == 2136);
    assert!(offset_of!(MIPC_THREAD_INFO_T, thread_id) == 8);
    assert!(offset_of!(MIPC_THREAD_INFO_T, name) == 16);
    assert!(offset_of!(MIPC_THREAD_INFO_T, mqd) == 48);
    assert!(size_of::<MIPC_THREAD_INFO_T>() == 56);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<sysV_msg>() == 2128);
    assert!(offset_of!(MIPC_THREAD_INFO_T, thread_id) == 4);
    assert!(offset_of!(MIPC_THREAD_INFO_T, name) == 8);
    assert!(offset_of!(MIPC_THREAD_INFO_T, mqd) == 40);
    assert!(size_of::<MIPC_THREAD_INFO_T>() == 44);
};

/// `sizeof(sysV_msg_t)`, the legacy receive buffer size (`MIPC_DEFAULT_MAX_MSG_SIZE`).
pub const DEFAULT_MAX_MSG_SIZE: usize = size_of::<sysV_msg>();
/// Bytes of `mtext` before the payload: two names and the header.
pub const MTEXT_HEADER_LEN: usize = offset_of!(sysV_msg_payload, payload);
/// Size of the optional call tag after the payload.
pub const TAG_LEN: usize = 4;
/// Largest `mtext` a legacy peer sends.
pub const MTEXT_MAX: usize = MTEXT_HEADER_LEN + MIPC_MSG_MAX_LEN;
/// Size of the sender trailer the relay appends for a receiver that asked for it
/// (docs/PROTOCOL.md §9): the sender's `u32` pid, then [`SENDER_MARK`].
pub const SENDER_LEN: usize = 8;
/// The last word of a sender trailer: never a valid call tag (a reply of call id 0) nor a
/// reply queue (negative), so a trailer is told apart from both.
pub const SENDER_MARK: u32 = 0x8000_0000;
/// Size of what the relay puts between the tag and the sender trailer of a request it lets
/// the server answer straight back (docs/PROTOCOL.md §11): the caller's queue, the caller's
/// place in the relay's table, and the count of the server's messages the relay had read.
pub const OFFER_LEN: usize = 12;
/// Largest `mtext` on any mipc-rs queue: a full-size request with its tag, an offer to answer
/// straight back and a sender trailer (a direct request, with tag and reply queue, is shorter).
pub const MTEXT_MAX_TAGGED: usize = MTEXT_MAX + TAG_LEN + OFFER_LEN + SENDER_LEN;
/// Size of `mtype` on this target.
pub const MTYPE_LEN: usize = size_of::<c_long>();
/// Room of a [`MsgBuf`]: more than the largest valid message, so that a receive with
/// `MSG_NOERROR` of anything longer is seen as too long rather than cut to a valid size.
const BUF_LEN: usize = MTYPE_LEN + MTEXT_MAX_TAGGED + 8;
/// Bit of a call tag that marks an answer.
pub const TAG_REPLY: u32 = 0x8000_0000;

const OFF_SRC: usize = 0;
const OFF_DST: usize = MIPC_NAME_MAX_LEN;
const OFF_TYPE: usize = 2 * MIPC_NAME_MAX_LEN;
const OFF_SIZE: usize = OFF_TYPE + 4;
const OFF_SYNC: usize = OFF_SIZE + 4;

/// Why bytes received from a queue are not a valid message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the names and header need.
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// `msg_size` is over `MIPC_MSG_MAX_LEN`.
    PayloadTooLarge {
        /// The claimed size.
        msg_size: u32,
    },
    /// The received size is neither `header + msg_size` nor that plus a call tag.
    SizeMismatch {
        /// Bytes received.
        len: usize,
        /// The claimed payload size.
        msg_size: u32,
    },
    /// The source name is empty, unterminated or otherwise invalid.
    BadSource(NameError),
    /// The destination name is empty, unterminated or otherwise invalid.
    BadDestination(NameError),
    /// A batch whose payload does not split into messages (`batch.rs`).
    BadBatch,
    /// A call tag with call id 0, or a reply queue after an answer's tag or negative.
    BadTag,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { len } => {
                write!(f, "message of {len} bytes is shorter than its header")
            }
            WireError::PayloadTooLarge { msg_size } => {
                write!(f, "msg_size {msg_size} is over MIPC_MSG_MAX_LEN (2048)")
            }
            WireError::SizeMismatch { len, msg_size } => write!(
                f,
                "received {len} bytes but msg_size {msg_size} says {}",
                MTEXT_HEADER_LEN + *msg_size as usize
            ),
            WireError::BadSource(e) => write!(f, "bad src_name: {e}"),
            WireError::BadDestination(e) => write!(f, "bad dst_name: {e}"),
            WireError::BadTag => {
                f.write_str("bad call tag (call id 0, or a misplaced reply queue)")
            }
            WireError::BadBatch => f.write_str("batch payload does not split into messages"),
        }
    }
}

impl std::error::Error for WireError {}

/// What a valid message says, read from its `mtext` (everything but the payload bytes): its
/// names, copied out, and its [`Frame`], whose fields it derefs to (`hdr.msg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Sender.
    pub src: MipcName,
    /// Destination.
    pub dst: MipcName,
    /// Everything but the names.
    pub frame: Frame,
}

impl std::ops::Deref for Header {
    type Target = Frame;
    fn deref(&self) -> &Frame {
        &self.frame
    }
}

/// What a valid message says apart from its names, which stay in the `mtext` (checked, not
/// copied out): what the library's waits need of each message they receive. [`decode_frame`]
/// makes one; [`src_name`] reads the sender when it is needed after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// `msg_hdr.msg_type`.
    pub msg_type: u32,
    /// `msg_hdr.msg_size`, checked against the received length.
    pub msg_size: u32,
    /// `msg_hdr.sync_flag`.
    pub sync_flag: i32,
    /// The call tag, when the message carries one.
    pub tag: Option<CallTag>,
    /// The caller's own queue, when a direct request carries it after its tag.
    pub reply_queue: Option<i32>,
    /// The sender's process, when the relay appended a sender trailer (0 there: unknown).
    pub sender_pid: Option<u32>,
    /// The relay's leave to answer this request straight to `reply_queue` (§11).
    pub offer: Option<Offer>,
}

/// What the relay adds to a sync request it lets the server answer straight to the caller's
/// queue (docs/PROTOCOL.md §11), besides that queue (the frame's `reply_queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// The caller's place in the relay's table, which the server's acknowledgement names.
    pub slot: u32,
    /// How many messages from the server's entry the relay had read when it forwarded the
    /// request: the answer may go straight back only if that is every one the entry sent.
    pub stamp: u32,
    /// The caller's process, from the sender trailer that follows the offer.
    pub caller_pid: u32,
}

impl Frame {
    /// Length of the `mtext` this frame describes, with or without its tag.
    pub fn mtext_len(&self, with_tag: bool) -> usize {
        MTEXT_HEADER_LEN + self.msg_size as usize + if with_tag { TAG_LEN } else { 0 }
    }

    /// The payload bytes of the `mtext` this frame was decoded from.
    pub fn payload<'a>(&self, mtext: &'a [u8]) -> &'a [u8] {
        &mtext[MTEXT_HEADER_LEN..MTEXT_HEADER_LEN + self.msg_size as usize]
    }

    /// Whether the message is a request (as opposed to an answer): a request tag, or no tag
    /// and a sync flag.
    pub fn is_request(&self) -> bool {
        match self.tag {
            Some(t) => !t.is_reply(),
            None => self.sync_flag != 0,
        }
    }
}

/// A call tag: which call a request or answer belongs to. Never 0, so an `Option<CallTag>`
/// is one word (headers are copied on every receive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallTag(NonZeroU32);

impl CallTag {
    /// The tag a caller puts on its request `id` (1 to 2^31 - 1).
    pub fn request(id: u32) -> Option<CallTag> {
        NonZeroU32::new(id)
            .filter(|_| id & TAG_REPLY == 0)
            .map(CallTag)
    }
    /// The tag of the answer to this request.
    pub fn reply(self) -> CallTag {
        CallTag(self.0 | TAG_REPLY)
    }
    /// The call id.
    pub fn id(self) -> u32 {
        self.0.get() & !TAG_REPLY
    }
    /// Whether this tags an answer.
    pub fn is_reply(self) -> bool {
        self.0.get() & TAG_REPLY != 0
    }
    /// The raw value on the wire.
    pub fn raw(self) -> u32 {
        self.0.get()
    }
    fn from_raw(raw: u32) -> Option<CallTag> {
        NonZeroU32::new(raw)
            .filter(|_| raw & !TAG_REPLY != 0)
            .map(CallTag)
    }
}

fn read_u32(mtext: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&mtext[off..off + 4]);
    u32::from_ne_bytes(b)
}

fn field(mtext: &[u8], off: usize) -> &[u8; MIPC_NAME_MAX_LEN] {
    mtext[off..off + MIPC_NAME_MAX_LEN]
        .try_into()
        .expect("field slice has the field's length")
}

/// Checks received `mtext` bytes (SPEC §2 receiver rules) and reads their header.
///
/// # Errors
/// [`WireError`] for a short message, a `msg_size` over the limit or in disagreement with
/// the length, unterminated or empty names, or a zero call tag.
pub fn decode(mtext: &[u8]) -> Result<Header, WireError> {
    let f = layout(mtext)?;
    let src = MipcName::from_field(field(mtext, OFF_SRC)).map_err(WireError::BadSource)?;
    let dst = MipcName::from_field(field(mtext, OFF_DST)).map_err(WireError::BadDestination)?;
    Ok(Header { src, dst, frame: f })
}

/// Checks received `mtext` bytes as [`decode`] does, without copying the names out.
///
/// # Errors
/// As [`decode`].
#[inline(always)]
pub fn decode_frame(mtext: &[u8]) -> Result<Frame, WireError> {
    let f = layout(mtext)?;
    MipcName::check_field(field(mtext, OFF_SRC)).map_err(WireError::BadSource)?;
    MipcName::check_field(field(mtext, OFF_DST)).map_err(WireError::BadDestination)?;
    Ok(f)
}

/// The sender of a message whose `mtext` passed [`decode_frame`].
pub fn src_name(mtext: &[u8]) -> Option<MipcName> {
    let f = mtext.get(OFF_SRC..OFF_SRC + MIPC_NAME_MAX_LEN)?;
    MipcName::from_field(f.try_into().ok()?).ok()
}

/// Whether a message whose `mtext` passed [`decode_frame`] comes from the relay: its
/// `src_name` is the relay's name and its NUL (what follows the NUL does not count).
pub fn from_relay(mtext: &[u8]) -> bool {
    let relay = MipcName::RELAY;
    let n = relay.as_bytes().len();
    mtext
        .get(OFF_SRC..=OFF_SRC + n)
        .is_some_and(|f| f == &relay.field()[..=n])
}

/// The checks of [`decode`] but the names', and the fields but the names.
///
/// What follows the payload is read from its own slice, matched by length, so that no read
/// of it needs a bounds check of its own (the receive paths run this for every message).
#[inline(always)]
fn layout(mtext: &[u8]) -> Result<Frame, WireError> {
    let len = mtext.len();
    let Some(head) = mtext.first_chunk::<MTEXT_HEADER_LEN>() else {
        return Err(WireError::Truncated { len });
    };
    let word =
        |off: usize| u32::from_ne_bytes([head[off], head[off + 1], head[off + 2], head[off + 3]]);
    let msg_size = word(OFF_SIZE);
    if msg_size as usize > MIPC_MSG_MAX_LEN {
        return Err(WireError::PayloadTooLarge { msg_size });
    }
    let body = MTEXT_HEADER_LEN + msg_size as usize;
    let Some(mut tail) = mtext.get(body..) else {
        return Err(WireError::SizeMismatch { len, msg_size });
    };
    // A sender trailer ends with a word no tag or reply queue can be.
    let mut sender_pid = None;
    let mut offer = None;
    if let Some((rest, trailer)) = tail.split_last_chunk::<SENDER_LEN>() {
        let [p0, p1, p2, p3, m0, m1, m2, m3] = *trailer;
        if u32::from_ne_bytes([m0, m1, m2, m3]) == SENDER_MARK {
            sender_pid = Some(u32::from_ne_bytes([p0, p1, p2, p3]));
            tail = rest;
            // Between the tag and the trailer, only the relay's offer (§11): a reply queue
            // alone before a trailer is never sent.
            match *rest {
                [] | [_, _, _, _] => {}
                [_, _, _, _, _, _, _, _, s0, s1, s2, s3, n0, n1, n2, n3] => {
                    offer = Some(Offer {
                        slot: u32::from_ne_bytes([s0, s1, s2, s3]),
                        stamp: u32::from_ne_bytes([n0, n1, n2, n3]),
                        caller_pid: u32::from_ne_bytes([p0, p1, p2, p3]),
                    });
                    tail = &rest[..TAG_LEN + 4];
                }
                _ => return Err(WireError::BadTag),
            }
        }
    }
    let (tag, reply_queue) = match *tail {
        [] => (None, None),
        [t0, t1, t2, t3] => {
            let tag = CallTag::from_raw(u32::from_ne_bytes([t0, t1, t2, t3]));
            (Some(tag.ok_or(WireError::BadTag)?), None)
        }
        [t0, t1, t2, t3, q0, q1, q2, q3] => {
            let tag = CallTag::from_raw(u32::from_ne_bytes([t0, t1, t2, t3]));
            let tag = tag.ok_or(WireError::BadTag)?;
            let q = i32::from_ne_bytes([q0, q1, q2, q3]);
            if tag.is_reply() || q < 0 {
                return Err(WireError::BadTag);
            }
            (Some(tag), Some(q))
        }
        _ => {
            return Err(WireError::SizeMismatch {
                len: body + tail.len(),
                msg_size,
            })
        }
    };
    Ok(Frame {
        msg_type: word(OFF_TYPE),
        msg_size,
        sync_flag: word(OFF_SYNC) as i32,
        tag,
        reply_queue,
        sender_pid,
        offer,
    })
}

/// The payload bytes of a message whose `mtext` passed [`decode`].
pub fn payload<'a>(mtext: &'a [u8], hdr: &Header) -> &'a [u8] {
    &mtext[MTEXT_HEADER_LEN..MTEXT_HEADER_LEN + hdr.msg_size as usize]
}

/// Bytes of `MIPC_THREAD_INFO_T.thread_id` on this target (a C `pthread_t`).
pub const THREAD_ID_LEN: usize = size_of::<libc::pthread_t>();

/// The bytes of a `MIPC_THREAD_INFO_T`, as a NOTICE carries them. `tid` is written in the
/// width of this target's `pthread_t` (see `crate::os::ThreadId`).
pub fn thread_info_bytes(hold: bool, tid: u64, name: &MipcName, mqd: i32) -> Vec<u8> {
    let mut out = vec![0u8; size_of::<MIPC_THREAD_INFO_T>()];
    let put = |out: &mut [u8], off: usize, b: &[u8]| out[off..off + b.len()].copy_from_slice(b);
    let hold = if hold { MIPC_TRUE } else { MIPC_FALSE };
    put(
        &mut out,
        offset_of!(MIPC_THREAD_INFO_T, flag_is_hold),
        &hold.to_ne_bytes(),
    );
    let tid_bytes = tid.to_ne_bytes();
    let tid_bytes: &[u8] = if THREAD_ID_LEN == 8 {
        &tid_bytes
    } else {
        &(tid as u32).to_ne_bytes()
    };
    put(
        &mut out,
        offset_of!(MIPC_THREAD_INFO_T, thread_id),
        tid_bytes,
    );
    put(&mut out, offset_of!(MIPC_THREAD_INFO_T, name), name.field());
    put(
        &mut out,
        offset_of!(MIPC_THREAD_INFO_T, mqd),
        &mqd.to_ne_bytes(),
    );
    out
}

/// A `MIPC_THREAD_INFO_T` read back from a NOTICE payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Register (true) or unregister (false).
    pub hold: bool,
    /// Thread id as the sender wrote it.
    pub thread_id: u64,
    /// Entry name.
    pub name: MipcName,
    /// The entry's queue id.
    pub mqd: i32,
}

/// `sizeof(MIPC_THREAD_INFO_T)` where `pthread_t` (and the padding after `flag_is_hold`) is
/// 4 bytes: 32-bit userlands such as armv7.
const THREAD_INFO_LEN_32: usize = 44;
/// `sizeof(MIPC_THREAD_INFO_T)` where `pthread_t` is 8 bytes: 64-bit userlands.
const THREAD_INFO_LEN_64: usize = 56;

/// Reads a NOTICE payload written by a 32-bit or a 64-bit process, whatever this process's
/// own word size: one kernel may run both (a 32-bit vendor daemon beside a 64-bit relay),
/// and the two layouts differ only in the width of `thread_id` (SPEC §2 natural layout:
/// `flag_is_hold` at 0, `thread_id` at the word size, `name` after it, `mqd` after `name`).
/// The length of the payload tells which one it is.
///
/// # Errors
/// [`WireError::SizeMismatch`] when the payload is neither layout;
/// [`WireError::BadSource`] when its name is invalid.
pub fn decode_thread_info(payload: &[u8]) -> Result<ThreadInfo, WireError> {
    let word = match payload.len() {
        THREAD_INFO_LEN_32 => 4,
        THREAD_INFO_LEN_64 => 8,
        len => {
            return Err(WireError::SizeMismatch {
                len,
                msg_size: len as u32,
            })
        }
    };
    let thread_id = if word == 8 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&payload[8..16]);
        u64::from_ne_bytes(b)
    } else {
        u64::from(read_u32(payload, 4))
    };
    let name_off = 2 * word;
    let name = MipcName::from_field(field(payload, name_off)).map_err(WireError::BadSource)?;
    Ok(ThreadInfo {
        hold: read_u32(payload, 0) != 0,
        thread_id,
        name,
        mqd: read_u32(payload, name_off + MIPC_NAME_MAX_LEN) as i32,
    })
}

/// Whether `msg_type` lies in the reserved control range.
pub fn is_control(msg_type: u32) -> bool {
    msg_type >= MIPC_MSG_TYPE_RESERVED_MIN
}

#[cfg(test)]
mod tests;
