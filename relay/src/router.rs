//! The relay's state machine: the name table and what to do with each message. It does no
//! I/O of its own; every queue or process question goes through a [`Port`], so tests and
//! fuzzers can drive it with an in-memory one.

use crate::backlog::{self, Backlogs, Parked};
use mipc::error::RelayErrorCode;
use mipc::sysv::{QueueError, QueueId};
use mipc::wire::control::{
    ErrorAnswer, Hello, HelloAnswer, Lookup, LookupAnswer, Pong, HELLO_VERSION,
};
use mipc::wire::{self, CallTag, Control, Envelope, Header, Kind, MsgBuf, ThreadInfo, WireError};
use mipc::MipcName;
use std::collections::HashMap;
use std::fmt;
use std::os::raw::c_long;
use std::time::{Duration, Instant};

/// Default most entries the relay keeps (a flood of registrations cannot grow it further).
pub const DEFAULT_MAX_ENTRIES: usize = 4096;

/// What the router needs from the world: queues and processes.
pub trait Port {
    /// Sends a whole message (`mtype` first) to `q` without blocking.
    ///
    /// # Errors
    /// [`QueueError::Full`], [`QueueError::Gone`], and the rest of [`QueueError`].
    fn send(&mut self, q: QueueId, msg: &[u8]) -> Result<(), QueueError>;
    /// Whether queue `q` exists.
    fn queue_exists(&mut self, q: QueueId) -> bool;
    /// Whether process `pid` is alive.
    fn pid_alive(&mut self, pid: i32) -> bool;
    /// Removes queue `q` (of a dead process).
    fn remove_queue(&mut self, q: QueueId);
    /// Starts watching `pid` for its death; [`Router::peer_died`] is called when it dies.
    fn watch(&mut self, pid: i32);
    /// The process that last received from queue `q`, if any did (a legacy entry's owner:
    /// only the owner reads its queue).
    fn last_receiver(&mut self, q: QueueId) -> Option<i32>;
    /// `dst` just got a backlog: start sending it ([`Router::next_parked_batch`]) with blocking
    /// sends, apart from the relay's receive loop.
    fn drain(&mut self, dst: MipcName);
    /// `caller`'s pending call changed (or ended, with `None`): keep it where a relay
    /// started after this one finds it (`pending.rs`).
    fn pending_changed(&mut self, caller: &MipcName, p: Option<&Pending>);
}

/// A sync call the relay forwarded and whose answer it has not seen yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// Who was called.
    pub callee: MipcName,
    /// The request's SysV type (the api id), which the caller waits on.
    pub mtype: c_long,
    /// The request's api id.
    pub api: u32,
    /// The request's tag.
    pub tag: CallTag,
    /// When the caller gives up (`None`: never).
    pub until: Option<Instant>,
}

/// One registered entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its queue.
    pub queue: QueueId,
    /// Its process, once it greeted the relay (legacy entries never tell).
    pub pid: Option<i32>,
    /// It greeted the relay: it may receive call tags and error answers.
    pub ext: bool,
    /// Thread id from its NOTICE.
    pub thread_id: u64,
    /// Its outstanding sync call, if any (one per entry: a sync call blocks its thread).
    pub pending: Option<Pending>,
}

/// What the router did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Forwarded to the destination's queue.
    Forwarded,
    /// The destination's queue is full: kept in its backlog, to be sent when there is room.
    Parked,
    /// A NOTICE registered an entry.
    Registered(MipcName, QueueId),
    /// A NOTICE unregistered an entry.
    Unregistered(MipcName),
    /// A HELLO was answered.
    Greeted(MipcName, i32),
    /// A PING to the relay was answered.
    Ponged,
    /// A LOOKUP (direct path) was answered.
    LookedUp,
}

