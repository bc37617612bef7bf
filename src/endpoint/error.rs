//! The native API's [`Timeout`] and [`Error`], and how they map to the core's timeouts and
//! errors.

use crate::error::{MipcError, RelayErrorCode};
use crate::events::EventError;
use crate::name::NameError;
use crate::sysv::QueueError;
use crate::timeout::{CallTimeout, RecvTimeout};
use crate::wire::{WireError, MIPC_MSG_MAX_LEN};
use std::fmt;
use std::time::Duration;

/// How long an operation may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Timeout {
    /// Wait until it completes (`MIPC_MSG_SYNC_WAIT_FOREVER` in C).
    #[default]
    Never,
    /// Give up after this long. A receive with `After(Duration::ZERO)` only looks; a call
    /// needs more than zero.
    After(Duration),
}

impl Timeout {
    /// `Timeout::After` this many milliseconds.
    ///
    /// ```
    /// use mipc::Timeout;
    /// use std::time::Duration;
    /// assert_eq!(Timeout::millis(250), Timeout::After(Duration::from_millis(250)));
    /// ```
    pub const fn millis(ms: u64) -> Timeout {
        Timeout::After(Duration::from_millis(ms))
    }

    pub(super) fn for_call(self) -> Result<CallTimeout, Error> {
        match self {
            Timeout::Never => Ok(CallTimeout::forever()),
            Timeout::After(d) if d.is_zero() => Err(Error::InvalidArgument(
                "a call's timeout must be more than zero",
            )),
            Timeout::After(d) => Ok(CallTimeout::after(d)),
        }
    }

    pub(super) fn for_receive(self) -> RecvTimeout {
        match self {
            Timeout::Never => RecvTimeout::Forever,
            Timeout::After(d) if d.is_zero() => RecvTimeout::NoWait,
            Timeout::After(d) => RecvTimeout::After(d),
        }
    }
}

impl From<Duration> for Timeout {
    fn from(d: Duration) -> Timeout {
        Timeout::After(d)
    }
}

