//! Events and broadcast on the wire (docs/PROTOCOL.md §9): the control types
//! `0x7FFFFF10`-`0x7FFFFF14`, event names and subscription patterns, and the codec of their
//! payloads. Like the legacy codec, no I/O: the relay, the library and the fuzzers share it.
//!
//! | type | name | direction | layout |
//! |---|---|---|---|
//! | `0x7FFFFF10` | SUBSCRIBE | entry -> `"mipc_main"`, tagged sync request | payload: the pattern in a 32-byte name field |
//! | `0x7FFFFF11` | UNSUBSCRIBE | as SUBSCRIBE | as SUBSCRIBE |
//! | `0x7FFFFF10`/`11` | (answer) | relay -> entry, same type, reply tag | payload: `i32 status` (0, or a relay error code) |
//! | `0x7FFFFF12` | PUBLISH | publisher -> relay | `dst_name`: the event name; payload: the data (up to 2048 bytes) |
//! | `0x7FFFFF13` | EVENT | relay -> each subscriber | as PUBLISH: `src_name` the publisher, `dst_name` the event name, payload the data |
//! | `0x7FFFFF14` | BROADCAST | sender -> `"mipc_main"` | payload: `u32 api id`, then the data (up to 2044 bytes) |
//!
//! An event keeps the whole payload for its data because its name travels in `dst_name`:
//! the field that names what a message is addressed to. A broadcast is delivered to each
//! entry as an ordinary asynchronous message of its api id (`mtype = msg_type = api id`,
//! `sync_flag` 0), exactly the bytes `mipc_send_msg` would have delivered, so a legacy
//! server handles it with the handler it already has for that api id.

use super::control::{Control, Kind};
use crate::name::{MipcName, NameError};
use crate::wire::{MIPC_MSG_MAX_LEN, MIPC_NAME_MAX_LEN};
use std::fmt;
use std::os::raw::c_uint;

// The event control types are defined beside the other control types (`wire/mod.rs`), where
// the control kinds (`control.rs`) take them from.
pub use super::{
    MIPC_MSG_TYPE_BROADCAST, MIPC_MSG_TYPE_EVENT, MIPC_MSG_TYPE_PUBLISH, MIPC_MSG_TYPE_STOP,
    MIPC_MSG_TYPE_SUBSCRIBE, MIPC_MSG_TYPE_UNSUBSCRIBE,
};

/// First type of the range reserved for events (`0x7FFFFF10`-`0x7FFFFF1F`).
pub const EVENT_TYPES_MIN: c_uint = 0x7FFF_FF10;
/// Last type of the range reserved for events.
pub const EVENT_TYPES_MAX: c_uint = 0x7FFF_FF1F;

/// Largest data of one broadcast: the payload less its api id.
pub const MIPC_BROADCAST_DATA_MAX: usize = MIPC_MSG_MAX_LEN - 4;
/// Largest data of one event (the name travels in `dst_name`).
pub const MIPC_EVENT_DATA_MAX: usize = MIPC_MSG_MAX_LEN;
/// Most subscriptions one entry may hold (the relay answers "table full" past it).
pub const SUBSCRIPTIONS_PER_ENTRY_MAX: usize = 64;

/// Why an event name, a pattern or an event payload is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventError {
    /// The name is empty, longer than 31 bytes, or holds a NUL.
    BadName(NameError),
    /// An event name holds `*`, or a pattern holds `*` anywhere but at its end.
    Wildcard,
    /// The data is longer than one message can carry.
    TooLarge {
        /// Bytes given.
        len: usize,
        /// Most bytes allowed.
        max: usize,
    },
    /// A payload is not what its control type says.
    Malformed,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::BadName(e) => write!(f, "bad event name: {e}"),
            EventError::Wildcard => f.write_str(
                "'*' is allowed only as the last byte of a subscription pattern (\"alarm.*\")",
            ),
            EventError::TooLarge { len, max } => {
                write!(
                    f,
                    "data of {len} bytes is over the {max} bytes one message carries"
                )
            }
            EventError::Malformed => f.write_str("malformed event control payload"),
        }
    }
}

