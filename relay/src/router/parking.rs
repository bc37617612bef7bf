//! Messages for a full queue: parked in the destination's backlog (`backlog.rs`) and sent
//! when there is room: by the receive loop, before each new message to that destination,
//! and, once the loop hands the backlog off ([`Router::hand_off_backlogs`]), by a drainer.

use super::calls::WaitingCall;
use super::route::{self, Delivery};
use super::{Handled, Now, Port, Rejected, Router};
use crate::backlog::{self, Clock, Flush, FlushMost, Parked, Parking};
use mipc::error::RelayErrorCode;
use mipc::sysv::{QueueError, QueueId};
use mipc::MipcName;
use std::time::{Duration, Instant};

/// What a drainer's look at its backlog did ([`Router::drain_parked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// The backlog is empty and gone.
    Done,
    /// The queue is full again after `sent` messages of `bytes` in all.
    Waiting {
        /// Messages sent in this look.
        sent: usize,
        /// Their bytes.
        bytes: usize,
    },
}

/// The router's port as a backlog's outlet.
struct Outlet<'a, P>(&'a mut P);

impl<P: Port> backlog::Outlet for Outlet<'_, P> {
    fn send(&mut self, q: QueueId, msg: &[u8]) -> Result<(), QueueError> {
        self.0.send(q, msg)
    }
    fn room(&mut self, q: QueueId) -> Option<(usize, usize)> {
        self.0.queue_room(q)
    }
}

/// How long a backlog may wait for the receive loop before a drainer takes it over, while
/// the loop is kept busy by other messages (when the root queue empties, the loop hands
/// backlogs off at once).
pub const HAND_OFF_AFTER: Duration = Duration::from_millis(1);

impl Router {
    /// Keeps a message for a full destination (`backlog.rs`); past the bounds a sync caller
    /// gets "destination busy" and an async message is dropped.
    pub(super) fn park(
        &mut self,
        port: &mut impl Port,
        d: &Delivery<'_>,
    ) -> Result<Handled, Rejected> {
        let Delivery {
            msg,
            frame,
            dst,
            queue,
            bytes,
            call,
            now,
            ..
        } = *d;
        // The destination's name from its slot, the rest from the frame: a flood to a slow
        // receiver parks most of its messages, and decoding the whole header (both names
        // copied out) would cost each of them more than parking it.
        let Some(&dst_name) = self.entries.name_at(dst) else {
            return self.refuse_parked(port, msg, call);
        };
        let until = (frame.sync_flag > 0)
            .then(|| now.get() + Duration::from_millis(frame.sync_flag as u64));
        let waiting = match call {
            Some(tag) => Some(backlog::Call {
                caller: route::header(msg)?.src,
                mtype: msg.mtype(),
                api: frame.msg_type,
                tag,
            }),
            None => None,
        };
        // A one-way request to an entry that takes batches may go in one with its
        // neighbours (`backlog.rs`, `mipc::wire::batch`).
        let batchable = call.is_none()
            && frame.sync_flag == 0
            && frame.reply_queue.is_none()
            && frame.tag.is_some_and(|t| !t.is_reply())
            && frame.msg_type <= mipc::wire::MIPC_API_ID_MAX
            && self.entries.at(dst).is_some_and(|e| e.batch)
            && backlog::batching();
        match self.backlogs.park_copy(
            dst_name,
            queue,
            bytes,
            Parking {
                until,
                call: waiting,
                batchable,
            },
            now,
        ) {
            Ok(_) => Ok(Handled::Parked),
            // An async message past the bounds is dropped: no call to fail, so nothing of
            // its header is read (under a flood to a receiver that cannot keep up, most
            // messages end here).
            Err(_) if call.is_none() => Err(Rejected::Busy(dst_name)),
            Err(_) => self.refuse_parked(port, msg, call),
        }
    }

    /// A message that could not be parked: its sync caller's call ends with "destination
    /// busy", an async message is dropped (and counted).
    #[cold]
    fn refuse_parked(
        &mut self,
        port: &mut impl Port,
        msg: &mipc::wire::MsgBuf,
        call: Option<mipc::wire::CallTag>,
    ) -> Result<Handled, Rejected> {
        let hdr = &route::header(msg)?;
        self.forget_call(port, &hdr.src, call);
        self.refuse(port, msg, hdr, Rejected::Busy(hdr.dst))
    }

