//! What the router does for tools (docs/PROTOCOL.md §7, §8): answering LIST, STATS,
//! WAIT_FOR and the monitor requests, and telling the attached monitors what happens. The
//! parts without router state are in `monitor.rs` and `tools.rs`.

use super::entries::Slot;
use super::{Handled, Port, Rejected, Router};
use crate::monitor::{wall_ns, About};
use crate::tools::{self, Totals, Waiter};
use mipc::sysv::{QueueError, QueueId};
use mipc::wire::tool::{
    EntryInfo, EventKind, RejectReason, Request, RequestBody, ToolStatus, ENTRY_GREETED,
    ENTRY_SUBS_TRUNCATED, LIST_SUBS_MAX, MIPC_MSG_TYPE_DROP_ROUTES,
};
use mipc::wire::{self, Header, MsgBuf, MTEXT_HEADER_LEN};
use mipc::MipcName;
use std::os::raw::c_long;
use std::time::{Duration, Instant};

/// Traffic through the relay of one entry (`mipc list -v`) and when it registered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// Registered since, seconds since the epoch (0: unknown, e.g. restored).
    pub since: u64,
    /// Messages forwarded to it.
    pub msgs_in: u64,
    /// Messages forwarded from it.
    pub msgs_out: u64,
    /// Payload bytes forwarded to it.
    pub bytes_in: u64,
    /// Payload bytes forwarded from it.
    pub bytes_out: u64,
}

impl Seen {
    /// A fresh record dated now.
    pub fn now() -> Seen {
        Seen {
            since: wall_ns() / 1_000_000_000,
            ..Seen::default()
        }
    }
}

/// The counter a rejection counts under.
pub fn reason(r: &Rejected) -> RejectReason {
    match r {
        Rejected::Malformed(_) => RejectReason::Malformed,
        Rejected::BadNotice(_) => RejectReason::BadNotice,
        Rejected::NoQueue(..) => RejectReason::NoQueue,
        Rejected::NameInUse(_) => RejectReason::NameInUse,
        Rejected::NotOwner(_) => RejectReason::NotOwner,
        Rejected::QueueInUse(..) => RejectReason::QueueInUse,
        Rejected::TableFull(_) => RejectReason::TableFull,
        Rejected::Control(..) => RejectReason::Control,
        Rejected::NoSuchDestination(..) => RejectReason::NoSuchDestination,
        Rejected::Busy(_) => RejectReason::Busy,
        Rejected::Gone(_) => RejectReason::Gone,
        Rejected::Deadlock(..) => RejectReason::Deadlock,
        Rejected::Queue(..) => RejectReason::Queue,
    }
}

/// Payload size of a message the router accepted (from its header field).
fn payload_size(mtext: &[u8]) -> u64 {
    mtext
        .get(MTEXT_HEADER_LEN - 8..MTEXT_HEADER_LEN - 4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as u64)
}

impl Router {
    /// Counts and reports what [`Router::handle`] did with `msg`.
    pub(super) fn observe(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        out: &Result<Handled, Rejected>,
    ) {
        match out {
            Ok(Handled::Forwarded | Handled::Parked) => {
                self.counters.forwarded_bytes += payload_size(msg.mtext());
            }
            Ok(Handled::Registered(n, _)) => {
                self.counters.registrations += 1;
                self.answer_waiters(port, n);
            }
            Ok(Handled::Greeted(n, _)) => self.answer_waiters(port, n),
            Ok(_) => {}
            Err(r) => {
                self.counters.rejected(reason(r));
                if let Rejected::Gone(n) = r {
                    self.counters.deaths += 1;
                    self.emit(
                        port,
                        EventKind::Died,
                        About {
                            name: Some(*n),
                            ..About::default()
                        },
                    );
                }
            }
        }
        if self.monitors.is_empty() {
            return;
        }
        let mtext = msg.mtext();
        let (kind, about) = match out {
            // An event or a broadcast is shown once, as its PUBLISH or BROADCAST came in.
            Ok(
                Handled::Forwarded
                | Handled::Parked
                | Handled::Published { .. }
                | Handled::Broadcast { .. },
            ) => (
                EventKind::Message,
                About {
                    msg: mtext,
                    ..About::default()
                },
            ),
            Ok(Handled::Registered(n, _)) => (
                EventKind::Registered,
                About {
                    name: Some(*n),
                    pid: self.entries.get(n).and_then(|e| e.pid).unwrap_or(0),
                    msg: mtext,
                    ..About::default()
                },
            ),
            Ok(Handled::Unregistered(n)) => (
                EventKind::Unregistered,
                About {
                    name: Some(*n),
                    msg: mtext,
                    ..About::default()
                },
            ),
            Ok(Handled::Greeted(n, pid)) => (
                EventKind::Greeted,
                About {
                    name: Some(*n),
                    pid: *pid,
                    msg: mtext,
                    ..About::default()
                },
            ),
            Ok(_) => return,
            // The tools' own requests that went wrong are not traffic.
            Err(Rejected::Malformed(_)) if is_tool_request(mtext) => return,
            Err(r) => (
                EventKind::Rejected,
                About {
                    code: reason(r) as i32,
                    msg: mtext,
                    ..About::default()
                },
            ),
        };
        self.emit(port, kind, about);
    }

