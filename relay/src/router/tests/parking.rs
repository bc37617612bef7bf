//! Full queues: backlogs in order, their bound, and calls parked for a destination that dies.

use super::*;

#[test]
fn a_full_destination_parks_in_order_and_stalls_nobody_else() {
    let (mut r, mut p, now) = setup();
    p.capacity = 1;
    let tags: Vec<CallTag> = (1..=3).map(|i| CallTag::request(i).unwrap()).collect();
    assert_eq!(
        r.handle(
            &mut p,
            &mut msg(5, "a", "legacy", 5, -1, b"1", Some(tags[0])),
            now
        ),
        Ok(Handled::Forwarded)
    );
    assert_eq!(
        r.handle(
            &mut p,
            &mut msg(5, "a", "legacy", 5, -1, b"2", Some(tags[1])),
            now
        ),
        Ok(Handled::Parked)
    );
    assert!(p.drains.is_empty(), "the receive loop answers for it first");
    assert!(r.backlogs_without_drainer());
    // The loop is about to sleep: a drainer takes the backlog over.
    assert_eq!(r.hand_off_backlogs(&mut p), 1);
    assert_eq!(
        p.drains,
        vec![n("legacy")],
        "one drainer for the destination"
    );
    assert!(!r.backlogs_without_drainer());
    // Room appears (for one): the next message sends the parked one first, untagged for the
    // legacy entry, and waits behind nothing else but the full queue.
    assert_eq!(decode(&p.take(10).unwrap()).2, b"1".to_vec());
    assert_eq!(
        r.handle(
            &mut p,
            &mut msg(5, "a", "legacy", 5, -1, b"3", Some(tags[2])),
            now
        ),
        Ok(Handled::Parked)
    );
    assert_eq!(p.drains.len(), 1, "the same backlog, the same drainer");
    assert_eq!(r.hand_off_backlogs(&mut p), 0, "it has its drainer");
    // Other traffic is not held up.
    assert_eq!(
        r.handle(&mut p, &mut msg(6, "a", "b", 6, 0, b"other", None), now),
        Ok(Handled::Forwarded)
    );
    // The drainer finds the queue still full, then sends the rest once there is room, and
    // the backlog is gone.
    assert_eq!(
        r.drain_parked(&mut p, &n("legacy"), now),
        Drained::Waiting { sent: 0, bytes: 0 }
    );
    let second = p.take(10).unwrap();
    assert_eq!(
        (decode(&second).2, decode(&second).1.tag),
        (b"2".to_vec(), None)
    );
    assert_eq!(r.drain_parked(&mut p, &n("legacy"), now), Drained::Done);
    assert_eq!(decode(&p.take(10).unwrap()).2, b"3".to_vec());
    assert!(p.take(10).is_none());
    assert_eq!(r.backlog(), (0, 0));
    assert_eq!(r.stats().parked, 2);
    assert_eq!(
        p.pending(11),
        0,
        "no error answer: the calls were delivered"
    );
}

/// A queue full for a moment, as under a flood: the receive loop sends the backlog ahead of
/// new messages, two for one, and ends it once it is empty, with no drainer woken.
#[test]
fn a_backlog_the_receive_loop_answers_for_shrinks_and_ends_without_a_drainer() {
    let (mut r, mut p, now) = setup();
    p.capacity = 2;
    let send = |r: &mut Router, p: &mut MemPort, i: u8| {
        r.handle(p, &mut msg(6, "a", "b", 6, 0, &[i], None), now)
    };
    for i in 1..=2 {
        assert_eq!(send(&mut r, &mut p, i), Ok(Handled::Forwarded));
    }
    for i in 3..=5 {
        assert_eq!(send(&mut r, &mut p, i), Ok(Handled::Parked));
    }
    assert_eq!(r.backlog().1, 3);
    // The receiver reads all and has room again: each new message sends two parked ones
    // first and goes behind the rest, so the backlog shrinks, then ends.
    let mut got: Vec<u8> = std::iter::from_fn(|| p.take(12))
        .map(|m| decode(&m).2[0])
        .collect();
    p.capacity = 16;
    assert_eq!(send(&mut r, &mut p, 6), Ok(Handled::Parked));
    assert_eq!(r.backlog().1, 2, "3 and 4 sent, 6 behind 5");
    assert_eq!(send(&mut r, &mut p, 7), Ok(Handled::Forwarded));
    assert_eq!(r.backlog(), (0, 0));
    assert!(!r.backlogs_without_drainer(), "the backlog ended");
    assert_eq!(r.hand_off_backlogs(&mut p), 0);
    assert!(p.drains.is_empty(), "no drainer woken");
    got.extend(std::iter::from_fn(|| p.take(12)).map(|m| decode(&m).2[0]));
    assert_eq!(got, (1..=7).collect::<Vec<u8>>(), "in order, none lost");
    assert_eq!(r.stats().parked, 4);
}

