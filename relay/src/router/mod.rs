//! The relay's state machine: the name table and what to do with each message. It does no
//! I/O of its own; every queue or process question goes through a [`Port`], so tests and
//! fuzzers can drive it with an in-memory one.
//!
//! By concept: `route.rs` (an ordinary message's way to its destination), `table.rs` (the
//! name table and the processes behind it), `control.rs` (messages to the relay itself),
//! `calls.rs` (pending sync calls, deadlock detection, error answers), `answer_back.rs` (the
//! leave to answer a call straight to its caller, and the word that it was), `parking.rs` (the
//! backlog of a full queue), `gather.rs` (one-way requests read in a row for one entry, sent
//! in one batch), `changes.rs` (what to save), `events.rs` (subscriptions, and the fan-out of
//! events and broadcasts) and `subscriptions.rs` (who subscribed to what).

mod answer_back;
mod calls;
mod changes;
mod control;
mod entries;
mod events;
mod gather;
mod parking;
mod route;
mod subscriptions;
mod table;
mod tooling;

pub use answer_back::{answering_back, set_answering_back, Offering, SHARED_CALLS};
pub use gather::{gathering, set_gathering};
pub use parking::{Drained, HAND_OFF_AFTER};
pub use tooling::Seen;

use crate::backlog::Backlogs;
use crate::monitor::Monitors;
use crate::tools::{Counters, Snapshots, Waiters};
use mipc::error::RelayErrorCode;
use mipc::events::{EventName, EventPattern};
use mipc::sysv::{QueueError, QueueId};
use mipc::wire::{CallTag, Control, Envelope, MsgBuf, WireError};
use mipc::MipcName;
use std::fmt;
use std::os::raw::c_long;
use std::time::Instant;

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
    /// Whether process `pid` has exited (a zombie counts); checks a queued death notice.
    fn pid_exited(&mut self, pid: i32) -> bool {
        !self.pid_alive(pid)
    }
    /// Removes queue `q` (of a dead process).
    fn remove_queue(&mut self, q: QueueId);
    /// Starts watching `pid` for its death; [`Router::peer_died`] is called when it dies.
    fn watch(&mut self, pid: i32);
    /// The process that last received from queue `q`, if any did (a legacy entry's owner:
    /// only the owner reads its queue).
    fn last_receiver(&mut self, q: QueueId) -> Option<i32>;
    /// `dst` has a backlog that the receive loop hands off ([`Router::hand_off_backlogs`]):
    /// give it to the drainer, apart from the loop, which sends it as room frees
    /// ([`Router::drain_parked`]) until it is empty.
    fn drain(&mut self, dst: MipcName);
    /// `caller`'s pending call changed (or ended, with `None`): keep it where a relay
    /// started after this one finds it (`pending.rs`), in place `slot` (the caller's slot
    /// in the table, below its most entries). Not called once the router keeps the calls in
    /// a store of its own ([`Router::keep_calls_in`]), as `mipc_main` does: only the tests'
    /// in-memory port records them.
    fn pending_changed(&mut self, _slot: usize, _caller: &MipcName, _p: Option<&Pending>) {}
    /// Bytes queue `q` has room for now and holds in all, if that can be read (a
    /// backlog's batches, `backlog::Outlet::room`).
    fn queue_room(&mut self, _q: QueueId) -> Option<(usize, usize)> {
        None
    }
    /// Messages and bytes waiting in queue `q` (for `mipc list`), if it can be read.
    fn queue_stat(&mut self, _q: QueueId) -> Option<(u64, u64)> {
        None
    }
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

/// When a message is handled: a given time (tests, fuzzers), or the clock's, read when first
/// needed. Most forwarded messages need none: only deadlines (timed calls, parked messages,
/// the deadlock check over timed calls) and the relay's own messages do.
#[derive(Debug, Clone)]
pub struct Now(std::cell::Cell<Option<Instant>>);

impl Now {
    /// The clock's time, read on first use.
    pub fn lazy() -> Now {
        Now(std::cell::Cell::new(None))
    }

    /// The time.
    pub fn get(&self) -> Instant {
        match self.0.get() {
            Some(t) => t,
            None => {
                let t = Instant::now();
                self.0.set(Some(t));
                t
            }
        }
    }
}

impl crate::backlog::Clock for &Now {
    fn now(self) -> Instant {
        self.get()
    }
}

