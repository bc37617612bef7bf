//! The control messages: every message of the reserved type range (docs/PROTOCOL.md), with
//! one typed definition each and its payload codec. The library, the relay and the fuzzers
//! build and read these bytes only through this module.
//!
//! A control message is an ordinary SPEC §2 message ([`MsgBuf::build`]) whose `msg_type` is a
//! [`Kind`] and whose payload is one of the types below, each a [`Control`]:
//!
//! | kind | request | answer |
//! |---|---|---|
//! | NOTICE | [`ThreadInfo`] (SPEC §2) | none |
//! | PING | empty | [`Pong`] |
//! | HELLO | [`Hello`] | [`HelloAnswer`] |
//! | ERROR | none | [`ErrorAnswer`] |
//! | WAKE | [`Wake`] (a library to itself) | none |
//! | LOOKUP | [`Lookup`] | [`LookupAnswer`] |
//!
//! ## Adding a control type
//! 1. Add a row to the `kinds!` table below: its name and its reserved `msg_type` (the next
//!    free value of `0x7FFFFF06..=0x7FFFFFFF`), and a `MIPC_MSG_TYPE_*` constant in
//!    `wire/mod.rs` if C programs may see it.
//! 2. Define its request and answer payloads as structs, and `impl Control` for each:
//!    [`Control::KIND`], [`Control::LEN`], `put` (write exactly `LEN` bytes) and `get` (read
//!    them back; `None` for a payload that is not one).
//! 3. Add a value of each to `samples` (`wire/samples.rs`), so that the wire fuzzer and the
//!    tests round-trip it, and describe the bytes in docs/PROTOCOL.md.

use super::{Build, Header, MsgBuf, ThreadInfo};
use crate::name::MipcName;
use std::fmt::Debug;
use std::os::raw::c_long;

/// Version of the HELLO exchange this library and relay speak (docs/PROTOCOL.md §2).
pub const HELLO_VERSION: u32 = 1;
/// HELLO flag: append a sender trailer (the sender's pid) to what is forwarded to this entry
/// (docs/PROTOCOL.md §9). A relay that does not know the flag ignores it.
pub const HELLO_FLAG_SENDER: u32 = 1;
/// HELLO flag: this library takes batches apart (`batch.rs`, docs/PROTOCOL.md §10); the
/// relay may send this entry several parked one-way requests in one message.
pub const HELLO_FLAG_BATCH: u32 = 2;
/// HELLO flag: this library answers a request straight to its caller's queue when the relay
/// offers it, and acknowledges those answers (docs/PROTOCOL.md §11).
pub const HELLO_FLAG_ANSWER_BACK: u32 = 4;

