//! The relay process: root queue, signals, the receive loop, and the SysV [`Port`].

use crate::log::Limiter;
use crate::pending::{self, PendingStore};
use crate::router::Pending;
use crate::router::{Handled, Port, Rejected, Router};
use crate::state;
use crate::watcher::Watcher;
use mipc::os::{self, signals::StopSignals};
use mipc::sysv::{self, QueueError, QueueId, RecvFlags};
use mipc::wire::MsgBuf;
use mipc::MipcName;
use std::fmt;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Key of the root queue.
    pub key: i32,
    /// Permission bits of the root queue.
    pub mode: u32,
    /// Most entries kept.
    pub max_entries: usize,
    /// Byte capacity to give the root queue (`msg_qbytes`); 0 leaves the system's
    /// (`kernel.msgmnb`, 16 KiB by default). See [`DEFAULT_ROOT_QUEUE_BYTES`].
    pub queue_bytes: u64,
}

/// The root queue's default capacity: 256 KiB, room for a burst of 128 full-size (2 KiB)
/// messages, e.g. 16 daemons sending 8 each, or about 2 000 small ones (a registration
/// storm at boot), where the system's 16 KiB holds 7 full-size messages. Memory is only
/// used by messages actually waiting. docs/PERFORMANCE.md has the measurement behind it.
pub const DEFAULT_ROOT_QUEUE_BYTES: u64 = 256 * 1024;

/// Gives the root queue `bytes` of capacity when it has less. Above `kernel.msgmnb` that
/// needs `CAP_SYS_RESOURCE` (a relay started as root has it); without it the queue keeps
/// its size and the relay says so once.
fn size_root(q: QueueId, bytes: u64) {
    let Ok(st) = sysv::stat(q) else { return };
    if bytes == 0 || st.capacity >= bytes {
        return;
    }
    match sysv::set_capacity(q, bytes) {
        Ok(()) => logln!(
            Debug,
            "root queue capacity {} -> {bytes} bytes",
            st.capacity
        ),
        Err(e) => logln!(
            Info,
            "root queue keeps {} bytes, not {bytes}: {e} (raising it needs CAP_SYS_RESOURCE)",
            st.capacity
        ),
    }
}

/// Why the relay could not run.
#[derive(Debug)]
pub enum RelayError {
    /// The root queue could not be made or opened.
    RootQueue(QueueError),
    /// Another relay serves this key.
    AlreadyRunning(i32),
    /// A thread or descriptor could not be made.
    Setup(std::io::Error),
    /// Receiving from the root queue failed for good.
    Receive(QueueError),
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::RootQueue(e) => write!(f, "cannot open the root queue: {e}"),
            RelayError::AlreadyRunning(pid) => {
                write!(f, "another mipc_main (pid {pid}) serves this key")
            }
            RelayError::Setup(e) => write!(f, "setup failed: {e}"),
            RelayError::Receive(e) => write!(f, "receiving from the root queue failed: {e}"),
        }
    }
}

impl std::error::Error for RelayError {}

/// What the relay's threads share: the router, where its table is saved, the watcher.
#[derive(Debug)]
pub struct Shared {
    /// The name table and routing rules.
    pub router: Mutex<Router>,
    /// The state file of this bus.
    pub state: Mutex<state::Store>,
    /// Pending calls in mapped memory (none if the file could not be mapped).
    pub pending: Mutex<Option<PendingStore>>,
    /// The death watcher, once started.
    pub watcher: OnceLock<Arc<Watcher>>,
    /// Destinations whose backlog waits for a drainer thread, and the idle drainers.
    pub drainers: Drainers,
}

