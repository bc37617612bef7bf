//! Stop signals: the relay blocks SIGTERM and SIGINT in every thread and waits for them in
//! one.

use nix::sys::signal::{SigSet, Signal};

/// SIGTERM and SIGINT, blocked in the calling thread (and the threads it starts later).
#[derive(Debug, Clone, Copy)]
pub struct StopSignals(SigSet);

impl StopSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread, so that only
    /// [`StopSignals::wait`] takes them.
    ///
    /// # Errors
    /// When the signal mask cannot be set.
    pub fn block() -> std::io::Result<StopSignals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        set.thread_block().map_err(std::io::Error::from)?;
        Ok(StopSignals(set))
    }

    /// Waits for one of them; returns its number.
    pub fn wait(&self) -> i32 {
        match self.0.wait() {
            Ok(sig) => sig as i32,
            Err(e) => -(e as i32),
        }
    }
}
