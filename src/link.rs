//! The link from an entry to the relay: the root queue, sends to it, the thread's message
//! buffer, call tags, and the checks every outgoing message passes.

use crate::config;
use crate::error::{MipcError, Result};
use crate::local::Local;
use crate::name::MipcName;
use crate::sysv::{self, QueueError, QueueId};
use crate::wire::{
    CallTag, Envelope, MsgBuf, MIPC_API_ID_MAX, MIPC_MSG_MAX_LEN, MIPC_MSG_TYPE_PING, MTYPE_LEN,
};
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

/// Runs `f` with this thread's message buffer: it is taken out for the call and put back
/// after, so a nested call (or one during thread or process teardown, when the thread's
/// storage may already be gone) gets a fresh one.
pub(crate) fn with_buf<R>(f: impl FnOnce(&mut MsgBuf) -> R) -> R {
    crate::local::with(|l| with_buf_in(l, f))
}

/// [`with_buf`] with the thread's state at hand.
#[inline]
pub(crate) fn with_buf_in<R>(l: Option<&Local>, f: impl FnOnce(&mut MsgBuf) -> R) -> R {
    let mut buf = l.and_then(|l| l.buf.take()).unwrap_or_else(MsgBuf::boxed);
    let r = f(&mut buf);
    // A buffer a nested call put back meanwhile is dropped: one per thread is kept.
    if let Some(l) = l {
        l.buf.set(Some(buf));
    }
    r
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

#[inline]
fn root() -> Result<QueueId> {
    let cached = ROOT.load(Ordering::Relaxed);
    if cached >= 0 {
        return Ok(QueueId(cached));
    }
    open_root()
}

/// Looks the root queue up (the first send, or after the relay made it again).
#[cold]
fn open_root() -> Result<QueueId> {
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
#[inline]
#[link_section = ".text.mipc_hot.both"]
pub fn send_to_relay(msg: &[u8], nowait: bool) -> Result<()> {
    counted(msg, || send_uncounted(msg, nowait))
}

/// Runs `send`, the send of `msg` to the root queue, counted against its sender's entry
/// (`answer_back.rs`): before it, and taken back if it fails.
#[inline(always)]
fn counted(msg: &[u8], send: impl FnOnce() -> Result<()>) -> Result<()> {
    crate::answer_back::count_send(msg, true);
    let out = send();
    if out.is_err() {
        crate::answer_back::count_send(msg, false);
    }
    out
}

/// [`send_to_relay_until`] of a message from `entry` (its `src_name`), counted against it
/// without looking it up (`answer_back.rs`).
///
/// # Errors
/// As [`send_to_relay_until`].
#[inline]
pub(crate) fn send_to_relay_from(
    entry: &crate::table::Entry,
    msg: &[u8],
    deadline: Option<Instant>,
) -> Result<()> {
    crate::answer_back::count(entry, true);
    let out = send_until_uncounted(msg, deadline);
    if out.is_err() {
        crate::answer_back::count(entry, false);
    }
    out
}

/// [`send_to_relay_bounded`] with the thread's state at hand.
///
/// # Errors
/// As [`send_to_relay_until`].
#[inline]
pub(crate) fn send_to_relay_bounded_in(l: Option<&crate::local::Local>, msg: &[u8]) -> Result<()> {
    crate::answer_back::count_send_in(l, msg, true);
    let out = send_until_uncounted(msg, None);
    if out.is_err() {
        crate::answer_back::count_send_in(l, msg, false);
    }
    out
}

/// Whether `q` is the root queue, as this process last found it (a send to it from a
/// program's own `msgsnd` wrapper is counted as the library's own are).
pub(crate) fn is_root(q: QueueId) -> bool {
    q.0 >= 0 && ROOT.load(Ordering::Relaxed) == q.0
}

/// [`send_to_relay`], not counted.
#[inline(always)]
fn send_uncounted(msg: &[u8], nowait: bool) -> Result<()> {
    if nowait {
        return try_send_to_relay(msg);
    }
    match sysv::send(root()?, msg, false) {
        Ok(()) => Ok(()),
        Err(e) => send_failed(e, msg, false),
    }
}

/// [`send_to_relay`] without blocking: the first try of every send, inlined where it is
/// made (a non-blocking send is one system call, fewer instructions than a call).
#[inline(always)]
fn try_send_to_relay(msg: &[u8]) -> Result<()> {
    match sysv::send(root()?, msg, true) {
        Ok(()) => Ok(()),
        Err(e) => send_failed(e, msg, true),
    }
}

/// The rest of [`send_to_relay`] after its first try failed with `e`: a removed root queue
/// is looked up and tried once more.
#[cold]
fn send_failed(e: QueueError, msg: &[u8], nowait: bool) -> Result<()> {
    let e = match e {
        QueueError::Gone => {
            ROOT.store(-1, Ordering::Relaxed);
            match sysv::send(root()?, msg, nowait) {
                Ok(()) => return Ok(()),
                Err(QueueError::Gone) => {
                    ROOT.store(-1, Ordering::Relaxed);
                    return Err(MipcError::RelayUnavailable);
                }
                Err(e) => e,
            }
        }
        e => e,
    };
    match e {
        QueueError::Full => Err(MipcError::DestinationBusy),
        e => Err(e.into()),
    }
}

/// Shortest pause of a send that found the root queue full.
const FULL_FIRST_PAUSE: Duration = Duration::from_micros(10);
/// Longest pause between two tries: how late a send notices that the relay drains again.
const FULL_MAX_PAUSE: Duration = Duration::from_millis(5);

/// Sends to the relay, bounded: a full root queue (the relay stopped, hung, or far behind)
/// is waited on for at most `MIPC_SEND_TIMEOUT_MS` (see [`config::send_timeout`]) and at
/// most until `deadline` (a sync call's own timeout), whichever comes first.
///
/// The first try never blocks, so the usual send costs one `msgsnd`, as before. SysV has no
/// timed `msgsnd` and no descriptor to poll, and a blocked `msgsnd` only ends early on a
/// signal, which a library must not take from its host program; so while the queue stays
/// full the send is tried again after pauses of an eighth of the time it has waited so far,
/// at least 10 us and at most 5 ms (with the thread's timer slack lowered to 1 us meanwhile,
/// see [`FineTimer`](crate::os::process::FineTimer)). A relay that is only busy keeps getting
/// work within microseconds of making room (its queue is refilled about as soon as with a
/// blocking `msgsnd`), while a stalled one costs about 200 tries per second and blocked
/// thread: never a busy loop. With `MIPC_SEND_TIMEOUT_MS=-1` and no `deadline` it blocks in
/// `msgsnd` as the original library did.
///
/// # Errors
/// [`MipcError::Timeout`] when `deadline` came first; [`MipcError::RelayStalled`] when the
/// send timeout did (logged once per process on stderr); as [`send_to_relay`] otherwise.
#[inline]
pub fn send_to_relay_until(msg: &[u8], deadline: Option<Instant>) -> Result<()> {
    counted(msg, || send_until_uncounted(msg, deadline))
}

/// [`send_to_relay_until`], not counted.
#[inline(always)]
fn send_until_uncounted(msg: &[u8], deadline: Option<Instant>) -> Result<()> {
    match try_send_to_relay(msg) {
        Err(MipcError::DestinationBusy) => send_when_room(msg, deadline),
        other => other,
    }
}

/// The rest of [`send_to_relay_until`] once the root queue was found full.
#[cold]
fn send_when_room(msg: &[u8], deadline: Option<Instant>) -> Result<()> {
    let start = Instant::now();
    let stall = config::send_timeout().map(|d| start + d);
    let limit = match (deadline, stall) {
        (None, None) => return send_uncounted(msg, false),
        (Some(d), Some(s)) => d.min(s),
        (d, s) => d.or(s).unwrap_or(start),
    };
    let _fine = crate::os::process::FineTimer::new();
    loop {
        let now = Instant::now();
        if now >= limit {
            if deadline.is_some_and(|d| d <= limit) && stall.is_none_or(|s| s > limit) {
                return Err(MipcError::Timeout);
            }
            let e = MipcError::RelayStalled("its root queue stayed full for MIPC_SEND_TIMEOUT_MS");
            log_stall_once(&e, start.elapsed());
            return Err(e);
        }
        let pause = ((now - start) / 8).clamp(FULL_FIRST_PAUSE, FULL_MAX_PAUSE);
        crate::os::process::nap(pause.min(limit - now));
        match send_uncounted(msg, true) {
            Err(MipcError::DestinationBusy) => {}
            other => return other,
        }
    }
}

/// Sends to the relay, bounded by `MIPC_SEND_TIMEOUT_MS` only (async messages, answers,
/// registrations): [`send_to_relay_until`] without a deadline of its own.
///
/// # Errors
/// As [`send_to_relay_until`].
#[link_section = ".text.mipc_hot.both"]
pub fn send_to_relay_bounded(msg: &[u8]) -> Result<()> {
    send_to_relay_until(msg, None)
}

/// Writes one line on stderr the first time this process finds the relay stalled; later
/// stalls only return their error (a stalled relay must not flood the daemons' logs).
pub(crate) fn log_stall_once(e: &MipcError, waited: Duration) {
    static LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !LOGGED.swap(true, Ordering::Relaxed) {
        crate::os::process::no_cancel(|| {
            eprintln!(
                "libmipc[{}]: {e} after {} ms; sends give up instead of hanging \
                 (MIPC_SEND_TIMEOUT_MS; logged once per process)",
                crate::os::getpid(),
                waited.as_millis()
            )
        });
    }
}

/// What the relay's root queue shows about its reader, after a request (a greeting, a control
/// link's wait) went unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RootReader {
    /// No message waits there (or the queue cannot be read): the relay took everything,
    /// the request included, and did not answer it (a legacy relay that does not greet).
    Idle,
    /// Messages wait there and the relay reads: it is behind (a burst, a boot where every
    /// daemon registers at once), and the request may still wait behind others.
    Reading,
    /// Messages wait there and their last reader is stopped (SIGSTOP, a debugger): give up.
    Stopped,
    /// Messages wait there and nothing was read since the request: the relay is stalled,
    /// far behind, or dead with its queue left.
    Unread,
}

/// What the relay's root queue shows, judged after a request sent at `sent` (seconds of
/// [`coarse_wall_secs`](crate::os::process::coarse_wall_secs), the clock of `msg_rtime`)
/// went unanswered (see [`RootReader`]). Telling a read of `sent`'s own second from an older
/// one takes looking on into the next second; that look ends by `until` if given (as
/// [`RootReader::Unread`]: nothing seen read by then).
pub(crate) fn root_reader(sent: i64, until: Option<Instant>) -> RootReader {
    let Some((root, st)) = root().ok().and_then(|r| Some((r, sysv::stat(r).ok()?))) else {
        return RootReader::Idle;
    };
    if st.messages == 0 {
        return RootReader::Idle;
    }
    if st.last_receiver > 0 && crate::os::process::is_stopped(st.last_receiver) {
        return RootReader::Stopped;
    }
    match st.last_receive.cmp(&sent) {
        std::cmp::Ordering::Less => RootReader::Unread,
        std::cmp::Ordering::Greater => RootReader::Reading,
        // A read stamped with the greeting's own second may have come before the greeting
        // (msg_rtime counts whole seconds): a relay killed right after a read looked like a
        // legacy one here, and the daemon went on with the legacy wire.
        std::cmp::Ordering::Equal => reads_after(root, st.messages, sent, until),
    }
}

/// Whether `sent` (a message's `mtype` and `mtext`, as sent) still waits on the relay's root
/// queue, looked at without taking anything off (`MSG_COPY`). `None` when the kernel cannot
/// tell (no `MSG_COPY`, no read permission on the queue).
///
/// The queue is read from its newest message down: the relay takes messages from the front,
/// which moves the rest towards it, so a message that stays queued is never skipped.
pub(crate) fn still_queued(sent: &[u8]) -> Option<bool> {
    let root = root().ok()?;
    let n = sysv::stat(root).ok()?.messages as usize;
    // Room for any message: a copy fails (EINVAL) where the message is larger than the buffer,
    // whatever MSG_NOERROR says.
    let mut buf = vec![0u8; MTYPE_LEN + PEEK_ROOM];
    for index in (0..n).rev() {
        match sysv::peek(root, &mut buf, index) {
            Ok(len) if MTYPE_LEN + len == sent.len() && buf[..sent.len()] == *sent => {
                return Some(true)
            }
            Ok(_) | Err(QueueError::Empty) => {}
            Err(_) => return None,
        }
    }
    Some(false)
}

/// The largest message [`still_queued`] can look at: the most a sane `kernel.msgmax` allows.
const PEEK_ROOM: usize = 65536;

/// How long [`reads_after`] looks on into the next second before it calls the queue unread.
const NEXT_SECOND_LOOK: Duration = Duration::from_millis(20);

/// Looks at the root queue every few milliseconds until the second `sent` is over (or
/// `until`): a reader shows by taking messages off (the count falls; only the relay reads the
/// root queue) or by a read stamped with a later second, and then this returns at once
/// ([`RootReader::Idle`] if the queue emptied, else [`RootReader::Reading`]). Nothing of the
/// kind by [`NEXT_SECOND_LOOK`] into the next second, or by `until`: [`RootReader::Unread`].
fn reads_after(root: QueueId, mut messages: u64, sent: i64, until: Option<Instant>) -> RootReader {
    let start = Instant::now();
    let mut turned: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let Some(left) = until.map_or(Some(Duration::MAX), |u| u.checked_duration_since(now))
        else {
            return RootReader::Unread;
        };
        crate::os::process::nap(left.min(Duration::from_millis(5)));
        let Ok(st) = sysv::stat(root) else {
            return RootReader::Idle;
        };
        if st.messages == 0 {
            return RootReader::Idle;
        }
        if st.messages < messages || st.last_receive > sent {
            return RootReader::Reading;
        }
        messages = st.messages;
        let now = Instant::now();
        if until.is_some_and(|u| now >= u) {
            return RootReader::Unread;
        }
        if crate::os::process::coarse_wall_secs() > sent {
            let since = *turned.get_or_insert(now);
            if now - since >= NEXT_SECOND_LOOK {
                return RootReader::Unread;
            }
        } else if now - start > Duration::from_millis(1500) {
            // The clock did not move on (stepped back): judge by what was seen.
            return RootReader::Unread;
        }
    }
}

