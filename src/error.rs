//! The library's error type: one variant per reason a call fails, each with its errno.

use crate::name::NameError;
use crate::sysv::QueueError;
use crate::wire::WireError;
use std::fmt;

/// Error codes the relay sends back in a `MIPC_MSG_TYPE_ERROR` answer (docs/PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum RelayErrorCode {
    /// Nobody registered the destination name.
    NoSuchDestination = 1,
    /// The destination's process died, or its queue is gone.
    PeerDied = 2,
    /// The destination's queue is full.
    DestinationBusy = 3,
    /// The call would close a cycle of entries waiting on each other.
    Deadlock = 4,
    /// The name is held by another live entry.
    NameInUse = 5,
    /// The relay refused the message as malformed.
    BadMessage = 6,
    /// A call to `"mipc_main"` with an api id the relay does not serve.
    NotServed = 7,
    /// The relay's name table is full.
    TableFull = 8,
}

impl RelayErrorCode {
    /// Reads a code from the wire.
    pub fn from_i32(v: i32) -> Option<RelayErrorCode> {
        Some(match v {
            1 => RelayErrorCode::NoSuchDestination,
            2 => RelayErrorCode::PeerDied,
            3 => RelayErrorCode::DestinationBusy,
            4 => RelayErrorCode::Deadlock,
            5 => RelayErrorCode::NameInUse,
            6 => RelayErrorCode::BadMessage,
            7 => RelayErrorCode::NotServed,
            8 => RelayErrorCode::TableFull,
            _ => return None,
        })
    }
}

