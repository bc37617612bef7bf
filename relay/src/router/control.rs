//! Messages to the relay itself: NOTICE, HELLO, LOOKUP and PING (docs/PROTOCOL.md), read
//! and answered through the typed control messages of `mipc::wire::control`.

use super::{Handled, Port, Rejected, Router};
use mipc::error::RelayErrorCode;
use mipc::sysv::QueueId;
use mipc::wire::control::{
    Died, Hello, HelloAnswer, Lookup, LookupAnswer, Pong, HELLO_FLAG_ANSWER_BACK, HELLO_FLAG_BATCH,
    HELLO_FLAG_SENDER, HELLO_VERSION, LOOKUP_FLAG_PAGE,
};
use mipc::wire::{self, CallTag, Control, Header, Kind, MsgBuf, ThreadInfo};
use mipc::MipcName;
use std::time::Instant;

/// LOOKUP status while a monitor is attached: use the relay (docs/PROTOCOL.md §8).
pub const LOOKUP_MONITORED: i32 = 9;

/// What a HELLO with `flags` tells of its entry. Its count of messages read starts again: the
/// library counts what it sends from the answer on (docs/PROTOCOL.md §11).
fn greeted(e: &mut super::Entry, flags: u32) {
    e.ext = true;
    e.sender = flags & HELLO_FLAG_SENDER != 0;
    e.batch = flags & HELLO_FLAG_BATCH != 0;
    e.answer_back = flags & HELLO_FLAG_ANSWER_BACK != 0;
    e.reads = 0;
}

impl Router {
    pub(super) fn control(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        hdr: &Header,
        now: Instant,
    ) -> Result<Handled, Rejected> {
        let payload = wire::payload(msg.mtext(), hdr);
        match Kind::from_msg_type(hdr.msg_type) {
            Some(
                Kind::List
                | Kind::Stats
                | Kind::MonitorAttach
                | Kind::MonitorDetach
                | Kind::WaitFor,
            ) => self.tool(port, hdr, payload, now),
            Some(Kind::Notice) => self.notice(port, hdr, payload),
            Some(Kind::Hello) => self.hello(port, hdr, payload),
            Some(Kind::Ping) => self.pong(port, msg, hdr),
            Some(Kind::Lookup) => self.lookup(port, hdr, payload),
            Some(Kind::Subscribe | Kind::Unsubscribe) => self.subscription(port, msg, hdr),
            Some(Kind::Broadcast) => self.broadcast(port, msg, hdr, now),
            Some(Kind::Died) => self.died(port, hdr, payload),
            Some(Kind::Answered) => self.answered(port, hdr, payload),
            Some(
                Kind::Error
                | Kind::Wake
                | Kind::MonitorEvent
                | Kind::DropRoutes
                | Kind::Publish
                | Kind::Event
                | Kind::Batch
                | Kind::Stop,
            )
            | None => {
                let other = hdr.msg_type;
                // A caller that waits must not wait for nothing.
                self.refuse(port, msg, hdr, Rejected::Control(other, hdr.src))
            }
        }
    }

    /// A death notice the relay's watcher queued on the root queue, behind whatever the
    /// process sent before it died (an answer it sent just before exiting is delivered, not
    /// failed with "peer died"). Only the relay's own notice about a process that really
    /// exited counts.
    fn died(
        &mut self,
        port: &mut impl Port,
        hdr: &Header,
        payload: &[u8],
    ) -> Result<Handled, Rejected> {
        let refused = || Rejected::Control(hdr.msg_type, hdr.src);
        let Some(Died { pid }) = Died::get(payload) else {
            return Err(refused());
        };
        if !hdr.src.is_relay() || pid <= 0 || !port.pid_exited(pid) {
            return Err(refused());
        }
        Ok(Handled::Died(pid, self.peer_died(port, pid)))
    }

    pub(super) fn notice(
        &mut self,
        port: &mut impl Port,
        hdr: &Header,
        payload: &[u8],
    ) -> Result<Handled, Rejected> {
        let info = ThreadInfo::get(payload).ok_or(Rejected::BadNotice(hdr.src))?;
        if info.name != hdr.src || info.mqd < 0 {
            return Err(Rejected::BadNotice(hdr.src));
        }
        let queue = QueueId(info.mqd);
        if !info.hold {
            return match self.entries.get(&info.name) {
                Some(e) if e.queue == queue => {
                    if let Some(pid) = e.pid {
                        if self.retired.len() >= self.max_entries {
                            self.retired.pop_front();
                        }
                        self.retired.push_back((pid, queue));
                    }
                    self.drop_entry(port, &info.name, false);
                    Ok(Handled::Unregistered(info.name))
                }
                Some(_) => Err(Rejected::NotOwner(info.name)),
                None => Ok(Handled::Unregistered(info.name)),
            };
        }
        if !port.queue_exists(queue) {
            return Err(Rejected::NoQueue(info.name, queue));
        }
        self.register(port, info.name, queue, info.thread_id, None)?;
        Ok(Handled::Registered(info.name, queue))
    }

