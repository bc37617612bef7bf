//! The per-process table (SPEC §3 `mipc_user_thread_info_*`): which thread owns which entry
//! and queue. It grows as needed; `MIPC_USER_INFO_NUM` is only kept in the header.

use crate::error::{MipcError, Result};
use crate::local::Local;
use crate::name::MipcName;
use crate::os::{self, ThreadId};
use crate::sysv::QueueId;
use crate::wire::MsgBuf;
use once_cell::sync::Lazy;
use std::cell::Ref;
use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Most requests an entry keeps aside while its thread waits for an answer (they are handed
/// out by the next `mipc_mq_receive`); past this the oldest is dropped and counted.
pub const STASH_MAX: usize = 256;

/// One registered entry of this process.
#[derive(Debug)]
pub struct Entry {
    /// Registered name.
    pub name: MipcName,
    /// The entry's own queue.
    pub queue: QueueId,
    /// Thread that owns the entry.
    pub tid: ThreadId,
    /// The owning thread has exited (cancelled, or returned without `mipc_exit`): its
    /// `pthread_t` may now be a new thread's, which must not find this entry as its own.
    thread_gone: AtomicBool,
    /// Process that created the entry (a forked child does not own its parent's queues).
    pub pid: i32,
    /// The relay greeted this entry: it may send and receive call tags.
    pub ext: bool,
    /// `mipc_init` created the queue, so this process removes it when done.
    pub owned: bool,
    /// Requests received while the owning thread waited for an answer, oldest first
    /// (see [`Entry::keep`]).
    stash: Mutex<VecDeque<Box<MsgBuf>>>,
    /// Whether `stash` may hold a message: a receive finds an empty stash with one atomic
    /// load instead of a lock.
    kept: AtomicBool,
    /// The direct call this entry's thread waits on, if any: the waker wakes it with "peer
    /// died" when that server's process exits (`timer.rs`).
    pub direct_wait: DirectWaitSlot,
    /// Requests delivered to this entry's handlers and not answered yet (`serving.rs`): an
    /// answer sent from another thread (a worker pool) takes the oldest of its caller and api.
    pub(crate) serving: crate::serving::Served,
    /// Messages sent to the root queue from this entry (`answer_back.rs`): counted before
    /// each send, taken back when it fails.
    pub(crate) sends: std::sync::atomic::AtomicU32,
    /// The relay read more messages from this entry than it sent (another process sends in
    /// its name): it no longer answers straight back (`answer_back.rs`).
    pub(crate) sends_foreign: AtomicBool,
}

/// Most unanswered requests an entry remembers (older ones are forgotten: their answers go
/// out untagged, as from a legacy server).
pub(crate) const SERVING_MAX: usize = 256;

/// A request being served: who asked, for which api, under which tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serving {
    /// The caller.
    pub src: MipcName,
    /// The api id.
    pub api: u32,
    /// The request's tag.
    pub tag: crate::wire::CallTag,
    /// The caller's queue, for a direct call or a relay's offer: the answer goes straight
    /// there.
    pub reply_queue: Option<QueueId>,
    /// The relay's offer to answer straight back (docs/PROTOCOL.md §11), if it made one.
    pub offer: Option<crate::wire::Offer>,
}

/// A direct call waiting on a server's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectWait {
    /// The server's process.
    pub pid: i32,
    /// The SysV type the call waits on.
    pub mtype: std::os::raw::c_long,
    /// The id its WAKE must carry.
    pub id: u64,
}

/// Where an entry's thread posts the direct call it waits on, for the waker to read, without
/// a lock: only the entry's thread writes it (set before its wait, cleared after), and the
/// waker reads it only when a watched process died. `id` (never 0 for a wait; wait ids are
/// never reused) says whether `pid` and `mtype` belong to a wait: the waker reads it before
/// and after them, and keeps what it read only when it did not change (a seqlock).
#[derive(Debug, Default)]
pub struct DirectWaitSlot {
    id: AtomicU64,
    pid: AtomicI32,
    mtype: AtomicIsize,
}

// `mtype` is kept as an isize: a C long on every target this builds for.
const _: () = assert!(std::mem::size_of::<std::os::raw::c_long>() == std::mem::size_of::<isize>());

impl DirectWaitSlot {
    /// Posts `w` (by the entry's thread, before it waits). Sequentially consistent with the
    /// waker's "dead" flag: either the waker sees this wait, or the caller sees the flag.
    pub fn set(&self, w: DirectWait) {
        self.id.store(0, Ordering::Relaxed);
        // The fields below are not seen before the 0 above by a reader that sees them.
        std::sync::atomic::fence(Ordering::Release);
        self.pid.store(w.pid, Ordering::Relaxed);
        self.mtype.store(w.mtype as isize, Ordering::Relaxed);
        self.id.store(w.id, Ordering::SeqCst);
    }

    /// Clears the slot (by the entry's thread, once its wait ended).
    pub fn clear(&self) {
        self.id.store(0, Ordering::Release);
    }

