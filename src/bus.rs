//! A safe Rust API for looking at a live bus: the relay's name table, its counters, waiting
//! for names, and monitoring its traffic. `mipc list/stats/wait/monitor/capture` and
//! `mipc_wait_for` use it.
//!
//! It stays beside the native API ([`Endpoint`](crate::Endpoint)) rather than inside it
//! because looking at a bus must not change it: an `Endpoint` always registers a name (an
//! entry the relay lists, counts and routes to), while a monitor or a listing should show
//! the bus as it is, work from any thread, and leave nothing behind when killed. Verbs that
//! do act as an entry (`mipc ping/call/send`) use an `Endpoint`.
//!
//! A [`ControlLink`] is a private queue of this process plus the relay's root queue. It
//! registers no name: requests carry the private queue's id and this process's pid
//! ([`crate::wire::tool::RequestHead`]), and the relay answers there. The queue is removed
//! when the link is dropped.

use crate::config;
use crate::error::{MipcError, Result};
use crate::name::MipcName;
use crate::sysv::{self, QueueError, QueueId, RecvFlags};
use crate::wait::Waiting;
use crate::wire::tool::{
    AnswerHead, EntryInfo, EventRecord, ListPage, Request, RequestBody, RequestHead, StatsReport,
    ToolStatus, EVENT_MAX_LEN, MIPC_MSG_TYPE_MONITOR_EVENT,
};
use crate::wire::{self, Build, MsgBuf, MTYPE_LEN};
use std::os::raw::c_long;
use std::time::{Duration, Instant};

/// How long [`ControlLink::list`] and [`ControlLink::stats`] wait for each answer when the
/// caller gives no limit.
pub const DEFAULT_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// How long the relay holds one request of [`ControlLink::wait_for`] before it answers
/// "timed out" and the link asks again.
pub const WAIT_ROUND: Duration = Duration::from_secs(2);
/// How long after a round the link waits for its answer before it looks at whether the relay
/// forgot the request.
const WAIT_GRACE: Duration = Duration::from_secs(1);

/// Pages a listing may take before it is given up (a table that keeps changing).
const LIST_RESTARTS: u32 = 8;

/// A link to the relay for control requests: a private queue that receives the answers.
#[derive(Debug)]
pub struct ControlLink {
    queue: QueueId,
    pid: i32,
    next_id: u32,
    buf: Vec<u8>,
}

/// Removes a link's queue from another thread (a signal handler thread), which ends a
/// blocked [`ControlLink`] or [`Monitor`] wait with [`MipcError::QueueRemoved`].
#[derive(Debug, Clone, Copy)]
pub struct Closer(QueueId);

impl Closer {
    /// Removes the queue (once; later calls do nothing).
    pub fn close(&self) {
        let _ = sysv::remove(self.0);
    }
}

fn root_queue() -> Result<QueueId> {
    match sysv::open_key(config::root_key(), false, 0) {
        Ok(q) => Ok(q),
        Err(QueueError::NotFound) => Err(MipcError::RelayUnavailable),
        Err(e) => Err(e.into()),
    }
}

impl ControlLink {
    /// Opens the bus of `MIPC_ROOT_KEY` (or the default key) and makes a private queue.
    ///
    /// # Errors
    /// [`MipcError::RelayUnavailable`] when no relay serves the bus; queue errors.
    pub fn open() -> Result<ControlLink> {
        // Requests go through the library's link to the relay (`crate::link`), bounded as
        // every send there; this only checks that a relay serves the bus.
        root_queue()?;
        let queue = sysv::create_private(config::queue_mode())?;
        Ok(ControlLink {
            queue,
            pid: std::process::id() as i32,
            next_id: 1,
            buf: vec![0u8; MTYPE_LEN + EVENT_MAX_LEN + 8],
        })
    }

    /// The private queue's id.
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// A handle that removes the private queue from another thread.
    pub fn closer(&self) -> Closer {
        Closer(self.queue)
    }

    fn send(&mut self, body: RequestBody) -> Result<u32> {
        self.send_until(body, None)
    }

