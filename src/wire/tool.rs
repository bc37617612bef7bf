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
/// Bytes of one [`EntryInfo`] in a list page.
pub const ENTRY_LEN: usize = 112;
/// Bytes before the entries of a list page.
const LIST_PAGE_HEAD: usize = 12;
/// Most entries in one list page.
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

/// Flag of [`EntryInfo::flags`]: the entry greeted the relay (a mipc-rs library).
pub const ENTRY_GREETED: u32 = 1;

/// One entry of the name table, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    /// Its name.
    pub name: MipcName,
    /// Its process (0 when unknown: a legacy entry).
    pub pid: i32,
    /// Its queue.
    pub queue: i32,
    /// The registering thread (`pthread_t`, as the NOTICE gave it).
    pub thread: u64,
    /// [`ENTRY_GREETED`] and future flags.
    pub flags: u32,
    /// Messages waiting in its queue.
    pub queued_msgs: u32,
    /// Registered since, seconds since the epoch.
    pub since: u64,
    /// Bytes waiting in its queue.
    pub queued_bytes: u64,
    /// Messages the relay holds for it (its queue was full).
    pub backlog: u32,
    /// Messages the relay forwarded to it.
    pub msgs_in: u64,
    /// Messages the relay forwarded from it.
    pub msgs_out: u64,
    /// Payload bytes forwarded to it.
    pub bytes_in: u64,
    /// Payload bytes forwarded from it.
    pub bytes_out: u64,
}

impl EntryInfo {
    /// Whether the entry greeted the relay.
    pub fn greeted(&self) -> bool {
        self.flags & ENTRY_GREETED != 0
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_name(out, Some(&self.name));
        put_i32(out, self.pid);
        put_i32(out, self.queue);
        put_u64(out, self.thread);
        put_u32(out, self.flags);
        put_u32(out, self.queued_msgs);
        put_u64(out, self.since);
        put_u64(out, self.queued_bytes);
        put_u32(out, self.backlog);
        put_u32(out, 0);
        put_u64(out, self.msgs_in);
        put_u64(out, self.msgs_out);
        put_u64(out, self.bytes_in);
        put_u64(out, self.bytes_out);
    }

    fn decode(r: &mut Reader<'_>) -> Res<EntryInfo> {
        let name = r.name()?;
        let pid = r.i32()?;
        let queue = r.i32()?;
        let thread = r.u64()?;
        let flags = r.u32()?;
        let queued_msgs = r.u32()?;
        let since = r.u64()?;
        let queued_bytes = r.u64()?;
        let backlog = r.u32()?;
        let _reserved = r.u32()?;
        Ok(EntryInfo {
            name,
            pid,
            queue,
            thread,
            flags,
            queued_msgs,
            since,
            queued_bytes,
            backlog,
            msgs_in: r.u64()?,
            msgs_out: r.u64()?,
            bytes_in: r.u64()?,
            bytes_out: r.u64()?,
        })
    }
}

/// One page of a name-table snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Entries in the whole snapshot.
    pub total: u32,
    /// Index of this page's first entry.
    pub first: u32,
    /// At most [`LIST_PAGE_MAX`] entries.
    pub entries: Vec<EntryInfo>,
}

impl ListPage {
    /// Whether this page ends the snapshot.
    pub fn is_last(&self) -> bool {
        self.first as usize + self.entries.len() >= self.total as usize
    }

    /// Appends the page (after an [`AnswerHead`]) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        debug_assert!(self.entries.len() <= LIST_PAGE_MAX);
        put_u32(out, self.total);
        put_u32(out, self.first);
        put_u32(out, self.entries.len() as u32);
        for e in &self.entries {
            e.encode(out);
        }
    }

    /// Reads a page from the bytes after the [`AnswerHead`].
    ///
    /// # Errors
    /// [`ToolWireError`] when the bytes do not hold what the counts say.
    pub fn decode(body: &[u8]) -> Result<ListPage, ToolWireError> {
        let mut r = Reader { b: body };
        let total = r.u32()?;
        let first = r.u32()?;
        let count = r.u32()? as usize;
        if count > LIST_PAGE_MAX
            || count * ENTRY_LEN != r.b.len()
            || first as u64 + count as u64 > total as u64
        {
            return Err(ToolWireError::BadCount);
        }
        let entries = (0..count)
            .map(|_| EntryInfo::decode(&mut r))
            .collect::<Res<Vec<_>>>()?;
        Ok(ListPage {
            total,
            first,
            entries,
        })
    }
}

