//! Messages for a full queue: parked in the destination's backlog (`backlog.rs`) and sent
//! by its drainer when there is room.

use super::calls::WaitingCall;
use super::route::{self, Delivery};
use super::{Handled, Port, Rejected, Router};
use crate::backlog::{self, Parked};
use mipc::error::RelayErrorCode;
use mipc::sysv::{QueueError, QueueId};
use mipc::MipcName;
use std::time::{Duration, Instant};

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
        let now = now.get();
        let until =
            (frame.sync_flag > 0).then(|| now + Duration::from_millis(frame.sync_flag as u64));
        let waiting = match call {
            Some(tag) => Some(backlog::Call {
                caller: route::header(msg)?.src,
                mtype: msg.mtype(),
                api: frame.msg_type,
                tag,
            }),
            None => None,
        };
        match self
            .backlogs
            .park_copy(dst_name, queue, bytes, until, waiting, now)
        {
            Ok(fresh) => {
                if fresh {
                    port.drain(dst_name);
                }
                Ok(Handled::Parked)
            }
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

    /// For the drainer of `dst`: the next parked message and the queue to send it to, or
    /// `None` when the backlog is empty (it is then gone, and the drainer ends). For tests
    /// and the fuzzer; the drainer takes batches ([`Router::next_parked_batch`]).
    #[cfg(any(test, feature = "testing"))]
    pub fn next_parked(&mut self, dst: &MipcName, now: Instant) -> Option<(QueueId, Parked)> {
        self.backlogs.next(dst, now)
    }

    /// For a drainer: the messages it sent, whose buffers the next parked ones reuse.
    pub fn recycle_parked(&mut self, sent: impl IntoIterator<Item = Parked>) {
        self.backlogs.recycle(sent);
    }

    /// For a drainer, when every backlog has emptied: forget the buffers kept for reuse.
    pub fn release_parking_buffers(&mut self) {
        self.backlogs.release_spares();
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