macro_rules! kinds {
    ($( $(#[$doc:meta])* $kind:ident = $value:path, )*) => {
        /// The control types, each with its reserved `msg_type` (one table: the macro call).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $( $(#[$doc])* $kind, )*
        }

        impl Kind {
            /// Every control type.
            pub const ALL: &'static [Kind] = &[$(Kind::$kind),*];

            /// Its reserved `msg_type`.
            pub const fn msg_type(self) -> u32 {
                match self {
                    $( Kind::$kind => $value, )*
                }
            }

            /// The control type of `msg_type`, if it is one this crate knows.
            pub fn from_msg_type(msg_type: u32) -> Option<Kind> {
                match msg_type {
                    $( $value => Some(Kind::$kind), )*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    /// Register / unregister an entry (SPEC §2).
    Notice = super::MIPC_MSG_TYPE_NOTICE,
    /// Ping (SPEC §2); also an api id that applications may call.
    Ping = super::MIPC_MSG_TYPE_PING,
    /// A library greets the relay (docs/PROTOCOL.md §2).
    Hello = super::MIPC_MSG_TYPE_HELLO,
    /// The relay's error answer to a tagged sync call (§4).
    Error = super::MIPC_MSG_TYPE_ERROR,
    /// A library's own wake-up, never on the relay (§5).
    Wake = super::MIPC_MSG_TYPE_WAKE,
    /// The direct path's question to the relay (§6).
    Lookup = super::MIPC_MSG_TYPE_LOOKUP,
    /// An entry subscribes to events (§9).
    Subscribe = super::MIPC_MSG_TYPE_SUBSCRIBE,
    /// An entry drops a subscription (§9).
    Unsubscribe = super::MIPC_MSG_TYPE_UNSUBSCRIBE,
    /// A publisher hands the relay an event; the payload is application data (§9).
    Publish = super::MIPC_MSG_TYPE_PUBLISH,
    /// An event as a subscriber gets it; the payload is application data (§9).
    Event = super::MIPC_MSG_TYPE_EVENT,
    /// A sender hands the relay a broadcast: `u32 api id`, then application data (§9).
    Broadcast = super::MIPC_MSG_TYPE_BROADCAST,
    /// Several one-way requests for one receiver in one message, relay to library (§10).
    Batch = super::MIPC_MSG_TYPE_BATCH,
    /// A library's message to its own serving loop to end it, never on the relay (§9).
    Stop = super::MIPC_MSG_TYPE_STOP,
    /// A page of the name table for a tool (§7, `tool.rs`).
    List = super::tool::MIPC_MSG_TYPE_LIST,
    /// The relay's counters for a tool (§7).
    Stats = super::tool::MIPC_MSG_TYPE_STATS,
    /// A tool attaches a monitor (§8).
    MonitorAttach = super::tool::MIPC_MSG_TYPE_MONITOR_ATTACH,
    /// A tool detaches its monitor (§8).
    MonitorDetach = super::tool::MIPC_MSG_TYPE_MONITOR_DETACH,
    /// One monitor event, relay to monitor only (§8).
    MonitorEvent = super::tool::MIPC_MSG_TYPE_MONITOR_EVENT,
    /// A tool waits for a name (§7).
    WaitFor = super::tool::MIPC_MSG_TYPE_WAIT_FOR,
    /// The relay tells a direct caller to drop its routes (a monitor attached, §8).
    DropRoutes = super::tool::MIPC_MSG_TYPE_DROP_ROUTES,
    /// The relay's death watcher to the relay's own receive loop, through the root queue, so
    /// a death is handled after everything the process sent before it died (§4).
    Died = MIPC_MSG_TYPE_DIED,
    /// A library tells the relay which calls it answered straight back (§11, `answered.rs`).
    Answered = MIPC_MSG_TYPE_ANSWERED,
}

/// [`Kind::Died`]'s `msg_type` (relay-internal: no C program sees it).
const MIPC_MSG_TYPE_DIED: u32 = 0x7FFF_FF20;
/// [`Kind::Answered`]'s `msg_type` (between a library and the relay: no C program sees it).
const MIPC_MSG_TYPE_ANSWERED: u32 = 0x7FFF_FF21;

impl Kind {
    /// Its `msg_type` as a SysV `mtype` (the type HELLO and LOOKUP travel and wait on).
    pub const fn mtype(self) -> c_long {
        self.msg_type() as c_long
    }
}

/// The payload of a control message.
pub trait Control: Sized + Copy + PartialEq + Debug {
    /// The control type that carries it.
    const KIND: Kind;
    /// Its size in bytes.
    const LEN: usize;
    /// Writes the payload into `out`, exactly [`Control::LEN`] bytes.
    fn put(&self, out: &mut [u8]);
    /// Reads a payload; `None` when `p` is not one.
    fn get(p: &[u8]) -> Option<Self>;

    /// The payload bytes.
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![0; Self::LEN];
        self.put(&mut out);
        out
    }

    /// Reads this payload from a message whose `mtext` decoded to `hdr`, if it is of this
    /// control type.
    fn decode(buf: &MsgBuf, hdr: &Header) -> Option<Self> {
        if hdr.msg_type != Self::KIND.msg_type() {
            return None;
        }
        Self::get(super::payload(buf.mtext(), hdr))
    }
}

/// Largest control payload (a [`ThreadInfo`]), for building without allocating.
const PAYLOAD_MAX: usize = 64;

/// Where a control message goes and how it is marked: everything but the payload.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// SysV `mtype`.
    pub mtype: c_long,
    /// Sender.
    pub src: &'a MipcName,
    /// Destination.
    pub dst: &'a MipcName,
    /// `msg_hdr.sync_flag`.
    pub sync_flag: i32,
    /// Call tag, if any.
    pub tag: Option<super::CallTag>,
}

impl MsgBuf {
    /// Writes the control message `msg` with `env`'s fields.
    pub fn build_control<C: Control>(&mut self, env: Envelope<'_>, msg: &C) {
        let mut p = [0u8; PAYLOAD_MAX];
        let len = C::LEN.min(PAYLOAD_MAX);
        msg.put(&mut p[..len]);
        self.build(Build {
            mtype: env.mtype,
            src: env.src,
            dst: env.dst,
            msg_type: C::KIND.msg_type(),
            sync_flag: env.sync_flag,
            payload: &p[..len],
            tag: env.tag,
        });
    }
}

fn u32_at(p: &[u8], i: usize) -> Option<u32> {
    p.get(i..i + 4)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn i32_at(p: &[u8], i: usize) -> Option<i32> {
    u32_at(p, i).map(|v| v as i32)
}

fn put_at(out: &mut [u8], i: usize, b: &[u8]) {
    out[i..i + b.len()].copy_from_slice(b);
}

impl Control for ThreadInfo {
    const KIND: Kind = Kind::Notice;
    const LEN: usize = std::mem::size_of::<super::MIPC_THREAD_INFO_T>();
    fn put(&self, out: &mut [u8]) {
        out.copy_from_slice(&super::thread_info_bytes(
            self.hold,
            self.thread_id,
            &self.name,
            self.mqd,
        ));
    }
    fn get(p: &[u8]) -> Option<Self> {
        super::decode_thread_info(p).ok()
    }
}

/// The answer to a PING: an `int`, 0 from the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pong {
    /// 0.
    pub result: i32,
}

impl Control for Pong {
    const KIND: Kind = Kind::Ping;
    const LEN: usize = 4;
    fn put(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.result.to_ne_bytes());
    }
    fn get(p: &[u8]) -> Option<Self> {
        Some(Pong {
            result: i32_at(p, 0)?,
        })
    }
}

/// A death notice: `i32 pid` of a process the relay's watcher saw die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Died {
    /// The process that died.
    pub pid: i32,
}

impl Control for Died {
    const KIND: Kind = Kind::Died;
    const LEN: usize = 4;
    fn put(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.pid.to_ne_bytes());
    }
    fn get(p: &[u8]) -> Option<Self> {
        Some(Died { pid: i32_at(p, 0)? })
    }
}