    /// Reports the error answers held back while a message was handled.
    pub(super) fn flush_deferred(&mut self, port: &mut impl Port) {
        for (code, bytes) in std::mem::take(&mut self.deferred) {
            self.emit(
                port,
                EventKind::ErrorAnswer,
                About {
                    code,
                    msg: &bytes,
                    ..About::default()
                },
            );
        }
    }

    /// Sends one event to every monitor (nothing when none is attached).
    pub(super) fn emit(&mut self, port: &mut impl Port, kind: EventKind, about: About<'_>) {
        if self.monitors.is_empty() {
            return;
        }
        self.monitors.emit(&mut |q, b| port.send(q, b), kind, about);
    }

    /// Reports an error answer the relay just sent (in its reply buffer). While a message is
    /// being handled the report waits until that message's own event went out, so a monitor
    /// sees the request before the relay's answer to it.
    pub(super) fn error_sent(&mut self, port: &mut impl Port, code: i32) {
        if self.monitors.is_empty() {
            return;
        }
        if self.handling {
            self.deferred.push((code, self.reply.mtext().to_vec()));
            return;
        }
        let about = About {
            code,
            msg: self.reply.mtext(),
            ..About::default()
        };
        self.monitors
            .emit(&mut |q, b| port.send(q, b), EventKind::ErrorAnswer, about);
    }

    /// A process died: its monitors are detached and their queues removed; its entries'
    /// deaths are reported.
    pub(super) fn tool_process_died(&mut self, port: &mut impl Port, pid: i32, names: &[MipcName]) {
        self.counters.deaths += names.len() as u64;
        for q in self.monitors.process_died(pid) {
            port.remove_queue(q);
        }
        for q in self.waiters.process_died(pid) {
            port.remove_queue(q);
        }
        for n in names {
            self.emit(
                port,
                EventKind::Died,
                About {
                    name: Some(*n),
                    pid,
                    ..About::default()
                },
            );
        }
    }

    /// Tells the monitors and the tools waiting for names that the relay stops (they end
    /// instead of waiting forever).
    pub fn stopping(&mut self, port: &mut impl Port) {
        self.emit(port, EventKind::RelayStopping, About::default());
        let mut reply = std::mem::take(&mut self.reply);
        for w in self.waiters.take_all() {
            tools::build_answer(
                &mut reply,
                &w.tool,
                mipc::wire::tool::MIPC_MSG_TYPE_WAIT_FOR,
                w.request_id,
                ToolStatus::Stopping,
                |_| {},
            );
            let _ = port.send(w.queue, reply.as_sendable());
        }
        self.reply = reply;
    }

    /// The root queue (tools' answers never go there).
    pub fn set_root(&mut self, root: QueueId) {
        self.root = Some(root);
    }

    /// Whether direct routes may be given out (no monitor would miss their calls).
    pub(super) fn direct_allowed(&self) -> bool {
        self.monitors.is_empty()
    }

    /// Publishes the epoch of direct routes in `page` (docs/PROTOCOL.md §8).
    pub fn publish_routes_in(&mut self, page: crate::routes_page::RoutesPage) {
        self.routes_page = Some(page);
    }

    /// The routes page given to [`Router::publish_routes_in`].
    pub fn routes_page(&mut self) -> Option<&mut crate::routes_page::RoutesPage> {
        self.routes_page.as_mut()
    }

    /// Remembers that process `pid` got a direct route (to be dropped when a monitor
    /// attaches). A process that follows the routes page (`follows_page`, and the relay has
    /// one) needs no DROP_ROUTES message.
    pub(super) fn direct_given(&mut self, pid: Option<i32>, follows_page: bool) {
        if follows_page && self.routes_page.is_some() {
            return;
        }
        if let Some(pid) = pid {
            if !self.direct_pids.contains(&pid) && self.direct_pids.len() < self.max_entries {
                self.direct_pids.push(pid);
            }
        }
    }