/// The drainer threads: each sends one destination's backlog at a time, then waits (blocked
/// on a condition variable, no CPU) for the next. A thread is started only when none is idle,
/// so a receiver that falls behind again and again costs a wake-up, not a thread start.
#[derive(Debug, Default)]
pub struct Drainers {
    work: Mutex<DrainWork>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct DrainWork {
    todo: VecDeque<MipcName>,
    idle: usize,
}

impl Shared {
    /// A port for a thread of this relay.
    pub fn port(self: &Arc<Self>) -> SysvPort {
        SysvPort {
            shared: Some(self.clone()),
        }
    }
}

/// The real queues and processes.
#[derive(Debug, Default)]
pub struct SysvPort {
    shared: Option<Arc<Shared>>,
}

impl Port for SysvPort {
    fn send(&mut self, q: QueueId, msg: &[u8]) -> Result<(), QueueError> {
        sysv::send(q, msg, true)
    }
    fn queue_exists(&mut self, q: QueueId) -> bool {
        !matches!(sysv::stat(q), Err(QueueError::Gone))
    }
    fn pid_alive(&mut self, pid: i32) -> bool {
        os::pid_alive(pid)
    }
    fn remove_queue(&mut self, q: QueueId) {
        let _ = sysv::remove(q);
    }
    fn watch(&mut self, pid: i32) {
        if let Some(w) = self.shared.as_ref().and_then(|s| s.watcher.get()) {
            w.watch(pid);
        }
    }
    fn last_receiver(&mut self, q: QueueId) -> Option<i32> {
        sysv::stat(q)
            .ok()
            .map(|s| s.last_receiver)
            .filter(|&p| p > 0)
    }
    fn queue_stat(&mut self, q: QueueId) -> Option<(u64, u64)> {
        sysv::stat(q).ok().map(|s| (s.messages, s.bytes))
    }
    fn pending_changed(&mut self, caller: &MipcName, p: Option<&Pending>) {
        if let Some(shared) = &self.shared {
            if let Ok(mut store) = shared.pending.lock() {
                if let Some(store) = store.as_mut() {
                    store.set(caller, p);
                }
            }
        }
    }
    fn drain(&mut self, dst: MipcName) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let Ok(mut work) = shared.drainers.work.lock() else {
            return;
        };
        work.todo.push_back(dst);
        if work.idle > 0 {
            shared.drainers.ready.notify_one();
            return;
        }
        drop(work);
        let started = std::thread::Builder::new()
            .name("mipc-drain".into())
            .spawn(move || drainer(&shared));
        if let Err(e) = started {
            logln!(
                Error,
                "cannot start a drainer for {dst}: {e}; its backlog waits"
            );
        }
    }
}

/// A drainer thread: takes destinations off the to-do list and drains each, forever.
fn drainer(shared: &Arc<Shared>) {
    let mut trim_later = false;
    loop {
        let dst = {
            let Ok(mut work) = shared.drainers.work.lock() else {
                return;
            };
            loop {
                if let Some(dst) = work.todo.pop_front() {
                    break Some(dst);
                }
                work.idle += 1;
                // With a trim put off, one timed wait (not a poll: once, then it waits for work).
                let woke = if trim_later {
                    shared
                        .drainers
                        .ready
                        .wait_timeout(work, TRIM_PERIOD)
                        .map(|(w, t)| (w, t.timed_out()))
                        .map_err(|_| ())
                } else {
                    shared
                        .drainers
                        .ready
                        .wait(work)
                        .map(|w| (w, false))
                        .map_err(|_| ())
                };
                let Ok((w, timed_out)) = woke else { return };
                work = w;
                work.idle -= 1;
                if timed_out {
                    break None;
                }
            }
        };
        match dst {
            Some(dst) => trim_later = drain(shared, dst),
            None => trim_later = trim_after_backlogs(shared),
        }
    }
}

/// Messages a drainer takes from a backlog per lock.
const DRAIN_BATCH: usize = 32;