    /// [`send`](Self::send), bounded as every send to the relay is (a full root queue is
    /// waited on for at most `MIPC_SEND_TIMEOUT_MS`) and at most until `deadline`.
    fn send_until(&mut self, body: RequestBody, deadline: Option<Instant>) -> Result<u32> {
        let request_id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let req = Request {
            head: RequestHead {
                pid: self.pid,
                reply_queue: self.queue.0,
                request_id,
            },
            body,
        };
        let mut payload = Vec::with_capacity(64);
        req.encode(&mut payload);
        let mut msg = MsgBuf::boxed();
        let me = MipcName::new(b"mipc-tool").map_err(|_| MipcError::Internal)?;
        msg.build(Build {
            mtype: req.msg_type() as c_long,
            src: &me,
            dst: &MipcName::RELAY,
            msg_type: req.msg_type(),
            sync_flag: 0,
            payload: &payload,
            tag: None,
        });
        crate::link::send_to_relay_until(msg.as_sendable(), deadline).map(|()| request_id)
    }

    /// Receives the next message of `mtype` into the link's buffer, until `deadline`;
    /// returns its `mtext` length, or `None` at the deadline.
    fn receive(&mut self, mtype: c_long, deadline: Option<Instant>) -> Result<Option<usize>> {
        let w = Waiting::arm(self.queue, mtype, deadline)?;
        match w.recv(self.queue, &mut self.buf, mtype, RecvFlags::default()) {
            Ok((n, _)) => Ok(Some(n)),
            Err(MipcError::Timeout) => Ok(None),
            Err(MipcError::Queue(QueueError::Gone)) => Err(MipcError::QueueRemoved),
            Err(e) => Err(e),
        }
    }

    /// Sends `body` and waits for the answer with the same request id.
    fn ask(&mut self, body: RequestBody, wait: Option<Duration>) -> Result<(AnswerHead, Vec<u8>)> {
        let mtype = answer_type(body);
        let id = self.send(body)?;
        self.answer(mtype, id, wait)
    }

    /// Waits up to `wait` for the answer of type `mtype` to request `id` (answers to earlier
    /// requests are passed over).
    fn answer(
        &mut self,
        mtype: c_long,
        id: u32,
        wait: Option<Duration>,
    ) -> Result<(AnswerHead, Vec<u8>)> {
        let deadline = wait.map(|d| Instant::now() + d);
        loop {
            let Some(n) = self.receive(mtype, deadline)? else {
                return Err(MipcError::Timeout);
            };
            let mtext = &self.buf[MTYPE_LEN..MTYPE_LEN + n];
            let hdr = wire::decode(mtext).map_err(MipcError::BadMessage)?;
            let p = wire::payload(mtext, &hdr);
            let Ok((head, rest)) = AnswerHead::decode(p) else {
                continue;
            };
            if head.request_id == id {
                return Ok((head, rest.to_vec()));
            }
        }
    }

