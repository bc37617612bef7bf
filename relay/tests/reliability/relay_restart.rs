//! Guarantee 5 (docs/RELIABILITY.md): a relay killed and restarted on the same key keeps the
//! entries and what waited on the root queue.

use crate::common::{all_queues, Bus, ProcId};
use crate::support::{
    field, is_outcome, next_outcome, outcomes, probe, saved_entries, serial, DEATH_DETECTION,
};
use std::time::{Duration, Instant};

/// The relay is SIGKILLed while two callers flood a server with sync calls (5 s timeout each),
/// messages are sent to the root queue while no relay runs, and a new relay is started on the
/// same key: it takes the name table back (nobody registers again), delivers what waited on
/// the root queue, and calls resume. At most one message is lost: the one the killed relay
/// had taken off the root queue and not yet forwarded (then one flood call times out).
#[test]
fn relay_restart_under_traffic_keeps_entries_and_queued_messages() {
    let _serial = serial();
    let mut bus = Bus::start("relay_restart");
    let (srv, _) = probe(&mut bus, "steady_srv", &[]);
    let calls = "300";
    let flooders: Vec<ProcId> = (0..2)
        .map(|i| {
            let name = format!("flood_cli{i}");
            bus.spawn(
                "caller",
                &[
                    &name,
                    "call",
                    "steady_srv",
                    "1",
                    "5000",
                    "warm",
                    "floodt",
                    "steady_srv",
                    "1",
                    calls,
                    "5000",
                ],
            )
        })
        .collect();
    let outage = bus.spawn_stdin(
        "caller",
        &[
            "outage_cli",
            "line",
            "send",
            "steady_srv",
            "1",
            "async-in-outage",
            "call",
            "steady_srv",
            "1",
            "-1",
            "sync-in-outage",
            "line",
            "call",
            "steady_srv",
            "1",
            "2000",
            "after",
        ],
        &[],
    );
    bus.wait_ready(outage);
    for &f in &flooders {
        let o = next_outcome(&mut bus, f);
        assert!(o.ok, "warm-up call failed: {o:?}");
    }
    // The floods are running: kill the relay under them.
    let root_before: Vec<_> = all_queues()
        .into_iter()
        .filter(|q| q.key == bus.key())
        .collect();
    assert_eq!(root_before.len(), 1);
    let t_kill = Instant::now();
    bus.kill_relay();
    let root_at_kill = all_queues()
        .into_iter()
        .find(|q| q.key == bus.key())
        .expect("the root queue outlives the relay");
    assert_eq!(root_at_kill.msqid, root_before[0].msqid);
    bus.write_line(outage, "go");
    assert_eq!(bus.wait_line_starting(outage, "sent"), "sent");
    // Wait until the outage caller's sync request is on the root queue too: nothing takes
    // messages off it now, so 2 more than at the kill (the flooders may add theirs).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let root = all_queues()
            .into_iter()
            .find(|q| q.key == bus.key())
            .expect("the root queue outlives the relay");
        if root.qnum >= root_at_kill.qnum + 2 {
            break;
        }
        assert!(Instant::now() < deadline, "root queue: {root:?}");
        std::thread::yield_now();
    }
    bus.restart_relay();
    eprintln!(
        "relay outage (SIGKILL to ready again): {:?}",
        t_kill.elapsed()
    );
    let took = bus.wait_log("took back");
    eprintln!("restarted relay: {took}");
    // Nobody registered again: the server and the outage caller are known from the state
    // file (and the flooders, unless their floods ended meanwhile, as with MIPC_DIRECT=1).
    let known = saved_entries(&bus);
    for name in ["steady_srv", "outage_cli"] {
        assert!(
            known.contains_key(name),
            "{name} not taken back: {took}; {known:?}"
        );
    }

    let o = next_outcome(&mut bus, outage);
    assert!(o.ok && o.text == "sync-in-outage", "{o:?}");
    bus.wait_line(srv, |l| l == "got 1 from outage_cli");
    bus.write_line(outage, "go");
    let o = next_outcome(&mut bus, outage);
    assert!(o.ok && o.text == "after", "{o:?}");
    bus.wait_exit(outage).assert_success();

    let mut timeouts = 0.0;
    for f in flooders {
        let out = bus.wait_exit(f);
        out.assert_success();
        let line = out.stdout.iter().find(|l| l.starts_with("flood ")).unwrap();
        eprintln!(
            "flood across the relay restart: {line} {}",
            out.stderr.trim()
        );
        assert_eq!(field(line, "bad"), 0.0, "{line}");
        assert_eq!(field(line, "other"), 0.0, "{line}");
        assert_eq!(field(line, "busy"), 0.0, "{line}");
        assert_eq!(field(line, "ok") + field(line, "timeout"), 300.0, "{line}");
        timeouts += field(line, "timeout");
    }
    if timeouts > 1.0 {
        let srv_out = bus.kill(srv);
        let served = |who: &str| {
            srv_out
                .stdout
                .iter()
                .filter(|l| l.as_str() == format!("got 1 from {who}"))
                .count()
        };
        panic!(
            "{timeouts} calls lost across one relay restart (bound: 1); the server got {} requests of flood_cli0 and {} of flood_cli1 (warm-up included); root queue at the kill: {root_at_kill:?}",
            served("flood_cli0"),
            served("flood_cli1")
        );
    }
    // A program started after the restart reaches the server, which never registered again.
    let fresh = bus.run(
        "caller",
        &["fresh_cli", "call", "steady_srv", "1", "2000", "fresh"],
    );
    assert!(outcomes(&fresh)[0].ok, "{}", fresh.describe());
    // The new relay watches the processes it took back: a death is still seen.
    let pid = bus.pid(srv);
    let t0 = Instant::now();
    bus.kill(srv);
    bus.wait_log(&format!("process {pid} died: dropped steady_srv"));
    assert!(t0.elapsed() <= DEATH_DETECTION);
    bus.finish();
}

