//! BATCH (docs/PROTOCOL.md §10): several one-way requests the relay parked for one receiver,
//! carried in one SysV message.
//!
//! A receiver that falls behind reads its queue at the cost of one `msgrcv` per message,
//! about 0.7 us of kernel time whatever the size (`bench/queue_costs.c`): that, not the relay,
//! sets how much such a receiver can take. So when the relay holds a backlog of one-way
//! requests for an entry whose library asked for batches (`HELLO_FLAG_BATCH`), it sends the
//! next few of the same SysV type together: one message from the relay, `msg_type`
//! [`MIPC_MSG_TYPE_BATCH`](crate::wire::MIPC_MSG_TYPE_BATCH), whose payload is each message's
//! `mtext` (header, payload, tag and sender trailer, exactly as it would have been sent alone)
//! behind its length as a native-endian `u16`. The library takes the batch apart on receipt
//! and hands the messages out one by one, in order; a program never sees a batch.
//!
//! A batch is a valid MIPC message (its payload is at most `MIPC_MSG_MAX_LEN` bytes), so it
//! fits every receive buffer of the library and passes every check of a receiver.

use super::{
    decode_frame, Frame, Kind, WireError, MIPC_MSG_MAX_LEN, MIPC_NAME_MAX_LEN, MTEXT_HEADER_LEN,
    MTEXT_MAX_TAGGED, MTYPE_LEN, OFF_DST, OFF_SIZE, OFF_SRC, OFF_SYNC, OFF_TYPE,
};
use crate::name::MipcName;

/// Bytes before each message in a batch: its `mtext` length, a native-endian `u16`.
pub const LEN_PREFIX: usize = 2;

/// Payload room of a batch.
pub const ROOM: usize = MIPC_MSG_MAX_LEN;

/// Builds a batch in a reused buffer: [`Writer::begin`], [`Writer::push`] while
/// [`Writer::fits`], [`Writer::finish`].
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    count: usize,
}

impl<'a> Writer<'a> {
    /// Starts a batch for `dst` in `out` (cleared): `mtype` (the SysV type of every message
    /// it will carry, as `mtype_bytes`, the first [`MTYPE_LEN`] bytes of one of them), then
    /// the header, from the relay.
    pub fn begin(out: &'a mut Vec<u8>, mtype_bytes: &[u8], dst: &MipcName) -> Writer<'a> {
        out.clear();
        out.extend_from_slice(&mtype_bytes[..MTYPE_LEN]);
        out.resize(MTYPE_LEN + MTEXT_HEADER_LEN, 0);
        let h = &mut out[MTYPE_LEN..];
        h[OFF_SRC..OFF_SRC + MIPC_NAME_MAX_LEN].copy_from_slice(MipcName::RELAY.field());
        h[OFF_DST..OFF_DST + MIPC_NAME_MAX_LEN].copy_from_slice(dst.field());
        h[OFF_TYPE..OFF_TYPE + 4].copy_from_slice(&Kind::Batch.msg_type().to_ne_bytes());
        h[OFF_SYNC..OFF_SYNC + 4].copy_from_slice(&0i32.to_ne_bytes());
        Writer { out, count: 0 }
    }

    /// Whether a message of `mtext_len` bytes still fits.
    #[inline]
    pub fn fits(&self, mtext_len: usize) -> bool {
        self.payload_len() + LEN_PREFIX + mtext_len <= ROOM
    }

    /// Appends a message's `mtext` (the caller checked [`Writer::fits`]).
    pub fn push(&mut self, mtext: &[u8]) {
        debug_assert!(self.fits(mtext.len()));
        self.out
            .extend_from_slice(&(mtext.len() as u16).to_ne_bytes());
        self.out.extend_from_slice(mtext);
        self.count += 1;
    }

    /// Messages in the batch so far.
    pub fn count(&self) -> usize {
        self.count
    }

    fn payload_len(&self) -> usize {
        self.out.len() - MTYPE_LEN - MTEXT_HEADER_LEN
    }

    /// The batch, `mtype` first, ready to send.
    pub fn finish(self) -> &'a [u8] {
        let size = self.payload_len() as u32;
        let at = MTYPE_LEN + OFF_SIZE;
        self.out[at..at + 4].copy_from_slice(&size.to_ne_bytes());
        self.out
    }
}

/// Whether a message (its `mtext` passed [`decode_frame`] as `f`) is a batch from the relay.
#[inline(always)]
pub fn is_batch(f: &Frame, mtext: &[u8]) -> bool {
    f.msg_type == Kind::Batch.msg_type() && super::from_relay(mtext)
}

