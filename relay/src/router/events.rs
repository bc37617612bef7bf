//! Events and broadcast (docs/PROTOCOL.md §9): SUBSCRIBE and UNSUBSCRIBE answered from the
//! subscription table, and the fan-out of one PUBLISH or BROADCAST taken from the root queue
//! to many queues: one receive, one send per receiver. A receiver whose queue is full gets
//! the message through its backlog, within the same bounds as calls, so a subscriber that
//! stopped reading stalls neither the publisher nor the other receivers; past the bounds its
//! copy is dropped and counted.

use super::{Handled, Port, Rejected, Router};
use mipc::error::RelayErrorCode;
use mipc::events::{
    self, EventName, EventPattern, Subscribe, SubscribeAnswer, Unsubscribe, UnsubscribeAnswer,
    MIPC_MSG_TYPE_EVENT,
};
use mipc::sysv::{QueueError, QueueId};
use mipc::wire::{self, Build, Control, Header, MsgBuf};
use mipc::MipcName;
use std::os::raw::c_long;
use std::time::Instant;

/// Where one copy of a fanned-out message goes.
#[derive(Debug, Clone, Copy)]
struct Receiver {
    name: MipcName,
    queue: QueueId,
    /// It asked for a sender trailer.
    sender: bool,
    /// Its copies may go in batches while it is behind (it asked, and they are EVENTs).
    batch: bool,
}

/// The bytes of `out` (built with a sender trailer after its first `plain` bytes) for a
/// receiver that asked for the trailer (`sender`) or not.
fn copy_for(out: &MsgBuf, plain: usize, sender: bool) -> &[u8] {
    let all = out.as_sendable();
    if sender {
        all
    } else {
        &all[..plain]
    }
}

impl Router {
    /// The patterns `name` subscribed to, in the order it subscribed (for `mipc list`).
    pub fn subscriptions_of(&self, name: &MipcName) -> &[EventPattern] {
        self.subscriptions.of(name)
    }

    /// Every subscription, entry by entry (for the state file's snapshot).
    pub fn subscriptions(&self) -> impl Iterator<Item = (&MipcName, &EventPattern)> {
        self.subscriptions.all()
    }

    /// Takes back the subscriptions an earlier relay of this bus saved (`state.rs`), for the
    /// entries it took back. Returns how many.
    pub fn restore_subscriptions(&mut self, saved: Vec<(MipcName, EventPattern)>) -> usize {
        let mut kept = 0;
        for (who, pattern) in saved {
            if self.entries.contains_key(&who) && self.subscriptions.add(who, pattern).is_ok() {
                kept += 1;
            }
        }
        kept
    }

    /// Entries with at least one subscription, and subscriptions in all (for `mipc stats`).
    pub fn subscription_totals(&self) -> (usize, usize) {
        self.subscriptions.totals()
    }

    /// SUBSCRIBE or UNSUBSCRIBE from a greeted entry: a tagged sync request, answered with a
    /// status on the entry's queue.
    pub(super) fn subscription(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        hdr: &Header,
    ) -> Result<Handled, Rejected> {
        let refused = || Rejected::Control(hdr.msg_type, hdr.src);
        let Some(queue) = self
            .entries
            .get(&hdr.src)
            .filter(|e| e.ext)
            .map(|e| e.queue)
        else {
            return Err(refused());
        };
        let Some(tag) = hdr.tag.filter(|t| !t.is_reply()) else {
            return Err(refused());
        };
        let subscribe = Subscribe::decode(msg, hdr).map(|s| (s.pattern, true));
        let unsubscribe = Unsubscribe::decode(msg, hdr).map(|u| (u.pattern, false));
        let (status, done) = match subscribe.or(unsubscribe) {
            None => (Some(RelayErrorCode::BadMessage), None),
            Some((pattern, true)) => match self.subscriptions.add(hdr.src, pattern) {
                Ok(new) => {
                    if new {
                        self.subscription_changed(hdr.src, pattern, true);
                    }
                    (None, Some((pattern, true)))
                }
                Err(_) => (Some(RelayErrorCode::TableFull), None),
            },
            Some((pattern, false)) => {
                if self.subscriptions.remove(&hdr.src, &pattern) {
                    self.subscription_changed(hdr.src, pattern, false);
                }
                (None, Some((pattern, false)))
            }
        };
        let status = status.map_or(0, |c| c as i32);
        let mtype = msg.mtype();
        if hdr.msg_type == events::MIPC_MSG_TYPE_SUBSCRIBE {
            self.build_answer(
                mtype,
                &hdr.src,
                &SubscribeAnswer { status },
                Some(tag.reply()),
            );
        } else {
            self.build_answer(
                mtype,
                &hdr.src,
                &UnsubscribeAnswer { status },
                Some(tag.reply()),
            );
        }
        if let Err(e) = port.send(queue, self.reply.as_sendable()) {
            return Err(Rejected::Queue(hdr.src, e));
        }
        match done {
            Some((pattern, on)) => Ok(Handled::Subscribed {
                who: hdr.src,
                pattern,
                on,
            }),
            None => Err(refused()),
        }
    }

