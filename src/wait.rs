//! The one receive-until-deadline loop of the library. SysV has no timed `msgrcv`, so a wait
//! with a deadline arms the waker (`timer.rs`), which puts a WAKE on the queue when the
//! deadline passes; a direct call also registers the server's process, whose death wakes it
//! the same way. `Waiting` holds both and undoes them when dropped, whatever way the wait
//! ends; `Waiting::recv` never hands out a WAKE. The one wait that polls instead is
//! `mipc_init`'s greeting (`poll`): a process whose calls have no deadline then never starts
//! the waker thread, and stays single-threaded (docs/PERFORMANCE.md, scheduler's placement).
//!
//! `wait_answer` is the answer side of a sync call on top of it: it takes only the
//! caller's own answer (by call tag), turns the relay's ERROR answers into errors, drops late
//! answers, and keeps requests that arrive meanwhile for the next receive.

use crate::error::{MipcError, RelayErrorCode, Result};
use crate::sysv::{self, QueueError, QueueId, RecvFlags};
use crate::table::{DirectWait, Entry};
use crate::timer::{self, Reason, WakeId};
use crate::wire::control::ErrorAnswer;
use crate::wire::{self, CallTag, Control, Frame, Kind, MsgBuf, WireError, MTYPE_LEN};
use std::os::raw::c_long;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A process a wait watches: the server of a direct call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watch<'a> {
    /// The server's process.
    pub pid: i32,
    /// Set by the waker once it is dead.
    pub dead: &'a AtomicBool,
}

/// An armed wait on one queue and SysV type. Dropping it disarms the waker and clears the
/// entry's direct-wait slot.
#[derive(Debug)]
pub(crate) struct Waiting<'a> {
    wake: Option<WakeId>,
    slot: Option<(&'a Entry, u64)>,
    /// A polled wait's deadline (no waker armed).
    poll_until: Option<Instant>,
}

impl<'a> Waiting<'a> {
    /// Arms a WAKE of SysV type `mtype` on `queue` at `deadline` (none without one).
    ///
    /// # Errors
    /// [`MipcError::Internal`] when the waker cannot run (the caller must not block then).
    #[inline]
    pub fn arm(queue: QueueId, mtype: c_long, deadline: Option<Instant>) -> Result<Waiting<'a>> {
        let wake = match deadline {
            Some(d) => Some(timer::arm(d, queue, mtype).ok_or(MipcError::Internal)?),
            None => None,
        };
        Ok(Waiting {
            wake,
            slot: None,
            poll_until: None,
        })
    }

    /// A wait until `deadline` that polls the queue (with sleeps that grow from 20 us to
    /// 5 ms) instead of arming the waker. For rare, short waits only.
    pub fn polling(deadline: Instant) -> Waiting<'a> {
        Waiting {
            wake: None,
            slot: None,
            poll_until: Some(deadline),
        }
    }

    /// Also ends the wait with "peer died" when `watch`'s process dies: the waker reads
    /// `entry`'s direct-wait slot. Returns `false`, watching nothing, when it is dead
    /// already.
    pub fn watching(&mut self, entry: &'a Entry, mtype: c_long, watch: Watch<'_>) -> bool {
        let id = self.wake.map_or_else(timer::fresh_id, |w| w.id());
        entry.direct_wait.set(DirectWait {
            pid: watch.pid,
            mtype,
            id,
        });
        self.slot = Some((entry, id));
        // The waker sets the flag before it reads the slots: either it sees this slot, or
        // this sees the flag.
        if watch.dead.load(Ordering::SeqCst) {
            self.slot = None;
            entry.direct_wait.clear();
            return false;
        }
        true
    }

    /// Why the WAKE with this payload ends this wait, if it is one of this wait's.
    fn woken(&self, payload: &[u8]) -> Option<Reason> {
        [self.wake.map(|w| w.id()), self.slot.map(|(_, id)| id)]
            .iter()
            .flatten()
            .find_map(|&id| timer::wake_reason(payload, id))
    }

    /// Receives the next message of SysV type `mtype` from `queue` into `room` (`mtype` then
    /// `mtext`) and returns its `mtext` length and what decoding it gave. A WAKE of this wait
    /// ends it ([`MipcError::Timeout`] or [`MipcError::PeerDied`]); another WAKE (of an
    /// earlier wait that ended otherwise) is dropped.
    ///
    /// # Errors
    /// As above; [`MipcError::Timeout`] for an empty queue with `flags.nowait`; queue errors.
    #[inline(always)]
    pub fn recv(
        &self,
        queue: QueueId,
        room: &mut [u8],
        mtype: c_long,
        flags: RecvFlags,
    ) -> Result<(usize, std::result::Result<Frame, WireError>)> {
        loop {
            let got = match self.poll_until {
                Some(until) => poll_recv(queue, room, mtype, flags, until),
                None => sysv::recv(queue, room, mtype, flags),
            };
            let n = match got {
                Ok(n) => n,
                Err(QueueError::Empty) => return Err(MipcError::Timeout),
                Err(e) => return Err(e.into()),
            };
            let mtext = &room[MTYPE_LEN..MTYPE_LEN + n];
            let decoded = wire::decode_frame(mtext);
            if let Ok(f) = &decoded {
                if timer::is_wake(f, mtext) {
                    match self.woken(f.payload(mtext)) {
                        Some(Reason::Timeout) => return Err(MipcError::Timeout),
                        Some(Reason::PeerDied) => return Err(MipcError::PeerDied),
                        None => continue,
                    }
                }
            }
            return Ok((n, decoded));
        }
    }
}