/// Why the relay refused a message (the `code` of a [`EventKind::Rejected`] event and the
/// `rejected.*` counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Not a valid SPEC §2 message.
    Malformed = 1,
    /// A NOTICE whose thread info is wrong.
    BadNotice = 2,
    /// A registration naming a queue that does not exist.
    NoQueue = 3,
    /// A registration of a name another live entry holds.
    NameInUse = 4,
    /// An unregistration not from the entry's owner.
    NotOwner = 5,
    /// A registration of a queue another name holds.
    QueueInUse = 6,
    /// The name table is full.
    TableFull = 7,
    /// A reserved control type the relay does not forward.
    Control = 8,
    /// Nobody registered the destination.
    NoSuchDestination = 9,
    /// The destination's queue is full (and the relay holds no more for it).
    Busy = 10,
    /// The destination's queue is gone.
    Gone = 11,
    /// The call would close a wait cycle.
    Deadlock = 12,
    /// Another queue error.
    Queue = 13,
}

impl RejectReason {
    /// Every reason, in code order.
    pub const ALL: [RejectReason; 13] = [
        RejectReason::Malformed,
        RejectReason::BadNotice,
        RejectReason::NoQueue,
        RejectReason::NameInUse,
        RejectReason::NotOwner,
        RejectReason::QueueInUse,
        RejectReason::TableFull,
        RejectReason::Control,
        RejectReason::NoSuchDestination,
        RejectReason::Busy,
        RejectReason::Gone,
        RejectReason::Deadlock,
        RejectReason::Queue,
    ];

    /// The reason of a wire code.
    pub fn from_code(c: i32) -> Option<RejectReason> {
        RejectReason::ALL.iter().copied().find(|r| *r as i32 == c)
    }

    /// A short, stable name (used in counters and `--json`).
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::BadNotice => "bad_notice",
            RejectReason::NoQueue => "no_queue",
            RejectReason::NameInUse => "name_in_use",
            RejectReason::NotOwner => "not_owner",
            RejectReason::QueueInUse => "queue_in_use",
            RejectReason::TableFull => "table_full",
            RejectReason::Control => "control_type",
            RejectReason::NoSuchDestination => "no_such_destination",
            RejectReason::Busy => "destination_busy",
            RejectReason::Gone => "destination_gone",
            RejectReason::Deadlock => "deadlock",
            RejectReason::Queue => "queue_error",
        }
    }
}

/// The relay's counters, by wire id. Ids `100 + reason` count rejections by [`RejectReason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Seconds since the relay started.
    Uptime = 1,
    /// Entries in the name table.
    Entries = 2,
    /// Messages forwarded.
    Forwarded = 3,
    /// Payload bytes forwarded.
    ForwardedBytes = 4,
    /// Messages held for a full queue, then delivered.
    Parked = 5,
    /// Error answers sent to callers.
    ErrorsAnswered = 6,
    /// Registrations accepted.
    Registrations = 7,
    /// Entries removed because their process died or their queue went away.
    Deaths = 8,
    /// Monitors attached now.
    Monitors = 9,
    /// Monitor events lost (a monitor's queue was full).
    MonitorLost = 10,
    /// Messages refused, all reasons.
    Rejected = 11,
    /// Messages held now for full queues.
    Backlog = 12,
}

