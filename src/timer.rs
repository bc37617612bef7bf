//! Waking threads that wait in `msgrcv`. SysV has no timed `msgrcv` (SPEC §5), so a thread
//! that waits with a timeout blocks in `msgrcv`, and one waker thread per process puts a WAKE
//! message on its queue when the deadline passes. The waker also watches the processes of
//! direct-path servers (which the relay never sees) through pidfds: when one exits, it marks
//! the route dead and wakes every entry whose direct call waits on it ("peer died"). A call
//! only writes its entry's slot for that (`table::DirectWait`), no map, so the direct path's
//! calls without a timeout cost the waker nothing.
//!
//! The waker blocks in `ppoll` on an eventfd (new work), a timerfd set to the earliest
//! deadline, and the pidfds: it never polls. It is woken only when a new deadline is earlier
//! than the one it sleeps until, or a new process is to be watched. A WAKE carries the id of
//! its wait, so a wake that arrives after its wait already ended is recognised and dropped.

use crate::fasthash::FastMap;
use crate::name::MipcName;
use crate::os::fd::{self, Doorbell, Timer};
use crate::os::{self as os, pid_alive};
use crate::sysv::{self, QueueError, QueueId};
use crate::wire::control::Wake;
use crate::wire::{Control, Envelope, Frame, Kind, MsgBuf};
use once_cell::sync::Lazy;
use std::collections::BTreeSet;
use std::os::fd::{AsFd, OwnedFd};
use std::os::raw::c_long;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the waker waits before it tries again to wake a full queue.
const FULL_RETRY: Duration = Duration::from_millis(2);
/// How often watched processes are checked on a kernel without pidfd.
const NO_PIDFD_PERIOD: Duration = Duration::from_secs(1);
/// How long the waker stays with nothing to do before it exits (the next wait starts a new
/// one). A process whose calls have no deadline is then single-threaded again, which this
/// matters for: Linux keeps a multi-threaded caller off the relay's CPU more often
/// (docs/PERFORMANCE.md, scheduler's placement).
const IDLE_EXIT: Duration = Duration::from_secs(2);

/// Why a wait was woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its deadline passed.
    Timeout,
    /// The process it waited on died.
    PeerDied,
}

#[derive(Debug, Clone, Copy)]
struct Wait {
    queue: QueueId,
    mtype: c_long,
    deadline: Instant,
}

#[derive(Default)]
struct State {
    waits: FastMap<u64, Wait>,
    deadlines: BTreeSet<(Instant, u64)>,
    /// Processes the waker watches (it owns their pidfds), with their "dead" flags.
    watched: FastMap<i32, &'static AtomicBool>,
    /// Processes to start watching.
    new_pids: Vec<i32>,
    /// Process that runs the waker (a forked child needs its own).
    owner: i32,
    /// The waker's eventfd.
    wake_fd: Option<Arc<Doorbell>>,
    /// Deadline the waker sleeps until (`None`: no deadline).
    sleeping_until: Option<Instant>,
}

static STATE: Lazy<Mutex<State>> = Lazy::new(|| Mutex::new(State::default()));
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An armed wait; pass it to [`disarm`] when the wait ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeId(u64);

impl WakeId {
    /// The id a WAKE message for this wait carries.
    pub fn id(&self) -> u64 {
        self.0
    }
}

fn kick(fd: &Doorbell) {
    fd.ring();
}

/// A fresh wait id, for a wait that only a process death can end (a direct call without a
/// timeout): its WAKE carries this id.
pub fn fresh_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

fn locked_started() -> Option<std::sync::MutexGuard<'static, State>> {
    let mut st = STATE.lock().ok()?;
    let me = os::getpid();
    if st.owner != me || st.wake_fd.is_none() {
        start(&mut st, me)?;
    }
    Some(st)
}

