//! Answers straight back (`answer_back.rs`, docs/PROTOCOL.md §11): the offer a sync request
//! carries to a server that asked for it, the cases where the relay makes none, the count of
//! the server's messages behind its stamp, and ANSWERED, a library's word that calls it
//! answered straight back are over.

use super::*;
use mipc::wire::control::{HELLO_FLAG_ANSWER_BACK, HELLO_FLAG_SENDER};
use mipc::wire::tool::{Counter, RequestBody};
use mipc::wire::{answered, Kind, Offer, SENDER_MARK};

/// What a server that answers straight back asks for in its HELLO: the sender's pid and the
/// offers.
const ANSWERS_BACK: u32 = HELLO_FLAG_SENDER | HELLO_FLAG_ANSWER_BACK;

/// `setup()`, with "b" greeted again with `flags` (its count of messages read starts at 0).
/// The router offers to every caller (`Offering::Always`): most tests here have one caller,
/// whose calls a router made as the relay's default leaves at four hops.
fn setup_greeting_b(flags: u32) -> (Router, MemPort, Instant) {
    let (mut r, mut p, now) = setup();
    r.set_answering_back(Offering::Always);
    greet_b(&mut r, &mut p, now, flags);
    (r, p, now)
}

/// "b" greets again with `flags`; the greeting's answer is taken off its queue.
fn greet_b(r: &mut Router, p: &mut MemPort, now: Instant, flags: u32) {
    assert_eq!(
        r.handle(p, &mut hello_asking("b", QueueId(12), 200, flags), now),
        Ok(Handled::Greeted(n("b"), 200))
    );
    p.take(12).expect("the greeting's answer");
}

/// The place of `name`'s entry in the relay's table, as an offer names it.
fn slot(r: &Router, name: &str) -> u32 {
    r.entries.find(&n(name)).unwrap().index() as u32
}

/// A sync request (no timeout) from `src` to `dst` of api 8 with call id `id`.
fn call(src: &str, dst: &str, id: u32, payload: &[u8]) -> Box<MsgBuf> {
    msg(8, src, dst, 8, -1, payload, CallTag::request(id))
}

/// `count` one-way messages from "b" to "a", each forwarded, taken off a's queue.
fn b_tells_a(r: &mut Router, p: &mut MemPort, now: Instant, count: u8) {
    for i in 0..count {
        assert_eq!(
            r.handle(p, &mut msg(6, "b", "a", 6, 0, &[i], None), now),
            Ok(Handled::Forwarded),
            "message {i}"
        );
        assert_eq!(decode(&p.take(11).unwrap()).2, [i]);
    }
}

/// The bytes of an offer as the relay puts them after the tag.
fn offer_bytes(queue: i32, slot: u32, stamp: u32) -> Vec<u8> {
    [queue.to_ne_bytes(), slot.to_ne_bytes(), stamp.to_ne_bytes()].concat()
}

/// The bytes of a sender trailer for `pid`.
fn trailer(pid: u32) -> Vec<u8> {
    [pid.to_ne_bytes(), SENDER_MARK.to_ne_bytes()].concat()
}

/// An ANSWERED from `src` to the relay with `payload` as it is.
fn answered_raw(src: &str, payload: &[u8]) -> Box<MsgBuf> {
    let t = Kind::Answered.msg_type();
    msg(t as c_long, src, "mipc_main", t, 0, payload, None)
}

/// An ANSWERED from `src` naming `calls`, each (caller's slot, call id), of a's process (100).
fn answered_msg(src: &str, calls: &[(u32, u32)]) -> Box<MsgBuf> {
    answered_by(
        src,
        &calls
            .iter()
            .map(|&(s, id)| (s, id, 100))
            .collect::<Vec<_>>(),
    )
}

/// An ANSWERED from `src` naming `calls`, each (caller's slot, call id, caller's process).
fn answered_by(src: &str, calls: &[(u32, u32, u32)]) -> Box<MsgBuf> {
    let calls: Vec<answered::Answered> = calls
        .iter()
        .map(|&(slot, id, caller_pid)| answered::Answered {
            slot,
            tag: CallTag::request(id).unwrap(),
            caller_pid,
        })
        .collect();
    let mut payload = Vec::new();
    answered::encode(&calls, &mut payload);
    answered_raw(src, &payload)
}