    /// A snapshot of the relay's name table, however many pages it takes.
    ///
    /// # Errors
    /// [`MipcError::Timeout`] when the relay does not answer within `wait` (per page),
    /// [`MipcError::RelayUnavailable`], queue errors, or a malformed answer.
    pub fn list(&mut self, wait: Option<Duration>) -> Result<Vec<EntryInfo>> {
        let wait = Some(wait.unwrap_or(DEFAULT_ANSWER_WAIT));
        'restart: for _ in 0..LIST_RESTARTS {
            let mut entries = Vec::new();
            loop {
                let cursor = entries.len() as u32;
                let (head, body) = self.ask(RequestBody::List { cursor }, wait)?;
                match head.status {
                    ToolStatus::Ok => {}
                    ToolStatus::NoSnapshot => continue 'restart,
                    _ => return Err(MipcError::BadArgument("the relay refused the list request")),
                }
                let page = ListPage::decode(&body).map_err(|_| bad_answer())?;
                if page.first != cursor {
                    continue 'restart;
                }
                let last = page.is_last();
                let empty = page.entries.is_empty();
                entries.extend(page.entries);
                if last || empty {
                    return Ok(entries);
                }
            }
        }
        Err(MipcError::Timeout)
    }

    /// The relay's counters.
    ///
    /// # Errors
    /// As [`ControlLink::list`].
    pub fn stats(&mut self, wait: Option<Duration>) -> Result<StatsReport> {
        let (head, body) = self.ask(
            RequestBody::Stats,
            Some(wait.unwrap_or(DEFAULT_ANSWER_WAIT)),
        )?;
        if head.status != ToolStatus::Ok {
            return Err(MipcError::BadArgument(
                "the relay refused the stats request",
            ));
        }
        StatsReport::decode(&body).map_err(|_| bad_answer())
    }

    /// Returns once every name in `names` is registered, or fails with
    /// [`MipcError::Timeout`] after `wait` (`None`: no limit).
    ///
    /// The relay holds each wait for at most [`WAIT_ROUND`] and then answers "timed out", and
    /// the link asks again: a relay that was killed and started again (which forgets the
    /// waits it held) is asked again within a round and its grace, so a daemon waiting at
    /// boot for a name is not left waiting forever by a relay crash. While the relay reads
    /// nothing (stopped, or dead with its queue left) the request waiting on its queue is not
    /// sent again. A relay that stops cleanly says so, and that ends the wait (`mipc wait`
    /// ends with the relay); [`wait_for_across_restarts`](Self::wait_for_across_restarts)
    /// asks the next relay instead.
    ///
    /// # Errors
    /// [`MipcError::Timeout`], [`MipcError::RelayUnavailable`] (no relay, or it stopped
    /// cleanly meanwhile), [`MipcError::RelayStalled`] (its root queue stayed full), queue
    /// errors.
    pub fn wait_for(&mut self, names: &[MipcName], wait: Option<Duration>) -> Result<()> {
        self.wait_for_names(names, wait, false)
    }

    /// [`wait_for`](Self::wait_for) for a daemon (`mipc_wait_for`): a relay that stops
    /// cleanly (a restart, an upgrade) does not end the wait; the link waits for the next
    /// relay's root queue (within `wait`, as `mipc_init` waits for a relay) and asks it.
    ///
    /// # Errors
    /// As [`wait_for`](Self::wait_for); [`MipcError::RelayUnavailable`] only when no relay
    /// runs at the start, or none came back within `wait`.
    pub fn wait_for_across_restarts(
        &mut self,
        names: &[MipcName],
        wait: Option<Duration>,
    ) -> Result<()> {
        self.wait_for_names(names, wait, true)
    }

    fn wait_for_names(
        &mut self,
        names: &[MipcName],
        wait: Option<Duration>,
        across_stops: bool,
    ) -> Result<()> {
        let deadline = wait.map(|d| Instant::now() + d);
        for name in names {
            self.wait_for_one(name, deadline, across_stops)?;
        }
        Ok(())
    }

    /// [`wait_for`](Self::wait_for) for one name.
    fn wait_for_one(
        &mut self,
        name: &MipcName,
        deadline: Option<Instant>,
        across_stops: bool,
    ) -> Result<()> {
        let mtype = answer_type(RequestBody::WaitFor {
            name: *name,
            timeout_ms: 0,
        });
        // The request the relay holds or will read: its id, and the second it was sent (the
        // coarse clock of the root queue's msg_rtime).
        let mut asked: Option<(u32, i64)> = None;
        let left_now = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        loop {
            let left = left_now();
            let round = left.map_or(WAIT_ROUND, |l| l.min(WAIT_ROUND));
            let (id, sent) = match asked {
                Some(a) => a,
                None => {
                    let sent = crate::os::process::coarse_wall_secs();
                    let body = RequestBody::WaitFor {
                        name: *name,
                        timeout_ms: round.as_millis().clamp(1, i32::MAX as u128) as i32,
                    };
                    let id = match self.send_until(body, deadline) {
                        // No root queue: the relay stopped and its successor is not up yet.
                        Err(MipcError::RelayUnavailable) if across_stops => {
                            crate::link::wait_for_relay(left_now())?;
                            continue;
                        }
                        r => r?,
                    };
                    asked = Some((id, sent));
                    (id, sent)
                }
            };
            // The round, its grace, but no later than the caller's deadline.
            let mut answer_wait = round + WAIT_GRACE;
            if let Some(l) = left {
                answer_wait = answer_wait.min(l + Duration::from_millis(50));
            }
            match self.answer(mtype, id, Some(answer_wait)) {
                Ok((head, _)) => match head.status {
                    ToolStatus::Ok => return Ok(()),
                    ToolStatus::TimedOut => asked = None,
                    ToolStatus::Stopping if !across_stops => {
                        return Err(MipcError::RelayUnavailable)
                    }
                    // A clean stop (a restart, an upgrade): the next relay is asked, as
                    // mipc_init waits for a relay that is not there yet.
                    ToolStatus::Stopping => {
                        crate::link::wait_for_next_relay(left_now())?;
                        asked = None;
                    }
                    _ => return Err(MipcError::BadArgument("the relay refused the wait request")),
                },
                // No answer, not even "timed out": the relay forgot the request (it was
                // killed and started again) if it reads its queue; else (stopped, or dead
                // with its queue left) the request still waits there and is not sent again.
                // Past the caller's deadline there is nothing left to decide (the look ends
                // by the deadline).
                Err(MipcError::Timeout) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(MipcError::Timeout)
                }
                Err(MipcError::Timeout) => {
                    use crate::link::RootReader;
                    if let RootReader::Idle | RootReader::Reading =
                        crate::link::root_reader(sent, deadline)
                    {
                        asked = None;
                    }
                }
                Err(e) => return Err(e),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(MipcError::Timeout);
            }
        }
    }

    /// Attaches a monitor: from now on the relay copies its traffic and events to this link.
    ///
    /// # Errors
    /// As [`ControlLink::list`]; [`MipcError::TableFull`] when the relay serves no more
    /// monitors.
    pub fn monitor(mut self, wait: Option<Duration>) -> Result<Monitor> {
        let (head, _) = self.ask(
            RequestBody::MonitorAttach { flags: 0 },
            Some(wait.unwrap_or(DEFAULT_ANSWER_WAIT)),
        )?;
        match head.status {
            ToolStatus::Ok => Ok(Monitor { link: self }),
            ToolStatus::TooMany => Err(MipcError::TableFull),
            _ => Err(MipcError::BadArgument("the relay refused the monitor")),
        }
    }
}

