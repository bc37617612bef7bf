//! The two waits a C export makes itself, so that they are thread cancellation points as in
//! the original library: `mipc_mq_receive` and `mipc_send_sync_msg` without a timeout. A
//! `pthread_cancel` acted on inside the library would unwind through its frames into the
//! guard's `catch_unwind` and abort the process (`sysv.rs`); so the library's work is split
//! around the one blocking `msgrcv`: a first step (checks, the request sent, the thread's
//! receive buffer taken out of its state) hands the export a plain-data wait, the export
//! makes the receive from its own frame (`sysv::recv_cancellable`), and a second step takes
//! what came (or hands back another wait: a stale WAKE, a late answer). A thread cancelled in
//! the receive leaks its receive buffer and nothing else.
//!
//! Waits with a timeout, and the direct path's (which watches the server's process), stay in
//! the library (`server::receive`, `client::call`): they end by themselves, and a cancel is
//! acted on at the thread's next cancellation point after them.

use crate::client;
use crate::direct;
use crate::error::{MipcError, Result};
use crate::link::{check_api, check_payload, next_tag};
use crate::local::Local;
use crate::name::MipcName;
use crate::server;
use crate::sysv::{QueueError, QueueId};
use crate::table;
use crate::timeout::{CallTimeout, RecvTimeout};
use crate::wait::{judge, AnswerWait, Verdict};
use crate::wire::{self, Build, CallTag, Kind, MsgBuf, MTYPE_LEN};
use std::os::raw::c_long;

// ---- receive ----

/// A receive without deadline that has to block, handed to the C export to make itself:
/// there the `msgrcv` is a thread cancellation point with none of the library's frames
/// below it, so a `pthread_cancel` of a thread waiting for a message ends the thread as it
/// did with the original library (`ffi::queues`). Plain data: a thread
/// cancelled in the receive leaks its receive buffer and nothing else.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blocked {
    /// The queue, and the SysV type to receive.
    pub queue: QueueId,
    /// SysV type, as `msgrcv` takes it.
    pub mtype: c_long,
    /// The thread's receive buffer, taken out of its state (an entry of ours), or null: the
    /// caller's buffer (a queue of the program's own).
    lib: *mut MsgBuf,
}

impl Blocked {
    /// Where the blocking receive writes (`mtype`, then room for `mtext`): the thread's
    /// buffer, or `out`.
    pub fn room(&self, out: (*mut u8, usize)) -> (*mut u8, usize) {
        if self.lib.is_null() {
            return out;
        }
        // SAFETY: lib came from Box::into_raw (receive_forever, received) and is owned by
        // this Blocked until `received` takes it back.
        let raw = unsafe { (*self.lib).raw_mut() };
        (raw.as_mut_ptr(), raw.len())
    }
}

/// Where a receive without deadline stands.
#[derive(Debug)]
pub(crate) enum Receiving {
    /// Delivered: the `mtext` length.
    Done(usize),
    /// To receive, blocking, and hand to [`received`].
    Blocked(Blocked),
}

/// [`server::receive`] without deadline, for the C export: a request a sync call kept aside comes
/// at once; otherwise the receive to make ([`Receiving::Blocked`]).
///
/// # Errors
/// As [`server::receive`].
#[link_section = ".text.mipc_hot.serve"]
pub(crate) fn receive_forever(queue: QueueId, out: &mut [u8], mtype: c_long) -> Result<Receiving> {
    if out.len() < MTYPE_LEN {
        return Err(MipcError::BadArgument(
            "receive buffer smaller than a message type",
        ));
    }
    crate::local::with(|l| {
        let Some(state) = l else {
            // The thread is being torn down: no buffer to hand out.
            return server::receive_in(None, queue, out, mtype, RecvTimeout::Forever)
                .map(Receiving::Done);
        };
        let blocked = |lib| Ok(Receiving::Blocked(Blocked { queue, mtype, lib }));
        let Some(entry) = table::by_queue_in(l, queue) else {
            return blocked(std::ptr::null_mut());
        };
        if let Some(msg) = entry.take_kept(|m| server::type_matches(mtype, m.mtype()))? {
            return server::deliver_kept(l, &entry, msg, out).map(Receiving::Done);
        }
        blocked(Box::into_raw(
            state.buf.take().unwrap_or_else(MsgBuf::boxed),
        ))
    })
}