    /// The wait posted now, if any (by the waker).
    pub fn get(&self) -> Option<DirectWait> {
        let id = self.id.load(Ordering::SeqCst);
        if id == 0 {
            return None;
        }
        let pid = self.pid.load(Ordering::Relaxed);
        let mtype = self.mtype.load(Ordering::Relaxed) as std::os::raw::c_long;
        std::sync::atomic::fence(Ordering::Acquire);
        (self.id.load(Ordering::Relaxed) == id).then_some(DirectWait { pid, mtype, id })
    }
}

impl Entry {
    /// A new entry.
    pub fn new(name: MipcName, queue: QueueId, tid: ThreadId, ext: bool, owned: bool) -> Entry {
        Entry {
            name,
            queue,
            tid,
            thread_gone: AtomicBool::new(false),
            pid: os::getpid(),
            ext,
            owned,
            stash: Mutex::new(VecDeque::new()),
            kept: AtomicBool::new(false),
            direct_wait: DirectWaitSlot::default(),
            serving: crate::serving::Served::default(),
            sends: std::sync::atomic::AtomicU32::new(0),
            sends_foreign: AtomicBool::new(false),
        }
    }

    /// Whether thread `tid` owns this entry (and is the thread that registered it, not a
    /// later one with the same `pthread_t`).
    pub fn owned_by(&self, tid: ThreadId) -> bool {
        self.tid == tid && !self.thread_gone.load(Ordering::Relaxed)
    }

    fn stash(&self) -> Result<MutexGuard<'_, VecDeque<Box<MsgBuf>>>> {
        self.stash.lock().map_err(|_| MipcError::Internal)
    }

    /// Keeps a message for the entry's next receive: after the others, or (`first`) before
    /// them. Past [`STASH_MAX`] the oldest is dropped.
    ///
    /// # Errors
    /// [`MipcError::Internal`] when a panic poisoned the stash.
    pub fn keep(&self, msg: Box<MsgBuf>, first: bool) -> Result<()> {
        let mut s = self.stash()?;
        if first {
            s.push_front(msg);
        } else {
            if s.len() >= STASH_MAX {
                s.pop_front();
            }
            s.push_back(msg);
        }
        self.kept.store(true, Ordering::Release);
        Ok(())
    }

    /// Keeps messages for the entry's next receives, after the others, in order (a batch
    /// taken apart: `wait::unbatch`), under one lock.
    ///
    /// # Errors
    /// [`MipcError::Internal`] when a panic poisoned the stash.
    pub fn keep_all(&self, msgs: impl Iterator<Item = Box<MsgBuf>>) -> Result<()> {
        let mut s = self.stash()?;
        for msg in msgs {
            if s.len() >= STASH_MAX {
                s.pop_front();
            }
            s.push_back(msg);
        }
        self.kept.store(true, Ordering::Release);
        Ok(())
    }

    /// Takes the oldest kept message that `pick` accepts.
    ///
    /// # Errors
    /// [`MipcError::Internal`] when a panic poisoned the stash.
    pub fn take_kept(&self, pick: impl Fn(&MsgBuf) -> bool) -> Result<Option<Box<MsgBuf>>> {
        if !self.kept.load(Ordering::Acquire) {
            return Ok(None);
        }
        let mut s = self.stash()?;
        let msg = s.iter().position(|m| pick(m)).and_then(|p| s.remove(p));
        if s.is_empty() {
            self.kept.store(false, Ordering::Release);
        }
        Ok(msg)
    }
}

static TABLE: Lazy<Mutex<Vec<Arc<Entry>>>> = Lazy::new(|| Mutex::new(Vec::new()));
/// Changes whenever the table does, so a thread's cached entry can be trusted cheaply.
static GENERATION: AtomicU64 = AtomicU64::new(0);

fn table() -> Result<MutexGuard<'static, Vec<Arc<Entry>>>> {
    TABLE.lock().map_err(|_| MipcError::Internal)
}

/// Thread `tid` is exiting (its state is being destroyed, `local.rs`): its entries stay
/// registered, with their queues, but belong to no thread from now on, so a new thread that
/// gets the same `pthread_t` starts with none (a sync call of it went out under the dead
/// thread's name, and its answer to the dead thread's queue).
pub fn thread_exited(tid: ThreadId) {
    if let Ok(t) = table() {
        t.iter()
            .filter(|e| e.tid == tid)
            .for_each(|e| e.thread_gone.store(true, Ordering::Relaxed));
    }
}

/// The calling thread's id.
pub fn current_thread() -> ThreadId {
    os::current_thread()
}

/// Adds an entry.
///
/// # Errors
/// [`MipcError::Internal`] on a poisoned lock.
pub fn register(entry: Entry) -> Result<Arc<Entry>> {
    let entry = Arc::new(entry);
    let mut t = table()?;
    t.push(entry.clone());
    GENERATION.fetch_add(1, Ordering::Release);
    Ok(entry)
}

/// The calling thread's first entry (legacy lookup order), from a per-thread cache that
/// is valid while the table does not change: the hot path of every call takes no lock.
///
/// # Errors
/// [`MipcError::NotRegistered`] when the thread has none.
pub fn mine() -> Result<Arc<Entry>> {
    crate::local::with(|l| mine_in(l).map(|e| Arc::clone(&e)))
}