impl std::error::Error for EventError {}

/// A valid event name: 1 to 31 bytes, no NUL, no `*`. It travels in `dst_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventName(MipcName);

impl EventName {
    /// Checks `bytes` as an event name.
    ///
    /// # Errors
    /// [`EventError::BadName`] or [`EventError::Wildcard`].
    pub fn new(bytes: &[u8]) -> Result<EventName, EventError> {
        let name = MipcName::new(bytes).map_err(EventError::BadName)?;
        EventName::from_name(name)
    }

    /// An entry-name-shaped value read from `dst_name`, checked as an event name.
    ///
    /// # Errors
    /// [`EventError::Wildcard`] when it holds `*`.
    pub fn from_name(name: MipcName) -> Result<EventName, EventError> {
        if name.as_bytes().contains(&b'*') {
            Err(EventError::Wildcard)
        } else {
            Ok(EventName(name))
        }
    }

    /// The name as it goes in `dst_name`.
    pub fn as_name(&self) -> &MipcName {
        &self.0
    }

    /// The name's bytes, without terminator.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What a subscription matches: one event name exactly (`"alarm.los"`), or every name that
/// starts with a prefix (`"alarm.*"` matches `"alarm.los"` and `"alarm.power.low"`, not
/// `"alarm"`; `"*"` matches every event).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventPattern {
    /// The pattern as written, `*` included: what goes on the wire and what is listed.
    text: MipcName,
    /// Whether it ends in `*`.
    prefix: bool,
}

impl EventPattern {
    /// Checks a pattern as written by a subscriber.
    ///
    /// # Errors
    /// [`EventError::BadName`] for an empty or too long pattern, [`EventError::Wildcard`] for
    /// a `*` before its end.
    pub fn new(bytes: &[u8]) -> Result<EventPattern, EventError> {
        let text = MipcName::new(bytes).map_err(EventError::BadName)?;
        EventPattern::from_name(text)
    }

    fn from_name(text: MipcName) -> Result<EventPattern, EventError> {
        let b = text.as_bytes();
        let (body, prefix) = match b.split_last() {
            Some((b'*', body)) => (body, true),
            _ => (b, false),
        };
        if body.contains(&b'*') {
            return Err(EventError::Wildcard);
        }
        Ok(EventPattern { text, prefix })
    }

    /// Whether an event named `name` is delivered to this subscription.
    pub fn matches(&self, name: &EventName) -> bool {
        let pat = self.text.as_bytes();
        if self.prefix {
            name.as_bytes().starts_with(&pat[..pat.len() - 1])
        } else {
            name.as_bytes() == pat
        }
    }

    /// Whether the pattern ends in `*`.
    pub fn is_prefix(&self) -> bool {
        self.prefix
    }

    /// The pattern as written, as a name field's value (what `mipc list` shows).
    pub fn as_name(&self) -> &MipcName {
        &self.text
    }

    /// The pattern as written (`"alarm.*"`).
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The SUBSCRIBE / UNSUBSCRIBE payload: the pattern in a 32-byte name field.
    pub fn to_payload(&self) -> [u8; MIPC_NAME_MAX_LEN] {
        *self.text.field()
    }

    /// Reads a SUBSCRIBE / UNSUBSCRIBE payload.
    ///
    /// # Errors
    /// [`EventError::Malformed`] when it is not one 32-byte field; as [`EventPattern::new`].
    pub fn from_payload(payload: &[u8]) -> Result<EventPattern, EventError> {
        let field: &[u8; MIPC_NAME_MAX_LEN] =
            payload.try_into().map_err(|_| EventError::Malformed)?;
        let text = MipcName::from_field(field).map_err(EventError::BadName)?;
        EventPattern::from_name(text)
    }
}

impl fmt::Debug for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventPattern({})", self.text)
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.text, f)
    }
}

/// SUBSCRIBE: the pattern in a 32-byte name field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe {
    /// What to subscribe to.
    pub pattern: EventPattern,
}

/// UNSUBSCRIBE: the pattern, as subscribed, in a 32-byte name field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe {
    /// What to drop.
    pub pattern: EventPattern,
}