    pub(super) fn hello(
        &mut self,
        port: &mut impl Port,
        hdr: &Header,
        payload: &[u8],
    ) -> Result<Handled, Rejected> {
        let Some(Hello {
            pid, mqd, flags, ..
        }) = Hello::get(payload)
        else {
            return Err(Rejected::BadNotice(hdr.src));
        };
        if pid <= 0 || mqd < 0 {
            return Err(Rejected::BadNotice(hdr.src));
        }
        let queue = QueueId(mqd);
        // A HELLO never gets an answer written onto a queue that another entry owns, nor
        // onto a live entry's queue in a process other than its own: the answer would land
        // in that daemon's receive loop.
        if let Some((holder, _)) = self
            .entries
            .iter()
            .find(|(n, e)| **n != hdr.src && e.queue == queue)
        {
            return Err(Rejected::QueueInUse(hdr.src, *holder));
        }
        // Why the greeting is refused, if it is: its code is the answer's status.
        let refused = match self.entries.get_mut(&hdr.src) {
            Some(e) if e.queue == queue => match e.pid {
                Some(p) if p != pid => return Err(Rejected::NameInUse(hdr.src)),
                _ => {
                    greeted(e, flags);
                    if e.pid.is_none() {
                        e.pid = Some(pid);
                        port.watch(pid);
                    }
                    self.changed(hdr.src);
                    None
                }
            },
            Some(_) => Some(Rejected::NameInUse(hdr.src)),
            None => {
                // Its NOTICE was lost or refused for a dead holder meanwhile: register now.
                if !port.queue_exists(queue) {
                    return Err(Rejected::NoQueue(hdr.src, queue));
                }
                match self.register(port, hdr.src, queue, 0, Some(pid)) {
                    Ok(()) => {
                        if let Some(e) = self.entries.get_mut(&hdr.src) {
                            greeted(e, flags);
                        }
                        port.watch(pid);
                        None
                    }
                    Err(r @ Rejected::QueueInUse(..)) => return Err(r),
                    Err(r @ Rejected::TableFull(_)) => Some(r),
                    Err(_) => Some(Rejected::NameInUse(hdr.src)),
                }
            }
        };
        let answer = HelloAnswer {
            version: HELLO_VERSION,
            status: refused
                .as_ref()
                .and_then(Rejected::code)
                .map_or(0, |c| c as i32),
        };
        self.build_answer(Kind::Hello.mtype(), &hdr.src, &answer, None);
        let _ = port.send(queue, self.reply.as_sendable());
        match refused {
            None => Ok(Handled::Greeted(hdr.src, pid)),
            Some(r) => Err(r),
        }
    }

    /// The direct path (docs/PROTOCOL.md §7): tells a greeted caller the queue and process
    /// of a destination it may send to directly. Only a greeted entry with a known process
    /// and no backlog qualifies; the answer follows every earlier message of the caller, so
    /// a direct message never overtakes one that went through the relay.
    pub(super) fn lookup(
        &mut self,
        port: &mut impl Port,
        hdr: &Header,
        payload: &[u8],
    ) -> Result<Handled, Rejected> {
        let refuse = || Rejected::Control(Kind::Lookup.msg_type(), hdr.src);
        let Some(caller) = self.entries.get(&hdr.src).filter(|e| e.ext) else {
            return Err(refuse());
        };
        let Some(tag) = hdr.tag.filter(|t| !t.is_reply()) else {
            return Err(refuse());
        };
        let caller_queue = caller.queue;
        let asked = Lookup::get(payload);
        let target = asked.map(|l| l.name);
        let follows_page = asked.is_some_and(|l| l.flags & LOOKUP_FLAG_PAGE != 0);
        let found = target.and_then(|n| self.entries.get(&n).map(|e| (n, e)));
        let caller_pid = caller.pid;
        let (status, queue, pid) = match found {
            // A monitor must see every call: no direct route while one is attached.
            Some(_) if !self.direct_allowed() => (LOOKUP_MONITORED, -1, 0),
            Some((n, e)) if e.ext && !self.backlogs.has(&n) => match e.pid {
                Some(pid) => (0, e.queue.0, pid),
                None => (RelayErrorCode::BadMessage as i32, -1, 0),
            },
            Some(_) => (RelayErrorCode::DestinationBusy as i32, -1, 0),
            None => (RelayErrorCode::NoSuchDestination as i32, -1, 0),
        };
        if status == 0 {
            self.direct_given(caller_pid, follows_page);
        }
        let answer = LookupAnswer { status, queue, pid };
        self.build_answer(Kind::Lookup.mtype(), &hdr.src, &answer, Some(tag.reply()));
        match port.send(caller_queue, self.reply.as_sendable()) {
            Ok(()) => Ok(Handled::LookedUp),
            Err(e) => Err(Rejected::Queue(hdr.src, e)),
        }
    }

    pub(super) fn pong(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        hdr: &Header,
    ) -> Result<Handled, Rejected> {
        // Only a request is answered: a PING with no answer wanted, or one that is itself an
        // answer (a daemon answering a ping sent in its name), would bounce forever.
        if hdr.sync_flag == 0 || hdr.tag.is_some_and(|t| t.is_reply()) {
            return Err(Rejected::Control(Kind::Ping.msg_type(), hdr.src));
        }
        let Some(caller) = self.entries.get(&hdr.src) else {
            return Err(Rejected::NoSuchDestination(MipcName::RELAY, hdr.src));
        };
        let (queue, ext) = (caller.queue, caller.ext);
        let tag = hdr.tag.filter(|t| ext && !t.is_reply()).map(CallTag::reply);
        self.build_answer(msg.mtype(), &hdr.src, &Pong { result: 0 }, tag);
        match port.send(queue, self.reply.as_sendable()) {
            Ok(()) => Ok(Handled::Ponged),
            Err(e) => Err(Rejected::Queue(hdr.src, e)),
        }
    }
}