/// Arranges for a WAKE message of SysV type `mtype` to be put on `queue` at `deadline`.
/// Returns `None` if the waker cannot run (then the caller must not block).
pub fn arm(deadline: Instant, queue: QueueId, mtype: c_long) -> Option<WakeId> {
    let id = fresh_id();
    let mut st = locked_started()?;
    st.waits.insert(
        id,
        Wait {
            queue,
            mtype,
            deadline,
        },
    );
    st.deadlines.insert((deadline, id));
    if st.sleeping_until.is_none_or(|t| deadline < t) {
        if let Some(fd) = &st.wake_fd {
            kick(fd);
        }
    }
    Some(WakeId(id))
}

/// Starts watching process `pid` (a direct-path server); returns its flag, set once it is
/// dead. Entries whose `direct_wait` names it are woken with "peer died" when it exits.
/// A flag is never freed (one byte per server process this process ever called directly),
/// so a route holds it as a plain reference: copying a route on every direct call then
/// costs no reference count.
pub fn watch(pid: i32) -> Option<&'static AtomicBool> {
    let mut st = locked_started()?;
    if let Some(flag) = st.watched.get(&pid) {
        return Some(flag);
    }
    let flag: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    st.watched.insert(pid, flag);
    st.new_pids.push(pid);
    if let Some(fd) = &st.wake_fd {
        kick(fd);
    }
    Some(flag)
}

fn start(st: &mut State, me: i32) -> Option<()> {
    let fd = Arc::new(Doorbell::new().ok()?);
    // A forked child inherits the parent's waits but not its thread: start afresh.
    *st = State {
        owner: me,
        wake_fd: Some(fd.clone()),
        ..State::default()
    };
    std::thread::Builder::new()
        .name("mipc-waker".into())
        .spawn(move || run(&fd, me))
        .ok()?;
    Some(())
}

/// Cancels a wait that has not been woken yet.
pub fn disarm(w: WakeId) {
    if let Ok(mut st) = STATE.lock() {
        if let Some(wait) = st.waits.remove(&w.0) {
            st.deadlines.remove(&(wait.deadline, w.0));
        }
    }
}

/// Builds the WAKE message of wait `id`.
pub fn wake_message(buf: &mut MsgBuf, mtype: c_long, id: u64, reason: Reason) {
    let env = Envelope {
        mtype,
        src: &MipcName::RELAY,
        dst: &MipcName::RELAY,
        sync_flag: 0,
        tag: None,
    };
    buf.build_control(
        env,
        &Wake {
            id,
            reason: reason as u32,
        },
    );
}

/// Whether a received message is a WAKE (put there by a waker, never by a peer: the relay
/// forwards no reserved type but PING).
pub fn is_wake(f: &Frame, mtext: &[u8]) -> bool {
    f.msg_type == Kind::Wake.msg_type() && crate::wire::from_relay(mtext)
}

/// Why the WAKE whose payload is `payload` woke wait `id`, if it is that wait's WAKE.
pub fn wake_reason(payload: &[u8], id: u64) -> Option<Reason> {
    let wake = Wake::get(payload).filter(|w| w.id == id)?;
    Some(if wake.reason == Reason::PeerDied as u32 {
        Reason::PeerDied
    } else {
        Reason::Timeout
    })
}

/// The waits past their deadline, taken out of the state.
fn due(st: &mut State, now: Instant) -> Vec<(u64, QueueId, c_long, Reason)> {
    let mut out = Vec::new();
    while let Some(&(d, id)) = st.deadlines.first() {
        if d > now {
            break;
        }
        st.deadlines.remove(&(d, id));
        if let Some(w) = st.waits.remove(&id) {
            out.push((id, w.queue, w.mtype, Reason::Timeout));
        }
    }
    out
}

/// Marks `dead` processes and finds the direct calls waiting on them.
fn deaths(st: &mut State, dead: &[i32]) -> Vec<(u64, QueueId, c_long, Reason)> {
    if dead.is_empty() {
        return Vec::new();
    }
    for pid in dead {
        if let Some(flag) = st.watched.remove(pid) {
            // Set before the slots are read: a call that writes its slot after this sees
            // the flag instead (client::wait_answer).
            flag.store(true, Ordering::SeqCst);
        }
    }
    crate::table::direct_waits_on(dead)
        .into_iter()
        .map(|(queue, w)| (w.id, queue, w.mtype, Reason::PeerDied))
        .collect()
}

