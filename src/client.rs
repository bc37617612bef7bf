//! The calling side: registering an entry with the relay, sending, and sync calls that wait
//! for their own answer (SPEC §1, §3).
//!
//! A sync call sends one request to the relay's root queue and blocks in `msgrcv` on the
//! entry's own queue for the call's api id. With a mipc-rs relay the request carries a call
//! tag and only the answer with the same tag ends the wait: a late answer to an earlier call
//! is dropped, a request that arrives meanwhile (a nested call in a server) is kept for the
//! next receive, and the relay's error answers (no such destination, peer died, busy) end the
//! call at once. Timeouts come from the timer thread (`timer.rs`), never from polling.

use crate::config;
use crate::direct;
use crate::error::{MipcError, RelayErrorCode, Result};
use crate::name::MipcName;
use crate::os::{self, ThreadId};
use crate::sysv::{self, QueueError, QueueId, RecvFlags};
use crate::table::{self, DirectWait, Entry, STASH_MAX};
use crate::timer;
use crate::wire::control::{ErrorAnswer, Hello, HelloAnswer, HELLO_VERSION};
use crate::wire::{
    self, Build, CallTag, Control, Envelope, Header, Kind, MsgBuf, ThreadInfo, MIPC_API_ID_MAX,
    MIPC_MSG_MAX_LEN, MIPC_MSG_TYPE_PING,
};
use std::cell::RefCell;
use std::os::raw::c_long;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a sync call may wait: `None` is forever.
pub type Wait = Option<Duration>;

/// Reads a legacy timeout argument: -1 is forever, a positive value is milliseconds.
///
/// # Errors
/// [`MipcError::BadArgument`] for 0 or another negative value (a sync call that does not wait
/// could never get its answer).
pub fn wait_from_ms(ms: i32) -> Result<Wait> {
    match ms {
        -1 => Ok(None),
        ms if ms > 0 => Ok(Some(Duration::from_millis(ms as u64))),
        _ => Err(MipcError::BadArgument(
            "timeout must be > 0 ms or -1 (MIPC_MSG_SYNC_WAIT_FOREVER)",
        )),
    }
}

fn sync_flag_of(wait: Wait) -> i32 {
    match wait {
        None => -1,
        Some(d) => d.as_millis().clamp(1, i32::MAX as u128) as i32,
    }
}

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

// ---- the root queue ----

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

// ---- registration ----

/// Registers `name` for the calling thread: creates its queue, tells the relay, greets it
/// (a mipc-rs relay answers and the entry then uses call tags; a legacy relay stays silent
/// and the entry speaks the legacy bytes only), and records it in the process table.
/// Registering the same name again from the same thread returns the same queue.
///
/// # Errors
/// [`MipcError::RelayUnavailable`] (with `MIPC_INIT_TIMEOUT_MS`), [`MipcError::NameInUse`]
/// when another live process holds the name, queue errors.
pub fn init(name: &MipcName) -> Result<QueueId> {
    let tid = table::current_thread();
    if let Some(e) = table::by_thread_and_name(tid, name) {
        return Ok(e.queue);
    }
    wait_for_relay(config::init_timeout_ms().map(Duration::from_millis))?;
    let queue = sysv::create_private(config::queue_mode())?;
    match register_with_relay(name, queue, tid) {
        Ok(ext) => {
            table::register(Entry::new(*name, queue, tid, ext, true))?;
            install_exit_cleanup();
            Ok(queue)
        }
        Err(e) => {
            let _ = sysv::remove(queue);
            Err(e)
        }
    }
}

