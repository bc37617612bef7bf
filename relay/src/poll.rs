//! How long the receive loop polls its empty root queue before it sleeps on it (`mipc_main
//! -p`, off by default).
//!
//! A relay that sleeps in `msgrcv` as soon as its queue is empty is woken by the next sender,
//! from another CPU: where that wake-up is dear (an inter-processor interrupt, and the
//! sleeping CPU leaving its idle state: tens of microseconds on a virtual machine) and several
//! callers keep the relay busy, looking at the queue again for a few microseconds before
//! sleeping saves most of them, as the kernel's `haltpoll` does for an idle virtual CPU.
//! It is off by default because it is not a win everywhere: a lone caller's calls got slower
//! with a poll of 20 us (the scheduler then puts the peers' wake-ups on the CPU the relay
//! keeps busy), 16 callers saw no gain, and it spends CPU; docs/PERFORMANCE.md ("Polling
//! before sleeping") has the figures.
//!
//! The window adapts, with haltpoll's rules: a wait that outlasted the window but not the
//! bound grows it (a longer poll would have caught that message), a wait that outlasted the
//! bound shrinks it (no poll allowed would have). A bus with a call now and then pays at most
//! the window once per quiet spell, and an idle bus nothing: the loop sleeps, as without it.
//! While the relay may run on one CPU only, a poll cannot be answered while it runs (the
//! sender needs that CPU), so polling stays off then ([`RootPoll`]).

use std::time::Duration;

/// The longest poll by default (`mipc_main -p`, `MIPC_POLL_US`): none.
pub const DEFAULT_POLL_US: u64 = 0;
/// The first window once polling pays, in nanoseconds.
const GROW_START_NS: u64 = 2_000;

/// How many waits pass between two readings of the CPUs the relay may run on.
const RECHECK_EVERY: u32 = 4096;

/// The receive loop's poll: its window, the bound asked for (`-p`), and whether this relay
/// may run on more than one CPU, read again every 4096 waits (a relay can be
/// pinned after it started, as `make bench` does, or by a cpuset).
#[derive(Debug)]
pub struct RootPoll {
    window: PollWindow,
    asked: Duration,
    waits: u32,
}

impl RootPoll {
    /// The poll of a relay started with bound `asked` (zero: it never polls).
    pub fn new(asked: Duration) -> Self {
        let mut p = RootPoll {
            window: PollWindow::new(Duration::ZERO),
            asked,
            waits: 0,
        };
        p.recheck();
        p
    }

    /// The window for the next wait: `None` when the loop must sleep at once (no poll
    /// asked for, or one CPU only).
    #[inline]
    pub fn next_wait(&mut self) -> Option<&mut PollWindow> {
        if self.asked.is_zero() {
            return None;
        }
        self.waits = self.waits.wrapping_add(1);
        if self.waits % RECHECK_EVERY == 0 {
            self.recheck();
        }
        (!self.window.off()).then_some(&mut self.window)
    }

    fn recheck(&mut self) {
        let several = mipc::os::process::cpus_allowed() != 1;
        self.window
            .set_bound(if several { self.asked } else { Duration::ZERO });
    }
}

/// The current poll window and its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollWindow {
    limit_ns: u64,
    max_ns: u64,
}

impl PollWindow {
    /// A window that may grow to `max` (zero: never poll). It starts closed: polling starts
    /// only once the waits show that it would pay.
    pub fn new(max: Duration) -> Self {
        PollWindow {
            limit_ns: 0,
            max_ns: u64::try_from(max.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Whether the loop never polls (bound zero): it then sleeps at once, with no clock read.
    pub fn off(&self) -> bool {
        self.max_ns == 0
    }

    /// A new bound; the window shrinks to it if it was wider.
    pub fn set_bound(&mut self, max: Duration) {
        self.max_ns = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        self.limit_ns = self.limit_ns.min(self.max_ns);
    }

    /// How long to poll before sleeping.
    pub fn limit(&self) -> Duration {
        Duration::from_nanos(self.limit_ns)
    }

    /// The wait for the last message took `waited`, polling and sleeping together.
    pub fn waited(&mut self, waited: Duration) {
        let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        if ns > self.limit_ns && ns <= self.max_ns {
            self.limit_ns = (self.limit_ns * 2).clamp(GROW_START_NS.min(self.max_ns), self.max_ns);
        } else if ns > self.max_ns {
            // Halved, and closed once shorter than the first window: a poll of a
            // microsecond or so is about one look at the queue, not worth the clock reads.
            self.limit_ns /= 2;
            if self.limit_ns < GROW_START_NS {
                self.limit_ns = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn a_closed_window_opens_when_messages_come_within_the_bound() {
        let mut w = PollWindow::new(20 * US);
        assert_eq!(w.limit(), Duration::ZERO);
        w.waited(5 * US);
        assert_eq!(w.limit(), 2 * US);
        w.waited(5 * US);
        assert_eq!(w.limit(), 4 * US);
        w.waited(5 * US);
        assert_eq!(w.limit(), 8 * US);
        // Caught within the window: it stays.
        w.waited(5 * US);
        assert_eq!(w.limit(), 8 * US);
    }

    #[test]
    fn the_window_never_passes_its_bound() {
        let mut w = PollWindow::new(20 * US);
        for _ in 0..10 {
            w.waited(19 * US);
        }
        assert_eq!(w.limit(), 20 * US);
        let mut small = PollWindow::new(US);
        small.waited(US);
        assert_eq!(small.limit(), US);
    }

    #[test]
    fn quiet_spells_close_it_again() {
        let mut w = PollWindow::new(20 * US);
        for _ in 0..5 {
            w.waited(19 * US);
        }
        w.waited(Duration::from_millis(100));
        assert_eq!(w.limit(), 10 * US);
        w.waited(Duration::from_secs(1));
        w.waited(Duration::from_secs(1));
        assert_eq!(w.limit(), 2500 * Duration::from_nanos(1));
        w.waited(Duration::from_secs(1));
        assert_eq!(w.limit(), Duration::ZERO);
    }

    #[test]
    fn a_lower_bound_narrows_the_window() {
        let mut w = PollWindow::new(20 * US);
        for _ in 0..5 {
            w.waited(19 * US);
        }
        w.set_bound(Duration::ZERO);
        assert!(w.off());
        assert_eq!(w.limit(), Duration::ZERO);
        w.set_bound(20 * US);
        assert_eq!(
            w.limit(),
            Duration::ZERO,
            "it opens again only as waits show"
        );
    }

    #[test]
    fn a_relay_asked_not_to_poll_never_does() {
        let mut p = RootPoll::new(Duration::ZERO);
        for _ in 0..2 * RECHECK_EVERY {
            assert!(p.next_wait().is_none());
        }
    }

    #[test]
    fn a_zero_bound_never_polls() {
        let mut w = PollWindow::new(Duration::ZERO);
        assert!(w.off());
        w.waited(Duration::ZERO);
        w.waited(US);
        assert_eq!(w.limit(), Duration::ZERO);
    }
}
