//! Harness for the C scenarios: one relay per test on its own `MIPC_ROOT_KEY`, the C
//! programs of `c-tests/build/` on that bus, and a `Drop` guard that leaves nothing behind.
//!
//! Each bus also gets its own `MIPC_STATE_DIR` (a temporary directory removed at the end), so
//! no test leaves a relay state file in `/dev/shm`; a test may kill the relay with SIGKILL and
//! start a new one on the same key and state (`kill_relay`, `restart_relay`).
//!
//! Synchronisation is by what the programs print (`ready` lines, results), never by sleeping.
//! A watchdog thread SIGKILLs every process of the bus when a test runs too long, so a hung
//! test fails (its reads see end-of-file) instead of hanging the suite.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default limit for one test's bus; `MIPC_TEST_WATCHDOG_SECS` overrides it.
const WATCHDOG_SECS: u64 = 60;

/// The watchdog limit: `MIPC_TEST_WATCHDOG_SECS`, else `WATCHDOG_SECS`.
pub fn default_limit() -> Duration {
    let secs = std::env::var("MIPC_TEST_WATCHDOG_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WATCHDOG_SECS);
    Duration::from_secs(secs)
}

/// A field of `/proc/<pid>/status`: the number before its unit (`VmRSS: 1234 kB` is 1234).
pub fn proc_status_field(pid: i32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// CPU time used so far by every thread of process `pid`, from `/proc/<pid>/task/*/schedstat`
/// (nanoseconds, unlike the 10 ms ticks of `/proc/<pid>/stat`).
pub fn process_cpu(pid: i32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// `c-tests/build/`, where `make c-tests` puts the C programs (`MIPC_TEST_C_BUILD` in cross
/// mode, see `target_command`).
pub fn c_build_dir() -> PathBuf {
    cross_path("MIPC_TEST_C_BUILD").unwrap_or_else(|| repo_root().join("c-tests").join("build"))
}

/// The directory of the release library the C programs link (`cargo build --release`;
/// `MIPC_TEST_LIB_DIR` in cross mode).
pub fn release_lib_dir() -> PathBuf {
    cross_path("MIPC_TEST_LIB_DIR").unwrap_or_else(|| repo_root().join("target").join("release"))
}

/// The top of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Cross mode (`make test-cross`, cross.mk): the C programs and the relay are built for
/// another architecture and run under an emulator, the kernel of this machine being unable to
/// start them (no binfmt_misc). The environment says where they are and how to run them:
/// `MIPC_TEST_C_BUILD` (the C build folder), `MIPC_TEST_LIB_DIR` (the library's folder),
/// `MIPC_TEST_RELAY_BIN` (`mipc_main`), and `MIPC_TEST_EXEC`, the command put in front of
/// every program (words split at spaces, e.g. `qemu-arm -L /usr/arm-linux-gnueabihf`).
/// Relative paths are relative to the top of the repository.
///
/// This returns the command that starts `program` (through `exec`, else `MIPC_TEST_EXEC`,
/// else directly).
pub fn target_command(program: &Path, exec: Option<&str>) -> Command {
    let exec = exec
        .map(str::to_string)
        .or_else(|| std::env::var("MIPC_TEST_EXEC").ok())
        .unwrap_or_default();
    let mut words = exec.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut cmd = Command::new(first);
            cmd.args(words).arg(program);
            // cargo's LD_LIBRARY_PATH names host libraries (a host libmipc.so among them),
            // which musl's loader would try and fail on instead of skipping.
            cmd.env_remove("LD_LIBRARY_PATH");
            cmd
        }
        None => Command::new(program),
    }
}

/// The reason the programs cannot do what a test needs (ASan, valgrind, host measurements)
/// when they run under an emulator (`MIPC_TEST_EXEC` set), printed by tests that skip then.
pub fn emulated() -> Option<String> {
    std::env::var("MIPC_TEST_EXEC")
        .ok()
        .filter(|e| !e.trim().is_empty())
}

/// A path from the environment (cross mode), relative to the top of the repository.
fn cross_path(var: &str) -> Option<PathBuf> {
    let v = std::env::var_os(var).filter(|v| !v.is_empty())?;
    Some(repo_root().join(v))
}

/// A C program (or file) under `c-tests/build/`; panics with what to run when it is missing.
pub fn c_program(rel: &str) -> PathBuf {
    let path = c_build_dir().join(rel);
    if !path.exists() {
        let make = if rel.starts_with("asan/") {
            "make c-tests-asan"
        } else {
            "make c-tests"
        };
        panic!(
            "{} is missing: build the C programs first (`cargo build --release && {make}`)",
            path.display()
        );
    }
    path
}

/// What a finished program left.
#[derive(Debug)]
pub struct Finished {
    /// Program path relative to `c-tests/build/`.
    pub program: String,
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed to stdout, one entry per line.
    pub stdout: Vec<String>,
    /// Everything it printed to stderr.
    pub stderr: String,
}

impl Finished {
    /// Whether one stdout line equals `line`.
    pub fn has_line(&self, line: &str) -> bool {
        self.stdout.iter().any(|l| l == line)
    }

    /// The last stdout line.
    pub fn last_line(&self) -> &str {
        self.stdout.last().map(String::as_str).unwrap_or("")
    }

    /// Panics unless an `errors` run (c-tests/errors.c) passed every check: status 0, a last
    /// line `ok N`, and no `FAIL` line.
    pub fn assert_errors_passed(&self) -> &Self {
        self.assert_success();
        assert!(self.last_line().starts_with("ok "), "{}", self.describe());
        assert!(
            !self.stdout.iter().any(|l| l.starts_with("FAIL")),
            "{}",
            self.describe()
        );
        self
    }

    /// Panics with the whole output unless the program exited with status 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "{} failed: {}",
            self.program,
            self.describe()
        );
        self
    }

    /// Panics unless one stdout line starts with `prefix`.
    pub fn assert_line_starts(&self, prefix: &str) -> &Self {
        assert!(
            self.stdout.iter().any(|l| l.starts_with(prefix)),
            "{}: no line starting with {prefix:?} in its output: {}",
            self.program,
            self.describe()
        );
        self
    }

    /// Panics unless one stdout line equals `line`.
    pub fn assert_line(&self, line: &str) -> &Self {
        assert!(
            self.has_line(line),
            "{}: no line {line:?} in its output: {}",
            self.program,
            self.describe()
        );
        self
    }

    /// Status, stdout and stderr, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "{} ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.program,
            describe_status(self.status),
            self.stdout.join("\n"),
            self.stderr.trim_end()
        )
    }
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{status:?}"),
    }
}