impl Counter {
    /// Every plain counter, in id order.
    pub const ALL: [Counter; 12] = [
        Counter::Uptime,
        Counter::Entries,
        Counter::Forwarded,
        Counter::ForwardedBytes,
        Counter::Parked,
        Counter::ErrorsAnswered,
        Counter::Registrations,
        Counter::Deaths,
        Counter::Monitors,
        Counter::MonitorLost,
        Counter::Rejected,
        Counter::Backlog,
    ];

    /// What people read (`mipc stats`).
    pub fn label(self) -> &'static str {
        match self {
            Counter::Uptime => "uptime",
            Counter::Entries => "entries",
            Counter::Forwarded => "messages forwarded",
            Counter::ForwardedBytes => "payload forwarded",
            Counter::Parked => "held for a full queue",
            Counter::ErrorsAnswered => "error answers",
            Counter::Registrations => "registrations",
            Counter::Deaths => "deaths",
            Counter::Monitors => "monitors attached",
            Counter::MonitorLost => "monitor events lost",
            Counter::Rejected => "messages rejected",
            Counter::Backlog => "held now",
        }
    }

    /// A short, stable name (used in `--json` and the relay's exit line).
    pub fn name(self) -> &'static str {
        match self {
            Counter::Uptime => "uptime_s",
            Counter::Entries => "entries",
            Counter::Forwarded => "forwarded",
            Counter::ForwardedBytes => "forwarded_bytes",
            Counter::Parked => "parked",
            Counter::ErrorsAnswered => "errors_answered",
            Counter::Registrations => "registrations",
            Counter::Deaths => "deaths",
            Counter::Monitors => "monitors",
            Counter::MonitorLost => "monitor_events_lost",
            Counter::Rejected => "rejected",
            Counter::Backlog => "held_now",
        }
    }
}

/// Wire id of the rejection counter for `reason`.
pub fn reject_counter_id(reason: RejectReason) -> u32 {
    100 + reason as u32
}

/// The name of counter `id`: a [`Counter`], `rejected.<reason>`, or `counter_<id>`.
pub fn counter_name(id: u32) -> String {
    if let Some(c) = Counter::ALL.iter().find(|c| **c as u32 == id) {
        return c.name().to_string();
    }
    if let Some(r) = id
        .checked_sub(100)
        .and_then(|c| RejectReason::from_code(c as i32))
    {
        return format!("rejected.{}", r.name());
    }
    format!("counter_{id}")
}

/// The relay's counters and its per-destination backlog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsReport {
    /// `(id, value)` pairs; see [`Counter`] and [`reject_counter_id`].
    pub counters: Vec<(u32, u64)>,
    /// Destinations with messages held by the relay, and how many (the largest first).
    pub backlog: Vec<(MipcName, u32)>,
}

impl StatsReport {
    /// Most backlog lines that fit beside `counters` counters.
    pub fn backlog_room(counters: usize) -> usize {
        (MIPC_MSG_MAX_LEN - ANSWER_HEAD_LEN - 8).saturating_sub(counters * COUNTER_LEN)
            / BACKLOG_LEN
    }

    /// The value of a counter, if present.
    pub fn get(&self, id: u32) -> Option<u64> {
        self.counters.iter().find(|(i, _)| *i == id).map(|c| c.1)
    }

