//! Answers straight back (docs/PROTOCOL.md §11), the library's side: a server answers a sync
//! call straight to its caller's queue when the relay offered it, and tells the relay which
//! calls it answered so (ANSWERED), since the relay no longer sees those answers go by.
//!
//! **When.** The relay's offer carries a stamp: how many messages of the server's entry it
//! had read. Every message this library sends to the root queue is counted against its
//! sender's entry before the send (and taken back if the send fails): [`count_send`]. The
//! answer goes straight back only when the entry's count equals the stamp, that is when the
//! relay had read everything the entry sent, so nothing the server sent the caller before
//! answering can be overtaken by the answer. Otherwise, or when the caller's queue is full or
//! gone, it goes through the relay as always. A stamp above the count means that another
//! process sends in the entry's name (a forked child with its parent's table): the counts
//! then prove nothing, and the entry answers through the relay from then on.
//!
//! **What the relay is told.** The relay counts a caller as waiting on its server until it
//! learns otherwise; it reads that for two things: its deadlock check (a call whose
//! destination waits, through a chain of calls, on the caller) and "peer died" (to callers of
//! a process that died). A call answered straight back and still counted as waiting could
//! only make the first one wrong, and only when a thread of the answering process itself
//! calls: a chain of calls passes through a process only while one of its threads waits in a
//! call. So the acknowledgements are kept, process-wide, and sent in one ANSWERED:
//! - before any sync call of this process (so the relay has them before the call's request);
//! - before the answer itself, when a thread of this process is in a sync call meanwhile;
//! - when [`answered::MAX`] (170) wait;
//! - when the process exits.
//!
//! The two first rules are one: a call counts itself in [`CALLING`] and then looks for
//! acknowledgements waiting, and an answer records its acknowledgement and then looks at
//! [`CALLING`] (both sequentially consistent), so at least one of them sees the other and
//! sends it. A "peer died" the relay sends for a call answered but not acknowledged yet
//! reaches a caller that no longer waits for it, which drops it (its tag is an old call's).

use crate::local::Local;
use crate::name::MipcName;
use crate::table::{self, Entry, Serving};
use crate::wire::answered::{self, Answered};
use crate::wire::{Build, Kind, MsgBuf, Offer, MIPC_NAME_MAX_LEN, MTYPE_LEN};
use std::os::raw::c_long;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

/// Threads of this process in a sync call through the relay.
static CALLING: AtomicU32 = AtomicU32::new(0);
/// Acknowledgements wait in [`ACKS`].
static WAITING: AtomicBool = AtomicBool::new(false);
/// Calls answered straight back and not acknowledged yet, and the buffer they go in.
static ACKS: Mutex<Acks> = Mutex::new(Acks {
    calls: Vec::new(),
    payload: Vec::new(),
    buf: None,
});

struct Acks {
    calls: Vec<Answered>,
    payload: Vec<u8>,
    buf: Option<Box<MsgBuf>>,
}

/// Counts a message about to be sent to the root queue (`up`) against its sender's entry,
/// or takes that back after the send failed. The sender is the message's `src_name`, compared
/// as the whole field (the library builds every message from a zero-padded name).
pub(crate) fn count_send(msg: &[u8], up: bool) {
    crate::local::with(|l| count_send_in(l, msg, up));
}

/// [`count_send`] with the thread's state at hand.
#[inline]
pub(crate) fn count_send_in(l: Option<&Local>, msg: &[u8], up: bool) {
    let Some(field) = msg
        .get(MTYPE_LEN..MTYPE_LEN + MIPC_NAME_MAX_LEN)
        .and_then(|f| <&[u8; MIPC_NAME_MAX_LEN]>::try_from(f).ok())
    else {
        return;
    };
    // Fixed-size arrays: compared in a few words, no call.
    let is = |e: &Entry| e.name.field() == field;
    let found = match table::mine_in(l) {
        Ok(e) if is(&e) => Some(e),
        _ => table::in_table(is),
    };
    if let Some(e) = found {
        count(&e, up);
    }
}

