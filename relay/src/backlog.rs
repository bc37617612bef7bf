//! Messages waiting for room on a full destination queue.
//!
//! The relay never blocks on a destination (one full queue must not stall the bus), but a
//! full queue under ordinary load (16 callers sending 2 KiB requests to one server whose
//! queue holds 16 KiB) must not fail calls either. So a message that does not fit is parked
//! here, in order, and sent as room frees ([`Backlogs::flush`], sends that do not wait): by
//! the receive loop before each new message to that destination, and, once the loop has
//! handed the backlog off ([`Backlogs::hand_off`]: it is about to sleep, or the backlog has
//! waited a while), by the relay's drainer thread (`port.rs`), both under the router's
//! lock. While a destination has a backlog, later messages to it go behind what is left of
//! it, so order is kept. A parked sync request whose caller's timeout passed is dropped
//! unsent: the caller already gave up.
//! (The drainer holds the lock across its non-blocking sends on purpose: a send between two
//! of them from the receive loop would break the order.)
//!
//! Bounds: at most [`MAX_ITEMS_PER_DESTINATION`] messages per destination and
//! [`MAX_BYTES`] in all. Past them a sync caller gets "destination busy" at once and an async
//! message is dropped (and counted): only a receiver that stopped reading gets there.

use crate::few_map::FewMap;
use mipc::sysv::{QueueError, QueueId};
use mipc::wire::{batch, CallTag, MTEXT_HEADER_LEN, MTYPE_LEN};
use mipc::MipcName;
use std::collections::VecDeque;
use std::os::raw::c_long;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// Most messages parked for one destination.
pub const MAX_ITEMS_PER_DESTINATION: usize = 1024;
/// Most bytes parked in all (2 MiB: about a thousand full-size messages).
pub const MAX_BYTES: usize = 2 << 20;

/// Most sends of parked messages (one message, or one batch of them) the receive loop makes
/// before a new one to a destination whose backlog it answers for
/// ([`FlushMost::BeforeNew`]). Two: one for the new message, one to
/// shrink the backlog, so a receiver that has caught up ends it within a few messages, at
/// the cost of at most one failed send per message while it is still behind. (Sending all
/// that fits was tried before drainers existed, in c15245d: under a flood to a receiver
/// that cannot keep up, the relay spent its time refilling the queue and handled 72 to 82 %
/// of the C loop's rate.)
pub const LOOP_FLUSH_MOST: usize = 2;

/// Where [`Backlogs::flush`] sends: the relay's queues (the router's port), or a closure.
pub trait Outlet {
    /// Sends a whole message (`mtype` first) to `q` without waiting.
    ///
    /// # Errors
    /// [`QueueError::Full`], and any other failure to send.
    fn send(&mut self, q: QueueId, msg: &[u8]) -> Result<(), QueueError>;

    /// Bytes queue `q` has room for now and holds in all (`msg_qbytes`), when that can be
    /// known. Asking costs a third of what a send that fails for a full queue costs
    /// (`msgctl` against a `msgsnd` that copies the message in before it finds no room: 0.4
    /// against 1.1 us here), so a batch is not tried on a queue that was full last time
    /// until there is room for it; and a queue that could never hold a whole batch (a small
    /// `msg_qbytes`) gets smaller ones.
    fn room(&mut self, _q: QueueId) -> Option<(usize, usize)> {
        None
    }
}

impl<F: FnMut(QueueId, &[u8]) -> Result<(), QueueError>> Outlet for F {
    fn send(&mut self, q: QueueId, msg: &[u8]) -> Result<(), QueueError> {
        self(q, msg)
    }
}

/// How many sends (a parked message, or a batch of them) a [`Backlogs::flush`] may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMost {
    /// A drainer's look: up to this many.
    Drainer(usize),
    /// The receive loop, before a new message to the destination: one once a drainer
    /// answers for the backlog (it refills in bulk; a second try would mostly fail on a
    /// queue that its reader frees one message at a time), else up to [`LOOP_FLUSH_MOST`],
    /// and a backlog that empties then ends.
    BeforeNew,
}

/// Whether backlogs go out in batches to entries that take them (`MIPC_BATCH=0` on the relay
/// turns it off: every parked message then goes alone, as before 2026-11-29).
static BATCHING: AtomicBool = AtomicBool::new(true);

/// Turns sending parked one-way requests in batches on or off ([`Parked::batchable`]).
pub fn set_batching(on: bool) {
    BATCHING.store(on, Ordering::Relaxed);
}

/// Whether parked one-way requests go out in batches (for the router to mark them).
pub fn batching() -> bool {
    BATCHING.load(Ordering::Relaxed)
}

/// The per-destination bound in force: [`MAX_ITEMS_PER_DESTINATION`] unless the relay was
/// started with another (`MIPC_BACKLOG_MAX`; 0 parks nothing: a message for a full queue is
/// refused at once, as the bare C loop drops it).
static ITEM_LIMIT: AtomicUsize = AtomicUsize::new(MAX_ITEMS_PER_DESTINATION);

/// Sets the per-destination bound (at most [`MAX_ITEMS_PER_DESTINATION`]).
pub fn set_item_limit(n: usize) {
    ITEM_LIMIT.store(n.min(MAX_ITEMS_PER_DESTINATION), Ordering::Relaxed);
}

