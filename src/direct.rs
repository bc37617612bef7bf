//! The opt-in direct path (`MIPC_DIRECT=1`): a sync call goes straight to the server's queue
//! and the server answers straight to the caller's, two queue hops instead of four.
//!
//! The caller learns a destination's queue and process once, from the relay (LOOKUP, which
//! the relay answers only for a mipc-rs entry with no backlog, after every message the caller
//! sent before it: so a direct message never overtakes a relayed one). The relay's guarantees
//! are kept without the relay:
//! - late answers: the same call tags as through the relay;
//! - dead peers: the caller's waker watches the server's process (pidfd) while it waits;
//! - ordering: once a destination is direct, this process's async messages to it go direct
//!   too; a destination that is full or gone goes back to the relay, which keeps order with
//!   its backlog, for the next `RELAY_SPELL` (64) messages before it is looked up again.
//!
//! What it gives up: the relay does not see direct calls, so it cannot report a call cycle
//! as "deadlock" (the calls end at their timeouts instead). A monitor sees every call
//! because the direct path is suspended while one is attached: the relay moves the epoch of
//! its routes page on (one word this process maps and checks before each direct send), or,
//! for a process that cannot map it, sends DROP_ROUTES (docs/PROTOCOL.md §6).

use crate::config;
use crate::error::{MipcError, Result};
use crate::fasthash::FastMap;
use crate::link::{next_tag, send_to_relay_bounded, to_relay};
use crate::local::Local;
use crate::name::MipcName;
use crate::os::mapped::ReadOnlyPage;
use crate::sysv::{self, QueueError, QueueId};
use crate::table::Entry;
use crate::timeout::CallTimeout;
use crate::timer;
use crate::wait::{wait_answer, AnswerWait, Watch};
use crate::wire::control::{Lookup, LookupAnswer, LOOKUP_FLAG_PAGE};
use crate::wire::{self, Control, Kind, MsgBuf};
use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Messages sent through the relay after a direct send failed, before looking up again.
pub(crate) const RELAY_SPELL: u32 = 64;
/// Most destinations remembered.
const MAX_ROUTES: usize = 1024;

/// Where a destination's requests go directly.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The destination's queue.
    pub queue: QueueId,
    /// Its process, watched by the waker.
    pub pid: i32,
    /// Set by the waker once that process is dead.
    pub dead: &'static AtomicBool,
}

impl Route {
    /// What a wait on this route's server watches.
    pub(crate) fn watch(&self) -> Watch<'_> {
        Watch {
            pid: self.pid,
            dead: self.dead,
        }
    }

    /// Whether the waker saw the destination's process die.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone)]
enum State {
    Direct(Route),
    /// Use the relay for this many more messages.
    Relay(u32),
}

