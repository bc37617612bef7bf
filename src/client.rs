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
use crate::link::with_buf_in;
use crate::link::{check_api, check_payload, next_tag, send_to_relay};
use crate::link::{
    root_reader, send_to_relay_bounded, to_relay, wait_for_relay, with_buf, RootReader,
};
use crate::local::Local;
use crate::name::MipcName;
use crate::os::{self, ThreadId};
use crate::sysv::{self, QueueError, QueueId, RecvFlags};
use crate::table::{self, Entry};
use crate::timeout::CallTimeout;
use crate::wait::{stash, wait_answer, wait_answer_inline, AnswerWait};
use crate::wire::control::{Hello, HelloAnswer, HELLO_VERSION};
use crate::wire::{self, Build, Control, Kind, MsgBuf, ThreadInfo, MIPC_MSG_TYPE_PING};
use std::os::raw::c_long;
use std::time::{Duration, Instant};

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

/// The greeting of the entry whose queue is `queue`.
pub fn hello(queue: QueueId) -> Hello {
    Hello {
        version: HELLO_VERSION,
        pid: os::getpid(),
        mqd: queue.0,
        flags: crate::wire::control::HELLO_FLAG_SENDER
            | if crate::config::batches_enabled() {
                crate::wire::control::HELLO_FLAG_BATCH
            } else {
                0
            }
            | if crate::config::answer_back_enabled() {
                crate::wire::control::HELLO_FLAG_ANSWER_BACK
            } else {
                0
            },
    }
}

fn register_with_relay(name: &MipcName, queue: QueueId, tid: ThreadId) -> Result<bool> {
    with_buf(|buf| {
        notice(buf, true, name, queue, tid);
        send_to_relay_bounded(buf.as_sendable())?;
        let registered = greet(name, queue, buf);
        if registered.is_err() {
            // The relay may read the NOTICE later: take the registration back behind it.
            notice(buf, false, name, queue, tid);
            let _ = send_to_relay(buf.as_sendable(), true);
        }
        registered
    })
}