/// The time for the deadline checks of parked sync requests. The router passes its lazy
/// clock (`router::Now`), read only when an item has a deadline: under a flood of async
/// messages, which have none, no message reads the clock.
pub trait Clock: Copy {
    /// The time now.
    fn now(self) -> Instant;
}

impl Clock for Instant {
    fn now(self) -> Instant {
        self
    }
}

/// The sync call a parked request belongs to, to fail it if it can never be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// Who waits.
    pub caller: MipcName,
    /// The `mtype` the caller waits on.
    pub mtype: c_long,
    /// The api id.
    pub api: u32,
    /// The request's tag.
    pub tag: CallTag,
}

/// What a message parked with [`Backlogs::park_copy`] is, besides its bytes: [`Parked`]'s
/// other fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parking {
    /// When the caller gives up (sync requests with a timeout).
    pub until: Option<Instant>,
    /// The sync call it belongs to, if any.
    pub call: Option<Call>,
    /// Whether it may go in a batch ([`Parked::batchable`]).
    pub batchable: bool,
}

/// What [`Backlogs::flush`] did.
#[derive(Debug)]
pub enum Flush {
    /// Everything parked went (`sent` messages now): nothing is ahead of a new message.
    Emptied {
        /// Messages sent.
        sent: usize,
    },
    /// The queue filled, or the most asked for went, after `sent` messages; the rest waits.
    Full {
        /// Messages sent.
        sent: usize,
        /// Their bytes.
        bytes: usize,
    },
    /// Sending `item` to `queue` failed with `err` (not for a full queue): it is out of
    /// the backlog, for its caller to be told.
    Failed {
        /// The destination's queue.
        queue: QueueId,
        /// The message that could not be sent.
        item: Parked,
        /// Why.
        err: QueueError,
    },
}

/// A message was not parked: its destination's backlog, or all of them, are at their bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBound;

/// One parked message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The bytes to send (`mtype` first), as the destination must get them.
    pub bytes: Vec<u8>,
    /// When the caller gives up (sync requests with a timeout).
    pub until: Option<Instant>,
    /// The sync call it belongs to, if any.
    pub call: Option<Call>,
    /// Whether it may go in a batch with the parked messages next to it (`mipc::wire::batch`):
    /// a one-way request or an EVENT copy to an entry that takes batches. Consecutive
    /// batchable messages of one SysV type go together, as many as fit a batch.
    pub batchable: bool,
}

impl Parked {
    fn expired(&self, now: impl Clock) -> bool {
        self.until.is_some_and(|u| u <= now.now())
    }
}

#[derive(Debug)]
struct Backlog {
    queue: QueueId,
    items: VecDeque<Parked>,
    /// No parked item expires before this (`None`: none has a deadline). Parking looks for
    /// expired items only once it has passed, so a flood of async messages (no deadline)
    /// parks in constant time, not in a pass over the whole backlog per message.
    earliest: Option<Instant>,
    /// Whether the drainer thread answers for it ([`Backlogs::hand_off`]). Until then the
    /// receive loop does: it sends what fits before each new message to the destination and
    /// ends the backlog when it empties, so a queue that is full for a moment under a flood
    /// costs no thread wake-up.
    drainer: bool,
    /// The last batch tried found the queue full: ask for its room before the next.
    blocked: bool,
    /// Most payload bytes of a batch to this queue: [`batch::ROOM`], less for a queue that
    /// holds less than that.
    batch_room: usize,
}

/// Backlogs of all destinations.
#[derive(Debug, Default)]
pub struct Backlogs {
    /// Every message the relay routes to a destination with a backlog looks its backlog up
    /// (up to three times): by comparing names while there are few (`few_map.rs`).
    by_dst: FewMap<Backlog>,
    bytes: usize,
    /// How many backlogs no drainer answers for yet.
    without_drainer: usize,
    /// Where batches are built.
    batch: Vec<u8>,
    /// Whose batch `batch` holds, and of how many messages at the front of its backlog:
    /// under a flood a batch that did not fit is tried again before each new message, and
    /// is built once (messages leave a backlog only at its front, and each such change
    /// forgets this).
    built: Option<(MipcName, usize)>,
    /// Messages sent in batches, ever (`mipc stats`).
    batched: u64,
    /// Buffers of messages the drainers sent, for the next messages parked: under a flood
    /// a message is parked and sent thousands of times a second, and the allocator would
    /// cost more than the copy.
    spare: Vec<Vec<u8>>,
}

/// How many of the parked messages at the front of `items` go in one batch: the batchable
/// ones of the first one's SysV type, as many as fit `room` payload bytes. 0 or 1: the
/// first goes alone.
fn batch_len(items: &VecDeque<Parked>, mut room: usize) -> usize {
    let Some(first) = items.front().filter(|p| p.batchable) else {
        return 0;
    };
    let Some(mtype) = first.bytes.get(..MTYPE_LEN) else {
        return 0;
    };
    items
        .iter()
        .take_while(|p| {
            let need = batch::LEN_PREFIX + p.bytes.len().saturating_sub(MTYPE_LEN);
            let fits = p.batchable && p.bytes.get(..MTYPE_LEN) == Some(mtype) && need <= room;
            if fits {
                room -= need;
            }
            fits
        })
        .count()
}

