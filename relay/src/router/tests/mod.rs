//! Router tests over an in-memory port: every routing rule, with the exact bytes delivered.

use super::*;
use crate::mem::MemPort;
use mipc::wire::{
    self, thread_info_bytes, Build, Header, MIPC_MSG_TYPE_ERROR, MIPC_MSG_TYPE_HELLO,
    MIPC_MSG_TYPE_NOTICE, MIPC_MSG_TYPE_PING, MIPC_MSG_TYPE_WAKE, MTYPE_LEN,
};
use std::time::Duration;

fn n(s: &str) -> MipcName {
    MipcName::new(s.as_bytes()).unwrap()
}

fn msg(
    mtype: c_long,
    src: &str,
    dst: &str,
    msg_type: u32,
    sync: i32,
    payload: &[u8],
    tag: Option<CallTag>,
) -> Box<MsgBuf> {
    let mut b = MsgBuf::boxed();
    b.build(Build {
        mtype,
        src: &n(src),
        dst: &n(dst),
        msg_type,
        sync_flag: sync,
        payload,
        tag,
    });
    b
}

fn notice(name: &str, q: QueueId, hold: bool) -> Box<MsgBuf> {
    let info = thread_info_bytes(hold, 7, &n(name), q.0);
    msg(
        MIPC_MSG_TYPE_NOTICE as c_long,
        name,
        "mipc_main",
        MIPC_MSG_TYPE_NOTICE,
        0,
        &info,
        None,
    )
}

fn hello(name: &str, q: QueueId, pid: i32) -> Box<MsgBuf> {
    let mut p = [0u8; 16];
    p[0..4].copy_from_slice(&1u32.to_ne_bytes());
    p[4..8].copy_from_slice(&pid.to_ne_bytes());
    p[8..12].copy_from_slice(&q.0.to_ne_bytes());
    msg(
        MIPC_MSG_TYPE_HELLO as c_long,
        name,
        "mipc_main",
        MIPC_MSG_TYPE_HELLO,
        500,
        &p,
        None,
    )
}

fn decode(bytes: &[u8]) -> (c_long, Header, Vec<u8>) {
    let mut t = [0u8; MTYPE_LEN];
    t.copy_from_slice(&bytes[..MTYPE_LEN]);
    let mtext = &bytes[MTYPE_LEN..];
    let h = wire::decode(mtext).unwrap();
    (
        c_long::from_ne_bytes(t),
        h,
        wire::payload(mtext, &h).to_vec(),
    )
}

/// A router with a legacy entry "legacy" (queue 10), and mipc-rs entries "a" (queue 11,
/// pid 100) and "b" (queue 12, pid 200).
fn setup() -> (Router, MemPort, Instant) {
    let mut r = Router::default();
    let mut p = MemPort::new();
    let now = Instant::now();
    p.live.extend([100, 200]);
    for (name, id, pid) in [
        ("legacy", 10, None),
        ("a", 11, Some(100)),
        ("b", 12, Some(200)),
    ] {
        let q = p.queue(id);
        assert_eq!(
            r.handle(&mut p, &notice(name, q, true), now),
            Ok(Handled::Registered(n(name), q))
        );
        if let Some(pid) = pid {
            assert_eq!(
                r.handle(&mut p, &hello(name, q, pid), now),
                Ok(Handled::Greeted(n(name), pid))
            );
            let (mtype, h, pl) = decode(&p.take(id).unwrap());
            assert_eq!(
                (mtype, h.msg_type, h.src),
                (
                    MIPC_MSG_TYPE_HELLO as c_long,
                    MIPC_MSG_TYPE_HELLO,
                    MipcName::RELAY
                )
            );
            assert_eq!(&pl[4..8], &0i32.to_ne_bytes(), "hello status ok");
        }
    }
    assert_eq!(p.watched, vec![100, 200]);
    (r, p, now)
}

