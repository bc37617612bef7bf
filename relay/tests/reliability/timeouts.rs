//! Guarantee 2 (docs/RELIABILITY.md): a sync call with timeout T returns within T + 20 ms and
//! waits without CPU.

use crate::common::{emulated, Bus};
use crate::support::{outcomes, probe, serial, TIMEOUT_SLACK_MS};

/// Calls that are never answered return "timeout" no earlier than T and within T + 20 ms,
/// for T from 10 ms to 1 s; and a 2 s wait costs the waiting process no CPU (under 20 ms of
/// user + system time, timer thread included).
#[test]
fn timeout_returns_within_20ms_and_waits_without_cpu() {
    let _serial = serial();
    let mut bus = Bus::start("timeouts");
    probe(&mut bus, "mute_srv", &[]);
    let timeouts = [10u32, 50, 100, 250, 500, 1000];
    let mut args: Vec<String> = vec!["timeout_cli".into()];
    // Under an emulator the first timed call also pays for translating the code it runs
    // (about 10 ms of CPU under qemu-arm): one call first, not measured.
    let warm_up = emulated().is_some();
    if warm_up {
        args.extend(["call", "mute_srv", "4", "10", "x"].map(String::from));
    }
    for t in timeouts {
        args.extend(["call", "mute_srv", "4", &t.to_string(), "x"].map(String::from));
    }
    args.extend(["call", "mute_srv", "4", "2000", "cpu"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let caller = bus.spawn("caller", &args);
    let out = bus.wait_exit(caller);
    out.assert_success();
    let o = outcomes(&out);
    let o = &o[usize::from(warm_up)..];
    assert_eq!(o.len(), timeouts.len() + 1, "{}", out.describe());
    for (t, got) in timeouts.iter().chain([2000].iter()).zip(o) {
        let t = f64::from(*t);
        eprintln!(
            "timeout {t} ms: returned after {:.1} ms ({:+.1}), cpu {:.2} ms",
            got.ms,
            got.ms - t,
            got.cpu_ms
        );
        assert!(
            !got.ok && got.text.contains("timeout"),
            "timeout {t}: {got:?}"
        );
        assert!(got.ms >= t, "timeout {t} ms returned early: {got:?}");
        assert!(
            got.ms <= t + TIMEOUT_SLACK_MS,
            "timeout {t} ms returned {:.1} ms late",
            got.ms - t
        );
    }
    let wait = &o[timeouts.len()];
    assert!(
        wait.cpu_ms < 20.0,
        "a 2 s wait used {:.2} ms of CPU",
        wait.cpu_ms
    );
    bus.finish();
}

/// The waker thread lives only while it has work: a process whose calls wait forever stays
/// single-threaded (it matters to where Linux places the caller: docs/PERFORMANCE.md); a
/// timed call starts the waker and times out as it should; the waker leaves once idle, and
/// the next timed call starts another and times out as well.
#[test]
fn waker_thread_lives_only_while_a_wait_has_a_deadline() {
    let mut bus = Bus::start("waker_life");
    probe(&mut bus, "waker_srv", &[]);
    let out = bus.run(
        "caller",
        &[
            "waker_cli",
            "threads",
            "call",
            "waker_srv",
            "1",
            "-1",
            "forever",
            "threads",
            "call",
            "waker_srv",
            "4",
            "50",
            "x",
            "threads",
            "threads_settle",
            "1",
            "10000",
            "call",
            "waker_srv",
            "4",
            "50",
            "y",
            "threads",
            "call",
            "waker_srv",
            "1",
            "1000",
            "again",
        ],
    );
    out.assert_success();
    // The program's own threads: an emulator (qemu-user) runs one of its own in the process.
    let emulator_threads = usize::from(emulated().is_some());
    let threads: Vec<usize> = out
        .stdout
        .iter()
        .filter_map(|l| l.strip_prefix("threads "))
        .map(|n| n.parse::<usize>().expect("thread count") - emulator_threads)
        .collect();
    assert_eq!(threads, [1, 1, 2, 1, 2], "{}", out.describe());
    let o = outcomes(&out);
    assert_eq!(o.len(), 4, "{}", out.describe());
    assert!(o[0].ok && o[0].text == "forever", "{:?}", o[0]);
    for t in [&o[1], &o[2]] {
        assert!(!t.ok && t.text.contains("timeout"), "{t:?}");
        assert!(
            t.ms >= 50.0 && t.ms <= 50.0 + TIMEOUT_SLACK_MS,
            "a 50 ms timeout returned after {:.1} ms",
            t.ms
        );
    }
    assert!(o[3].ok && o[3].text == "again", "{:?}", o[3]);
    bus.finish();
}