/// Keeps the buffer of a message that was sent for a later one, within the bounds below.
fn keep_spare(spare: &mut Vec<Vec<u8>>, bytes: Vec<u8>) {
    if spare.len() < SPARE_BUFFERS && bytes.capacity() <= SPARE_CAPACITY {
        spare.push(bytes);
    }
}

/// A copy of `bytes` in one of the `spare` buffers of earlier parked messages if there is one.
fn copy_into_spare(spare: &mut Vec<Vec<u8>>, bytes: &[u8]) -> Vec<u8> {
    match spare.pop() {
        Some(mut b) => {
            b.clear();
            b.extend_from_slice(bytes);
            b
        }
        None => bytes.to_vec(),
    }
}

/// Most buffers kept for reuse, and the largest kept (a full-size message and its
/// trailers): a burst of big messages does not stay in the relay's memory.
const SPARE_BUFFERS: usize = 64;
const SPARE_CAPACITY: usize = 2304;

impl Backlogs {
    /// Whether `dst` has a backlog (then new messages to it must queue behind it).
    #[inline(always)]
    pub fn has(&self, dst: &MipcName) -> bool {
        // Most of the time no queue is full: no hashing then (and no call: this test is on
        // every forwarded message's path), and with a few full queues (a flood to a few slow
        // receivers) a few comparisons.
        !self.by_dst.is_empty() && self.has_among_some(dst)
    }

    #[inline(never)]
    fn has_among_some(&self, dst: &MipcName) -> bool {
        self.by_dst.contains_key(dst)
    }

    /// Takes back the buffers of parked messages that were sent, for later ones.
    pub fn recycle(&mut self, sent: impl IntoIterator<Item = Parked>) {
        for p in sent {
            keep_spare(&mut self.spare, p.bytes);
        }
    }

    /// Forgets the buffers kept for reuse (when every backlog has emptied: the relay gives
    /// the memory back).
    pub fn release_spares(&mut self) {
        self.spare = Vec::new();
    }

    /// Messages sent in batches since the relay started.
    pub fn batched(&self) -> u64 {
        self.batched
    }

    /// Bytes parked in all.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages parked for `dst`.
    pub fn len_of(&self, dst: &MipcName) -> usize {
        self.by_dst.get(dst).map_or(0, |b| b.items.len())
    }

    /// Every destination with a backlog and its length (for `mipc stats`).
    pub fn per_destination(&self) -> Vec<(MipcName, u32)> {
        self.by_dst
            .iter()
            .map(|(n, b)| (*n, b.items.len() as u32))
            .collect()
    }

    /// Messages parked in all.
    pub fn items(&self) -> usize {
        self.by_dst.values().map(|b| b.items.len()).sum()
    }

    /// Parks `item` for `dst` (whose queue is `queue`), as [`Backlogs::park_copy`] parks a
    /// copy. (Tests; the relay parks copies of what it received.)
    ///
    /// # Errors
    /// [`OverBound`] when a bound would be passed (the item is dropped).
    #[cfg(any(test, feature = "testing"))]
    pub fn park(
        &mut self,
        dst: MipcName,
        queue: QueueId,
        item: Parked,
        now: impl Clock,
    ) -> Result<bool, OverBound> {
        let (len, until) = (item.bytes.len(), item.until);
        self.park_with(dst, queue, len, until, now, move |_| item)
    }

    /// Parks a copy of `bytes` (a message the relay holds in its receive buffer) for `dst`
    /// (whose queue is `queue`). Returns `Ok(true)` when this started the destination's
    /// backlog (the receive loop answers for it until [`Backlogs::hand_off`]), `Ok(false)`
    /// when it joined one. The bytes are copied into the buffer of a message sent earlier
    /// when there is one, so a flood that parks and sends thousands of messages a second
    /// does not allocate for each; and only once they are sure to fit, so one that a full
    /// backlog refuses costs no copy.
    ///
    /// # Errors
    /// [`OverBound`] when a bound would be passed.
    pub fn park_copy(
        &mut self,
        dst: MipcName,
        queue: QueueId,
        bytes: &[u8],
        how: Parking,
        now: impl Clock,
    ) -> Result<bool, OverBound> {
        let Parking {
            until,
            call,
            batchable,
        } = how;
        self.park_with(dst, queue, bytes.len(), until, now, |spare| Parked {
            bytes: copy_into_spare(spare, bytes),
            until,
            call,
            batchable,
        })
    }

