//! The link from an entry to the relay: the root queue, sends to it, the thread's message
//! buffer, call tags, and the checks every outgoing message passes.

use crate::config;
use crate::error::{MipcError, Result};
use crate::name::MipcName;
use crate::sysv::{self, QueueError, QueueId};
use crate::wire::{
    CallTag, Envelope, MsgBuf, MIPC_API_ID_MAX, MIPC_MSG_MAX_LEN, MIPC_MSG_TYPE_PING,
};
use std::cell::RefCell;
use std::os::raw::c_long;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Checks an api id for a request or answer: 1 to `0x7FFFFEFF`, or `MIPC_MSG_TYPE_PING`.
///
/// # Errors
/// [`MipcError::BadArgument`] for 0 and for the other reserved control types.
pub fn check_api(api: u32) -> Result<()> {
    if (1..=MIPC_API_ID_MAX).contains(&api) || api == MIPC_MSG_TYPE_PING {
        Ok(())
    } else {
        Err(MipcError::BadArgument(
            "api id must be 1..0x7FFFFEFF (0x7FFFFF00 and up are reserved)",
        ))
    }
}

/// Checks a payload's size.
///
/// # Errors
/// [`MipcError::PayloadTooLarge`] over `MIPC_MSG_MAX_LEN`.
pub fn check_payload(len: u64) -> Result<()> {
    if len > MIPC_MSG_MAX_LEN as u64 {
        Err(MipcError::PayloadTooLarge(len))
    } else {
        Ok(())
    }
}

/// The envelope of a control message from `src` to the relay.
pub(crate) fn to_relay(
    src: &MipcName,
    mtype: c_long,
    sync_flag: i32,
    tag: Option<CallTag>,
) -> Envelope<'_> {
    Envelope {
        mtype,
        src,
        dst: &MipcName::RELAY,
        sync_flag,
        tag,
    }
}

thread_local! {
    static BUF: RefCell<Box<MsgBuf>> = RefCell::new(MsgBuf::boxed());
}

/// Runs `f` with this thread's message buffer (a fresh one if it is already in use).
/// During thread or process teardown (an `atexit` handler) the thread's buffer may already
/// be gone; a fresh one is used then too.
pub(crate) fn with_buf<R>(f: impl FnOnce(&mut MsgBuf) -> R) -> R {
    let mut f = Some(f);
    let done = BUF.try_with(|b| match b.try_borrow_mut() {
        Ok(mut g) => f.take().map(|f| f(&mut g)),
        Err(_) => None,
    });
    match (done, f) {
        (Ok(Some(r)), _) => r,
        (_, Some(f)) => f(&mut MsgBuf::boxed()),
        (_, None) => unreachable!("the closure ran but returned no value"),
    }
}

static NEXT_CALL: AtomicU32 = AtomicU32::new(1);

/// A fresh request tag (call ids are unique within the process, 1 to 2^31 - 1).
pub fn next_tag() -> CallTag {
    loop {
        let id = NEXT_CALL.fetch_add(1, Ordering::Relaxed) & 0x7FFF_FFFF;
        if let Some(t) = CallTag::request(id) {
            return t;
        }
    }
}

static ROOT: AtomicI32 = AtomicI32::new(-1);

fn root() -> Result<QueueId> {
    let cached = ROOT.load(Ordering::Relaxed);
    if cached >= 0 {
        return Ok(QueueId(cached));
    }
    match sysv::open_key(config::root_key(), false, 0) {
        Ok(q) => {
            ROOT.store(q.0, Ordering::Relaxed);
            Ok(q)
        }
        Err(QueueError::NotFound) => Err(MipcError::RelayUnavailable),
        Err(e) => Err(e.into()),
    }
}

/// Sends a built message to the relay. A root queue that was removed and made again (the
/// relay restarted) is looked up once more.
///
/// # Errors
/// [`MipcError::RelayUnavailable`] when no relay runs; [`MipcError::DestinationBusy`] when
/// `nowait` and the root queue is full; other queue errors.
pub fn send_to_relay(msg: &[u8], nowait: bool) -> Result<()> {
    for _ in 0..2 {
        let q = root()?;
        match sysv::send(q, msg, nowait) {
            Ok(()) => return Ok(()),
            Err(QueueError::Gone) => {
                ROOT.store(-1, Ordering::Relaxed);
            }
            Err(QueueError::Full) => return Err(MipcError::DestinationBusy),
            Err(e) => return Err(e.into()),
        }
    }
    Err(MipcError::RelayUnavailable)
}

/// Sends to the relay, giving up at `deadline`: while the root queue is full (the relay is
/// down or swamped) the send is retried after growing pauses (1 ms to 50 ms) instead of
/// blocking past the caller's timeout. With no deadline it blocks, as the original did.
///
/// # Errors
/// [`MipcError::Timeout`] when the root queue stayed full until `deadline`; as
/// [`send_to_relay`] otherwise.
pub fn send_to_relay_until(msg: &[u8], deadline: Option<Instant>) -> Result<()> {
    let Some(deadline) = deadline else {
        return send_to_relay(msg, false);
    };
    let mut pause = Duration::from_millis(1);
    loop {
        match send_to_relay(msg, true) {
            Err(MipcError::DestinationBusy) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(MipcError::Timeout);
                }
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Waits until the relay's root queue exists, sleeping between looks (1 ms growing to
/// 100 ms: no spinning), up to `limit` (`None`: forever, as the legacy library did).
///
/// # Errors
/// [`MipcError::RelayUnavailable`] when `limit` passed.
pub fn wait_for_relay(limit: Option<Duration>) -> Result<QueueId> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match root() {
            Err(MipcError::RelayUnavailable) => {}
            other => return other,
        }
        if let Some(limit) = limit {
            let spent = start.elapsed();
            if spent >= limit {
                return Err(MipcError::RelayUnavailable);
            }
            pause = pause.min(limit - spent);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