/// [`sysv::recv`] without blocking, again and again until `until`; then
/// [`QueueError::Empty`].
#[cold]
fn poll_recv(
    queue: QueueId,
    room: &mut [u8],
    mtype: c_long,
    flags: RecvFlags,
    until: Instant,
) -> std::result::Result<usize, QueueError> {
    let _fine = crate::os::process::FineTimer::new();
    let flags = RecvFlags {
        nowait: true,
        ..flags
    };
    let mut pause = Duration::from_micros(20);
    loop {
        match sysv::recv(queue, room, mtype, flags) {
            Err(QueueError::Empty) => {}
            other => return other,
        }
        let now = Instant::now();
        if now >= until {
            return Err(QueueError::Empty);
        }
        crate::os::process::nap(pause.min(until - now));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

impl Drop for Waiting<'_> {
    /// Inline: a wait without deadline (the usual one) has at most a store to undo.
    #[inline]
    fn drop(&mut self) {
        if let Some(w) = self.wake {
            timer::disarm(w);
        }
        if let Some((e, _)) = self.slot {
            e.direct_wait.clear();
        }
    }
}

/// What a sync call's answer wait needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnswerWait<'a> {
    /// The queue to receive from.
    pub queue: QueueId,
    /// Its entry, if it is one of this process's (requests that arrive are kept for it).
    pub entry: Option<&'a Entry>,
    /// The SysV type of the answer.
    pub mtype: c_long,
    /// The tag of the request; `None` takes any answer.
    pub expect: Option<CallTag>,
    /// When to give up (`None`: never).
    pub deadline: Option<Instant>,
    /// The server of a direct call, whose death ends the wait.
    pub watch: Option<Watch<'a>>,
    /// Poll the queue until the deadline instead of arming the waker
    /// ([`Waiting::polling`]).
    pub poll: bool,
}

/// Keeps a request that arrived during a sync call for the entry's next receive.
///
/// # Errors
/// [`MipcError::Internal`] on a poisoned lock.
pub(crate) fn stash(entry: &Entry, msg: Box<MsgBuf>) -> Result<()> {
    entry.keep(msg, false)
}

/// Takes a batch from the relay (`wire::batch`, in `buf`, decoded as `f`) apart: its
/// messages are kept for the entry's next receives, in order, after what is kept already.
/// Out of line: only a receiver that fell behind gets batches.
///
/// # Errors
/// [`MipcError::BadMessage`] for a batch that does not split into valid messages (it is
/// consumed, nothing of it kept); [`MipcError::Internal`] on a poisoned lock.
#[cold]
#[inline(never)]
pub(crate) fn unbatch(entry: &Entry, buf: &MsgBuf, f: &Frame) -> Result<()> {
    let parts = wire::batch::split(f.payload(buf.mtext())).map_err(MipcError::BadMessage)?;
    let mtype = buf.mtype();
    crate::local::with(|l| {
        entry.keep_all(parts.into_iter().map(|m| {
            let mut b = crate::local::spare_buf(l);
            b.set_message(mtype, m);
            b
        }))
    })
}

/// Keeps a copy of the request in `buf` for the entry's next receive. Out of line: the copy
/// is made on this function's stack, which would otherwise make every wait's frame over
/// 2 KiB (one more stack page touched per call).
#[cold]
#[inline(never)]
fn stash_copy(entry: &Entry, buf: &MsgBuf) -> Result<()> {
    stash(entry, Box::new(buf.clone()))
}

/// Blocks until the answer `w.expect` (or, with `None`, any answer) arrives, the relay
/// reports an error for it, the deadline passes, or the watched server dies. Leaves the
/// answer in `buf` and returns its header.
///
/// # Errors
/// [`MipcError::Timeout`], [`MipcError::PeerDied`], the relay's error for the call, queue
/// errors.
pub(crate) fn wait_answer(w: &AnswerWait<'_>, buf: &mut MsgBuf) -> Result<Frame> {
    wait_answer_inline(w, buf)
}