    /// Parks the item `make` builds (from the spare buffers) for `dst`, a message of `len`
    /// bytes whose caller gives up at `until`, if the bounds allow it: the one path of
    /// [`Backlogs::park_copy`] and, in tests, `park`.
    fn park_with(
        &mut self,
        dst: MipcName,
        queue: QueueId,
        len: usize,
        until: Option<Instant>,
        now: impl Clock,
        make: impl FnOnce(&mut Vec<Vec<u8>>) -> Parked,
    ) -> Result<bool, OverBound> {
        let limit = ITEM_LIMIT.load(Ordering::Relaxed);
        let (backlog, fresh) = match self.by_dst.get_mut(&dst) {
            Some(b) => (b, false),
            None => {
                if limit == 0 || len > MAX_BYTES.saturating_sub(self.bytes) {
                    return Err(OverBound);
                }
                let b = self.by_dst.insert_new(
                    dst,
                    Backlog {
                        queue,
                        items: VecDeque::new(),
                        earliest: None,
                        drainer: false,
                        blocked: false,
                        batch_room: batch::ROOM,
                    },
                );
                self.without_drainer += 1;
                (b, true)
            }
        };
        // Callers that gave up free their room first.
        if backlog.earliest.is_some_and(|e| e <= now.now()) {
            self.built = None;
            let mut freed = 0;
            backlog.items.retain(|p| {
                let gone = p.expired(now);
                if gone {
                    freed += p.bytes.len();
                }
                !gone
            });
            self.bytes -= freed;
            backlog.earliest = backlog.items.iter().filter_map(|p| p.until).min();
        }
        // (A fresh backlog always fits: that was checked before it was made.)
        if backlog.items.len() >= limit || self.bytes + len > MAX_BYTES {
            return Err(OverBound);
        }
        self.bytes += len;
        if let Some(u) = until {
            backlog.earliest = Some(backlog.earliest.map_or(u, |e| e.min(u)));
        }
        backlog.items.push_back(make(&mut self.spare));
        Ok(fresh)
    }

    /// The next message to send to `dst`, skipping those whose caller gave up. `None` when
    /// the backlog is empty: it is then removed, and messages go straight to `dst` again.
    /// (Tests; the relay sends with [`Backlogs::flush`].)
    #[cfg(any(test, feature = "testing"))]
    pub fn next(&mut self, dst: &MipcName, now: impl Clock) -> Option<(QueueId, Parked)> {
        let (queue, mut batch) = self.next_batch(dst, now, 1)?;
        batch.pop().map(|item| (queue, item))
    }

    /// Up to `max` next messages for `dst`, in order, taken out, skipping those whose caller
    /// gave up. `None` when the backlog is empty: it is then removed. (Tests.)
    #[cfg(any(test, feature = "testing"))]
    pub fn next_batch(
        &mut self,
        dst: &MipcName,
        now: impl Clock,
        max: usize,
    ) -> Option<(QueueId, Vec<Parked>)> {
        let backlog = self.by_dst.get_mut(dst)?;
        self.built = None;
        let mut batch = Vec::new();
        while batch.len() < max {
            let Some(item) = backlog.items.pop_front() else {
                break;
            };
            self.bytes -= item.bytes.len();
            if !item.expired(now) {
                batch.push(item);
            }
        }
        let queue = backlog.queue;
        if batch.is_empty() {
            self.take_out(dst);
            return None;
        }
        Some((queue, batch))
    }

    /// Sends what fits of `dst`'s backlog, at most `most` messages, in order, with `send` (a
    /// send that does not wait), skipping messages whose caller gave up. Both the receive
    /// loop (before a new message to `dst`) and the drainer call it, under the router's
    /// lock, so the order holds whoever sends. A backlog a drainer answers for stays, even
    /// emptied, until the drainer removes it ([`Backlogs::remove_if_empty`]), so one drainer
    /// answers for it to its end; one the receive loop answers for ends as it empties.
    pub fn flush(
        &mut self,
        dst: &MipcName,
        now: impl Clock,
        most: FlushMost,
        mut out: impl Outlet,
    ) -> Flush {
        let Some(backlog) = self.by_dst.get_mut(dst) else {
            return Flush::Emptied { sent: 0 };
        };
        let (max, end_when_empty) = match most {
            FlushMost::Drainer(n) => (n, false),
            FlushMost::BeforeNew if backlog.drainer => (1, false),
            FlushMost::BeforeNew => (LOOP_FLUSH_MOST, true),
        };
        let (mut sends, mut sent, mut bytes) = (0, 0, 0);
        while let Some(item) = backlog.items.front() {
            if !item.expired(now) {
                if sends == max {
                    return Flush::Full { sent, bytes };
                }
                sends += 1;
                // After a batch found the queue full: how much room it has now, and whether
                // it could ever hold a whole batch.
                let mut free = None;
                if backlog.blocked && item.batchable {
                    if let Some((now_free, capacity)) = out.room(backlog.queue) {
                        free = Some(now_free);
                        let fits = capacity.saturating_sub(MTEXT_HEADER_LEN);
                        backlog.batch_room = backlog.batch_room.min(fits);
                    }
                }
                let n = batch_len(&backlog.items, backlog.batch_room);
                if n > 1 {
                    if self.built != Some((*dst, n)) {
                        let mut w = batch::Writer::begin(&mut self.batch, &item.bytes, dst);
                        for p in backlog.items.iter().take(n) {
                            w.push(&p.bytes[MTYPE_LEN..]);
                        }
                        w.finish();
                        self.built = Some((*dst, n));
                    }
                    let sent_batch = if free.is_some_and(|f| f < self.batch.len() - MTYPE_LEN) {
                        Err(QueueError::Full)
                    } else {
                        out.send(backlog.queue, &self.batch)
                    };
                    backlog.blocked = sent_batch == Err(QueueError::Full);
                    match sent_batch {
                        Ok(()) => {
                            self.built = None;
                            self.batched += n as u64;
                            for done in backlog.items.drain(..n) {
                                sent += 1;
                                bytes += done.bytes.len();
                                self.bytes -= done.bytes.len();
                                keep_spare(&mut self.spare, done.bytes);
                            }
                            continue;
                        }
                        // Room for one message is not room for the batch: the receiver
                        // frees it soon (it reads what its queue holds), and the batch goes
                        // then; sending the first alone would keep the queue topped up with
                        // single messages, and no batch would ever fit.
                        Err(QueueError::Full) => return Flush::Full { sent, bytes },
                        // Anything else: the first message alone meets it too, below.
                        Err(_) => {}
                    }
                }
                match out.send(backlog.queue, &item.bytes) {
                    Ok(()) => {
                        sent += 1;
                        bytes += item.bytes.len();
                    }
                    Err(QueueError::Full) => return Flush::Full { sent, bytes },
                    Err(err) => {
                        let queue = backlog.queue;
                        self.built = None;
                        let Some(item) = backlog.items.pop_front() else {
                            break;
                        };
                        self.bytes -= item.bytes.len();
                        return Flush::Failed { queue, item, err };
                    }
                }
            }
            self.built = None;
            let Some(done) = backlog.items.pop_front() else {
                break;
            };
            self.bytes -= done.bytes.len();
            keep_spare(&mut self.spare, done.bytes);
        }
        if end_when_empty {
            self.take_out(dst);
        }
        Flush::Emptied { sent }
    }

