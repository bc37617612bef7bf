//! Monitors: tools that asked for a copy of everything the relay does (`mipc monitor`,
//! `mipc capture`; docs/PROTOCOL.md §7).
//!
//! Each event goes to every attached monitor's queue with a non-blocking send: a monitor
//! that stops reading never slows the bus, it loses events instead and the next event it
//! gets says how many. With no monitor attached the relay pays one branch per message
//! ([`Monitors::is_empty`]). A monitor is detached when it asks, when its queue is gone, or
//! when its process dies (the relay watches it like an entry's).

use mipc::sysv::{QueueError, QueueId};
use mipc::wire::tool::{EventKind, EventRecord, ToolStatus, MIPC_MSG_TYPE_MONITOR_EVENT};
use mipc::MipcName;
use std::os::raw::c_long;
use std::time::{SystemTime, UNIX_EPOCH};

/// Most monitors attached at once.
pub const MAX_MONITORS: usize = 16;

/// Sends a whole message (`mtype` first) without blocking.
pub type SendFn<'a> = dyn FnMut(QueueId, &[u8]) -> Result<(), QueueError> + 'a;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Attached {
    pid: i32,
    queue: QueueId,
    /// Events generated for it (its record's `seq`).
    seq: u32,
    /// Events lost since the last one it got.
    lost: u32,
}

/// The attached monitors.
#[derive(Debug, Default)]
pub struct Monitors {
    list: Vec<Attached>,
    /// Events lost by all monitors, ever.
    lost_total: u64,
    /// The event being sent: `mtype`, then the record.
    scratch: Vec<u8>,
}

/// What an event is about, apart from its kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct About<'a> {
    /// The entry concerned.
    pub name: Option<MipcName>,
    /// The process concerned.
    pub pid: i32,
    /// Reason or error code.
    pub code: i32,
    /// The message concerned (`mtext`).
    pub msg: &'a [u8],
}

/// Now, ns since the epoch (monitor events carry wall-clock times).
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Monitors {
    /// Whether no monitor is attached (then no event is built at all).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many are attached.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Events lost by all monitors since the relay started.
    pub fn lost_total(&self) -> u64 {
        self.lost_total
    }

    /// Attaches the monitor of process `pid` reading `queue` (again: nothing changes).
    pub fn attach(&mut self, pid: i32, queue: QueueId) -> ToolStatus {
        if self.list.iter().any(|m| m.queue == queue) {
            return ToolStatus::Ok;
        }
        if self.list.len() >= MAX_MONITORS {
            return ToolStatus::TooMany;
        }
        self.list.push(Attached {
            pid,
            queue,
            seq: 0,
            lost: 0,
        });
        ToolStatus::Ok
    }

    /// Detaches the monitor reading `queue`; whether there was one.
    pub fn detach(&mut self, queue: QueueId) -> bool {
        let before = self.list.len();
        self.list.retain(|m| m.queue != queue);
        self.list.len() != before
    }

    /// Detaches the monitors of a dead process; returns their queues (to remove).
    pub fn process_died(&mut self, pid: i32) -> Vec<QueueId> {
        let gone: Vec<QueueId> = self
            .list
            .iter()
            .filter(|m| m.pid == pid)
            .map(|m| m.queue)
            .collect();
        self.list.retain(|m| m.pid != pid);
        gone
    }

    /// Whether `pid` runs a monitor.
    pub fn has_process(&self, pid: i32) -> bool {
        self.list.iter().any(|m| m.pid == pid)
    }

    /// Copies one event to every monitor. A full queue loses it (counted); a gone queue
    /// detaches its monitor.
    pub fn emit(&mut self, send: &mut SendFn<'_>, kind: EventKind, about: About<'_>) {
        if self.list.is_empty() {
            return;
        }
        let time_ns = wall_ns();
        let mut i = 0;
        while i < self.list.len() {
            let m = &mut self.list[i];
            m.seq = m.seq.wrapping_add(1);
            let rec = EventRecord {
                kind,
                time_ns,
                seq: m.seq,
                lost: m.lost,
                pid: about.pid,
                code: about.code,
                name: about.name,
                msg: about.msg,
            };
            self.scratch.clear();
            self.scratch
                .extend_from_slice(&(MIPC_MSG_TYPE_MONITOR_EVENT as c_long).to_ne_bytes());
            rec.encode(&mut self.scratch);
            let sent = send(m.queue, &self.scratch);
            match sent {
                Ok(()) => {
                    m.lost = 0;
                    i += 1;
                }
                Err(QueueError::Full) | Err(QueueError::Interrupted) => {
                    m.lost = m.lost.saturating_add(1);
                    self.lost_total += 1;
                    i += 1;
                }
                Err(_) => {
                    // Gone or not ours any more: nobody reads it.
                    self.list.remove(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mipc::wire::tool::EventRecord;
    use mipc::wire::MTYPE_LEN;

    #[test]
    fn a_full_monitor_loses_events_and_is_told_how_many() {
        let mut m = Monitors::default();
        assert!(m.is_empty());
        assert_eq!(m.attach(10, QueueId(1)), ToolStatus::Ok);
        assert_eq!(m.attach(11, QueueId(2)), ToolStatus::Ok);
        let mut full = true;
        let mut got: Vec<(QueueId, Vec<u8>)> = Vec::new();
        for _ in 0..3 {
            m.emit(
                &mut |q, b| {
                    if q == QueueId(1) && full {
                        return Err(QueueError::Full);
                    }
                    got.push((q, b.to_vec()));
                    Ok(())
                },
                EventKind::Died,
                About {
                    name: Some(MipcName::new(b"x").unwrap()),
                    pid: 5,
                    ..About::default()
                },
            );
        }
        full = false;
        m.emit(
            &mut |q, b| {
                got.push((q, b.to_vec()));
                let _ = full;
                Ok(())
            },
            EventKind::Message,
            About::default(),
        );
        assert_eq!(m.lost_total(), 3);
        let q1: Vec<_> = got.iter().filter(|(q, _)| *q == QueueId(1)).collect();
        assert_eq!(q1.len(), 1);
        let rec = EventRecord::decode(&q1[0].1[MTYPE_LEN..]).unwrap();
        assert_eq!((rec.seq, rec.lost, rec.kind), (4, 3, EventKind::Message));
        assert_eq!(got.iter().filter(|(q, _)| *q == QueueId(2)).count(), 4);
    }

    #[test]
    fn gone_and_dead_monitors_are_detached() {
        let mut m = Monitors::default();
        m.attach(10, QueueId(1));
        m.attach(11, QueueId(2));
        m.attach(11, QueueId(3));
        m.emit(
            &mut |q, _| {
                if q == QueueId(1) {
                    Err(QueueError::Gone)
                } else {
                    Ok(())
                }
            },
            EventKind::Message,
            About::default(),
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m.process_died(11), vec![QueueId(2), QueueId(3)]);
        assert!(m.is_empty());
        for i in 0..MAX_MONITORS {
            assert_eq!(m.attach(1, QueueId(i as i32)), ToolStatus::Ok);
        }
        assert_eq!(m.attach(1, QueueId(99)), ToolStatus::TooMany);
        assert!(m.detach(QueueId(0)));
        assert!(!m.detach(QueueId(0)));
    }
}