/// Sends a's sync request `id` to "b" and returns what b's queue got and what the request
/// was as received (`mtype` first).
fn a_calls_b(r: &mut Router, p: &mut MemPort, now: Instant, id: u32) -> (Vec<u8>, Vec<u8>) {
    let mut m = call("a", "b", id, b"question");
    let sent = m.as_sendable().to_vec();
    assert_eq!(
        r.handle(p, &mut m, now),
        Ok(Handled::Forwarded),
        "call {id}"
    );
    assert_eq!(
        m.as_sendable(),
        &sent[..],
        "the received message is unchanged"
    );
    (p.take(12).expect("b got the request"), sent)
}

/// The counter of calls answered straight back, as `mipc stats` shows it.
fn answered_back(r: &Router, now: Instant) -> Option<u64> {
    r.stats_report(now).get(Counter::AnsweredBack as u32)
}

/// A sync request from a greeted caller to an entry that asked for offers goes with one
/// between its tag and its sender trailer: the caller's queue, the caller's place in the
/// table (where its pending call is kept too) and the stamp, the messages read from the
/// server since its HELLO. Body and tag are as received; the receive buffer is put back.
#[test]
fn a_sync_request_to_an_entry_that_answers_back_carries_an_offer() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    b_tells_a(&mut r, &mut p, now, 3);
    let tag = CallTag::request(5).unwrap();
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 5);
    let a = slot(&r, "a");
    assert_eq!(
        got,
        [sent, offer_bytes(11, a, 3), trailer(100)].concat(),
        "the request, the offer, the trailer"
    );
    let (mtype, h, pl) = decode(&got);
    assert_eq!(
        (mtype, h.src, h.dst, h.msg_type, h.sync_flag, h.tag),
        (8, n("a"), n("b"), 8, -1, Some(tag))
    );
    assert_eq!(pl, b"question");
    assert_eq!(
        (h.reply_queue, h.offer, h.sender_pid),
        (
            Some(11),
            Some(Offer {
                slot: a,
                stamp: 3,
                caller_pid: 100
            }),
            Some(100)
        )
    );
    assert_eq!(
        r.entry(&n("a")).unwrap().pending.map(|x| (x.callee, x.tag)),
        Some((n("b"), tag)),
        "the call is pending"
    );
    let kept: Vec<usize> = p.pending.keys().copied().collect();
    assert_eq!(kept, [a as usize], "the offer's slot is the caller's own");
    assert_eq!(p.pending(12), 0);
}

/// The stamp counts every message of the server's entry the relay read, whatever became of
/// it: forwarded, refused, to the relay itself (an ANSWERED too), an answer through the
/// relay; not the messages of other entries, nor those to the server.
#[test]
fn the_stamp_counts_every_message_read_from_the_server() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    b_tells_a(&mut r, &mut p, now, 1);
    assert_eq!(
        r.handle(&mut p, &mut msg(6, "b", "nobody", 6, 0, b"x", None), now),
        Err(Rejected::NoSuchDestination(n("b"), n("nobody")))
    );
    let ping = MIPC_MSG_TYPE_PING;
    assert_eq!(
        r.handle(
            &mut p,
            &mut msg(ping as c_long, "b", "mipc_main", ping, -1, &[], None),
            now
        ),
        Ok(Handled::Ponged)
    );
    p.take(12).expect("the ping's answer");
    assert_eq!(
        r.handle(&mut p, &mut answered_msg("b", &[(0, 1)]), now),
        Ok(Handled::AnsweredBack(0))
    );
    // Others' messages, to "b" or not, are not its own.
    for (src, dst) in [("a", "legacy"), ("legacy", "a"), ("legacy", "b")] {
        assert_eq!(
            r.handle(&mut p, &mut msg(6, src, dst, 6, 0, b"y", None), now),
            Ok(Handled::Forwarded)
        );
    }
    p.queues.values_mut().for_each(|q| q.clear());
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 5);
    let a = slot(&r, "a");
    assert_eq!(got, [sent, offer_bytes(11, a, 4), trailer(100)].concat());
    // b answers through the relay: one more of b's.
    let tag = CallTag::request(5).unwrap();
    assert_eq!(
        r.handle(
            &mut p,
            &mut msg(8, "b", "a", 8, 0, b"answer", Some(tag.reply())),
            now
        ),
        Ok(Handled::Forwarded)
    );
    assert_eq!(decode(&p.take(11).unwrap()).2, b"answer");
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 6);
    assert_eq!(got, [sent, offer_bytes(11, a, 5), trailer(100)].concat());
}