/// The relay's answer to SUBSCRIBE: `i32 status`, 0 or a relay error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeAnswer {
    /// 0: done; otherwise a [`crate::RelayErrorCode`].
    pub status: i32,
}

/// The relay's answer to UNSUBSCRIBE: as [`SubscribeAnswer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsubscribeAnswer {
    /// 0: done; otherwise a [`crate::RelayErrorCode`].
    pub status: i32,
}

macro_rules! pattern_control {
    ($t:ident, $kind:ident) => {
        impl Control for $t {
            const KIND: Kind = Kind::$kind;
            const LEN: usize = MIPC_NAME_MAX_LEN;
            fn put(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.pattern.to_payload());
            }
            fn get(p: &[u8]) -> Option<Self> {
                Some($t {
                    pattern: EventPattern::from_payload(p).ok()?,
                })
            }
        }
    };
}
pattern_control!(Subscribe, Subscribe);
pattern_control!(Unsubscribe, Unsubscribe);

macro_rules! status_control {
    ($t:ident, $kind:ident) => {
        impl Control for $t {
            const KIND: Kind = Kind::$kind;
            const LEN: usize = 4;
            fn put(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.status.to_ne_bytes());
            }
            fn get(p: &[u8]) -> Option<Self> {
                Some($t {
                    status: i32::from_ne_bytes(p.try_into().ok()?),
                })
            }
        }
    };
}
status_control!(SubscribeAnswer, Subscribe);
status_control!(UnsubscribeAnswer, Unsubscribe);

/// Checks the data of one event.
///
/// # Errors
/// [`EventError::TooLarge`] over [`MIPC_EVENT_DATA_MAX`].
pub fn check_event_data(data: &[u8]) -> Result<(), EventError> {
    if data.len() > MIPC_EVENT_DATA_MAX {
        Err(EventError::TooLarge {
            len: data.len(),
            max: MIPC_EVENT_DATA_MAX,
        })
    } else {
        Ok(())
    }
}

/// The BROADCAST payload: the api id, then the data.
///
/// # Errors
/// [`EventError::TooLarge`] over [`MIPC_BROADCAST_DATA_MAX`].
pub fn broadcast_payload(api: u32, data: &[u8]) -> Result<Vec<u8>, EventError> {
    if data.len() > MIPC_BROADCAST_DATA_MAX {
        return Err(EventError::TooLarge {
            len: data.len(),
            max: MIPC_BROADCAST_DATA_MAX,
        });
    }
    let mut p = Vec::with_capacity(4 + data.len());
    p.extend_from_slice(&api.to_ne_bytes());
    p.extend_from_slice(data);
    Ok(p)
}

/// Reads a BROADCAST payload: the api id and the data.
///
/// # Errors
/// [`EventError::Malformed`] when shorter than an api id.
pub fn decode_broadcast(payload: &[u8]) -> Result<(u32, &[u8]), EventError> {
    match payload.split_first_chunk::<4>() {
        Some((api, data)) => Ok((u32::from_ne_bytes(*api), data)),
        None => Err(EventError::Malformed),
    }
}