/// How long [`wait_for_next_relay`] waits for a stopping relay's root queue to go (a clean
/// stop takes milliseconds); a queue still there after it is used as it is (the relay was
/// killed during its stop, and a new one would take the same queue over).
const OLD_ROOT_GONE_WAIT: Duration = Duration::from_secs(1);

/// Waits, after the relay said it is stopping (a clean stop: it removes its root queue as it
/// exits), until that queue is gone (at most [`OLD_ROOT_GONE_WAIT`]) and then until a relay's
/// root queue exists, up to `limit` (`None`: forever), looking as [`wait_for_relay`] does.
///
/// # Errors
/// [`MipcError::RelayUnavailable`] when `limit` passed first.
pub(crate) fn wait_for_next_relay(limit: Option<Duration>) -> Result<QueueId> {
    let start = Instant::now();
    if let Ok(old) = root() {
        let mut pause = Duration::from_millis(1);
        while sysv::stat(old).is_ok() && start.elapsed() < OLD_ROOT_GONE_WAIT {
            if limit.is_some_and(|l| start.elapsed() >= l) {
                return Err(MipcError::RelayUnavailable);
            }
            crate::os::process::nap(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
    ROOT.store(-1, Ordering::Relaxed);
    wait_for_relay(limit.map(|l| l.saturating_sub(start.elapsed())))
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
        crate::os::process::nap(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
