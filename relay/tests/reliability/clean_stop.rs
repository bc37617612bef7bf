//! Guarantee 5 (docs/RELIABILITY.md), a clean stop: SIGTERM (a restart, an upgrade) forwards
//! what daemons sent before it, what waits on the root queue and what the relay parked for
//! receivers that fell behind, each for at most a second; a relay killed during its stop
//! leaves a closed root queue that the next one opens again.

use crate::common::{all_queues, make_state_dir, relay_command, unique_key, Bus, ProcId};
use crate::support::serial;
use std::time::{Duration, Instant};

/// A bus with a receiver and a sender of `c-tests/stall`, both ready.
fn pair(label: &str, rx: &str, tx: &str) -> (Bus, ProcId, ProcId) {
    let mut bus = Bus::start(label);
    let rx = bus.spawn_stdin("stall", &[rx], &[]);
    let tx = bus.spawn_stdin("stall", &[tx], &[]);
    bus.wait_ready(rx);
    bus.wait_ready(tx);
    (bus, rx, tx)
}

/// Has `tx` send `n` async messages of 1000 bytes to `dst`, and asserts they were all sent.
fn fill(bus: &mut Bus, tx: ProcId, dst: &str, n: u32) {
    bus.write_line(tx, &format!("fill {dst} {n} 1000"));
    let filled = bus.wait_line(tx, |l| l.starts_with("fill ") || l.starts_with("FAIL"));
    assert!(
        filled.starts_with(&format!("fill {n} {} ", n * 1000)),
        "{n} messages sent: {filled}"
    );
}

/// Waits until the relay has taken everything `tx` sent so far: it answered a call `tx` made
/// after it (to a name nobody holds: the relay's own "no such destination").
fn relay_took_all(bus: &mut Bus, tx: ProcId) {
    bus.write_line(tx, "sync clean_stop_nobody 5000");
    let answered = bus.wait_line(tx, |l| l.starts_with("sync ") || l.starts_with("FAIL"));
    assert!(
        answered.contains("no_such_destination"),
        "the relay's answer: {answered}"
    );
}

/// Ends the scenario: a relay again (the bus's shutdown stops it), the programs killed.
fn finish(mut bus: Bus, procs: &[ProcId]) {
    bus.restart_relay();
    for &p in procs {
        bus.kill(p);
    }
    bus.finish();
}

/// The relay is stopped (SIGSTOP) so that ten async messages of 1000 bytes wait on its root
/// queue, then stopped cleanly; the receiver gets all ten, byte for byte, from its own queue
/// after the relay exited. A SIGKILLed relay leaves them for the next one
/// (`relay_restart.rs`); the clean stop used to remove the root queue at once and throw them
/// away.
#[test]
fn a_clean_stop_forwards_what_waits_on_the_root_queue() {
    let _serial = serial();
    let (mut bus, rx, tx) = pair("clean_stop_drain", "drain_rx", "drain_tx");
    bus.stop_relay();
    fill(&mut bus, tx, "drain_rx", 10);
    assert!(bus.term_relay().success(), "the relay's clean stop");
    bus.write_line(rx, "recv 10");
    let got = bus.wait_line(rx, |l| l.starts_with("recv ") || l.starts_with("FAIL"));
    assert_eq!(
        got, "recv 10 10000",
        "what the stopped relay had on its root queue"
    );
    assert!(
        !bus.relay_log().contains("still on the root queue"),
        "{}",
        bus.relay_log()
    );
    finish(bus, &[tx, rx]);
}

/// A clean stop also delivers its backlogs: what the relay took for a receiver whose queue was
/// full. The receiver does not read while forty 1000-byte messages are sent to it (its queue
/// holds about fourteen, the relay parks the rest), the relay is SIGSTOPped, the receiver
/// starts reading, and the relay is stopped cleanly: the receiver gets all forty, byte for
/// byte. Before, the relay exited with its backlog and the receiver's receive after the
/// fourteenth timed out.
#[test]
fn a_clean_stop_delivers_its_backlogs() {
    let _serial = serial();
    let (mut bus, rx, tx) = pair("clean_stop_backlog", "backlog_rx", "backlog_tx");
    fill(&mut bus, tx, "backlog_rx", 40);
    relay_took_all(&mut bus, tx);
    let rx_queue = bus
        .queues()
        .into_iter()
        .filter(|q| q.key == 0 && q.qnum > 0)
        .map(|q| q.qnum)
        .max()
        .unwrap_or(0);
    assert!(
        (1..40).contains(&rx_queue),
        "the receiver's queue holds part of the forty ({rx_queue}), the relay the rest"
    );
    bus.stop_relay();
    bus.write_line(rx, "recv 40");
    assert!(bus.term_relay().success(), "the relay's clean stop");
    let got = bus.wait_line(rx, |l| l.starts_with("recv ") || l.starts_with("FAIL"));
    assert_eq!(got, "recv 40 40000", "what the relay held for the receiver");
    assert!(!bus.relay_log().contains("dropped"), "{}", bus.relay_log());
    finish(bus, &[tx, rx]);
}