/// Sends the backlog of `dst` with blocking sends until it is empty. Only this thread waits
/// for room on that queue; the receive loop goes on for everyone else. Returns whether a
/// trim of the freed memory was put off (see [`trim_after_backlogs`]).
fn drain(shared: &Arc<Shared>, dst: MipcName) -> bool {
    let mut port = shared.port();
    // A receiver that falls behind under a flood does so again and again: log a few.
    if let Some(n) = BACKLOGGED.hit() {
        logln!(
            Info,
            "{dst}: queue full, holding its messages until it reads (#{n})"
        );
    }
    loop {
        let next = match shared.router.lock() {
            Ok(mut r) => r.next_parked_batch(&dst, Instant::now(), DRAIN_BATCH),
            Err(_) => return false,
        };
        let Some((queue, batch)) = next else {
            logln!(Debug, "{dst}: backlog delivered");
            return trim_after_backlogs(shared);
        };
        for item in batch {
            if let Err(e) = sysv::send(queue, &item.bytes, false) {
                let Ok(mut r) = shared.router.lock() else {
                    return false;
                };
                r.parked_failed(&mut port, &dst, queue, item, e);
                persist(&mut r, shared);
            }
        }
    }
}

/// How often at most the relay gives backlog memory back (a flood empties and refills
/// backlogs thousands of times a second).
const TRIM_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// When every backlog has emptied, gives the memory they held back to the system. Returns
/// `true` when that was put off (a trim ran less than [`TRIM_PERIOD`] ago): the drainer then
/// tries again once, a period later.
fn trim_after_backlogs(shared: &Shared) -> bool {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    if !shared.router.lock().is_ok_and(|r| r.parked_bytes() == 0) {
        return false;
    }
    let Ok(mut last) = LAST.lock() else {
        return false;
    };
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < TRIM_PERIOD) {
        return true;
    }
    *last = Some(now);
    drop(last);
    os::process::trim_heap();
    false
}

static SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// The name of live process `pid` (a zombie, a relay killed but not yet reaped, is dead).
fn process_name(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(") ")?.1.chars().next()?;
    if matches!(state, 'Z' | 'X' | 'x') {
        return None;
    }
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Opens the root queue, making it when there is none. An existing one is reused (a relay
/// killed with SIGKILL leaves it behind, with the messages sent meanwhile), unless the
/// process that last received from it is a live `mipc_main`.
fn open_root(key: i32, mode: u32) -> Result<QueueId, RelayError> {
    if let Ok(q) = sysv::open_key(key, false, 0) {
        if let Ok(st) = sysv::stat(q) {
            let me = os::getpid();
            let last = st.last_receiver;
            if last > 0 && last != me && process_name(last).as_deref() == Some("mipc_main") {
                return Err(RelayError::AlreadyRunning(last));
            }
        }
        logln!(
            Info,
            "reusing the existing root queue {} (messages already on it will be delivered)",
            q.0
        );
        return Ok(q);
    }
    sysv::open_key(key, true, mode).map_err(RelayError::RootQueue)
}

/// Blocks SIGTERM and SIGINT in every thread and starts the thread that waits for them: it
/// removes the root queue, which wakes the receive loop with `EIDRM`.
fn handle_signals(root: Arc<std::sync::atomic::AtomicI32>) -> Result<(), RelayError> {
    let set = StopSignals::block().map_err(RelayError::Setup)?;
    std::thread::Builder::new()
        .name("mipc-signals".into())
        .spawn(move || {
            let sig = set.wait();
            logln!(Info, "signal {sig}: stopping");
            SHUTDOWN.store(true, Ordering::SeqCst);
            let _ = sysv::remove(QueueId(root.load(Ordering::SeqCst)));
        })
        .map(|_| ())
        .map_err(RelayError::Setup)
}

/// Process `pid` died (the watcher says): drops its entries and saves the table.
fn report_death(shared: &Arc<Shared>, pid: i32) {
    let Ok(mut r) = shared.router.lock() else {
        return;
    };
    let mut port = shared.port();
    let names = r.peer_died(&mut port, pid);
    persist(&mut r, shared);
    if !names.is_empty() {
        let list: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        logln!(
            Info,
            "process {pid} died: dropped {} and removed its queues",
            list.join(", ")
        );
    }
}

/// Saves what changed in the name table (a line per change; see `state.rs`).
pub(crate) fn persist(router: &mut Router, shared: &Shared) {
    let changes = router.take_changes();
    if changes.is_empty() {
        return;
    }
    let Ok(mut store) = shared.state.lock() else {
        return;
    };
    if let Err(e) = store.record(router, changes) {
        if let Some(n) = SAVE_FAILED.hit() {
            logln!(
                Warn,
                "cannot save the name table to {}: {e} (#{n})",
                store.path().display()
            );
        }
    }
}

static SAVE_FAILED: Limiter = Limiter::new();
static BACKLOGGED: Limiter = Limiter::new();
static MALFORMED: Limiter = Limiter::new();
static UNDELIVERED: Limiter = Limiter::new();

fn log_outcome(out: &Result<Handled, Rejected>) {
    match out {
        Ok(Handled::Forwarded) | Ok(Handled::Parked) => {}
        Ok(Handled::Registered(n, q)) => logln!(Info, "registered {n} (queue {})", q.0),
        Ok(Handled::Unregistered(n)) => logln!(Info, "unregistered {n}"),
        Ok(Handled::Greeted(n, pid)) => logln!(Debug, "{n} is a mipc-rs entry of process {pid}"),
        Ok(Handled::Ponged) => logln!(Debug, "answered a ping"),
        Ok(Handled::LookedUp) => logln!(Debug, "answered a lookup"),
        Ok(Handled::Subscribed { who, pattern, on }) => {
            let what = if *on {
                "subscribed to"
            } else {
                "unsubscribed from"
            };
            logln!(Debug, "{who} {what} {pattern}")
        }
        Ok(Handled::Published { event, receivers }) => {
            logln!(Debug, "event {event} to {receivers} subscriber(s)")
        }
        Ok(Handled::Broadcast { api, receivers }) => {
            logln!(Debug, "broadcast of api {api} to {receivers} entries")
        }
        Ok(Handled::Tool) => logln!(Debug, "answered a tool's request"),
        Err(r @ Rejected::Malformed(_))
        | Err(r @ Rejected::BadNotice(_))
        | Err(r @ Rejected::Control(..)) => {
            if let Some(n) = MALFORMED.hit() {
                logln!(Warn, "{r} (#{n})");
            }
        }
        Err(
            r @ (Rejected::NameInUse(_)
            | Rejected::NotOwner(_)
            | Rejected::QueueInUse(..)
            | Rejected::TableFull(_)
            | Rejected::NoQueue(..)
            | Rejected::Gone(_)),
        ) => {
            logln!(Warn, "{r}")
        }
        Err(r) => {
            if let Some(n) = UNDELIVERED.hit() {
                logln!(Warn, "{r} (#{n})");
            }
        }
    }
}

/// Runs the relay until SIGTERM or SIGINT.
///
/// # Errors
/// [`RelayError`] when it cannot start or its root queue fails.
pub fn run(opts: &Options) -> Result<(), RelayError> {
    let root_id = Arc::new(std::sync::atomic::AtomicI32::new(-1));
    handle_signals(root_id.clone())?;
    let mut root = open_root(opts.key, opts.mode)?;
    size_root(root, opts.queue_bytes);
    root_id.store(root.0, Ordering::SeqCst);
    let mut router = Router::new(opts.max_entries);
    router.set_root(root);
    let shared = Arc::new(Shared {
        router: Mutex::new(router),
        state: Mutex::new(state::Store::new(state::path(opts.key))),
        pending: Mutex::new(None),
        watcher: OnceLock::new(),
        drainers: Drainers::default(),
    });
    let for_watcher = shared.clone();
    let watcher =
        Watcher::spawn(move |pid| report_death(&for_watcher, pid)).map_err(RelayError::Setup)?;
    let _ = shared.watcher.set(watcher);
    let mut port = shared.port();
    let pending_path = pending::path_beside(&state::path(opts.key));
    let calls = match PendingStore::open(pending_path.clone(), opts.max_entries) {
        Ok(mut store) => {
            let calls = store.load();
            if let Ok(mut slot) = shared.pending.lock() {
                *slot = Some(store);
            }
            calls
        }
        Err(e) => {
            let path = pending_path.display();
            logln!(
                Warn,
                "pending calls will not outlive a restart: cannot map {path}: {e}"
            );
            Vec::new()
        }
    };
    let saved = shared
        .state
        .lock()
        .map(|mut s| s.load())
        .unwrap_or_default();
    if !saved.is_empty() {
        if let Ok(mut r) = shared.router.lock() {
            let (n, left_out) = r.restore(&mut port, saved);
            for (name, why) in left_out {
                logln!(Info, "not taking back {name}: {why}");
            }
            let subscriptions = shared
                .state
                .lock()
                .map(|mut s| s.take_subscriptions())
                .unwrap_or_default();
            let subs = r.restore_subscriptions(subscriptions);
            if subs > 0 {
                logln!(Info, "took back {subs} subscriptions");
            }
            let calls = r.restore_pending(&mut port, calls);
            if calls > 0 {
                logln!(Info, "took back {calls} pending calls");
            }
            persist(&mut r, &shared);
            let path = shared
                .state
                .lock()
                .map(|s| s.path().display().to_string())
                .unwrap_or_default();
            logln!(Info, "took back {n} entries from {path}");
        }
    }
    let pid = os::getpid();
    logln!(
        Info,
        "ready: key {:#010x}, root queue {}, pid {pid}",
        opts.key,
        root.0
    );
    // Units ordered after a Type=notify mipc_main start once the root queue is served.
    match crate::notify::notify("READY=1") {
        Ok(true) => logln!(Debug, "told the service manager: READY=1"),
        Ok(false) => {}
        Err(e) => logln!(Warn, "cannot tell NOTIFY_SOCKET that we are ready: {e}"),
    }
    let mut buf = MsgBuf::boxed();
    let flags = RecvFlags {
        truncate: true,
        ..Default::default()
    };
    loop {
        match sysv::recv(root, buf.raw_mut(), 0, flags) {
            Ok(n) => {
                buf.set_mtext_len(n);
                let Ok(mut r) = shared.router.lock() else {
                    return Err(RelayError::Setup(std::io::Error::other(
                        "router lock poisoned",
                    )));
                };
                let out = r.handle(&mut port, &buf, Instant::now());
                if !matches!(
                    out,
                    Ok(Handled::Forwarded
                        | Handled::Parked
                        | Handled::Published { .. }
                        | Handled::Broadcast { .. })
                ) {
                    persist(&mut r, &shared);
                }
                drop(r);
                log_outcome(&out);
            }
            Err(QueueError::Gone) if SHUTDOWN.load(Ordering::SeqCst) => break,
            Err(QueueError::Gone) => {
                logln!(
                    Error,
                    "root queue {} was removed by someone else; making it again",
                    root.0
                );
                root = open_root(opts.key, opts.mode)?;
                size_root(root, opts.queue_bytes);
                root_id.store(root.0, Ordering::SeqCst);
                if let Ok(mut r) = shared.router.lock() {
                    r.set_root(root);
                }
            }
            Err(e) => return Err(RelayError::Receive(e)),
        }
    }
    if let Ok(mut r) = shared.router.lock() {
        r.stopping(&mut port);
        let swept = r.sweep_dead(&mut port);
        if r.entries().next().is_none() {
            if let Ok(mut store) = shared.state.lock() {
                store.remove();
            }
            if let Ok(Some(store)) = shared.pending.lock().as_deref() {
                store.remove();
            }
        } else {
            // Live processes are still registered: a relay started later takes them back.
            persist(&mut r, &shared);
        }
        logln!(
            Info,
            "stopped, {} of dead processes removed; {}",
            swept,
            crate::tools::summary_line(&r.stats_report(Instant::now()))
        );
    }
    Ok(())
}