/// A HELLO starts the count again: the library counts what its entry sends from the
/// greeting's answer on. Greeted again without the flag, the entry gets no more offers.
#[test]
fn a_hello_starts_the_count_again() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    b_tells_a(&mut r, &mut p, now, 2);
    let a = slot(&r, "a");
    let (got, _) = a_calls_b(&mut r, &mut p, now, 1);
    assert_eq!(
        decode(&got).1.offer,
        Some(Offer {
            slot: a,
            stamp: 2,
            caller_pid: 100
        })
    );
    greet_b(&mut r, &mut p, now, ANSWERS_BACK);
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 2);
    assert_eq!(got, [sent, offer_bytes(11, a, 0), trailer(100)].concat());
    b_tells_a(&mut r, &mut p, now, 1);
    let (got, _) = a_calls_b(&mut r, &mut p, now, 3);
    assert_eq!(
        decode(&got).1.offer,
        Some(Offer {
            slot: a,
            stamp: 1,
            caller_pid: 100
        })
    );
    greet_b(&mut r, &mut p, now, HELLO_FLAG_SENDER);
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 4);
    assert_eq!(got, [sent, trailer(100)].concat(), "no offer asked for");
}

/// No offer on what is not a sync request, nor to an entry that did not ask for one (or for
/// the sender's pid, which the offer goes before): each gets the bytes it had before offers
/// were made.
#[test]
fn no_offer_on_a_one_way_request_an_answer_or_to_an_entry_that_did_not_ask() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    // A one-way request.
    let mut m = msg(8, "a", "b", 8, 0, b"one way", CallTag::request(1));
    let sent = m.as_sendable().to_vec();
    assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded));
    assert_eq!(p.take(12).unwrap(), [sent, trailer(100)].concat());
    assert!(r.entry(&n("a")).unwrap().pending.is_none());
    // An answer, to a caller that asked for offers too.
    let mut h = hello_asking("a", QueueId(11), 100, ANSWERS_BACK);
    assert_eq!(
        r.handle(&mut p, &mut h, now),
        Ok(Handled::Greeted(n("a"), 100))
    );
    p.take(11).expect("the greeting's answer");
    let tag = CallTag::request(2).unwrap();
    let mut m = msg(8, "b", "a", 8, 0, b"answer", Some(tag.reply()));
    let sent = m.as_sendable().to_vec();
    assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded));
    assert_eq!(p.take(11).unwrap(), [sent, trailer(200)].concat());
    // Sync requests to an entry that did not ask for offers, or not for the sender's pid.
    for (flags, with_trailer) in [
        (0, false),
        (HELLO_FLAG_SENDER, true),
        (HELLO_FLAG_ANSWER_BACK, false),
    ] {
        greet_b(&mut r, &mut p, now, flags);
        let (got, sent) = a_calls_b(&mut r, &mut p, now, 3);
        let want = if with_trailer {
            [sent, trailer(100)].concat()
        } else {
            sent
        };
        assert_eq!(got, want, "b greeted with flags {flags}");
        assert_eq!(decode(&got).1.offer, None);
    }
}