/// Counts a send from `e` (`up`), or takes it back.
#[inline(always)]
pub(crate) fn count(e: &Entry, up: bool) {
    if up {
        e.sends.fetch_add(1, Ordering::SeqCst);
    } else {
        e.sends.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A sync call of this process through the relay, from its start (acknowledgements waiting
/// go first) to its end (drop).
pub(crate) struct Calling(());

impl Calling {
    /// Counts the call and sends the acknowledgements waiting, from `me`.
    #[inline]
    pub(crate) fn start(me: &MipcName) -> Calling {
        call_started(me);
        Calling(())
    }
}

impl Drop for Calling {
    #[inline]
    fn drop(&mut self) {
        call_ended();
    }
}

/// A sync call of this process starts, from the entry `me`: counted, and the
/// acknowledgements waiting go first. Each is ended by one [`call_ended`].
#[inline]
pub(crate) fn call_started(me: &MipcName) {
    CALLING.fetch_add(1, Ordering::SeqCst);
    if WAITING.load(Ordering::SeqCst) {
        flush(me);
    }
}

/// A sync call counted by [`call_started`] ended.
#[inline]
pub(crate) fn call_ended() {
    CALLING.fetch_sub(1, Ordering::SeqCst);
}

/// Whether the answer to `sv` from the entry named `from` may go straight back, its offer
/// being `offer`; if so the call is acknowledged as answered (recorded, or sent at once while
/// a thread of this process calls). `false`: answer through the relay.
pub(crate) fn may_answer(l: Option<&Local>, from: &MipcName, sv: &Serving, offer: Offer) -> bool {
    let Some(e) = table::by_name_in(l, from) else {
        return false;
    };
    let sends = e.sends.load(Ordering::SeqCst);
    if sends != offer.stamp {
        // The relay read more from this entry than it sent: another process sends in its
        // name (a forked child): the counts no longer tell anything, for good.
        if (offer.stamp.wrapping_sub(sends) as i32) > 0 {
            e.sends_foreign.store(true, Ordering::Relaxed);
        }
        return false;
    }
    if e.sends_foreign.load(Ordering::Relaxed) {
        return false;
    }
    let Ok(mut a) = ACKS.lock() else { return false };
    a.calls.push(Answered {
        slot: offer.slot,
        tag: sv.tag,
        caller_pid: offer.caller_pid,
    });
    WAITING.store(true, Ordering::SeqCst);
    if CALLING.load(Ordering::SeqCst) > 0 || a.calls.len() >= answered::MAX {
        return send_acks(&mut a, from);
    }
    true
}

/// Sends the acknowledgements waiting, if any, from `me`.
pub(crate) fn flush(me: &MipcName) {
    if let Ok(mut a) = ACKS.lock() {
        send_acks(&mut a, me);
    }
}

/// Sends what `a` holds in one ANSWERED from `me`; whether it went (if not, they are kept for
/// the next try). Under the reports' lock, send included: when a flush returns, every report
/// recorded before it is on the root queue, ahead of the request of the call that flushed
/// (a report taken out and sent after the lock could come behind another thread's request).
/// The send is one `msgsnd` that does not wait unless the root queue is full.
fn send_acks(a: &mut Acks, me: &MipcName) -> bool {
    if a.calls.is_empty() {
        WAITING.store(false, Ordering::SeqCst);
        return true;
    }
    let Acks {
        calls,
        payload,
        buf,
    } = a;
    answered::encode(calls, payload);
    let buf = buf.get_or_insert_with(MsgBuf::boxed);
    buf.build(Build {
        mtype: Kind::Answered.mtype() as c_long,
        src: me,
        dst: &MipcName::RELAY,
        msg_type: Kind::Answered.msg_type(),
        sync_flag: 0,
        payload,
        tag: None,
    });
    if crate::link::send_to_relay_bounded(buf.as_sendable()).is_err() {
        return false;
    }
    let sent = calls.len().min(answered::MAX);
    calls.drain(..sent);
    if calls.is_empty() {
        WAITING.store(false, Ordering::SeqCst);
    }
    true
}
