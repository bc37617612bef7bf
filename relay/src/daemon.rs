//! The relay process: root queue, signals, the receive loop, death reports and log lines.
//! The SysV port and the threads' shared state are in `port.rs`.

use crate::log::Limiter;
use crate::pending::{self, PendingStore};
use crate::poll::RootPoll;
use crate::port::{persist, Drainers, Shared, SysvPort};
use crate::router::{Handled, Now, Rejected, Router, HAND_OFF_AFTER};
use crate::state;
use crate::watcher::Watcher;
use mipc::os::{self, signals::StopSignals};
use mipc::sysv::{self, QueueError, QueueId, RecvFlags};
use mipc::wire::control::Died;
use mipc::wire::{Envelope, Kind, MsgBuf};
use mipc::MipcName;
use std::fmt;

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

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
    /// The longest the receive loop polls its empty root queue before sleeping on it
    /// (`poll.rs`); zero: it sleeps at once.
    pub poll: Duration,
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
    let Ok(mut st) = sysv::stat(q) else { return };
    if st.capacity == 0 {
        // Closed by a relay killed while it stopped (close_and_drain): open it again.
        let system = system_queue_bytes();
        match sysv::set_capacity(q, system) {
            Ok(()) => {
                logln!(Info, "root queue {} was left closed; opened it again", q.0);
                st.capacity = system;
            }
            Err(e) => logln!(
                Error,
                "root queue {} was left closed and stays so: {e}",
                q.0
            ),
        }
    }
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

/// The capacity the system gives a new queue (`kernel.msgmnb`; 16 KiB, Linux's default,
/// when it cannot be read).
fn system_queue_bytes() -> u64 {
    std::fs::read_to_string("/proc/sys/kernel/msgmnb")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&b| b > 0)
        .unwrap_or(16384)
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
/// closes the root queue to new messages, lets the receive loop take what waits there and
/// the receivers their backlogs ([`close_and_drain`], [`deliver_backlogs`]; `shared` is set
/// once the relay has its state), and removes the queue, which wakes the receive loop with
/// `EIDRM`.
fn handle_signals(
    root: Arc<std::sync::atomic::AtomicI32>,
    shared: Arc<OnceLock<Arc<Shared>>>,
) -> Result<(), RelayError> {
    let set = StopSignals::block().map_err(RelayError::Setup)?;
    std::thread::Builder::new()
        .name("mipc-signals".into())
        .spawn(move || {
            let sig = set.wait();
            logln!(Info, "signal {sig}: stopping");
            SHUTDOWN.store(true, Ordering::SeqCst);
            // A signal during start-up, before the root queue is open: once it is, the stop
            // goes as any other (the receive loop drains it). Left at once, the relay would
            // have started and served on, stop asked or not.
            let started = Instant::now();
            while root.load(Ordering::SeqCst) < 0 && started.elapsed() < STOP_DRAIN_MAX {
                os::process::nap(Duration::from_millis(1));
            }
            let queue = QueueId(root.load(Ordering::SeqCst));
            let left = close_and_drain(queue);
            if left > 0 {
                logln!(
                    Warn,
                    "stopping: {left} messages still on the root queue after {} ms; dropped",
                    STOP_DRAIN_MAX.as_millis()
                );
            }
            // Before the queue goes: a relay started meanwhile would find no queue, start,
            // and have its state file written over by this one's last save.
            if let Some(shared) = shared.get() {
                deliver_backlogs(shared, &mut shared.port());
            }
            let _ = sysv::remove(queue);
        })
        .map(|_| ())
        .map_err(RelayError::Setup)
}

/// How long a stopping relay waits for its receive loop to take what waits on its root
/// queue, and then for receivers that fell behind to take their backlogs.
const STOP_DRAIN_MAX: Duration = Duration::from_secs(1);

