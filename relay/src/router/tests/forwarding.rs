//! Ordinary messages: the bytes each destination gets, unknown destinations, malformed bytes.

use super::*;

#[test]
fn forwards_the_same_bytes_and_strips_tags_for_legacy_entries() {
    let (mut r, mut p, now) = setup();
    let tag = CallTag::request(9);
    let mut m = msg(5, "a", "b", 5, -1, b"payload", tag);
    assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded));
    assert_eq!(
        p.take(12).unwrap(),
        m.as_sendable(),
        "tagged entry gets the tag"
    );
    let mut m = msg(5, "a", "legacy", 5, -1, b"payload", tag);
    assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded));
    let got = p.take(10).unwrap();
    assert_eq!(
        got,
        m.as_sendable_untagged(&m.decode().unwrap()),
        "legacy entry gets SPEC bytes"
    );
    assert_eq!(got.len(), MTYPE_LEN + 76 + 7);
    assert_eq!(r.stats().forwarded, 2);
}

#[test]
fn unknown_destination_answers_tagged_callers_only() {
    let (mut r, mut p, now) = setup();
    let tag = CallTag::request(3).unwrap();
    let mut m = msg(42, "a", "nobody", 42, -1, b"x", Some(tag));
    assert_eq!(
        r.handle(&mut p, &mut m, now),
        Err(Rejected::NoSuchDestination(n("a"), n("nobody")))
    );
    let (mtype, h, pl) = decode(&p.take(11).unwrap());
    assert_eq!(
        (mtype, h.msg_type, h.tag),
        (42, MIPC_MSG_TYPE_ERROR, Some(tag.reply()))
    );
    assert_eq!(
        &pl[..4],
        &(RelayErrorCode::NoSuchDestination as i32).to_ne_bytes()
    );
    assert_eq!(&pl[4..], &42u32.to_ne_bytes());
    // An async message and a legacy caller get nothing back.
    let _ = r.handle(
        &mut p,
        &mut msg(42, "a", "nobody", 42, 0, b"x", Some(tag)),
        now,
    );
    let _ = r.handle(
        &mut p,
        &mut msg(42, "legacy", "nobody", 42, -1, b"x", None),
        now,
    );
    assert_eq!((p.pending(11), p.pending(10)), (0, 0));
}

#[test]
fn malformed_bytes_are_dropped_without_touching_the_table() {
    let (mut r, mut p, now) = setup();
    let before: Vec<_> = r.entries().map(|(k, v)| (*k, v.clone())).collect();
    let mut m = msg(5, "a", "b", 5, 0, b"abc", None);
    m.set_mtext_len(m.mtext_len() - 1);
    assert!(matches!(
        r.handle(&mut p, &mut m, now),
        Err(Rejected::Malformed(_))
    ));
    m.set_mtext_len(10);
    assert!(matches!(
        r.handle(&mut p, &mut m, now),
        Err(Rejected::Malformed(_))
    ));
    let mut after: Vec<_> = r.entries().map(|(k, v)| (*k, v.clone())).collect();
    let mut before = before;
    before.sort_by_key(|(k, _)| k.as_bytes().to_vec());
    after.sort_by_key(|(k, _)| k.as_bytes().to_vec());
    assert_eq!(before, after);
    assert_eq!(p.pending(12), 0);
}

#[test]
fn a_receiver_that_asked_gets_a_sender_trailer_and_the_message_stays_as_received() {
    use mipc::wire::{SENDER_LEN, SENDER_MARK};
    let (mut r, mut p, now) = setup();
    // "b" greets again asking for the sender's pid.
    let mut h = hello("b", QueueId(12), 200);
    let at = MTYPE_LEN + wire::MTEXT_HEADER_LEN + 12;
    h.raw_mut()[at..at + 4].copy_from_slice(&1u32.to_ne_bytes());
    assert_eq!(
        r.handle(&mut p, &mut h, now),
        Ok(Handled::Greeted(n("b"), 200))
    );
    let _ = p.take(12);
    let mut trailer = 100u32.to_ne_bytes().to_vec();
    trailer.extend_from_slice(&SENDER_MARK.to_ne_bytes());
    // Appended where it was received, and taken off again.
    let tag = CallTag::request(9);
    let mut m = msg(5, "a", "b", 5, -1, b"payload", tag);
    let sent = m.as_sendable().to_vec();
    assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded));
    assert_eq!(
        p.take(12).unwrap(),
        [sent.clone(), trailer.clone()].concat()
    );
    assert_eq!(
        m.as_sendable(),
        &sent[..],
        "the received message is unchanged"
    );
    // A reply queue after the tag is not passed on: the message is copied up to its tag.
    let mut m = msg(5, "a", "b", 5, -1, b"payload", tag);
    m.append_reply_queue(77);
    let with_queue = m.as_sendable().to_vec();
    assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded));
    assert_eq!(
        p.take(12).unwrap(),
        [&with_queue[..with_queue.len() - 4], &trailer[..]].concat()
    );
    assert_eq!(m.as_sendable(), &with_queue[..]);
    assert_eq!(trailer.len(), SENDER_LEN);
}