/// [`wait_answer`], inlined into a sync call (`client::call`): the wait's fields stay in
/// registers instead of going through an [`AnswerWait`] in memory and back.
///
/// # Errors
/// As [`wait_answer`].
#[inline(always)]
pub(crate) fn wait_answer_inline(w: &AnswerWait<'_>, buf: &mut MsgBuf) -> Result<Frame> {
    let mut waiting = match (w.poll, w.deadline) {
        (true, Some(d)) => Waiting::polling(d),
        _ => Waiting::arm(w.queue, w.mtype, w.deadline)?,
    };
    let mut flags = RecvFlags::default();
    if let (Some(watch), Some(e)) = (w.watch, w.entry) {
        // The server may have died before the wait began, after answering (it answers,
        // exits, and the waker sees it die, all while this thread was between its send and
        // here): then take what is on the queue without blocking, and only then say so.
        flags.nowait = !waiting.watching(e, w.mtype, watch);
    }
    match answer_loop(w, &waiting, flags, buf) {
        Err(MipcError::Timeout) if flags.nowait => Err(MipcError::PeerDied),
        other => other,
    }
}

/// The receive loop of [`wait_answer`] on an armed wait.
#[inline(always)]
fn answer_loop(
    w: &AnswerWait<'_>,
    waiting: &Waiting<'_>,
    flags: RecvFlags,
    buf: &mut MsgBuf,
) -> Result<Frame> {
    loop {
        let (n, decoded) = waiting.recv(w.queue, buf.raw_mut(), w.mtype, flags)?;
        buf.set_mtext_len(n);
        let Ok(hdr) = decoded else { continue };
        match judge(w, buf, &hdr) {
            Verdict::Answer => return Ok(hdr),
            Verdict::WaitOn => {}
            Verdict::Fail(e) => return Err(e),
        }
    }
}

/// [`judge`] of an untagged message that is not a request: a batch (one-way requests only,
/// kept for the next receives as each alone would be; one that does not split is dropped, as
/// any bad message in an answer wait), or the answer of a legacy server or relay. Out of line:
/// the answer of a call passes by it.
#[cold]
#[inline(never)]
fn judge_untagged(w: &AnswerWait<'_>, buf: &MsgBuf, hdr: &Frame) -> Verdict {
    if !wire::batch::is_batch(hdr, buf.mtext()) {
        return Verdict::Answer; // an untagged answer (legacy server or legacy relay)
    }
    match w.entry.map(|e| unbatch(e, buf, hdr)) {
        Some(Err(MipcError::Internal)) => Verdict::Fail(MipcError::Internal),
        _ => Verdict::WaitOn,
    }
}

/// What a message does to a sync call's answer wait ([`judge`]).
pub(crate) enum Verdict {
    /// It is the answer: the wait ends with it.
    Answer,
    /// The wait goes on.
    WaitOn,
    /// The wait ends with this error (the relay's error for the call).
    Fail(MipcError),
}