impl From<Instant> for Now {
    fn from(t: Instant) -> Now {
        Now(std::cell::Cell::new(Some(t)))
    }
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
    /// It asked (HELLO flag) for a sender trailer on what it receives.
    pub sender: bool,
    /// It takes batches apart (HELLO flag): several parked one-way requests may go to it
    /// in one message (`mipc::wire::batch`).
    pub batch: bool,
    /// It answers a request straight to its caller's queue when the relay offers it (HELLO
    /// flag, docs/PROTOCOL.md §11).
    pub answer_back: bool,
    /// Messages from this entry read off the root queue since its HELLO: the stamp of an
    /// offer to answer straight back (§11).
    pub reads: u32,
    /// Thread id from its NOTICE.
    pub thread_id: u64,
    /// Its outstanding sync call, if any (one per entry: a sync call blocks its thread).
    pub pending: Option<Pending>,
    /// When it registered and its traffic (`mipc list`).
    pub seen: Seen,
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
    /// A queued death notice dropped the entries of a process (none: it had none left).
    Died(i32, Vec<MipcName>),
    /// A HELLO was answered.
    Greeted(MipcName, i32),
    /// A PING to the relay was answered.
    Ponged,
    /// A LOOKUP (direct path) was answered.
    LookedUp,
    /// An ANSWERED ended this many pending calls (docs/PROTOCOL.md §11).
    AnsweredBack(u32),
    /// A SUBSCRIBE (`on`) or UNSUBSCRIBE was answered.
    Subscribed {
        /// The subscriber.
        who: MipcName,
        /// Its pattern.
        pattern: EventPattern,
        /// Subscribed (true) or unsubscribed.
        on: bool,
    },
    /// A PUBLISH was fanned out (where `mipc monitor` sees events go by).
    Published {
        /// The event.
        event: EventName,
        /// Subscribers that got it (sent or parked).
        receivers: usize,
    },
    /// A BROADCAST was fanned out.
    Broadcast {
        /// Its api id.
        api: u32,
        /// Entries that got it (sent or parked).
        receivers: usize,
    },
    /// A tool's request (list, stats, monitor, wait) was answered or recorded.
    Tool,
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

impl Rejected {
    /// The error code a waiting caller gets for this (docs/PROTOCOL.md §4), if any: the one
    /// mapping from rejections to ERROR answers and HELLO statuses.
    pub fn code(&self) -> Option<RelayErrorCode> {
        match self {
            Rejected::NoSuchDestination(..) => Some(RelayErrorCode::NoSuchDestination),
            Rejected::Gone(_) | Rejected::Queue(..) => Some(RelayErrorCode::PeerDied),
            Rejected::Busy(_) => Some(RelayErrorCode::DestinationBusy),
            Rejected::Deadlock(..) => Some(RelayErrorCode::Deadlock),
            Rejected::NameInUse(_) => Some(RelayErrorCode::NameInUse),
            Rejected::TableFull(_) => Some(RelayErrorCode::TableFull),
            Rejected::Control(..) => Some(RelayErrorCode::NotServed),
            Rejected::Malformed(_)
            | Rejected::BadNotice(_)
            | Rejected::NoQueue(..)
            | Rejected::NotOwner(_)
            | Rejected::QueueInUse(..) => None,
        }
    }
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
    /// Events published.
    pub events: u64,
    /// Broadcasts sent.
    pub broadcasts: u64,
    /// Copies of events and broadcasts delivered (sent or parked).
    pub copies: u64,
    /// Copies of events and broadcasts dropped (a receiver's backlog was at its bound).
    pub copies_dropped: u64,
}

/// What changed in the table since it was last saved (`state.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Save the whole table (after a restore, or too many changes to list).
    pub rewrite: bool,
    /// Names whose entry was added, changed or removed.
    pub names: Vec<MipcName>,
    /// Subscriptions made (`true`) or dropped, in order (an entry's removal drops its own).
    pub subscriptions: Vec<(MipcName, EventPattern, bool)>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        !self.rewrite && self.names.is_empty() && self.subscriptions.is_empty()
    }
}