fn notice(buf: &mut MsgBuf, hold: bool, name: &MipcName, queue: QueueId, tid: ThreadId) {
    let info = ThreadInfo {
        hold,
        thread_id: tid.0,
        name: *name,
        mqd: queue.0,
    };
    buf.build_control(to_relay(name, Kind::Notice.mtype(), 0, None), &info);
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

/// The greeting of the entry whose queue is `queue`.
pub fn hello(queue: QueueId) -> Hello {
    Hello {
        version: HELLO_VERSION,
        pid: os::getpid(),
        mqd: queue.0,
        flags: 0,
    }
}

fn register_with_relay(name: &MipcName, queue: QueueId, tid: ThreadId) -> Result<bool> {
    with_buf(|buf| {
        notice(buf, true, name, queue, tid);
        send_to_relay(buf.as_sendable(), false)?;
        if !config::extensions_enabled() {
            return Ok(false);
        }
        let timeout = Duration::from_millis(config::hello_timeout_ms() as u64);
        let env = to_relay(name, Kind::Hello.mtype(), sync_flag_of(Some(timeout)), None);
        buf.build_control(env, &hello(queue));
        send_to_relay(buf.as_sendable(), false)?;
        let deadline = Instant::now() + timeout;
        match wait_answer(
            queue,
            None,
            Kind::Hello.mtype(),
            None,
            Some(deadline),
            None,
            buf,
        ) {
            Ok(hdr) if hdr.msg_type == Kind::Hello.msg_type() && hdr.src.is_relay() => {
                let status = HelloAnswer::decode(buf, &hdr).map(|a| a.status);
                match status.and_then(RelayErrorCode::from_i32) {
                    None => Ok(true),
                    Some(code) => Err(MipcError::from_relay(code)),
                }
            }
            // No greeting: a legacy relay. It got the NOTICE; speak its bytes only.
            Ok(_) | Err(MipcError::Timeout) => Ok(false),
            Err(e) => Err(e),
        }
    })
}

/// Unregisters `entry` with the relay and, if this process made its queue, removes it.
///
/// The queue goes first: a process killed between the two steps is still registered, and
/// the relay removes what is left when it sees the process die; the other way round, the
/// relay would forget the entry and the queue would outlive everyone.
pub fn retire(entry: &Entry) {
    if entry.owned && entry.pid == os::getpid() {
        let _ = sysv::remove(entry.queue);
    }
    with_buf(|buf| {
        notice(buf, false, &entry.name, entry.queue, entry.tid);
        let _ = send_to_relay(buf.as_sendable(), true);
    });
}

/// Unregisters every entry of the calling thread and removes their queues.
/// Returns how many there were.
///
/// # Errors
/// [`MipcError::NotRegistered`] when the thread had none.
pub fn exit_thread() -> Result<usize> {
    let tid = table::current_thread();
    let gone = table::take(|e| e.tid == tid)?;
    if gone.is_empty() {
        return Err(MipcError::NotRegistered);
    }
    gone.iter().for_each(|e| retire(e));
    Ok(gone.len())
}

extern "C" fn cleanup_at_exit() {
    // Nothing may unwind out of an atexit handler.
    let _ = std::panic::catch_unwind(|| {
        let pid = os::getpid();
        if let Ok(gone) = table::take(|e| e.owned && e.pid == pid) {
            gone.iter().for_each(|e| retire(e));
        }
    });
}

fn install_exit_cleanup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // cleanup_at_exit does not unwind (it catches panics, and only sends, removes
        // queues and ignores every error).
        os::process::at_exit(cleanup_at_exit);
    });
}

// ---- sending and calling ----

/// Sends one message through the relay without waiting (`mipc_send_msg`). With a mipc-rs
/// relay the message carries a request tag, so a caller never mistakes it for an answer.
///
/// # Errors
/// Argument errors, [`MipcError::RelayUnavailable`], queue errors.
pub fn send(src: &MipcName, dst: &MipcName, api: u32, input: &[u8], sync_flag: i32) -> Result<()> {
    check_api(api)?;
    check_payload(input.len() as u64)?;
    let ext = table::by_name(src).is_some_and(|e| e.ext);
    with_buf(|buf| {
        buf.build(Build {
            mtype: api as c_long,
            src,
            dst,
            msg_type: api,
            sync_flag,
            payload: input,
            tag: ext.then(next_tag),
        });
        // Once a destination is direct, async messages to it go direct too: one sender's
        // messages must not overtake each other on two paths.
        if let Some(r) = ext.then(|| direct::cached(dst)).flatten() {
            if direct::send(dst, &r, buf.as_sendable()) {
                return Ok(());
            }
        }
        send_to_relay(buf.as_sendable(), false)
    })
}

