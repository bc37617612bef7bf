//! The relay's control channel for tools (`mipc list/stats/monitor/capture/wait`, and
//! `mipc_wait_for`): typed messages with their encode/decode, no I/O (docs/PROTOCOL.md §7, §8).
//! Their types are rows of the `kinds!` table in `control.rs`; unlike the fixed-size payloads
//! there, these have variable lengths (pages, counters), so each has its own codec here.
//!
//! A tool does not register a name for these: it makes a private queue, and every request
//! it sends to the root queue (`dst_name = "mipc_main"`, `mtype = msg_type =` the request's
//! type) starts with a [`RequestHead`](crate::wire::tool::RequestHead) naming that queue and the tool's process. The relay
//! answers on that queue with `mtype = msg_type =` the request's type, `src_name =
//! "mipc_main"`, and a payload that starts with an [`AnswerHead`](crate::wire::tool::AnswerHead) carrying the request id.
//! Monitor events are not framed as messages (a copy of a 2 048-byte message does not fit a
//! message's payload): an event's `mtext` is one [`EventRecord`](crate::wire::tool::EventRecord), `mtype` =
//! [`MIPC_MSG_TYPE_MONITOR_EVENT`](crate::wire::tool::MIPC_MSG_TYPE_MONITOR_EVENT).
//!
//! All integers are native-endian, as in the SPEC §2 header.

use super::{MIPC_MSG_MAX_LEN, MIPC_NAME_MAX_LEN, MTEXT_MAX_TAGGED};
use crate::name::MipcName;
use std::fmt;

mod event;
mod list;
mod samples;
mod stats;
#[cfg(test)]
mod tests;

pub use event::{EventKind, EventRecord};
pub use list::{
    EntryInfo, ListPage, ENTRY_GREETED, ENTRY_SUBS_TRUNCATED, LIST_BODY_MAX, LIST_SUBS_MAX,
};
pub use samples::samples;
pub use stats::{counter_name, reject_counter_id, Counter, RejectReason, StatsReport};

/// A snapshot page of the name table (request and answer).
pub const MIPC_MSG_TYPE_LIST: u32 = 0x7FFF_FF06;
/// The relay's counters (request and answer).
pub const MIPC_MSG_TYPE_STATS: u32 = 0x7FFF_FF07;
/// Attach a monitor: copies of the relay's traffic and events go to the request's queue.
pub const MIPC_MSG_TYPE_MONITOR_ATTACH: u32 = 0x7FFF_FF08;
/// Detach a monitor.
pub const MIPC_MSG_TYPE_MONITOR_DETACH: u32 = 0x7FFF_FF09;
/// One monitor event (relay to monitor only; its `mtext` is an [`EventRecord`]).
pub const MIPC_MSG_TYPE_MONITOR_EVENT: u32 = 0x7FFF_FF0A;
/// Answer once a name is registered (request and answer).
pub const MIPC_MSG_TYPE_WAIT_FOR: u32 = 0x7FFF_FF0B;
/// The relay to a direct caller's entry: drop your direct routes (a monitor attached; no
/// payload). The library looks for it before each direct send.
pub const MIPC_MSG_TYPE_DROP_ROUTES: u32 = 0x7FFF_FF0C;
/// First type of the tool channel; `0x7FFFFF0D`-`0x7FFFFF0F` are spare.
pub const TOOL_TYPE_MIN: u32 = 0x7FFF_FF06;
/// Last type of the tool channel.
pub const TOOL_TYPE_MAX: u32 = 0x7FFF_FF0F;

/// Version of this channel's layouts.
pub const TOOL_VERSION: u32 = 1;
/// Bytes of a [`RequestHead`].
pub const REQUEST_HEAD_LEN: usize = 16;
/// Bytes of an [`AnswerHead`].
pub const ANSWER_HEAD_LEN: usize = 12;
/// Bytes of one [`EntryInfo`] in a list page, before its subscriptions' names.
pub const ENTRY_LEN: usize = 112;
/// Bytes before the entries of a list page.
const LIST_PAGE_HEAD: usize = 12;
/// Most entries in one list page (fewer when they carry subscriptions).
pub const LIST_PAGE_MAX: usize = (MIPC_MSG_MAX_LEN - ANSWER_HEAD_LEN - LIST_PAGE_HEAD) / ENTRY_LEN;
/// Bytes of one counter in a stats answer.
const COUNTER_LEN: usize = 12;
/// Bytes of one backlog line in a stats answer.
const BACKLOG_LEN: usize = MIPC_NAME_MAX_LEN + 4;
/// Bytes of an event record before the copied message.
pub const EVENT_HEAD_LEN: usize = 68;
/// Largest event record.
pub const EVENT_MAX_LEN: usize = EVENT_HEAD_LEN + MTEXT_MAX_TAGGED;