/// Handle of a program started on a bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId(usize);

struct Proc {
    program: String,
    child: Child,
    pid: i32,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stdout_open: bool,
    stderr: Option<JoinHandle<String>>,
    status: Option<ExitStatus>,
    /// Write end of its stdin, for programs started with `spawn_stdin`.
    stdin: Option<ChildStdin>,
    /// Lines before this index were matched by `wait_line` already.
    cursor: usize,
}

/// One SysV queue as `/proc/sysvipc/msg` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// Its key (0 for `IPC_PRIVATE`).
    pub key: i32,
    /// Its id.
    pub msqid: i32,
    /// Permission bits.
    pub perms: u32,
    /// Bytes queued.
    pub cbytes: u64,
    /// Messages queued.
    pub qnum: u64,
    /// Last sender.
    pub lspid: i32,
    /// Last receiver.
    pub lrpid: i32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
}

/// Every message queue of the system.
pub fn all_queues() -> Vec<QueueInfo> {
    let text = std::fs::read_to_string("/proc/sysvipc/msg").expect("read /proc/sysvipc/msg");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 {
                return None;
            }
            Some(QueueInfo {
                key: f[0].parse::<i64>().ok()? as i32,
                msqid: f[1].parse().ok()?,
                perms: u32::from_str_radix(f[2], 8).ok()?,
                cbytes: f[3].parse().ok()?,
                qnum: f[4].parse().ok()?,
                lspid: f[5].parse().ok()?,
                lrpid: f[6].parse().ok()?,
                uid: f[7].parse().ok()?,
                gid: f[8].parse().ok()?,
            })
        })
        .collect()
}

/// The lines of a pipe until end-of-file, invalid UTF-8 replaced: the reader must keep
/// draining whatever a program prints, or the program blocks on a full pipe.
fn text_lines(pipe: impl Read) -> impl Iterator<Item = String> {
    let mut reader = BufReader::new(pipe);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
        }
    })
}

/// Live (not yet reaped) pids the watchdog may kill. A pid leaves this set before it is
/// reaped, so a kill never reaches a recycled pid.
type LivePids = Arc<Mutex<Vec<i32>>>;

