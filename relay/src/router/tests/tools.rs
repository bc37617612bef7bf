//! Tools (docs/PROTOCOL.md §7-8): monitors, forged requests, the direct path while monitored.

use super::*;

#[test]
fn a_monitor_gets_a_copy_of_each_message_and_no_monitor_costs_no_send() {
    use mipc::wire::tool::{EventKind, RequestBody};
    let (mut r, mut p, now) = setup();
    let mut m = msg(5, "a", "b", 5, 0, b"x", None);
    assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded));
    assert_eq!(
        p.queues.len(),
        3,
        "no monitor: only the entries' queues were written"
    );
    p.take(12);
    let mon = p.queue(40);
    p.live.insert(300);
    let mut attach = tool_request(RequestBody::MonitorAttach { flags: 0 }, mon);
    assert_eq!(r.handle(&mut p, &mut attach, now), Ok(Handled::Tool));
    p.take(40).expect("attach answered");
    assert!(p.watched.contains(&300), "the monitor's process is watched");
    assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded));
    let mut nobody = msg(
        5,
        "a",
        "nobody",
        5,
        1000,
        b"y",
        Some(CallTag::request(3).unwrap()),
    );
    assert!(r.handle(&mut p, &mut nobody, now).is_err());
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
    assert_eq!(r.handle(&mut p, &mut m, now), Ok(Handled::Forwarded));
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
            assert!(r
                .handle(&mut p, &mut tool_request(body, target), now)
                .is_err());
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
    assert_eq!(r.handle(&mut p, &mut lookup(1), now), Ok(Handled::LookedUp));
    let (_, _, pl) = decode(&p.take(11).unwrap());
    assert_eq!(&pl[0..4], &0i32.to_ne_bytes(), "direct while unmonitored");
    let mon = p.queue(40);
    let mut attach = tool_request(RequestBody::MonitorAttach { flags: 0 }, mon);
    assert_eq!(r.handle(&mut p, &mut attach, now), Ok(Handled::Tool));
    let (mtype, h, _) = decode(&p.take(11).expect("a is told to drop its routes"));
    assert_eq!(
        (mtype, h.msg_type),
        (
            MIPC_MSG_TYPE_DROP_ROUTES as c_long,
            MIPC_MSG_TYPE_DROP_ROUTES
        )
    );
    assert_eq!(r.handle(&mut p, &mut lookup(2), now), Ok(Handled::LookedUp));
    let (_, _, pl) = decode(&p.take(11).unwrap());
    assert_eq!(&pl[0..4], &9i32.to_ne_bytes(), "monitored: use the relay");
}

#[test]
fn a_caller_that_follows_the_routes_page_gets_an_epoch_not_a_message() {
    use crate::routes_page::RoutesPage;
    use mipc::direct::{ROUTES_PAGE_EPOCH, ROUTES_PAGE_MAGIC};
    use mipc::wire::control::LOOKUP_FLAG_PAGE;
    use mipc::wire::tool::RequestBody;
    let (mut r, mut p, now) = setup();
    let path = std::env::temp_dir().join(format!("mipc-test-{}.routes", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let epoch = |path: &std::path::Path| {
        let b = std::fs::read(path).unwrap();
        let word = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
        assert_eq!(word(0), ROUTES_PAGE_MAGIC);
        word(ROUTES_PAGE_EPOCH)
    };
    r.publish_routes_in(RoutesPage::open(path.clone(), 0o600).unwrap());
    let started = epoch(&path);
    assert_eq!(started, 1, "a relay that starts moves the epoch on");
    let mut asked = n("b").field().to_vec();
    asked.extend_from_slice(&LOOKUP_FLAG_PAGE.to_ne_bytes());
    let mut lookup = msg(
        mipc::wire::MIPC_MSG_TYPE_LOOKUP as c_long,
        "a",
        "mipc_main",
        mipc::wire::MIPC_MSG_TYPE_LOOKUP,
        500,
        &asked,
        Some(CallTag::request(1).unwrap()),
    );
    assert_eq!(r.handle(&mut p, &mut lookup, now), Ok(Handled::LookedUp));
    let (_, _, pl) = decode(&p.take(11).unwrap());
    assert_eq!(&pl[0..4], &0i32.to_ne_bytes(), "direct while unmonitored");
    let mon = p.queue(40);
    let mut attach = tool_request(RequestBody::MonitorAttach { flags: 0 }, mon);
    assert_eq!(r.handle(&mut p, &mut attach, now), Ok(Handled::Tool));
    assert_eq!(epoch(&path), started + 1, "the first monitor moves it on");
    assert_eq!(p.pending(11), 0, "no DROP_ROUTES for a page follower");
    // A relay started again on the same file keeps it and moves it on once more.
    drop(r);
    let again = RoutesPage::open(path.clone(), 0o600).unwrap();
    assert_eq!(epoch(&path), started + 2);
    again.remove();
    assert!(!path.exists());
}