/// No offer while the router's switch is off, nor while a monitor is attached (it sees
/// every answer that passes the relay); offers come back once they are on again and the
/// monitor is gone.
#[test]
fn no_offer_while_turned_off_or_monitored() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    let a = slot(&r, "a");
    r.set_answering_back(Offering::Never);
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 1);
    assert_eq!(got, [sent, trailer(100)].concat(), "turned off");
    r.set_answering_back(Offering::Always);
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 2);
    assert_eq!(got, [sent, offer_bytes(11, a, 0), trailer(100)].concat());
    // A monitor attaches.
    let mon = p.queue(40);
    p.live.insert(300);
    let mut attach = tool_request(RequestBody::MonitorAttach { flags: 0 }, mon);
    assert_eq!(r.handle(&mut p, &mut attach, now), Ok(Handled::Tool));
    p.take(40).expect("attach answered");
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 3);
    assert_eq!(got, [&sent[..], &trailer(100)].concat(), "monitored");
    let seen = events(&mut p, 40);
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].0, &seen[0].1[..]),
        (mipc::wire::tool::EventKind::Message, &sent[MTYPE_LEN..]),
        "the monitor saw the request as received"
    );
    // The monitor's process dies: offers again.
    r.peer_died(&mut p, 300);
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 4);
    assert_eq!(got, [sent, offer_bytes(11, a, 0), trailer(100)].concat());
}

/// No offer while messages wait for the caller in a backlog: an answer straight to its
/// queue would overtake them. Once the backlog is gone, offers come back, their stamp
/// counting the parked messages of the server's.
#[test]
fn no_offer_while_the_caller_has_a_backlog() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    p.capacity = 1;
    assert_eq!(
        r.handle(&mut p, &mut msg(6, "b", "a", 6, 0, b"1", None), now),
        Ok(Handled::Forwarded)
    );
    assert_eq!(
        r.handle(&mut p, &mut msg(6, "b", "a", 6, 0, b"2", None), now),
        Ok(Handled::Parked)
    );
    assert_eq!(r.backlog().1, 1, "a has a backlog");
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 1);
    assert_eq!(got, [sent, trailer(100)].concat(), "no offer");
    // a reads; the backlog goes.
    assert_eq!(decode(&p.take(11).unwrap()).2, b"1");
    assert_eq!(r.drain_parked(&mut p, &n("a"), now), Drained::Done);
    assert_eq!(decode(&p.take(11).unwrap()).2, b"2");
    assert_eq!(r.backlog(), (0, 0));
    let (got, sent) = a_calls_b(&mut r, &mut p, now, 2);
    let a = slot(&r, "a");
    assert_eq!(got, [sent, offer_bytes(11, a, 2), trailer(100)].concat());
}

/// No offer to a caller that did not greet (it could not take an answer it did not ask
/// for), that is not registered, or that calls itself.
#[test]
fn no_offer_to_a_caller_that_did_not_greet_or_calls_itself() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    for (caller, pid) in [("legacy", 0), ("stranger", 0), ("b", 200)] {
        let mut m = call(caller, "b", 1, b"question");
        let sent = m.as_sendable().to_vec();
        assert_eq!(
            r.handle(&mut p, &mut m, now),
            Ok(Handled::Forwarded),
            "{caller}"
        );
        let got = p.take(12).unwrap();
        assert_eq!(got, [sent, trailer(pid)].concat(), "{caller}");
        assert_eq!(decode(&got).1.offer, None, "{caller}");
    }
}

/// A request parked for a full server keeps the offer it was given: the stamp counts what
/// had been read from the server when the offer was made (it can only be behind the
/// library's count, which then answers through the relay).
#[test]
fn a_request_parked_for_a_full_server_keeps_its_offer() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    b_tells_a(&mut r, &mut p, now, 1);
    p.capacity = 0;
    let mut m = call("a", "b", 1, b"question");
    let sent = m.as_sendable().to_vec();
    assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Parked));
    p.capacity = 8;
    assert_eq!(r.drain_parked(&mut p, &n("b"), now), Drained::Done);
    let a = slot(&r, "a");
    assert_eq!(
        p.take(12).unwrap(),
        [sent, offer_bytes(11, a, 1), trailer(100)].concat()
    );
}