/// Why a library call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MipcError {
    /// A pointer argument was NULL.
    NullPointer(&'static str),
    /// A name argument was invalid.
    BadName(&'static str, NameError),
    /// A payload is larger than `MIPC_MSG_MAX_LEN`.
    PayloadTooLarge(u64),
    /// A size or count argument is out of range.
    BadArgument(&'static str),
    /// The answer was longer than the caller's buffer; its first `out_size` bytes were copied.
    AnswerTruncated {
        /// Length of the answer.
        len: usize,
        /// Room the caller gave.
        room: usize,
    },
    /// The calling thread never called `mipc_init`.
    NotRegistered,
    /// No entry of that name is registered with the relay.
    NoSuchDestination,
    /// The call's timeout passed without an answer.
    Timeout,
    /// The destination died while the call waited.
    PeerDied,
    /// The destination's queue is full.
    DestinationBusy,
    /// The call would have deadlocked on a cycle of callers.
    Deadlock,
    /// The name is held by another live entry.
    NameInUse,
    /// The relay serves no such api (a call to `"mipc_main"` other than PING).
    NotServed,
    /// The relay's name table is full.
    TableFull,
    /// The relay's root queue does not exist (no relay is running).
    RelayUnavailable,
    /// The relay exists but takes nothing off its root queue (stopped, hung, or far behind):
    /// a send found the queue full for `MIPC_SEND_TIMEOUT_MS`, or `mipc_init` got no
    /// greeting from a relay that is stopped or read nothing. The text says which.
    RelayStalled(&'static str),
    /// The queue waited on was removed.
    QueueRemoved,
    /// A received message broke the wire format.
    BadMessage(WireError),
    /// A queue call failed.
    Queue(QueueError),
    /// The relay does not know events and broadcast (a legacy relay, or the entry was never
    /// greeted): nothing was sent.
    EventsUnsupported,
    /// An internal lock was poisoned by a panic; the call did nothing.
    Internal,
}

impl MipcError {
    /// The errno value that fits this error.
    pub fn errno(&self) -> i32 {
        match self {
            MipcError::NullPointer(_) | MipcError::BadArgument(_) => libc::EINVAL,
            MipcError::BadName(_, NameError::TooLong) => libc::ENAMETOOLONG,
            MipcError::BadName(..) => libc::EINVAL,
            MipcError::PayloadTooLarge(_) | MipcError::AnswerTruncated { .. } => libc::EMSGSIZE,
            MipcError::NotRegistered => libc::ESRCH,
            MipcError::NoSuchDestination => libc::EHOSTUNREACH,
            MipcError::Timeout => libc::ETIMEDOUT,
            MipcError::PeerDied => libc::ECONNRESET,
            MipcError::DestinationBusy => libc::EBUSY,
            MipcError::Deadlock => libc::EDEADLK,
            MipcError::NameInUse => libc::EADDRINUSE,
            MipcError::NotServed => libc::EOPNOTSUPP,
            MipcError::TableFull => libc::ENOSPC,
            MipcError::RelayUnavailable => libc::ENOENT,
            MipcError::RelayStalled(_) => libc::EAGAIN,
            MipcError::QueueRemoved => libc::EIDRM,
            MipcError::BadMessage(_) => libc::EBADMSG,
            MipcError::Queue(q) => q.errno(),
            MipcError::EventsUnsupported => libc::EPROTONOSUPPORT,
            MipcError::Internal => libc::EFAULT,
        }
    }

    /// The error a relay error code stands for.
    pub fn from_relay(code: RelayErrorCode) -> MipcError {
        match code {
            RelayErrorCode::NoSuchDestination => MipcError::NoSuchDestination,
            RelayErrorCode::PeerDied => MipcError::PeerDied,
            RelayErrorCode::DestinationBusy => MipcError::DestinationBusy,
            RelayErrorCode::Deadlock => MipcError::Deadlock,
            RelayErrorCode::NameInUse => MipcError::NameInUse,
            RelayErrorCode::BadMessage => MipcError::BadArgument("message refused by the relay"),
            RelayErrorCode::NotServed => MipcError::NotServed,
            RelayErrorCode::TableFull => MipcError::TableFull,
        }
    }
}

impl fmt::Display for MipcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MipcError::NullPointer(arg) => write!(f, "{arg} is NULL"),
            MipcError::BadName(arg, e) => write!(f, "{arg}: {e}"),
            MipcError::PayloadTooLarge(n) => {
                write!(f, "payload of {n} bytes is over MIPC_MSG_MAX_LEN (2048)")
            }
            MipcError::BadArgument(what) => f.write_str(what),
            MipcError::AnswerTruncated { len, room } => write!(
                f,
                "answer truncated: {len} bytes arrived, out_size is {room}; the first {room} were copied"
            ),
            MipcError::NotRegistered => {
                f.write_str("calling thread never registered (call mipc_init in this thread first)")
            }
            MipcError::NoSuchDestination => f.write_str("no such destination"),
            MipcError::Timeout => f.write_str("timeout"),
            MipcError::PeerDied => f.write_str("peer died"),
            MipcError::DestinationBusy => f.write_str("destination busy (its queue is full)"),
            MipcError::Deadlock => f.write_str("deadlock: the destination is waiting on this caller"),
            MipcError::NameInUse => f.write_str("name in use by another live entry"),
            MipcError::NotServed => f.write_str("mipc_main serves no such api (only PING)"),
            MipcError::TableFull => f.write_str("the relay's name table is full"),
            MipcError::RelayUnavailable => f.write_str("relay not running (no root queue)"),
            MipcError::RelayStalled(why) => write!(f, "relay not draining its queue ({why})"),
            MipcError::QueueRemoved => f.write_str("queue removed while waiting"),
            MipcError::BadMessage(e) => write!(f, "malformed message: {e}"),
            MipcError::Queue(e) => write!(f, "queue error: {e}"),
            MipcError::EventsUnsupported => f.write_str(
                "the relay does not support events and broadcast (legacy relay or MIPC_LEGACY_WIRE)",
            ),
            MipcError::Internal => f.write_str("internal error (a lock was poisoned)"),
        }
    }
}

impl std::error::Error for MipcError {}

impl From<QueueError> for MipcError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Gone => MipcError::QueueRemoved,
            other => MipcError::Queue(other),
        }
    }
}

/// Result of a library call.
pub type Result<T> = std::result::Result<T, MipcError>;