/// Why an endpoint operation failed.
///
/// ```
/// use mipc::{Error, MipcError};
/// // The core's errors (and the relay's error codes behind them) map one to one.
/// assert_eq!(Error::from(MipcError::PeerDied), Error::PeerDied);
/// assert_eq!(Error::from(MipcError::Timeout).to_string(), "timeout");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No answer (or no message) within the timeout.
    Timeout,
    /// No entry of that name is registered (relay error code 1).
    NoSuchDestination,
    /// The destination died, or its queue is gone, while the call waited (code 2).
    PeerDied,
    /// The destination's queue stayed full past the relay's bounds (code 3).
    DestinationBusy,
    /// The call would close a cycle of callers waiting on each other (code 4).
    Deadlock,
    /// The name is held by another live entry (code 5).
    NameInUse,
    /// `"mipc_main"` serves no such api, or a relay too old for the request (code 7).
    NotServed,
    /// The relay's name table, or this entry's subscription list, is full (code 8).
    TableFull,
    /// No relay runs (no root queue).
    RelayUnavailable,
    /// The relay is not draining its root queue (stopped, hung, or far behind): a send
    /// found it full for `MIPC_SEND_TIMEOUT_MS`, or registration got no greeting. The text
    /// says which.
    RelayStalled(&'static str),
    /// The relay does not know events and broadcast (a legacy relay): nothing was sent.
    EventsUnsupported,
    /// This endpoint's queue was removed (its entry was unregistered from outside).
    Unregistered,
    /// The calling thread has no entry, or already has one (one endpoint per thread).
    NotRegistered,
    /// A thread may hold one endpoint; this one already holds the named one.
    ThreadHasEndpoint,
    /// A name (entry or event) is empty, too long (over 31 bytes), or holds a NUL.
    InvalidName(NameError),
    /// An event name holds `*`, or a pattern holds `*` before its end.
    InvalidPattern,
    /// Data longer than one message carries.
    PayloadTooLarge {
        /// Bytes given.
        len: usize,
        /// Most bytes allowed.
        max: usize,
    },
    /// An argument is out of range (a reserved api id, a zero call timeout, ...).
    InvalidArgument(&'static str),
    /// A message received broke the wire format (it was dropped).
    BadMessage(WireError),
    /// A queue system call failed.
    Queue(QueueError),
    /// An internal lock was poisoned by a panic; nothing was done.
    Internal,
}

impl From<MipcError> for Error {
    fn from(e: MipcError) -> Error {
        match e {
            MipcError::Timeout => Error::Timeout,
            MipcError::NoSuchDestination => Error::NoSuchDestination,
            MipcError::PeerDied => Error::PeerDied,
            MipcError::DestinationBusy => Error::DestinationBusy,
            MipcError::Deadlock => Error::Deadlock,
            MipcError::NameInUse => Error::NameInUse,
            MipcError::NotServed => Error::NotServed,
            MipcError::TableFull => Error::TableFull,
            MipcError::RelayUnavailable => Error::RelayUnavailable,
            MipcError::RelayStalled(why) => Error::RelayStalled(why),
            MipcError::EventsUnsupported => Error::EventsUnsupported,
            MipcError::QueueRemoved => Error::Unregistered,
            MipcError::NotRegistered => Error::NotRegistered,
            MipcError::BadName(_, n) => Error::InvalidName(n),
            MipcError::PayloadTooLarge(len) => Error::PayloadTooLarge {
                len: len as usize,
                max: MIPC_MSG_MAX_LEN,
            },
            MipcError::BadArgument(what) | MipcError::NullPointer(what) => {
                Error::InvalidArgument(what)
            }
            // An endpoint always receives into a buffer large enough for any answer.
            MipcError::AnswerTruncated { .. } => Error::InvalidArgument("answer truncated"),
            MipcError::BadMessage(w) => Error::BadMessage(w),
            MipcError::Queue(q) => Error::Queue(q),
            MipcError::Internal => Error::Internal,
        }
    }
}

impl From<RelayErrorCode> for Error {
    fn from(code: RelayErrorCode) -> Error {
        MipcError::from_relay(code).into()
    }
}

impl From<EventError> for Error {
    fn from(e: EventError) -> Error {
        match e {
            EventError::BadName(n) => Error::InvalidName(n),
            EventError::Wildcard => Error::InvalidPattern,
            EventError::TooLarge { len, max } => Error::PayloadTooLarge { len, max },
            EventError::Malformed => Error::InvalidArgument("malformed event payload"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout => f.write_str("timeout"),
            Error::NoSuchDestination => f.write_str("no such destination"),
            Error::PeerDied => f.write_str("peer died"),
            Error::DestinationBusy => f.write_str("destination busy (its queue is full)"),
            Error::Deadlock => f.write_str("deadlock: the destination is waiting on this caller"),
            Error::NameInUse => f.write_str("name in use by another live entry"),
            Error::NotServed => f.write_str("mipc_main serves no such api"),
            Error::TableFull => f.write_str("the relay's table is full"),
            Error::RelayUnavailable => f.write_str("relay not running (no root queue)"),
            Error::RelayStalled(why) => write!(f, "relay not draining its queue ({why})"),
            Error::EventsUnsupported => {
                f.write_str("the relay does not support events and broadcast")
            }
            Error::Unregistered => f.write_str("this endpoint's entry was unregistered"),
            Error::NotRegistered => f.write_str("the calling thread has no entry"),
            Error::ThreadHasEndpoint => {
                f.write_str("the calling thread already has an entry (one endpoint per thread)")
            }
            Error::InvalidName(e) => write!(f, "invalid name: {e}"),
            Error::InvalidPattern => {
                f.write_str("'*' is allowed only at the end of a subscription pattern")
            }
            Error::PayloadTooLarge { len, max } => {
                write!(f, "{len} bytes is over the {max} one message carries")
            }
            Error::InvalidArgument(what) => f.write_str(what),
            Error::BadMessage(e) => write!(f, "malformed message dropped: {e}"),
            Error::Queue(e) => write!(f, "queue error: {e}"),
            Error::Internal => f.write_str("internal error (a lock was poisoned)"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_for_calls_and_receives() {
        assert_eq!(Timeout::Never.for_call(), Ok(CallTimeout::forever()));
        assert!(Timeout::After(Duration::ZERO).for_call().is_err());
        assert_eq!(
            Timeout::millis(3).for_call(),
            Ok(CallTimeout::after(Duration::from_millis(3)))
        );
        assert_eq!(
            Timeout::After(Duration::ZERO).for_receive(),
            RecvTimeout::NoWait
        );
        assert_eq!(Timeout::Never.for_receive(), RecvTimeout::Forever);
        assert_eq!(Timeout::default(), Timeout::Never);
    }

    #[test]
    fn every_relay_code_has_an_error() {
        for code in 1..=8 {
            let c = RelayErrorCode::from_i32(code).unwrap();
            let e = Error::from(c);
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(Error::from(RelayErrorCode::Deadlock), Error::Deadlock);
        assert_eq!(Error::from(MipcError::QueueRemoved), Error::Unregistered);
        assert_eq!(Error::from(EventError::Wildcard), Error::InvalidPattern);
    }
}