/// Why bytes are not a valid tool-channel message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolWireError {
    /// Fewer bytes than the layout needs.
    Truncated,
    /// Bytes left over after the layout.
    TrailingBytes,
    /// A version this code does not speak.
    Version(u32),
    /// Not a tool-channel type, or a type that is never a request.
    UnknownType(u32),
    /// A name field that is empty or unterminated.
    BadName,
    /// A count that disagrees with the length, or is over the limit.
    BadCount,
}

impl fmt::Display for ToolWireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolWireError::Truncated => f.write_str("control message shorter than its layout"),
            ToolWireError::TrailingBytes => f.write_str("control message longer than its layout"),
            ToolWireError::Version(v) => write!(f, "control channel version {v} not spoken"),
            ToolWireError::UnknownType(t) => write!(f, "not a tool request type: {t:#x}"),
            ToolWireError::BadName => f.write_str("bad name field"),
            ToolWireError::BadCount => f.write_str("count disagrees with the length"),
        }
    }
}

impl std::error::Error for ToolWireError {}

type Res<T> = Result<T, ToolWireError>;

/// Reads native-endian fields from a byte slice, front to back.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        if self.b.len() < n {
            return Err(ToolWireError::Truncated);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn arr<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u16(&mut self) -> Res<u16> {
        Ok(u16::from_ne_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Res<u32> {
        Ok(u32::from_ne_bytes(self.arr()?))
    }
    fn i32(&mut self) -> Res<i32> {
        Ok(i32::from_ne_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Res<u64> {
        Ok(u64::from_ne_bytes(self.arr()?))
    }
    fn name(&mut self) -> Res<MipcName> {
        MipcName::from_field(&self.arr()?).map_err(|_| ToolWireError::BadName)
    }
    /// A name field that may be all zeroes (no name).
    fn opt_name(&mut self) -> Res<Option<MipcName>> {
        let f: [u8; MIPC_NAME_MAX_LEN] = self.arr()?;
        if f[0] == 0 {
            return Ok(None);
        }
        MipcName::from_field(&f)
            .map(Some)
            .map_err(|_| ToolWireError::BadName)
    }
    fn end(&self) -> Res<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(ToolWireError::TrailingBytes)
        }
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_ne_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}
fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_ne_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_ne_bytes());
}
fn put_name(out: &mut Vec<u8>, n: Option<&MipcName>) {
    match n {
        Some(n) => out.extend_from_slice(n.field()),
        None => out.extend_from_slice(&[0u8; MIPC_NAME_MAX_LEN]),
    }
}

// ---- requests ----

/// The start of every tool request: who asks, and where the answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// The asking process (a monitor is detached when it dies).
    pub pid: i32,
    /// The queue the answers (and a monitor's events) go to.
    pub reply_queue: i32,
    /// Chosen by the tool, copied into the answer.
    pub request_id: u32,
}

/// What a tool asks the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// The page of the name table starting at entry `cursor`; cursor 0 takes a new snapshot.
    List {
        /// Index of the first entry wanted.
        cursor: u32,
    },
    /// The relay's counters.
    Stats,
    /// Start copying events to the request's queue.
    MonitorAttach {
        /// Reserved, 0.
        flags: u32,
    },
    /// Stop copying events to the request's queue.
    MonitorDetach,
    /// Answer when `name` is registered (at once if it is).
    WaitFor {
        /// The awaited name.
        name: MipcName,
        /// How long the relay keeps the request, ms (-1: until the asker is gone).
        timeout_ms: i32,
    },
}

/// A whole tool request: its head and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Who asks.
    pub head: RequestHead,
    /// What.
    pub body: RequestBody,
}

impl Request {
    /// The `msg_type` (and `mtype`) this request is sent with.
    pub fn msg_type(&self) -> u32 {
        match self.body {
            RequestBody::List { .. } => MIPC_MSG_TYPE_LIST,
            RequestBody::Stats => MIPC_MSG_TYPE_STATS,
            RequestBody::MonitorAttach { .. } => MIPC_MSG_TYPE_MONITOR_ATTACH,
            RequestBody::MonitorDetach => MIPC_MSG_TYPE_MONITOR_DETACH,
            RequestBody::WaitFor { .. } => MIPC_MSG_TYPE_WAIT_FOR,
        }
    }