/// A library's greeting: `u32 version`, `i32 pid`, `i32 mqd`, `u32 flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// [`HELLO_VERSION`].
    pub version: u32,
    /// The entry's process.
    pub pid: i32,
    /// The entry's queue.
    pub mqd: i32,
    /// 0 (reserved).
    pub flags: u32,
}

impl Control for Hello {
    const KIND: Kind = Kind::Hello;
    const LEN: usize = 16;
    fn put(&self, out: &mut [u8]) {
        put_at(out, 0, &self.version.to_ne_bytes());
        put_at(out, 4, &self.pid.to_ne_bytes());
        put_at(out, 8, &self.mqd.to_ne_bytes());
        put_at(out, 12, &self.flags.to_ne_bytes());
    }
    /// The flags are optional: 12 bytes are a greeting too.
    fn get(p: &[u8]) -> Option<Self> {
        Some(Hello {
            version: u32_at(p, 0)?,
            pid: i32_at(p, 4)?,
            mqd: i32_at(p, 8)?,
            flags: u32_at(p, 12).unwrap_or(0),
        })
    }
}

/// The relay's answer to a HELLO: `u32 version`, `i32 status` (0, or a relay error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloAnswer {
    /// [`HELLO_VERSION`].
    pub version: u32,
    /// 0: registered; otherwise a [`crate::RelayErrorCode`].
    pub status: i32,
}

impl Control for HelloAnswer {
    const KIND: Kind = Kind::Hello;
    const LEN: usize = 8;
    fn put(&self, out: &mut [u8]) {
        put_at(out, 0, &self.version.to_ne_bytes());
        put_at(out, 4, &self.status.to_ne_bytes());
    }
    fn get(p: &[u8]) -> Option<Self> {
        Some(HelloAnswer {
            version: u32_at(p, 0)?,
            status: i32_at(p, 4)?,
        })
    }
}

/// The relay's error answer to a tagged sync call: `i32 code`, `u32 api id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorAnswer {
    /// A [`crate::RelayErrorCode`].
    pub code: i32,
    /// The api id of the failed call.
    pub api: u32,
}

impl Control for ErrorAnswer {
    const KIND: Kind = Kind::Error;
    const LEN: usize = 8;
    fn put(&self, out: &mut [u8]) {
        put_at(out, 0, &self.code.to_ne_bytes());
        put_at(out, 4, &self.api.to_ne_bytes());
    }
    fn get(p: &[u8]) -> Option<Self> {
        Some(ErrorAnswer {
            code: i32_at(p, 0)?,
            api: u32_at(p, 4).unwrap_or(0),
        })
    }
}