    /// Appends the report (after an [`AnswerHead`]) to `out`; backlog lines that do not fit
    /// a message are left out.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let room = Self::backlog_room(self.counters.len());
        let backlog = &self.backlog[..self.backlog.len().min(room)];
        put_u32(out, self.counters.len() as u32);
        put_u32(out, backlog.len() as u32);
        for (id, v) in &self.counters {
            put_u32(out, *id);
            put_u64(out, *v);
        }
        for (n, c) in backlog {
            put_name(out, Some(n));
            put_u32(out, *c);
        }
    }

    /// Reads a report from the bytes after the [`AnswerHead`].
    ///
    /// # Errors
    /// [`ToolWireError`] when the bytes do not hold what the counts say.
    pub fn decode(body: &[u8]) -> Result<StatsReport, ToolWireError> {
        let mut r = Reader { b: body };
        let nc = r.u32()? as usize;
        let nb = r.u32()? as usize;
        if nc
            .saturating_mul(COUNTER_LEN)
            .saturating_add(nb.saturating_mul(BACKLOG_LEN))
            != r.b.len()
        {
            return Err(ToolWireError::BadCount);
        }
        let counters = (0..nc)
            .map(|_| Ok((r.u32()?, r.u64()?)))
            .collect::<Res<Vec<_>>>()?;
        let backlog = (0..nb)
            .map(|_| Ok((r.name()?, r.u32()?)))
            .collect::<Res<Vec<_>>>()?;
        Ok(StatsReport { counters, backlog })
    }
}

// ---- monitor events ----

/// What a monitor event reports. Kinds `0x10`-`0x1F` are kept for events and broadcasts
/// (a later issue); a monitor shows kinds it does not know by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The relay forwarded (or queued for later delivery) the message: `src -> dst`.
    Message,
    /// An entry registered (`name`, `pid`; the message is its NOTICE).
    Registered,
    /// An entry unregistered.
    Unregistered,
    /// An entry's process died or its queue went away (`name`, `pid`).
    Died,
    /// The relay refused the message (`code` a [`RejectReason`]).
    Rejected,
    /// The relay answered a caller with an error (`code` a `RelayErrorCode`; the message is
    /// the ERROR it sent).
    ErrorAnswer,
    /// A registered entry greeted the relay: it is a mipc-rs entry of process `pid` (the
    /// message is its HELLO).
    Greeted,
    /// A kind this code does not know.
    Other(u16),
}

impl EventKind {
    /// The wire value.
    pub fn code(self) -> u16 {
        match self {
            EventKind::Message => 1,
            EventKind::Registered => 2,
            EventKind::Unregistered => 3,
            EventKind::Died => 4,
            EventKind::Rejected => 5,
            EventKind::ErrorAnswer => 6,
            EventKind::Greeted => 7,
            EventKind::Other(c) => c,
        }
    }
    /// Reads a wire value.
    pub fn from_code(c: u16) -> EventKind {
        match c {
            1 => EventKind::Message,
            2 => EventKind::Registered,
            3 => EventKind::Unregistered,
            4 => EventKind::Died,
            5 => EventKind::Rejected,
            6 => EventKind::ErrorAnswer,
            7 => EventKind::Greeted,
            c => EventKind::Other(c),
        }
    }
    /// A short, stable name.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Registered => "register",
            EventKind::Unregistered => "unregister",
            EventKind::Died => "death",
            EventKind::Rejected => "reject",
            EventKind::ErrorAnswer => "error",
            EventKind::Greeted => "greet",
            EventKind::Other(_) => "event",
        }
    }
}

/// One monitor event: the whole `mtext` of a [`MIPC_MSG_TYPE_MONITOR_EVENT`] message.
///
/// Layout: `u32 MIPC_MSG_TYPE_MONITOR_EVENT`, `u16 version`, `u16 kind`, `u64 time_ns`
/// (CLOCK_REALTIME), `u32 seq`, `u32 lost`, `i32 pid`, `i32 code`, `name[32]`,
/// `u32 msg_len`, then `msg_len` bytes: the message's `mtext` as the relay saw it (header,
/// payload and call tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRecord<'a> {
    /// What happened.
    pub kind: EventKind,
    /// When, ns since the epoch (the relay's clock).
    pub time_ns: u64,
    /// This monitor's event number (lost events count too, so gaps show).
    pub seq: u32,
    /// Events this monitor lost just before this one (its queue was full).
    pub lost: u32,
    /// The process concerned (registration, death), else 0.
    pub pid: i32,
    /// The reason or error code ([`EventKind::Rejected`], [`EventKind::ErrorAnswer`]).
    pub code: i32,
    /// The entry concerned (registration, unregistration, death), if any.
    pub name: Option<MipcName>,
    /// The message concerned, as the relay saw it (may be empty).
    pub msg: &'a [u8],
}

