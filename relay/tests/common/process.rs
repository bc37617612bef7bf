//! Programs started on a bus: spawning them (with the bus's key), reading their stdout line
//! by line as a test waits for it, writing to their stdin, signalling and reaping them.

use super::bus::Bus;
use super::target::{c_program, target_command};
use super::watchdog::reap;
use std::io::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

pub(super) fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{status:?}"),
    }
}

/// Handle of a program started on a bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId(usize);

pub(super) struct Proc {
    pub(super) program: String,
    pub(super) child: Child,
    pub(super) pid: i32,
    pub(super) lines: Receiver<String>,
    pub(super) stdout: Vec<String>,
    pub(super) stdout_open: bool,
    pub(super) stderr: Option<JoinHandle<String>>,
    pub(super) status: Option<ExitStatus>,
    /// Write end of its stdin, for programs started with `spawn_stdin`.
    pub(super) stdin: Option<ChildStdin>,
    /// Lines before this index were matched by `wait_line` already.
    pub(super) cursor: usize,
}

/// The lines of a pipe until end-of-file, invalid UTF-8 replaced: the reader must keep
/// draining whatever a program prints, or the program blocks on a full pipe.
pub(super) fn text_lines(pipe: impl Read) -> impl Iterator<Item = String> {
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

impl Bus {
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
        // The relay's state directory, where direct callers find its routes page; a test
        // that sets its own keeps it.
        if !cmd.get_envs().any(|(k, _)| k == "MIPC_STATE_DIR") {
            cmd.env("MIPC_STATE_DIR", &self.state_dir);
        }
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

    /// Closes a program's stdin (started with `spawn_stdin`: the end of its commands) and
    /// returns its output once it exited.
    pub fn end_input(&mut self, id: ProcId) -> Finished {
        self.procs[id.0].stdin = None;
        self.wait_exit(id)
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
}
