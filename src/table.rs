//! The per-process table (SPEC §3 `mipc_user_thread_info_*`): which thread owns which entry
//! and queue. It grows as needed; `MIPC_USER_INFO_NUM` is only kept in the header.

use crate::error::{MipcError, Result};
use crate::name::MipcName;
use crate::sysv::QueueId;
use crate::wire::MsgBuf;
use once_cell::sync::Lazy;
use std::collections::VecDeque;
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
    pub tid: libc::pthread_t,
    /// Process that created the entry (a forked child does not own its parent's queues).
    pub pid: i32,
    /// The relay greeted this entry: it may send and receive call tags.
    pub ext: bool,
    /// `mipc_init` created the queue, so this process removes it when done.
    pub owned: bool,
    /// Requests received while the owning thread waited for an answer, oldest first.
    pub stash: Mutex<VecDeque<Box<MsgBuf>>>,
}

impl Entry {
    /// A new entry.
    pub fn new(
        name: MipcName,
        queue: QueueId,
        tid: libc::pthread_t,
        ext: bool,
        owned: bool,
    ) -> Entry {
        Entry {
            name,
            queue,
            tid,
            // SAFETY: getpid has no preconditions.
            pid: unsafe { libc::getpid() },
            ext,
            owned,
            stash: Mutex::new(VecDeque::new()),
        }
    }

    /// Locks the stash.
    ///
    /// # Errors
    /// [`MipcError::Internal`] when a panic poisoned it.
    pub fn stash(&self) -> Result<MutexGuard<'_, VecDeque<Box<MsgBuf>>>> {
        self.stash.lock().map_err(|_| MipcError::Internal)
    }
}

static TABLE: Lazy<Mutex<Vec<Arc<Entry>>>> = Lazy::new(|| Mutex::new(Vec::new()));

fn table() -> Result<MutexGuard<'static, Vec<Arc<Entry>>>> {
    TABLE.lock().map_err(|_| MipcError::Internal)
}

/// The calling thread's id.
pub fn current_thread() -> libc::pthread_t {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() }
}

/// Adds an entry.
///
/// # Errors
/// [`MipcError::Internal`] on a poisoned lock.
pub fn register(entry: Entry) -> Result<Arc<Entry>> {
    let entry = Arc::new(entry);
    table()?.push(entry.clone());
    Ok(entry)
}

/// The first entry of thread `tid` (legacy lookup order).
///
/// # Errors
/// [`MipcError::NotRegistered`] when the thread has none.
pub fn by_thread(tid: libc::pthread_t) -> Result<Arc<Entry>> {
    // SAFETY: pthread_equal only compares the two ids.
    let same = |e: &&Arc<Entry>| unsafe { libc::pthread_equal(e.tid, tid) != 0 };
    table()?
        .iter()
        .find(same)
        .cloned()
        .ok_or(MipcError::NotRegistered)
}

/// The entry of thread `tid` named `name`, if any.
pub fn by_thread_and_name(tid: libc::pthread_t, name: &MipcName) -> Option<Arc<Entry>> {
    // SAFETY: pthread_equal only compares the two ids.
    let same = |e: &&Arc<Entry>| unsafe { libc::pthread_equal(e.tid, tid) != 0 } && e.name == *name;
    table().ok()?.iter().find(same).cloned()
}

/// The entry that owns `queue`, if it belongs to this process.
pub fn by_queue(queue: QueueId) -> Option<Arc<Entry>> {
    table().ok()?.iter().find(|e| e.queue == queue).cloned()
}

/// The entry named `name`, if this process has one.
pub fn by_name(name: &MipcName) -> Option<Arc<Entry>> {
    table().ok()?.iter().find(|e| e.name == *name).cloned()
}

/// Removes and returns the entries `pick` selects.
///
/// # Errors
/// [`MipcError::Internal`] on a poisoned lock.
pub fn take(pick: impl Fn(&Entry) -> bool) -> Result<Vec<Arc<Entry>>> {
    let mut t = table()?;
    let (gone, kept): (Vec<_>, Vec<_>) = t.drain(..).partition(|e| pick(e));
    *t = kept;
    Ok(gone)
}

/// Number of entries (for tests and diagnostics).
pub fn len() -> usize {
    table().map(|t| t.len()).unwrap_or(0)
}
