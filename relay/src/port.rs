//! The relay's SysV [`Port`] and what its threads share: the router behind its lock, the
//! saved table, the death watcher, and the drainer thread that sends full queues' backlogs
//! as room frees, apart from the receive loop (`daemon.rs`).

use crate::log::Limiter;
use crate::router::{Drained, Port, Router};
use crate::state;
use crate::watcher::Watcher;
use mipc::os;
use mipc::sysv::{self, QueueError, QueueId};
use mipc::MipcName;
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
    /// The drainer thread, and the destinations handed to it.
    pub drainers: Drainers,
}

/// The drainer: one thread, started at the first hand-off, that sends every handed-off
/// backlog as room frees, each destination looked at on a schedule of its own
/// ([`next_nap`]), and waits (blocked on a condition variable, no CPU) while none is left.
/// One thread however many receivers fall behind at once: their looks share its wake-ups,
/// and a bus where every daemon stalls (a debugger, an overloaded board) costs no thread
/// per daemon.
#[derive(Debug, Default)]
pub struct Drainers {
    work: Mutex<DrainWork>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct DrainWork {
    /// Destinations handed off since the drainer last took them.
    todo: Vec<MipcName>,
    /// Whether the drainer thread runs.
    running: bool,
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
    fn queue_room(&mut self, q: QueueId) -> Option<(usize, usize)> {
        let s = sysv::stat(q).ok()?;
        Some((
            s.capacity.saturating_sub(s.bytes) as usize,
            s.capacity as usize,
        ))
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
        work.todo.push(dst);
        if work.running {
            shared.drainers.ready.notify_one();
            return;
        }
        let its = shared.clone();
        let started = std::thread::Builder::new()
            .name("mipc-drain".into())
            .spawn(move || drainer(&its));
        match started {
            Ok(_) => work.running = true,
            // The next hand-off tries again; until then the receive loop still sends one
            // parked message before each new one to `dst`.
            Err(e) => logln!(
                Error,
                "cannot start the drainer: {e}; the backlog of {dst} waits"
            ),
        }
    }
}

/// One destination on the drainer's schedule: when it looks next, after what nap.
#[derive(Debug)]
struct Look {
    dst: MipcName,
    at: Instant,
    nap: Duration,
}

/// The drainer thread, forever: takes the destinations handed off, looks at each when it is
/// due (all those nearly due at once, under one lock of the router), and sleeps until the
/// next look, a hand-off, or a trim put off ([`trim_after_backlogs`]). A look sends what fits
/// of the backlog without waiting; the next comes after a nap ([`next_nap`]): from 25 us to
/// 1 ms while the receiver reads, backing off to [`NAP_MOST`] while it does not. It never
/// blocks in `msgsnd`: a sender blocked on a queue is woken by every read of its receiver,
/// which costs that receiver on every message it reads while the backlog lasts. The receive
/// loop also sends a backlog's next message before each new message to its destination
/// (`Router::flush_parked`); it answered for the backlog alone until it handed it off
/// (`daemon.rs`, `serve`).
fn drainer(shared: &Arc<Shared>) {
    let _fine = os::process::FineTimer::new();
    let mut looks: Vec<Look> = Vec::new();
    let mut trim_at: Option<Instant> = None;
    loop {
        let Ok(mut work) = shared.drainers.work.lock() else {
            return;
        };
        let now = loop {
            let now = Instant::now();
            for dst in work.todo.drain(..) {
                schedule(&mut looks, dst, now);
            }
            let next = looks.iter().map(|l| l.at).chain(trim_at).min();
            let woke = match next {
                Some(t) if t <= now => break now,
                Some(t) => shared
                    .drainers
                    .ready
                    .wait_timeout(work, t - now)
                    .map(|(w, _)| w)
                    .map_err(|_| ()),
                None => shared.drainers.ready.wait(work).map_err(|_| ()),
            };
            let Ok(w) = woke else { return };
            work = w;
        };
        drop(work);
        let mut emptied = false;
        if looks.iter().any(|l| l.at <= now) {
            let Ok(mut r) = shared.router.lock() else {
                return;
            };
            // The time of the looks, once the receive loop has let go of the router.
            let now = Instant::now();
            let mut port = shared.port();
            looks.retain_mut(|l| {
                if !l.due(now) {
                    return true;
                }
                match r.drain_parked(&mut port, &l.dst, now) {
                    Drained::Done => {
                        logln!(Debug, "{}: backlog delivered", l.dst);
                        emptied = true;
                        false
                    }
                    Drained::Waiting { bytes, .. } => {
                        l.nap = next_nap(l.nap, bytes);
                        l.at = now + l.nap;
                        true
                    }
                }
            });
            persist(&mut r, shared);
            drop(r);
        }
        // The memory the backlogs held goes back once the last has ended (a trim put off,
        // a period later; one that a new backlog overtakes waits for that one's end).
        if !looks.is_empty() {
            trim_at = None;
        } else if emptied || trim_at.is_some_and(|t| t <= now) {
            trim_at = trim_after_backlogs(shared).then(|| now + TRIM_PERIOD);
        }
    }
}

impl Look {
    /// Whether this look is taken in a wake-up at `now`: when it is due, or nearly, to share
    /// the wake-up with one that is: up to a quarter of its nap early, half of it for a
    /// receiver that does not read ([`NAP_MOST`]), so that all of those fall into one step
    /// within a nap (two phases of a 10 ms period are at most 5 ms apart one way or the
    /// other) and cost the relay 100 wake-ups a second however many they are.
    fn due(&self, now: Instant) -> bool {
        let early = if self.nap >= NAP_MOST {
            self.nap / 2
        } else {
            self.nap / 4
        };
        self.at <= now + early
    }
}

/// Puts `dst` on the schedule, to be looked at now (a destination already on it, handed
/// off again after its backlog ended and a new one began, is looked at now too).
fn schedule(looks: &mut Vec<Look>, dst: MipcName, now: Instant) {
    if let Some(l) = looks.iter_mut().find(|l| l.dst == dst) {
        l.at = now;
        return;
    }
    // A receiver that falls behind under a flood does so again and again: log a few.
    if let Some(n) = BACKLOGGED.hit() {
        logln!(
            Info,
            "{dst}: queue full, holding its messages until it reads (#{n})"
        );
    }
    looks.push(Look {
        dst,
        at: now,
        nap: NAP_FIRST,
    });
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
    fn receivers_that_do_not_read_fall_into_one_step() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let name = |i: usize| MipcName::new(format!("stuck{i}").as_bytes()).unwrap();
        // Five stuck receivers, backed off to the longest nap, at five phases of its period.
        let mut looks: Vec<Look> = [0, 2, 4, 7, 9]
            .iter()
            .enumerate()
            .map(|(i, &phase)| Look {
                dst: name(i),
                at: t0 + ms(phase),
                nap: NAP_MOST,
            })
            .collect();
        // The drainer's wake-ups: at the earliest look, taking all that are due; nothing
        // is sent to a receiver that does not read.
        let mut wakeups = Vec::new();
        for _ in 0..6 {
            let now = looks.iter().map(|l| l.at).min().unwrap();
            wakeups.push(now);
            for l in looks.iter_mut().filter(|l| l.due(now)) {
                l.nap = next_nap(l.nap, 0);
                l.at = now + l.nap;
            }
        }
        // Two wake-ups in the first period, then one per nap for all five.
        assert_eq!(wakeups[..2], [t0, t0 + ms(7)]);
        for w in wakeups[2..].windows(2) {
            assert_eq!(w[1] - w[0], NAP_MOST);
        }
        assert!(looks.iter().all(|l| l.at == looks[0].at));
        // A reader's look (a short nap) comes at most a quarter of its nap early.
        let reader = Look {
            dst: name(9),
            at: t0 + Duration::from_micros(100),
            nap: Duration::from_micros(100),
        };
        assert!(reader.due(t0 + Duration::from_micros(75)));
        assert!(!reader.due(t0 + Duration::from_micros(74)));
    }

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
