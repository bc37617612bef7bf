//! An in-memory [`Port`]: queues as byte vectors, processes as a set of live pids. Router
//! tests and fuzzers run the relay's rules on it without any SysV queue.

use crate::router::Port;
use mipc::sysv::{QueueError, QueueId};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Queues and processes in memory.
#[derive(Debug, Default, Clone)]
pub struct MemPort {
    /// Messages waiting on each queue, oldest first (each `mtype` then `mtext`).
    pub queues: BTreeMap<i32, VecDeque<Vec<u8>>>,
    /// Most messages a queue holds before a send fails with [`QueueError::Full`].
    pub capacity: usize,
    /// Processes that are alive.
    pub live: HashSet<i32>,
    /// Pids the router asked to watch, in order.
    pub watched: Vec<i32>,
    /// Queues the router removed, in order.
    pub removed: Vec<i32>,
    /// Destinations the router asked to drain, in order.
    pub drains: Vec<mipc::MipcName>,
    /// The last receiver of each queue, as `IPC_STAT` would tell.
    pub receivers: BTreeMap<i32, i32>,
    /// Pending calls as the pending-calls file would hold them: by slot, caller and call.
    pub pending: BTreeMap<usize, (mipc::MipcName, crate::router::Pending)>,
}

impl MemPort {
    /// No queues, no processes; queues hold 8 messages.
    pub fn new() -> Self {
        MemPort {
            capacity: 8,
            ..Default::default()
        }
    }

    /// Makes queue `id`.
    pub fn queue(&mut self, id: i32) -> QueueId {
        self.queues.entry(id).or_default();
        QueueId(id)
    }

    /// Takes the oldest message of queue `id`.
    pub fn take(&mut self, id: i32) -> Option<Vec<u8>> {
        self.queues.get_mut(&id)?.pop_front()
    }

    /// How many messages wait on queue `id`.
    pub fn pending(&self, id: i32) -> usize {
        self.queues.get(&id).map_or(0, |q| q.len())
    }
}

impl Port for MemPort {
    fn send(&mut self, q: QueueId, msg: &[u8]) -> Result<(), QueueError> {
        let cap = self.capacity;
        let queue = self.queues.get_mut(&q.0).ok_or(QueueError::Gone)?;
        if queue.len() >= cap {
            return Err(QueueError::Full);
        }
        queue.push_back(msg.to_vec());
        Ok(())
    }
    fn queue_exists(&mut self, q: QueueId) -> bool {
        self.queues.contains_key(&q.0)
    }
    fn pid_alive(&mut self, pid: i32) -> bool {
        self.live.contains(&pid)
    }
    fn remove_queue(&mut self, q: QueueId) {
        self.queues.remove(&q.0);
        self.removed.push(q.0);
    }
    fn watch(&mut self, pid: i32) {
        self.watched.push(pid);
    }
    fn last_receiver(&mut self, q: QueueId) -> Option<i32> {
        self.receivers.get(&q.0).copied()
    }
    fn drain(&mut self, dst: mipc::MipcName) {
        self.drains.push(dst);
    }
    fn pending_changed(
        &mut self,
        slot: usize,
        caller: &mipc::MipcName,
        p: Option<&crate::router::Pending>,
    ) {
        match p {
            Some(p) => {
                self.pending.insert(slot, (*caller, *p));
            }
            None => {
                self.pending.remove(&slot);
            }
        }
    }
}