/// What the export's blocking receive for `b` gave: the message delivered to `out`, or the
/// next receive to make (a stale WAKE or a late answer of the relay, dropped as [`server::receive`]
/// drops them).
///
/// # Errors
/// As [`server::receive`].
#[link_section = ".text.mipc_hot.serve"]
pub(crate) fn received(
    b: Blocked,
    got: std::result::Result<usize, QueueError>,
    out: &mut [u8],
) -> Result<Receiving> {
    if b.lib.is_null() {
        let n = got?;
        wire::decode_frame(&out[MTYPE_LEN..MTYPE_LEN + n]).map_err(MipcError::BadMessage)?;
        return Ok(Receiving::Done(n));
    }
    // SAFETY: b.lib came from Box::into_raw and this is the one place that takes it back.
    let mut msg = unsafe { Box::from_raw(b.lib) };
    crate::local::with(|l| {
        let r = received_in(l, &b, &mut msg, got, out);
        if let Ok(Receiving::Blocked(next)) = r {
            return Ok(Receiving::Blocked(Blocked {
                lib: Box::into_raw(msg),
                ..next
            }));
        }
        if let Some(l) = l {
            l.buf.set(Some(msg));
        }
        r
    })
}

/// [`received`] for an entry of ours, the message in `msg`.
#[inline(always)]
fn received_in(
    l: Option<&Local>,
    b: &Blocked,
    msg: &mut MsgBuf,
    got: std::result::Result<usize, QueueError>,
    out: &mut [u8],
) -> Result<Receiving> {
    let again = Ok(Receiving::Blocked(*b));
    msg.set_mtext_len(got?);
    let decoded = wire::decode_frame(msg.mtext());
    if let Ok(f) = &decoded {
        if crate::timer::is_wake(f, msg.mtext()) {
            return again; // a WAKE of an earlier wait that ended otherwise
        }
    }
    // SPEC §2: a receiver rejects bytes that are not a MIPC message (they are consumed).
    let frame = decoded.map_err(MipcError::BadMessage)?;
    if wire::batch::is_batch(&frame, msg.mtext()) {
        // As in `server::receive_in`: parked requests sent together, handed out in order.
        let entry = table::by_queue_in(l, b.queue).ok_or(MipcError::NotRegistered)?;
        return match server::deliver_batch(l, &entry, msg, &frame, b.mtype, out)? {
            Some(n) => Ok(Receiving::Done(n)),
            None => again,
        };
    }
    if b.mtype == 0 && wire::from_relay(msg.mtext()) {
        // As in `server::receive_in`: only late answers and DROP_ROUTES come from the relay here.
        if frame.msg_type == Kind::DropRoutes.msg_type() {
            crate::direct::drop_all();
        }
        return again;
    }
    let entry = table::by_queue_in(l, b.queue).ok_or(MipcError::NotRegistered)?;
    server::deliver(l, &entry, msg, Some(&frame), out).map(Receiving::Done)
}

// ---- sync call ----

/// A sync call without timeout through the relay, its request sent, waiting for its answer:
/// the receive the C export makes (`ffi::calls`). Plain data, as [`Blocked`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Awaiting {
    /// The caller's queue.
    pub queue: QueueId,
    /// The answer's SysV type (the api id).
    pub mtype: c_long,
    /// The request's tag (`None` on a legacy relay).
    tag: Option<CallTag>,
    /// The thread's receive buffer, taken out of its state.
    lib: *mut MsgBuf,
}

impl Awaiting {
    /// Where the blocking receive writes: the thread's buffer.
    pub fn room(&self) -> (*mut u8, usize) {
        // SAFETY: lib came from Box::into_raw (call_forever, answered) and is owned by this
        // Awaiting until `answered` takes it back.
        let raw = unsafe { (*self.lib).raw_mut() };
        (raw.as_mut_ptr(), raw.len())
    }
}

/// Where a sync call without timeout stands.
#[derive(Debug)]
pub(crate) enum Calling {
    /// Answered: the answer is copied to `out`.
    Done,
    /// To receive, blocking, and hand to [`answered`].
    Awaiting(Awaiting),
}

