//! The message buffer the library and the relay receive into, build in and send from.

use super::{
    decode, CallTag, Frame, Header, WireError, BUF_LEN, MIPC_MSG_MAX_LEN, MIPC_NAME_MAX_LEN,
    MTEXT_HEADER_LEN, MTYPE_LEN, OFFER_LEN, OFF_DST, OFF_SIZE, OFF_SRC, OFF_SYNC, OFF_TYPE,
    SENDER_LEN, SENDER_MARK, TAG_LEN,
};
use crate::name::MipcName;
use std::fmt;
use std::os::raw::c_long;

/// A message buffer: `mtype` then room for the largest tagged `mtext`, aligned for `long`.
///
/// The relay and the library receive into one of these and send from it, so a message is
/// never copied in user space on its way through. The length comes first: a short message
/// then touches only the first cache lines of the buffer (after the length, the bytes stay
/// aligned for `long`).
#[repr(C, align(8))]
#[derive(Clone)]
pub struct MsgBuf {
    mtext_len: usize,
    bytes: [u8; BUF_LEN],
}

impl Default for MsgBuf {
    fn default() -> Self {
        MsgBuf {
            bytes: [0; BUF_LEN],
            mtext_len: 0,
        }
    }
}

impl fmt::Debug for MsgBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgBuf")
            .field("mtype", &self.mtype())
            .field("mtext_len", &self.mtext_len)
            .finish()
    }
}

/// Fields of a message to build with [`MsgBuf::build`].
#[derive(Debug, Clone, Copy)]
pub struct Build<'a> {
    /// SysV `mtype`.
    pub mtype: c_long,
    /// Sender name.
    pub src: &'a MipcName,
    /// Destination name.
    pub dst: &'a MipcName,
    /// `msg_hdr.msg_type`.
    pub msg_type: u32,
    /// `msg_hdr.sync_flag`.
    pub sync_flag: i32,
    /// Payload, at most `MIPC_MSG_MAX_LEN` bytes.
    pub payload: &'a [u8],
    /// Call tag to append, if any.
    pub tag: Option<CallTag>,
}

impl MsgBuf {
    /// A new, empty buffer on the heap (it is over 2 KiB).
    pub fn boxed() -> Box<MsgBuf> {
        Box::default()
    }

    /// Makes this buffer hold the message of SysV type `mtype` and `mtext` (at most
    /// `MTEXT_MAX_TAGGED` bytes: longer is cut), as a receive would have left it.
    pub fn set_message(&mut self, mtype: c_long, mtext: &[u8]) {
        let n = mtext.len().min(BUF_LEN - MTYPE_LEN);
        self.set_mtype(mtype);
        self.bytes[MTYPE_LEN..MTYPE_LEN + n].copy_from_slice(&mtext[..n]);
        self.mtext_len = n;
    }

    /// The whole buffer, `mtype` first, for a receive call to fill.
    pub fn raw_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Records how many `mtext` bytes a receive call wrote.
    pub fn set_mtext_len(&mut self, len: usize) {
        self.mtext_len = len.min(BUF_LEN - MTYPE_LEN);
    }

    /// The message as sent: `mtype` then `mtext`.
    pub fn as_sendable(&self) -> &[u8] {
        &self.bytes[..MTYPE_LEN + self.mtext_len]
    }

    /// The message without a trailing call tag, for a peer that does not know tags.
    pub fn as_sendable_untagged(&self, hdr: &Header) -> &[u8] {
        self.as_sendable_without_tag(&hdr.frame)
    }

    /// As [`MsgBuf::as_sendable_untagged`], for a message read with
    /// [`decode_frame`](super::decode_frame).
    pub fn as_sendable_without_tag(&self, f: &Frame) -> &[u8] {
        &self.bytes[..MTYPE_LEN + f.mtext_len(false)]
    }

    /// The `mtext` bytes received or built.
    pub fn mtext(&self) -> &[u8] {
        &self.bytes[MTYPE_LEN..MTYPE_LEN + self.mtext_len]
    }

    /// Length of `mtext`.
    pub fn mtext_len(&self) -> usize {
        self.mtext_len
    }

    /// SysV `mtype`.
    pub fn mtype(&self) -> c_long {
        let mut b = [0u8; MTYPE_LEN];
        b.copy_from_slice(&self.bytes[..MTYPE_LEN]);
        c_long::from_ne_bytes(b)
    }

    /// Sets SysV `mtype`.
    pub fn set_mtype(&mut self, mtype: c_long) {
        self.bytes[..MTYPE_LEN].copy_from_slice(&mtype.to_ne_bytes());
    }

