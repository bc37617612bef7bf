//! Guarantee 4 (docs/RELIABILITY.md): a dead server fails its blocked callers and frees its
//! name; a dead caller's queue is removed and its answer dropped.

use crate::common::Bus;
use crate::support::{next_outcome, outcomes, probe, queue_exists, serial, DEATH_DETECTION};
use std::time::Instant;

/// A server SIGKILLed while two callers wait on it (one forever, one with a 30 s timeout):
/// the relay sees the death within 2 s, drops its entry, removes its queue, and both callers
/// get "peer died" at once; the restarted server registers the same name again and serves.
#[test]
fn dead_peer_fails_blocked_caller_and_frees_its_name() {
    let _serial = serial();
    let mut bus = Bus::start("dead_peer");
    let (srv, q) = probe(&mut bus, "doomed_srv", &[]);
    let forever = bus.spawn(
        "caller",
        &["forever_cli", "call", "doomed_srv", "4", "-1", "x"],
    );
    bus.wait_line(srv, |l| l == "got 4 from forever_cli");
    // A second caller waits too, with a 30 s timeout (NEVER is never answered).
    let timed = bus.spawn(
        "caller",
        &["timed_cli", "call", "doomed_srv", "4", "30000", "y"],
    );
    bus.wait_line(srv, |l| l == "got 4 from timed_cli");
    let srv_pid = bus.pid(srv);
    let t0 = Instant::now();
    bus.kill(srv);
    bus.wait_log(&format!("process {srv_pid} died: dropped doomed_srv"));
    let seen = t0.elapsed();
    eprintln!("death of a SIGKILLed server seen by the relay after {seen:?}");
    assert!(seen <= DEATH_DETECTION, "death seen after {seen:?}");
    assert!(
        !queue_exists(q),
        "the dead server's queue {q} is still there"
    );

    let o = next_outcome(&mut bus, forever);
    let waited_after_kill = t0.elapsed();
    eprintln!(
        "the caller blocked forever on it got {:?} {waited_after_kill:?} after the kill",
        o.text
    );
    assert!(!o.ok && o.text.contains("peer died"), "{o:?}");
    assert!(
        waited_after_kill <= DEATH_DETECTION,
        "the blocked caller learnt of the death after {waited_after_kill:?}"
    );
    let o = next_outcome(&mut bus, timed);
    assert!(!o.ok && o.text.contains("peer died"), "{o:?}");
    assert!(
        o.ms < 30000.0 && t0.elapsed() <= DEATH_DETECTION,
        "{o:?} after {:?}",
        t0.elapsed()
    );
    bus.wait_exit(forever).assert_success();
    bus.wait_exit(timed).assert_success();

    // The name is free again: the restarted daemon takes it and serves.
    let (srv2, _) = probe(&mut bus, "doomed_srv", &[]);
    let again = bus.run(
        "caller",
        &["again_cli", "call", "doomed_srv", "1", "2000", "back"],
    );
    again.assert_success();
    let o = outcomes(&again);
    assert!(o[0].ok && o[0].text == "back", "{}", again.describe());
    bus.kill(srv2);
    bus.finish();
}

/// A caller SIGKILLed while it waits: the relay removes its queue too, and the server's
/// answer to it is dropped without harm.
#[test]
fn dead_caller_queue_is_removed_and_its_answer_dropped() {
    let _serial = serial();
    let mut bus = Bus::start("dead_caller");
    let (srv, _) = probe(&mut bus, "patient_srv", &[]);
    let caller = bus.spawn(
        "caller",
        &[
            "doomed_cli",
            "call",
            "patient_srv",
            "6",
            "-1",
            "300:too late",
        ],
    );
    bus.wait_line(srv, |l| l == "got 6 from doomed_cli");
    let pid = bus.pid(caller);
    let t0 = Instant::now();
    bus.kill(caller);
    bus.wait_log(&format!("process {pid} died: dropped doomed_cli"));
    assert!(t0.elapsed() <= DEATH_DETECTION);
    // The server is fine afterwards.
    let o = bus.run(
        "caller",
        &["next_cli", "call", "patient_srv", "1", "2000", "fine"],
    );
    assert!(outcomes(&o)[0].ok, "{}", o.describe());
    bus.kill(srv);
    bus.finish();
}
