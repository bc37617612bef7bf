//! The relay's SysV [`Port`] and what its threads share: the router behind its lock, the
//! saved table, the death watcher, and the drainer threads that send a full
//! queue's backlog as room frees, apart from the receive loop (`daemon.rs`).

use crate::log::Limiter;
use crate::router::{Drained, Port, Router};
use crate::state;
use crate::watcher::Watcher;
use mipc::os;
use mipc::sysv::{self, QueueError, QueueId};
use mipc::MipcName;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What the relay's threads share: the router, where its table is saved, the watcher.
#[derive(Debug)]
pub struct Shared {
    /// The name table and routing rules.
    pub router: Mutex<Router>,
    /// The state file of this bus.
    pub state: Mutex<state::Store>,
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
    fn pid_exited(&mut self, pid: i32) -> bool {
        os::pid_exited(pid)
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

/// A drainer's naps between two looks at its destination's full queue ([`next_nap`]): the
/// first, the shortest, the longest while the receiver reads, and the longest while it does
/// not.
const NAP_FIRST: Duration = Duration::from_micros(50);
const NAP_LEAST: Duration = Duration::from_micros(25);
const NAP_READING_MOST: Duration = Duration::from_millis(1);
const NAP_MOST: Duration = Duration::from_millis(10);
/// A look that refilled this much of the queue napped too long (the receiver may have run
/// dry); one that refilled less than [`REFILL_LOW`] looked too often: half and a quarter of
/// a queue of the system's default size (`kernel.msgmnb`, 16 KiB).
const REFILL_HIGH: usize = 8 * 1024;
const REFILL_LOW: usize = 4 * 1024;

/// The drainer's next nap, after one of `nap` whose look sent `bytes`: it aims at refilling
/// a quarter to a half of the queue per look, so a fast reader never runs dry and a flood of
/// small messages does not wake the drainer for each few of them; nothing sent (the
/// receiver does not read) backs it off to [`NAP_MOST`].
fn next_nap(nap: Duration, bytes: usize) -> Duration {
    if bytes == 0 {
        (nap * 2).min(NAP_MOST)
    } else if bytes >= REFILL_HIGH {
        (nap / 2).max(NAP_LEAST)
    } else if bytes < REFILL_LOW {
        (nap * 2).min(NAP_READING_MOST)
    } else {
        nap
    }
}

/// Sends the backlog of `dst` as room frees, until it is empty. It does not block in
/// `msgsnd`: a sender blocked on a queue is woken by every read of its receiver, which costs
/// that receiver on every message it reads while the backlog lasts. It sends what fits,
/// under the router's lock, then naps ([`next_nap`]): from 25 us to 1 ms while the receiver
/// reads, backing off to [`NAP_MOST`] while it does not. The receive loop also sends the
/// backlog's next message before each new message to `dst` (`Router::flush_parked`); it
/// answered for the backlog alone until it handed it off (`daemon.rs`, `serve`).
/// Returns whether a trim of the freed memory was put off (see [`trim_after_backlogs`]).
fn drain(shared: &Arc<Shared>, dst: MipcName) -> bool {
    let mut port = shared.port();
    // A receiver that falls behind under a flood does so again and again: log a few.
    if let Some(n) = BACKLOGGED.hit() {
        logln!(
            Info,
            "{dst}: queue full, holding its messages until it reads (#{n})"
        );
    }
    let _fine = os::process::FineTimer::new();
    let mut nap = NAP_FIRST;
    loop {
        let step = match shared.router.lock() {
            Ok(mut r) => {
                let step = r.drain_parked(&mut port, &dst, Instant::now());
                persist(&mut r, shared);
                step
            }
            Err(_) => return false,
        };
        match step {
            Drained::Done => {
                logln!(Debug, "{dst}: backlog delivered");
                return trim_after_backlogs(shared);
            }
            Drained::Waiting { bytes, .. } => nap = next_nap(nap, bytes),
        }
        std::thread::sleep(nap);
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
    if let Ok(mut r) = shared.router.lock() {
        if r.parked_bytes() == 0 {
            r.release_parking_buffers();
        }
    }
    os::process::trim_heap();
    false
}

/// Saves what changed in the name table (a line per change; see `state.rs`).
pub(crate) fn persist(router: &mut Router, shared: &Shared) {
    if !router.has_changes() {
        return;
    }
    let changes = router.take_changes();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drainer_naps_to_refill_a_quarter_to_a_half_of_the_queue() {
        let us = Duration::from_micros;
        // The receiver read a lot meanwhile: look sooner, down to the shortest nap.
        assert_eq!(next_nap(us(50), 12_000), us(25));
        assert_eq!(next_nap(us(25), 12_000), us(25));
        // Little: look later, up to 1 ms while it reads.
        assert_eq!(next_nap(us(50), 1_000), us(100));
        assert_eq!(next_nap(us(800), 1_000), us(1000));
        assert_eq!(next_nap(Duration::from_millis(5), 1_000), us(1000));
        // Between: the same.
        assert_eq!(next_nap(us(300), 6_000), us(300));
        // Nothing: it does not read; back off to 10 ms.
        assert_eq!(next_nap(us(300), 0), us(600));
        assert_eq!(
            next_nap(Duration::from_millis(8), 0),
            Duration::from_millis(10)
        );
    }
}
