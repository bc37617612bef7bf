//! The test bus: a relay on its own key, the programs started on it, and the cleanup that
//! leaves nothing behind. `Bus::builder` starts one; `shutdown`, `finish` and `Drop` end it.

use super::process::{describe_status, Proc};
use super::queues::{unique_key, QueueInfo};
use super::relay::{make_state_dir, spawn_relay, RelayLog};
use super::watchdog::{default_limit, reap, LivePids, Watchdog};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A relay on its own key, the programs started on it, and their cleanup.
pub struct Bus {
    pub(super) label: String,
    pub(super) key: i32,
    pub(super) relay: Child,
    pub(super) relay_pid: i32,
    pub(super) relay_log: RelayLog,
    pub(super) relay_log_threads: Vec<JoinHandle<()>>,
    pub(super) relay_status: Option<ExitStatus>,
    /// Environment of the relay; entries with an empty name are its arguments.
    pub(super) relay_env: Vec<(String, String)>,
    pub(super) state_dir: PathBuf,
    pub(super) procs: Vec<Proc>,
    pub(super) pids: Vec<i32>,
    pub(super) live: LivePids,
    pub(super) watchdog: Watchdog,
    pub(super) shut_down: bool,
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

/// How to start a test bus: `Bus::builder(label)`, then what differs from the defaults, then
/// `start`. A restarted relay (`restart_relay`) gets the same environment and arguments.
#[must_use = "a BusBuilder does nothing until start()"]
pub struct BusBuilder {
    label: String,
    limit: Duration,
    relay_env: Vec<(String, String)>,
    relay_args: Vec<String>,
}

impl BusBuilder {
    /// The watchdog limit (default: `default_limit()`).
    pub fn limit(mut self, limit: Duration) -> BusBuilder {
        self.limit = limit;
        self
    }

    /// Extra environment for the relay (e.g. `MIPC_QUEUE_MODE`), added to any given before.
    pub fn relay_env(mut self, env: &[(&str, &str)]) -> BusBuilder {
        self.relay_env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Command-line arguments for the relay (e.g. `-n 256`), after any given before.
    pub fn relay_args(mut self, args: &[&str]) -> BusBuilder {
        self.relay_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Starts the relay on a fresh key and waits for its `ready` line.
    pub fn start(self) -> Bus {
        let BusBuilder {
            label,
            limit,
            relay_env,
            relay_args,
        } = self;
        let key = unique_key();
        let state_dir = make_state_dir(key);
        // One list for spawn_relay: entries with an empty name are the arguments.
        let relay_env: Vec<(String, String)> = relay_env
            .into_iter()
            .chain(relay_args.into_iter().map(|a| (String::new(), a)))
            .collect();
        let relay_log: RelayLog = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let (relay, thread, ready_rx) = spawn_relay(key, &state_dir, &relay_env, &relay_log);
        let relay_pid = relay.id() as i32;
        let live: LivePids = Arc::new(Mutex::new(vec![relay_pid]));
        let watchdog = Watchdog::start(label.clone(), limit, Arc::clone(&live));

        let mut bus = Bus {
            label,
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
}

impl Bus {
    /// A builder for a bus named `label` (in failure messages) with the defaults: the
    /// default watchdog limit, no extra relay environment or arguments.
    pub fn builder(label: &str) -> BusBuilder {
        BusBuilder {
            label: label.to_string(),
            limit: default_limit(),
            relay_env: Vec::new(),
            relay_args: Vec::new(),
        }
    }

    // Thin conveniences over `builder`, kept for the tests that call them.

    /// Starts a relay on a fresh key and waits for its `ready` line.
    pub fn start(label: &str) -> Bus {
        Bus::builder(label).start()
    }

    /// Like `start`, with the watchdog limit given.
    pub fn start_with_limit(label: &str, limit: Duration) -> Bus {
        Bus::builder(label).limit(limit).start()
    }

    /// Like `start`, with the watchdog limit and extra environment for the relay
    /// (e.g. `MIPC_QUEUE_MODE`); a restarted relay gets the same environment.
    pub fn start_with(label: &str, limit: Duration, relay_env: &[(&str, &str)]) -> Bus {
        Bus::builder(label)
            .limit(limit)
            .relay_env(relay_env)
            .start()
    }

    /// Like `start_with`, with command-line arguments for the relay too (e.g. `-n 256`).
    pub fn start_with_args(
        label: &str,
        limit: Duration,
        relay_env: &[(&str, &str)],
        relay_args: &[&str],
    ) -> Bus {
        Bus::builder(label)
            .limit(limit)
            .relay_env(relay_env)
            .relay_args(relay_args)
            .start()
    }

    /// The bus's `MIPC_ROOT_KEY`.
    pub fn key(&self) -> i32 {
        self.key
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
                // A relay a test stopped (stop_relay) must run to see SIGTERM.
                unsafe {
                    libc::kill(self.relay_pid, libc::SIGCONT);
                    libc::kill(self.relay_pid, libc::SIGTERM)
                };
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
    pub fn finish(self) {
        self.finish_with_log();
    }

    /// [`Bus::finish`], returning the relay's log (its exit line counts what it did).
    pub fn finish_with_log(mut self) -> String {
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
        s.relay_log
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