/// Why the router did not deliver a message (each becomes one log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// Bytes that break SPEC §2.
    Malformed(WireError),
    /// A NOTICE whose payload is not a valid `MIPC_THREAD_INFO_T`, or names another entry.
    BadNotice(MipcName),
    /// A NOTICE for a queue that does not exist.
    NoQueue(MipcName, QueueId),
    /// A name held by another live entry.
    NameInUse(MipcName),
    /// An unregister NOTICE from someone who does not own the entry.
    NotOwner(MipcName),
    /// A registration naming the queue of another live entry.
    QueueInUse(MipcName, MipcName),
    /// The name table is full.
    TableFull(MipcName),
    /// A control type this relay does not handle, or one that may not be forwarded.
    Control(u32, MipcName),
    /// A message to a name nobody registered.
    NoSuchDestination(MipcName, MipcName),
    /// The destination's queue is full.
    Busy(MipcName),
    /// The destination's queue is gone; the entry was dropped.
    Gone(MipcName),
    /// The destination would close a cycle of waiting callers.
    Deadlock(MipcName, MipcName),
    /// Sending failed otherwise.
    Queue(MipcName, QueueError),
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::Malformed(e) => write!(f, "malformed message dropped: {e}"),
            Rejected::BadNotice(n) => write!(f, "bad NOTICE from {n} dropped"),
            Rejected::NoQueue(n, q) => {
                write!(f, "NOTICE for {n} names queue {} which does not exist", q.0)
            }
            Rejected::NameInUse(n) => write!(
                f,
                "registration of {n} refused: name in use by a live entry"
            ),
            Rejected::NotOwner(n) => write!(f, "unregistration of {n} refused: not from its owner"),
            Rejected::QueueInUse(n, holder) => {
                write!(
                    f,
                    "registration of {n} refused: its queue belongs to {holder}"
                )
            }
            Rejected::TableFull(n) => write!(f, "registration of {n} refused: name table full"),
            Rejected::Control(t, src) => write!(f, "control type {t:#x} from {src} dropped"),
            Rejected::NoSuchDestination(src, dst) => {
                write!(f, "{src} -> {dst}: no such destination")
            }
            Rejected::Busy(dst) => write!(f, "{dst}: queue full, message not delivered"),
            Rejected::Gone(dst) => write!(f, "{dst}: queue gone, entry dropped"),
            Rejected::Deadlock(src, dst) => {
                write!(f, "{src} -> {dst}: call refused, it would deadlock")
            }
            Rejected::Queue(dst, e) => write!(f, "{dst}: {e}"),
        }
    }
}

/// Counters for diagnostics and the future `mipc` tool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages forwarded.
    pub forwarded: u64,
    /// Messages not delivered.
    pub rejected: u64,
    /// Error answers sent to callers.
    pub errors_sent: u64,
    /// Messages that waited in a backlog for room on a full queue.
    pub parked: u64,
}

/// The name table and routing rules.
pub struct Router {
    entries: HashMap<MipcName, Entry>,
    max_entries: usize,
    reply: Box<MsgBuf>,
    stats: Stats,
    changes: Changes,
    backlogs: Backlogs,
    /// Queues of unregistered entries with a known process, removed if that process dies
    /// while they still exist (a daemon killed in the middle of its exit), oldest first.
    retired: std::collections::VecDeque<(i32, QueueId)>,
}