    /// Answers a tool's request (types 0x7FFFFF06 and up).
    pub(super) fn tool(
        &mut self,
        port: &mut impl Port,
        hdr: &Header,
        payload: &[u8],
        now: Instant,
    ) -> Result<Handled, Rejected> {
        let req = Request::decode(hdr.msg_type, payload)
            .map_err(|_| Rejected::Control(hdr.msg_type, hdr.src))?;
        let reply_queue = QueueId(req.head.reply_queue);
        // Answers and events go only to a tool's own queue: never to the root queue (the
        // relay would feed itself) nor to an entry's (a forged request must not make the
        // relay write into a daemon's queue).
        if Some(reply_queue) == self.root {
            return Err(Rejected::Control(hdr.msg_type, hdr.src));
        }
        if let Some((holder, _)) = self.entries.iter().find(|(_, e)| e.queue == reply_queue) {
            return Err(Rejected::QueueInUse(hdr.src, *holder));
        }
        let id = req.head.request_id;
        let ty = hdr.msg_type;
        let mut reply = std::mem::take(&mut self.reply);
        match req.body {
            RequestBody::List { cursor } => {
                let fresh = (cursor == 0).then(|| self.snapshot(port));
                let page = self
                    .snapshots
                    .page(reply_queue, cursor, now, || fresh.unwrap_or_default());
                match page {
                    Ok(p) => {
                        tools::build_answer(&mut reply, &hdr.src, ty, id, ToolStatus::Ok, |o| {
                            p.encode(o)
                        })
                    }
                    Err(s) => tools::build_answer(&mut reply, &hdr.src, ty, id, s, |_| {}),
                }
            }
            RequestBody::Stats => {
                let r = self.stats_report(now);
                tools::build_answer(&mut reply, &hdr.src, ty, id, ToolStatus::Ok, |o| {
                    r.encode(o)
                });
            }
            RequestBody::MonitorAttach { .. } => {
                let first = self.monitors.is_empty();
                let status = self.monitors.attach(req.head.pid, reply_queue);
                if status == ToolStatus::Ok {
                    port.watch(req.head.pid);
                    if first {
                        self.drop_direct_routes(port);
                    }
                }
                tools::build_answer(&mut reply, &hdr.src, ty, id, status, |_| {});
            }
            RequestBody::MonitorDetach => {
                // Not answered: a monitor detaches on its way out, its queue may be gone.
                self.monitors.detach(reply_queue);
                self.reply = reply;
                return Ok(Handled::Tool);
            }
            RequestBody::WaitFor { name, timeout_ms } => {
                if !self.entries.contains_key(&name) {
                    let until =
                        (timeout_ms >= 0).then(|| now + Duration::from_millis(timeout_ms as u64));
                    let w = Waiter {
                        name,
                        queue: reply_queue,
                        tool: hdr.src,
                        pid: req.head.pid,
                        request_id: id,
                        until,
                    };
                    match self.waiters.add(w, now) {
                        Ok(()) => {
                            // A waiter killed while it waits leaves its queue: the relay
                            // removes it, as for an entry's.
                            if req.head.pid > 0 {
                                port.watch(req.head.pid);
                            }
                            self.reply = reply;
                            return Ok(Handled::Tool);
                        }
                        Err(s) => tools::build_answer(&mut reply, &hdr.src, ty, id, s, |_| {}),
                    }
                } else {
                    tools::build_answer(&mut reply, &hdr.src, ty, id, ToolStatus::Ok, |_| {});
                }
            }
        }
        let sent = port.send(reply_queue, reply.as_sendable());
        self.reply = reply;
        match sent {
            // A tool that is gone asks nothing any more.
            Ok(()) | Err(QueueError::Gone) => Ok(Handled::Tool),
            Err(e) => Err(Rejected::Queue(hdr.src, e)),
        }
    }

