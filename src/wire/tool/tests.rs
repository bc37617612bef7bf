//! Codec tests of the tool channel.

use super::*;

fn name(s: &str) -> MipcName {
    MipcName::new(s.as_bytes()).unwrap()
}

fn head() -> RequestHead {
    RequestHead {
        pid: 1234,
        reply_queue: 77,
        request_id: 9,
    }
}

#[test]
fn every_request_round_trips() {
    let bodies = [
        RequestBody::List { cursor: 0 },
        RequestBody::List { cursor: 981 },
        RequestBody::Stats,
        RequestBody::MonitorAttach { flags: 0 },
        RequestBody::MonitorDetach,
        RequestBody::WaitFor {
            name: name("omci_daemon"),
            timeout_ms: 1500,
        },
    ];
    for body in bodies {
        let req = Request { head: head(), body };
        let mut out = Vec::new();
        req.encode(&mut out);
        assert!(out.len() <= MIPC_MSG_MAX_LEN);
        assert_eq!(Request::decode(req.msg_type(), &out), Ok(req));
        // Any shorter or longer payload is refused, never misread.
        assert!(Request::decode(req.msg_type(), &out[..out.len() - 1]).is_err());
        out.push(0);
        assert_eq!(
            Request::decode(req.msg_type(), &out),
            Err(ToolWireError::TrailingBytes)
        );
    }
}

#[test]
fn requests_of_other_types_or_versions_are_refused() {
    let mut out = Vec::new();
    Request {
        head: head(),
        body: RequestBody::Stats,
    }
    .encode(&mut out);
    assert_eq!(
        Request::decode(MIPC_MSG_TYPE_MONITOR_EVENT, &out),
        Err(ToolWireError::UnknownType(MIPC_MSG_TYPE_MONITOR_EVENT))
    );
    out[0] = 2;
    assert_eq!(
        Request::decode(MIPC_MSG_TYPE_STATS, &out),
        Err(ToolWireError::Version(2))
    );
}

fn entry(i: u32) -> EntryInfo {
    EntryInfo {
        name: name(&format!("daemon_{i}")),
        pid: 100 + i as i32,
        queue: 5000 + i as i32,
        thread: 0xdead_beef_0000 + i as u64,
        flags: ENTRY_GREETED,
        queued_msgs: i,
        since: 1_700_000_000 + i as u64,
        queued_bytes: 76 * i as u64,
        backlog: i % 3,
        msgs_in: 10 * i as u64,
        msgs_out: 11 * i as u64,
        bytes_in: 1000 * i as u64,
        bytes_out: 1100 * i as u64,
        subscriptions: Vec::new(),
    }
}

#[test]
fn a_full_list_page_fits_a_message_and_round_trips() {
    let page = ListPage {
        total: 1000,
        first: 18 * 3,
        entries: (0..LIST_PAGE_MAX as u32).map(entry).collect(),
    };
    let mut out = Vec::new();
    AnswerHead {
        request_id: 5,
        status: ToolStatus::Ok,
    }
    .encode(&mut out);
    page.encode(&mut out);
    assert!(out.len() <= MIPC_MSG_MAX_LEN, "{} bytes", out.len());
    let (h, rest) = AnswerHead::decode(&out).unwrap();
    assert_eq!(h.request_id, 5);
    assert_eq!(h.status, ToolStatus::Ok);
    let back = ListPage::decode(rest).unwrap();
    assert_eq!(back, page);
    assert!(!back.is_last());
    assert!(ListPage::decode(&rest[..rest.len() - 1]).is_err());
}