/// An ANSWERED ends the pending call of the caller in the slot it names only when that
/// call has the tag it names: otherwise the caller still waits on the server, and the
/// server's call to it closes a cycle. Once it is over, that call goes through. The result
/// says how many calls ended; the counter counts every call named. ANSWERED gets no answer.
#[test]
fn answered_ends_exactly_the_call_it_names() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    let (got, _) = a_calls_b(&mut r, &mut p, now, 5);
    let a = decode(&got).1.offer.unwrap().slot;
    assert_eq!(a, slot(&r, "a"));
    let b = slot(&r, "b");
    let waits = |r: &Router| r.entry(&n("a")).unwrap().pending.map(|x| x.tag.id());
    // Another tag, another caller's slot, a slot no entry has, another caller's process:
    // nothing ends.
    for (s, id, pid) in [(a, 6, 100), (b, 5, 100), (99, 5, 100), (a, 5, 300)] {
        assert_eq!(
            r.handle(&mut p, &mut answered_by("b", &[(s, id, pid)]), now),
            Ok(Handled::AnsweredBack(0)),
            "slot {s}, call {id}, process {pid}"
        );
        assert_eq!(waits(&r), Some(5), "slot {s}, call {id}, process {pid}");
    }
    assert_eq!(p.pending.len(), 1, "still kept");
    let back = CallTag::request(7).unwrap();
    assert_eq!(
        r.handle(&mut p, &mut call("b", "a", 7, b"back"), now),
        Err(Rejected::Deadlock(n("b"), n("a")))
    );
    let (_, h, pl) = decode(&p.take(12).unwrap());
    assert_eq!(
        (h.msg_type, h.tag),
        (MIPC_MSG_TYPE_ERROR, Some(back.reply()))
    );
    assert_eq!(&pl[..4], &(RelayErrorCode::Deadlock as i32).to_ne_bytes());
    // The call named among others: it alone ends.
    assert_eq!(
        r.handle(
            &mut p,
            &mut answered_msg("b", &[(a, 6), (a, 5), (99, 5)]),
            now
        ),
        Ok(Handled::AnsweredBack(1))
    );
    assert_eq!(waits(&r), None);
    assert!(p.pending.is_empty(), "no longer kept");
    // Named again: over already.
    assert_eq!(
        r.handle(&mut p, &mut answered_msg("b", &[(a, 5)]), now),
        Ok(Handled::AnsweredBack(0))
    );
    assert_eq!(
        r.handle(&mut p, &mut call("b", "a", 8, b"back"), now),
        Ok(Handled::Forwarded)
    );
    let (_, h, pl) = decode(&p.take(11).unwrap());
    assert_eq!(
        (h.src, h.tag, pl),
        (n("b"), CallTag::request(8), b"back".to_vec())
    );
    assert_eq!(p.pending(12), 0, "no answer to an ANSWERED");
    assert_eq!(answered_back(&r, now), Some(4 + 3 + 1), "every call named");
}

/// An ANSWERED that is not a list of request tags (a length that is not a whole number of
/// calls, none, call id 0, an answer's tag, even after a good pair) is refused and ends
/// nothing; nor is one addressed to an entry forwarded.
#[test]
fn a_malformed_answered_is_refused_and_ends_nothing() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    let (got, _) = a_calls_b(&mut r, &mut p, now, 5);
    let a = decode(&got).1.offer.unwrap().slot;
    let pair = |slot: u32, raw_tag: u32| {
        [
            slot.to_ne_bytes(),
            raw_tag.to_ne_bytes(),
            100u32.to_ne_bytes(),
        ]
        .concat()
    };
    let answer_tag = CallTag::request(5).unwrap().reply().raw();
    let t = Kind::Answered.msg_type();
    for (label, payload) in [
        ("11 bytes", pair(a, 5)[..11].to_vec()),
        ("empty", Vec::new()),
        ("call id 0", pair(a, 0)),
        ("an answer's tag", pair(a, answer_tag)),
        ("after a good pair", [pair(a, 5), pair(a, 0)].concat()),
        ("16 bytes", [pair(a, 5), a.to_ne_bytes().to_vec()].concat()),
    ] {
        assert_eq!(
            r.handle(&mut p, &mut answered_raw("b", &payload), now),
            Err(Rejected::Control(t, n("b"))),
            "{label}"
        );
    }
    let mut to_a = msg(t as c_long, "b", "a", t, 0, &pair(a, 5), None);
    assert_eq!(
        r.handle(&mut p, &mut to_a, now),
        Err(Rejected::Control(t, n("b")))
    );
    assert_eq!(
        r.entry(&n("a")).unwrap().pending.map(|x| x.tag.id()),
        Some(5),
        "a still waits"
    );
    assert_eq!(p.pending.len(), 1);
    assert_eq!((p.pending(11), p.pending(12)), (0, 0), "nothing sent");
    assert_eq!(answered_back(&r, now), Some(0));
}

