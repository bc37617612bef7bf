//! Exports of events and broadcast (docs/PROTOCOL.md §9): subscribe, unsubscribe, publish,
//! broadcast, for the calling thread's entry. Events arrive on the entry's own queue as
//! `sysV_msg_t` messages with `msg_hdr.msg_type == MIPC_MSG_TYPE_EVENT`, the publisher's name
//! in `src_name`, the event's name in `dst_name` and the data in `payload`.

use super::guard;
use crate::error::MipcError;
use crate::events::{EventName, EventPattern, MIPC_BROADCAST_DATA_MAX, MIPC_EVENT_DATA_MAX};
use crate::pubsub;
use crate::wire::{MIPC_NAME_MAX_LEN, MIPC_OK};
use std::os::raw::{c_char, c_int, c_uint, c_void};

/// Reads an event name or pattern within `MIPC_NAME_MAX_LEN` bytes.
///
/// # Safety
/// `p` is NULL or points to readable bytes up to its NUL or its 32nd byte.
unsafe fn text(p: *const c_char, arg: &'static str) -> Result<Vec<u8>, MipcError> {
    // SAFETY: forwarded from this function's contract.
    let name = unsafe { super::args::name(p, arg) }?;
    debug_assert!(name.as_bytes().len() < MIPC_NAME_MAX_LEN);
    Ok(name.as_bytes().to_vec())
}

fn pattern(bytes: &[u8]) -> Result<EventPattern, MipcError> {
    EventPattern::new(bytes)
        .map_err(|_| MipcError::BadArgument("event pattern: '*' is allowed only as its last byte"))
}

/// Subscribes the calling thread's entry to `event`: an event name (`"alarm.los"`), or a
/// prefix ending in `*` (`"alarm.*"`; `"*"` is every event). Returns once the relay holds
/// the subscription: an event published after that reaches this entry's queue.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (bad name or pattern, thread not registered, a legacy relay,
/// more than 64 subscriptions).
///
/// # Safety
/// `event` is NULL or a NUL-terminated string (only its first 32 bytes are ever read).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_subscribe(event: *const c_char) -> c_int {
    guard("mipc_subscribe", || {
        // SAFETY: forwarded from this function's contract.
        let p = pattern(&unsafe { text(event, "event") }?)?;
        pubsub::subscribe(&p).map(|_| MIPC_OK)
    })
}

/// Drops the calling thread's subscription to `event`, spelled as it was subscribed.
///
/// # Returns
/// `MIPC_OK` (also when there was no such subscription), or `MIPC_ERROR` as
/// `mipc_subscribe`.
///
/// # Safety
/// As `mipc_subscribe`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_unsubscribe(event: *const c_char) -> c_int {
    guard("mipc_unsubscribe", || {
        // SAFETY: forwarded from this function's contract.
        let p = pattern(&unsafe { text(event, "event") }?)?;
        pubsub::unsubscribe(&p).map(|_| MIPC_OK)
    })
}

/// Publishes event `event` (a name without `*`) with `size` bytes at `data` from the calling
/// thread's entry. The relay delivers it to every subscriber: the publisher sends one
/// message whatever their number.
///
/// # Returns
/// `MIPC_OK` once the relay has the event, or `MIPC_ERROR` (bad name, `size` over
/// `MIPC_EVENT_DATA_MAX`, thread not registered, a legacy relay).
///
/// # Safety
/// `event` is NULL or a NUL-terminated string; `data` is NULL or points to `size` readable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_publish(
    event: *const c_char,
    data: *const c_void,
    size: c_uint,
) -> c_int {
    guard("mipc_publish", || {
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { text(event, "event") }?;
        let name = EventName::new(&name)
            .map_err(|_| MipcError::BadArgument("event name may not hold '*'"))?;
        debug_assert_eq!(MIPC_EVENT_DATA_MAX, crate::wire::MIPC_MSG_MAX_LEN);
        // SAFETY: forwarded from this function's contract.
        let data = unsafe { super::args::input(data, size.into(), "data") }?;
        pubsub::publish(&name, data).map(|_| MIPC_OK)
    })
}

/// Sends `size` bytes at `data` as api `api_id` to every other registered entry. Each gets
/// an ordinary one-way message of that api id (a legacy server handles it as such).
///
/// # Returns
/// `MIPC_OK` once the relay has it, or `MIPC_ERROR` (reserved api id, `size` over
/// `MIPC_BROADCAST_DATA_MAX`, thread not registered, a legacy relay).
///
/// # Safety
/// `data` is NULL or points to `size` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_broadcast(
    api_id: c_uint,
    data: *const c_void,
    size: c_uint,
) -> c_int {
    guard("mipc_broadcast", || {
        if size as usize > MIPC_BROADCAST_DATA_MAX {
            return Err(MipcError::BadArgument(
                "broadcast data is over MIPC_BROADCAST_DATA_MAX (2044 bytes)",
            ));
        }
        // SAFETY: forwarded from this function's contract.
        let data = unsafe { super::args::input(data, size.into(), "data") }?;
        pubsub::broadcast(api_id, data).map(|_| MIPC_OK)
    })
}

/// The process id of the sender of the message the calling thread last received into `msg`
/// (with `mipc_mq_receive`, or as a handler's `req->msg`), as the relay knows it: taken from
/// the sender's greeting, never from what the sender wrote.
///
/// # Returns
/// The pid, or 0 when unknown: a legacy sender, a legacy relay, a direct call
/// (`MIPC_DIRECT=1`), a buffer this thread did not receive into, or NULL.
///
/// # Safety
/// None: `msg` is only compared with the addresses of recent receive buffers, never read.
#[unsafe(no_mangle)]
pub extern "C" fn mipc_sender_pid(msg: *const c_void) -> c_int {
    std::panic::catch_unwind(|| crate::origin::recall(msg as usize).map_or(0, |p| p as c_int))
        .unwrap_or(0)
}