/// An entry found for the calling thread: borrowed from its cache, or looked up.
pub(crate) enum Found<'a> {
    /// The thread's cached entry (no reference count touched).
    Cached(Ref<'a, Arc<Entry>>),
    /// Looked up in the table.
    Table(Arc<Entry>),
}

impl Deref for Found<'_> {
    type Target = Arc<Entry>;
    fn deref(&self) -> &Arc<Entry> {
        match self {
            Found::Cached(e) => e,
            Found::Table(e) => e,
        }
    }
}

/// [`mine`] with the thread's state at hand, borrowing the cached entry.
///
/// # Errors
/// As [`mine`].
#[inline]
#[link_section = ".text.mipc_hot.both"]
pub(crate) fn mine_in(l: Option<&Local>) -> Result<Found<'_>> {
    let generation = GENERATION.load(Ordering::Acquire);
    let cached = l.and_then(|l| l.mine.try_borrow().ok()).and_then(|m| {
        Ref::filter_map(m, |m| match m {
            Some((g, e)) if *g == generation => Some(e),
            _ => None,
        })
        .ok()
    });
    match cached {
        Some(e) => Ok(Found::Cached(e)),
        None => find_mine(l, generation).map(Found::Table),
    }
}

/// Looks the calling thread's first entry up in the table and caches it for `generation`.
#[cold]
fn find_mine(l: Option<&Local>, generation: u64) -> Result<Arc<Entry>> {
    let e = by_thread(current_thread())?;
    if let Some(mut m) = l.and_then(|l| l.mine.try_borrow_mut().ok()) {
        *m = Some((generation, e.clone()));
    }
    Ok(e)
}

/// The first entry of thread `tid` (legacy lookup order).
///
/// # Errors
/// [`MipcError::NotRegistered`] when the thread has none.
pub fn by_thread(tid: ThreadId) -> Result<Arc<Entry>> {
    let same = |e: &&Arc<Entry>| e.owned_by(tid);
    table()?
        .iter()
        .find(same)
        .cloned()
        .ok_or(MipcError::NotRegistered)
}

/// The queues and waits of the entries whose direct call waits on one of `pids`.
pub fn direct_waits_on(pids: &[i32]) -> Vec<(QueueId, DirectWait)> {
    let Ok(t) = table() else { return Vec::new() };
    t.iter()
        .filter_map(|e| {
            let w = e.direct_wait.get()?;
            pids.contains(&w.pid).then_some((e.queue, w))
        })
        .collect()
}

/// The entry of thread `tid` named `name`, if any.
pub fn by_thread_and_name(tid: ThreadId, name: &MipcName) -> Option<Arc<Entry>> {
    let same = |e: &&Arc<Entry>| e.owned_by(tid) && e.name == *name;
    table().ok()?.iter().find(same).cloned()
}

/// The entry that owns `queue`, if it belongs to this process.
pub fn by_queue(queue: QueueId) -> Option<Arc<Entry>> {
    crate::local::with(|l| by_queue_in(l, queue).map(|e| Arc::clone(&e)))
}

/// [`by_queue`] with the thread's state at hand. Inline: a server's receive finds its entry
/// in the thread's cache, and the call cost more than the look.
#[inline(always)]
#[link_section = ".text.mipc_hot.serve"]
pub(crate) fn by_queue_in(l: Option<&Local>, queue: QueueId) -> Option<Found<'_>> {
    match mine_in(l) {
        Ok(e) if e.queue == queue => Some(e),
        _ => in_table(|e| e.queue == queue),
    }
}

/// The entry named `name`, if this process has one.
pub fn by_name(name: &MipcName) -> Option<Arc<Entry>> {
    crate::local::with(|l| by_name_in(l, name).map(|e| Arc::clone(&e)))
}

/// [`by_name`] with the thread's state at hand.
#[inline]
#[link_section = ".text.mipc_hot.serve"]
pub(crate) fn by_name_in<'a>(l: Option<&'a Local>, name: &MipcName) -> Option<Found<'a>> {
    match mine_in(l) {
        Ok(e) if e.name == *name => Some(e),
        _ => in_table(|e| e.name == *name),
    }
}

/// The first entry of the table that `pick` selects.
#[cold]
pub(crate) fn in_table<'a>(pick: impl Fn(&Entry) -> bool) -> Option<Found<'a>> {
    table()
        .ok()?
        .iter()
        .find(|e| pick(e))
        .cloned()
        .map(Found::Table)
}

/// Removes and returns the entries `pick` selects.
///
/// # Errors
/// [`MipcError::Internal`] on a poisoned lock.
pub fn take(pick: impl Fn(&Entry) -> bool) -> Result<Vec<Arc<Entry>>> {
    let mut t = table()?;
    let (gone, kept): (Vec<_>, Vec<_>) = t.drain(..).partition(|e| pick(e));
    *t = kept;
    GENERATION.fetch_add(1, Ordering::Release);
    Ok(gone)
}