/// The name table and routing rules.
///
/// In declaration order (`repr(C)`): what every forwarded message reads or writes comes
/// first, so that a message touches a few neighbouring cache lines of the router, not a line
/// here and there across it (after a context switch they are often cold).
#[repr(C)]
pub struct Router {
    entries: entries::Entries,
    /// Where pending calls are kept for a relay started after this one.
    calls: calls::CallRecord,
    stats: Stats,
    /// A message is being handled (its error answers are reported after it).
    handling: bool,
    /// Error answers to report after the message being handled.
    deferred: Vec<(i32, Vec<u8>)>,
    /// Attached monitors (`mipc monitor`, `mipc capture`).
    monitors: Monitors,
    /// Counters beyond `stats` (`mipc stats`).
    counters: Counters,
    backlogs: Backlogs,
    /// Requests read one after another for one entry, to go in one batch (`gather.rs`).
    gather: gather::Gather,
    /// The buffer events and broadcasts are built in (kept between them).
    fanout: Option<Box<MsgBuf>>,
    /// Names of the entries dropped last with their greeted pids (0: unknown), newest last
    /// ([`GONE_REMEMBERED`] of them): their events and broadcasts still on the root queue are
    /// delivered, with their sender's pid (the relay may learn of a death before it reads what
    /// the process sent just before).
    gone: std::collections::VecDeque<(MipcName, u32)>,
    max_entries: usize,
    reply: Box<MsgBuf>,
    changes: Changes,
    /// Queues of unregistered entries with a known process, removed if that process dies
    /// while they still exist (a daemon killed in the middle of its exit), oldest first.
    retired: std::collections::VecDeque<(i32, QueueId)>,
    /// Who subscribed to what.
    subscriptions: subscriptions::Subscriptions,
    /// List snapshots being served page by page.
    snapshots: Snapshots,
    /// Tools waiting for names.
    waiters: Waiters,
    /// Processes that got a direct route since the last monitor attached, and do not
    /// follow the routes page (they are sent DROP_ROUTES).
    direct_pids: Vec<i32>,
    /// The routes page, when the daemon could make it (`routes_page.rs`).
    routes_page: Option<crate::routes_page::RoutesPage>,
    /// The root queue, once the daemon says.
    root: Option<QueueId>,
    /// When it offers answers straight back (`answer_back.rs`).
    answer_back: answer_back::Offering,
    /// Who made the last sync requests, and whether several callers share the relay now.
    callers: answer_back::Callers,
    shared: bool,
}

/// How many dropped entries' names the router remembers.
const GONE_REMEMBERED: usize = 64;

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
            entries: entries::Entries::default(),
            max_entries,
            reply: MsgBuf::boxed(),
            stats: Stats::default(),
            changes: Changes::default(),
            backlogs: Backlogs::default(),
            gather: gather::Gather::default(),
            retired: std::collections::VecDeque::new(),
            subscriptions: subscriptions::Subscriptions::default(),
            fanout: None,
            gone: std::collections::VecDeque::new(),
            monitors: Monitors::default(),
            snapshots: Snapshots::default(),
            waiters: Waiters::default(),
            counters: Counters::new(Instant::now()),
            direct_pids: Vec::new(),
            routes_page: None,
            handling: false,
            deferred: Vec::new(),
            root: None,
            calls: calls::CallRecord::default(),
            answer_back: answer_back::answering_back(),
            callers: answer_back::Callers::default(),
            shared: false,
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

    /// Handles one message received on the root queue. `msg` is sent on from where it lies
    /// (no copy; a sender trailer is appended in place for the send and taken off again);
    /// `now` ([`Now`], or an [`Instant`]) dates sync calls for the deadlock check.
    ///
    /// # Errors
    /// [`Rejected`] says why the message was not delivered.
    pub fn handle(
        &mut self,
        port: &mut impl Port,
        msg: &mut MsgBuf,
        now: impl Into<Now>,
    ) -> Result<Handled, Rejected> {
        self.handling = true;
        self.gather.seq = self.gather.seq.wrapping_add(1);
        let out = self.route(port, msg, &now.into());
        self.handling = false;
        match out {
            Ok(Handled::Forwarded) => self.stats.forwarded += 1,
            Ok(Handled::Parked) => self.stats.parked += 1,
            Ok(_) => {}
            Err(_) => self.stats.rejected += 1,
        }
        self.observe(port, msg, &out);
        if !self.deferred.is_empty() {
            self.flush_deferred(port);
        }
        out
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
}

#[cfg(test)]
mod tests;
