//! The route of an ordinary message: checked, its destination looked up once, refused if it
//! would close a deadlock, given a sender trailer if the destination asked for one, then sent
//! to the destination's queue or parked behind its backlog.

use super::entries::{Key, Slot};
use super::{Entry, Handled, Now, Port, Rejected, Router};
use mipc::events::MIPC_MSG_TYPE_PUBLISH;
use mipc::sysv::{QueueError, QueueId};
use mipc::wire::{self, CallTag, Frame, Header, Kind, MsgBuf, MIPC_NAME_MAX_LEN};
use mipc::MipcName;

/// A message on its way to a registered destination (what [`Router::park`] needs to keep
/// it). Its names stay in the buffer: the table has them at the slots.
pub(super) struct Delivery<'a> {
    pub(super) msg: &'a MsgBuf,
    pub(super) frame: &'a Frame,
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

/// The whole header of a message that passed `wire::decode_frame`, names copied out: for
/// the paths that need them as names (the relay's own messages, refusals, backlogs).
pub(super) fn header(msg: &MsgBuf) -> Result<Header, Rejected> {
    msg.decode().map_err(Rejected::Malformed)
}

/// The keys of the source and destination names of a checked message, read in place.
fn name_keys(mtext: &[u8]) -> (Key, Key) {
    let (src, rest) = mtext.split_at(MIPC_NAME_MAX_LEN.min(mtext.len()));
    (Key::in_field(src), Key::in_field(rest))
}

