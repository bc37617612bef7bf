//! One value of every control payload, round-tripped (the wire fuzzer's and the tests' check):
//! the relay's own kinds (`control.rs`), events' (`events.rs`) and tools' (`tool/`).

use super::control::{
    assert_round_trip, Died, ErrorAnswer, Hello, HelloAnswer, Lookup, LookupAnswer, Pong, Wake,
};
use super::{events, tool, ThreadInfo, MIPC_NAME_MAX_LEN, THREAD_ID_LEN};
use crate::name::MipcName;

/// Round-trips one value of every control payload, derived from `seed` bytes (the fuzzer
/// passes its input; any bytes do).
///
/// # Panics
/// When one does not round-trip.
pub fn samples(seed: &[u8]) {
    let w = |i: usize| {
        let mut b = [0u8; 8];
        for (k, x) in b.iter_mut().enumerate() {
            *x = seed.get(i * 8 + k).copied().unwrap_or(k as u8);
        }
        u64::from_ne_bytes(b)
    };
    let name = seed
        .iter()
        .map(|&c| if c.is_ascii_alphanumeric() { c } else { b'n' })
        .take(MIPC_NAME_MAX_LEN - 1)
        .collect::<Vec<u8>>();
    let name = MipcName::new(if name.is_empty() { b"n" } else { &name }).unwrap_or(MipcName::RELAY);
    let (a, b, c) = (w(0), w(1), w(2));
    assert_round_trip(
        &ThreadInfo {
            hold: a & 1 == 1,
            thread_id: if THREAD_ID_LEN == 8 {
                b
            } else {
                b & 0xFFFF_FFFF
            },
            name,
            mqd: c as i32,
        },
        &name,
    );
    assert_round_trip(&Pong { result: a as i32 }, &name);
    assert_round_trip(&Died { pid: b as i32 }, &name);
    assert_round_trip(
        &Hello {
            version: a as u32,
            pid: (a >> 32) as i32,
            mqd: b as i32,
            flags: (b >> 32) as u32,
        },
        &name,
    );
    assert_round_trip(
        &HelloAnswer {
            version: c as u32,
            status: (c >> 32) as i32,
        },
        &name,
    );
    assert_round_trip(
        &ErrorAnswer {
            code: a as i32,
            api: b as u32,
        },
        &name,
    );
    assert_round_trip(
        &Wake {
            id: a,
            reason: c as u32,
        },
        &name,
    );
    assert_round_trip(
        &Lookup {
            name,
            flags: c as u32,
        },
        &name,
    );
    tool::samples(seed, &name);
    assert_round_trip(
        &LookupAnswer {
            status: a as i32,
            queue: b as i32,
            pid: c as i32,
        },
        &name,
    );
    let pattern = events::EventPattern::new(name.as_bytes())
        .unwrap_or_else(|_| events::EventPattern::new(b"*").expect("a valid pattern"));
    assert_round_trip(&events::Subscribe { pattern }, &name);
    assert_round_trip(&events::Unsubscribe { pattern }, &name);
    assert_round_trip(&events::SubscribeAnswer { status: a as i32 }, &name);
    assert_round_trip(&events::UnsubscribeAnswer { status: b as i32 }, &name);
    // ANSWERED's list of calls (variable length: its own codec, `answered.rs`).
    let calls: Vec<_> = (0..(a % 8) as u32 + 1)
        .filter_map(|i| {
            Some(super::answered::Answered {
                slot: (b as u32).wrapping_add(i),
                tag: super::CallTag::request(((c as u32).wrapping_add(i) & 0x7FFF_FFFF).max(1))?,
                caller_pid: (a >> 32) as u32 ^ i,
            })
        })
        .collect();
    let mut payload = Vec::new();
    super::answered::encode(&calls, &mut payload);
    let back: Vec<_> = super::answered::decode(&payload)
        .expect("an encoded list decodes")
        .collect();
    assert_eq!(back, calls, "ANSWERED does not round-trip");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_message_round_trips() {
        samples(b"");
        samples(b"any bytes at all, long enough for three words");
        samples(&[0xFF; 40]);
    }
}