#[test]
fn subscriptions_ride_in_the_entry_and_shrink_the_page() {
    let mut e = entry(7);
    e.subscriptions = vec![name("alarm.*"), name("link.up")];
    let page = ListPage {
        total: 3,
        first: 0,
        entries: vec![entry(1), e.clone(), entry(2)],
    };
    let mut out = Vec::new();
    page.encode(&mut out);
    assert_eq!(out.len(), 12 + 3 * ENTRY_LEN + 2 * MIPC_NAME_MAX_LEN);
    assert_eq!(ListPage::decode(&out), Ok(page));
    assert!(ListPage::decode(&out[..out.len() - 1]).is_err());
    // One entry with the most subscriptions fits a message alone; more do not fit.
    e.subscriptions = vec![name("x.*"); LIST_SUBS_MAX];
    assert!(ListPage::fits(std::slice::from_ref(&e)));
    assert!(!ListPage::fits(&[e.clone(), entry(1)]));
    let page = ListPage {
        total: 1,
        first: 0,
        entries: vec![e],
    };
    let mut out = Vec::new();
    page.encode(&mut out);
    assert!(ANSWER_HEAD_LEN + out.len() <= MIPC_MSG_MAX_LEN);
    assert_eq!(ListPage::decode(&out), Ok(page));
}

#[test]
fn a_list_page_cannot_claim_more_than_its_snapshot() {
    let page = ListPage {
        total: 2,
        first: 1,
        entries: vec![entry(1), entry(2)],
    };
    let mut out = Vec::new();
    page.encode(&mut out);
    assert_eq!(ListPage::decode(&out), Err(ToolWireError::BadCount));
}

#[test]
fn stats_round_trip_and_cut_the_backlog_to_fit() {
    let mut report = StatsReport {
        counters: Counter::ALL.iter().map(|c| (*c as u32, 7)).collect(),
        backlog: (0..200).map(|i| (name(&format!("d{i}")), i)).collect(),
    };
    report
        .counters
        .push((reject_counter_id(RejectReason::Busy), 3));
    let mut out = Vec::new();
    report.encode(&mut out);
    assert!(out.len() + ANSWER_HEAD_LEN <= MIPC_MSG_MAX_LEN);
    let back = StatsReport::decode(&out).unwrap();
    assert_eq!(back.counters, report.counters);
    let room = StatsReport::backlog_room(report.counters.len());
    assert_eq!(back.backlog[..], report.backlog[..room]);
    assert_eq!(back.get(reject_counter_id(RejectReason::Busy)), Some(3));
    assert_eq!(counter_name(110), "rejected.destination_busy");
    assert_eq!(counter_name(3), "forwarded");
    assert_eq!(counter_name(999), "counter_999");
}

#[test]
fn events_round_trip_with_the_largest_message() {
    let msg = vec![0xA5u8; MTEXT_MAX_TAGGED];
    for kind in [
        EventKind::Message,
        EventKind::Registered,
        EventKind::Unregistered,
        EventKind::Died,
        EventKind::Rejected,
        EventKind::ErrorAnswer,
        EventKind::Greeted,
        EventKind::RelayStopping,
        EventKind::Other(0x10),
    ] {
        let ev = EventRecord {
            kind,
            time_ns: 1_700_000_000_123_456_789,
            seq: 41,
            lost: 3,
            pid: 321,
            code: 9,
            name: (kind != EventKind::Message).then(|| name("omci")),
            msg: &msg,
        };
        let mut out = Vec::new();
        ev.encode(&mut out);
        assert_eq!(out.len(), EVENT_MAX_LEN);
        assert_eq!(EventRecord::decode(&out), Ok(ev));
        assert!(EventRecord::decode(&out[..out.len() - 1]).is_err());
    }
}

#[test]
fn an_oversized_message_is_cut_and_garbage_is_refused() {
    let msg = vec![1u8; MTEXT_MAX_TAGGED + 10];
    let ev = EventRecord {
        kind: EventKind::Rejected,
        time_ns: 0,
        seq: 0,
        lost: 0,
        pid: 0,
        code: RejectReason::Malformed as i32,
        name: None,
        msg: &msg,
    };
    let mut out = Vec::new();
    ev.encode(&mut out);
    assert_eq!(
        EventRecord::decode(&out).unwrap().msg.len(),
        MTEXT_MAX_TAGGED
    );
    assert!(EventRecord::decode(&[0u8; 3]).is_err());
    assert!(EventRecord::decode(&[0xFFu8; 200]).is_err());
}
