//! Helpers of the reliability tests: the one-at-a-time lock, the bounds the guarantees
//! state, caller.c's outcome lines, probe_server, queues of the test's own, the relay's state file.

use crate::common::{all_queues, Bus, Finished, ProcId};
use mipc::sysv::{self, QueueId};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// One test at a time (see the comment of main.rs).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sanitizer settings for the `asan/` programs: stop at the first report, fail the run.
pub const ASAN_ENV: [(&str, &str); 2] = [
    (
        "ASAN_OPTIONS",
        "halt_on_error=1:detect_leaks=1:abort_on_error=0:exitcode=86",
    ),
    (
        "UBSAN_OPTIONS",
        "halt_on_error=1:print_stacktrace=1:exitcode=87",
    ),
];

/// The slack the issue allows a timeout: a call with timeout T returns within T + 20 ms.
pub const TIMEOUT_SLACK_MS: f64 = 20.0;
/// How fast a call the relay refuses must fail ("well before its timeout").
pub const FAST_FAIL_MS: f64 = 100.0;
/// How soon the relay must see a SIGKILLed process (pidfd).
pub const DEATH_DETECTION: Duration = Duration::from_secs(2);

/// One line of caller.c's `call`, `slow`, `nested`, `cycle` or `ping`:
/// "ok <ms> <cpu_ms> <answer>" or "err <ms> <cpu_ms> <reason>".
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    pub ms: f64,
    pub cpu_ms: f64,
    pub text: String,
}

pub fn outcome(line: &str) -> Outcome {
    let mut f = line.splitn(4, ' ');
    let kind = f.next().unwrap_or("");
    let num = |s: Option<&str>| -> f64 {
        s.and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a caller outcome: {line:?}"))
    };
    let ms = num(f.next());
    let cpu_ms = num(f.next());
    assert!(
        kind == "ok" || kind == "err",
        "not a caller outcome: {line:?}"
    );
    Outcome {
        ok: kind == "ok",
        ms,
        cpu_ms,
        text: f.next().unwrap_or("").to_string(),
    }
}

pub fn is_outcome(line: &str) -> bool {
    line.starts_with("ok ") || line.starts_with("err ")
}

/// The next outcome line of a caller.
pub fn next_outcome(bus: &mut Bus, id: ProcId) -> Outcome {
    outcome(&bus.wait_line(id, is_outcome))
}

/// `key=value` fields of a summary line ("flood ok=3 busy=0 ... ms=12.5").
pub fn fields(line: &str) -> BTreeMap<String, f64> {
    line.split_whitespace()
        .filter_map(|w| {
            let (k, v) = w.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

pub fn field(line: &str, key: &str) -> f64 {
    *fields(line)
        .get(key)
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// The outcomes a finished caller printed, in order.
pub fn outcomes(f: &Finished) -> Vec<Outcome> {
    f.stdout
        .iter()
        .filter(|l| is_outcome(l))
        .map(|l| outcome(l))
        .collect()
}

/// Starts a probe_server and returns it with its queue id (from "ready <queue id>").
pub fn probe(bus: &mut Bus, name: &str, extra: &[&str]) -> (ProcId, i32) {
    let mut args = vec![name];
    args.extend_from_slice(extra);
    let id = bus.spawn("probe_server", &args);
    let line = bus.wait_line_starting(id, "ready");
    let q = line
        .strip_prefix("ready ")
        .and_then(|q| q.parse().ok())
        .unwrap_or_else(|| panic!("probe_server {name}: {line:?}"));
    (id, q)
}

/// A private queue of the test process, removed when dropped (also when a test fails).
pub struct OwnedQueue(pub QueueId);

impl OwnedQueue {
    pub fn new() -> OwnedQueue {
        OwnedQueue(sysv::create_private(0o600).expect("a queue of the test's"))
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        let _ = sysv::remove(self.0);
    }
}

pub fn queue_exists(q: i32) -> bool {
    all_queues().iter().any(|x| x.msqid == q)
}

/// The entries of the relay's state file: name -> (queue, pid).
pub fn saved_entries(bus: &Bus) -> BTreeMap<String, (i32, i32)> {
    let path = bus
        .state_dir()
        .join(format!("mipc-{:08x}.entries", bus.key() as u32));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    // The relay's own reader (snapshot plus log of changes).
    mipc_relay::state::decode(&text)
        .into_iter()
        .map(|(name, e)| {
            let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
            (name, (e.queue.0, e.pid.unwrap_or(0)))
        })
        .collect()
}
