//! Requests read one after another for one entry, sent to it in one batch (`gather.rs`).

use super::*;
use mipc::wire::control::HELLO_FLAG_BATCH;

/// `setup()`, with "b" greeted again asking for batches.
fn setup_batching() -> (Router, MemPort, Instant) {
    let (mut r, mut p, now) = setup();
    assert_eq!(
        r.handle(
            &mut p,
            &mut hello_asking("b", QueueId(12), 200, HELLO_FLAG_BATCH),
            now
        ),
        Ok(Handled::Greeted(n("b"), 200))
    );
    p.take(12).expect("the greeting's answer");
    (r, p, now)
}

/// Everything waiting on queue `id`, taken: each message as the payloads it carries.
fn taken(p: &mut MemPort, id: i32) -> Vec<String> {
    std::iter::from_fn(|| p.take(id))
        .map(|m| carried(&m))
        .collect()
}

/// One-way requests from "a" to "b" with payloads "1", "2", ... (`ids`), each forwarded as
/// far as the router says.
fn send_requests(
    r: &mut Router,
    p: &mut MemPort,
    now: Instant,
    ids: std::ops::RangeInclusive<u32>,
) {
    for i in ids {
        let mut m = request(i.to_string().as_bytes(), i);
        assert_eq!(
            r.handle(p, &mut m, now),
            Ok(Handled::Forwarded),
            "request {i}"
        );
    }
}

/// A one-way request from "a" to "b" of api 6 with `payload`.
fn request(payload: &[u8], id: u32) -> Box<MsgBuf> {
    msg(6, "a", "b", 6, 0, payload, CallTag::request(id))
}

/// The first request of a run goes at once; the one-way requests read right after it for the
/// same entry wait and go together, when a message for anyone else comes and when the
/// receive loop finds its queue empty. Each inner message is byte for byte what would have
/// been sent alone.
#[test]
fn requests_read_in_a_row_go_in_one_batch_after_the_first() {
    let (mut r, mut p, now) = setup_batching();
    let third = request(b"3", 3);
    let alone = third.as_sendable().to_vec();
    for (i, mut m) in [request(b"1", 1), request(b"2", 2), third, request(b"4", 4)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded), "{i}");
        assert_eq!(r.gathered(), i > 0, "requests wait after the first: {i}");
    }
    assert_eq!(taken(&mut p, 12), ["1"], "the first went at once");
    // A message for someone else sends them first.
    assert_eq!(
        r.handle(&mut p, &mut msg(6, "b", "a", 6, 0, b"x", None), now),
        Ok(Handled::Forwarded)
    );
    assert!(!r.gathered());
    let batch = p.queues[&12][0].clone();
    assert_eq!(taken(&mut p, 12), ["234"]);
    let mtext = &batch[MTYPE_LEN..];
    let parts = wire::batch::split(wire::decode_frame(mtext).unwrap().payload(mtext)).unwrap();
    assert_eq!(parts[1], &alone[MTYPE_LEN..], "a request as it was read");
    assert_eq!(&batch[..MTYPE_LEN], &alone[..MTYPE_LEN], "its SysV type");
    assert_eq!(taken(&mut p, 11), ["x"]);
    // A new run: its first goes at once again; the loop sends the rest when its queue is
    // empty.
    for (i, mut m) in [request(b"5", 5), request(b"6", 6), request(b"7", 7)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded), "{i}");
    }
    r.flush_gathered(&mut p);
    assert_eq!(taken(&mut p, 12), ["5", "67"]);
    assert_eq!(r.gathered_sent(), 5);
    assert_eq!(r.stats().forwarded, 8);
    assert_eq!(r.backlog(), (0, 0));
}