/// The SysV type of the answers to a request like `body` (its request type).
fn answer_type(body: RequestBody) -> c_long {
    Request {
        head: RequestHead {
            pid: 0,
            reply_queue: 0,
            request_id: 0,
        },
        body,
    }
    .msg_type() as c_long
}

fn bad_answer() -> MipcError {
    MipcError::BadArgument("malformed answer from the relay")
}

impl Drop for ControlLink {
    fn drop(&mut self) {
        let _ = sysv::remove(self.queue);
    }
}

/// An attached monitor: [`Monitor::next`] gives the relay's events in order. Dropping it
/// detaches it (and a monitor whose process dies is detached by the relay).
#[derive(Debug)]
pub struct Monitor {
    link: ControlLink,
}

impl Monitor {
    /// A handle that removes the monitor's queue from another thread.
    pub fn closer(&self) -> Closer {
        self.link.closer()
    }

    /// The next event, or `None` once `deadline` passed.
    ///
    /// # Errors
    /// [`MipcError::QueueRemoved`] when the queue was removed ([`Closer`]); queue errors;
    /// [`MipcError::BadArgument`] for a record that is not one.
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Option<EventRecord<'_>>> {
        let mtype = MIPC_MSG_TYPE_MONITOR_EVENT as c_long;
        let Some(n) = self.link.receive(mtype, deadline)? else {
            return Ok(None);
        };
        let mtext = &self.link.buf[MTYPE_LEN..MTYPE_LEN + n];
        EventRecord::decode(mtext)
            .map(Some)
            .map_err(|_| MipcError::BadArgument("malformed monitor event"))
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // Best effort: the relay also detaches it once the queue is gone.
        let _ = self.link.send(RequestBody::MonitorDetach);
    }
}