static ROUTES: Lazy<Mutex<FastMap<MipcName, State>>> = Lazy::new(|| Mutex::new(FastMap::default()));
/// Changes whenever `ROUTES` does, so a thread's cached route can be trusted with one load.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// `ROUTES`, locked for a change: the generation moves on when the guard is dropped, so no
/// thread trusts its cached route across the change.
struct Changing(MutexGuard<'static, FastMap<MipcName, State>>);

impl Changing {
    fn lock() -> Option<Changing> {
        ROUTES.lock().ok().map(Changing)
    }
}

impl Drop for Changing {
    fn drop(&mut self) {
        GENERATION.fetch_add(1, Ordering::Release);
    }
}

impl std::ops::Deref for Changing {
    type Target = FastMap<MipcName, State>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Changing {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// The route of a thread's last direct destination, with the generation of `ROUTES` it was
/// read in (part of the thread's state, `local.rs`): a thread that calls the same server
/// again takes no lock and hashes nothing.
pub(crate) type LastRoute = Option<(u64, MipcName, Route)>;

/// The live route to `dst` this thread cached, if `ROUTES` did not change since.
#[inline]
fn last(l: Option<&Local>, dst: &MipcName) -> Option<Route> {
    let generation = GENERATION.load(Ordering::Acquire);
    // SAFETY: the cell is only borrowed mutably by `remember`, which this thread does not
    // run while the reference lives (it is read and dropped here, before returning);
    // `try_borrow_unguarded` still fails if a mutable borrow were live. This skips counting
    // the borrow in and out on every direct call.
    match unsafe { l?.route.try_borrow_unguarded() }.ok()? {
        Some((g, d, r)) if *g == generation && d == dst && !r.is_dead() => Some(*r),
        _ => None,
    }
}

/// Caches `route` to `dst` for this thread, as of `generation` (read before `ROUTES` was).
fn remember(l: Option<&Local>, generation: u64, dst: &MipcName, route: &Route) {
    if let Some(mut last) = l.and_then(|l| l.route.try_borrow_mut().ok()) {
        *last = Some((generation, *dst, *route));
    }
}

/// Whether this process asked for the direct path (`MIPC_DIRECT=1`).
pub fn enabled() -> bool {
    static ON: Lazy<bool> = Lazy::new(config::direct_enabled);
    *ON
}

/// The route to `dst` if it is known to be direct (no lookup).
pub fn cached(dst: &MipcName) -> Option<Route> {
    crate::local::with(|l| last(l, dst).or_else(|| cached_in_table(l, dst)))
}

#[cold]
fn cached_in_table(l: Option<&Local>, dst: &MipcName) -> Option<Route> {
    let generation = GENERATION.load(Ordering::Acquire);
    match ROUTES.lock().ok()?.get(dst) {
        Some(State::Direct(r)) if !r.is_dead() => {
            remember(l, generation, dst, r);
            Some(*r)
        }
        _ => None,
    }
}

/// The route for a call from `entry` to `dst`: the cached one, or one looked up from the
/// relay; `None` means "use the relay" (not a mipc-rs entry, a backlog, a recent failure).
///
/// # Errors
/// Queue errors while asking the relay.
#[inline]
#[link_section = ".text.mipc_hot.call"]
pub(crate) fn route(
    l: Option<&Local>,
    entry: &Entry,
    dst: &MipcName,
    buf: &mut MsgBuf,
) -> Result<Option<Route>> {
    routes_dropped(entry.queue);
    match last(l, dst) {
        Some(r) => Ok(Some(r)),
        None => route_from_table(l, entry, dst, buf),
    }
}

/// [`route`] when this thread has no cached route to `dst`: the process's table, or a
/// lookup.
#[cold]
fn route_from_table(
    l: Option<&Local>,
    entry: &Entry,
    dst: &MipcName,
    buf: &mut MsgBuf,
) -> Result<Option<Route>> {
    {
        let generation = GENERATION.load(Ordering::Acquire);
        let mut routes = ROUTES.lock().map_err(|_| MipcError::Internal)?;
        match routes.get_mut(dst) {
            Some(State::Direct(r)) if !r.is_dead() => {
                remember(l, generation, dst, r);
                return Ok(Some(*r));
            }
            Some(State::Relay(n)) if *n > 0 => {
                *n -= 1;
                return Ok(None);
            }
            _ => {}
        }
    }
    let found = lookup(entry, dst, buf)?;
    let mut routes = Changing::lock().ok_or(MipcError::Internal)?;
    if routes.len() >= MAX_ROUTES {
        routes.clear();
    }
    routes.insert(*dst, found.map_or(State::Relay(RELAY_SPELL), State::Direct));
    Ok(found)
}

/// The relay's routes page (docs/PROTOCOL.md §8): the file `mipc-<key>.routes` beside the
/// relay's name table, 8 bytes: [`ROUTES_PAGE_MAGIC`], then a `u32` epoch the relay moves on
/// whenever direct routes must be dropped (a monitor attached, a relay started). A process
/// that maps it compares one word per direct send instead of probing its queue.
pub const ROUTES_PAGE_MAGIC: u32 = 0x4d52_5031; // "MRP1"
/// Byte offset of the epoch in the routes page.
pub const ROUTES_PAGE_EPOCH: usize = 4;
/// Length of the routes page file.
pub const ROUTES_PAGE_LEN: usize = 8;

/// The routes page of the bus with root key `key`.
pub fn routes_page_path(key: i32) -> std::path::PathBuf {
    config::state_dir().join(format!("mipc-{:08x}.routes", key as u32))
}

/// The page this process follows (null: none, probe the queue instead), and its epoch as
/// last seen.
static PAGE: AtomicPtr<ReadOnlyPage> = AtomicPtr::new(std::ptr::null_mut());
static SEEN_EPOCH: AtomicU32 = AtomicU32::new(0);
/// The file the page was mapped from (device, inode), and how many maps were made.
static PAGE_FILE: Mutex<(Option<(u64, u64)>, u32)> = Mutex::new((None, 0));
/// Most maps of the page a process makes (each relay restart that makes the file anew costs
/// one); past it the process probes its queue as without a page.
const MAX_PAGE_MAPS: u32 = 64;

/// Follows the routes page of this bus, mapping it anew if its file changed (a relay started
/// after the file was removed). Called before each LOOKUP, so a route is only ever given
/// while the page it is checked against is the relay's current one. Returns whether the
/// process follows a page (then the relay sends it no DROP_ROUTES).
fn follow_page() -> bool {
    // Opens and closes files on the program's thread: no cancellation acted on meanwhile.
    crate::os::process::no_cancel(follow_page_in)
}

fn follow_page_in() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(mut file) = PAGE_FILE.lock() else {
        return false;
    };
    let path = routes_page_path(config::root_key());
    let opened = std::fs::File::open(&path).ok();
    let id = opened
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map(|m| (m.dev(), m.ino()));
    if id.is_some() && id == file.0 {
        return !PAGE.load(Ordering::Acquire).is_null();
    }
    // No page, or another file: stop following the old one. Routes checked against it may
    // have missed a move of the new one's epoch.
    PAGE.store(std::ptr::null_mut(), Ordering::Release);
    file.0 = None;
    drop_all();
    let (Some(f), Some(id)) = (opened, id) else {
        return false;
    };
    if file.1 >= MAX_PAGE_MAPS {
        return false;
    }
    let Ok(page) = ReadOnlyPage::map(&f, ROUTES_PAGE_LEN) else {
        return false;
    };
    file.1 += 1;
    if page.load_u32(0) != ROUTES_PAGE_MAGIC {
        return false;
    }
    file.0 = Some(id);
    SEEN_EPOCH.store(page.load_u32(ROUTES_PAGE_EPOCH), Ordering::Relaxed);
    PAGE.store(
        page as *const ReadOnlyPage as *mut ReadOnlyPage,
        Ordering::Release,
    );
    true
}

/// Whether this process must drop its direct routes (a monitor attached: docs/PROTOCOL.md
/// §8); drops them if so. With the relay's routes page mapped, that is one load and compare
/// per direct send. Without it, it looks for a DROP_ROUTES on `queue` without blocking: one
/// `msgrcv` per direct send.
#[inline]
#[link_section = ".text.mipc_hot.call"]
pub fn routes_dropped(queue: QueueId) -> bool {
    let page = PAGE.load(Ordering::Acquire);
    if page.is_null() {
        return probe_drop_routes(queue);
    }
    // SAFETY: a non-null PAGE points to a page leaked by `ReadOnlyPage::map` (never freed).
    let epoch = unsafe { &*page }.load_u32(ROUTES_PAGE_EPOCH);
    if epoch == SEEN_EPOCH.load(Ordering::Relaxed) {
        return false;
    }
    epoch_moved(queue, epoch)
}

#[cold]
fn epoch_moved(queue: QueueId, epoch: u32) -> bool {
    SEEN_EPOCH.store(epoch, Ordering::Relaxed);
    // A DROP_ROUTES sent before the relay knew this process follows the page: take it off.
    probe_drop_routes(queue);
    drop_all();
    true
}

/// Looks for a DROP_ROUTES on `queue` without blocking, and drops every route when there is
/// one.
fn probe_drop_routes(queue: QueueId) -> bool {
    let mut room = [0u8; wire::MTYPE_LEN + wire::MTEXT_HEADER_LEN + 8];
    let flags = sysv::RecvFlags {
        nowait: true,
        truncate: true,
        ..Default::default()
    };
    let ty = Kind::DropRoutes.mtype();
    let mut dropped = false;
    while sysv::recv(queue, &mut room, ty, flags).is_ok() {
        dropped = true;
    }
    if dropped {
        drop_all();
    }
    dropped
}

/// Forgets every direct route: the next call to each destination looks it up again.
pub fn drop_all() {
    if let Some(mut routes) = Changing::lock() {
        routes.clear();
    }
}

/// A direct send to `dst` failed, or its process died: use the relay for a while.
pub fn forget(dst: &MipcName) {
    if let Some(mut routes) = Changing::lock() {
        routes.insert(*dst, State::Relay(RELAY_SPELL));
    }
}

/// Sends `msg` directly to `route`; `false` when it could not (full, gone, not allowed):
/// the caller then goes through the relay.
pub fn send(dst: &MipcName, route: &Route, msg: &[u8]) -> bool {
    match sysv::send(route.queue, msg, true) {
        Ok(()) => true,
        Err(QueueError::Full) | Err(_) => {
            forget(dst);
            false
        }
    }
}

/// Asks the relay for `dst`'s queue and process. Answered on `entry`'s queue with the
/// request's tag: `i32 status` (0: direct is fine), `i32 queue`, `i32 pid`.
fn lookup(entry: &Entry, dst: &MipcName, buf: &mut MsgBuf) -> Result<Option<Route>> {
    let tag = next_tag();
    let mtype = Kind::Lookup.mtype();
    let follows_page = follow_page();
    let env = to_relay(&entry.name, mtype, config::hello_timeout_ms(), Some(tag));
    let flags = if follows_page { LOOKUP_FLAG_PAGE } else { 0 };
    buf.build_control(env, &Lookup { name: *dst, flags });
    send_to_relay_bounded(buf.as_sendable())?;
    let wait = CallTimeout::after(Duration::from_millis(config::hello_timeout_ms() as u64));
    let answer = AnswerWait {
        queue: entry.queue,
        entry: Some(entry),
        mtype,
        expect: Some(tag),
        deadline: wait.deadline_from_now(),
        watch: None,
        poll: false,
    };
    let hdr = match wait_answer(&answer, buf) {
        Ok(h) => h,
        Err(MipcError::Timeout) => return Ok(None),
        Err(e) => return Err(e),
    };
    let answer = LookupAnswer::get(hdr.payload(buf.mtext()));
    Ok(match answer {
        Some(LookupAnswer {
            status: 0,
            queue,
            pid,
        }) if queue >= 0 && pid > 0 => timer::watch(pid).map(|dead| Route {
            queue: QueueId(queue),
            pid,
            dead,
        }),
        _ => None,
    })
}