#[test]
fn forwards_the_same_bytes_and_strips_tags_for_legacy_entries() {
    let (mut r, mut p, now) = setup();
    let tag = CallTag::request(9);
    let m = msg(5, "a", "b", 5, -1, b"payload", tag);
    assert_eq!(r.handle(&mut p, &m, now), Ok(Handled::Forwarded));
    assert_eq!(
        p.take(12).unwrap(),
        m.as_sendable(),
        "tagged entry gets the tag"
    );
    let m = msg(5, "a", "legacy", 5, -1, b"payload", tag);
    assert_eq!(r.handle(&mut p, &m, now), Ok(Handled::Forwarded));
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
    let m = msg(42, "a", "nobody", 42, -1, b"x", Some(tag));
    assert_eq!(
        r.handle(&mut p, &m, now),
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
    let _ = r.handle(&mut p, &msg(42, "a", "nobody", 42, 0, b"x", Some(tag)), now);
    let _ = r.handle(
        &mut p,
        &msg(42, "legacy", "nobody", 42, -1, b"x", None),
        now,
    );
    assert_eq!((p.pending(11), p.pending(10)), (0, 0));
}

#[test]
fn a_full_destination_parks_in_order_and_stalls_nobody_else() {
    let (mut r, mut p, now) = setup();
    p.capacity = 1;
    let tags: Vec<CallTag> = (1..=3).map(|i| CallTag::request(i).unwrap()).collect();
    assert_eq!(
        r.handle(
            &mut p,
            &msg(5, "a", "legacy", 5, -1, b"1", Some(tags[0])),
            now
        ),
        Ok(Handled::Forwarded)
    );
    assert_eq!(
        r.handle(
            &mut p,
            &msg(5, "a", "legacy", 5, -1, b"2", Some(tags[1])),
            now
        ),
        Ok(Handled::Parked)
    );
    assert_eq!(
        p.drains,
        vec![n("legacy")],
        "one drainer for the destination"
    );
    // Room appears, but the next message still queues behind the parked one.
    p.take(10);
    assert_eq!(
        r.handle(
            &mut p,
            &msg(5, "a", "legacy", 5, -1, b"3", Some(tags[2])),
            now
        ),
        Ok(Handled::Parked)
    );
    assert_eq!(p.drains.len(), 1);
    // Other traffic is not held up.
    assert_eq!(
        r.handle(&mut p, &msg(6, "a", "b", 6, 0, b"other", None), now),
        Ok(Handled::Forwarded)
    );
    // The drainer sends in order, untagged for the legacy entry, then the backlog is gone.
    let (q, first) = r.next_parked(&n("legacy"), now).unwrap();
    assert_eq!(
        (q, decode(&first.bytes).2, decode(&first.bytes).1.tag),
        (QueueId(10), b"2".to_vec(), None)
    );
    assert_eq!(
        decode(&r.next_parked(&n("legacy"), now).unwrap().1.bytes).2,
        b"3".to_vec()
    );
    assert_eq!(r.next_parked(&n("legacy"), now), None);
    assert_eq!(r.backlog(), (0, 0));
    assert_eq!(r.stats().parked, 2);
    assert_eq!(
        p.pending(11),
        0,
        "no error answer: the calls were delivered"
    );
}

#[test]
fn a_full_backlog_fails_calls_with_busy() {
    let (mut r, mut p, now) = setup();
    p.queues
        .get_mut(&12)
        .unwrap()
        .extend(std::iter::repeat_n(vec![0u8; 8], 8));
    for i in 0..crate::backlog::MAX_ITEMS_PER_DESTINATION as u32 {
        let t = CallTag::request(i + 1);
        assert_eq!(
            r.handle(&mut p, &msg(5, "a", "b", 5, -1, b"x", t), now),
            Ok(Handled::Parked)
        );
    }
    let tag = CallTag::request(9999).unwrap();
    assert_eq!(
        r.handle(&mut p, &msg(5, "a", "b", 5, -1, b"x", Some(tag)), now),
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
        r.handle(&mut p, &msg(5, "a", "b", 5, -1, b"x", Some(tag)), now),
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

#[test]
fn names_of_live_entries_cannot_be_taken_and_only_owners_unregister() {
    let (mut r, mut p, now) = setup();
    let q = p.queue(20);
    // "a" is alive (pid 100): another queue cannot take its name.
    assert_eq!(
        r.handle(&mut p, &notice("a", q, true), now),
        Err(Rejected::NameInUse(n("a")))
    );
    assert_eq!(
        r.handle(&mut p, &hello("a", q, 300), now),
        Err(Rejected::NameInUse(n("a")))
    );
    let (_, h, pl) = decode(&p.take(20).unwrap());
    assert_eq!(h.msg_type, MIPC_MSG_TYPE_HELLO);
    assert_eq!(&pl[4..8], &(RelayErrorCode::NameInUse as i32).to_ne_bytes());
    // Unregistering with the wrong queue is refused; with the right one it works.
    assert_eq!(
        r.handle(&mut p, &notice("a", q, false), now),
        Err(Rejected::NotOwner(n("a")))
    );
    assert_eq!(r.entry(&n("a")).unwrap().queue, QueueId(11));
    assert_eq!(
        r.handle(&mut p, &notice("a", QueueId(11), false), now),
        Ok(Handled::Unregistered(n("a")))
    );
    assert!(r.entry(&n("a")).is_none());
    // A dead holder's name can be taken; its queue is removed.
    p.live.remove(&200);
    assert_eq!(
        r.handle(&mut p, &notice("b", q, true), now),
        Ok(Handled::Registered(n("b"), q))
    );
    assert_eq!(p.removed, vec![12]);
    // A legacy holder cannot prove it lives: a restarted legacy daemon takes its name back,
    // and the old queue is left alone.
    let q2 = p.queue(21);
    assert_eq!(
        r.handle(&mut p, &notice("legacy", q2, true), now),
        Ok(Handled::Registered(n("legacy"), q2))
    );
    assert!(p.queue_exists(QueueId(10)));
}

#[test]
fn notices_for_missing_queues_or_other_names_are_refused() {
    let (mut r, mut p, now) = setup();
    assert_eq!(
        r.handle(&mut p, &notice("x", QueueId(99), true), now),
        Err(Rejected::NoQueue(n("x"), QueueId(99)))
    );
    let q = p.queue(30);
    let info = thread_info_bytes(true, 1, &n("b"), q.0);
    let forged = msg(
        MIPC_MSG_TYPE_NOTICE as c_long,
        "x",
        "mipc_main",
        MIPC_MSG_TYPE_NOTICE,
        0,
        &info,
        None,
    );
    assert_eq!(
        r.handle(&mut p, &forged, now),
        Err(Rejected::BadNotice(n("x")))
    );
    let short = msg(
        MIPC_MSG_TYPE_NOTICE as c_long,
        "x",
        "mipc_main",
        MIPC_MSG_TYPE_NOTICE,
        0,
        &info[1..],
        None,
    );
    assert_eq!(
        r.handle(&mut p, &short, now),
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
        let out = r.handle(&mut p, &notice(name, q, true), now);
        if i < 2 {
            assert!(out.is_ok());
        } else {
            assert_eq!(out, Err(Rejected::TableFull(n(name))));
        }
    }
}

#[test]
fn ping_to_the_relay_is_answered_with_int_zero() {
    let (mut r, mut p, now) = setup();
    let ping = MIPC_MSG_TYPE_PING;
    assert_eq!(
        r.handle(
            &mut p,
            &msg(ping as c_long, "legacy", "mipc_main", ping, -1, &[], None),
            now
        ),
        Ok(Handled::Ponged)
    );
    let (mtype, h, pl) = decode(&p.take(10).unwrap());
    assert_eq!(
        (mtype, h.msg_type, h.tag, pl),
        (ping as c_long, ping, None, 0i32.to_ne_bytes().to_vec())
    );
    let tag = CallTag::request(77).unwrap();
    assert_eq!(
        r.handle(
            &mut p,
            &msg(ping as c_long, "a", "mipc_main", ping, -1, &[], Some(tag)),
            now
        ),
        Ok(Handled::Ponged)
    );
    assert_eq!(decode(&p.take(11).unwrap()).1.tag, Some(tag.reply()));
}

#[test]
fn reserved_types_are_not_forwarded() {
    let (mut r, mut p, now) = setup();
    for t in [
        MIPC_MSG_TYPE_WAKE,
        MIPC_MSG_TYPE_ERROR,
        MIPC_MSG_TYPE_NOTICE,
        0x7FFF_FFFF,
    ] {
        let out = r.handle(&mut p, &msg(t as c_long, "a", "b", t, 0, &[], None), now);
        assert_eq!(out, Err(Rejected::Control(t, n("a"))));
    }
    // PING to an entry is an application call: forwarded.
    let ping = MIPC_MSG_TYPE_PING;
    assert_eq!(
        r.handle(
            &mut p,
            &msg(ping as c_long, "a", "b", ping, -1, &[], None),
            now
        ),
        Ok(Handled::Forwarded)
    );
    assert_eq!(p.pending(12), 1);
}

#[test]
fn calls_waiting_on_a_dead_peer_fail_and_its_queues_go() {
    let (mut r, mut p, now) = setup();
    let tag = CallTag::request(11).unwrap();
    assert_eq!(
        r.handle(&mut p, &msg(8, "a", "b", 8, -1, b"q", Some(tag)), now),
        Ok(Handled::Forwarded)
    );
    assert_eq!(
        r.entry(&n("a")).unwrap().pending.map(|x| x.callee),
        Some(n("b"))
    );
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
}

#[test]
fn an_answer_clears_the_pending_call() {
    let (mut r, mut p, now) = setup();
    let tag = CallTag::request(5).unwrap();
    r.handle(&mut p, &msg(8, "a", "b", 8, -1, b"q", Some(tag)), now)
        .unwrap();
    r.handle(
        &mut p,
        &msg(8, "b", "a", 8, 0, b"answer", Some(tag.reply())),
        now,
    )
    .unwrap();
    assert!(r.entry(&n("a")).unwrap().pending.is_none());
    let (_, h, pl) = decode(&p.take(11).unwrap());
    assert_eq!((h.tag, pl), (Some(tag.reply()), b"answer".to_vec()));
}

#[test]
fn a_call_that_closes_a_cycle_is_refused() {
    let (mut r, mut p, now) = setup();
    let t1 = CallTag::request(1).unwrap();
    let t2 = CallTag::request(2).unwrap();
    r.handle(&mut p, &msg(8, "a", "b", 8, 1000, b"", Some(t1)), now)
        .unwrap();
    assert_eq!(
        decode(&p.take(12).unwrap()).1.tag,
        Some(t1),
        "b got a's request"
    );
    assert_eq!(
        r.handle(&mut p, &msg(9, "b", "a", 9, 1000, b"", Some(t2)), now),
        Err(Rejected::Deadlock(n("b"), n("a")))
    );
    let (_, h, pl) = decode(&p.take(12).unwrap());
    assert_eq!((h.msg_type, h.tag), (MIPC_MSG_TYPE_ERROR, Some(t2.reply())));
    assert_eq!(&pl[..4], &(RelayErrorCode::Deadlock as i32).to_ne_bytes());
    // Once a's call has timed out, b may call a.
    let later = now + Duration::from_millis(1001);
    assert_eq!(
        r.handle(&mut p, &msg(9, "b", "a", 9, 1000, b"", Some(t2)), later),
        Ok(Handled::Forwarded)
    );
}

#[test]
fn malformed_bytes_are_dropped_without_touching_the_table() {
    let (mut r, mut p, now) = setup();
    let before: Vec<_> = r.entries().map(|(k, v)| (*k, v.clone())).collect();
    let mut m = msg(5, "a", "b", 5, 0, b"abc", None);
    m.set_mtext_len(m.mtext_len() - 1);
    assert!(matches!(
        r.handle(&mut p, &m, now),
        Err(Rejected::Malformed(_))
    ));
    m.set_mtext_len(10);
    assert!(matches!(
        r.handle(&mut p, &m, now),
        Err(Rejected::Malformed(_))
    ));
    let mut after: Vec<_> = r.entries().map(|(k, v)| (*k, v.clone())).collect();
    let mut before = before;
    before.sort_by_key(|(k, _)| k.as_bytes().to_vec());
    after.sort_by_key(|(k, _)| k.as_bytes().to_vec());
    assert_eq!(before, after);
    assert_eq!(p.pending(12), 0);
}

// ---- tools (docs/PROTOCOL.md §7-8) ----

fn tool_request(body: mipc::wire::tool::RequestBody, reply: QueueId) -> Box<MsgBuf> {
    use mipc::wire::tool::{Request, RequestHead};
    let req = Request {
        head: RequestHead {
            pid: 300,
            reply_queue: reply.0,
            request_id: 5,
        },
        body,
    };
    let mut payload = Vec::new();
    req.encode(&mut payload);
    msg(
        req.msg_type() as c_long,
        "mipc-tool",
        "mipc_main",
        req.msg_type(),
        0,
        &payload,
        None,
    )
}

fn events(p: &mut MemPort, q: i32) -> Vec<(mipc::wire::tool::EventKind, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(b) = p.take(q) {
        let rec = mipc::wire::tool::EventRecord::decode(&b[MTYPE_LEN..]).unwrap();
        out.push((rec.kind, rec.msg.to_vec()));
    }
    out
}

#[test]
fn a_monitor_gets_a_copy_of_each_message_and_no_monitor_costs_no_send() {
    use mipc::wire::tool::{EventKind, RequestBody};
    let (mut r, mut p, now) = setup();
    let m = msg(5, "a", "b", 5, 0, b"x", None);
    assert_eq!(r.handle(&mut p, &m, now), Ok(Handled::Forwarded));
    assert_eq!(
        p.queues.len(),
        3,
        "no monitor: only the entries' queues were written"
    );
    p.take(12);
    let mon = p.queue(40);
    p.live.insert(300);
    let attach = tool_request(RequestBody::MonitorAttach { flags: 0 }, mon);
    assert_eq!(r.handle(&mut p, &attach, now), Ok(Handled::Tool));
    p.take(40).expect("attach answered");
    assert!(p.watched.contains(&300), "the monitor's process is watched");
    assert_eq!(r.handle(&mut p, &m, now), Ok(Handled::Forwarded));
    let nobody = msg(
        5,
        "a",
        "nobody",
        5,
        1000,
        b"y",
        Some(CallTag::request(3).unwrap()),
    );
    assert!(r.handle(&mut p, &nobody, now).is_err());
    let got = events(&mut p, 40);
    let kinds: Vec<EventKind> = got.iter().map(|e| e.0).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Message,
            EventKind::Rejected,
            EventKind::ErrorAnswer
        ],
        "the request before the relay's answer to it"
    );
    assert_eq!(got[0].1, m.mtext());
    // The monitor's process dies: detached, its queue removed, nothing more sent.
    r.peer_died(&mut p, 300);
    assert!(p.removed.contains(&40));
    assert_eq!(r.handle(&mut p, &m, now), Ok(Handled::Forwarded));
    assert!(events(&mut p, 40).is_empty());
}

#[test]
fn a_forged_tool_request_never_writes_into_an_entry_or_the_root_queue() {
    use mipc::wire::tool::RequestBody;
    let (mut r, mut p, now) = setup();
    let root = p.queue(1);
    r.set_root(root);
    for target in [QueueId(11), root] {
        for body in [
            RequestBody::Stats,
            RequestBody::List { cursor: 0 },
            RequestBody::MonitorAttach { flags: 0 },
        ] {
            assert!(r.handle(&mut p, &tool_request(body, target), now).is_err());
            assert_eq!(p.pending(target.0), 0, "{body:?} to {target:?}");
        }
    }
}

#[test]
fn no_direct_route_while_a_monitor_is_attached_and_earlier_ones_are_dropped() {
    use mipc::wire::tool::{RequestBody, MIPC_MSG_TYPE_DROP_ROUTES};
    let (mut r, mut p, now) = setup();
    let lookup = |tag: u32| {
        msg(
            mipc::wire::MIPC_MSG_TYPE_LOOKUP as c_long,
            "a",
            "mipc_main",
            mipc::wire::MIPC_MSG_TYPE_LOOKUP,
            500,
            n("b").field(),
            Some(CallTag::request(tag).unwrap()),
        )
    };
    assert_eq!(r.handle(&mut p, &lookup(1), now), Ok(Handled::LookedUp));
    let (_, _, pl) = decode(&p.take(11).unwrap());
    assert_eq!(&pl[0..4], &0i32.to_ne_bytes(), "direct while unmonitored");
    let mon = p.queue(40);
    let attach = tool_request(RequestBody::MonitorAttach { flags: 0 }, mon);
    assert_eq!(r.handle(&mut p, &attach, now), Ok(Handled::Tool));
    let (mtype, h, _) = decode(&p.take(11).expect("a is told to drop its routes"));
    assert_eq!(
        (mtype, h.msg_type),
        (
            MIPC_MSG_TYPE_DROP_ROUTES as c_long,
            MIPC_MSG_TYPE_DROP_ROUTES
        )
    );
    assert_eq!(r.handle(&mut p, &lookup(2), now), Ok(Handled::LookedUp));
    let (_, _, pl) = decode(&p.take(11).unwrap());
    assert_eq!(&pl[0..4], &9i32.to_ne_bytes(), "monitored: use the relay");
}
