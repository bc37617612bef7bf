//! One value of every tool message for the wire fuzzer's round trip.

use super::*;

/// Round-trips one value of every tool message, derived from `seed` bytes (the wire fuzzer
/// passes its input through `wire::samples`; any bytes do).
///
/// # Panics
/// When one does not round-trip.
pub fn samples(seed: &[u8], name: &MipcName) {
    let w = |i: usize| {
        let mut b = [0u8; 8];
        for (k, x) in b.iter_mut().enumerate() {
            *x = seed.get(i * 8 + k).copied().unwrap_or(k as u8);
        }
        u64::from_ne_bytes(b)
    };
    let (a, b) = (w(0), w(1));
    let head = RequestHead {
        pid: a as i32,
        reply_queue: (a >> 32) as i32,
        request_id: b as u32,
    };
    for body in [
        RequestBody::List { cursor: b as u32 },
        RequestBody::Stats,
        RequestBody::MonitorAttach {
            flags: (b >> 32) as u32,
        },
        RequestBody::MonitorDetach,
        RequestBody::WaitFor {
            name: *name,
            timeout_ms: (b >> 32) as i32,
        },
    ] {
        let req = Request { head, body };
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(Request::decode(req.msg_type(), &out), Ok(req));
    }
    let entry = EntryInfo {
        name: *name,
        pid: a as i32,
        queue: b as i32,
        thread: a ^ b,
        flags: (a >> 8) as u32,
        queued_msgs: (b >> 8) as u32,
        since: a.rotate_left(7),
        queued_bytes: b.rotate_left(9),
        backlog: (a >> 16) as u32,
        msgs_in: a,
        msgs_out: b,
        bytes_in: !a,
        bytes_out: !b,
        subscriptions: Vec::new(),
    };
    // Some entries with subscriptions (as many as the seed says, up to a full page's worth
    // for one entry), then as many of them as fit one page.
    let subs = (b % (LIST_SUBS_MAX as u64 + 1)) as usize;
    let subscribed = EntryInfo {
        subscriptions: vec![*name; subs],
        ..entry.clone()
    };
    let count = (a % (LIST_PAGE_MAX as u64 + 1)) as usize;
    let mut entries: Vec<EntryInfo> = (0..count)
        .map(|i| {
            if (a >> (i % 64)) & 1 == 1 {
                subscribed.clone()
            } else {
                entry.clone()
            }
        })
        .collect();
    while !ListPage::fits(&entries) {
        entries.pop();
    }
    let count = entries.len();
    let page = ListPage {
        total: count as u32 + (b % 1000) as u32,
        first: (b % 1000) as u32,
        entries,
    };
    let mut out = Vec::new();
    page.encode(&mut out);
    assert_eq!(ListPage::decode(&out), Ok(page));
    let report = StatsReport {
        counters: vec![(a as u32, b), (b as u32, a)],
        backlog: vec![(*name, a as u32)],
    };
    let mut out = Vec::new();
    report.encode(&mut out);
    assert_eq!(StatsReport::decode(&out), Ok(report));
    let ev = EventRecord {
        kind: EventKind::from_code(a as u16),
        time_ns: b,
        seq: a as u32,
        lost: (a >> 32) as u32,
        pid: b as i32,
        code: (b >> 32) as i32,
        name: (a & 1 == 1).then_some(*name),
        msg: &seed[..seed.len().min(MTEXT_MAX_TAGGED)],
    };
    let mut out = Vec::new();
    ev.encode(&mut out);
    assert_eq!(EventRecord::decode(&out), Ok(ev));
    // Whatever the bytes, decoding never panics.
    let _ = EventRecord::decode(seed);
    let _ = ListPage::decode(seed);
    let _ = StatsReport::decode(seed);
    let _ = AnswerHead::decode(seed);
    for t in TOOL_TYPE_MIN..=TOOL_TYPE_MAX {
        let _ = Request::decode(t, seed);
    }
}
