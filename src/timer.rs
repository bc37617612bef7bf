//! Timeouts without polling: SysV has no timed `msgrcv` (SPEC §5), so a thread that waits
//! with a timeout blocks in `msgrcv` and one timer thread per process puts a WAKE message on
//! its queue when the deadline passes. The timer thread sleeps on a condition variable until
//! the earliest deadline; it is woken only when a new deadline is earlier than that one.
//!
//! A WAKE carries the id of the wait it ends, so a wake that arrives after its wait already
//! got an answer is recognised and dropped by the next wait on that queue.

use crate::name::MipcName;
use crate::sysv::{self, QueueError, QueueId};
use crate::wire::{Build, MsgBuf, MIPC_MSG_TYPE_WAKE};
use once_cell::sync::Lazy;
use std::collections::BTreeMap;
use std::os::raw::c_long;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the timer thread waits before it tries again to wake a full queue.
const FULL_RETRY: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, Copy)]
struct Wake {
    queue: QueueId,
    mtype: c_long,
}

#[derive(Default)]
struct State {
    pending: BTreeMap<(Instant, u64), Wake>,
    /// Process that runs the timer thread (a forked child needs its own).
    thread_pid: i32,
    /// Deadline the timer thread sleeps until, if it sleeps on one.
    sleeping_until: Option<Instant>,
}

struct Timers {
    state: Mutex<State>,
    cv: Condvar,
}

static TIMERS: Lazy<Timers> = Lazy::new(|| Timers {
    state: Mutex::new(State::default()),
    cv: Condvar::new(),
});
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An armed wake-up; pass it to [`disarm`] when the wait ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeId {
    deadline: Instant,
    id: u64,
}

impl WakeId {
    /// The id a WAKE message for this wait carries.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// Arranges for a WAKE message of SysV type `mtype` to be put on `queue` at `deadline`.
/// Returns `None` if the timer thread cannot run (then the caller must not block forever).
pub fn arm(deadline: Instant, queue: QueueId, mtype: c_long) -> Option<WakeId> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut st = TIMERS.state.lock().ok()?;
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    if st.thread_pid != pid {
        st.pending.clear();
        st.sleeping_until = None;
        std::thread::Builder::new()
            .name("mipc-timer".into())
            .spawn(run)
            .ok()?;
        st.thread_pid = pid;
    }
    st.pending.insert((deadline, id), Wake { queue, mtype });
    if st.sleeping_until.is_none_or(|t| deadline < t) {
        TIMERS.cv.notify_one();
    }
    Some(WakeId { deadline, id })
}

/// Cancels a wake-up that has not fired yet.
pub fn disarm(w: WakeId) {
    if let Ok(mut st) = TIMERS.state.lock() {
        st.pending.remove(&(w.deadline, w.id));
    }
}

/// Builds the WAKE message for wait `id`.
pub fn wake_message(buf: &mut MsgBuf, mtype: c_long, id: u64) {
    buf.build(Build {
        mtype,
        src: &MipcName::RELAY,
        dst: &MipcName::RELAY,
        msg_type: MIPC_MSG_TYPE_WAKE,
        sync_flag: 0,
        payload: &id.to_ne_bytes(),
        tag: None,
    });
}

/// Whether a received message is the WAKE of wait `id`.
pub fn is_wake_for(hdr: &crate::wire::Header, payload: &[u8], id: u64) -> bool {
    hdr.msg_type == MIPC_MSG_TYPE_WAKE && payload == id.to_ne_bytes()
}

fn run() {
    let mut buf = MsgBuf::boxed();
    let Ok(mut st) = TIMERS.state.lock() else {
        return;
    };
    loop {
        let now = Instant::now();
        let first = st.pending.first_key_value().map(|(k, w)| (*k, *w));
        match first {
            None => {
                st.sleeping_until = None;
                st = match TIMERS.cv.wait(st) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
            Some(((deadline, id), wake)) if deadline <= now => {
                st.pending.remove(&(deadline, id));
                drop(st);
                wake_message(&mut buf, wake.mtype, id);
                let full = sysv::send(wake.queue, buf.as_sendable(), true) == Err(QueueError::Full);
                st = match TIMERS.state.lock() {
                    Ok(s) => s,
                    Err(_) => return,
                };
                if full {
                    // The waiter's queue is full: try again shortly, the wait must end.
                    st.pending.insert((now + FULL_RETRY, id), wake);
                }
            }
            Some(((deadline, _), _)) => {
                st.sleeping_until = Some(deadline);
                st = match TIMERS.cv.wait_timeout(st, deadline - now) {
                    Ok((s, _)) => s,
                    Err(_) => return,
                };
            }
        }
    }
}
