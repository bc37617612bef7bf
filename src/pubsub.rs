//! The library side of events and broadcast (docs/PROTOCOL.md §9), for the calling thread's
//! entry: subscribing and unsubscribing (a sync exchange with the relay, so a subscriber knows
//! it is subscribed before it tells anyone), publishing and broadcasting (one message to the
//! relay, whatever the number of receivers: the relay fans out).
//!
//! Only a relay that greeted the entry knows these types; with a legacy relay every function
//! fails with [`MipcError::EventsUnsupported`] and nothing is sent.

use crate::error::{MipcError, RelayErrorCode, Result};
use crate::events::{
    self, EventName, EventPattern, Subscribe, SubscribeAnswer, Unsubscribe, UnsubscribeAnswer,
    MIPC_MSG_TYPE_BROADCAST, MIPC_MSG_TYPE_PUBLISH,
};
use crate::link::{self, with_buf};
use crate::name::MipcName;
use crate::table::{self, Entry};
use crate::wait::{self, AnswerWait};
use crate::wire::{self, Build, Control, Envelope, Header, MsgBuf};
use std::os::raw::c_long;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a subscription waits for the relay's answer. The relay answers at once; this
/// only bounds a relay that died meanwhile.
pub const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);

fn greeted_entry() -> Result<Arc<Entry>> {
    let entry = table::mine()?;
    if entry.ext {
        Ok(entry)
    } else {
        Err(MipcError::EventsUnsupported)
    }
}

/// Subscribes the calling thread's entry to `pattern` (an event name, or a prefix ending in
/// `*`). Subscribing twice to the same pattern is one subscription.
///
/// # Errors
/// [`MipcError::NotRegistered`], [`MipcError::EventsUnsupported`] (legacy relay),
/// [`MipcError::TableFull`] (too many subscriptions), [`MipcError::Timeout`], queue errors.
pub fn subscribe(pattern: &EventPattern) -> Result<()> {
    let status = exchange(&Subscribe { pattern: *pattern }, |buf, hdr| {
        SubscribeAnswer::decode(buf, hdr).map(|a| a.status)
    })?;
    status_result(status)
}

/// Drops the calling thread's subscription to `pattern` (exactly as it was subscribed).
/// Dropping a subscription that does not exist succeeds.
///
/// # Errors
/// As [`subscribe`].
pub fn unsubscribe(pattern: &EventPattern) -> Result<()> {
    let status = exchange(&Unsubscribe { pattern: *pattern }, |buf, hdr| {
        UnsubscribeAnswer::decode(buf, hdr).map(|a| a.status)
    })?;
    status_result(status)
}

fn status_result(status: i32) -> Result<()> {
    match status {
        0 => Ok(()),
        s => Err(RelayErrorCode::from_i32(s)
            .map(MipcError::from_relay)
            .unwrap_or(MipcError::BadArgument("malformed answer to a subscription"))),
    }
}

/// Sends `msg` to the relay as a tagged sync request and reads the status of its answer.
fn exchange<C: Control>(msg: &C, status: impl Fn(&MsgBuf, &Header) -> Option<i32>) -> Result<i32> {
    let entry = greeted_entry()?;
    let tag = link::next_tag();
    let deadline = Instant::now() + SUBSCRIBE_WAIT;
    with_buf(|buf| {
        let env = Envelope {
            mtype: C::KIND.mtype(),
            src: &entry.name,
            dst: &MipcName::RELAY,
            sync_flag: SUBSCRIBE_WAIT.as_millis() as i32,
            tag: Some(tag),
        };
        buf.build_control(env, msg);
        link::send_to_relay_until(buf.as_sendable(), Some(deadline))?;
        let w = AnswerWait {
            queue: entry.queue,
            entry: Some(&entry),
            mtype: C::KIND.mtype(),
            expect: Some(tag),
            deadline: Some(deadline),
            watch: None,
            poll: false,
        };
        wait::wait_answer(&w, buf)?;
        let hdr = buf.decode().map_err(MipcError::BadMessage)?;
        if !hdr.src.is_relay() {
            return Err(MipcError::BadArgument(
                "unexpected answer to a subscription",
            ));
        }
        status(buf, &hdr).ok_or(MipcError::BadArgument("malformed answer to a subscription"))
    })
}

/// Publishes event `name` with `data` from the calling thread's entry: one message to the
/// relay, which delivers it to every subscriber whose pattern matches. Returns once the relay
/// has the event (it blocks only while the root queue is full, as `mipc_send_msg` does).
///
/// # Errors
/// [`MipcError::NotRegistered`], [`MipcError::EventsUnsupported`],
/// [`MipcError::PayloadTooLarge`], [`MipcError::RelayUnavailable`], queue errors.
pub fn publish(name: &EventName, data: &[u8]) -> Result<()> {
    events::check_event_data(data).map_err(|_| MipcError::PayloadTooLarge(data.len() as u64))?;
    let entry = greeted_entry()?;
    with_buf(|buf| {
        buf.build(Build {
            mtype: MIPC_MSG_TYPE_PUBLISH as c_long,
            src: &entry.name,
            dst: name.as_name(),
            msg_type: MIPC_MSG_TYPE_PUBLISH,
            sync_flag: 0,
            payload: data,
            tag: None,
        });
        link::send_to_relay(buf.as_sendable(), false)
    })
}

/// Sends `data` as api `api` to every other registered entry, through one message to the
/// relay. Each receiver gets an ordinary asynchronous message of that api id.
///
/// # Errors
/// [`MipcError::BadArgument`] for a reserved api id, [`MipcError::PayloadTooLarge`] over
/// [`events::MIPC_BROADCAST_DATA_MAX`], as [`publish`] otherwise.
pub fn broadcast(api: u32, data: &[u8]) -> Result<()> {
    if api == 0 || wire::is_control(api) {
        return Err(MipcError::BadArgument(
            "broadcast api id must be 1..0x7FFFFEFF",
        ));
    }
    let payload = events::broadcast_payload(api, data).map_err(|_| {
        MipcError::BadArgument("broadcast data is over MIPC_BROADCAST_DATA_MAX (2044 bytes)")
    })?;
    let entry = greeted_entry()?;
    with_buf(|buf| {
        buf.build(Build {
            mtype: MIPC_MSG_TYPE_BROADCAST as c_long,
            src: &entry.name,
            dst: &MipcName::RELAY,
            msg_type: MIPC_MSG_TYPE_BROADCAST,
            sync_flag: 0,
            payload: &payload,
            tag: None,
        });
        link::send_to_relay(buf.as_sendable(), false)
    })
}