/// Greets the relay after the NOTICE: `Ok(true)` for a mipc-rs relay, `Ok(false)` for a
/// legacy one, which reads the greeting but never answers. When the greeting is not answered
/// within `MIPC_HELLO_TIMEOUT_MS`, the root queue tells why ([`root_reader`]): a relay that
/// took the greeting (every message, or the greeting itself, looked for without taking it:
/// [`still_queued`](crate::link::still_queued)) and did not answer is a legacy one; one
/// that reads while the greeting still waits is behind (every daemon of a firmware
/// registering at once) and is waited for, up to `MIPC_SEND_TIMEOUT_MS`, before the daemon
/// settles for the legacy wire; a stopped relay ends `mipc_init` at once, and one that reads
/// nothing is waited for up to `MIPC_SEND_TIMEOUT_MS`.
fn greet(name: &MipcName, queue: QueueId, buf: &mut MsgBuf) -> Result<bool> {
    if !config::extensions_enabled() {
        return Ok(false);
    }
    let hello_wait = Duration::from_millis(config::hello_timeout_ms() as u64);
    let timeout = CallTimeout::after(hello_wait);
    let env = to_relay(name, Kind::Hello.mtype(), timeout.sync_flag(), None);
    buf.build_control(env, &hello(queue));
    let sent_at = os::process::coarse_wall_secs();
    let start = Instant::now();
    // Its bytes, to look for it on the root queue later (the buffer receives the answer).
    let hello_bytes = buf.as_sendable().to_vec();
    send_to_relay_bounded(buf.as_sendable())?;
    let mut answer = AnswerWait {
        queue,
        entry: None,
        mtype: Kind::Hello.mtype(),
        expect: None,
        deadline: timeout.deadline_from_now(),
        watch: None,
        poll: true, // no waker thread for the greeting
    };
    // The bound of the waits past the greeting's own: MIPC_SEND_TIMEOUT_MS, and for a relay
    // that reads, its default when that is "forever" (a busy legacy relay never empties its
    // queue, and the daemon must start).
    let limit = config::send_timeout().map(|l| start + l);
    let reading_limit = start + config::send_timeout().unwrap_or(config::SEND_TIMEOUT_DEFAULT);
    let mut extended = false;
    let mut behind = false;
    let mut last_look = false;
    loop {
        match wait_answer(&answer, buf) {
            Ok(f) if f.msg_type == Kind::Hello.msg_type() && wire::from_relay(buf.mtext()) => {
                let status = HelloAnswer::get(f.payload(buf.mtext())).map(|a| a.status);
                return match status.and_then(RelayErrorCode::from_i32) {
                    None => Ok(true),
                    Some(code) => Err(MipcError::from_relay(code)),
                };
            }
            Err(MipcError::Timeout) => {}
            // Another message: a legacy relay. It got the NOTICE; speak its bytes only.
            Ok(_) => return Ok(false),
            Err(e) => return Err(e),
        }
        let stalled = |why| {
            let e = MipcError::RelayStalled(why);
            crate::link::log_stall_once(&e, start.elapsed());
            Err(e)
        };
        let now = Instant::now();
        let past = |l: Option<Instant>| l.is_some_and(|l| l <= now);
        let reader = root_reader(sent_at, limit);
        answer.deadline = match reader {
            RootReader::Stopped => {
                return stalled("the relay process is stopped; mipc_init gave up")
            }
            RootReader::Unread if extended || past(limit) => {
                return stalled("it read nothing within MIPC_SEND_TIMEOUT_MS; mipc_init gave up")
            }
            RootReader::Unread => {
                extended = true;
                limit
            }
            // The relay reads, and the greeting still waits on the queue (or the kernel
            // cannot tell): the relay is behind. Look again after another greeting's time.
            RootReader::Reading
                if now < reading_limit
                    && crate::link::still_queued(&hello_bytes) != Some(false) =>
            {
                behind = true;
                Some((now + hello_wait).min(reading_limit))
            }
            // The relay took the greeting without answering it (Reading here), or took
            // everything after it was behind: its answer may be on its way. One short look
            // more.
            RootReader::Idle | RootReader::Reading
                if (behind || reader == RootReader::Reading) && !last_look =>
            {
                last_look = true;
                Some(now + LAST_LOOK)
            }
            // No answer, and the relay took the greeting (or still reads after its bound).
            RootReader::Idle | RootReader::Reading => return Ok(false),
        };
    }
}

/// How long [`greet`] waits for an answer on its way once the relay took the greeting (it was
/// behind and emptied its queue, or it took the greeting without answering in time).
const LAST_LOOK: Duration = Duration::from_millis(50);

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
    let gone = table::take(|e| e.owned_by(tid))?;
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
        if let Some(any) = table::in_table(|e| e.pid == pid) {
            crate::answer_back::flush(&any.name);
        }
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
    crate::local::with(|l| {
        // The sender's entry, if it is one of ours (`None`: a name of another process).
        let (ext, queue) = match table::by_name_in(l, src) {
            Some(e) => (e.ext, Some(e.queue)),
            None => (false, None),
        };
        with_buf_in(l, |buf| {
            buf.build(Build {
                mtype: api as c_long,
                src,
                dst,
                msg_type: api,
                sync_flag,
                payload: input,
                tag: ext.then(next_tag),
            });
            // Once a destination is direct, async messages to it go direct too: one
            // sender's messages must not overtake each other on two paths. Only a process
            // that chose the direct path has direct routes.
            if ext && direct::enabled() {
                let cached =
                    direct::cached(dst).filter(|_| !queue.is_some_and(direct::routes_dropped));
                if let Some(r) = cached {
                    if direct::send(dst, &r, buf.as_sendable()) {
                        return Ok(());
                    }
                }
            }
            send_to_relay_bounded(buf.as_sendable())
        })
    })
}

/// A sync call from the calling thread's entry: sends `input` to `dst` as `api` and waits
/// for the answer, copying at most `out.len()` bytes of it. Returns the answer's length.
///
/// # Errors
/// [`MipcError::NotRegistered`], [`MipcError::Timeout`], [`MipcError::NoSuchDestination`],
/// [`MipcError::PeerDied`], [`MipcError::DestinationBusy`], [`MipcError::Deadlock`],
/// [`MipcError::AnswerTruncated`] (after copying what fits), argument and queue errors.
#[link_section = ".text.mipc_hot.call"]
pub fn call(
    dst: &MipcName,
    api: u32,
    input: &[u8],
    out: &mut [u8],
    wait: CallTimeout,
) -> Result<usize> {
    check_api(api)?;
    check_payload(input.len() as u64)?;
    crate::local::with(|l| call_in(l, dst, api, input, out, wait))
}

