//! The serving side (SPEC §1 "one server thread per process"): receiving from an entry's
//! queue, answering, and the handler table of `mthread_register_mq`.
//!
//! Receiving from an entry of ours goes through the library's buffer: the call tag is taken
//! off (so handlers see the exact legacy bytes and sizes) and remembered as the thread's
//! *serving context*, which [`respond`] puts back on the answer. Requests that a sync call
//! of this thread kept aside while it waited (see `wait.rs`) come out first, in order.

use crate::error::{MipcError, Result};
use crate::link::{check_api, check_payload, with_buf_in};
use crate::local::Local;
use crate::name::MipcName;
use crate::serving::Placed;
use crate::sysv::{self, QueueId, RecvFlags};
use crate::table::{self, Entry, Serving};
use crate::timeout::RecvTimeout;
use crate::wait::Waiting;
use crate::wire::{self, Build, Frame, Kind, MsgBuf, MTYPE_LEN};
use std::os::raw::c_long;
use std::sync::Arc;
use std::sync::Mutex;

pub(crate) fn type_matches(want: c_long, got: c_long) -> bool {
    want == 0 || (want > 0 && got == want) || (want < 0 && got <= -want)
}

/// Receives one message of SysV type `mtype` from `queue` into `out` (a `sysV_msg_t` buffer:
/// `mtype` then `mtext`) and returns the `mtext` length, as `msgrcv` would.
///
/// # Errors
/// [`MipcError::Timeout`], [`MipcError::BadArgument`] when `out` cannot hold the message
/// (the message stays queued), [`MipcError::BadMessage`] for bytes that break SPEC §2 (they
/// are consumed), [`MipcError::QueueRemoved`], other queue errors.
#[link_section = ".text.mipc_hot.serve"]
pub fn receive(queue: QueueId, out: &mut [u8], mtype: c_long, wait: RecvTimeout) -> Result<usize> {
    if out.len() < MTYPE_LEN {
        return Err(MipcError::BadArgument(
            "receive buffer smaller than a message type",
        ));
    }
    crate::local::with(|l| receive_in(l, queue, out, mtype, wait))
}

/// [`receive`] with the thread's state at hand.
#[link_section = ".text.mipc_hot.serve"]
pub(crate) fn receive_in(
    l: Option<&Local>,
    queue: QueueId,
    out: &mut [u8],
    mtype: c_long,
    wait: RecvTimeout,
) -> Result<usize> {
    let Some(entry) = table::by_queue_in(l, queue) else {
        return receive_foreign(queue, out, mtype, wait);
    };
    // Requests a sync call of this thread kept aside come first: they are the oldest.
    let kept = entry.take_kept(|m| type_matches(mtype, m.mtype()))?;
    if let Some(msg) = kept {
        return deliver_kept(l, &entry, msg, out);
    }
    let waiting = Waiting::arm(queue, wake_type(mtype), wait.deadline_from_now())?;
    let flags = RecvFlags {
        nowait: wait.is_nowait(),
        ..Default::default()
    };
    with_buf_in(l, |msg| loop {
        let (n, decoded) = waiting.recv(queue, msg.raw_mut(), mtype, flags)?;
        msg.set_mtext_len(n);
        // SPEC §2: a receiver rejects bytes that are not a MIPC message (they are consumed).
        let frame = decoded.map_err(MipcError::BadMessage)?;
        if wire::batch::is_batch(&frame, msg.mtext()) {
            match deliver_batch(l, &entry, msg, &frame, mtype, out)? {
                Some(n) => return Ok(n),
                None => continue,
            }
        }
        if mtype == 0 && wire::from_relay(msg.mtext()) {
            // The relay sends nothing but answers (pong, greeting, lookup, error) and the
            // request to drop direct routes; an answer that reaches a server loop is late,
            // and a handler that answered it would start a ping-pong with the relay.
            if frame.msg_type == Kind::DropRoutes.msg_type() {
                crate::direct::drop_all();
            }
            continue;
        }
        return deliver(l, &entry, msg, Some(&frame), out);
    })
}

/// Requests the relay had parked, sent together (`wire::batch`): kept for the entry's
/// receives, in order, and the first that a receive of type `mtype` takes delivered to
/// `out` (`None`: none of that type, receive again). Out of line: only a receiver that fell
/// behind gets batches, and the receive loop of every call stays as small as it was.
#[cold]
#[inline(never)]
pub(crate) fn deliver_batch(
    l: Option<&Local>,
    entry: &Arc<Entry>,
    msg: &MsgBuf,
    frame: &Frame,
    mtype: c_long,
    out: &mut [u8],
) -> Result<Option<usize>> {
    crate::wait::unbatch(entry, msg, frame)?;
    match entry.take_kept(|m| type_matches(mtype, m.mtype()))? {
        Some(first) => deliver_kept(l, entry, first, out).map(Some),
        None => Ok(None),
    }
}