/// What goes in batches: the one-way tagged requests of one type parked for an entry that
/// asked for batches. A sync request, a legacy sender's untagged message and a request of
/// another type go alone, in their place; nothing goes in a batch to an entry that did not
/// ask.
#[test]
fn only_one_way_requests_to_an_entry_that_asked_go_in_batches() {
    for asked in [true, false] {
        let (mut r, mut p, now) = setup();
        // What is read in a row goes in batches too (`gather.rs`, its own tests): here the
        // backlog alone decides.
        r.set_gathering(false);
        let flags = if asked {
            mipc::wire::control::HELLO_FLAG_BATCH
        } else {
            0
        };
        assert_eq!(
            r.handle(&mut p, &mut hello_asking("b", QueueId(12), 200, flags), now),
            Ok(Handled::Greeted(n("b"), 200))
        );
        p.take(12).expect("the greeting's answer");
        p.capacity = 1;
        let tag = |i: u32| CallTag::request(i);
        let sent = [
            msg(6, "a", "b", 6, 0, b"1", tag(1)),
            msg(6, "a", "b", 6, 0, b"2", tag(2)),
            msg(6, "a", "b", 6, 0, b"3", tag(3)),
            msg(6, "a", "b", 6, -1, b"4", tag(4)),
            msg(6, "a", "b", 6, 0, b"5", tag(5)),
            msg(6, "a", "b", 6, 0, b"6", tag(6)),
            msg(7, "a", "b", 7, 0, b"7", tag(7)),
            msg(7, "a", "b", 7, 0, b"8", tag(8)),
            msg(6, "legacy", "b", 6, 0, b"9", None),
            msg(6, "a", "b", 6, 0, b"A", tag(9)),
        ];
        for (i, mut m) in sent.into_iter().enumerate() {
            let want = if i == 0 {
                Handled::Forwarded
            } else {
                Handled::Parked
            };
            assert_eq!(r.handle(&mut p, &mut m, now), Ok(want), "message {i}");
        }
        // The receiver reads one message at a time; a drainer refills the queue.
        let mut got: Vec<String> = Vec::new();
        for _ in 0..12 {
            let Some(m) = p.take(12) else { break };
            got.push(carried(&m));
            let _ = r.drain_parked(&mut p, &n("b"), now);
        }
        let want: &[&str] = if asked {
            &["1", "23", "4", "56", "78", "9", "A"]
        } else {
            &["1", "2", "3", "4", "5", "6", "7", "8", "9", "A"]
        };
        assert_eq!(got, want, "asked for batches: {asked}");
        assert_eq!(r.backlog(), (0, 0));
    }
}

/// Fills queue `id` of the in-memory port to its capacity, so that what is sent to it parks.
fn fill_queue(p: &mut MemPort, id: i32) {
    let room = p.capacity;
    p.queues
        .get_mut(&id)
        .unwrap()
        .extend(std::iter::repeat_n(vec![0u8; 8], room));
}

#[test]
fn a_full_backlog_drops_async_messages_and_delivers_what_it_holds_in_order() {
    let (mut r, mut p, now) = setup();
    fill_queue(&mut p, 12);
    let max = crate::backlog::MAX_ITEMS_PER_DESTINATION as u32;
    for i in 0..max {
        assert_eq!(
            r.handle(
                &mut p,
                &mut msg(6, "a", "b", 6, 0, &i.to_ne_bytes(), None),
                now
            ),
            Ok(Handled::Parked)
        );
    }
    let (held, rejected) = (r.backlog(), r.stats().rejected);
    assert_eq!(
        r.handle(&mut p, &mut msg(6, "a", "b", 6, 0, b"late", None), now),
        Err(Rejected::Busy(n("b")))
    );
    assert_eq!(r.backlog(), held, "nothing more parked");
    assert_eq!(r.stats().rejected, rejected + 1, "the drop is counted");
    assert_eq!(p.pending(11), 0, "an async sender gets no answer");
    // Room: what was held goes out in order, the dropped message nowhere.
    p.queues.get_mut(&12).unwrap().clear();
    p.capacity = usize::MAX;
    assert_eq!(r.drain_parked(&mut p, &n("b"), now), Drained::Done);
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| p.take(12))
        .map(|m| decode(&m).2)
        .collect();
    let want: Vec<Vec<u8>> = (0..max).map(|i| i.to_ne_bytes().to_vec()).collect();
    assert_eq!(got, want);
    assert_eq!(r.backlog(), (0, 0));
}

#[test]
fn a_full_backlog_fails_calls_with_busy() {
    let (mut r, mut p, now) = setup();
    fill_queue(&mut p, 12);
    for i in 0..crate::backlog::MAX_ITEMS_PER_DESTINATION as u32 {
        let t = CallTag::request(i + 1);
        assert_eq!(
            r.handle(&mut p, &mut msg(5, "a", "b", 5, -1, b"x", t), now),
            Ok(Handled::Parked)
        );
    }
    let tag = CallTag::request(9999).unwrap();
    assert_eq!(
        r.handle(&mut p, &mut msg(5, "a", "b", 5, -1, b"x", Some(tag)), now),
        Err(Rejected::Busy(n("b")))
    );
    p.capacity = 8;
    let (_, h, pl) = decode(&p.take(11).unwrap());
    assert_eq!(
        (h.msg_type, h.tag),
        (MIPC_MSG_TYPE_ERROR, Some(tag.reply()))
    );
    assert_eq!(
        &pl[..4],
        &(RelayErrorCode::DestinationBusy as i32).to_ne_bytes()
    );
}

#[test]
fn parked_calls_fail_when_their_destination_dies() {
    let (mut r, mut p, now) = setup();
    p.capacity = 0;
    let tag = CallTag::request(4).unwrap();
    assert_eq!(
        r.handle(&mut p, &mut msg(5, "a", "b", 5, -1, b"x", Some(tag)), now),
        Ok(Handled::Parked)
    );
    p.capacity = 8;
    p.live.remove(&200);
    r.peer_died(&mut p, 200);
    let (_, h, pl) = decode(&p.take(11).unwrap());
    assert_eq!(
        (h.msg_type, h.tag),
        (MIPC_MSG_TYPE_ERROR, Some(tag.reply()))
    );
    assert_eq!(&pl[..4], &(RelayErrorCode::PeerDied as i32).to_ne_bytes());
    assert_eq!(r.backlog(), (0, 0));
}