/// [`call`] with the thread's state at hand.
#[link_section = ".text.mipc_hot.call"]
pub(crate) fn call_in(
    l: Option<&Local>,
    dst: &MipcName,
    api: u32,
    input: &[u8],
    out: &mut [u8],
    wait: CallTimeout,
) -> Result<usize> {
    let entry = table::mine_in(l)?;
    let tag = entry.ext.then(next_tag);
    let deadline = wait.deadline_from_now();
    // Calls this process answered straight back are acknowledged before this one's request
    // (`answer_back.rs`).
    let _calling = crate::answer_back::Calling::start(&entry.name);
    with_buf_in(l, |buf| {
        if !entry.ext {
            // Legacy relay: no tags, so drain stale answers first as the original did.
            clear_responses(entry.queue, api)?;
        }
        let route = match tag {
            Some(_) if direct::enabled() && !dst.is_relay() => direct::route(l, &entry, dst, buf)?,
            _ => None,
        };
        let build = |buf: &mut MsgBuf| {
            buf.build(Build {
                mtype: api as c_long,
                src: &entry.name,
                dst,
                msg_type: api,
                sync_flag: wait.sync_flag(),
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
            crate::link::send_to_relay_from(&entry, buf.as_sendable(), deadline)?;
        }
        let mtype = api as c_long;
        let answer = AnswerWait {
            queue: entry.queue,
            entry: Some(&entry),
            mtype,
            expect: tag,
            deadline,
            watch: watch.map(direct::Route::watch),
            poll: false,
        };
        let hdr = match wait_answer_inline(&answer, buf) {
            Err(MipcError::PeerDied) if watch.is_some() => {
                direct::forget(dst);
                return Err(MipcError::PeerDied);
            }
            other => other?,
        };
        copy_answer(hdr.payload(buf.mtext()), out)
    })
}

#[inline(always)]
pub(crate) fn copy_answer(answer: &[u8], out: &mut [u8]) -> Result<usize> {
    match out.get_mut(..answer.len()) {
        Some(room) => {
            room.copy_from_slice(answer);
            Ok(answer.len())
        }
        None => copy_truncated(answer, out),
    }
}

/// [`copy_answer`] when the answer does not fit: copies what does.
#[cold]
fn copy_truncated(answer: &[u8], out: &mut [u8]) -> Result<usize> {
    out.copy_from_slice(&answer[..out.len()]);
    Err(MipcError::AnswerTruncated {
        len: answer.len(),
        room: out.len(),
    })
}

/// `mipc_ping`: a sync PING answered by the destination's handler (or by the relay for
/// `"mipc_main"`).
///
/// # Errors
/// As [`call`].
pub fn ping(dst: &MipcName, wait: CallTimeout) -> Result<()> {
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
                    (Some(e), Ok(h)) if e.ext && h.frame.is_request() => stash(e, buf.clone())?,
                    (Some(e), Ok(h)) if crate::wire::batch::is_batch(&h.frame, buf.mtext()) => {
                        // Requests only, kept as above (one that does not split is dropped).
                        if crate::wait::unbatch(e, &buf, &h.frame).is_err() {
                            dropped += 1;
                        }
                    }
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
pub fn receive_response(
    queue: QueueId,
    api: u32,
    out: &mut [u8],
    wait: CallTimeout,
) -> Result<usize> {
    let entry = table::by_queue(queue);
    let answer = AnswerWait {
        queue,
        entry: entry.as_deref(),
        mtype: api as c_long,
        expect: None,
        deadline: wait.deadline_from_now(),
        watch: None,
        poll: false,
    };
    with_buf(|buf| {
        let f = wait_answer(&answer, buf)?;
        copy_answer(f.payload(buf.mtext()), out)
    })
}