struct Watchdog {
    cancel: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(label: String, limit: Duration, live: LivePids) -> Watchdog {
        let (cancel, wait) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        let thread = std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                flag.store(true, Ordering::SeqCst);
                eprintln!("watchdog: {label} still running after {limit:?}: killing its processes");
                let pids = live.lock().unwrap_or_else(|e| e.into_inner());
                for &pid in pids.iter() {
                    // SAFETY: `pid` is one of our children that has not been reaped (see
                    // `LivePids`), so it cannot name another process.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        });
        Watchdog {
            cancel: Some(cancel),
            thread: Some(thread),
            fired,
        }
    }

    fn stop(&mut self) {
        self.cancel.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until `child` has exited without reaping it, then takes its pid out of `live`,
/// then reaps it. See `LivePids`.
fn reap(child: &mut Child, live: &LivePids) -> ExitStatus {
    let pid = child.id() as i32;
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value for waitid to overwrite.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`; WNOWAIT leaves the child waitable.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            // Already reaped (ECHILD): child.wait() below returns the stored status.
            break;
        }
    }
    live.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pid);
    child.wait().expect("wait for a child")
}

/// The relay's stderr so far, and a condition variable signalled on every new line.
type RelayLog = Arc<(Mutex<String>, Condvar)>;

/// A relay on its own key, the programs started on it, and their cleanup.
pub struct Bus {
    label: String,
    key: i32,
    relay: Child,
    relay_pid: i32,
    relay_log: RelayLog,
    relay_log_threads: Vec<JoinHandle<()>>,
    relay_status: Option<ExitStatus>,
    /// Environment of the relay; entries with an empty name are its arguments.
    relay_env: Vec<(String, String)>,
    state_dir: PathBuf,
    procs: Vec<Proc>,
    pids: Vec<i32>,
    live: LivePids,
    watchdog: Watchdog,
    shut_down: bool,
}

/// What `Bus::shutdown` found.
#[derive(Debug)]
pub struct Shutdown {
    /// The relay's exit status after SIGTERM.
    pub relay_status: ExitStatus,
    /// Queues of the bus still present after the relay exited, before the sweep.
    pub leftovers: Vec<QueueInfo>,
    /// Whether the watchdog had to kill the bus.
    pub watchdog_fired: bool,
    /// The relay's stderr.
    pub relay_log: String,
}

fn unique_key() -> i32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let in_use: HashSet<i32> = all_queues().into_iter().map(|q| q.key).collect();
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut x = (std::process::id() as u64) << 32
            ^ (COUNTER.fetch_add(1, Ordering::Relaxed) as u64) << 20
            ^ nanos as u64;
        // splitmix64 finaliser
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        // Positive, never 0 (IPC_PRIVATE), never the default "MIPC" key, not in use.
        let key = ((x as u32) & 0x3fff_ffff | 0x1000_0000) as i32;
        if key != mipc::wire::MIPC_MSG_ROOT_KEY && !in_use.contains(&key) {
            return key;
        }
    }
}

/// Starts `mipc_main` on `key` with its state in `state_dir`, and a thread that appends its
/// stderr to `log`. Returns the child, the log thread, and a receiver that gets one message
/// when the relay prints its `ready` line (and is closed if it never does).
fn spawn_relay(
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
    let relay_bin = relay_var("MIPC_TEST_RELAY_BIN")
        .map(|v| repo_root().join(v))
        .or_else(|| cross_path("MIPC_TEST_RELAY_BIN"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mipc_main")));
    let mut cmd = target_command(
        other.as_deref().unwrap_or(&relay_bin),
        relay_var("MIPC_TEST_RELAY_EXEC"),
    );
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

/// A fresh, empty directory for one bus's relay state file (removed when the bus ends).
fn make_state_dir(key: i32) -> PathBuf {
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
    /// Starts a relay on a fresh key and waits for its `ready` line.
    pub fn start(label: &str) -> Bus {
        Bus::start_with_limit(label, default_limit())
    }

    /// Like `start`, with the watchdog limit given.
    pub fn start_with_limit(label: &str, limit: Duration) -> Bus {
        Bus::start_with(label, limit, &[])
    }

    /// Like `start`, with the watchdog limit and extra environment for the relay
    /// (e.g. `MIPC_QUEUE_MODE`); a restarted relay gets the same environment.
    pub fn start_with(label: &str, limit: Duration, relay_env: &[(&str, &str)]) -> Bus {
        Bus::start_with_args(label, limit, relay_env, &[])
    }

    /// Like `start_with`, with command-line arguments for the relay too (e.g. `-n 256`).
    pub fn start_with_args(
        label: &str,
        limit: Duration,
        relay_env: &[(&str, &str)],
        relay_args: &[&str],
    ) -> Bus {
        let key = unique_key();
        let state_dir = make_state_dir(key);
        let relay_env: Vec<(String, String)> = relay_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(relay_args.iter().map(|a| (String::new(), a.to_string())))
            .collect();
        let relay_log: RelayLog = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let (relay, thread, ready_rx) = spawn_relay(key, &state_dir, &relay_env, &relay_log);
        let relay_pid = relay.id() as i32;
        let live: LivePids = Arc::new(Mutex::new(vec![relay_pid]));
        let watchdog = Watchdog::start(label.to_string(), limit, Arc::clone(&live));

        let mut bus = Bus {
            label: label.to_string(),
            key,
            relay,
            relay_pid,
            relay_log,
            relay_log_threads: vec![thread],
            relay_status: None,
            relay_env,
            state_dir,
            procs: Vec::new(),
            pids: vec![relay_pid],
            live,
            watchdog,
            shut_down: false,
        };
        bus.wait_relay_ready(ready_rx);
        bus
    }

    fn wait_relay_ready(&mut self, ready_rx: Receiver<()>) {
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

    /// Kills the relay with SIGKILL (it cannot clean up: its root queue and state file stay)
    /// and reaps it. Returns its exit status.
    pub fn kill_relay(&mut self) -> ExitStatus {
        assert!(self.relay_status.is_none(), "the relay is not running");
        // SAFETY: the relay is not reaped yet (no status), so its pid is still ours.
        unsafe { libc::kill(self.relay_pid, libc::SIGKILL) };
        let status = reap(&mut self.relay, &self.live);
        self.relay_status = Some(status);
        status
    }

    /// Starts a new relay on the same key and state directory (after `kill_relay`) and
    /// waits for its `ready` line. Its log is appended to the same relay log, after a line
    /// `--- relay restarted ---`.
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

    /// The relay's resident memory, in KiB.
    pub fn relay_rss_kib(&self) -> u64 {
        self.relay_status_field("VmRSS")
    }

    /// CPU time the relay's threads have used so far.
    pub fn relay_cpu(&self) -> Duration {
        process_cpu(self.relay_pid)
    }

    /// The bus's `MIPC_ROOT_KEY`.
    pub fn key(&self) -> i32 {
        self.key
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

    /// Starts `c-tests/build/<program>` with `args` on this bus.
    pub fn spawn(&mut self, program: &str, args: &[&str]) -> ProcId {
        self.spawn_env(program, args, &[])
    }

    /// Starts `c-tests/build/<program>` with `args` and extra environment on this bus.
    pub fn spawn_env(&mut self, program: &str, args: &[&str], env: &[(&str, &str)]) -> ProcId {
        let mut cmd = target_command(&c_program(program), None);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.spawn_command(program, cmd)
    }

    /// Starts `c-tests/build/<program>` with `args` and extra environment on this bus, its
    /// stdin a pipe that `write_line` writes to.
    pub fn spawn_stdin(&mut self, program: &str, args: &[&str], env: &[(&str, &str)]) -> ProcId {
        let mut cmd = target_command(&c_program(program), None);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.spawn_command_io(program, cmd, true)
    }

    /// Starts a prepared command (e.g. a C program under valgrind) on this bus; `label`
    /// names it in failure messages.
    pub fn spawn_command(&mut self, label: &str, cmd: Command) -> ProcId {
        self.spawn_command_io(label, cmd, false)
    }

    fn spawn_command_io(&mut self, label: &str, mut cmd: Command, stdin: bool) -> ProcId {
        let shown = format!("{cmd:?}");
        cmd.env("MIPC_ROOT_KEY", self.key.to_string())
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // If the test process dies without running Drop, take the program with it.
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
        let pid = child.id() as i32;
        let stdin = child.stdin.take();
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pid);
        self.pids.push(pid);

        let (tx, lines) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("child stdout");
        std::thread::spawn(move || {
            for line in text_lines(stdout) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("child stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        self.procs.push(Proc {
            program: label.to_string(),
            child,
            pid,
            lines,
            stdout: Vec::new(),
            stdout_open: true,
            stderr: Some(stderr),
            status: None,
            stdin,
            cursor: 0,
        });
        ProcId(self.procs.len() - 1)
    }

    /// Starts a program and waits for its `ready` line.
    pub fn spawn_ready(&mut self, program: &str, args: &[&str]) -> ProcId {
        let id = self.spawn(program, args);
        self.wait_ready(id);
        id
    }

    /// The pid of a started program.
    pub fn pid(&self, id: ProcId) -> i32 {
        self.procs[id.0].pid
    }

    /// Writes `line` and a newline to the stdin of a program started with `spawn_stdin`.
    pub fn write_line(&mut self, id: ProcId, line: &str) {
        let p = &mut self.procs[id.0];
        let stdin = p
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{} was not started with spawn_stdin", p.program));
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("write to the stdin of {}: {e}", p.program));
    }

    /// Waits for the next stdout line of a program (after the lines earlier `wait_line`
    /// calls returned) that satisfies `pred`, and returns it. Panics with the program's
    /// output if it ends first.
    pub fn wait_line(&mut self, id: ProcId, pred: impl Fn(&str) -> bool) -> String {
        match self.wait_line_for(id, pred, None) {
            Some(line) => line,
            None => {
                let finished = self.wait_exit(id);
                panic!(
                    "{}: {} ended without the line waited for{}: {}\n--- relay ---\n{}",
                    self.label,
                    finished.program,
                    self.watchdog_note(),
                    finished.describe(),
                    self.relay_log()
                );
            }
        }
    }

    /// Waits for the next stdout line of a program that starts with `prefix`.
    pub fn wait_line_starting(&mut self, id: ProcId, prefix: &str) -> String {
        self.wait_line(id, |l| l.starts_with(prefix))
    }

    /// Like `wait_line`, but gives up after `limit` (`None`: never) and returns `None` then,
    /// or when the program's stdout closed first.
    pub fn wait_line_for(
        &mut self,
        id: ProcId,
        pred: impl Fn(&str) -> bool,
        limit: Option<Duration>,
    ) -> Option<String> {
        let deadline = limit.map(|l| Instant::now() + l);
        let p = &mut self.procs[id.0];
        if let Some(i) = (p.cursor..p.stdout.len()).find(|&i| pred(&p.stdout[i])) {
            p.cursor = i + 1;
            return Some(p.stdout[i].clone());
        }
        while p.stdout_open {
            let next = match deadline {
                None => p.lines.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(d) => p
                    .lines
                    .recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match next {
                Ok(line) => {
                    let hit = pred(&line);
                    p.stdout.push(line);
                    if hit {
                        p.cursor = p.stdout.len();
                        return p.stdout.last().cloned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => p.stdout_open = false,
            }
        }
        None
    }

    /// The stdout lines of a program read so far (by `wait_*` calls).
    pub fn lines_so_far(&self, id: ProcId) -> Vec<String> {
        self.procs[id.0].stdout.clone()
    }

    /// Waits for the line `ready` from a program; panics with its output if it ends first.
    pub fn wait_ready(&mut self, id: ProcId) {
        let p = &mut self.procs[id.0];
        let is_ready = |l: &str| l == "ready" || l.starts_with("ready ");
        if p.stdout.iter().any(|l| is_ready(l)) {
            return;
        }
        while p.stdout_open {
            match p.lines.recv() {
                Ok(line) => {
                    let ready = is_ready(&line);
                    p.stdout.push(line);
                    if ready {
                        return;
                    }
                }
                Err(_) => p.stdout_open = false,
            }
        }
        let finished = self.wait_exit(id);
        panic!(
            "{}: {} ended without printing ready{}: {}\n--- relay ---\n{}",
            self.label,
            finished.program,
            self.watchdog_note(),
            finished.describe(),
            self.relay_log()
        );
    }

    /// Waits for a program to exit and returns its output (also for a program that was
    /// killed: then the status says so).
    pub fn wait_exit(&mut self, id: ProcId) -> Finished {
        let live = Arc::clone(&self.live);
        let p = &mut self.procs[id.0];
        while p.stdout_open {
            match p.lines.recv() {
                Ok(line) => p.stdout.push(line),
                Err(_) => p.stdout_open = false,
            }
        }
        let status = match p.status {
            Some(s) => s,
            None => {
                let s = reap(&mut p.child, &live);
                p.status = Some(s);
                s
            }
        };
        let stderr = p
            .stderr
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        Finished {
            program: p.program.clone(),
            status,
            stdout: p.stdout.clone(),
            stderr,
        }
    }

    /// Sends `sig` to a program that has not been reaped yet.
    pub fn signal(&mut self, id: ProcId, sig: i32) {
        let p = &self.procs[id.0];
        if p.status.is_none() {
            // SAFETY: the child is not reaped (status is None), so its pid is still ours.
            unsafe { libc::kill(p.pid, sig) };
        }
    }

    /// SIGKILLs a program and returns its output.
    pub fn kill(&mut self, id: ProcId) -> Finished {
        self.signal(id, libc::SIGKILL);
        self.wait_exit(id)
    }

    /// Runs a program to completion and returns its output.
    pub fn run(&mut self, program: &str, args: &[&str]) -> Finished {
        let id = self.spawn(program, args);
        self.wait_exit(id)
    }

    /// A note for failure messages when the watchdog killed the bus.
    pub fn watchdog_note(&self) -> String {
        if self.watchdog.fired.load(Ordering::SeqCst) {
            " (the watchdog killed it: the test ran too long)".to_string()
        } else {
            String::new()
        }
    }

    /// The queues of this bus: the root key, or last sent/received by one of our processes.
    pub fn queues(&self) -> Vec<QueueInfo> {
        let ours: HashSet<i32> = self.pids.iter().copied().collect();
        all_queues()
            .into_iter()
            .filter(|q| q.key == self.key || ours.contains(&q.lspid) || ours.contains(&q.lrpid))
            .collect()
    }

    /// Kills every program (SIGKILL), stops the relay with SIGTERM, records which queues
    /// of the bus are still there, then removes them. Runs once; `Drop` calls it too.
    pub fn shutdown(&mut self) -> Shutdown {
        assert!(!self.shut_down, "shutdown twice");
        self.shut_down = true;
        let live = Arc::clone(&self.live);
        for p in &mut self.procs {
            if p.status.is_none() {
                // SAFETY: not reaped yet, so the pid is still our child's.
                unsafe { libc::kill(p.pid, libc::SIGKILL) };
                p.status = Some(reap(&mut p.child, &live));
            }
        }
        let relay_status = match self.relay_status {
            Some(status) => status,
            None => {
                // SAFETY: the relay is not reaped yet (no status), so its pid is still ours.
                unsafe { libc::kill(self.relay_pid, libc::SIGTERM) };
                // The watchdog still runs: a relay that ignores SIGTERM gets SIGKILL.
                reap(&mut self.relay, &live)
            }
        };
        self.relay_status = Some(relay_status);
        self.watchdog.stop();
        for t in self.relay_log_threads.drain(..) {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);

        let leftovers = self.queues();
        for q in &leftovers {
            // SAFETY: IPC_RMID takes no buffer; the queue is one of this bus's.
            unsafe { libc::msgctl(q.msqid, libc::IPC_RMID, std::ptr::null_mut()) };
        }
        Shutdown {
            relay_status,
            leftovers,
            watchdog_fired: self.watchdog.fired.load(Ordering::SeqCst),
            relay_log: self.relay_log(),
        }
    }

    /// Ends the scenario: shuts the bus down and asserts that the relay exited cleanly on
    /// SIGTERM and that the relay and library removed every queue of the bus by themselves.
    pub fn finish(mut self) {
        let s = self.shutdown();
        let mut problems = String::new();
        if s.watchdog_fired {
            problems.push_str("the watchdog had to kill the bus\n");
        }
        if !s.relay_status.success() {
            let _ = writeln!(
                problems,
                "mipc_main did not exit cleanly on SIGTERM: {}",
                describe_status(s.relay_status)
            );
        }
        if !s.leftovers.is_empty() {
            let _ = writeln!(
                problems,
                "queues left behind after the relay exited (removed by the sweep now; relay pid {}, \
                 program pids {:?}):",
                self.relay_pid,
                &self.pids[1..]
            );
            for q in &s.leftovers {
                let _ = writeln!(problems, "  {q:?}");
            }
        }
        assert!(
            problems.is_empty(),
            "{}:\n{problems}--- relay ---\n{}",
            self.label,
            s.relay_log
        );
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        if self.shut_down {
            return;
        }
        let s = self.shutdown();
        if std::thread::panicking() {
            eprintln!(
                "--- {}: relay log ---\n{}",
                self.label,
                s.relay_log.trim_end()
            );
        }
        if !s.leftovers.is_empty() {
            eprintln!(
                "{}: swept {} queue(s) left behind: {:?}",
                self.label,
                s.leftovers.len(),
                s.leftovers
            );
        }
    }
}
