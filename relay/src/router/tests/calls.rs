//! Pending sync calls: a dead peer, an answer, a deadlock.

use super::*;

#[test]
fn calls_waiting_on_a_dead_peer_fail_and_its_queues_go() {
    let (mut r, mut p, now) = setup();
    let tag = CallTag::request(11).unwrap();
    assert_eq!(
        r.handle(&mut p, &mut msg(8, "a", "b", 8, -1, b"q", Some(tag)), now),
        Ok(Handled::Forwarded)
    );
    assert_eq!(
        r.entry(&n("a")).unwrap().pending.map(|x| x.callee),
        Some(n("b"))
    );
    let kept: Vec<_> = p.pending.values().map(|(c, x)| (*c, x.callee)).collect();
    assert_eq!(kept, vec![(n("a"), n("b"))], "kept for a later relay");
    p.live.remove(&200);
    assert_eq!(r.peer_died(&mut p, 200), vec![n("b")]);
    assert!(r.entry(&n("b")).is_none());
    assert_eq!(p.removed, vec![12]);
    let (mtype, h, pl) = decode(&p.take(11).unwrap());
    assert_eq!(
        (mtype, h.msg_type, h.tag),
        (8, MIPC_MSG_TYPE_ERROR, Some(tag.reply()))
    );
    assert_eq!(&pl[..4], &(RelayErrorCode::PeerDied as i32).to_ne_bytes());
    assert!(r.entry(&n("a")).unwrap().pending.is_none());
    assert!(p.pending.is_empty());
}

#[test]
fn an_answer_clears_the_pending_call() {
    let (mut r, mut p, now) = setup();
    let tag = CallTag::request(5).unwrap();
    r.handle(&mut p, &mut msg(8, "a", "b", 8, -1, b"q", Some(tag)), now)
        .unwrap();
    assert_eq!(p.pending.len(), 1);
    r.handle(
        &mut p,
        &mut msg(8, "b", "a", 8, 0, b"answer", Some(tag.reply())),
        now,
    )
    .unwrap();
    assert!(r.entry(&n("a")).unwrap().pending.is_none());
    assert!(p.pending.is_empty());
    let (_, h, pl) = decode(&p.take(11).unwrap());
    assert_eq!((h.tag, pl), (Some(tag.reply()), b"answer".to_vec()));
}

#[test]
fn a_call_that_closes_a_cycle_is_refused() {
    let (mut r, mut p, now) = setup();
    let t1 = CallTag::request(1).unwrap();
    let t2 = CallTag::request(2).unwrap();
    r.handle(&mut p, &mut msg(8, "a", "b", 8, 1000, b"", Some(t1)), now)
        .unwrap();
    assert_eq!(
        decode(&p.take(12).unwrap()).1.tag,
        Some(t1),
        "b got a's request"
    );
    assert_eq!(
        r.handle(&mut p, &mut msg(9, "b", "a", 9, 1000, b"", Some(t2)), now),
        Err(Rejected::Deadlock(n("b"), n("a")))
    );
    let (_, h, pl) = decode(&p.take(12).unwrap());
    assert_eq!((h.msg_type, h.tag), (MIPC_MSG_TYPE_ERROR, Some(t2.reply())));
    assert_eq!(&pl[..4], &(RelayErrorCode::Deadlock as i32).to_ne_bytes());
    // Once a's call has timed out, b may call a.
    let later = now + Duration::from_millis(1001);
    assert_eq!(
        r.handle(&mut p, &mut msg(9, "b", "a", 9, 1000, b"", Some(t2)), later),
        Ok(Handled::Forwarded)
    );
}

#[test]
fn pending_calls_taken_back_are_kept_in_their_callers_slots() {
    let (mut r, mut p, now) = setup();
    let tag = CallTag::request(4).unwrap();
    let call = |callee: &str| Pending {
        callee: n(callee),
        mtype: 8,
        api: 8,
        tag,
        until: None,
    };
    // From an earlier relay: a waits on b (both back), legacy on "gone" (not back).
    let kept = r.restore_pending(
        &mut p,
        vec![(n("a"), call("b")), (n("legacy"), call("gone"))],
    );
    assert_eq!(kept, 1);
    assert_eq!(r.entry(&n("a")).unwrap().pending, Some(call("b")));
    assert!(r.entry(&n("legacy")).unwrap().pending.is_none());
    let held: Vec<_> = p.pending.values().copied().collect();
    assert_eq!(held, vec![(n("a"), call("b"))]);
    // Each caller has a slot of its own: a's answer clears a's only.
    r.handle(
        &mut p,
        &mut msg(8, "b", "legacy", 8, -1, b"q", Some(tag)),
        now,
    )
    .unwrap();
    assert_eq!(p.pending.len(), 2);
    r.handle(
        &mut p,
        &mut msg(8, "b", "a", 8, 0, b"answer", Some(tag.reply())),
        now,
    )
    .unwrap();
    let held: Vec<_> = p.pending.values().map(|(c, _)| *c).collect();
    assert_eq!(held, vec![n("b")]);
}
