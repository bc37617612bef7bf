//! ANSWERED (docs/PROTOCOL.md §11): a library tells the relay which sync calls it answered
//! straight to their callers' queues, so that the relay stops counting those callers as
//! waiting (its deadlock check and its "peer died" answers read that).
//!
//! The payload is a list of calls, each as the relay's offer and request named it: the
//! caller's place in the relay's table (`u32`), the call's tag (`u32`, the request's) and the
//! caller's process (`u32`, the request's sender trailer), native endian, at most [`MAX`](crate::wire::answered::MAX) of
//! them. None is trusted: the relay ends a caller's pending call only when the caller at that
//! place is that process and waits on exactly that tag, on a server of the sender's process
//! (a place and a tag alone come again: places are reused, and every process numbers its
//! calls from 1).

use super::{CallTag, MIPC_MSG_MAX_LEN};

/// Bytes per call in the payload.
pub const CALL_LEN: usize = 12;
/// Most calls one ANSWERED carries.
pub const MAX: usize = MIPC_MSG_MAX_LEN / CALL_LEN;

/// One call answered straight back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// The caller's place in the relay's table (the offer's `slot`).
    pub slot: u32,
    /// The request's tag.
    pub tag: CallTag,
    /// The caller's process, as the relay told in the request's sender trailer.
    pub caller_pid: u32,
}

/// Writes `calls` (at most [`MAX`]; more are left out) as a payload into `out` (cleared).
pub fn encode(calls: &[Answered], out: &mut Vec<u8>) {
    out.clear();
    for c in calls.iter().take(MAX) {
        out.extend_from_slice(&c.slot.to_ne_bytes());
        out.extend_from_slice(&c.tag.raw().to_ne_bytes());
        out.extend_from_slice(&c.caller_pid.to_ne_bytes());
    }
}

/// The calls of a payload, or `None` when it is not one (a length that is not a whole number
/// of calls, none at all, or a tag that is not a request's).
pub fn decode(payload: &[u8]) -> Option<impl Iterator<Item = Answered> + '_> {
    if payload.is_empty() || payload.len() % CALL_LEN != 0 {
        return None;
    }
    let calls = payload.chunks_exact(CALL_LEN);
    if calls.clone().any(|c| tag_of(c).is_none()) {
        return None;
    }
    Some(calls.filter_map(|c| {
        Some(Answered {
            slot: u32::from_ne_bytes([c[0], c[1], c[2], c[3]]),
            tag: tag_of(c)?,
            caller_pid: u32::from_ne_bytes([c[8], c[9], c[10], c[11]]),
        })
    }))
}

fn tag_of(pair: &[u8]) -> Option<CallTag> {
    CallTag::request(u32::from_ne_bytes([pair[4], pair[5], pair[6], pair[7]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(slot: u32, id: u32) -> Answered {
        Answered {
            slot,
            tag: CallTag::request(id).unwrap(),
            caller_pid: 1000 + id,
        }
    }

    #[test]
    fn calls_round_trip_in_order() {
        let calls = [call(0, 1), call(7, 0x7FFF_FFFF), call(3, 42)];
        let mut out = Vec::new();
        encode(&calls, &mut out);
        assert_eq!(out.len(), 3 * CALL_LEN);
        assert_eq!(decode(&out).unwrap().collect::<Vec<_>>(), calls);
    }

    #[test]
    fn a_payload_that_is_not_a_list_of_calls_is_refused() {
        assert!(decode(&[]).is_none());
        assert!(decode(&[0; 11]).is_none());
        // Call id 0, and an answer's tag.
        assert!(decode(&[0; 12]).is_none());
        let mut out = Vec::new();
        encode(&[call(1, 5)], &mut out);
        out[4..8].copy_from_slice(&(5u32 | 0x8000_0000).to_ne_bytes());
        assert!(decode(&out).is_none());
    }

    #[test]
    fn no_more_than_fit_in_one_message_are_written() {
        let calls: Vec<_> = (1..=MAX as u32 + 10).map(|i| call(i, i)).collect();
        let mut out = Vec::new();
        encode(&calls, &mut out);
        assert_eq!(out.len(), MAX * CALL_LEN);
        assert!(out.len() <= MIPC_MSG_MAX_LEN);
    }
}