    /// The next parked message for `dst` and the queue to send it to, taken out of the
    /// backlog, or `None` when it is empty (it is then gone). For tests, which look at what
    /// was parked; the relay sends with [`Router::drain_parked`].
    #[cfg(any(test, feature = "testing"))]
    pub fn next_parked(&mut self, dst: &MipcName, now: Instant) -> Option<(QueueId, Parked)> {
        self.backlogs.next(dst, now)
    }

    /// Before a new message to `dst`, which has a backlog: sends what it can of the backlog
    /// first, without waiting ([`FlushMost::BeforeNew`]: one message for one once a drainer
    /// answers for the backlog, else up to two, so that the backlog shrinks whenever the
    /// receiver reads faster than messages come, and ends once it is empty). Returns whether
    /// the backlog emptied (the new message may then go straight to the queue; the order
    /// holds).
    #[inline(never)]
    pub(super) fn flush_parked(&mut self, port: &mut impl Port, dst: &MipcName, now: &Now) -> bool {
        self.send_parked(port, dst, now, FlushMost::BeforeNew)
            .is_none()
    }

    /// Whether a backlog waits for [`Router::hand_off_backlogs`].
    #[inline(always)]
    pub fn backlogs_without_drainer(&self) -> bool {
        self.backlogs.any_without_drainer()
    }

    /// Gives every backlog the receive loop answers for a drainer ([`Port::drain`]): the
    /// loop does so before it sleeps on its root queue (no new message will send them), and
    /// when one has waited [`HAND_OFF_AFTER`] (other destinations' messages keep it busy,
    /// and none comes for that one). Returns how many.
    pub fn hand_off_backlogs(&mut self, port: &mut impl Port) -> usize {
        let names = self.backlogs.hand_off();
        for dst in &names {
            port.drain(*dst);
        }
        names.len()
    }

    /// For the drainer of `dst`: sends what fits of its backlog now, without waiting.
    /// [`Drained::Done`] when nothing is left: the backlog is then gone, and the drainer ends.
    pub fn drain_parked(&mut self, port: &mut impl Port, dst: &MipcName, now: Instant) -> Drained {
        self.backlogs.claim(dst);
        match self.send_parked(port, dst, now, FlushMost::Drainer(usize::MAX)) {
            None => {
                self.backlogs.remove_if_empty(dst);
                Drained::Done
            }
            Some((sent, bytes)) => Drained::Waiting { sent, bytes },
        }
    }

    /// Sends up to `most` of `dst`'s parked messages without waiting, a failed send handled
    /// as it comes ([`Router::parked_failed`]): `None` when the backlog emptied, else the
    /// messages and bytes sent before the queue was full or `most` was reached.
    fn send_parked(
        &mut self,
        port: &mut impl Port,
        dst: &MipcName,
        now: impl Clock,
        most: FlushMost,
    ) -> Option<(usize, usize)> {
        loop {
            match self.backlogs.flush(dst, now, most, Outlet(&mut *port)) {
                Flush::Emptied { .. } => return None,
                Flush::Full { sent, bytes } => return Some((sent, bytes)),
                Flush::Failed { queue, item, err } => {
                    self.parked_failed(port, dst, queue, item, err)
                }
            }
        }
    }

    /// For a drainer, when every backlog has emptied: forget the buffers kept for reuse.
    pub fn release_parking_buffers(&mut self) {
        self.backlogs.release_spares();
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

    pub(super) fn fail_parked(&mut self, port: &mut impl Port, item: Parked, code: RelayErrorCode) {
        let Some(c) = item.call else { return };
        let Some(queue) = self
            .entries
            .get(&c.caller)
            .filter(|e| e.ext)
            .map(|e| e.queue)
        else {
            return;
        };
        let call = WaitingCall {
            caller: c.caller,
            queue,
            mtype: c.mtype,
            api: c.api,
            tag: c.tag,
        };
        self.send_error(port, &call, code);
    }

    /// Whether the backlogs' count of those without a drainer is right (the fuzzer checks).
    #[cfg(any(test, feature = "testing"))]
    pub fn backlog_counts_hold(&self) -> bool {
        self.backlogs.counts_hold()
    }

    /// Bytes waiting in backlogs.
    pub fn parked_bytes(&self) -> usize {
        self.backlogs.bytes()
    }

    /// Bytes and messages waiting in backlogs (for tests).
    #[cfg(any(test, feature = "testing"))]
    pub fn backlog(&self) -> (usize, usize) {
        (self.backlogs.bytes(), self.backlogs.items())
    }
}
