//! NOTICE registrations: who may take or drop a name, which queues, the table's ceiling.

use super::*;

#[test]
fn names_of_live_entries_cannot_be_taken_and_only_owners_unregister() {
    let (mut r, mut p, now) = setup();
    let q = p.queue(20);
    // "a" is alive (pid 100): another queue cannot take its name.
    assert_eq!(
        r.handle(&mut p, &mut notice("a", q, true), now),
        Err(Rejected::NameInUse(n("a")))
    );
    assert_eq!(
        r.handle(&mut p, &mut hello("a", q, 300), now),
        Err(Rejected::NameInUse(n("a")))
    );
    let (_, h, pl) = decode(&p.take(20).unwrap());
    assert_eq!(h.msg_type, MIPC_MSG_TYPE_HELLO);
    assert_eq!(&pl[4..8], &(RelayErrorCode::NameInUse as i32).to_ne_bytes());
    // Unregistering with the wrong queue is refused; with the right one it works.
    assert_eq!(
        r.handle(&mut p, &mut notice("a", q, false), now),
        Err(Rejected::NotOwner(n("a")))
    );
    assert_eq!(r.entry(&n("a")).unwrap().queue, QueueId(11));
    assert_eq!(
        r.handle(&mut p, &mut notice("a", QueueId(11), false), now),
        Ok(Handled::Unregistered(n("a")))
    );
    assert!(r.entry(&n("a")).is_none());
    // A dead holder's name can be taken; its queue is removed.
    p.live.remove(&200);
    assert_eq!(
        r.handle(&mut p, &mut notice("b", q, true), now),
        Ok(Handled::Registered(n("b"), q))
    );
    assert_eq!(p.removed, vec![12]);
    // A legacy holder cannot prove it lives: a restarted legacy daemon takes its name back,
    // and the old queue is left alone.
    let q2 = p.queue(21);
    assert_eq!(
        r.handle(&mut p, &mut notice("legacy", q2, true), now),
        Ok(Handled::Registered(n("legacy"), q2))
    );
    assert!(p.queue_exists(QueueId(10)));
}

#[test]
fn notices_for_missing_queues_or_other_names_are_refused() {
    let (mut r, mut p, now) = setup();
    assert_eq!(
        r.handle(&mut p, &mut notice("x", QueueId(99), true), now),
        Err(Rejected::NoQueue(n("x"), QueueId(99)))
    );
    let q = p.queue(30);
    let info = thread_info_bytes(true, 1, &n("b"), q.0);
    let mut forged = msg(
        MIPC_MSG_TYPE_NOTICE as c_long,
        "x",
        "mipc_main",
        MIPC_MSG_TYPE_NOTICE,
        0,
        &info,
        None,
    );
    assert_eq!(
        r.handle(&mut p, &mut forged, now),
        Err(Rejected::BadNotice(n("x")))
    );
    let mut short = msg(
        MIPC_MSG_TYPE_NOTICE as c_long,
        "x",
        "mipc_main",
        MIPC_MSG_TYPE_NOTICE,
        0,
        &info[1..],
        None,
    );
    assert_eq!(
        r.handle(&mut p, &mut short, now),
        Err(Rejected::BadNotice(n("x")))
    );
}

#[test]
fn the_table_has_a_ceiling() {
    let mut r = Router::new(2);
    let mut p = MemPort::new();
    let now = Instant::now();
    for (i, name) in ["e0", "e1", "e2"].iter().enumerate() {
        let q = p.queue(i as i32);
        let out = r.handle(&mut p, &mut notice(name, q, true), now);
        if i < 2 {
            assert!(out.is_ok());
        } else {
            assert_eq!(out, Err(Rejected::TableFull(n(name))));
        }
    }
}

/// A death notice (docs/PROTOCOL.md §4) counts only from the relay itself and only for a
/// process that exited: then it drops that process's entries.
#[test]
fn death_notices_count_only_from_the_relay_for_exited_processes() {
    let (mut r, mut p, now) = setup();
    let died = |src: &str, pid: i32| {
        let mut b = MsgBuf::boxed();
        b.build_control(
            wire::Envelope {
                mtype: wire::Kind::Died.mtype(),
                src: &n(src),
                dst: &MipcName::RELAY,
                sync_flag: 0,
                tag: None,
            },
            &mipc::wire::control::Died { pid },
        );
        b
    };
    let refused = Err(Rejected::Control(wire::Kind::Died.msg_type(), n("a")));
    // Forged by an entry, or about a live process: nothing changes.
    assert_eq!(r.handle(&mut p, &mut died("a", 200), now), refused);
    let refused = Err(Rejected::Control(
        wire::Kind::Died.msg_type(),
        MipcName::RELAY,
    ));
    assert_eq!(r.handle(&mut p, &mut died("mipc_main", 200), now), refused);
    assert!(r.entry(&n("b")).is_some());
    // The relay's own notice about a process that exited drops its entries and queue.
    p.live.remove(&200);
    assert_eq!(
        r.handle(&mut p, &mut died("mipc_main", 200), now),
        Ok(Handled::Died(200, vec![n("b")]))
    );
    assert!(r.entry(&n("b")).is_none());
    assert_eq!(p.removed, vec![12]);
}
