//! Waking threads that wait in `msgrcv`. SysV has no timed `msgrcv` (SPEC §5), so a thread
//! that waits with a timeout blocks in `msgrcv`, and one waker thread per process puts a WAKE
//! message on its queue when the deadline passes. A wait may also name a process it depends
//! on (a direct call's server, which the relay never sees): the waker holds a pidfd for it
//! and wakes the wait with "peer died" the moment it exits.
//!
//! The waker blocks in `ppoll` on an eventfd (new work) and the pidfds, until the earliest
//! deadline: it never polls. It is woken only when a new deadline is earlier than the one it
//! sleeps until, or a new process is to be watched. A WAKE carries the id of its wait, so a
//! wake that arrives after its wait already ended is recognised and dropped.

use crate::name::MipcName;
use crate::sysv::{self, QueueError, QueueId};
use crate::wire::{Build, Header, MsgBuf, MIPC_MSG_TYPE_WAKE};
use once_cell::sync::Lazy;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::c_long;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the waker waits before it tries again to wake a full queue.
const FULL_RETRY: Duration = Duration::from_millis(2);
/// How often watched processes are checked on a kernel without pidfd.
const NO_PIDFD_PERIOD: Duration = Duration::from_secs(1);

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
    deadline: Option<Instant>,
    pid: Option<i32>,
}

#[derive(Default)]
struct State {
    waits: HashMap<u64, Wait>,
    deadlines: BTreeSet<(Instant, u64)>,
    by_pid: HashMap<i32, HashSet<u64>>,
    /// Processes the waker watches (it owns their pidfds).
    watched: HashSet<i32>,
    /// Processes to start watching.
    new_pids: Vec<i32>,
    /// Process that runs the waker (a forked child needs its own).
    owner: i32,
    /// The waker's eventfd.
    wake_fd: Option<std::sync::Arc<OwnedFd>>,
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

fn kick(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to our eventfd.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Arranges for a WAKE message of SysV type `mtype` to be put on `queue` at `deadline`
/// (if any) or when process `pid` (if any) dies, whichever comes first. Returns `None` if
/// the waker cannot run (then the caller must not block).
pub fn arm(
    deadline: Option<Instant>,
    queue: QueueId,
    mtype: c_long,
    pid: Option<i32>,
) -> Option<WakeId> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut st = STATE.lock().ok()?;
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    if st.owner != me || st.wake_fd.is_none() {
        start(&mut st, me)?;
    }
    let mut kick_needed = false;
    st.waits.insert(
        id,
        Wait {
            queue,
            mtype,
            deadline,
            pid,
        },
    );
    if let Some(d) = deadline {
        st.deadlines.insert((d, id));
        kick_needed |= st.sleeping_until.is_none_or(|t| d < t);
    }
    if let Some(p) = pid {
        st.by_pid.entry(p).or_default().insert(id);
        if st.watched.insert(p) {
            st.new_pids.push(p);
            kick_needed = true;
        }
    }
    if kick_needed {
        if let Some(fd) = &st.wake_fd {
            kick(fd);
        }
    }
    Some(WakeId(id))
}

fn start(st: &mut State, me: i32) -> Option<()> {
    // SAFETY: eventfd takes no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    let fd = std::sync::Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
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
            if let Some(d) = wait.deadline {
                st.deadlines.remove(&(d, w.0));
            }
            if let Some(p) = wait.pid {
                if let Some(set) = st.by_pid.get_mut(&p) {
                    set.remove(&w.0);
                }
            }
        }
    }
}

/// Builds the WAKE message of wait `id`.
pub fn wake_message(buf: &mut MsgBuf, mtype: c_long, id: u64, reason: Reason) {
    let mut payload = [0u8; 12];
    payload[..8].copy_from_slice(&id.to_ne_bytes());
    payload[8..].copy_from_slice(&(reason as u32).to_ne_bytes());
    buf.build(Build {
        mtype,
        src: &MipcName::RELAY,
        dst: &MipcName::RELAY,
        msg_type: MIPC_MSG_TYPE_WAKE,
        sync_flag: 0,
        payload: &payload,
        tag: None,
    });
}