/// A sync call from the calling thread's entry: sends `input` to `dst` as `api` and waits
/// for the answer, copying at most `out.len()` bytes of it. Returns the answer's length.
///
/// # Errors
/// [`MipcError::NotRegistered`], [`MipcError::Timeout`], [`MipcError::NoSuchDestination`],
/// [`MipcError::PeerDied`], [`MipcError::DestinationBusy`], [`MipcError::Deadlock`],
/// [`MipcError::AnswerTruncated`] (after copying what fits), argument and queue errors.
pub fn call(dst: &MipcName, api: u32, input: &[u8], out: &mut [u8], wait: Wait) -> Result<usize> {
    check_api(api)?;
    check_payload(input.len() as u64)?;
    let entry = table::mine()?;
    let tag = entry.ext.then(next_tag);
    let deadline = wait.map(|d| Instant::now() + d);
    with_buf(|buf| {
        if !entry.ext {
            // Legacy relay: no tags, so drain stale answers first as the original did.
            clear_responses(entry.queue, api)?;
        }
        let route = match tag {
            Some(_) if direct::enabled() && !dst.is_relay() => direct::route(&entry, dst, buf)?,
            _ => None,
        };
        let build = |buf: &mut MsgBuf| {
            buf.build(Build {
                mtype: api as c_long,
                src: &entry.name,
                dst,
                msg_type: api,
                sync_flag: sync_flag_of(wait),
                payload: input,
                tag,
            })
        };
        build(buf);
        let mut watch = None;
        if let Some(r) = &route {
            buf.append_reply_queue(entry.queue.0);
            if direct::send(dst, r, buf.as_sendable()) {
                watch = Some(r);
            } else {
                build(buf); // through the relay after all, without the reply queue
            }
        }
        if watch.is_none() {
            send_to_relay_until(buf.as_sendable(), deadline)?;
        }
        let mtype = api as c_long;
        let hdr = match wait_answer(entry.queue, Some(&entry), mtype, tag, deadline, watch, buf) {
            Err(MipcError::PeerDied) if watch.is_some() => {
                direct::forget(dst);
                return Err(MipcError::PeerDied);
            }
            other => other?,
        };
        copy_answer(wire::payload(buf.mtext(), &hdr), out)
    })
}

fn copy_answer(answer: &[u8], out: &mut [u8]) -> Result<usize> {
    let n = answer.len().min(out.len());
    out[..n].copy_from_slice(&answer[..n]);
    if answer.len() > out.len() {
        Err(MipcError::AnswerTruncated {
            len: answer.len(),
            room: out.len(),
        })
    } else {
        Ok(answer.len())
    }
}

/// `mipc_ping`: a sync PING answered by the destination's handler (or by the relay for
/// `"mipc_main"`).
///
/// # Errors
/// As [`call`].
pub fn ping(dst: &MipcName, wait: Wait) -> Result<()> {
    let mut result = [0u8; 4];
    call(dst, MIPC_MSG_TYPE_PING, &[], &mut result, wait).map(|_| ())
}