/// Whether the waker has nothing to do: no wait armed, no process watched.
fn idle(st: &State) -> bool {
    st.waits.is_empty() && st.watched.is_empty() && st.new_pids.is_empty()
}

/// Ends the waker of process `owner` if it is still idle: the next [`arm`] or [`watch`]
/// starts another (they see no doorbell). Decided under the lock, so no wait is armed
/// between the check and the exit.
fn leave_if_idle(owner: i32) -> bool {
    let Ok(mut st) = STATE.lock() else {
        return false;
    };
    if st.owner != owner || !idle(&st) {
        return false;
    }
    st.wake_fd = None;
    st.sleeping_until = None;
    true
}

/// A timerfd: unlike a `ppoll` timeout, which the kernel lets run late by 0.1 % of its length
/// (30 ms at 30 s), a timer fires within the thread's timer slack (50 us).
fn run(wake_fd: &Doorbell, owner: i32) {
    let mut buf = MsgBuf::boxed();
    let Ok(timer) = Timer::new() else { return };
    let mut pidfds: Vec<(i32, OwnedFd)> = Vec::new();
    let mut unwatchable: Vec<i32> = Vec::new();
    let mut dead: Vec<i32> = Vec::new();
    loop {
        // Take the work, wake what is due, and find the next deadline.
        let (todo, next, idle) = {
            let Ok(mut st) = STATE.lock() else { return };
            if st.owner != owner {
                return; // a forked child's state; its own waker runs there
            }
            for pid in std::mem::take(&mut st.new_pids) {
                match fd::pidfd_open(pid).ok() {
                    Some(fd) => pidfds.push((pid, fd)),
                    None if pid_alive(pid) => unwatchable.push(pid),
                    None => dead.push(pid),
                }
            }
            let mut todo = due(&mut st, Instant::now());
            todo.extend(deaths(&mut st, &dead));
            dead.clear();
            let next = st.deadlines.first().map(|(d, _)| *d);
            st.sleeping_until = next;
            (todo, next, idle(&st))
        };
        let busy = !todo.is_empty();
        for (id, queue, mtype, reason) in todo {
            wake_message(&mut buf, mtype, id, reason);
            if sysv::send(queue, buf.as_sendable(), true) == Err(QueueError::Full)
                && reason == Reason::Timeout
            {
                // The waiter's queue is full: try again shortly, the wait must end.
                if let Ok(mut st) = STATE.lock() {
                    let retry = Instant::now() + FULL_RETRY;
                    st.waits.insert(
                        id,
                        Wait {
                            queue,
                            mtype,
                            deadline: retry,
                        },
                    );
                    st.deadlines.insert((retry, id));
                }
            }
        }
        if busy {
            continue;
        }
        timer.set(next.map(|d| d.saturating_duration_since(Instant::now())));
        let mut fds = vec![wake_fd.as_fd(), timer.as_fd()];
        fds.extend(pidfds.iter().map(|(_, fd)| fd.as_fd()));
        // Only a kernel without pidfd makes the waker look at processes periodically.
        let period = if idle {
            Some(IDLE_EXIT)
        } else {
            (!unwatchable.is_empty()).then_some(NO_PIDFD_PERIOD)
        };
        if let Ok(ready) = fd::poll_readable(&fds, period) {
            if idle && !ready.contains(&true) && leave_if_idle(owner) {
                return;
            }
            if ready[0] {
                wake_fd.drain();
            }
            if ready[1] {
                timer.drain();
            }
            let mut i = 1;
            pidfds.retain(|(pid, _)| {
                i += 1;
                let exited = ready[i];
                if exited {
                    dead.push(*pid);
                }
                !exited
            });
        }
        unwatchable.retain(|&p| {
            let alive = pid_alive(p);
            if !alive {
                dead.push(p);
            }
            alive
        });
    }
}