/// What changed in the table since it was last saved (`state.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Save the whole table (after a restore, or too many changes to list).
    pub rewrite: bool,
    /// Names whose entry was added, changed or removed.
    pub names: Vec<MipcName>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        !self.rewrite && self.names.is_empty()
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("entries", &self.entries.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Default for Router {
    fn default() -> Self {
        Router::new(DEFAULT_MAX_ENTRIES)
    }
}

impl Router {
    /// An empty table that holds at most `max_entries` names.
    pub fn new(max_entries: usize) -> Router {
        Router {
            entries: HashMap::new(),
            max_entries,
            reply: MsgBuf::boxed(),
            stats: Stats::default(),
            changes: Changes::default(),
            backlogs: Backlogs::default(),
            retired: std::collections::VecDeque::new(),
        }
    }

    /// The registered entries.
    pub fn entries(&self) -> impl Iterator<Item = (&MipcName, &Entry)> {
        self.entries.iter()
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &MipcName) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// What changed in the table since the last call (to be saved).
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    fn changed(&mut self, name: MipcName) {
        if self.changes.names.len() < self.max_entries {
            self.changes.names.push(name);
        } else {
            self.changes.rewrite = true;
        }
    }

    /// Takes back entries saved by an earlier relay of this bus. An entry whose queue is gone
    /// is left out; one whose process is known to be dead is left out and its queue removed.
    /// Returns how many entries were taken back, and which were left out and why.
    pub fn restore(
        &mut self,
        port: &mut impl Port,
        saved: Vec<(MipcName, Entry)>,
    ) -> (usize, Vec<(MipcName, &'static str)>) {
        let mut kept = 0;
        let mut left_out = Vec::new();
        for (name, entry) in saved.into_iter().take(self.max_entries) {
            if !port.queue_exists(entry.queue) {
                left_out.push((name, "its queue is gone"));
                continue;
            }
            if let Some(pid) = entry.pid {
                if !port.pid_alive(pid) {
                    port.remove_queue(entry.queue);
                    left_out.push((name, "its process is dead"));
                    continue;
                }
                port.watch(pid);
            }
            self.entries.insert(name, entry);
            kept += 1;
        }
        self.changes.rewrite = true;
        (kept, left_out)
    }

    /// Takes back the pending calls an earlier relay of this bus left (`pending.rs`), for
    /// callers that are still registered. A call whose callee did not come back (its process
    /// died while no relay ran) is failed at once with "peer died".
    pub fn restore_pending(
        &mut self,
        port: &mut impl Port,
        calls: Vec<(MipcName, Pending)>,
    ) -> usize {
        let mut kept = 0;
        for (caller, p) in calls {
            let callee_back = self.entries.contains_key(&p.callee);
            match self.entries.get_mut(&caller) {
                Some(e) if callee_back => {
                    e.pending = Some(p);
                    kept += 1;
                }
                Some(e) => {
                    port.pending_changed(&caller, None);
                    if e.ext {
                        let queue = e.queue;
                        self.fail_call(port, &caller, queue, &p, RelayErrorCode::PeerDied);
                    }
                }
                None => port.pending_changed(&caller, None),
            }
        }
        kept
    }

    /// Handles one message received on the root queue. `msg` is sent on from where it lies
    /// (no copy); `now` dates sync calls for the deadlock check.
    ///
    /// # Errors
    /// [`Rejected`] says why the message was not delivered.
    pub fn handle(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        now: Instant,
    ) -> Result<Handled, Rejected> {
        let out = self.route(port, msg, now);
        match out {
            Ok(Handled::Forwarded) => self.stats.forwarded += 1,
            Ok(Handled::Parked) => self.stats.parked += 1,
            Ok(_) => {}
            Err(_) => self.stats.rejected += 1,
        }
        out
    }

    fn route(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        now: Instant,
    ) -> Result<Handled, Rejected> {
        let hdr = msg.decode().map_err(Rejected::Malformed)?;
        if hdr.dst.is_relay() {
            return self.control(port, msg, &hdr);
        }
        if wire::is_control(hdr.msg_type) && hdr.msg_type != Kind::Ping.msg_type() {
            return Err(Rejected::Control(hdr.msg_type, hdr.src));
        }
        let Some(dst) = self.entries.get(&hdr.dst) else {
            self.fail(port, msg, &hdr, RelayErrorCode::NoSuchDestination);
            return Err(Rejected::NoSuchDestination(hdr.src, hdr.dst));
        };
        let (queue, dst_ext) = (dst.queue, dst.ext);
        let call = hdr.tag.filter(|t| !t.is_reply() && hdr.sync_flag != 0);
        if call.is_some() && self.would_deadlock(&hdr.src, &hdr.dst, now) {
            self.fail(port, msg, &hdr, RelayErrorCode::Deadlock);
            return Err(Rejected::Deadlock(hdr.src, hdr.dst));
        }
        let bytes = if dst_ext {
            msg.as_sendable()
        } else {
            msg.as_sendable_untagged(&hdr)
        };
        // Recorded before the send: once the server has the request, the call is pending
        // (also for a relay started after this one is killed right after the send).
        self.note_delivery(port, &hdr, msg.mtype(), call, now);
        if self.backlogs.has(&hdr.dst) {
            // Behind messages already waiting for room: keep the order.
            return self.park(port, msg, &hdr, queue, bytes, call, now);
        }
        match port.send(queue, bytes) {
            Ok(()) => {
                self.learn_pid(port, &hdr.dst);
                Ok(Handled::Forwarded)
            }
            Err(QueueError::Full) => self.park(port, msg, &hdr, queue, bytes, call, now),
            Err(QueueError::Gone) => {
                self.forget_call(port, &hdr.src, call);
                self.drop_entry(port, &hdr.dst, false);
                self.fail(port, msg, &hdr, RelayErrorCode::PeerDied);
                Err(Rejected::Gone(hdr.dst))
            }
            Err(e) => {
                self.forget_call(port, &hdr.src, call);
                self.fail(port, msg, &hdr, RelayErrorCode::PeerDied);
                Err(Rejected::Queue(hdr.dst, e))
            }
        }
    }

    /// A call recorded as pending could not be delivered: it is not pending after all.
    fn forget_call(&mut self, port: &mut impl Port, caller: &MipcName, call: Option<CallTag>) {
        let Some(tag) = call else { return };
        if let Some(e) = self.entries.get_mut(caller) {
            if e.pending.is_some_and(|p| p.tag == tag) {
                e.pending = None;
                port.pending_changed(caller, None);
            }
        }
    }

    /// Keeps a message for a full destination (`backlog.rs`); past the bounds a sync caller
    /// gets "destination busy" and an async message is dropped.
    #[allow(clippy::too_many_arguments)]
    fn park(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        hdr: &Header,
        queue: QueueId,
        bytes: &[u8],
        call: Option<CallTag>,
        now: Instant,
    ) -> Result<Handled, Rejected> {
        let item = Parked {
            bytes: bytes.to_vec(),
            until: (hdr.sync_flag > 0).then(|| now + Duration::from_millis(hdr.sync_flag as u64)),
            call: call.map(|tag| backlog::Call {
                caller: hdr.src,
                mtype: msg.mtype(),
                api: hdr.msg_type,
                tag,
            }),
        };
        match self.backlogs.park(hdr.dst, queue, item, now) {
            Ok(fresh) => {
                if fresh {
                    port.drain(hdr.dst);
                }
                Ok(Handled::Parked)
            }
            Err(_) => {
                self.forget_call(port, &hdr.src, call);
                self.fail(port, msg, hdr, RelayErrorCode::DestinationBusy);
                Err(Rejected::Busy(hdr.dst))
            }
        }
    }

    /// For the drainer of `dst`: the next parked message and the queue to send it to, or
    /// `None` when the backlog is empty (it is then gone, and the drainer ends). For tests
    /// and the fuzzer; the drainer takes batches ([`Router::next_parked_batch`]).
    #[cfg(any(test, feature = "testing"))]
    pub fn next_parked(&mut self, dst: &MipcName, now: Instant) -> Option<(QueueId, Parked)> {
        self.backlogs.next(dst, now)
    }

    /// For the drainer of `dst`: up to `max` parked messages and the queue to send them to
    /// (one lock for a batch), or `None` when the backlog is empty (it is then gone, and the
    /// drainer ends).
    pub fn next_parked_batch(
        &mut self,
        dst: &MipcName,
        now: Instant,
        max: usize,
    ) -> Option<(QueueId, Vec<Parked>)> {
        self.backlogs.next_batch(dst, now, max)
    }

    /// For the drainer of `dst`: sending `item` to `queue` failed with `err`. A vanished queue
    /// drops the entry (and fails the calls waiting on it); the item's caller gets "peer died".
    pub fn parked_failed(
        &mut self,
        port: &mut impl Port,
        dst: &MipcName,
        queue: QueueId,
        item: Parked,
        err: QueueError,
    ) {
        if err == QueueError::Gone && self.entries.get(dst).is_some_and(|e| e.queue == queue) {
            self.drop_entry(port, dst, false);
        }
        self.fail_parked(port, item, RelayErrorCode::PeerDied);
    }

    /// Tells `caller` (whose queue is `queue`) that its pending call `p` failed with `code`.
    fn fail_call(
        &mut self,
        port: &mut impl Port,
        caller: &MipcName,
        queue: QueueId,
        p: &Pending,
        code: RelayErrorCode,
    ) {
        self.send_error(port, queue, caller, p.mtype, p.api, p.tag, code);
    }

    /// Builds an answer of the relay in its reply buffer.
    fn build_answer<C: Control>(
        &mut self,
        mtype: c_long,
        to: &MipcName,
        answer: &C,
        tag: Option<CallTag>,
    ) {
        let env = Envelope {
            mtype,
            src: &MipcName::RELAY,
            dst: to,
            sync_flag: 0,
            tag,
        };
        self.reply.build_control(env, answer);
    }

    fn fail_parked(&mut self, port: &mut impl Port, item: Parked, code: RelayErrorCode) {
        let Some(c) = item.call else { return };
        let Some(queue) = self
            .entries
            .get(&c.caller)
            .filter(|e| e.ext)
            .map(|e| e.queue)
        else {
            return;
        };
        self.send_error(port, queue, &c.caller, c.mtype, c.api, c.tag, code);
    }

    /// Bytes and messages waiting in backlogs (for tests).
    #[cfg(any(test, feature = "testing"))]
    pub fn backlog(&self) -> (usize, usize) {
        (self.backlogs.bytes(), self.backlogs.items())
    }

    /// A legacy entry never says which process it is; once it has received from its queue,
    /// the queue's last receiver is its owner, and the relay watches that process for death
    /// like any other. Costs one `IPC_STAT` per message until then.
    fn learn_pid(&mut self, port: &mut impl Port, name: &MipcName) {
        let Some(e) = self.entries.get_mut(name).filter(|e| e.pid.is_none()) else {
            return;
        };
        if let Some(pid) = port.last_receiver(e.queue) {
            e.pid = Some(pid);
            port.watch(pid);
            self.changed(*name);
        }
    }

    /// Keeps track of sync calls: a forwarded call is pending for its caller until its answer
    /// passes through.
    fn note_delivery(
        &mut self,
        port: &mut impl Port,
        hdr: &Header,
        mtype: c_long,
        call: Option<CallTag>,
        now: Instant,
    ) {
        if let Some(tag) = call {
            if let Some(src) = self.entries.get_mut(&hdr.src) {
                let until =
                    (hdr.sync_flag > 0).then(|| now + Duration::from_millis(hdr.sync_flag as u64));
                let p = Pending {
                    callee: hdr.dst,
                    mtype,
                    api: hdr.msg_type,
                    tag,
                    until,
                };
                src.pending = Some(p);
                port.pending_changed(&hdr.src, Some(&p));
            }
        } else if let Some(t) = hdr.tag.filter(|t| t.is_reply()) {
            if let Some(caller) = self.entries.get_mut(&hdr.dst) {
                if caller.pending.is_some_and(|p| p.tag.id() == t.id()) {
                    caller.pending = None;
                    port.pending_changed(&hdr.dst, None);
                }
            }
        }
    }

    /// Whether a call from `src` to `dst` closes a cycle: `dst` waits (transitively) on `src`.
    fn would_deadlock(&self, src: &MipcName, dst: &MipcName, now: Instant) -> bool {
        let mut cur = *dst;
        for _ in 0..self.entries.len().min(64) {
            let Some(p) = self.entries.get(&cur).and_then(|e| e.pending) else {
                return false;
            };
            if p.until.is_some_and(|u| u <= now) {
                return false;
            }
            if p.callee == *src {
                return true;
            }
            cur = p.callee;
        }
        false
    }

    /// Tells a caller that its tagged sync call failed (only callers that greeted us know
    /// the ERROR type; a legacy caller waits for its timeout, as it always did).
    fn fail(&mut self, port: &mut impl Port, msg: &MsgBuf, hdr: &Header, code: RelayErrorCode) {
        let Some(tag) = hdr.tag.filter(|t| !t.is_reply()) else {
            return;
        };
        if hdr.sync_flag == 0 {
            return;
        }
        let Some(caller) = self.entries.get(&hdr.src).filter(|e| e.ext) else {
            return;
        };
        let queue = caller.queue;
        self.send_error(port, queue, &hdr.src, msg.mtype(), hdr.msg_type, tag, code);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_error(
        &mut self,
        port: &mut impl Port,
        queue: QueueId,
        to: &MipcName,
        mtype: c_long,
        api: u32,
        tag: CallTag,
        code: RelayErrorCode,
    ) {
        let answer = ErrorAnswer {
            code: code as i32,
            api,
        };
        self.build_answer(mtype, to, &answer, Some(tag.reply()));
        if port.send(queue, self.reply.as_sendable()).is_ok() {
            self.stats.errors_sent += 1;
        }
    }

    fn control(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        hdr: &Header,
    ) -> Result<Handled, Rejected> {
        let payload = wire::payload(msg.mtext(), hdr);
        match Kind::from_msg_type(hdr.msg_type) {
            Some(Kind::Notice) => self.notice(port, hdr, payload),
            Some(Kind::Hello) => self.hello(port, hdr, payload),
            Some(Kind::Ping) => self.pong(port, msg, hdr),
            Some(Kind::Lookup) => self.lookup(port, hdr, payload),
            Some(Kind::Error | Kind::Wake) | None => {
                let other = hdr.msg_type;
                // A caller that waits must not wait for nothing.
                self.fail(port, msg, hdr, RelayErrorCode::NotServed);
                Err(Rejected::Control(other, hdr.src))
            }
        }
    }

    fn notice(
        &mut self,
        port: &mut impl Port,
        hdr: &Header,
        payload: &[u8],
    ) -> Result<Handled, Rejected> {
        let info = ThreadInfo::get(payload).ok_or(Rejected::BadNotice(hdr.src))?;
        if info.name != hdr.src || info.mqd < 0 {
            return Err(Rejected::BadNotice(hdr.src));
        }
        let queue = QueueId(info.mqd);
        if !info.hold {
            return match self.entries.get(&info.name) {
                Some(e) if e.queue == queue => {
                    if let Some(pid) = e.pid {
                        if self.retired.len() >= self.max_entries {
                            self.retired.pop_front();
                        }
                        self.retired.push_back((pid, queue));
                    }
                    self.drop_entry(port, &info.name, false);
                    Ok(Handled::Unregistered(info.name))
                }
                Some(_) => Err(Rejected::NotOwner(info.name)),
                None => Ok(Handled::Unregistered(info.name)),
            };
        }
        if !port.queue_exists(queue) {
            return Err(Rejected::NoQueue(info.name, queue));
        }
        self.register(port, info.name, queue, info.thread_id, None)?;
        Ok(Handled::Registered(info.name, queue))
    }

    /// Adds or renews an entry. A name held by another queue is taken over only when its
    /// holder is dead; a legacy holder (no pid known) cannot prove it lives, so a restarted
    /// legacy daemon can take its name back, as it could with the original relay.
    fn register(
        &mut self,
        port: &mut impl Port,
        name: MipcName,
        queue: QueueId,
        thread_id: u64,
        pid: Option<i32>,
    ) -> Result<(), Rejected> {
        // A queue that a live mipc-rs entry owns under another name cannot be claimed.
        let claimed = self
            .entries
            .iter()
            .find(|(n, e)| **n != name && e.queue == queue)
            .and_then(|(n, e)| e.pid.map(|p| (*n, p)));
        if let Some((holder, pid)) = claimed {
            if port.pid_alive(pid) {
                return Err(Rejected::QueueInUse(name, holder));
            }
        }
        if let Some(old) = self.entries.get_mut(&name) {
            if old.queue == queue {
                old.thread_id = thread_id;
                return Ok(());
            }
            let holder_alive = match old.pid {
                Some(p) => port.pid_alive(p) && port.queue_exists(old.queue),
                None => false,
            };
            if holder_alive {
                return Err(Rejected::NameInUse(name));
            }
            // Remove the old queue only when its process is known to be dead: a legacy
            // holder may still be blocked on it.
            let known_dead = old.pid.is_some();
            self.drop_entry(port, &name, known_dead);
        } else if self.entries.len() >= self.max_entries {
            return Err(Rejected::TableFull(name));
        }
        self.entries.insert(
            name,
            Entry {
                queue,
                pid,
                ext: false,
                thread_id,
                pending: None,
            },
        );
        self.changed(name);
        Ok(())
    }

    fn hello(
        &mut self,
        port: &mut impl Port,
        hdr: &Header,
        payload: &[u8],
    ) -> Result<Handled, Rejected> {
        let Some(Hello { pid, mqd, .. }) = Hello::get(payload) else {
            return Err(Rejected::BadNotice(hdr.src));
        };
        if pid <= 0 || mqd < 0 {
            return Err(Rejected::BadNotice(hdr.src));
        }
        let queue = QueueId(mqd);
        // A HELLO never gets an answer written onto a queue that another entry owns, nor
        // onto a live entry's queue in a process other than its own: the answer would land
        // in that daemon's receive loop.
        if let Some((holder, _)) = self
            .entries
            .iter()
            .find(|(n, e)| **n != hdr.src && e.queue == queue)
        {
            return Err(Rejected::QueueInUse(hdr.src, *holder));
        }
        let status = match self.entries.get_mut(&hdr.src) {
            Some(e) if e.queue == queue => match e.pid {
                Some(p) if p != pid => return Err(Rejected::NameInUse(hdr.src)),
                _ => {
                    e.ext = true;
                    if e.pid.is_none() {
                        e.pid = Some(pid);
                        port.watch(pid);
                    }
                    self.changed(hdr.src);
                    0
                }
            },
            Some(_) => RelayErrorCode::NameInUse as i32,
            None => {
                // Its NOTICE was lost or refused for a dead holder meanwhile: register now.
                if !port.queue_exists(queue) {
                    return Err(Rejected::NoQueue(hdr.src, queue));
                }
                match self.register(port, hdr.src, queue, 0, Some(pid)) {
                    Ok(()) => {
                        if let Some(e) = self.entries.get_mut(&hdr.src) {
                            e.ext = true;
                        }
                        port.watch(pid);
                        0
                    }
                    Err(Rejected::TableFull(_)) => RelayErrorCode::TableFull as i32,
                    Err(r @ Rejected::QueueInUse(..)) => return Err(r),
                    Err(_) => RelayErrorCode::NameInUse as i32,
                }
            }
        };
        let answer = HelloAnswer {
            version: HELLO_VERSION,
            status,
        };
        self.build_answer(Kind::Hello.mtype(), &hdr.src, &answer, None);
        let _ = port.send(queue, self.reply.as_sendable());
        match status {
            0 => Ok(Handled::Greeted(hdr.src, pid)),
            s if s == RelayErrorCode::TableFull as i32 => Err(Rejected::TableFull(hdr.src)),
            _ => Err(Rejected::NameInUse(hdr.src)),
        }
    }

    /// The direct path (docs/PROTOCOL.md §7): tells a greeted caller the queue and process
    /// of a destination it may send to directly. Only a greeted entry with a known process
    /// and no backlog qualifies; the answer follows every earlier message of the caller, so
    /// a direct message never overtakes one that went through the relay.
    fn lookup(
        &mut self,
        port: &mut impl Port,
        hdr: &Header,
        payload: &[u8],
    ) -> Result<Handled, Rejected> {
        let refuse = || Rejected::Control(Kind::Lookup.msg_type(), hdr.src);
        let Some(caller) = self.entries.get(&hdr.src).filter(|e| e.ext) else {
            return Err(refuse());
        };
        let Some(tag) = hdr.tag.filter(|t| !t.is_reply()) else {
            return Err(refuse());
        };
        let caller_queue = caller.queue;
        let target = Lookup::get(payload).map(|l| l.name);
        let found = target.and_then(|n| self.entries.get(&n).map(|e| (n, e)));
        let (status, queue, pid) = match found {
            Some((n, e)) if e.ext && !self.backlogs.has(&n) => match e.pid {
                Some(pid) => (0, e.queue.0, pid),
                None => (RelayErrorCode::BadMessage as i32, -1, 0),
            },
            Some(_) => (RelayErrorCode::DestinationBusy as i32, -1, 0),
            None => (RelayErrorCode::NoSuchDestination as i32, -1, 0),
        };
        let answer = LookupAnswer { status, queue, pid };
        self.build_answer(Kind::Lookup.mtype(), &hdr.src, &answer, Some(tag.reply()));
        match port.send(caller_queue, self.reply.as_sendable()) {
            Ok(()) => Ok(Handled::LookedUp),
            Err(e) => Err(Rejected::Queue(hdr.src, e)),
        }
    }

    fn pong(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        hdr: &Header,
    ) -> Result<Handled, Rejected> {
        // Only a request is answered: a PING with no answer wanted, or one that is itself an
        // answer (a daemon answering a ping sent in its name), would bounce forever.
        if hdr.sync_flag == 0 || hdr.tag.is_some_and(|t| t.is_reply()) {
            return Err(Rejected::Control(Kind::Ping.msg_type(), hdr.src));
        }
        let Some(caller) = self.entries.get(&hdr.src) else {
            return Err(Rejected::NoSuchDestination(MipcName::RELAY, hdr.src));
        };
        let (queue, ext) = (caller.queue, caller.ext);
        let tag = hdr.tag.filter(|t| ext && !t.is_reply()).map(CallTag::reply);
        self.build_answer(msg.mtype(), &hdr.src, &Pong { result: 0 }, tag);
        match port.send(queue, self.reply.as_sendable()) {
            Ok(()) => Ok(Handled::Ponged),
            Err(e) => Err(Rejected::Queue(hdr.src, e)),
        }
    }

    /// Removes an entry; callers waiting on it get "peer died". With `remove_queue`, its
    /// queue is removed too (its process is dead, nobody else will).
    fn drop_entry(&mut self, port: &mut impl Port, name: &MipcName, remove_queue: bool) {
        let Some(gone) = self.entries.remove(name) else {
            return;
        };
        self.changed(*name);
        if gone.pending.is_some() {
            port.pending_changed(name, None);
        }
        if remove_queue {
            port.remove_queue(gone.queue);
        }
        for item in self.backlogs.remove(name) {
            self.fail_parked(port, item, RelayErrorCode::PeerDied);
        }
        let waiting: Vec<(MipcName, QueueId, Pending)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.ext)
            .filter_map(|(n, e)| {
                e.pending
                    .filter(|p| p.callee == *name)
                    .map(|p| (*n, e.queue, p))
            })
            .collect();
        for (caller, queue, p) in waiting {
            if let Some(e) = self.entries.get_mut(&caller) {
                e.pending = None;
            }
            port.pending_changed(&caller, None);
            self.fail_call(port, &caller, queue, &p, RelayErrorCode::PeerDied);
        }
    }

    /// Process `pid` died: drops its entries, removes their queues, and fails the calls
    /// waiting on them. Returns the names dropped.
    pub fn peer_died(&mut self, port: &mut impl Port, pid: i32) -> Vec<MipcName> {
        self.retired.retain(|&(p, q)| {
            if p == pid {
                port.remove_queue(q); // gone already unless its owner died mid-exit
            }
            p != pid
        });
        let names: Vec<MipcName> = self
            .entries
            .iter()
            .filter(|(_, e)| e.pid == Some(pid))
            .map(|(n, _)| *n)
            .collect();
        for n in &names {
            self.drop_entry(port, n, true);
        }
        names
    }

    /// On shutdown: drops entries whose queue is gone, and removes the queues of entries
    /// whose process is known to be dead.
    pub fn sweep_dead(&mut self, port: &mut impl Port) -> usize {
        let vanished: Vec<MipcName> = self
            .entries
            .iter()
            .filter(|(_, e)| !port.queue_exists(e.queue))
            .map(|(n, _)| *n)
            .collect();
        for n in &vanished {
            self.drop_entry(port, n, false);
        }
        let retired: Vec<(i32, QueueId)> = self.retired.drain(..).collect();
        for (pid, q) in retired {
            if port.pid_alive(pid) {
                self.retired.push_back((pid, q));
            } else {
                port.remove_queue(q);
            }
        }
        let unknown: Vec<MipcName> = self
            .entries
            .iter()
            .filter(|(_, e)| e.pid.is_none())
            .map(|(n, _)| *n)
            .collect();
        for n in unknown {
            self.learn_pid(port, &n);
        }
        let dead: Vec<i32> = self
            .entries
            .values()
            .filter_map(|e| e.pid)
            .filter(|&p| !port.pid_alive(p))
            .collect();
        dead.iter().map(|&p| self.peer_died(port, p).len()).sum()
    }
}

#[cfg(test)]
mod tests;
