//! Harness for the C scenarios: one relay per test on its own `MIPC_ROOT_KEY`, the C
//! programs of `c-tests/build/` on that bus, and a `Drop` guard that leaves nothing behind.
//!
//! Synchronisation is by what the programs print (`ready` lines, results), never by sleeping.
//! A watchdog thread SIGKILLs every process of the bus when a test runs too long, so a hung
//! test fails (its reads see end-of-file) instead of hanging the suite.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default limit for one test's bus; `MIPC_TEST_WATCHDOG_SECS` overrides it.
const WATCHDOG_SECS: u64 = 60;

/// `c-tests/build/`, where `make c-tests` puts the C programs.
pub fn c_build_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("c-tests")
        .join("build")
}

/// The directory of the release library the C programs link (`cargo build --release`).
pub fn release_lib_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("release")
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
}

/// One SysV queue as `/proc/sysvipc/msg` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// Its key (0 for `IPC_PRIVATE`).
    pub key: i32,
    /// Its id.
    pub msqid: i32,
    /// Bytes queued.
    pub cbytes: u64,
    /// Messages queued.
    pub qnum: u64,
    /// Last sender.
    pub lspid: i32,
    /// Last receiver.
    pub lrpid: i32,
}

/// Every message queue of the system.
pub fn all_queues() -> Vec<QueueInfo> {
    let text = std::fs::read_to_string("/proc/sysvipc/msg").expect("read /proc/sysvipc/msg");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 7 {
                return None;
            }
            Some(QueueInfo {
                key: f[0].parse::<i64>().ok()? as i32,
                msqid: f[1].parse().ok()?,
                cbytes: f[3].parse().ok()?,
                qnum: f[4].parse().ok()?,
                lspid: f[5].parse().ok()?,
                lrpid: f[6].parse().ok()?,
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

/// A relay on its own key, the programs started on it, and their cleanup.
pub struct Bus {
    label: String,
    key: i32,
    relay: Child,
    relay_pid: i32,
    relay_log: Arc<Mutex<String>>,
    relay_log_thread: Option<JoinHandle<()>>,
    relay_status: Option<ExitStatus>,
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

impl Bus {
    /// Starts a relay on a fresh key and waits for its `ready` line.
    pub fn start(label: &str) -> Bus {
        let limit = std::env::var("MIPC_TEST_WATCHDOG_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(WATCHDOG_SECS);
        Bus::start_with_limit(label, Duration::from_secs(limit))
    }

    /// Like `start`, with the watchdog limit given.
    pub fn start_with_limit(label: &str, limit: Duration) -> Bus {
        let key = unique_key();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mipc_main"));
        cmd.env("MIPC_ROOT_KEY", key.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // If the test process dies without running Drop, the relay still cleans up.
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut relay = cmd.spawn().expect("spawn mipc_main");
        let relay_pid = relay.id() as i32;
        let live: LivePids = Arc::new(Mutex::new(vec![relay_pid]));
        let watchdog = Watchdog::start(label.to_string(), limit, Arc::clone(&live));

        // The relay's stderr: wait for "ready", keep the rest for failure messages.
        let relay_log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let log = Arc::clone(&relay_log);
        let stderr = relay.stderr.take().expect("relay stderr");
        let relay_log_thread = std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in text_lines(stderr) {
                let is_ready = line.contains("ready");
                {
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.push_str(&line);
                    l.push('\n');
                }
                if is_ready {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });

        let mut bus = Bus {
            label: label.to_string(),
            key,
            relay,
            relay_pid,
            relay_log,
            relay_log_thread: Some(relay_log_thread),
            relay_status: None,
            procs: Vec::new(),
            pids: vec![relay_pid],
            live,
            watchdog,
            shut_down: false,
        };
        if ready_rx.recv().is_err() {
            // stderr closed without "ready": the relay died (or the watchdog killed it).
            let status = reap(&mut bus.relay, &bus.live);
            bus.relay_status = Some(status);
            panic!(
                "{label}: mipc_main never printed ready ({}):\n{}",
                describe_status(status),
                bus.relay_log()
            );
        }
        bus
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
        self.relay_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Starts `c-tests/build/<program>` with `args` on this bus.
    pub fn spawn(&mut self, program: &str, args: &[&str]) -> ProcId {
        self.spawn_env(program, args, &[])
    }

    /// Starts `c-tests/build/<program>` with `args` and extra environment on this bus.
    pub fn spawn_env(&mut self, program: &str, args: &[&str], env: &[(&str, &str)]) -> ProcId {
        let mut cmd = Command::new(c_program(program));
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.spawn_command(program, cmd)
    }

    /// Starts a prepared command (e.g. a C program under valgrind) on this bus; `label`
    /// names it in failure messages.
    pub fn spawn_command(&mut self, label: &str, mut cmd: Command) -> ProcId {
        let shown = format!("{cmd:?}");
        cmd.env("MIPC_ROOT_KEY", self.key.to_string())
            .stdin(Stdio::null())
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

    /// Waits for the line `ready` from a program; panics with its output if it ends first.
    pub fn wait_ready(&mut self, id: ProcId) {
        let p = &mut self.procs[id.0];
        if p.stdout.iter().any(|l| l == "ready") {
            return;
        }
        while p.stdout_open {
            match p.lines.recv() {
                Ok(line) => {
                    let ready = line == "ready";
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
        if let Some(t) = self.relay_log_thread.take() {
            let _ = t.join();
        }

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