/// The messages of a batch's payload, in order: each `mtext` checked with
/// [`decode_frame`]. All or nothing: a payload that does not split into valid messages is
/// an error, and nothing of it is handed out.
///
/// # Errors
/// [`WireError::BadBatch`] for a length that runs past the payload or an empty batch; the
/// first bad message's [`decode_frame`] error.
pub fn split(payload: &[u8]) -> Result<Vec<&[u8]>, WireError> {
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_at_checked(LEN_PREFIX)
            .ok_or(WireError::BadBatch)?;
        let len = u16::from_ne_bytes([len[0], len[1]]) as usize;
        if len > MTEXT_MAX_TAGGED {
            return Err(WireError::BadBatch);
        }
        let (mtext, tail) = tail.split_at_checked(len).ok_or(WireError::BadBatch)?;
        decode_frame(mtext)?;
        out.push(mtext);
        rest = tail;
    }
    if out.is_empty() {
        return Err(WireError::BadBatch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_frame, Build, CallTag, MsgBuf, MTEXT_MAX};
    use std::os::raw::c_long;

    /// A one-way request from `src` to `dst` with `payload` and a tag, as the relay parks it.
    fn request(payload: &[u8], id: u32) -> Box<MsgBuf> {
        let mut b = MsgBuf::boxed();
        b.build(Build {
            mtype: 7,
            src: &MipcName::new(b"tx").unwrap(),
            dst: &MipcName::new(b"rx").unwrap(),
            msg_type: 7,
            sync_flag: 0,
            payload,
            tag: CallTag::request(id),
        });
        b
    }

    #[test]
    fn a_batch_carries_each_message_as_it_was() {
        let msgs: Vec<_> = (1..=5u32)
            .map(|i| request(&vec![i as u8; 10 * i as usize], i))
            .collect();
        let mut out = Vec::new();
        let mut w = Writer::begin(
            &mut out,
            msgs[0].as_sendable(),
            &MipcName::new(b"rx").unwrap(),
        );
        for m in &msgs {
            assert!(w.fits(m.mtext_len()));
            w.push(m.mtext());
        }
        assert_eq!(w.count(), 5);
        let sent = w.finish().to_vec();
        assert_eq!(&sent[..MTYPE_LEN], &(7 as c_long).to_ne_bytes());
        let mtext = &sent[MTYPE_LEN..];
        let f = decode_frame(mtext).expect("a batch is a valid message");
        assert!(is_batch(&f, mtext));
        let parts = split(f.payload(mtext)).unwrap();
        assert_eq!(parts.len(), 5);
        for (p, m) in parts.iter().zip(&msgs) {
            assert_eq!(*p, m.mtext());
        }
    }

    #[test]
    fn a_batch_holds_no_more_than_a_message_payload() {
        let big = request(&[1; 900], 1);
        let mut out = Vec::new();
        let mut w = Writer::begin(&mut out, big.as_sendable(), &MipcName::new(b"rx").unwrap());
        w.push(big.mtext());
        w.push(big.mtext());
        assert!(!w.fits(big.mtext_len()), "a third of 900 B is past 2048");
        assert!(w.finish().len() <= MTYPE_LEN + MTEXT_MAX);
    }

    #[test]
    fn a_batch_that_does_not_split_is_refused_whole() {
        let m = request(b"abc", 3);
        let mut good = (m.mtext_len() as u16).to_ne_bytes().to_vec();
        good.extend_from_slice(m.mtext());
        assert_eq!(split(&good).unwrap().len(), 1);
        // Empty, a length past the end, a stray byte, a message that is not one.
        assert_eq!(split(&[]), Err(WireError::BadBatch));
        assert_eq!(split(&good[..good.len() - 1]), Err(WireError::BadBatch));
        let mut stray = good.clone();
        stray.push(0);
        assert_eq!(split(&stray), Err(WireError::BadBatch));
        let mut bad = good.clone();
        bad[LEN_PREFIX] = 0; // src_name empty
        assert!(split(&bad).is_err());
        let mut huge = good;
        huge[..2].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert_eq!(split(&huge), Err(WireError::BadBatch));
    }

    #[test]
    fn only_the_relay_sends_batches() {
        let m = request(b"x", 1);
        let f = decode_frame(m.mtext()).unwrap();
        assert!(!is_batch(&f, m.mtext()));
        let mut b = MsgBuf::boxed();
        b.build(Build {
            mtype: 7,
            src: &MipcName::new(b"forger").unwrap(),
            dst: &MipcName::new(b"rx").unwrap(),
            msg_type: Kind::Batch.msg_type(),
            sync_flag: 0,
            payload: b"",
            tag: None,
        });
        let f = decode_frame(b.mtext()).unwrap();
        assert!(
            !is_batch(&f, b.mtext()),
            "a batch from another name is a plain message"
        );
    }
}
