//! Guarantee 1 (docs/RELIABILITY.md): an answer that arrives after its caller timed out is
//! never returned to that caller's next call.

use crate::common::Bus;
use crate::support::{outcomes, probe, serial};

/// A server that answers after its caller timed out: the caller's next call of the same api
/// gets its own answer, not the late one (which arrives while it waits).
#[test]
fn late_answer_is_never_returned_to_the_next_call() {
    let _serial = serial();
    let mut bus = Bus::start("late_answer");
    let (srv, _) = probe(&mut bus, "late_srv", &[]);
    // SLOW (api 2): 300 ms for a caller that waits 100 ms; then the same api again, and the
    // late answer "first" lands on the caller's queue while it waits for "second".
    let caller = bus.spawn(
        "caller",
        &[
            "late_cli",
            "slow",
            "late_srv",
            "100",
            "300",
            "first",
            "slow",
            "late_srv",
            "3000",
            "0",
            "second",
            "call",
            "late_srv",
            "6",
            "100",
            "200:third",
            "call",
            "late_srv",
            "6",
            "3000",
            "0:fourth",
        ],
    );
    let out = bus.wait_exit(caller);
    out.assert_success();
    let o = outcomes(&out);
    assert_eq!(o.len(), 4, "{}", out.describe());
    assert!(!o[0].ok && o[0].text.contains("timeout"), "{o:?}");
    assert!(o[1].ok && o[1].text == "second", "second call got {o:?}");
    assert!(!o[2].ok && o[2].text.contains("timeout"), "{o:?}");
    assert!(o[3].ok && o[3].text == "fourth", "fourth call got {o:?}");
    // The server did answer all four (the late ones were dropped by the caller's library).
    let srv_out = bus.kill(srv);
    assert_eq!(
        srv_out
            .stdout
            .iter()
            .filter(|l| l.ends_with("from late_cli"))
            .count(),
        4,
        "{}",
        srv_out.describe()
    );
    bus.finish();
}

/// The same with a daemon that answers from a worker thread (mipc_response_msg called by
/// another thread than the one that received the request, as daemons with a worker pool do):
/// the late answer must not be returned to the next call of the same api either.
#[test]
fn late_answer_from_a_worker_thread_is_never_returned_to_the_next_call() {
    let _serial = serial();
    let mut bus = Bus::start("late_worker");
    probe(&mut bus, "worker_srv", &[]);
    let caller = bus.spawn(
        "caller",
        &[
            "worker_cli",
            "call",
            "worker_srv",
            "7",
            "100",
            "300:first",
            "call",
            "worker_srv",
            "7",
            "3000",
            "0:second",
        ],
    );
    let out = bus.wait_exit(caller);
    out.assert_success();
    let o = outcomes(&out);
    assert_eq!(o.len(), 2, "{}", out.describe());
    assert!(!o[0].ok && o[0].text.contains("timeout"), "{o:?}");
    assert!(
        o[1].ok && o[1].text == "second",
        "the second call returned {:?} (\"first\" is the late answer of the first call)",
        o[1]
    );
    bus.finish();
}