/// [`client::call`] without timeout, for the C export: sends the request and returns the
/// receive to make. A call on the direct path, or by a thread being torn down, is made
/// whole here ([`Calling::Done`]).
///
/// # Errors
/// As [`client::call`].
#[link_section = ".text.mipc_hot.call"]
pub(crate) fn call_forever(
    dst: &MipcName,
    api: u32,
    input: &[u8],
    out: &mut [u8],
) -> Result<Calling> {
    check_api(api)?;
    check_payload(input.len() as u64)?;
    crate::local::with(|l| {
        let mut whole = |l| client::call_in(l, dst, api, input, out, CallTimeout::forever());
        let Some(state) = l else {
            return whole(None).map(|_| Calling::Done);
        };
        if direct::enabled() {
            return whole(l).map(|_| Calling::Done);
        }
        let entry = table::mine_in(l)?;
        let tag = entry.ext.then(next_tag);
        let mut buf = state.buf.take().unwrap_or_else(MsgBuf::boxed);
        // Counted as calling until `answered` ends it (a thread cancelled in the receive
        // leaves the count up: its process then acknowledges every answer straight back at
        // once, which is slower, never wrong: `answer_back.rs`).
        crate::answer_back::call_started(&entry.name);
        let sent = send_request(&entry, dst, api, input, tag, &mut buf);
        if let Err(e) = sent {
            crate::answer_back::call_ended();
            state.buf.set(Some(buf));
            return Err(e);
        }
        Ok(Calling::Awaiting(Awaiting {
            queue: entry.queue,
            mtype: api as c_long,
            tag,
            lib: Box::into_raw(buf),
        }))
    })
}

/// The request of [`call_forever`], through the relay.
#[inline(always)]
fn send_request(
    entry: &table::Entry,
    dst: &MipcName,
    api: u32,
    input: &[u8],
    tag: Option<CallTag>,
    buf: &mut MsgBuf,
) -> Result<()> {
    if !entry.ext {
        // Legacy relay: no tags, so drain stale answers first as the original did.
        client::clear_responses(entry.queue, api)?;
    }
    buf.build(Build {
        mtype: api as c_long,
        src: &entry.name,
        dst,
        msg_type: api,
        sync_flag: CallTimeout::forever().sync_flag(),
        payload: input,
        tag,
    });
    crate::link::send_to_relay_from(entry, buf.as_sendable(), None)
}

/// What the export's blocking receive for `a` gave: the answer copied to `out`, or the next
/// receive to make (as `wait::wait_answer` goes on: late answers and errors of earlier calls
/// dropped, requests kept for the entry's next receive, stale WAKEs dropped).
///
/// # Errors
/// As [`client::call`].
#[link_section = ".text.mipc_hot.call"]
pub(crate) fn answered(
    a: Awaiting,
    got: std::result::Result<usize, QueueError>,
    out: &mut [u8],
) -> Result<Calling> {
    // SAFETY: a.lib came from Box::into_raw and this is the one place that takes it back.
    let mut buf = unsafe { Box::from_raw(a.lib) };
    crate::local::with(|l| {
        let r = answered_in(l, &a, &mut buf, got, out);
        if let Ok(Calling::Awaiting(_)) = r {
            return Ok(Calling::Awaiting(Awaiting {
                lib: Box::into_raw(buf),
                ..a
            }));
        }
        crate::answer_back::call_ended();
        if let Some(l) = l {
            l.buf.set(Some(buf));
        }
        r
    })
}

#[inline(always)]
fn answered_in(
    l: Option<&Local>,
    a: &Awaiting,
    buf: &mut MsgBuf,
    got: std::result::Result<usize, QueueError>,
    out: &mut [u8],
) -> Result<Calling> {
    let again = Ok(Calling::Awaiting(*a));
    buf.set_mtext_len(got?);
    let Ok(hdr) = wire::decode_frame(buf.mtext()) else {
        return again;
    };
    if crate::timer::is_wake(&hdr, buf.mtext()) {
        return again; // a WAKE of an earlier wait that ended otherwise
    }
    let entry = table::mine_in(l)?;
    let w = AnswerWait {
        queue: a.queue,
        entry: Some(&entry),
        mtype: a.mtype,
        expect: a.tag,
        deadline: None,
        watch: None,
        poll: false,
    };
    match judge(&w, buf, &hdr) {
        Verdict::Answer => {
            client::copy_answer(hdr.payload(buf.mtext()), out).map(|_| Calling::Done)
        }
        Verdict::WaitOn => again,
        Verdict::Fail(e) => Err(e),
    }
}
