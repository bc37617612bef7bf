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
//! as "deadlock" (the calls end at their timeouts instead), and the trace of a future
//! monitor misses them.

use crate::config;
use crate::error::{MipcError, Result};
use crate::fasthash::FastMap;
use crate::link::{next_tag, send_to_relay_bounded, to_relay};
use crate::local::Local;
use crate::name::MipcName;
use crate::sysv::{self, QueueError, QueueId};
use crate::table::Entry;
use crate::timeout::CallTimeout;
use crate::timer;
use crate::wait::{wait_answer, AnswerWait, Watch};
use crate::wire::control::{Lookup, LookupAnswer};
use crate::wire::{self, Control, Kind, MsgBuf};
use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Messages sent through the relay after a direct send failed, before looking up again.
pub(crate) const RELAY_SPELL: u32 = 64;
/// Most destinations remembered.
const MAX_ROUTES: usize = 1024;

/// Where a destination's requests go directly.
#[derive(Debug, Clone)]
pub struct Route {
    /// The destination's queue.
    pub queue: QueueId,
    /// Its process, watched by the waker.
    pub pid: i32,
    /// Set by the waker once that process is dead.
    pub dead: Arc<AtomicBool>,
}

impl Route {
    /// What a wait on this route's server watches.
    pub(crate) fn watch(&self) -> Watch<'_> {
        Watch {
            pid: self.pid,
            dead: &self.dead,
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
    match &*l?.route.try_borrow().ok()? {
        Some((g, d, r)) if *g == generation && d == dst && !r.is_dead() => Some(r.clone()),
        _ => None,
    }
}

/// Caches `route` to `dst` for this thread, as of `generation` (read before `ROUTES` was).
fn remember(l: Option<&Local>, generation: u64, dst: &MipcName, route: &Route) {
    if let Some(mut last) = l.and_then(|l| l.route.try_borrow_mut().ok()) {
        *last = Some((generation, *dst, route.clone()));
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
            Some(r.clone())
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
                return Ok(Some(r.clone()));
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
    routes.insert(
        *dst,
        found
            .clone()
            .map_or(State::Relay(RELAY_SPELL), State::Direct),
    );
    Ok(found)
}

/// Whether the relay asked this entry's process to drop its direct routes (a monitor
/// attached: docs/PROTOCOL.md §8). Looks for a DROP_ROUTES on `queue` without blocking,
/// and drops every route when there is one. One `msgrcv` per direct send: the price of a
/// monitor never missing a call, paid only by processes that chose the direct path. It never
/// blocks, so it is made without the C library's cancellation-point bookkeeping.
#[inline]
#[link_section = ".text.mipc_hot.call"]
pub fn routes_dropped(queue: QueueId) -> bool {
    let mut room = [0u8; wire::MTYPE_LEN + wire::MTEXT_HEADER_LEN + 8];
    let flags = sysv::RecvFlags {
        nowait: true,
        truncate: true,
        ..Default::default()
    };
    let ty = Kind::DropRoutes.mtype();
    let mut dropped = false;
    while sysv::recv_nocancel(queue, &mut room, ty, flags).is_ok() {
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
    let env = to_relay(&entry.name, mtype, config::hello_timeout_ms(), Some(tag));
    buf.build_control(env, &Lookup { name: *dst });
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