/// A clean stop's second step, once its closed root queue is drained: the backlogs (what the
/// relay took for receivers whose queues were full) go to the drainer, which goes on sending
/// them as the receivers read, for at most [`STOP_DRAIN_MAX`]; what is left then (a receiver
/// that stopped reading) is dropped when the relay exits, and logged.
fn deliver_backlogs(shared: &Arc<Shared>, port: &mut SysvPort) {
    let parked = |port: &mut SysvPort| {
        let mut r = shared.router.lock().ok()?;
        r.hand_off_backlogs(port);
        Some(r.parked_bytes()).filter(|&b| b > 0)
    };
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    while let Some(bytes) = parked(port) {
        if start.elapsed() >= STOP_DRAIN_MAX {
            logln!(
                Warn,
                "stopping: {bytes} bytes still parked for receivers that did not read within {} ms; dropped",
                STOP_DRAIN_MAX.as_millis()
            );
            return;
        }
        os::process::nap(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// A clean stop forwards what daemons sent before it, as a `kill -9` leaves it on the queue
/// for the next relay (removing the queue at once threw it away, though every sender had been
/// told "sent"). The root queue is closed to new messages first (its capacity set to 0: every
/// send then finds it full, and a sender of ours waits within its bound, then finds the next
/// relay's queue or "relay not running"); then this waits, up to [`STOP_DRAIN_MAX`], until
/// the receive loop has taken every message off. Returns how many are left (0 normally; the
/// count when the loop did not keep up, or when the queue could not be closed and senders
/// kept it busy).
fn close_and_drain(queue: QueueId) -> u64 {
    if let Err(e) = sysv::set_capacity(queue, 0) {
        logln!(
            Warn,
            "stopping: cannot close root queue {} to new messages: {e}",
            queue.0
        );
    }
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        let Ok(st) = sysv::stat(queue) else {
            return 0;
        };
        if st.messages == 0 || start.elapsed() >= STOP_DRAIN_MAX {
            return st.messages;
        }
        os::process::nap(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Process `pid` died (the watcher says). The notice goes onto the root queue, behind
/// everything the process sent before it died: an answer it sent just before exiting reaches
/// its caller instead of "peer died". Only when the root queue is full (or gone) is the death
/// handled here at once.
fn report_death(shared: &Arc<Shared>, root: &AtomicI32, pid: i32) {
    let mut notice = MsgBuf::boxed();
    notice.build_control(
        Envelope {
            mtype: Kind::Died.mtype(),
            src: &MipcName::RELAY,
            dst: &MipcName::RELAY,
            sync_flag: 0,
            tag: None,
        },
        &Died { pid },
    );
    if sysv::send(
        QueueId(root.load(Ordering::SeqCst)),
        notice.as_sendable(),
        true,
    )
    .is_ok()
    {
        return;
    }
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

static MALFORMED: Limiter = Limiter::new();
static UNDELIVERED: Limiter = Limiter::new();

fn log_outcome(out: &Result<Handled, Rejected>) {
    match out {
        Ok(Handled::Forwarded) | Ok(Handled::Parked) => {}
        Ok(Handled::Registered(n, q)) => logln!(Info, "registered {n} (queue {})", q.0),
        Ok(Handled::Unregistered(n)) => logln!(Info, "unregistered {n}"),
        Ok(Handled::Died(_, names)) if names.is_empty() => {}
        Ok(Handled::Died(pid, names)) => {
            let list: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            logln!(
                Info,
                "process {pid} died: dropped {} and removed its queues",
                list.join(", ")
            );
        }
        Ok(Handled::Greeted(n, pid)) => logln!(Debug, "{n} is a mipc-rs entry of process {pid}"),
        Ok(Handled::Ponged) => logln!(Debug, "answered a ping"),
        Ok(Handled::LookedUp) => logln!(Debug, "answered a lookup"),
        Ok(Handled::AnsweredBack(_)) => {}
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

/// The receive loop: one message at a time from the root queue `root`, handled under the
/// router's lock, until a stop signal removes the queue. A function of its own (not inlined
/// into [`run`]) so that what a message touches of the stack is this small frame, not bits
/// of the setup's large one.
///
/// A destination queue found full gets a backlog that this loop answers for at first
/// (`router/parking.rs`): under a flood, a receiver's queue fills and frees again
/// thousands of times a second, and each of those episodes used to wake a drainer thread
/// (3 000 to 4 000 wake-ups in a 240 000-message flood, about a tenth of the relay's CPU).
/// The loop hands its backlogs to the drainer when it is about to sleep, and when one has
/// waited [`HAND_OFF_AFTER`].
#[inline(never)]
fn serve(
    opts: &Options,
    shared: &Arc<Shared>,
    port: &mut SysvPort,
    root_id: &AtomicI32,
    mut root: QueueId,
) -> Result<(), RelayError> {
    let mut buf = MsgBuf::boxed();
    let flags = RecvFlags {
        truncate: true,
        ..Default::default()
    };
    let mut poll = RootPoll::new(opts.poll);
    let nowait = RecvFlags {
        nowait: true,
        ..flags
    };
    // Since when a backlog has waited for this loop (`None`: none waits), and messages
    // handled since then. Any the start left (none today) go to the drainer at once.
    let mut backlog_since: Option<Instant> = None;
    let mut handled_since = 0u32;
    // Requests wait to go in one batch (`router/gather.rs`).
    let mut gathered = false;
    hand_off(shared, port, &mut backlog_since);
    loop {
        let got = if backlog_since.is_none() && !gathered {
            receive(root, buf.raw_mut(), flags, &mut poll)
        } else {
            match sysv::recv(root, buf.raw_mut(), 0, nowait) {
                Err(QueueError::Empty) => {
                    // No message will come to send them: the gathered requests go now, and
                    // the drainer takes the backlogs over (one the gathered requests just
                    // met, too).
                    if gathered {
                        flush_gathered(shared, port);
                        gathered = false;
                    }
                    hand_off(shared, port, &mut backlog_since);
                    receive(root, buf.raw_mut(), flags, &mut poll)
                }
                got => got,
            }
        };
        if gathered && got.is_err() {
            flush_gathered(shared, port);
            gathered = false;
        }
        match got {
            Ok(n) => {
                buf.set_mtext_len(n);
                let Ok(mut r) = shared.router.lock() else {
                    return Err(RelayError::Setup(std::io::Error::other(
                        "router lock poisoned",
                    )));
                };
                let out = r.handle(port, &mut buf, Now::lazy());
                gathered = r.gathered();
                if r.gather_failed() {
                    for out in r.take_gather_failures() {
                        log_outcome(&out);
                    }
                }
                if r.backlogs_without_drainer() {
                    // The clock is read once every CLOCK_EVERY messages: under a flood that
                    // keeps a backlog going, once per message would cost 30 to 40 ns of the
                    // 1.9 us a message takes on the x86_64 VM where this was measured, and
                    // more where clock_gettime is slow (some ARM SoCs).
                    handled_since = handled_since.wrapping_add(1);
                    match backlog_since {
                        None => {
                            backlog_since = Some(Instant::now());
                            handled_since = 0;
                        }
                        Some(t) if handled_since % CLOCK_EVERY == 0 => {
                            if t.elapsed() >= HAND_OFF_AFTER {
                                r.hand_off_backlogs(port);
                                backlog_since = None;
                            }
                        }
                        Some(_) => {}
                    }
                } else {
                    backlog_since = None;
                }
                if matches!(
                    out,
                    Ok(Handled::Forwarded | Handled::Parked | Handled::AnsweredBack(_))
                ) {
                    continue; // nothing to save or log
                }
                if !matches!(
                    out,
                    Ok(Handled::Published { .. } | Handled::Broadcast { .. })
                ) {
                    persist(&mut r, shared);
                }
                drop(r);
                log_outcome(&out);
            }
            Err(QueueError::Gone) if SHUTDOWN.load(Ordering::SeqCst) => return Ok(()),
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
}

/// How many messages the receive loop handles between two looks at the clock while a
/// backlog waits for it ([`HAND_OFF_AFTER`]): at the 2 us a message takes under a flood, a
/// hand-off comes at most about 30 us late.
const CLOCK_EVERY: u32 = 16;

/// Sends the requests the receive loop gathered (`router/gather.rs`).
#[inline(never)]
fn flush_gathered(shared: &Shared, port: &mut SysvPort) {
    if let Ok(mut r) = shared.router.lock() {
        r.flush_gathered(port);
        for out in r.take_gather_failures() {
            log_outcome(&out);
        }
    }
}

/// Gives the backlogs the receive loop answers for to the drainer (see [`serve`]).
#[cold]
fn hand_off(shared: &Shared, port: &mut SysvPort, since: &mut Option<Instant>) {
    if let Ok(mut r) = shared.router.lock() {
        r.hand_off_backlogs(port);
    }
    *since = None;
}

/// The next message of the root queue into `buf`: at once if one waits, else polled for
/// while `poll` allows, then slept for (`poll.rs`).
#[inline]
fn receive(
    root: QueueId,
    buf: &mut [u8],
    flags: RecvFlags,
    poll: &mut RootPoll,
) -> Result<usize, QueueError> {
    let Some(window) = poll.next_wait() else {
        return sysv::recv(root, buf, 0, flags);
    };
    let nowait = RecvFlags {
        nowait: true,
        ..flags
    };
    match sysv::recv(root, buf, 0, nowait) {
        Err(QueueError::Empty) => {}
        got => return got,
    }
    let start = Instant::now();
    let limit = window.limit();
    let got = loop {
        if start.elapsed() >= limit {
            break sysv::recv(root, buf, 0, flags);
        }
        match sysv::recv(root, buf, 0, nowait) {
            Err(QueueError::Empty) => std::hint::spin_loop(),
            got => break got,
        }
    };
    window.waited(start.elapsed());
    got
}

/// Runs the relay until SIGTERM or SIGINT.
///
/// # Errors
/// [`RelayError`] when it cannot start or its root queue fails.
pub fn run(opts: &Options) -> Result<(), RelayError> {
    let root_id = Arc::new(std::sync::atomic::AtomicI32::new(-1));
    let for_signals = Arc::new(OnceLock::new());
    handle_signals(root_id.clone(), for_signals.clone())?;
    let root = open_root(opts.key, opts.mode)?;
    size_root(root, opts.queue_bytes);
    root_id.store(root.0, Ordering::SeqCst);
    let mut router = Router::new(opts.max_entries);
    router.set_root(root);
    // The router keeps the pending calls in the mapped file itself, under its own lock.
    let pending_path = pending::path_beside(&state::path(opts.key));
    let calls = match PendingStore::open(pending_path.clone(), opts.max_entries) {
        Ok(mut store) => {
            let calls = store.load();
            router.keep_calls_in(store);
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
    // Processes on the direct path follow this page instead of probing their queues.
    let page_path = crate::routes_page::path_beside(&state::path(opts.key));
    match crate::routes_page::RoutesPage::open(page_path.clone(), opts.mode) {
        Ok(page) => router.publish_routes_in(page),
        Err(e) => logln!(
            Info,
            "no routes page ({}: {e}): direct callers probe their queues instead",
            page_path.display()
        ),
    }
    let shared = Arc::new(Shared {
        router: Mutex::new(router),
        state: Mutex::new(state::Store::new(state::path(opts.key))),
        watcher: OnceLock::new(),
        drainers: Drainers::default(),
    });
    let _ = for_signals.set(shared.clone());
    let for_watcher = shared.clone();
    let root_for_watcher = root_id.clone();
    let watcher = Watcher::spawn(move |pid| report_death(&for_watcher, &root_for_watcher, pid))
        .map_err(RelayError::Setup)?;
    let _ = shared.watcher.set(watcher);
    let mut port = shared.port();
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
    // Calls the earlier relay left and nobody took back no longer hold their slots.
    if let Some(store) = shared
        .router
        .lock()
        .as_deref_mut()
        .ok()
        .and_then(Router::calls_store)
    {
        store.settle();
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
    serve(opts, &shared, &mut port, &root_id, root)?;
    if let Ok(mut r) = shared.router.lock() {
        r.stopping(&mut port);
        let swept = r.sweep_dead(&mut port);
        if r.entries().next().is_none() {
            if let Ok(mut store) = shared.state.lock() {
                store.remove();
            }
            if let Some(store) = r.calls_store() {
                store.remove();
            }
            if let Some(page) = r.routes_page() {
                page.remove();
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
