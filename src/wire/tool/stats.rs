//! STATS answers: the relay's counters by id, rejections by reason, and the backlog per
//! destination (docs/PROTOCOL.md §7).

use super::super::MIPC_MSG_MAX_LEN;
use super::{
    put_name, put_u32, put_u64, Reader, Res, ToolWireError, ANSWER_HEAD_LEN, BACKLOG_LEN,
    COUNTER_LEN,
};
use crate::name::MipcName;

/// Why the relay refused a message (the `code` of a
/// [`EventKind::Rejected`](super::EventKind::Rejected) event and the `rejected.*` counters).
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
    /// Held messages delivered in batches (several in one message: `wire::batch`).
    Batched = 13,
    /// Requests read one after another for one entry and delivered together in batches
    /// (the relay's `router/gather.rs`).
    Gathered = 14,
    /// Sync calls whose server answered straight to the caller's queue, as its library
    /// reported them (docs/PROTOCOL.md §11; a few may still wait to be reported).
    AnsweredBack = 15,
}

impl Counter {
    /// Every plain counter, in id order.
    pub const ALL: [Counter; 15] = [
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
        Counter::Batched,
        Counter::Gathered,
        Counter::AnsweredBack,
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
            Counter::Batched => "held, sent in batches",
            Counter::Gathered => "read in a row, sent in batches",
            Counter::AnsweredBack => "calls answered straight back",
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
            Counter::Batched => "batched",
            Counter::Gathered => "gathered",
            Counter::AnsweredBack => "answered_back",
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

    /// Appends the report (after an [`AnswerHead`](super::AnswerHead)) to `out`; backlog
    /// lines that do not fit a message are left out.
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

    /// Reads a report from the bytes after the [`AnswerHead`](super::AnswerHead).
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