/// A caller blocked forever on a server across a relay restart still gets "peer died" when
/// the server is then killed: the new relay must know the call is pending (the relay keeps
/// pending calls in a memory-mapped table beside its state file, relay/src/pending.rs).
#[test]
fn caller_blocked_across_relay_restart_learns_of_dead_peer() {
    let _serial = serial();
    let mut bus = Bus::start("restart_pending");
    let (srv, _) = probe(&mut bus, "hung_srv", &[]);
    let caller = bus.spawn("caller", &["hung_cli", "call", "hung_srv", "4", "-1", "x"]);
    bus.wait_line(srv, |l| l == "got 4 from hung_cli");
    bus.kill_relay();
    let saved = saved_entries(&bus);
    bus.restart_relay();
    let pid = bus.pid(srv);
    bus.kill(srv);
    let died = bus.wait_log_for(
        &format!("process {pid} died: dropped hung_srv"),
        DEATH_DETECTION,
    );
    assert!(
        died.is_some(),
        "the restarted relay did not see the death of hung_srv (pid {pid}) within {DEATH_DETECTION:?}; state file at the kill: {saved:?}"
    );
    let line = bus.wait_line_for(caller, is_outcome, Some(Duration::from_secs(5)));
    assert!(
        line.as_deref().is_some_and(|l| l.contains("peer died")),
        "the caller blocked across the restart got {line:?} within 5 s of its server's death"
    );
    bus.finish();
}

/// `mipc_wait_for` across a relay killed and started again: the relay holds a wait for at
/// most a round (2 s) and the library asks again, so the waiter learns of the name that
/// registers with the new relay (a daemon waiting at boot for another one must not wait
/// forever because the relay crashed meanwhile; it used to, until its own timeout). The same
/// across a clean restart (SIGTERM), where the relay answers "stopping": the waiter asks the
/// next relay (it used to fail with "relay unavailable").
#[test]
fn wait_for_outlives_a_relay_restart() {
    let _serial = serial();
    for clean in [false, true] {
        let how = if clean { "SIGTERM" } else { "SIGKILL" };
        let mut bus = Bus::start("wait_restart");
        let waiter = bus.spawn_ready("wait_for", &["boot_late_srv", "15000"]);
        // The waiter's request is on the root queue once it was the last to send there ...
        let root = mipc::sysv::open_key(bus.key(), false, 0).expect("root queue");
        let waiter_pid = bus.pid(waiter);
        while mipc::sysv::stat(root).expect("root queue").last_sender != waiter_pid {
            std::thread::yield_now();
        }
        // ... and the relay holds it once it answered a registration made after it.
        let (barrier, _) = probe(&mut bus, "boot_barrier", &[]);
        bus.kill(barrier);
        if clean {
            assert!(bus.term_relay().success(), "the relay's clean stop");
        } else {
            bus.kill_relay();
        }
        bus.restart_relay();
        let started = Instant::now();
        let (srv, _) = probe(&mut bus, "boot_late_srv", &[]);
        let out = bus.wait_exit(waiter);
        let took = started.elapsed();
        eprintln!(
            "wait_for across a relay restart ({how}): returned {took:?} after the name registered"
        );
        out.assert_success()
            .assert_line("wait_for boot_late_srv -> MIPC_OK");
        // A round (2 s) and its grace (1 s), and slack for a busy machine.
        assert!(
            took < Duration::from_secs(3 + 3),
            "{how}: wait_for took {took:?}"
        );
        bus.kill(srv);
        bus.finish();
    }
}