    /// Removes `dst`'s backlog if it is empty (for whoever answers for it: its drainer, which
    /// then ends, or the receive loop). Returns whether there is no backlog left.
    pub fn remove_if_empty(&mut self, dst: &MipcName) -> bool {
        match self.by_dst.get(dst) {
            None => true,
            Some(b) if b.items.is_empty() => {
                self.take_out(dst);
                true
            }
            Some(_) => false,
        }
    }

    /// Removes the backlog of `dst` (its entry is gone) and returns what was parked.
    pub fn remove(&mut self, dst: &MipcName) -> Vec<Parked> {
        let Some(b) = self.take_out(dst) else {
            return Vec::new();
        };
        self.bytes -= b.items.iter().map(|p| p.bytes.len()).sum::<usize>();
        b.items.into()
    }

    /// Takes `dst`'s backlog out of the map, keeping the count of those without a drainer.
    fn take_out(&mut self, dst: &MipcName) -> Option<Backlog> {
        let b = self.by_dst.remove(dst)?;
        self.built = None;
        if !b.drainer {
            self.without_drainer -= 1;
        }
        Some(b)
    }

    /// Whether the drainer thread answers for `dst`'s backlog (else the receive loop does, or
    /// there is none). (Tests.)
    #[cfg(any(test, feature = "testing"))]
    pub fn has_drainer(&self, dst: &MipcName) -> bool {
        self.by_dst.get(dst).is_some_and(|b| b.drainer)
    }

    /// Whether some backlog has no drainer yet: the receive loop must hand them off
    /// ([`Backlogs::hand_off`]) before it sleeps, or once they have waited too long.
    #[inline(always)]
    pub fn any_without_drainer(&self) -> bool {
        self.without_drainer > 0
    }

    /// Gives every backlog without a drainer one: returns their destinations, for the
    /// drainer thread to take.
    pub fn hand_off(&mut self) -> Vec<MipcName> {
        if self.without_drainer == 0 {
            return Vec::new();
        }
        self.without_drainer = 0;
        self.by_dst
            .iter_mut()
            .filter(|(_, b)| !b.drainer)
            .map(|(n, b)| {
                b.drainer = true;
                *n
            })
            .collect()
    }

    /// Whether the count of backlogs without a drainer is right (the fuzzer checks).
    #[cfg(any(test, feature = "testing"))]
    pub fn counts_hold(&self) -> bool {
        self.without_drainer == self.by_dst.values().filter(|b| !b.drainer).count()
    }