    /// Rewrites `dst_name` of a built message (the relay's broadcast: one message, many
    /// receivers).
    pub fn set_dst(&mut self, dst: &MipcName) {
        let at = MTYPE_LEN + OFF_DST;
        self.bytes[at..at + MIPC_NAME_MAX_LEN].copy_from_slice(dst.field());
    }

    /// Appends the caller's queue to a request just built with [`MsgBuf::build`] with a
    /// request tag, for a direct call: the server answers straight to that queue
    /// (docs/PROTOCOL.md §6). Does nothing when there is no room (never for a built message).
    pub fn append_reply_queue(&mut self, queue: i32) {
        let end = MTYPE_LEN + self.mtext_len;
        if let Some(slot) = self.bytes.get_mut(end..end + 4) {
            slot.copy_from_slice(&queue.to_ne_bytes());
            self.mtext_len += 4;
        }
    }

    /// Writes into this buffer the message `src` (whose header is `hdr`) as a receiver gets
    /// it from the relay: its body, its tag when `with_tag`, and a sender trailer with `pid`
    /// (0: unknown) (docs/PROTOCOL.md §9).
    pub fn copy_with_sender(&mut self, src: &MsgBuf, hdr: &Header, with_tag: bool, pid: u32) {
        let n = MTYPE_LEN + hdr.mtext_len(with_tag && hdr.tag.is_some());
        self.bytes[..n].copy_from_slice(&src.bytes[..n]);
        self.mtext_len = n - MTYPE_LEN;
        self.append_sender(pid);
    }

    /// Appends the relay's offer to let the server answer straight back (docs/PROTOCOL.md §11)
    /// to the tagged request in this buffer: the caller's queue, the caller's place in the
    /// relay's table and the stamp. A sender trailer must follow.
    pub fn append_offer(&mut self, queue: i32, slot: u32, stamp: u32) {
        let end = MTYPE_LEN + self.mtext_len;
        if let Some(at) = self.bytes.get_mut(end..end + OFFER_LEN) {
            at[..4].copy_from_slice(&queue.to_ne_bytes());
            at[4..8].copy_from_slice(&slot.to_ne_bytes());
            at[8..].copy_from_slice(&stamp.to_ne_bytes());
            self.mtext_len += OFFER_LEN;
        }
    }

    /// Appends a sender trailer with `pid` to the message in this buffer.
    pub fn append_sender(&mut self, pid: u32) {
        let end = MTYPE_LEN + self.mtext_len;
        if let Some(slot) = self.bytes.get_mut(end..end + SENDER_LEN) {
            slot[..4].copy_from_slice(&pid.to_ne_bytes());
            slot[4..].copy_from_slice(&SENDER_MARK.to_ne_bytes());
            self.mtext_len += SENDER_LEN;
        }
    }

    /// Writes a whole message.
    ///
    /// # Panics
    /// Never for a payload within `MIPC_MSG_MAX_LEN`; callers check sizes first, and a
    /// longer payload is cut to the limit rather than overflow.
    pub fn build(&mut self, m: Build<'_>) {
        let len = m.payload.len().min(MIPC_MSG_MAX_LEN);
        self.set_mtype(m.mtype);
        let t = &mut self.bytes[MTYPE_LEN..];
        t[OFF_SRC..OFF_SRC + MIPC_NAME_MAX_LEN].copy_from_slice(m.src.field());
        t[OFF_DST..OFF_DST + MIPC_NAME_MAX_LEN].copy_from_slice(m.dst.field());
        t[OFF_TYPE..OFF_TYPE + 4].copy_from_slice(&m.msg_type.to_ne_bytes());
        t[OFF_SIZE..OFF_SIZE + 4].copy_from_slice(&(len as u32).to_ne_bytes());
        t[OFF_SYNC..OFF_SYNC + 4].copy_from_slice(&m.sync_flag.to_ne_bytes());
        t[MTEXT_HEADER_LEN..MTEXT_HEADER_LEN + len].copy_from_slice(&m.payload[..len]);
        let mut end = MTEXT_HEADER_LEN + len;
        if let Some(tag) = m.tag {
            t[end..end + TAG_LEN].copy_from_slice(&tag.raw().to_ne_bytes());
            end += TAG_LEN;
        }
        self.mtext_len = end;
    }

    /// Checks the `mtext` and reads its header.
    ///
    /// # Errors
    /// As [`decode`].
    pub fn decode(&self) -> Result<Header, WireError> {
        decode(self.mtext())
    }
}