    /// Appends the payload bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, TOOL_VERSION);
        put_i32(out, self.head.pid);
        put_i32(out, self.head.reply_queue);
        put_u32(out, self.head.request_id);
        match self.body {
            RequestBody::List { cursor } => put_u32(out, cursor),
            RequestBody::Stats | RequestBody::MonitorDetach => {}
            RequestBody::MonitorAttach { flags } => put_u32(out, flags),
            RequestBody::WaitFor { name, timeout_ms } => {
                put_name(out, Some(&name));
                put_i32(out, timeout_ms);
            }
        }
    }

    /// Reads a request of type `msg_type` from a message payload.
    ///
    /// # Errors
    /// [`ToolWireError`] when the type is not a request type or the bytes do not fit it.
    pub fn decode(msg_type: u32, payload: &[u8]) -> Result<Request, ToolWireError> {
        let mut r = Reader { b: payload };
        let version = r.u32()?;
        if version != TOOL_VERSION {
            return Err(ToolWireError::Version(version));
        }
        let head = RequestHead {
            pid: r.i32()?,
            reply_queue: r.i32()?,
            request_id: r.u32()?,
        };
        let body = match msg_type {
            MIPC_MSG_TYPE_LIST => RequestBody::List { cursor: r.u32()? },
            MIPC_MSG_TYPE_STATS => RequestBody::Stats,
            MIPC_MSG_TYPE_MONITOR_ATTACH => RequestBody::MonitorAttach { flags: r.u32()? },
            MIPC_MSG_TYPE_MONITOR_DETACH => RequestBody::MonitorDetach,
            MIPC_MSG_TYPE_WAIT_FOR => RequestBody::WaitFor {
                name: r.name()?,
                timeout_ms: r.i32()?,
            },
            t => return Err(ToolWireError::UnknownType(t)),
        };
        r.end()?;
        Ok(Request { head, body })
    }
}

// ---- answers ----

/// How the relay took a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolStatus {
    /// Done.
    Ok,
    /// The request was malformed or of an unknown version.
    BadRequest,
    /// A list cursor outside the snapshot (or the snapshot was dropped): start again at 0.
    NoSnapshot,
    /// The relay serves no more monitors (or waiters) at once.
    TooMany,
    /// `WaitFor` ended without the name registering.
    TimedOut,
    /// The relay is stopping (a waiter's request ends).
    Stopping,
    /// A status this code does not know.
    Other(i32),
}

impl ToolStatus {
    /// The wire value.
    pub fn code(self) -> i32 {
        match self {
            ToolStatus::Ok => 0,
            ToolStatus::BadRequest => 1,
            ToolStatus::NoSnapshot => 2,
            ToolStatus::TooMany => 3,
            ToolStatus::TimedOut => 4,
            ToolStatus::Stopping => 5,
            ToolStatus::Other(c) => c,
        }
    }
    /// Reads a wire value.
    pub fn from_code(c: i32) -> ToolStatus {
        match c {
            0 => ToolStatus::Ok,
            1 => ToolStatus::BadRequest,
            2 => ToolStatus::NoSnapshot,
            3 => ToolStatus::TooMany,
            4 => ToolStatus::TimedOut,
            5 => ToolStatus::Stopping,
            c => ToolStatus::Other(c),
        }
    }
}

impl fmt::Display for ToolStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolStatus::Ok => f.write_str("ok"),
            ToolStatus::BadRequest => f.write_str("the relay refused the request as malformed"),
            ToolStatus::NoSnapshot => f.write_str("the list snapshot expired"),
            ToolStatus::TooMany => f.write_str("the relay serves no more monitors or waiters"),
            ToolStatus::TimedOut => f.write_str("timed out"),
            ToolStatus::Stopping => f.write_str("the relay is stopping"),
            ToolStatus::Other(c) => write!(f, "relay status {c}"),
        }
    }
}

/// The start of every answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerHead {
    /// The request's id.
    pub request_id: u32,
    /// How it went.
    pub status: ToolStatus,
}

impl AnswerHead {
    /// Appends the head to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, TOOL_VERSION);
        put_u32(out, self.request_id);
        put_i32(out, self.status.code());
    }

    /// Reads the head at the start of an answer's payload; returns it and the rest.
    ///
    /// # Errors
    /// [`ToolWireError::Truncated`] or [`ToolWireError::Version`].
    pub fn decode(payload: &[u8]) -> Result<(AnswerHead, &[u8]), ToolWireError> {
        let mut r = Reader { b: payload };
        let version = r.u32()?;
        if version != TOOL_VERSION {
            return Err(ToolWireError::Version(version));
        }
        let head = AnswerHead {
            request_id: r.u32()?,
            status: ToolStatus::from_code(r.i32()?),
        };
        Ok((head, r.b))
    }
}
