//! One-way requests the receive loop reads one after another for one receiver, sent to it as
//! one batch (`mipc::wire::batch`, docs/PROTOCOL.md §10).
//!
//! A sender faster than its receiver (a flood, a burst of notifications) leaves runs of
//! one-way requests for one entry on the root queue. Forwarded one by one, each costs the
//! relay a `msgsnd` and the receiver a `msgrcv`, about 0.7 us of kernel time each whatever the
//! size (`bench/queue_costs.c`), and the receiver's rate decides what a flood loses. The
//! backlog (`parking.rs`) sends in batches only once the receiver's queue is full; here they
//! go together before it fills. A one-way request that follows another message for the same
//! entry, if that entry's library takes batches, is not sent at once: it is kept here, and the
//! requests for that entry that the loop reads next join it. They go out when the next message
//! is for anyone else (or may not join), when no more fit one batch, and when the root queue
//! is empty: the loop sends them before it sleeps. The first request of a run goes at once,
//! which costs no more than a look at two numbers; one request kept alone is sent as itself.
//!
//! The order every receiver sees is the order the relay read, as before: nothing is sent
//! anywhere while requests wait here (any other message sends them first), so a request
//! cannot be overtaken by a message that the receiver of another message sends in reply.
//!
//! What may join: a tagged one-way request with an api id and no reply queue, to an entry
//! that asked for batches in its HELLO, whose pid the relay knows and that has no backlog; one
//! SysV type per batch. The rest of a message's route (counters, the monitors) is done when it
//! is read, as for any other; a batch that cannot be sent (the queue is full, or gone) falls
//! back to what each request would have met alone: parked behind the full queue, or refused.
//!
//! Sync requests go at once. They could join (the library takes a batch apart on every
//! receive path), and with 16 concurrent callers about half of them come right after one for
//! the same server; but kept, they measured slower with 4 callers (`python3
//! bench/calls_check.py --reps 14 --callers 4`: 67 091 against 70 506 calls/s, relay CPU per
//! call 7.94 against 7.69 us) and no better beyond the noise with 16: a kept request waits
//! for the next message, or for a look at an empty root queue, while its server may be idle.