/// The pid a receiver is told for a sender with entry `e` (0: unknown, a legacy entry).
fn greeted_pid(e: &Entry) -> u32 {
    e.pid.filter(|_| e.ext).map_or(0, |p| p as u32)
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
        // The checks of a full decode, but the names are not copied out: the route looks
        // them up in the table where they lie in the buffer.
        let mtext = msg.mtext();
        let frame = wire::decode_frame(mtext).map_err(Rejected::Malformed)?;
        let (src_key, dst_key) = name_keys(mtext);
        // Every message of an entry counts, whatever becomes of it (`answer_back.rs`).
        let src_slot = self.entries.lookup(&src_key);
        self.count_read(src_slot);
        self.settle_gathered(port, &dst_key, frame.msg_type);
        if frame.msg_type == MIPC_MSG_TYPE_PUBLISH {
            return self.route_special(port, msg, now);
        }
        if dst_key == Key::RELAY
            || (wire::is_control(frame.msg_type) && frame.msg_type != Kind::Ping.msg_type())
        {
            return self.route_special(port, msg, now);
        }
        let Some((dst_slot, dst)) = self.entries.lookup_mut(&dst_key) else {
            return self.refuse_received(port, msg, |h| Rejected::NoSuchDestination(h.src, h.dst));
        };
        // One lookup of the destination serves the whole route: its queue, whether it knows
        // tags or wants the sender's pid, whether its pid is still to learn, the first link of
        // the deadlock chain, and its traffic counters (counted now, taken back if the message
        // is not delivered). One lookup of the source (its slot) serves its pid, its pending
        // call and its counters.
        dst.seen.msgs_in += 1;
        dst.seen.bytes_in += frame.msg_size as u64;
        let (queue, dst_ext, dst_sender, pid_known, dst_waits) = (
            dst.queue,
            dst.ext,
            dst.sender,
            dst.pid.is_some(),
            dst.pending.is_some(),
        );
        let answers_back = dst.answer_back.then_some(dst.reads);
        let call = frame.tag.filter(|t| !t.is_reply() && frame.sync_flag != 0);
        if frame.sync_flag != 0 && frame.is_request() {
            self.note_caller(src_slot);
        }
        if call.is_some() && dst_waits && self.would_deadlock_from(&src_key, dst_slot, now) {
            self.uncount_received(dst_slot, frame.msg_size);
            return self.refuse_received(port, msg, |h| Rejected::Deadlock(h.src, h.dst));
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
            let pid = self.sender_pid_at(src_slot, msg);
            if received == frame.mtext_len(frame.tag.is_some()) {
                // A sync request the server may answer straight back (`answer_back.rs`).
                if let (Some(_), Some(stamp), true) = (call, answers_back, pid_known) {
                    if let Some(o) = self.offer(src_slot, dst_slot, stamp) {
                        msg.append_offer(o.queue, o.slot, o.stamp);
                    }
                }
                msg.append_sender(pid);
                trailed = true;
            } else {
                carried = Some(self.copy_with_sender(msg, pid)?);
            }
        }
        let sent: &MsgBuf = msg;
        let bytes = match &carried {
            Some(c) => c.as_sendable(),
            None if dst_ext || trailed => sent.as_sendable(),
            None => sent.as_sendable_without_tag(&frame),
        };
        let d = Delivery {
            msg: sent,
            frame: &frame,
            src: src_slot,
            dst: dst_slot,
            queue,
            bytes,
            call,
            now,
        };
        let out = self.forward(port, &d, &dst_key, pid_known);
        if carried.is_some() {
            self.fanout = carried;
        }
        if trailed {
            msg.set_mtext_len(received);
        }
        out
    }

    /// Routes a PUBLISH, a message to the relay, or a control type that may not be forwarded
    /// (these read the whole header).
    #[inline(never)]
    fn route_special(
        &mut self,
        port: &mut impl Port,
        msg: &mut MsgBuf,
        now: &Now,
    ) -> Result<Handled, Rejected> {
        let hdr = header(msg)?;
        if hdr.msg_type == MIPC_MSG_TYPE_PUBLISH {
            // Its dst_name is the event's name, not an entry's.
            return self.publish(port, msg, &hdr, now.get());
        }
        if hdr.dst.is_relay() {
            return self.control(port, msg, &hdr, now.get());
        }
        Err(Rejected::Control(hdr.msg_type, hdr.src))
    }

    /// Refuses a message whose names were not read yet: `why` gets its whole header.
    #[cold]
    fn refuse_received(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        why: impl FnOnce(&Header) -> Rejected,
    ) -> Result<Handled, Rejected> {
        let hdr = header(msg)?;
        self.refuse(port, msg, &hdr, why(&hdr))
    }

    /// `msg` (followed by a reply queue or a trailer already) copied for a receiver that asked
    /// for the sender's pid, with a sender trailer with `pid` instead (in the fan-out buffer).
    #[cold]
    fn copy_with_sender(&mut self, msg: &MsgBuf, pid: u32) -> Result<Box<MsgBuf>, Rejected> {
        let hdr = header(msg)?;
        let mut out = self.fanout.take().unwrap_or_else(MsgBuf::boxed);
        out.copy_with_sender(msg, &hdr, true, pid);
        Ok(out)
    }

    /// The pid of `src` as the relay knows it from its greeting, 0 when unknown (a legacy
    /// entry, or none of that name).
    pub(super) fn sender_pid(&self, src: &MipcName) -> u32 {
        match self.entries.get(src) {
            Some(e) => greeted_pid(e),
            None => self.gone_pid(src),
        }
    }

    /// [`Router::sender_pid`] of the sender of `msg`, whose slot was looked up already.
    #[inline]
    fn sender_pid_at(&self, slot: Option<Slot>, msg: &MsgBuf) -> u32 {
        match slot.and_then(|s| self.entries.at(s)) {
            Some(e) => greeted_pid(e),
            None => self.gone_sender_pid(msg),
        }
    }

    /// [`Router::gone_pid`] of the sender of `msg`.
    #[cold]
    fn gone_sender_pid(&self, msg: &MsgBuf) -> u32 {
        wire::src_name(msg.mtext()).map_or(0, |src| self.gone_pid(&src))
    }

    /// The pid of `src` that was dropped a moment ago (its last messages may still have been
    /// on the root queue), 0 when unknown.
    fn gone_pid(&self, src: &MipcName) -> u32 {
        self.gone
            .iter()
            .rev()
            .find(|(n, _)| n == src)
            .map_or(0, |&(_, pid)| pid)
    }

    /// Sends a checked message to its destination's queue (or its backlog).
    fn forward(
        &mut self,
        port: &mut impl Port,
        d: &Delivery<'_>,
        dst_key: &Key,
        pid_known: bool,
    ) -> Result<Handled, Rejected> {
        // Recorded before the send: once the server has the request, the call is pending
        // (also for a relay started after this one is killed right after the send).
        self.note_delivery(port, d);
        if pid_known {
            // It may wait for the requests read after it, to go with them in one batch
            // (`gather.rs`); if not, those gathered before it went first.
            if let Some(out) = self.gather(port, d, dst_key) {
                return out;
            }
        } else if self.gathered() {
            self.flush_gathered(port);
        }
        // Looked at after the gathered requests went: a full queue parked them.
        let backlogged = self
            .entries
            .name_at(d.dst)
            .copied()
            .filter(|dst| self.backlogs.has(dst));
        if let Some(dst) = backlogged {
            // Messages already wait for room: the oldest goes first, and this one goes
            // behind the rest, so the order holds. The receive loop refilling the queue
            // as messages come wakes no one when the receiver reads (a drainer blocked in
            // msgsnd would be woken by each read).
            if !self.flush_parked(port, &dst, d.now) {
                return self.park_counted(port, d);
            }
        }
        match port.send(d.queue, d.bytes) {
            Ok(()) => {
                self.count_sent(d.src, d.frame.msg_size);
                if !pid_known {
                    self.learn_pid_at(port, d.dst);
                }
                Ok(Handled::Forwarded)
            }
            Err(QueueError::Full) => self.park_counted(port, d),
            Err(e) => self.send_failed(port, d, e),
        }
    }

    /// Parks a message for its destination, counted as sent if it is kept. Out of line, as
    /// the backlog's flush: a message to a queue with room (every sync call) passes by them.
    #[inline(never)]
    pub(super) fn park_counted(
        &mut self,
        port: &mut impl Port,
        d: &Delivery<'_>,
    ) -> Result<Handled, Rejected> {
        let out = self.park(port, d);
        match out {
            Ok(_) => self.count_sent(d.src, d.frame.msg_size),
            Err(_) => self.uncount_received(d.dst, d.frame.msg_size),
        }
        out
    }

    /// Sending to the destination's queue failed (but for a full queue): the call is not
    /// pending, and a vanished queue takes its entry along.
    #[cold]
    pub(super) fn send_failed(
        &mut self,
        port: &mut impl Port,
        d: &Delivery<'_>,
        e: QueueError,
    ) -> Result<Handled, Rejected> {
        let hdr = header(d.msg)?;
        if e == QueueError::Gone {
            self.forget_call(port, &hdr.src, d.call);
            self.drop_entry(port, &hdr.dst, false);
            return self.refuse(port, d.msg, &hdr, Rejected::Gone(hdr.dst));
        }
        self.uncount_received(d.dst, d.frame.msg_size);
        self.forget_call(port, &hdr.src, d.call);
        self.refuse(port, d.msg, &hdr, Rejected::Queue(hdr.dst, e))
    }
}