/// A wake-up: the 8-byte id of the wait, and why (0 timeout, 1 the watched peer died).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    /// The wait it ends.
    pub id: u64,
    /// 0: timeout; 1: the watched peer died.
    pub reason: u32,
}

impl Control for Wake {
    const KIND: Kind = Kind::Wake;
    const LEN: usize = 12;
    fn put(&self, out: &mut [u8]) {
        put_at(out, 0, &self.id.to_ne_bytes());
        put_at(out, 8, &self.reason.to_ne_bytes());
    }
    fn get(p: &[u8]) -> Option<Self> {
        if p.len() != Self::LEN {
            return None;
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&p[..8]);
        Some(Wake {
            id: u64::from_ne_bytes(id),
            reason: u32_at(p, 8)?,
        })
    }
}

/// LOOKUP flag: the asking process follows the relay's routes page (docs/PROTOCOL.md §8), so
/// it needs no DROP_ROUTES message. A relay that does not know the flag ignores it.
pub const LOOKUP_FLAG_PAGE: u32 = 1;

/// The direct path's question: the 32-byte name field of the destination, then `u32 flags`
/// (absent in the first version: read as 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    /// The destination asked about.
    pub name: MipcName,
    /// `LOOKUP_FLAG_*` bits.
    pub flags: u32,
}

impl Control for Lookup {
    const KIND: Kind = Kind::Lookup;
    const LEN: usize = super::MIPC_NAME_MAX_LEN + 4;
    fn put(&self, out: &mut [u8]) {
        out[..super::MIPC_NAME_MAX_LEN].copy_from_slice(self.name.field());
        out[super::MIPC_NAME_MAX_LEN..].copy_from_slice(&self.flags.to_ne_bytes());
    }
    fn get(p: &[u8]) -> Option<Self> {
        let field = p.get(..super::MIPC_NAME_MAX_LEN)?.try_into().ok()?;
        Some(Lookup {
            name: MipcName::from_field(field).ok()?,
            flags: u32_at(p, super::MIPC_NAME_MAX_LEN).unwrap_or(0),
        })
    }
}

/// The relay's answer to a LOOKUP: `i32 status`, `i32 queue`, `i32 pid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupAnswer {
    /// 0: send directly; otherwise a [`crate::RelayErrorCode`].
    pub status: i32,
    /// The destination's queue (-1 unless status is 0).
    pub queue: i32,
    /// The destination's process (0 unless status is 0).
    pub pid: i32,
}

impl Control for LookupAnswer {
    const KIND: Kind = Kind::Lookup;
    const LEN: usize = 12;
    fn put(&self, out: &mut [u8]) {
        put_at(out, 0, &self.status.to_ne_bytes());
        put_at(out, 4, &self.queue.to_ne_bytes());
        put_at(out, 8, &self.pid.to_ne_bytes());
    }
    fn get(p: &[u8]) -> Option<Self> {
        Some(LookupAnswer {
            status: i32_at(p, 0)?,
            queue: i32_at(p, 4)?,
            pid: i32_at(p, 8)?,
        })
    }
}

/// Round-trips one control payload through a message: build, decode, read back.
///
/// # Panics
/// When the value read back differs (the fuzzer's and the tests' check).
pub fn assert_round_trip<C: Control>(msg: &C, seed: &MipcName) {
    let mut b = MsgBuf::boxed();
    b.build_control(
        Envelope {
            mtype: C::KIND.mtype(),
            src: seed,
            dst: &MipcName::RELAY,
            sync_flag: 0,
            tag: None,
        },
        msg,
    );
    let hdr = b.decode().expect("a built control message decodes");
    assert_eq!(Kind::from_msg_type(hdr.msg_type), Some(C::KIND));
    assert_eq!(hdr.msg_size as usize, C::LEN);
    assert_eq!(C::decode(&b, &hdr), Some(*msg));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_reserved_and_distinct() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert!(super::super::is_control(k.msg_type()));
            assert_eq!(Kind::from_msg_type(k.msg_type()), Some(*k));
            assert!(Kind::ALL[..i].iter().all(|o| o.msg_type() != k.msg_type()));
        }
        assert_eq!(Kind::from_msg_type(1), None);
    }
}