    /// Tells every process that got a direct route to drop its routes: a monitor attached
    /// and must see every call (docs/PROTOCOL.md §8).
    fn drop_direct_routes(&mut self, port: &mut impl Port) {
        if let Some(page) = &mut self.routes_page {
            page.drop_routes();
        }
        if self.direct_pids.is_empty() {
            return;
        }
        let pids = std::mem::take(&mut self.direct_pids);
        let mut buf = MsgBuf::boxed();
        for (name, e) in self.entries.iter() {
            if e.ext && e.pid.is_some_and(|p| pids.contains(&p)) {
                buf.build(wire::Build {
                    mtype: MIPC_MSG_TYPE_DROP_ROUTES as c_long,
                    src: &MipcName::RELAY,
                    dst: name,
                    msg_type: MIPC_MSG_TYPE_DROP_ROUTES,
                    sync_flag: 0,
                    payload: &[],
                    tag: None,
                });
                let _ = port.send(e.queue, buf.as_sendable());
            }
        }
    }

    fn answer_waiters(&mut self, port: &mut impl Port, name: &MipcName) {
        if self.waiters.is_empty() {
            return;
        }
        let mut reply = std::mem::take(&mut self.reply);
        for w in self.waiters.registered(name) {
            tools::build_answer(
                &mut reply,
                &w.tool,
                mipc::wire::tool::MIPC_MSG_TYPE_WAIT_FOR,
                w.request_id,
                ToolStatus::Ok,
                |_| {},
            );
            let _ = port.send(w.queue, reply.as_sendable());
        }
        self.reply = reply;
    }

    fn snapshot(&self, port: &mut impl Port) -> Vec<EntryInfo> {
        self.entries
            .iter()
            .map(|(name, e)| {
                let (queued_msgs, queued_bytes) = port.queue_stat(e.queue).unwrap_or((0, 0));
                let subs = self.subscriptions_of(name);
                let cut = subs.len() > LIST_SUBS_MAX;
                EntryInfo {
                    name: *name,
                    pid: e.pid.unwrap_or(0),
                    queue: e.queue.0,
                    thread: e.thread_id,
                    flags: if e.ext { ENTRY_GREETED } else { 0 }
                        | if cut { ENTRY_SUBS_TRUNCATED } else { 0 },
                    queued_msgs: queued_msgs.min(u32::MAX as u64) as u32,
                    since: e.seen.since,
                    queued_bytes,
                    backlog: self.backlogs.len_of(name) as u32,
                    msgs_in: e.seen.msgs_in,
                    msgs_out: e.seen.msgs_out,
                    bytes_in: e.seen.bytes_in,
                    bytes_out: e.seen.bytes_out,
                    subscriptions: subs
                        .iter()
                        .take(LIST_SUBS_MAX)
                        .map(|p| *p.as_name())
                        .collect(),
                }
            })
            .collect()
    }

    /// The counters of `mipc stats` and the exit line.
    pub fn stats_report(&self, now: Instant) -> mipc::wire::tool::StatsReport {
        let t = Totals {
            entries: self.entries.len() as u64,
            forwarded: self.stats.forwarded,
            parked: self.stats.parked,
            batched: self.backlogs.batched(),
            gathered: self.gathered_sent(),
            errors: self.stats.errors_sent,
            rejected: self.stats.rejected,
            monitors: self.monitors.len() as u64,
            monitor_lost: self.monitors.lost_total(),
            backlog: self.backlogs.items() as u64,
        };
        tools::report(&self.counters, t, now, self.backlogs.per_destination())
    }

    /// Counts a message forwarded (or parked) from `hdr.src` to `hdr.dst`.
    pub(super) fn count_sent(&mut self, src: Option<Slot>, msg_size: u32) {
        // The destination's side is counted by `route` in its one lookup of the destination
        // (and taken back by `uncount_received` when the message is not delivered).
        if let Some(e) = src.and_then(|s| self.entries.at_mut(s)) {
            e.seen.msgs_out += 1;
            e.seen.bytes_out += msg_size as u64;
        }
    }

    /// Takes back what `route` counted for the destination of a message it did not deliver.
    pub(super) fn uncount_received(&mut self, dst: Slot, msg_size: u32) {
        if let Some(e) = self.entries.at_mut(dst) {
            e.seen.msgs_in = e.seen.msgs_in.saturating_sub(1);
            e.seen.bytes_in = e.seen.bytes_in.saturating_sub(msg_size as u64);
        }
    }
}

/// Whether `mtext` is addressed to the relay with a tool type (a tool's request).
fn is_tool_request(mtext: &[u8]) -> bool {
    mtext
        .get(2 * wire::MIPC_NAME_MAX_LEN..2 * wire::MIPC_NAME_MAX_LEN + 4)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .is_some_and(|t| {
            (mipc::wire::tool::TOOL_TYPE_MIN..=mipc::wire::tool::TOOL_TYPE_MAX).contains(&t)
        })
}