/// Why a received message woke wait `id`, if it is that wait's WAKE.
pub fn wake_reason(hdr: &Header, payload: &[u8], id: u64) -> Option<Reason> {
    if hdr.msg_type != MIPC_MSG_TYPE_WAKE || !hdr.src.is_relay() || payload.len() != 12 {
        return None;
    }
    if payload[..8] != id.to_ne_bytes() {
        return None;
    }
    Some(if payload[8..] == 1u32.to_ne_bytes() {
        Reason::PeerDied
    } else {
        Reason::Timeout
    })
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: fd is a new descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

/// The waits to wake now: those past their deadline, and those of `dead` processes.
fn due(st: &mut State, now: Instant, dead: &[i32]) -> Vec<(u64, Wait, Reason)> {
    let mut out = Vec::new();
    while let Some(&(d, id)) = st.deadlines.first() {
        if d > now {
            break;
        }
        st.deadlines.remove(&(d, id));
        if let Some(w) = st.waits.remove(&id) {
            if let Some(set) = w.pid.and_then(|p| st.by_pid.get_mut(&p)) {
                set.remove(&id);
            }
            out.push((id, w, Reason::Timeout));
        }
    }
    for pid in dead {
        st.watched.remove(pid);
        for id in st.by_pid.remove(pid).unwrap_or_default() {
            if let Some(w) = st.waits.remove(&id) {
                if let Some(d) = w.deadline {
                    st.deadlines.remove(&(d, id));
                }
                out.push((id, w, Reason::PeerDied));
            }
        }
    }
    out
}

fn run(wake_fd: &OwnedFd, owner: i32) {
    let mut buf = MsgBuf::boxed();
    let mut pidfds: Vec<(i32, OwnedFd)> = Vec::new();
    let mut unwatchable: Vec<i32> = Vec::new();
    let mut dead: Vec<i32> = Vec::new();
    loop {
        // Take the work, wake what is due, and find how long to sleep.
        let (todo, sleep) = {
            let Ok(mut st) = STATE.lock() else { return };
            if st.owner != owner {
                return; // a forked child's state; its own waker runs there
            }
            for pid in std::mem::take(&mut st.new_pids) {
                match pidfd_open(pid) {
                    Some(fd) => pidfds.push((pid, fd)),
                    None if pid_alive(pid) => unwatchable.push(pid),
                    None => dead.push(pid),
                }
            }
            let todo = due(&mut st, Instant::now(), &dead);
            dead.clear();
            let next = st.deadlines.first().map(|(d, _)| *d);
            st.sleeping_until = next;
            let mut sleep = next.map(|d| d.saturating_duration_since(Instant::now()));
            if !unwatchable.is_empty() {
                sleep = Some(sleep.map_or(NO_PIDFD_PERIOD, |s| s.min(NO_PIDFD_PERIOD)));
            }
            let busy = !todo.is_empty();
            (todo, if busy { Some(Duration::ZERO) } else { sleep })
        };
        for (id, w, reason) in todo {
            wake_message(&mut buf, w.mtype, id, reason);
            if sysv::send(w.queue, buf.as_sendable(), true) == Err(QueueError::Full) {
                // The waiter's queue is full: try again shortly, the wait must end.
                if let Ok(mut st) = STATE.lock() {
                    let retry = Instant::now() + FULL_RETRY;
                    st.waits.insert(
                        id,
                        Wait {
                            deadline: Some(retry),
                            pid: None,
                            ..w
                        },
                    );
                    st.deadlines.insert((retry, id));
                }
            }
        }
        if sleep == Some(Duration::ZERO) {
            continue;
        }
        let mut polls = vec![libc::pollfd {
            fd: wake_fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        polls.extend(pidfds.iter().map(|(_, fd)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        let ts = sleep.map(|d| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: polls is a live array of polls.len() pollfds; ts_ptr is NULL or points to a
        // live timespec; no signal mask is passed.
        let n = unsafe {
            libc::ppoll(
                polls.as_mut_ptr(),
                polls.len() as libc::nfds_t,
                ts_ptr,
                std::ptr::null(),
            )
        };
        if n > 0 {
            if polls[0].revents != 0 {
                let mut count = 0u64;
                // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd.
                unsafe { libc::read(wake_fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
            }
            let mut i = 0;
            pidfds.retain(|(pid, _)| {
                i += 1;
                let exited = polls[i].revents != 0;
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
