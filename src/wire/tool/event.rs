//! Monitor events: the record a monitor's queue receives for each message and event
//! (docs/PROTOCOL.md §8).

use super::super::MTEXT_MAX_TAGGED;
use super::{
    put_i32, put_name, put_u16, put_u32, put_u64, Reader, ToolWireError,
    MIPC_MSG_TYPE_MONITOR_EVENT, TOOL_VERSION,
};
use crate::name::MipcName;

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
    /// The relay refused the message (`code` a [`RejectReason`](super::RejectReason)).
    Rejected,
    /// The relay answered a caller with an error (`code` a `RelayErrorCode`; the message is
    /// the ERROR it sent).
    ErrorAnswer,
    /// A registered entry greeted the relay: it is a mipc-rs entry of process `pid` (the
    /// message is its HELLO).
    Greeted,
    /// The relay is stopping (SIGTERM): no more events will come.
    RelayStopping,
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
            EventKind::RelayStopping => 8,
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
            8 => EventKind::RelayStopping,
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
            EventKind::RelayStopping => "relay_stopping",
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
    /// Appends the record to `out`; the message is cut to what fits
    /// [`EVENT_MAX_LEN`](super::EVENT_MAX_LEN).
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