use super::entries::{Key, Slot};
use super::route::Delivery;
use super::{Handled, Now, Port, Rejected, Router};
use mipc::sysv::{QueueError, QueueId};
use mipc::wire::{self, batch, MsgBuf, MTYPE_LEN};
use std::os::raw::c_long;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether routers made from now on gather requests (`MIPC_GATHER=0` or `MIPC_BATCH=0` on
/// the relay turns it off).
static GATHERING: AtomicBool = AtomicBool::new(true);

/// Turns gathering requests into batches on or off for routers made from now on.
pub fn set_gathering(on: bool) {
    GATHERING.store(on, Ordering::Relaxed);
}

/// Whether routers made from now on gather requests.
pub fn gathering() -> bool {
    GATHERING.load(Ordering::Relaxed)
}

/// The entry requests are gathered for.
#[derive(Clone, Copy)]
struct To {
    key: Key,
    slot: Slot,
    queue: QueueId,
}

/// A gathered request: where its bytes end in [`Gather::parts`], and what is counted once it
/// is sent.
#[derive(Clone, Copy)]
struct Item {
    end: usize,
    src: Option<Slot>,
    size: u32,
}

/// The requests gathered so far.
pub(super) struct Gather {
    /// Whether requests are gathered at all.
    on: bool,
    to: Option<To>,
    /// Messages handled (wrapping): with `last`, tells a run of messages to one entry.
    pub(super) seq: u32,
    /// The slot of the entry that message `.1` went to ([`Gather::seq`] then).
    last: (Slot, u32),
    /// Each request's whole message (`mtype` first), back to back.
    parts: Vec<u8>,
    items: Vec<Item>,
    /// Payload bytes a batch of them takes.
    payload: usize,
    /// Where the batch is built.
    batch: Vec<u8>,
    /// Requests sent in gathered batches, ever (`mipc stats`).
    sent: u64,
    /// What a batch that could not be sent did to its requests, for the loop to log.
    failed: Vec<Result<Handled, Rejected>>,
}

impl Default for Gather {
    fn default() -> Gather {
        Gather {
            on: gathering(),
            to: None,
            seq: 0,
            last: (Slot::NONE, 0),
            parts: Vec::new(),
            items: Vec::new(),
            payload: 0,
            batch: Vec::new(),
            sent: 0,
            failed: Vec::new(),
        }
    }
}

impl Gather {
    /// Whether requests wait.
    #[inline(always)]
    pub(super) fn pending(&self) -> bool {
        self.to.is_some()
    }

    /// Whether a message to `key` of SysV type bytes `mtype` and `mtext_len` bytes may join.
    fn takes(&self, key: &Key, mtype: &[u8], mtext_len: usize) -> bool {
        self.to.is_some_and(|t| t.key == *key)
            && self.parts.get(..MTYPE_LEN) == Some(mtype)
            && self.payload + batch::LEN_PREFIX + mtext_len <= batch::ROOM
    }

    fn push(&mut self, bytes: &[u8], src: Option<Slot>, size: u32) {
        self.parts.extend_from_slice(bytes);
        self.payload += batch::LEN_PREFIX + (bytes.len() - MTYPE_LEN);
        self.items.push(Item {
            end: self.parts.len(),
            src,
            size,
        });
    }
}

impl Router {
    /// Turns gathering requests on or off for this router (it starts as [`gathering`] says);
    /// requests gathered already still go with [`Router::flush_gathered`].
    pub fn set_gathering(&mut self, on: bool) {
        self.gather.on = on;
    }

    /// Whether requests wait to be sent ([`Router::flush_gathered`]): the receive loop then
    /// looks for its next message without sleeping, and sends them when there is none.
    #[inline(always)]
    pub fn gathered(&self) -> bool {
        self.gather.pending()
    }

    /// Requests sent in gathered batches since the relay started.
    pub fn gathered_sent(&self) -> u64 {
        self.gather.sent
    }

    /// Before a message of SysV type `msg_type` to `dst_key` is routed: sends the gathered
    /// requests unless it may join them (it then goes on to [`Router::gather`]).
    #[inline(always)]
    pub(super) fn settle_gathered(&mut self, port: &mut impl Port, dst_key: &Key, msg_type: u32) {
        if self.gather.pending()
            && !(self.gather.to.is_some_and(|t| t.key == *dst_key)
                && msg_type <= wire::MIPC_API_ID_MAX)
        {
            self.flush_gathered(port);
        }
    }

    /// Keeps a request on its way to a queue with room, instead of sending it, if it may be
    /// gathered (see the module's doc). `Some` when it was kept; `None`: send it now (the
    /// requests gathered before it went first; they may have parked).
    #[inline(always)]
    pub(super) fn gather(
        &mut self,
        port: &mut impl Port,
        d: &Delivery<'_>,
        dst_key: &Key,
    ) -> Option<Result<Handled, Rejected>> {
        let g = &mut self.gather;
        if !g.pending() {
            // A sync call's request or answer: nothing waits, and nothing more is done.
            if d.frame.sync_flag != 0 || d.frame.tag.is_none_or(|t| t.is_reply()) {
                return None;
            }
            if g.last != (d.dst, g.seq.wrapping_sub(1)) {
                // The first of a run (the message before went elsewhere) goes at once.
                g.last = (d.dst, g.seq);
                return None;
            }
        }
        g.last = (d.dst, g.seq);
        self.gather_next(port, d, dst_key)
    }

    /// [`Router::gather`] past the first request of a run.
    #[inline(never)]
    fn gather_next(
        &mut self,
        port: &mut impl Port,
        d: &Delivery<'_>,
        dst_key: &Key,
    ) -> Option<Result<Handled, Rejected>> {
        let f = d.frame;
        let mtext_len = d.bytes.len() - MTYPE_LEN;
        // Sync requests go at once: kept, calls measured slower (the module's doc).
        let may = d.call.is_none()
            && f.sync_flag == 0
            && f.tag.is_some_and(|t| !t.is_reply())
            && f.reply_queue.is_none()
            && f.msg_type <= wire::MIPC_API_ID_MAX
            && batch::LEN_PREFIX + mtext_len <= batch::ROOM
            && self.entries.at(d.dst).is_some_and(|e| e.batch)
            && self.gather.on;
        let mtype = &d.bytes[..MTYPE_LEN];
        if self.gather.pending() && !(may && self.gather.takes(dst_key, mtype, mtext_len)) {
            self.flush_gathered(port);
        }
        if !may
            || self
                .entries
                .name_at(d.dst)
                .is_some_and(|n| self.backlogs.has(n))
        {
            // It may not join, or its queue was found full (maybe by the requests gathered
            // before it, just now): it goes its own way, behind any backlog.
            return None;
        }
        if !self.gather.pending() {
            self.gather.to = Some(To {
                key: *dst_key,
                slot: d.dst,
                queue: d.queue,
            });
        }
        self.gather.push(d.bytes, d.src, f.msg_size);
        Some(Ok(Handled::Forwarded))
    }

    /// Sends the gathered requests: one alone as itself, more as a batch. Out of line: no
    /// call of one caller at a time comes here.
    #[inline(never)]
    pub fn flush_gathered(&mut self, port: &mut impl Port) {
        let Some(to) = self.gather.to.take() else {
            return;
        };
        let items = std::mem::take(&mut self.gather.items);
        let parts = std::mem::take(&mut self.gather.parts);
        self.gather.payload = 0;
        let dst = self.entries.name_at(to.slot).copied();
        let sent = match (items.as_slice(), dst) {
            // Its entry went (a death the watcher handled at once drops the gathered
            // requests first, so this is not seen).
            (_, None) => Err(QueueError::Gone),
            ([_], _) => port.send(to.queue, &parts),
            (_, Some(dst)) => {
                let mut w = batch::Writer::begin(&mut self.gather.batch, &parts[..MTYPE_LEN], &dst);
                let mut start = 0;
                for it in &items {
                    w.push(&parts[start + MTYPE_LEN..it.end]);
                    start = it.end;
                }
                port.send(to.queue, w.finish())
            }
        };
        match sent {
            Ok(()) => {
                for it in &items {
                    self.count_sent(it.src, it.size);
                }
                if items.len() > 1 {
                    self.gather.sent += items.len() as u64;
                }
            }
            Err(e) => self.gathered_failed(port, to, &items, &parts, e),
        }
        // The buffers are kept for the next gathering.
        self.gather.items = items;
        self.gather.items.clear();
        self.gather.parts = parts;
        self.gather.parts.clear();
    }

    /// What the loop should log of batches that could not be sent (taken out).
    pub fn take_gather_failures(&mut self) -> Vec<Result<Handled, Rejected>> {
        std::mem::take(&mut self.gather.failed)
    }

    /// Whether a batch that could not be sent left something to log.
    #[inline(always)]
    pub fn gather_failed(&self) -> bool {
        !self.gather.failed.is_empty()
    }

    /// A batch of gathered requests could not be sent: each meets what it would have met
    /// alone (parked behind a full queue, or refused), in order.
    #[cold]
    #[inline(never)]
    fn gathered_failed(
        &mut self,
        port: &mut impl Port,
        to: To,
        items: &[Item],
        parts: &[u8],
        e: QueueError,
    ) {
        let now = Now::lazy();
        let mut msg = MsgBuf::boxed();
        let mut start = 0;
        for it in items {
            let bytes = &parts[start..it.end];
            start = it.end;
            let mut m = [0u8; MTYPE_LEN];
            m.copy_from_slice(&bytes[..MTYPE_LEN]);
            msg.set_message(c_long::from_ne_bytes(m), &bytes[MTYPE_LEN..]);
            let Ok(frame) = wire::decode_frame(msg.mtext()) else {
                continue; // it was checked when read
            };
            let call = frame.tag.filter(|t| !t.is_reply() && frame.sync_flag != 0);
            let d = Delivery {
                msg: &msg,
                frame: &frame,
                src: it.src,
                dst: to.slot,
                queue: to.queue,
                bytes,
                call,
                now: &now,
            };
            let out = match e {
                QueueError::Full => self.park_counted(port, &d),
                _ => self.send_failed(port, &d, e),
            };
            self.stats.forwarded = self.stats.forwarded.saturating_sub(1);
            match out {
                Ok(Handled::Parked) => self.stats.parked += 1,
                Err(_) => self.stats.rejected += 1,
                Ok(_) => {}
            }
            self.gather.failed.push(out);
        }
    }
}