/// An ANSWERED ends only a call of the caller's process it names, to its sender's process:
/// a report kept since a caller that died (a library sends its reports before its next sync
/// call, when 170 wait, or at exit) must not end the call of the entry that took the caller's
/// place in the table since, with the same tag (every process numbers its calls from 1),
/// whether to another process or to the report's sender itself. That caller still waits on
/// its server, and gets "peer died" when the server dies.
#[test]
fn a_report_kept_since_a_caller_died_ends_no_call_of_the_next_in_its_place() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    // a's first call, answered straight back by b; b keeps the report.
    let (got, _) = a_calls_b(&mut r, &mut p, now, 1);
    let place = decode(&got).1.offer.unwrap().slot;
    p.live.remove(&100);
    assert_eq!(r.peer_died(&mut p, 100), vec![n("a")]);
    // c (process 300) takes a's place; d is process 400.
    p.live.extend([300, 400]);
    for (name, id, pid) in [("c", 13, 300), ("d", 14, 400)] {
        let q = p.queue(id);
        assert_eq!(
            r.handle(&mut p, &mut notice(name, q, true), now),
            Ok(Handled::Registered(n(name), q))
        );
        assert_eq!(
            r.handle(&mut p, &mut hello(name, q, pid), now),
            Ok(Handled::Greeted(n(name), pid))
        );
        p.take(id).expect("the greeting's answer");
    }
    assert_eq!(slot(&r, "c"), place, "c took a's place");
    // c's first call, to d: tag 1 as a's was.
    assert_eq!(
        r.handle(&mut p, &mut call("c", "d", 1, b"question"), now),
        Ok(Handled::Forwarded)
    );
    p.take(14).expect("d got the request");
    // b's report of a's call comes now.
    assert_eq!(
        r.handle(&mut p, &mut answered_msg("b", &[(place, 1)]), now),
        Ok(Handled::AnsweredBack(0)),
        "b was never asked c's call"
    );
    assert_eq!(
        r.entry(&n("c")).unwrap().pending.map(|x| x.callee),
        Some(n("d"))
    );
    // d dies: c is told.
    p.live.remove(&400);
    r.peer_died(&mut p, 400);
    let (_, h, pl) = decode(&p.take(13).expect("c is told its server died"));
    assert_eq!(
        (h.msg_type, h.tag),
        (MIPC_MSG_TYPE_ERROR, CallTag::request(1).map(CallTag::reply))
    );
    assert_eq!(&pl[..4], &(RelayErrorCode::PeerDied as i32).to_ne_bytes());
}

/// By default the relay offers only while several callers share it: a lone caller's calls
/// keep their four hops; a call from another caller makes the next [`SHARED_CALLS`] sync
/// requests offered, and that many in a row from one caller make it lone again.
#[test]
fn by_default_only_callers_that_share_the_relay_get_offers() {
    let (mut r, mut p, now) = setup_greeting_b(ANSWERS_BACK);
    r.set_answering_back(Offering::WhenShared);
    let a = slot(&r, "a");
    for id in 1..=3 {
        let (got, sent) = a_calls_b(&mut r, &mut p, now, id);
        assert_eq!(got, [sent, trailer(100)].concat(), "a alone, call {id}");
    }
    // Another caller (a legacy one: its untagged sync request counts as a call too).
    assert_eq!(
        r.handle(&mut p, &mut msg(8, "legacy", "b", 8, -1, b"q", None), now),
        Ok(Handled::Forwarded)
    );
    p.take(12).expect("b got legacy's call");
    let stamp = r.entry(&n("b")).unwrap().reads;
    for id in 4..=4 + SHARED_CALLS {
        let (got, sent) = a_calls_b(&mut r, &mut p, now, id);
        let offered = id < 4 + SHARED_CALLS;
        let want = if offered {
            [sent, offer_bytes(11, a, stamp), trailer(100)].concat()
        } else {
            [sent, trailer(100)].concat()
        };
        assert_eq!(
            got, want,
            "a's call {id} after legacy's, offered: {offered}"
        );
    }
}