impl<'a> EventRecord<'a> {
    /// Appends the record to `out`; the message is cut to what fits [`EVENT_MAX_LEN`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        let msg = &self.msg[..self.msg.len().min(MTEXT_MAX_TAGGED)];
        put_u32(out, MIPC_MSG_TYPE_MONITOR_EVENT);
        put_u16(out, TOOL_VERSION as u16);
        put_u16(out, self.kind.code());
        put_u64(out, self.time_ns);
        put_u32(out, self.seq);
        put_u32(out, self.lost);
        put_i32(out, self.pid);
        put_i32(out, self.code);
        put_name(out, self.name.as_ref());
        put_u32(out, msg.len() as u32);
        out.extend_from_slice(msg);
    }

    /// Reads a record from a monitor event's `mtext`.
    ///
    /// # Errors
    /// [`ToolWireError`] when the bytes are not a record of this version.
    pub fn decode(mtext: &'a [u8]) -> Result<EventRecord<'a>, ToolWireError> {
        let mut r = Reader { b: mtext };
        let marker = r.u32()?;
        if marker != MIPC_MSG_TYPE_MONITOR_EVENT {
            return Err(ToolWireError::UnknownType(marker));
        }
        let version = r.u16()?;
        if version as u32 != TOOL_VERSION {
            return Err(ToolWireError::Version(version as u32));
        }
        let kind = EventKind::from_code(r.u16()?);
        let time_ns = r.u64()?;
        let seq = r.u32()?;
        let lost = r.u32()?;
        let pid = r.i32()?;
        let code = r.i32()?;
        let name = r.opt_name()?;
        let len = r.u32()? as usize;
        if len > MTEXT_MAX_TAGGED {
            return Err(ToolWireError::BadCount);
        }
        let msg = r.take(len)?;
        r.end()?;
        Ok(EventRecord {
            kind,
            time_ns,
            seq,
            lost,
            pid,
            code,
            name,
            msg,
        })
    }
}