/// Whether `msg_type` is one of the event control types.
pub fn is_event_type(msg_type: u32) -> bool {
    (EVENT_TYPES_MIN..=EVENT_TYPES_MAX).contains(&msg_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> EventName {
        EventName::new(s.as_bytes()).unwrap()
    }

    fn pat(s: &str) -> EventPattern {
        EventPattern::new(s.as_bytes()).unwrap()
    }

    #[test]
    fn exact_and_prefix_matching() {
        assert!(pat("alarm.los").matches(&ev("alarm.los")));
        assert!(!pat("alarm.los").matches(&ev("alarm.lost")));
        assert!(!pat("alarm.los").matches(&ev("alarm")));
        let p = pat("alarm.*");
        assert!(p.is_prefix());
        assert!(p.matches(&ev("alarm.los")));
        assert!(p.matches(&ev("alarm.power.low")));
        assert!(p.matches(&ev("alarm.")));
        assert!(!p.matches(&ev("alarm")));
        assert!(!p.matches(&ev("alarms.x")));
        assert!(pat("*").matches(&ev("anything")));
        assert!(pat("a*").matches(&ev("abc")));
    }

    #[test]
    fn wildcards_only_at_the_end_and_never_in_names() {
        assert_eq!(EventPattern::new(b"a*b"), Err(EventError::Wildcard));
        assert_eq!(EventPattern::new(b"**"), Err(EventError::Wildcard));
        assert_eq!(EventName::new(b"alarm.*"), Err(EventError::Wildcard));
        assert_eq!(
            EventName::new(b""),
            Err(EventError::BadName(NameError::Empty))
        );
        assert_eq!(
            EventPattern::new(&[b'x'; 32]),
            Err(EventError::BadName(NameError::TooLong))
        );
        assert!(EventName::new(&[b'x'; 31]).is_ok());
    }

    #[test]
    fn pattern_payload_round_trips() {
        for s in ["alarm.*", "*", "omci.mib.reset", &"y".repeat(31)] {
            let p = pat(s);
            let wire = p.to_payload();
            assert_eq!(wire.len(), MIPC_NAME_MAX_LEN);
            assert_eq!(EventPattern::from_payload(&wire), Ok(p));
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            EventPattern::from_payload(&[0u8; 31]),
            Err(EventError::Malformed)
        );
        let mut unterminated = [b'z'; MIPC_NAME_MAX_LEN];
        assert_eq!(
            EventPattern::from_payload(&unterminated),
            Err(EventError::BadName(NameError::TooLong))
        );
        unterminated[0] = b'*';
        unterminated[2] = 0;
        assert_eq!(
            EventPattern::from_payload(&unterminated),
            Err(EventError::Wildcard)
        );
    }

    #[test]
    fn broadcast_payload_round_trips_and_is_bounded() {
        let p = broadcast_payload(0x1234, b"reboot").unwrap();
        assert_eq!(decode_broadcast(&p), Ok((0x1234, &b"reboot"[..])));
        let empty = broadcast_payload(7, &[]).unwrap();
        assert_eq!(decode_broadcast(&empty), Ok((7, &[][..])));
        assert!(broadcast_payload(1, &[0; MIPC_BROADCAST_DATA_MAX]).is_ok());
        assert_eq!(
            broadcast_payload(1, &[0; MIPC_BROADCAST_DATA_MAX + 1]),
            Err(EventError::TooLarge {
                len: MIPC_BROADCAST_DATA_MAX + 1,
                max: MIPC_BROADCAST_DATA_MAX
            })
        );
        assert_eq!(decode_broadcast(&[1, 2, 3]), Err(EventError::Malformed));
        assert!(check_event_data(&[0; MIPC_EVENT_DATA_MAX]).is_ok());
        assert!(check_event_data(&[0; MIPC_EVENT_DATA_MAX + 1]).is_err());
    }

    #[test]
    fn types_sit_in_their_range() {
        for t in [
            MIPC_MSG_TYPE_SUBSCRIBE,
            MIPC_MSG_TYPE_UNSUBSCRIBE,
            MIPC_MSG_TYPE_PUBLISH,
            MIPC_MSG_TYPE_EVENT,
            MIPC_MSG_TYPE_BROADCAST,
        ] {
            assert!(is_event_type(t) && crate::wire::is_control(t));
        }
        assert!(!is_event_type(crate::wire::MIPC_MSG_TYPE_LOOKUP));
        assert!(!is_event_type(0x7FFF_FF20));
    }

    #[test]
    fn subscription_controls_round_trip() {
        let seed = MipcName::new(b"sub").unwrap();
        for s in ["alarm.*", "*", "x"] {
            let p = pat(s);
            super::super::control::assert_round_trip(&Subscribe { pattern: p }, &seed);
            super::super::control::assert_round_trip(&Unsubscribe { pattern: p }, &seed);
        }
        super::super::control::assert_round_trip(&SubscribeAnswer { status: 8 }, &seed);
        super::super::control::assert_round_trip(&UnsubscribeAnswer { status: 0 }, &seed);
    }
}