/// Drops every waiting message of type `api` from `queue` (`mipc_clear_resp_msgq`); returns
/// how many. Requests (tagged or untagged with a sync flag) of an entry of ours are kept for
/// its next receive.
///
/// # Errors
/// Queue errors other than an empty queue.
pub fn clear_responses(queue: QueueId, api: u32) -> Result<usize> {
    let entry = table::by_queue(queue);
    let mut dropped = 0;
    let mut buf = MsgBuf::boxed();
    let flags = RecvFlags {
        nowait: true,
        truncate: true,
        interruptible: false,
    };
    loop {
        match sysv::recv(queue, buf.raw_mut(), api as c_long, flags) {
            Ok(n) => {
                buf.set_mtext_len(n);
                match (&entry, buf.decode()) {
                    (Some(e), Ok(h)) if e.ext && is_request(&h) => stash(e, buf.clone())?,
                    _ => dropped += 1,
                }
            }
            Err(QueueError::Empty) => return Ok(dropped),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits on `queue` for an answer of SysV type `api` with no call tag to match
/// (`mipc_receive_response_msg`), copying at most `out.len()` bytes.
///
/// # Errors
/// [`MipcError::Timeout`], [`MipcError::AnswerTruncated`], queue errors.
pub fn receive_response(queue: QueueId, api: u32, out: &mut [u8], wait: Wait) -> Result<usize> {
    let entry = table::by_queue(queue);
    let deadline = wait.map(|d| Instant::now() + d);
    with_buf(|buf| {
        let hdr = wait_answer(
            queue,
            entry.as_deref(),
            api as c_long,
            None,
            deadline,
            None,
            buf,
        )?;
        copy_answer(wire::payload(buf.mtext(), &hdr), out)
    })
}

fn is_request(h: &Header) -> bool {
    match h.tag {
        Some(t) => !t.is_reply(),
        None => h.sync_flag != 0,
    }
}

fn stash(entry: &Entry, msg: Box<MsgBuf>) -> Result<()> {
    let mut s = entry.stash()?;
    if s.len() >= STASH_MAX {
        s.pop_front();
    }
    s.push_back(msg);
    Ok(())
}

/// Blocks on `queue` for SysV type `mtype` until the answer `expect` (or, with `None`, any
/// answer) arrives, the relay reports an error for it, `deadline` passes, or the server of
/// direct route `watch` dies (the entry's `direct_wait` slot tells the waker). Leaves the
/// answer in `buf` and returns its header.
pub(crate) fn wait_answer(
    queue: QueueId,
    entry: Option<&Entry>,
    mtype: c_long,
    expect: Option<CallTag>,
    deadline: Option<Instant>,
    watch: Option<&direct::Route>,
    buf: &mut MsgBuf,
) -> Result<Header> {
    let wake = match deadline {
        Some(d) => Some(timer::arm(d, queue, mtype).ok_or(MipcError::Internal)?),
        None => None,
    };
    let mut slot = None;
    if let (Some(route), Some(e)) = (watch, entry) {
        let id = wake.map_or_else(timer::fresh_id, |w| w.id());
        if let Ok(mut s) = e.direct_wait.lock() {
            *s = Some(DirectWait {
                pid: route.pid,
                mtype,
                id,
            });
            slot = Some((e, id));
        }
        // The waker sets the flag before it reads the slots: either it sees this slot, or
        // this sees the flag.
        if route.is_dead() {
            clear_slot(slot);
            if let Some(w) = wake {
                timer::disarm(w);
            }
            return Err(MipcError::PeerDied);
        }
    }
    let ids = [wake.map(|w| w.id()), slot.map(|(_, id)| id)];
    let outcome = (|| loop {
        let n = sysv::recv(queue, buf.raw_mut(), mtype, RecvFlags::default())?;
        buf.set_mtext_len(n);
        let Ok(hdr) = buf.decode() else { continue };
        if timer::is_wake(&hdr) {
            let p = wire::payload(buf.mtext(), &hdr);
            match ids
                .iter()
                .flatten()
                .find_map(|&id| timer::wake_reason(p, id))
            {
                Some(timer::Reason::Timeout) => return Err(MipcError::Timeout),
                Some(timer::Reason::PeerDied) => return Err(MipcError::PeerDied),
                None => continue, // the wake of an earlier wait that ended otherwise
            }
        }
        if hdr.msg_type == Kind::Error.msg_type() && hdr.src.is_relay() {
            if let (Some(mine), Some(t)) = (expect, hdr.tag) {
                if t == mine.reply() {
                    let code = ErrorAnswer::decode(buf, &hdr).map(|a| a.code);
                    return Err(code
                        .and_then(RelayErrorCode::from_i32)
                        .map(MipcError::from_relay)
                        .unwrap_or(MipcError::BadArgument("relay error")));
                }
            }
            continue; // an error for an earlier call
        }
        match (hdr.tag, expect) {
            (Some(t), Some(mine)) if t.is_reply() => {
                if t.id() == mine.id() {
                    return Ok(hdr);
                }
                // A late answer to an earlier call of this thread: never hand it out.
            }
            (Some(t), None) if t.is_reply() => return Ok(hdr),
            _ if entry.is_some_and(|e| e.ext) && is_request(&hdr) => {
                if let Some(e) = entry {
                    stash(e, Box::new(buf.clone()))?;
                }
            }
            _ => return Ok(hdr), // an untagged answer (legacy server or legacy relay)
        }
    })();
    if let Some(w) = wake {
        timer::disarm(w);
    }
    clear_slot(slot);
    outcome
}

fn clear_slot(slot: Option<(&Entry, u64)>) {
    if let Some((e, _)) = slot {
        if let Ok(mut s) = e.direct_wait.lock() {
            *s = None;
        }
    }
}

/// For the server side: whether an entry of this process exists for `queue`.
pub fn entry_of(queue: QueueId) -> Option<Arc<Entry>> {
    table::by_queue(queue)
}
