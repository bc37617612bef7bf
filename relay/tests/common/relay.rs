//! The bus's relay: starting it (`mipc_main`, or another relay a test names), waiting for its
//! `ready` line, killing and restarting it, and reading its log.

use super::bus::Bus;
use super::process::{describe_status, proc_status_field, process_cpu, text_lines};
use super::target::{c_program, cross_path, repo_root, target_command};
use super::watchdog::reap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The relay's stderr so far, and a condition variable signalled on every new line.
pub(super) type RelayLog = Arc<(Mutex<String>, Condvar)>;

/// Starts `mipc_main` on `key` with its state in `state_dir`, and a thread that appends its
/// stderr to `log`. Returns the child, the log thread, and a receiver that gets one message
/// when the relay prints its `ready` line (and is closed if it never does).
pub(super) fn spawn_relay(
    key: i32,
    state_dir: &Path,
    env: &[(String, String)],
    log: &RelayLog,
) -> (Child, JoinHandle<()>, Receiver<()>) {
    // `MIPC_TEST_RELAY` (a c-tests/build program) runs another relay instead of mipc_main: a
    // byte-exact legacy relay, which runs until its stdin closes (kept open by the Child).
    let other = env
        .iter()
        .find(|(k, _)| k == "MIPC_TEST_RELAY")
        .map(|(_, v)| c_program(v));
    // The relay's binary and emulator: the bus's own (MIPC_TEST_RELAY_BIN/_EXEC in its
    // environment: a test mixing architectures), else cross mode's, else ours.
    let relay_var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut cmd = match &other {
        Some(other) => target_command(other, relay_var("MIPC_TEST_RELAY_EXEC")),
        None => relay_command(
            relay_var("MIPC_TEST_RELAY_BIN"),
            relay_var("MIPC_TEST_RELAY_EXEC"),
        ),
    };
    cmd.env("MIPC_ROOT_KEY", key.to_string())
        .env("MIPC_STATE_DIR", state_dir)
        .stdin(if other.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Entries with an empty name are command-line arguments.
    for (k, v) in env {
        if k.is_empty() {
            cmd.arg(v);
        } else {
            cmd.env(k, v);
        }
    }
    // If the test process dies without running Drop, the relay still cleans up.
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut relay = cmd.spawn().expect("spawn mipc_main");
    // The relay's stderr: wait for "ready", keep the rest for failure messages.
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let log = Arc::clone(log);
    let stderr = relay.stderr.take().expect("relay stderr");
    let thread = std::thread::spawn(move || {
        let mut ready_tx = Some(ready_tx);
        for line in text_lines(stderr) {
            // "mipc_main: info: ready: ..." (or "crelay: ready: ..."), not "already".
            let is_ready = line.contains(": ready:");
            {
                let (text, changed) = &*log;
                let mut l = text.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&line);
                l.push('\n');
                changed.notify_all();
            }
            if is_ready {
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
        let (_, changed) = &*log;
        changed.notify_all();
    });
    (relay, thread, ready_rx)
}

/// `mipc_main`, not started: `bin` (a path under the repository) and `exec` (its emulator)
/// when a bus names them (a test mixing architectures), else cross mode's relay, else ours.
pub fn relay_command(bin: Option<&str>, exec: Option<&str>) -> std::process::Command {
    let relay_bin = bin
        .map(|v| repo_root().join(v))
        .or_else(|| cross_path("MIPC_TEST_RELAY_BIN"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mipc_main")));
    target_command(&relay_bin, exec)
}

/// A fresh, empty directory for one bus's relay state file (removed when the bus ends).
pub fn make_state_dir(key: i32) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mipc-test-state-{:08x}-{}",
        key as u32,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the bus's state directory");
    dir
}

impl Bus {
    pub(super) fn wait_relay_ready(&mut self, ready_rx: Receiver<()>) {
        if ready_rx.recv().is_err() {
            // stderr closed without "ready": the relay died (or the watchdog killed it).
            let status = reap(&mut self.relay, &self.live);
            self.relay_status = Some(status);
            panic!(
                "{}: mipc_main never printed ready ({}):\n{}",
                self.label,
                describe_status(status),
                self.relay_log()
            );
        }
    }

    /// Stops the relay with SIGSTOP (as a debugger or a hang would): it keeps its root queue
    /// but takes nothing off it. `continue_relay` resumes it; shutting the bus down (also
    /// when a test fails) continues it first, so a stopped relay never outlives its test.
    pub fn stop_relay(&mut self) {
        assert!(self.relay_status.is_none(), "the relay is not running");
        // SAFETY: the relay is not reaped yet (no status), so its pid is still ours.
        unsafe { libc::kill(self.relay_pid, libc::SIGSTOP) };
        // SIGSTOP is asynchronous: wait until the kernel shows it stopped.
        let stat = format!("/proc/{}/stat", self.relay_pid);
        while !std::fs::read_to_string(&stat)
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('T')))
            .unwrap_or(true)
        {
            std::thread::yield_now();
        }
    }

    /// Resumes a relay stopped by `stop_relay` (SIGCONT).
    pub fn continue_relay(&mut self) {
        if self.relay_status.is_none() {
            // SAFETY: the relay is not reaped yet (no status), so its pid is still ours.
            unsafe { libc::kill(self.relay_pid, libc::SIGCONT) };
        }
    }

    /// Kills the relay with SIGKILL (it cannot clean up: its root queue and state file stay)
    /// and reaps it. Returns its exit status.
    pub fn kill_relay(&mut self) -> ExitStatus {
        self.end_relay(libc::SIGKILL)
    }

    /// Stops the relay cleanly (SIGTERM: it answers what waits on it "stopping", saves its
    /// table and removes its root queue) and reaps it. Returns its exit status.
    pub fn term_relay(&mut self) -> ExitStatus {
        self.end_relay(libc::SIGTERM)
    }

    fn end_relay(&mut self, sig: i32) -> ExitStatus {
        assert!(self.relay_status.is_none(), "the relay is not running");
        // SAFETY: the relay is not reaped yet (no status), so its pid is still ours. A relay
        // a test stopped (stop_relay) must run to act on SIGTERM.
        unsafe {
            libc::kill(self.relay_pid, sig);
            libc::kill(self.relay_pid, libc::SIGCONT);
        }
        let status = reap(&mut self.relay, &self.live);
        self.relay_status = Some(status);
        status
    }

    /// Starts a new relay on the same key and state directory (after `kill_relay` or
    /// `term_relay`) and waits for its `ready` line. Its log is appended to the same relay
    /// log, after a line `--- relay restarted ---`.
    pub fn restart_relay(&mut self) {
        assert!(self.relay_status.is_some(), "the relay still runs");
        {
            let (text, _) = &*self.relay_log;
            text.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str("--- relay restarted ---\n");
        }
        let (relay, thread, ready_rx) =
            spawn_relay(self.key, &self.state_dir, &self.relay_env, &self.relay_log);
        self.relay = relay;
        self.relay_pid = self.relay.id() as i32;
        self.relay_status = None;
        self.relay_log_threads.push(thread);
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.relay_pid);
        self.pids.push(self.relay_pid);
        self.wait_relay_ready(ready_rx);
    }

    /// The directory of this bus's relay state file (`MIPC_STATE_DIR`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Waits until a line of the relay's log (since it started, restarts included) after
    /// the first `skip` lines satisfies `pred`, and returns that line and its index. Panics
    /// with the log when the relay's stderr closes first.
    pub fn wait_log_after(&self, skip: usize, pred: impl Fn(&str) -> bool) -> (usize, String) {
        let (text, changed) = &*self.relay_log;
        let mut guard = text.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((i, l)) = guard.lines().enumerate().skip(skip).find(|(_, l)| pred(l)) {
                return (i, l.to_string());
            }
            let closed = self
                .relay_log_threads
                .last()
                .is_some_and(|t| t.is_finished());
            if closed {
                panic!(
                    "{}: the relay's log ended without the line waited for{}:\n{}",
                    self.label,
                    self.watchdog_note(),
                    *guard
                );
            }
            guard = changed
                .wait_timeout(guard, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for a relay log line containing `needle` and returns it.
    pub fn wait_log(&self, needle: &str) -> String {
        self.wait_log_after(0, |l| l.contains(needle)).1
    }

    /// Like `wait_log`, but gives up after `limit` (or when the relay's log ends) and returns
    /// `None` then.
    pub fn wait_log_for(&self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        let (text, changed) = &*self.relay_log;
        let mut guard = text.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(l) = guard.lines().find(|l| l.contains(needle)) {
                return Some(l.to_string());
            }
            let now = Instant::now();
            let closed = self
                .relay_log_threads
                .last()
                .is_some_and(|t| t.is_finished());
            if closed || now >= deadline {
                return None;
            }
            guard = changed
                .wait_timeout(guard, (deadline - now).min(Duration::from_millis(200)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Number of lines in the relay's log so far.
    pub fn log_lines(&self) -> usize {
        let (text, _) = &*self.relay_log;
        text.lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines()
            .count()
    }

    /// A field of `/proc/<relay>/status` in kB (e.g. `VmRSS`), or a count (`Threads`).
    pub fn relay_status_field(&self, field: &str) -> u64 {
        proc_status_field(self.relay_pid, field)
            .unwrap_or_else(|| panic!("{}: no {field} for the relay", self.label))
    }

    /// How many of the relay's threads bear `name` (`/proc/<relay>/task/*/comm`).
    pub fn relay_threads_named(&self, name: &str) -> usize {
        let tasks = format!("/proc/{}/task", self.relay_pid);
        std::fs::read_dir(&tasks)
            .unwrap_or_else(|e| panic!("{}: {tasks}: {e}", self.label))
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }

    /// The relay's resident memory, in KiB.
    pub fn relay_rss_kib(&self) -> u64 {
        self.relay_status_field("VmRSS")
    }

    /// CPU time the relay's threads have used so far.
    pub fn relay_cpu(&self) -> Duration {
        process_cpu(self.relay_pid)
    }

    /// The relay's pid.
    pub fn relay_pid(&self) -> i32 {
        self.relay_pid
    }

    /// What the relay printed so far.
    pub fn relay_log(&self) -> String {
        let (text, _) = &*self.relay_log;
        text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The relay's exit line ("... stopped ...; up Ns: ...") in its log.
fn exit_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.contains("held for full queues"))
        .unwrap_or_else(|| panic!("no exit line: {log}"))
}

/// The number in `line` right before `what`.
fn number_before(line: &str, what: &str) -> u64 {
    let head = &line[..line.find(what).unwrap_or_else(|| panic!("{line}"))];
    let word = head.trim_end().rsplit([' ', '(']).next().unwrap_or("");
    word.parse().unwrap_or_else(|_| panic!("{what} in {line}"))
}

/// The relay's exit line's "<held> held for full queues (<batched> sent in batches)".
pub fn held_and_batched(log: &str) -> (u64, u64) {
    let line = exit_line(log);
    (
        number_before(line, "held for full queues"),
        number_before(line, "sent in batches"),
    )
}

/// The relay's exit line's "<n> calls answered straight back".
pub fn answered_back(log: &str) -> u64 {
    number_before(exit_line(log), "calls answered straight back")
}

/// The relay's exit line's "<n> requests gathered into batches".
pub fn gathered(log: &str) -> u64 {
    number_before(exit_line(log), "requests gathered into batches")
}