/// What a message received in a sync call's answer wait (not a WAKE) does to it: ends it
/// (the answer, or the relay's error for the call), or not (an error or a late answer of an
/// earlier call, dropped; a request, kept for the entry's next receive).
#[inline(always)]
pub(crate) fn judge(w: &AnswerWait<'_>, buf: &MsgBuf, hdr: &Frame) -> Verdict {
    if hdr.msg_type == Kind::Error.msg_type() && wire::from_relay(buf.mtext()) {
        if let (Some(mine), Some(t)) = (w.expect, hdr.tag) {
            if t == mine.reply() {
                let code = ErrorAnswer::get(hdr.payload(buf.mtext())).map(|a| a.code);
                return Verdict::Fail(
                    code.and_then(RelayErrorCode::from_i32)
                        .map(MipcError::from_relay)
                        .unwrap_or(MipcError::BadArgument("relay error")),
                );
            }
        }
        return Verdict::WaitOn; // an error for an earlier call
    }
    match (hdr.tag, w.expect) {
        // The answer to this call: one compare of the whole tag (`mine` is a request's).
        (Some(t), Some(mine)) if t == mine.reply() => Verdict::Answer,
        // A late answer to an earlier call of this thread: never hand it out.
        (Some(t), Some(_)) if t.is_reply() => Verdict::WaitOn,
        (Some(t), None) if t.is_reply() => Verdict::Answer,
        _ if w.entry.is_some_and(|e| e.ext) && hdr.is_request() => match w.entry {
            Some(e) => match stash_copy(e, buf) {
                Ok(()) => Verdict::WaitOn,
                Err(err) => Verdict::Fail(err),
            },
            None => Verdict::WaitOn,
        },
        _ => judge_untagged(w, buf, hdr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::next_tag;
    use crate::name::MipcName;
    use crate::table;
    use crate::wire::Build;

    struct Queue(QueueId);
    impl Drop for Queue {
        fn drop(&mut self) {
            let _ = sysv::remove(self.0);
        }
    }

    /// A private queue (removed when dropped), an entry "w_caller" of this thread on it, and
    /// the name `peer` of whoever sends to it.
    fn caller_and(peer: &[u8]) -> (Queue, MipcName, MipcName, Entry) {
        let q = Queue(sysv::create_private(0o600).unwrap());
        let me = MipcName::new(b"w_caller").unwrap();
        let entry = Entry::new(me, q.0, table::current_thread(), true, false);
        (q, me, MipcName::new(peer).unwrap(), entry)
    }

    /// A wait without deadline on `q` for the answer `tag` to a call of `api`, for `entry`,
    /// watching `watch`.
    fn waiting<'a>(
        q: &Queue,
        entry: &'a Entry,
        api: u32,
        tag: CallTag,
        watch: Option<Watch<'a>>,
    ) -> AnswerWait<'a> {
        AnswerWait {
            queue: q.0,
            entry: Some(entry),
            mtype: api as c_long,
            expect: Some(tag),
            deadline: None,
            watch,
            poll: false,
        }
    }

    /// A one-way message of `api` from `src` to `dst` with `payload` and `tag`.
    fn message(
        api: u32,
        src: &MipcName,
        dst: &MipcName,
        payload: &[u8],
        tag: Option<CallTag>,
    ) -> Box<MsgBuf> {
        let mut m = MsgBuf::boxed();
        m.build(Build {
            mtype: api as c_long,
            src,
            dst,
            msg_type: api,
            sync_flag: 0,
            payload,
            tag,
        });
        m
    }

    /// A direct call whose server answered and died before the caller began to wait gets
    /// the answer, not "peer died" (the race `one_senders_messages_stay_in_order_across_the_
    /// switch_to_direct` met once in a loaded run); with nothing on the queue it gets "peer
    /// died" at once.
    #[test]
    fn an_answer_left_by_a_server_dead_before_the_wait_is_taken() {
        let (q, me, server, entry) = caller_and(b"w_server");
        let tag = next_tag();
        let api = 21u32;
        let buf = message(api, &server, &me, b"left before dying", Some(tag.reply()));
        sysv::send(q.0, buf.as_sendable(), true).unwrap();
        let dead = AtomicBool::new(true);
        let watch = Watch {
            pid: 1,
            dead: &dead,
        };
        let w = waiting(&q, &entry, api, tag, Some(watch));
        let mut got = MsgBuf::boxed();
        let hdr = wait_answer(&w, &mut got).expect("the answer on the queue");
        assert_eq!(hdr.payload(got.mtext()), b"left before dying");
        assert_eq!(wait_answer(&w, &mut got).unwrap_err(), MipcError::PeerDied);
    }

    /// One-way requests the relay sends in a batch while a sync call waits for its answer
    /// (on the same api: the same SysV type) are kept, in order, for the next receives.
    #[test]
    fn a_batch_that_comes_during_a_sync_call_is_kept_for_the_next_receives() {
        let (q, me, peer, entry) = caller_and(b"w_peer");
        let api = 21u32;
        let requests: Vec<Box<MsgBuf>> = (1..=3u8)
            .map(|i| {
                message(
                    api,
                    &peer,
                    &me,
                    &[i; 5],
                    CallTag::request(100 + u32::from(i)),
                )
            })
            .collect();
        let mut batch = Vec::new();
        let mut w = wire::batch::Writer::begin(&mut batch, requests[0].as_sendable(), &me);
        for r in &requests {
            w.push(r.mtext());
        }
        sysv::send(q.0, w.finish(), true).unwrap();
        let tag = next_tag();
        let answer = message(api, &peer, &me, b"the answer", Some(tag.reply()));
        sysv::send(q.0, answer.as_sendable(), true).unwrap();
        let w = waiting(&q, &entry, api, tag, None);
        let mut got = MsgBuf::boxed();
        let hdr = wait_answer(&w, &mut got).expect("the answer behind the batch");
        assert_eq!(hdr.payload(got.mtext()), b"the answer");
        for r in &requests {
            let kept = entry.take_kept(|_| true).unwrap().expect("kept, in order");
            assert_eq!(kept.as_sendable(), r.as_sendable());
        }
        assert!(entry.take_kept(|_| true).unwrap().is_none());
    }
}