/// Round-trips one value of every tool message, derived from `seed` bytes (the wire fuzzer
/// passes its input through `control::samples`; any bytes do).
///
/// # Panics
/// When one does not round-trip.
pub fn samples(seed: &[u8], name: &MipcName) {
    let w = |i: usize| {
        let mut b = [0u8; 8];
        for (k, x) in b.iter_mut().enumerate() {
            *x = seed.get(i * 8 + k).copied().unwrap_or(k as u8);
        }
        u64::from_ne_bytes(b)
    };
    let (a, b) = (w(0), w(1));
    let head = RequestHead {
        pid: a as i32,
        reply_queue: (a >> 32) as i32,
        request_id: b as u32,
    };
    for body in [
        RequestBody::List { cursor: b as u32 },
        RequestBody::Stats,
        RequestBody::MonitorAttach {
            flags: (b >> 32) as u32,
        },
        RequestBody::MonitorDetach,
        RequestBody::WaitFor {
            name: *name,
            timeout_ms: (b >> 32) as i32,
        },
    ] {
        let req = Request { head, body };
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(Request::decode(req.msg_type(), &out), Ok(req));
    }
    let entry = EntryInfo {
        name: *name,
        pid: a as i32,
        queue: b as i32,
        thread: a ^ b,
        flags: (a >> 8) as u32,
        queued_msgs: (b >> 8) as u32,
        since: a.rotate_left(7),
        queued_bytes: b.rotate_left(9),
        backlog: (a >> 16) as u32,
        msgs_in: a,
        msgs_out: b,
        bytes_in: !a,
        bytes_out: !b,
    };
    let count = (a % (LIST_PAGE_MAX as u64 + 1)) as usize;
    let page = ListPage {
        total: count as u32 + (b % 1000) as u32,
        first: (b % 1000) as u32,
        entries: vec![entry; count],
    };
    let mut out = Vec::new();
    page.encode(&mut out);
    assert_eq!(ListPage::decode(&out), Ok(page));
    let report = StatsReport {
        counters: vec![(a as u32, b), (b as u32, a)],
        backlog: vec![(*name, a as u32)],
    };
    let mut out = Vec::new();
    report.encode(&mut out);
    assert_eq!(StatsReport::decode(&out), Ok(report));
    let ev = EventRecord {
        kind: EventKind::from_code(a as u16),
        time_ns: b,
        seq: a as u32,
        lost: (a >> 32) as u32,
        pid: b as i32,
        code: (b >> 32) as i32,
        name: (a & 1 == 1).then_some(*name),
        msg: &seed[..seed.len().min(MTEXT_MAX_TAGGED)],
    };
    let mut out = Vec::new();
    ev.encode(&mut out);
    assert_eq!(EventRecord::decode(&out), Ok(ev));
    // Whatever the bytes, decoding never panics.
    let _ = EventRecord::decode(seed);
    let _ = ListPage::decode(seed);
    let _ = StatsReport::decode(seed);
    let _ = AnswerHead::decode(seed);
    for t in TOOL_TYPE_MIN..=TOOL_TYPE_MAX {
        let _ = Request::decode(t, seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> MipcName {
        MipcName::new(s.as_bytes()).unwrap()
    }

    fn head() -> RequestHead {
        RequestHead {
            pid: 1234,
            reply_queue: 77,
            request_id: 9,
        }
    }

    #[test]
    fn every_request_round_trips() {
        let bodies = [
            RequestBody::List { cursor: 0 },
            RequestBody::List { cursor: 981 },
            RequestBody::Stats,
            RequestBody::MonitorAttach { flags: 0 },
            RequestBody::MonitorDetach,
            RequestBody::WaitFor {
                name: name("omci_daemon"),
                timeout_ms: 1500,
            },
        ];
        for body in bodies {
            let req = Request { head: head(), body };
            let mut out = Vec::new();
            req.encode(&mut out);
            assert!(out.len() <= MIPC_MSG_MAX_LEN);
            assert_eq!(Request::decode(req.msg_type(), &out), Ok(req));
            // Any shorter or longer payload is refused, never misread.
            assert!(Request::decode(req.msg_type(), &out[..out.len() - 1]).is_err());
            out.push(0);
            assert_eq!(
                Request::decode(req.msg_type(), &out),
                Err(ToolWireError::TrailingBytes)
            );
        }
    }

    #[test]
    fn requests_of_other_types_or_versions_are_refused() {
        let mut out = Vec::new();
        Request {
            head: head(),
            body: RequestBody::Stats,
        }
        .encode(&mut out);
        assert_eq!(
            Request::decode(MIPC_MSG_TYPE_MONITOR_EVENT, &out),
            Err(ToolWireError::UnknownType(MIPC_MSG_TYPE_MONITOR_EVENT))
        );
        out[0] = 2;
        assert_eq!(
            Request::decode(MIPC_MSG_TYPE_STATS, &out),
            Err(ToolWireError::Version(2))
        );
    }

    fn entry(i: u32) -> EntryInfo {
        EntryInfo {
            name: name(&format!("daemon_{i}")),
            pid: 100 + i as i32,
            queue: 5000 + i as i32,
            thread: 0xdead_beef_0000 + i as u64,
            flags: ENTRY_GREETED,
            queued_msgs: i,
            since: 1_700_000_000 + i as u64,
            queued_bytes: 76 * i as u64,
            backlog: i % 3,
            msgs_in: 10 * i as u64,
            msgs_out: 11 * i as u64,
            bytes_in: 1000 * i as u64,
            bytes_out: 1100 * i as u64,
        }
    }

    #[test]
    fn a_full_list_page_fits_a_message_and_round_trips() {
        let page = ListPage {
            total: 1000,
            first: 18 * 3,
            entries: (0..LIST_PAGE_MAX as u32).map(entry).collect(),
        };
        let mut out = Vec::new();
        AnswerHead {
            request_id: 5,
            status: ToolStatus::Ok,
        }
        .encode(&mut out);
        page.encode(&mut out);
        assert!(out.len() <= MIPC_MSG_MAX_LEN, "{} bytes", out.len());
        let (h, rest) = AnswerHead::decode(&out).unwrap();
        assert_eq!(h.request_id, 5);
        assert_eq!(h.status, ToolStatus::Ok);
        let back = ListPage::decode(rest).unwrap();
        assert_eq!(back, page);
        assert!(!back.is_last());
        assert!(ListPage::decode(&rest[..rest.len() - 1]).is_err());
    }

    #[test]
    fn a_list_page_cannot_claim_more_than_its_snapshot() {
        let page = ListPage {
            total: 2,
            first: 1,
            entries: vec![entry(1), entry(2)],
        };
        let mut out = Vec::new();
        page.encode(&mut out);
        assert_eq!(ListPage::decode(&out), Err(ToolWireError::BadCount));
    }

    #[test]
    fn stats_round_trip_and_cut_the_backlog_to_fit() {
        let mut report = StatsReport {
            counters: Counter::ALL.iter().map(|c| (*c as u32, 7)).collect(),
            backlog: (0..200).map(|i| (name(&format!("d{i}")), i)).collect(),
        };
        report
            .counters
            .push((reject_counter_id(RejectReason::Busy), 3));
        let mut out = Vec::new();
        report.encode(&mut out);
        assert!(out.len() + ANSWER_HEAD_LEN <= MIPC_MSG_MAX_LEN);
        let back = StatsReport::decode(&out).unwrap();
        assert_eq!(back.counters, report.counters);
        let room = StatsReport::backlog_room(report.counters.len());
        assert_eq!(back.backlog[..], report.backlog[..room]);
        assert_eq!(back.get(reject_counter_id(RejectReason::Busy)), Some(3));
        assert_eq!(counter_name(110), "rejected.destination_busy");
        assert_eq!(counter_name(3), "forwarded");
        assert_eq!(counter_name(999), "counter_999");
    }

    #[test]
    fn events_round_trip_with_the_largest_message() {
        let msg = vec![0xA5u8; MTEXT_MAX_TAGGED];
        for kind in [
            EventKind::Message,
            EventKind::Registered,
            EventKind::Unregistered,
            EventKind::Died,
            EventKind::Rejected,
            EventKind::ErrorAnswer,
            EventKind::Greeted,
            EventKind::Other(0x10),
        ] {
            let ev = EventRecord {
                kind,
                time_ns: 1_700_000_000_123_456_789,
                seq: 41,
                lost: 3,
                pid: 321,
                code: 9,
                name: (kind != EventKind::Message).then(|| name("omci")),
                msg: &msg,
            };
            let mut out = Vec::new();
            ev.encode(&mut out);
            assert_eq!(out.len(), EVENT_MAX_LEN);
            assert_eq!(EventRecord::decode(&out), Ok(ev));
            assert!(EventRecord::decode(&out[..out.len() - 1]).is_err());
        }
    }

    #[test]
    fn an_oversized_message_is_cut_and_garbage_is_refused() {
        let msg = vec![1u8; MTEXT_MAX_TAGGED + 10];
        let ev = EventRecord {
            kind: EventKind::Rejected,
            time_ns: 0,
            seq: 0,
            lost: 0,
            pid: 0,
            code: RejectReason::Malformed as i32,
            name: None,
            msg: &msg,
        };
        let mut out = Vec::new();
        ev.encode(&mut out);
        assert_eq!(
            EventRecord::decode(&out).unwrap().msg.len(),
            MTEXT_MAX_TAGGED
        );
        assert!(EventRecord::decode(&[0u8; 3]).is_err());
        assert!(EventRecord::decode(&[0xFFu8; 200]).is_err());
    }
}
