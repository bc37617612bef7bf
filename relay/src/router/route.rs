//! The route of an ordinary message: checked, its destination looked up once, refused if it
//! would close a deadlock, given a sender trailer if the destination asked for one, then sent
//! to the destination's queue or parked behind its backlog.

use super::entries::Slot;
use super::{Handled, Now, Port, Rejected, Router};
use mipc::events::MIPC_MSG_TYPE_PUBLISH;
use mipc::sysv::{QueueError, QueueId};
use mipc::wire::{self, CallTag, Header, Kind, MsgBuf};
use mipc::MipcName;

/// A message on its way to a registered destination (what [`Router::park`] needs to keep
/// it).
pub(super) struct Delivery<'a> {
    pub(super) msg: &'a MsgBuf,
    pub(super) hdr: &'a Header,
    /// The source's slot in the table (none: it is not registered).
    pub(super) src: Option<Slot>,
    /// The destination's slot in the table.
    pub(super) dst: Slot,
    /// The destination's queue.
    pub(super) queue: QueueId,
    /// The bytes to send (without the tag for a legacy destination).
    pub(super) bytes: &'a [u8],
    /// The call's tag when it is a sync request.
    pub(super) call: Option<CallTag>,
    pub(super) now: &'a Now,
}

impl Router {
    /// Routes one message: to the relay's own handlers, an event's subscribers, or its
    /// destination's queue. `msg` may get a sender trailer for the send; its length is put
    /// back before this returns.
    pub(super) fn route(
        &mut self,
        port: &mut impl Port,
        msg: &mut MsgBuf,
        now: &Now,
    ) -> Result<Handled, Rejected> {
        let hdr = msg.decode().map_err(Rejected::Malformed)?;
        if hdr.msg_type == MIPC_MSG_TYPE_PUBLISH {
            // Its dst_name is the event's name, not an entry's.
            return self.publish(port, msg, &hdr, now.get());
        }
        if hdr.dst.is_relay() {
            return self.control(port, msg, &hdr, now.get());
        }
        if wire::is_control(hdr.msg_type) && hdr.msg_type != Kind::Ping.msg_type() {
            return Err(Rejected::Control(hdr.msg_type, hdr.src));
        }
        let Some((dst_slot, dst)) = self.entries.find_mut(&hdr.dst) else {
            return self.refuse(
                port,
                msg,
                &hdr,
                Rejected::NoSuchDestination(hdr.src, hdr.dst),
            );
        };
        // One lookup of the destination serves the whole route: its queue, whether it knows
        // tags or wants the sender's pid, whether its pid is still to learn, the first link of
        // the deadlock chain, and its traffic counters (counted now, taken back if the message
        // is not delivered). One lookup of the source (its slot) serves its pid, its pending
        // call and its counters.
        dst.seen.msgs_in += 1;
        dst.seen.bytes_in += hdr.msg_size as u64;
        let (queue, dst_ext, dst_sender, pid_known, dst_pending) = (
            dst.queue,
            dst.ext,
            dst.sender,
            dst.pid.is_some(),
            dst.pending,
        );
        let src_slot = self.entries.find(&hdr.src);
        let call = hdr.tag.filter(|t| !t.is_reply() && hdr.sync_flag != 0);
        if call.is_some() && self.would_deadlock_from(&hdr.src, dst_pending, now) {
            self.uncount_received(dst_slot, &hdr);
            return self.refuse(port, msg, &hdr, Rejected::Deadlock(hdr.src, hdr.dst));
        }
        // A receiver that asked for the sender's pid gets the message with a sender trailer;
        // the others get the received bytes themselves (without the tag for a legacy one).
        // The trailer goes right into the receive buffer (the relay's own) when nothing
        // follows the body and tag there, and is taken off again after the send; otherwise
        // (a reply queue, a trailer already) the message is copied without what follows.
        let received = msg.mtext_len();
        let mut trailed = false;
        let mut carried = None;
        if dst_sender {
            let pid = self.sender_pid_at(src_slot, &hdr.src);
            if received == hdr.mtext_len(hdr.tag.is_some()) {
                msg.append_sender(pid);
                trailed = true;
            } else {
                let mut out = self.fanout.take().unwrap_or_else(MsgBuf::boxed);
                out.copy_with_sender(msg, &hdr, true, pid);
                carried = Some(out);
            }
        }
        let sent: &MsgBuf = msg;
        let bytes = match &carried {
            Some(c) => c.as_sendable(),
            None if dst_ext || trailed => sent.as_sendable(),
            None => sent.as_sendable_untagged(&hdr),
        };
        let d = Delivery {
            msg: sent,
            hdr: &hdr,
            src: src_slot,
            dst: dst_slot,
            queue,
            bytes,
            call,
            now,
        };
        let out = self.forward(port, &d, pid_known);
        if carried.is_some() {
            self.fanout = carried;
        }
        if trailed {
            msg.set_mtext_len(received);
        }
        out
    }

    /// The pid of `src` as the relay knows it from its greeting, 0 when unknown (a legacy
    /// entry, or none of that name).
    pub(super) fn sender_pid(&self, src: &MipcName) -> u32 {
        self.sender_pid_at(self.entries.find(src), src)
    }

    /// [`Router::sender_pid`] of `src`, whose slot was looked up already.
    fn sender_pid_at(&self, slot: Option<Slot>, src: &MipcName) -> u32 {
        match slot.and_then(|s| self.entries.at(s)) {
            Some(e) => e.pid.filter(|_| e.ext).map_or(0, |p| p as u32),
            // Gone a moment ago: its last messages may still have been on the root queue.
            None => self
                .gone
                .iter()
                .rev()
                .find(|(n, _)| n == src)
                .map_or(0, |&(_, pid)| pid),
        }
    }

    /// Sends a checked message to its destination's queue (or its backlog).
    fn forward(
        &mut self,
        port: &mut impl Port,
        d: &Delivery<'_>,
        pid_known: bool,
    ) -> Result<Handled, Rejected> {
        let Delivery {
            msg,
            hdr,
            src,
            dst,
            queue,
            bytes,
            call,
            ..
        } = *d;
        // Recorded before the send: once the server has the request, the call is pending
        // (also for a relay started after this one is killed right after the send).
        self.note_delivery(port, d);
        if self.backlogs.has(&hdr.dst) {
            // Behind messages already waiting for room: keep the order.
            let out = self.park(port, d);
            match out {
                Ok(_) => self.count_sent(src, hdr),
                Err(_) => self.uncount_received(dst, hdr),
            }
            return out;
        }
        match port.send(queue, bytes) {
            Ok(()) => {
                self.count_sent(src, hdr);
                if !pid_known {
                    self.learn_pid(port, &hdr.dst);
                }
                Ok(Handled::Forwarded)
            }
            Err(QueueError::Full) => {
                let out = self.park(port, d);
                match out {
                    Ok(_) => self.count_sent(src, hdr),
                    Err(_) => self.uncount_received(dst, hdr),
                }
                out
            }
            Err(QueueError::Gone) => {
                self.forget_call(port, &hdr.src, call);
                self.drop_entry(port, &hdr.dst, false);
                self.refuse(port, msg, hdr, Rejected::Gone(hdr.dst))
            }
            Err(e) => {
                self.uncount_received(dst, hdr);
                self.forget_call(port, &hdr.src, call);
                self.refuse(port, msg, hdr, Rejected::Queue(hdr.dst, e))
            }
        }
    }
}