/// A clean stop does not wait for ever on a receiver that stopped reading: its backlog is
/// given up after a second, with a log line, and the relay exits cleanly.
#[test]
fn a_clean_stop_gives_up_on_a_receiver_that_does_not_read() {
    let _serial = serial();
    let (mut bus, rx, tx) = pair("clean_stop_stuck", "stuck_rx", "stuck_tx");
    fill(&mut bus, tx, "stuck_rx", 40);
    relay_took_all(&mut bus, tx);
    let started = Instant::now();
    assert!(bus.term_relay().success(), "the relay's clean stop");
    let took = started.elapsed();
    eprintln!("clean stop with a receiver that does not read: {took:?}");
    assert!(
        bus.relay_log()
            .contains("bytes still parked for receivers that did not read"),
        "{}",
        bus.relay_log()
    );
    assert!(took < Duration::from_secs(1 + 3), "the stop took {took:?}");
    finish(bus, &[tx, rx]);
}

/// A relay killed during its clean stop leaves its root queue closed (no room for any
/// message); the next relay opens it again, and traffic flows. The closed queue is made by
/// hand here, as the stopping relay leaves it.
#[test]
fn a_root_queue_left_closed_is_opened_again() {
    let _serial = serial();
    let mut bus = Bus::start("closed_root");
    let tx = bus.spawn_stdin("stall", &["closed_tx"], &[]);
    bus.wait_ready(tx);
    bus.kill_relay();
    let root = mipc::sysv::open_key(bus.key(), false, 0).expect("root queue");
    mipc::sysv::set_capacity(root, 0).expect("close the root queue");
    bus.restart_relay();
    assert!(
        bus.relay_log().contains("was left closed; opened it again"),
        "{}",
        bus.relay_log()
    );
    bus.write_line(tx, "async closed_tx 100");
    let sent = bus.wait_line(tx, |l| l.starts_with("async ") || l.starts_with("FAIL"));
    assert!(
        sent.starts_with("async 0 "),
        "a message through the new relay: {sent}"
    );
    bus.write_line(tx, "recv 1");
    let got = bus.wait_line(tx, |l| l.starts_with("recv ") || l.starts_with("FAIL"));
    assert_eq!(got, "recv 1 100");
    bus.kill(tx);
    bus.finish();
}

/// A stop signal during start-up ends the relay too, and leaves no queue (a service manager
/// stopping a relay it has just started): SIGTERM as soon as the relay's main thread shows it
/// blocked (`SigBlk` in /proc), 20 times; under an emulator, whose mask /proc does not show,
/// at once. The relay used to serve on when the signal came between blocking it and opening
/// the root queue; that window is a few microseconds, which this test does not reliably reach
/// (the old code passed it 3 times in 3), so it guards the early stop as a whole.
#[test]
fn a_stop_signal_during_start_up_ends_the_relay() {
    let _serial = serial();
    for round in 0..20 {
        let key = unique_key();
        let state = make_state_dir(key);
        let mut relay = relay_command(None, None)
            .env("MIPC_ROOT_KEY", key.to_string())
            .env("MIPC_STATE_DIR", &state)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn mipc_main");
        let pid = relay.id() as i32;
        if crate::common::emulated().is_none() {
            let started = Instant::now();
            while !sigterm_blocked(pid) && started.elapsed() < Duration::from_secs(5) {
                std::hint::spin_loop();
            }
        }
        // SAFETY: the child is not reaped yet, so its pid is still ours.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let started = Instant::now();
        let status = loop {
            if let Some(st) = relay.try_wait().expect("wait for mipc_main") {
                break Some(st);
            }
            if started.elapsed() > Duration::from_secs(5) {
                let _ = relay.kill();
                let _ = relay.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let left: Vec<_> = all_queues().into_iter().filter(|q| q.key == key).collect();
        for q in &left {
            // SAFETY: IPC_RMID takes no buffer; the queue has this test's key.
            unsafe { libc::msgctl(q.msqid, libc::IPC_RMID, std::ptr::null_mut()) };
        }
        let _ = std::fs::remove_dir_all(&state);
        assert!(
            status.is_some(),
            "round {round}: the relay still ran 5 s after a SIGTERM during its start-up"
        );
        assert!(
            left.is_empty(),
            "round {round}: the relay left its root queue"
        );
    }
}

/// Whether process `pid`'s main thread blocks SIGTERM.
fn sigterm_blocked(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
}