/// The SysV type a WAKE must have to end a receive of type `want`.
fn wake_type(want: c_long) -> c_long {
    match want {
        0 => Kind::Wake.mtype(),
        w if w > 0 => w,
        _ => 1,
    }
}

/// [`deliver`] for a request a sync call kept aside: out of line, so that `deliver` is made
/// once, inline, in the receive of every call.
#[cold]
#[inline(never)]
pub(crate) fn deliver_kept(
    l: Option<&Local>,
    entry: &Arc<Entry>,
    mut msg: Box<MsgBuf>,
    out: &mut [u8],
) -> Result<usize> {
    let frame = wire::decode_frame(msg.mtext()).ok();
    let delivered = deliver(l, entry, &mut msg, frame.as_ref(), out);
    crate::local::recycle(l, msg);
    delivered
}

/// Hands a received message to the caller without its tag, and remembers what it serves.
#[inline(always)]
pub(crate) fn deliver(
    l: Option<&Local>,
    entry: &Arc<Entry>,
    msg: &mut MsgBuf,
    frame: Option<&Frame>,
    out: &mut [u8],
) -> Result<usize> {
    let bytes = match frame {
        Some(f) => msg.as_sendable_without_tag(f),
        None => msg.as_sendable(),
    };
    if bytes.len() > out.len() {
        // Keep it for a receive with a larger buffer: lose nothing.
        entry.keep(Box::new(msg.clone()), true)?;
        return Err(MipcError::BadArgument(
            "receive buffer too small for the waiting message (use MIPC_DEFAULT_MAX_MSG_SIZE)",
        ));
    }
    out[..bytes.len()].copy_from_slice(bytes);
    // The sender's pid, when the relay appended it, for `mipc_sender_pid(out)`.
    let sender = frame.and_then(|f| f.sender_pid).filter(|&p| p != 0);
    crate::origin::remember_in(l, out.as_ptr() as usize, sender);
    // Every tagged request is remembered by this thread (an answer to an async one, too,
    // must carry its tag, or its caller would take it for the answer it waits for); only
    // sync requests go on the entry's list for worker threads (async ones are rarely
    // answered and would crowd it).
    let serving = match frame {
        Some(f) => served(entry, f, msg.mtext()),
        None => None,
    };
    if let Some(mut s) = l.and_then(|l| l.serving.try_borrow_mut().ok()) {
        s.0 = serving;
        // The entry stays from one request to the next: a new reference only for another.
        if s.0.is_some() && !s.1.as_ref().is_some_and(|e| Arc::ptr_eq(e, entry)) {
            s.1 = Some(entry.clone());
        }
    }
    Ok(bytes.len() - MTYPE_LEN)
}

/// The request a message with this frame is, if it is a tagged request, and where it was
/// published for worker threads. Inline in `deliver` (a closure there was made out of line,
/// and its result came back through memory).
#[inline(always)]
fn served(entry: &Entry, f: &Frame, mtext: &[u8]) -> Option<(Serving, Placed)> {
    let sv = serving_of(f, mtext)?;
    let placed = if f.sync_flag != 0 {
        entry.serving.publish(&sv)
    } else {
        Placed::Nowhere
    };
    Some((sv, placed))
}

/// The request a message with this frame is, if it is a tagged request.
#[inline(always)]
fn serving_of(f: &Frame, mtext: &[u8]) -> Option<Serving> {
    match f.tag {
        Some(tag) if !tag.is_reply() => Some(Serving {
            src: wire::src_name(mtext)?,
            api: f.msg_type,
            tag,
            reply_queue: f.reply_queue.map(QueueId),
            offer: f.offer,
        }),
        _ => None,
    }
}

/// A queue that is not one of our entries: plain `msgrcv` into the caller's buffer (too
/// small a buffer fails with `E2BIG` and leaves the message queued), with our timeout.
fn receive_foreign(
    queue: QueueId,
    out: &mut [u8],
    mtype: c_long,
    wait: RecvTimeout,
) -> Result<usize> {
    let waiting = Waiting::arm(queue, wake_type(mtype), wait.deadline_from_now())?;
    let flags = RecvFlags {
        nowait: wait.is_nowait(),
        ..Default::default()
    };
    let (n, decoded) = waiting.recv(queue, out, mtype, flags)?;
    decoded.map_err(MipcError::BadMessage)?;
    Ok(n)
}

/// Answers a request (`mipc_response_msg`): `to` is the requester, `from` the server. When
/// this thread is serving `to`'s request for `api`, the answer carries that request's tag, so
/// the caller can tell it from a late one.
///
/// # Errors
/// Argument errors, [`MipcError::RelayUnavailable`], queue errors.
#[link_section = ".text.mipc_hot.serve"]
// Inline in its callers (the checks and the thread's state are a few instructions; its own
// frame cost more); `respond_in` stays out of line, where inlining it too cost 50 Ir.
#[inline(always)]
pub fn respond(to: &MipcName, from: &MipcName, api: u32, answer: &[u8]) -> Result<()> {
    check_api(api)?;
    check_payload(answer.len() as u64)?;
    crate::local::with(|l| respond_in(l, to, from, api, answer))
}