    /// Whether `src` may publish or broadcast: a registered entry, or one gone a moment ago
    /// (its last messages may still wait on the root queue when the relay learns that its
    /// process exited). A name nobody registered reaches nobody.
    fn may_fan_out(&self, src: &MipcName) -> bool {
        self.entries.contains_key(src) || self.gone.iter().any(|(n, _)| n == src)
    }

    /// PUBLISH: the event goes, as an EVENT of the same names and data, to every entry with a
    /// matching subscription.
    pub(super) fn publish(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        hdr: &Header,
        now: Instant,
    ) -> Result<Handled, Rejected> {
        let refused = || Rejected::Control(hdr.msg_type, hdr.src);
        if !self.may_fan_out(&hdr.src) {
            return Err(refused());
        }
        let Ok(event) = EventName::from_name(hdr.dst) else {
            return Err(refused());
        };
        let receivers: Vec<Receiver> = self
            .subscriptions
            .receivers(&event)
            .filter_map(|n| {
                let e = self.entries.get(n).filter(|e| e.ext)?;
                Some(Receiver {
                    name: *n,
                    queue: e.queue,
                    sender: e.sender,
                    batch: e.batch,
                })
            })
            .collect();
        let mut out = self.fanout.take().unwrap_or_else(MsgBuf::boxed);
        out.build(Build {
            mtype: MIPC_MSG_TYPE_EVENT as c_long,
            src: &hdr.src,
            dst: &hdr.dst,
            msg_type: MIPC_MSG_TYPE_EVENT,
            sync_flag: 0,
            payload: wire::payload(msg.mtext(), hdr),
            tag: None,
        });
        let plain = out.as_sendable().len();
        out.append_sender(self.sender_pid(&hdr.src));
        let mut delivered = 0;
        for r in &receivers {
            let bytes = copy_for(&out, plain, r.sender);
            delivered += usize::from(self.deliver_copy(port, r, bytes, now));
        }
        self.fanout = Some(out);
        self.stats.events += 1;
        Ok(Handled::Published {
            event,
            receivers: delivered,
        })
    }

    /// BROADCAST: the data goes to every other registered entry as an ordinary one-way
    /// message of the api id, the exact SPEC §2 bytes a `mipc_send_msg` would have put there.
    pub(super) fn broadcast(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        hdr: &Header,
        now: Instant,
    ) -> Result<Handled, Rejected> {
        let refused = || Rejected::Control(hdr.msg_type, hdr.src);
        if !self.may_fan_out(&hdr.src) {
            return Err(refused());
        }
        let Ok((api, data)) = events::decode_broadcast(wire::payload(msg.mtext(), hdr)) else {
            return Err(refused());
        };
        if api == 0 || wire::is_control(api) {
            return Err(refused());
        }
        let receivers: Vec<Receiver> = self
            .entries
            .iter()
            .filter(|(n, _)| **n != hdr.src)
            .map(|(n, e)| Receiver {
                name: *n,
                queue: e.queue,
                sender: e.ext && e.sender,
                // Untagged copies of an api id: one alone in a sync call's answer wait is
                // taken for a legacy server's answer, as it always was; a batch would not be.
                batch: false,
            })
            .collect();
        let mut out = self.fanout.take().unwrap_or_else(MsgBuf::boxed);
        out.build(Build {
            mtype: api as c_long,
            src: &hdr.src,
            dst: &hdr.src,
            msg_type: api,
            sync_flag: 0,
            payload: data,
            tag: None,
        });
        let plain = out.as_sendable().len();
        out.append_sender(self.sender_pid(&hdr.src));
        let mut delivered = 0;
        for r in &receivers {
            out.set_dst(&r.name);
            let bytes = copy_for(&out, plain, r.sender);
            delivered += usize::from(self.deliver_copy(port, r, bytes, now));
        }
        self.fanout = Some(out);
        self.stats.broadcasts += 1;
        Ok(Handled::Broadcast {
            api,
            receivers: delivered,
        })
    }

    /// Sends one receiver its copy, behind its backlog if it has one, into a new backlog if
    /// its queue is full. Returns whether the copy was sent or parked.
    fn deliver_copy(
        &mut self,
        port: &mut impl Port,
        r: &Receiver,
        bytes: &[u8],
        now: Instant,
    ) -> bool {
        if !self.backlogs.has(&r.name) {
            match port.send(r.queue, bytes) {
                Ok(()) => {
                    self.stats.copies += 1;
                    return true;
                }
                Err(QueueError::Full) => {}
                Err(QueueError::Gone) => {
                    self.drop_entry(port, &r.name, false);
                    return false;
                }
                Err(_) => {
                    self.stats.copies_dropped += 1;
                    return false;
                }
            }
        }
        let how = crate::backlog::Parking {
            batchable: r.batch && crate::backlog::batching(),
            ..Default::default()
        };
        match self.backlogs.park_copy(r.name, r.queue, bytes, how, now) {
            Ok(_) => {
                self.stats.parked += 1;
                self.stats.copies += 1;
                true
            }
            Err(_) => {
                self.stats.copies_dropped += 1;
                false
            }
        }
    }
}