/// What may not join goes alone, in its place, and sends what waits first: a sync request
/// (kept, sync calls measured slower: `gather.rs`), a legacy sender's untagged message, a
/// request of another SysV type, an answer. Nothing waits for an entry that did not ask
/// for batches, nor with gathering turned off.
#[test]
fn what_may_not_join_goes_alone_in_its_place() {
    let (mut r, mut p, now) = setup_batching();
    p.capacity = 64;
    let sent = [
        request(b"1", 1),
        request(b"2", 2),
        msg(6, "a", "b", 6, 1000, b"3", CallTag::request(3)),
        request(b"4", 4),
        msg(6, "legacy", "b", 6, 0, b"5", None),
        request(b"6", 6),
        request(b"7", 7),
        msg(7, "a", "b", 7, 0, b"8", CallTag::request(8)),
        msg(7, "a", "b", 7, 0, b"9", CallTag::request(9)),
        msg(
            7,
            "a",
            "b",
            7,
            0,
            b"A",
            CallTag::request(10).map(CallTag::reply),
        ),
        request(b"B", 11),
        request(b"C", 12),
    ];
    for (i, mut m) in sent.into_iter().enumerate() {
        assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded), "{i}");
    }
    r.flush_gathered(&mut p);
    assert_eq!(
        taken(&mut p, 12),
        ["1", "2", "3", "4", "5", "67", "89", "A", "BC"]
    );
    for (label, mut r, mut p, now) in [
        {
            let (r, p, now) = setup();
            ("did not ask", r, p, now)
        },
        {
            let (mut r, p, now) = setup_batching();
            r.set_gathering(false);
            ("turned off", r, p, now)
        },
    ] {
        for i in 1..=4u32 {
            let mut m = request(i.to_string().as_bytes(), i);
            assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded));
            assert!(!r.gathered(), "{label}");
        }
        assert_eq!(taken(&mut p, 12), ["1", "2", "3", "4"], "{label}");
        assert_eq!(r.gathered_sent(), 0, "{label}");
    }
}

/// A batch that finds the queue full (the relay only learns so when it sends) is parked as
/// its requests would have been, in order; what comes next for that entry goes behind them,
/// and all reach the receiver as the backlog goes, none lost. Both ways a batch goes: when
/// the receive loop's queue is empty, and when the next request may not join it.
#[test]
fn a_batch_that_finds_the_queue_full_parks_its_requests_in_order() {
    for flushed_by_next in [false, true] {
        let (mut r, mut p, now) = setup_batching();
        p.capacity = 1;
        send_requests(&mut r, &mut p, now, 1..=4);
        if flushed_by_next {
            // Of another SysV type: the batch goes first, finds the queue full and parks,
            // and this one and the next park behind it.
            let next = |t: &[u8], id| msg(7, "a", "b", 7, 0, t, CallTag::request(id));
            for (mut m, i) in [(next(b"5", 5), 5), (next(b"6", 6), 6)] {
                assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Parked), "{i}");
                assert!(!r.gathered(), "{i}");
            }
        } else {
            r.flush_gathered(&mut p);
        }
        let held = if flushed_by_next { 5 } else { 3 };
        assert_eq!(r.backlog().1, held, "held");
        let s = r.stats();
        assert_eq!((s.forwarded, s.parked, s.rejected), (1, held as u64, 0));
        let mut got = Vec::new();
        for _ in 0..8 {
            got.extend(taken(&mut p, 12));
            let _ = r.drain_parked(&mut p, &n("b"), now);
        }
        // The backlog sends them in batches of one type, as room allows.
        let mut want = vec!["1", "234"];
        if flushed_by_next {
            want.push("56");
        }
        assert_eq!(got, want, "flushed by the next request: {flushed_by_next}");
        assert_eq!(r.backlog(), (0, 0));
        assert_eq!(r.gathered_sent(), 0);
    }
}

/// A batch whose queue is gone: the entry is dropped and its requests refused, as each
/// would have been alone.
#[test]
fn a_batch_to_a_queue_gone_refuses_its_requests() {
    let (mut r, mut p, now) = setup_batching();
    send_requests(&mut r, &mut p, now, 1..=3);
    p.queues.remove(&12);
    r.flush_gathered(&mut p);
    assert_eq!(
        r.take_gather_failures(),
        [Err(Rejected::Gone(n("b"))), Err(Rejected::Gone(n("b")))]
    );
    assert!(!r.entries().any(|(name, _)| name == &n("b")), "b dropped");
    let s = r.stats();
    assert_eq!((s.forwarded, s.rejected), (1, 2));
}

/// An entry dropped (its process died) while requests for it wait: they go before its slot
/// is freed, and none reaches the entry that takes the slot next.
#[test]
fn an_entry_that_dies_while_requests_wait_takes_them_along() {
    let (mut r, mut p, now) = setup_batching();
    send_requests(&mut r, &mut p, now, 1..=3);
    assert!(r.gathered());
    p.live.remove(&200);
    assert_eq!(r.peer_died(&mut p, 200), vec![n("b")]);
    assert!(!r.gathered());
    assert_eq!(r.gathered_sent(), 2, "sent before the queue went");
    assert!(p.removed.contains(&12));
    let q = p.queue(13);
    assert_eq!(
        r.handle(&mut p, &mut notice("c", q, true), now),
        Ok(Handled::Registered(n("c"), q))
    );
    r.flush_gathered(&mut p);
    assert_eq!(p.pending(13), 0, "nothing for the slot's next entry");
}
