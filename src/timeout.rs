//! The two timeouts of the legacy API, which read the same `int` differently:
//! - [`CallTimeout`]: how long a sync call waits for its answer (`mipc_send_sync_msg`,
//!   `mipc_ping`, `mipc_receive_response_msg`): -1 forever, > 0 milliseconds; 0 is refused
//!   (a call that does not wait could never get its answer);
//! - [`RecvTimeout`]: how long a receive blocks (`mipc_mq_receive`): -1 forever, 0 not at
//!   all, > 0 milliseconds.
//!
//! Neither depends on the width of `time_t`: they are `Duration`s and `Instant`s.

use crate::error::{MipcError, Result};
use std::time::{Duration, Instant};

/// How long a sync call waits for its answer; never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimeout(Option<Duration>);

impl CallTimeout {
    /// Waits as long as it takes.
    pub const fn forever() -> CallTimeout {
        CallTimeout(None)
    }

    /// Waits `d` (at least a millisecond).
    pub fn after(d: Duration) -> CallTimeout {
        CallTimeout(Some(d.max(Duration::from_millis(1))))
    }

    /// Reads a legacy call timeout: -1 is forever, a positive value is milliseconds.
    ///
    /// # Errors
    /// [`MipcError::BadArgument`] for 0 and the other negative values.
    pub fn from_ms(ms: i32) -> Result<CallTimeout> {
        match ms {
            -1 => Ok(CallTimeout::forever()),
            ms if ms > 0 => Ok(CallTimeout::after(Duration::from_millis(ms as u64))),
            _ => Err(MipcError::BadArgument(
                "timeout must be > 0 ms or -1 (MIPC_MSG_SYNC_WAIT_FOREVER)",
            )),
        }
    }

    /// The wait, `None` for forever.
    pub fn duration(self) -> Option<Duration> {
        self.0
    }

    /// When a call started at `start` gives up (`None`: never).
    pub fn deadline(self, start: Instant) -> Option<Instant> {
        self.0.map(|d| start + d)
    }

    /// When a call that starts now gives up (`None`: never). Reads the clock only when
    /// there is a limit: a call that waits forever costs no clock read.
    pub fn deadline_from_now(self) -> Option<Instant> {
        self.0.map(|d| Instant::now() + d)
    }

    /// The request's `sync_flag`: the milliseconds the caller waits, or -1 for forever.
    pub fn sync_flag(self) -> i32 {
        match self.0 {
            None => -1,
            Some(d) => d.as_millis().clamp(1, i32::MAX as u128) as i32,
        }
    }
}

/// How long a receive blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeout {
    /// Until a message comes.
    Forever,
    /// Not at all: take a message that is there, or time out at once.
    NoWait,
    /// Up to this long (never zero).
    After(Duration),
}

impl RecvTimeout {
    /// Reads a legacy receive timeout: -1 forever, 0 no blocking, > 0 milliseconds.
    ///
    /// # Errors
    /// [`MipcError::BadArgument`] for the other negative values.
    pub fn from_ms(ms: i32) -> Result<RecvTimeout> {
        match ms {
            -1 => Ok(RecvTimeout::Forever),
            0 => Ok(RecvTimeout::NoWait),
            ms if ms > 0 => Ok(RecvTimeout::After(Duration::from_millis(ms as u64))),
            _ => Err(MipcError::BadArgument(
                "timeout must be >= 0 ms or -1 (forever)",
            )),
        }
    }

    /// When a receive started at `start` gives up, if it blocks with a limit.
    pub fn deadline(self, start: Instant) -> Option<Instant> {
        match self {
            RecvTimeout::After(d) => Some(start + d),
            RecvTimeout::Forever | RecvTimeout::NoWait => None,
        }
    }

    /// When a receive that starts now gives up, if it blocks with a limit. Reads the clock
    /// only then.
    pub fn deadline_from_now(self) -> Option<Instant> {
        match self {
            RecvTimeout::After(d) => Some(Instant::now() + d),
            RecvTimeout::Forever | RecvTimeout::NoWait => None,
        }
    }

    /// Whether the receive must not block.
    pub fn is_nowait(self) -> bool {
        self == RecvTimeout::NoWait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_different_things() {
        assert!(CallTimeout::from_ms(0).is_err());
        assert_eq!(RecvTimeout::from_ms(0), Ok(RecvTimeout::NoWait));
        assert_eq!(CallTimeout::from_ms(-1), Ok(CallTimeout::forever()));
        assert_eq!(RecvTimeout::from_ms(-1), Ok(RecvTimeout::Forever));
        assert!(CallTimeout::from_ms(-2).is_err() && RecvTimeout::from_ms(-2).is_err());
        assert_eq!(CallTimeout::from_ms(250).unwrap().sync_flag(), 250);
        assert_eq!(CallTimeout::forever().sync_flag(), -1);
    }
}