    /// The drainer thread looks at `dst`'s backlog: from now on it answers for it (also when
    /// it was handed an earlier backlog of the same name, which ended).
    pub fn claim(&mut self, dst: &MipcName) {
        if let Some(b) = self.by_dst.get_mut(dst) {
            if !b.drainer {
                b.drainer = true;
                self.without_drainer -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::few_map::FEW;
    use std::time::Duration;

    fn item(n: usize, until: Option<Instant>) -> Parked {
        Parked {
            bytes: vec![n as u8; n],
            until,
            call: None,
            batchable: false,
        }
    }

    #[test]
    fn keeps_order_and_bounds() {
        let mut b = Backlogs::default();
        let d = MipcName::new(b"srv").unwrap();
        let now = Instant::now();
        assert_eq!(b.park(d, QueueId(3), item(10, None), now), Ok(true));
        assert_eq!(b.park(d, QueueId(3), item(20, None), now), Ok(false));
        assert_eq!((b.bytes(), b.items()), (30, 2));
        assert_eq!(
            b.next(&d, now).map(|(q, p)| (q, p.bytes.len())),
            Some((QueueId(3), 10))
        );
        assert_eq!(b.next(&d, now).map(|(_, p)| p.bytes.len()), Some(20));
        assert!(b.has(&d), "still draining until next() finds it empty");
        assert_eq!(b.next(&d, now), None);
        assert!(!b.has(&d));
        for _ in 0..MAX_ITEMS_PER_DESTINATION {
            assert!(b.park(d, QueueId(3), item(1, None), now).is_ok());
        }
        assert!(b.park(d, QueueId(3), item(1, None), now).is_err());
        assert_eq!(b.remove(&d).len(), MAX_ITEMS_PER_DESTINATION);
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn has_answers_the_same_with_few_and_many_backlogs() {
        let mut b = Backlogs::default();
        let now = Instant::now();
        let names: Vec<MipcName> = (0..2 * FEW + 3)
            .map(|i| MipcName::new(format!("d{i}").as_bytes()).unwrap())
            .collect();
        let other = MipcName::new(b"nobody").unwrap();
        // Grow past FEW and shrink back below it, checking every name at every size.
        for (n, d) in names.iter().enumerate() {
            assert_eq!(b.park(*d, QueueId(n as i32), item(4, None), now), Ok(true));
            for (i, x) in names.iter().enumerate() {
                assert_eq!(b.has(x), i <= n, "{n} backlogs, name {i}");
            }
            assert!(!b.has(&other));
        }
        for (n, d) in names.iter().enumerate().rev() {
            if n % 2 == 0 {
                assert_eq!(b.remove(d).len(), 1);
            } else {
                assert!(b.next(d, now).is_some());
                assert!(b.next(d, now).is_none(), "empty: removed");
            }
            for (i, x) in names.iter().enumerate() {
                assert_eq!(b.has(x), i < n, "{n} backlogs left, name {i}");
            }
            assert!(!b.has(&other));
        }
        assert_eq!((b.bytes(), b.items()), (0, 0));
    }

    #[test]
    fn parked_copies_reuse_the_buffers_of_sent_messages() {
        let mut b = Backlogs::default();
        let d = MipcName::new(b"srv").unwrap();
        let now = Instant::now();
        assert_eq!(
            b.park_copy(d, QueueId(3), b"first", Parking::default(), now),
            Ok(true)
        );
        let (_, sent) = b.next_batch(&d, now, 8).unwrap();
        let buffer = sent[0].bytes.as_ptr();
        b.recycle(sent);
        assert_eq!(
            b.park_copy(d, QueueId(3), b"2nd", Parking::default(), now),
            Ok(false)
        );
        let (_, next) = b.next_batch(&d, now, 8).unwrap();
        assert_eq!(next[0].bytes, b"2nd", "the bytes of the new message");
        assert_eq!(next[0].bytes.as_ptr(), buffer, "in the old buffer");
        // The bounds hold as with park(), and a refused message is not copied: no buffer
        // taken or made for it.
        b.recycle(next);
        assert!(b.next_batch(&d, now, 8).is_none(), "sent: the backlog ends");
        for _ in 0..MAX_ITEMS_PER_DESTINATION {
            assert!(b
                .park_copy(d, QueueId(3), b"3rd", Parking::default(), now)
                .is_ok());
        }
        assert!(b.spare.is_empty());
        assert!(b
            .park_copy(d, QueueId(3), b"4th", Parking::default(), now)
            .is_err());
        assert!(b.spare.is_empty());
        assert_eq!(b.items(), MAX_ITEMS_PER_DESTINATION);
        assert_eq!(b.bytes(), 3 * MAX_ITEMS_PER_DESTINATION);
        b.release_spares();
        assert!(b.spare.is_empty());
    }

    /// A parked one-way request of SysV type `mtype` with a `len`-byte payload whose first
    /// byte is `n`, as the relay parks it for an entry that takes batches.
    fn request(mtype: c_long, n: u8, len: usize) -> Parked {
        let mut m = mipc::wire::MsgBuf::boxed();
        let mut payload = vec![0u8; len];
        payload[0] = n;
        m.build(mipc::wire::Build {
            mtype,
            src: &MipcName::new(b"tx").unwrap(),
            dst: &MipcName::new(b"rx").unwrap(),
            msg_type: mtype as u32,
            sync_flag: 0,
            payload: &payload,
            tag: CallTag::request(u32::from(n) + 1),
        });
        Parked {
            bytes: m.as_sendable().to_vec(),
            until: None,
            call: None,
            batchable: true,
        }
    }

    /// A backlog for "rx" of requests 1 to `count` of type 5 with `len`-byte payloads.
    fn requests_parked(count: u8, len: usize) -> (Backlogs, MipcName, Instant) {
        let mut b = Backlogs::default();
        let d = MipcName::new(b"rx").unwrap();
        let now = Instant::now();
        for n in 1..=count {
            b.park(d, QueueId(7), request(5, n, len), now).unwrap();
        }
        (b, d, now)
    }

    /// A queue with `room` bytes free of `capacity` that records what it was sent, and how
    /// often it was asked for its room.
    struct Queue {
        room: usize,
        capacity: usize,
        sent: Vec<Vec<u8>>,
        asked: usize,
    }

    impl Queue {
        fn with_room(room: usize) -> Queue {
            Queue {
                room,
                capacity: 16384,
                sent: Vec::new(),
                asked: 0,
            }
        }
    }

    impl Outlet for &mut Queue {
        fn send(&mut self, _q: QueueId, msg: &[u8]) -> Result<(), QueueError> {
            if msg.len() - MTYPE_LEN > self.room {
                return Err(QueueError::Full);
            }
            self.room -= msg.len() - MTYPE_LEN;
            self.sent.push(msg.to_vec());
            Ok(())
        }
        fn room(&mut self, _q: QueueId) -> Option<(usize, usize)> {
            self.asked += 1;
            Some((self.room, self.capacity))
        }
    }

    /// The first byte of each message a sent batch (or single message) carries.
    fn firsts(sent: &[u8]) -> Vec<u8> {
        let mtext = &sent[MTYPE_LEN..];
        let f = mipc::wire::decode_frame(mtext).unwrap();
        let one = |m: &[u8]| m[mipc::wire::MTEXT_HEADER_LEN];
        if batch::is_batch(&f, mtext) {
            batch::split(f.payload(mtext))
                .unwrap()
                .into_iter()
                .map(one)
                .collect()
        } else {
            vec![one(mtext)]
        }
    }

    #[test]
    fn batchable_neighbours_of_one_type_go_together_as_many_as_fit() {
        // 1-3: type 5, small; 4: type 6; 5: not batchable; 6-30: type 5, 300 B each.
        let (mut b, d, now) = requests_parked(3, 10);
        b.park(d, QueueId(7), request(6, 4, 10), now).unwrap();
        let mut alone = request(5, 5, 10);
        alone.batchable = false;
        b.park(d, QueueId(7), alone, now).unwrap();
        for n in 6..=30 {
            b.park(d, QueueId(7), request(5, n, 300), now).unwrap();
        }
        let mut q = Queue::with_room(1 << 20);
        let out = b.flush(&d, now, FlushMost::Drainer(usize::MAX), &mut q);
        assert!(matches!(out, Flush::Emptied { sent: 30 }), "{out:?}");
        let got: Vec<Vec<u8>> = q.sent.iter().map(|m| firsts(m)).collect();
        // A 300-byte request is 380 bytes of mtext with its tag, 382 with its length: five
        // fit a batch's 2048.
        let mut want = vec![vec![1, 2, 3], vec![4], vec![5]];
        want.extend((6..=30).collect::<Vec<u8>>().chunks(5).map(<[u8]>::to_vec));
        assert_eq!(got, want);
        assert_eq!(b.batched(), 3 + 25);
        assert_eq!(q.asked, 0, "no queue was full: nothing asked");
        assert_eq!((b.bytes(), b.items()), (0, 0));
    }

    #[test]
    fn a_batch_that_did_not_fit_waits_for_room_for_all_of_it() {
        let (mut b, d, now) = requests_parked(8, 100);
        let one = b.by_dst.get(&d).unwrap().items[0].bytes.len() - MTYPE_LEN;
        // Room for two messages, not for the batch of eight: nothing goes, not even one.
        let mut q = Queue::with_room(2 * one);
        let out = b.flush(&d, now, FlushMost::Drainer(usize::MAX), &mut q);
        assert!(matches!(out, Flush::Full { sent: 0, .. }), "{out:?}");
        assert!(q.sent.is_empty());
        // Tried again: the queue is asked for its room, not sent to.
        let out = b.flush(&d, now, FlushMost::Drainer(usize::MAX), &mut q);
        assert!(matches!(out, Flush::Full { sent: 0, .. }), "{out:?}");
        assert_eq!(q.asked, 1);
        // Room for all of it: one batch, in order.
        q.room = 1 << 20;
        let out = b.flush(&d, now, FlushMost::Drainer(usize::MAX), &mut q);
        assert!(matches!(out, Flush::Emptied { sent: 8 }), "{out:?}");
        assert_eq!(q.sent.len(), 1);
        assert_eq!(firsts(&q.sent[0]), (1..=8).collect::<Vec<u8>>());
    }

    #[test]
    fn a_queue_that_can_never_hold_a_whole_batch_gets_smaller_ones() {
        let (mut b, d, now) = requests_parked(12, 100);
        // A queue of 1 000 bytes (a small msg_qbytes), empty: the first batch (12 requests
        // of 180 bytes) is refused, the next ones are cut to what it holds.
        let mut q = Queue::with_room(1000);
        q.capacity = 1000;
        let out = b.flush(&d, now, FlushMost::Drainer(usize::MAX), &mut q);
        assert!(matches!(out, Flush::Full { sent: 0, .. }), "{out:?}");
        let mut got = Vec::new();
        for _ in 0..4 {
            let _ = b.flush(&d, now, FlushMost::Drainer(usize::MAX), &mut q);
            // The receiver reads everything.
            for m in q.sent.drain(..) {
                assert!(m.len() - MTYPE_LEN <= 1000, "a batch the queue can hold");
                got.extend(firsts(&m));
            }
            q.room = q.capacity;
        }
        assert_eq!(got, (1..=12).collect::<Vec<u8>>(), "all, in order");
        assert_eq!(b.items(), 0);
        assert!(b.batched() >= 10, "in batches still: {}", b.batched());
    }

    #[test]
    fn a_flush_sends_in_order_until_the_queue_is_full_and_skips_expired_calls() {
        let mut b = Backlogs::default();
        let d = MipcName::new(b"srv").unwrap();
        let now = Instant::now();
        let soon = Some(now + Duration::from_millis(5));
        for (n, until) in [(1, None), (2, soon), (3, None), (4, None)] {
            b.park(d, QueueId(7), item(n, until), now).unwrap();
        }
        let later = now + Duration::from_millis(6);
        // Room for two: the first, then (the expired second skipped) the third.
        let mut got = Vec::new();
        let out = b.flush(
            &d,
            later,
            FlushMost::Drainer(usize::MAX),
            |q: QueueId, bytes: &[u8]| {
                assert_eq!(q, QueueId(7));
                if got.len() == 2 {
                    return Err(QueueError::Full);
                }
                got.push(bytes.len());
                Ok(())
            },
        );
        assert!(matches!(out, Flush::Full { sent: 2, bytes: 4 }), "{out:?}");
        assert_eq!(got, [1, 3]);
        assert_eq!((b.items(), b.bytes()), (1, 4));
        assert!(!b.remove_if_empty(&d), "the fourth still waits");
        // A failed send takes the message out, for its caller to be told.
        let out = b.flush(
            &d,
            later,
            FlushMost::Drainer(usize::MAX),
            |_: QueueId, _: &[u8]| Err(QueueError::Gone),
        );
        let failed = matches!(out, Flush::Failed { ref item, err: QueueError::Gone, .. }
            if item.bytes.len() == 4);
        assert!(failed, "{out:?}");
        // Emptied: the backlog stays (new messages go straight on) until its drainer ends it.
        assert!(matches!(
            b.flush(&d, later, FlushMost::Drainer(1), |_: QueueId, _: &[u8]| Ok(
                ()
            )),
            Flush::Emptied { sent: 0 }
        ));
        assert!(b.has(&d));
        assert!(b.remove_if_empty(&d));
        assert!(!b.has(&d));
        assert_eq!((b.items(), b.bytes()), (0, 0));
    }

    #[test]
    fn the_receive_loop_answers_for_a_backlog_until_it_is_handed_off() {
        let mut b = Backlogs::default();
        let now = Instant::now();
        let d: Vec<MipcName> = (0..5)
            .map(|i| MipcName::new(format!("d{i}").as_bytes()).unwrap())
            .collect();
        assert!(!b.any_without_drainer());
        assert_eq!(b.park(d[0], QueueId(1), item(1, None), now), Ok(true));
        assert_eq!(b.park(d[1], QueueId(2), item(1, None), now), Ok(true));
        assert_eq!(b.park(d[1], QueueId(2), item(1, None), now), Ok(false));
        assert!(b.any_without_drainer() && !b.has_drainer(&d[0]));
        let mut handed = b.hand_off();
        handed.sort_by_key(|n| n.as_bytes().to_vec());
        assert_eq!(handed, vec![d[0], d[1]], "each backlog once");
        assert!(!b.any_without_drainer() && b.has_drainer(&d[0]) && b.has_drainer(&d[1]));
        assert!(b.hand_off().is_empty(), "nothing left to hand off");
        // A drainer that looks at a backlog the loop still answers for takes it over.
        b.park(d[2], QueueId(3), item(1, None), now).unwrap();
        b.claim(&d[2]);
        assert!(!b.any_without_drainer() && b.hand_off().is_empty());
        // A backlog that ends before it is handed off leaves nothing to hand off, whichever
        // way it ends.
        b.park(d[3], QueueId(4), item(1, None), now).unwrap();
        assert_eq!(b.remove(&d[3]).len(), 1);
        b.park(d[4], QueueId(5), item(1, None), now).unwrap();
        assert!(b.next(&d[4], now).is_some());
        assert!(b.remove_if_empty(&d[4]));
        assert!(!b.any_without_drainer() && b.hand_off().is_empty());
        assert!(b.counts_hold());
    }

    #[test]
    fn expired_calls_are_dropped_and_free_room() {
        let mut b = Backlogs::default();
        let d = MipcName::new(b"srv").unwrap();
        let now = Instant::now();
        let soon = Some(now + Duration::from_millis(5));
        b.park(d, QueueId(1), item(100, soon), now).unwrap();
        b.park(d, QueueId(1), item(7, None), now).unwrap();
        let later = now + Duration::from_millis(6);
        assert_eq!(b.next(&d, later).map(|(_, p)| p.bytes.len()), Some(7));
        assert_eq!(b.bytes(), 0);
        let big = MAX_BYTES / 2 + 1;
        b.park(d, QueueId(1), item(big, soon), now).unwrap();
        assert!(
            b.park(d, QueueId(1), item(big, None), now).is_err(),
            "over the byte bound"
        );
        assert!(
            b.park(d, QueueId(1), item(big, None), later).is_ok(),
            "the expired one made room"
        );
    }
}