/// [`respond`] with the thread's state at hand.
#[link_section = ".text.mipc_hot.serve"]
fn respond_in(
    l: Option<&Local>,
    to: &MipcName,
    from: &MipcName,
    api: u32,
    answer: &[u8],
) -> Result<()> {
    let serving = answering(l, to, from, api);
    with_buf_in(l, |buf| {
        buf.build(Build {
            mtype: api as c_long,
            src: from,
            dst: to,
            msg_type: api,
            sync_flag: 0,
            payload: answer,
            tag: serving.map(|sv| sv.tag.reply()),
        });
        // A direct call's answer goes straight back, and so does one the relay offered to
        // let through when nothing the server sent before it can still be on the root queue
        // (`answer_back.rs`); if that queue is full or gone, the relay delivers it (or
        // reports the caller gone) as for any other answer.
        if let Some((sv, q)) = serving.and_then(|sv| Some((sv, sv.reply_queue?))) {
            let back = match sv.offer {
                None => true,
                Some(o) => crate::answer_back::may_answer(l, from, &sv, o),
            };
            if back && sysv::send(q, buf.as_sendable(), true).is_ok() {
                return Ok(());
            }
        }
        crate::link::send_to_relay_bounded_in(l, buf.as_sendable())
    })
}

/// The request an answer from `from` to `to` for `api` belongs to. The thread that was handed
/// the request matches it exactly; another thread (a worker) takes the oldest unanswered
/// request of that caller and api, which is right when a daemon's workers answer in the
/// order requests came (a worker pool with one queue). The request is then forgotten: one
/// answer per request.
fn answering(l: Option<&Local>, to: &MipcName, from: &MipcName, api: u32) -> Option<Serving> {
    let mut slot = l.and_then(|l| l.serving.try_borrow_mut().ok());
    if let Some(s) = slot.as_mut() {
        // Looked at where it is kept (the api first: one word), copied out only when it is
        // the one answered.
        if let Some(&(sv, placed)) =
            s.0.as_ref()
                .filter(|(sv, _)| sv.api == api && sv.src == *to)
        {
            s.0 = None;
            // Forgotten where it was kept: the entry it came to (whatever `from` says).
            let mut sv = sv;
            if let Some(e) = &s.1 {
                e.serving.forget(placed, sv.tag);
                // The relay's offer counted what the entry it came to sent: an answer in
                // another entry's name goes through the relay (`answer_back.rs`).
                if sv.offer.is_some() && e.name != *from {
                    sv.offer = None;
                    sv.reply_queue = None;
                }
            }
            return Some(sv);
        }
    }
    drop(slot);
    table::by_name_in(l, from)?.serving.take_for(to, api)
}

/// The handler table of `mthread_register_mq`: one row per registering thread, one handler
/// per queue in it. `H` is the handler type of the caller (a C function pointer for the C ABI).
#[derive(Debug)]
pub struct HandlerTable<H> {
    rows: Mutex<Vec<HandlerRow<H>>>,
}

/// A thread's handlers, one per queue.
type HandlerRow<H> = (crate::os::ThreadId, Vec<(QueueId, H)>);

impl<H: Copy> HandlerTable<H> {
    /// An empty table.
    pub const fn new() -> Self {
        HandlerTable {
            rows: Mutex::new(Vec::new()),
        }
    }

    /// Registers `handler` for `queue` on the calling thread's row; returns
    /// `(thread_index, mq_index)`. Registering a queue again replaces its handler.
    ///
    /// # Errors
    /// [`MipcError::Internal`] on a poisoned lock.
    pub fn register(&self, queue: QueueId, handler: H) -> Result<(usize, usize)> {
        let tid = crate::table::current_thread();
        let mut rows = self.rows.lock().map_err(|_| MipcError::Internal)?;
        let ti = match rows.iter().position(|(t, _)| *t == tid) {
            Some(i) => i,
            None => {
                rows.push((tid, Vec::new()));
                rows.len() - 1
            }
        };
        let row = &mut rows[ti].1;
        let mi = match row.iter().position(|(q, _)| *q == queue) {
            Some(i) => {
                row[i].1 = handler;
                i
            }
            None => {
                row.push((queue, handler));
                row.len() - 1
            }
        };
        Ok((ti, mi))
    }

    /// The handler at `(thread_index, mq_index)`, copied out so no lock is held while it runs.
    pub fn get(&self, thread_index: usize, mq_index: usize) -> Option<H> {
        let rows = self.rows.lock().ok()?;
        rows.get(thread_index)?.1.get(mq_index).map(|(_, h)| *h)
    }
}

impl<H: Copy> Default for HandlerTable<H> {
    fn default() -> Self {
        Self::new()
    }
}
