//! The name table: registering, dropping and restoring entries, and the processes behind
//! them.

use super::entries::Slot;
use super::{Entry, Pending, Port, Rejected, Router};
use mipc::error::RelayErrorCode;
use mipc::sysv::QueueId;
use mipc::MipcName;

impl Router {
    /// Takes back entries saved by an earlier relay of this bus. An entry whose queue is gone
    /// is left out; one whose process is known to be dead is left out and its queue removed.
    /// Returns how many entries were taken back, and which were left out and why.
    pub fn restore(
        &mut self,
        port: &mut impl Port,
        saved: Vec<(MipcName, Entry)>,
    ) -> (usize, Vec<(MipcName, &'static str)>) {
        let mut kept = 0;
        let mut left_out = Vec::new();
        for (name, entry) in saved.into_iter().take(self.max_entries) {
            if !port.queue_exists(entry.queue) {
                left_out.push((name, "its queue is gone"));
                continue;
            }
            if let Some(pid) = entry.pid {
                if !port.pid_alive(pid) {
                    port.remove_queue(entry.queue);
                    left_out.push((name, "its process is dead"));
                    continue;
                }
                port.watch(pid);
            }
            let mut entry = entry;
            if entry.seen.since == 0 {
                entry.seen = super::Seen::now();
            }
            self.entries.insert(name, entry);
            kept += 1;
        }
        self.changes.rewrite = true;
        (kept, left_out)
    }

    /// A legacy entry never says which process it is; once it has received from its queue,
    /// the queue's last receiver is its owner, and the relay watches that process for death
    /// like any other. Costs one `IPC_STAT` per message until then.
    pub(super) fn learn_pid(&mut self, port: &mut impl Port, name: &MipcName) {
        let Some(e) = self.entries.get_mut(name).filter(|e| e.pid.is_none()) else {
            return;
        };
        if let Some(pid) = port.last_receiver(e.queue) {
            e.pid = Some(pid);
            port.watch(pid);
            self.changed(*name);
        }
    }

    /// [`Router::learn_pid`] of the entry in `slot`.
    #[cold]
    pub(super) fn learn_pid_at(&mut self, port: &mut impl Port, slot: Slot) {
        if let Some(name) = self.entries.name_at(slot).copied() {
            self.learn_pid(port, &name);
        }
    }

    /// Adds or renews an entry. A name held by another queue is taken over only when its
    /// holder is dead; a legacy holder (no pid known) cannot prove it lives, so a restarted
    /// legacy daemon can take its name back, as it could with the original relay.
    pub(super) fn register(
        &mut self,
        port: &mut impl Port,
        name: MipcName,
        queue: QueueId,
        thread_id: u64,
        pid: Option<i32>,
    ) -> Result<(), Rejected> {
        // A queue that a live mipc-rs entry owns under another name cannot be claimed.
        let claimed = self
            .entries
            .iter()
            .find(|(n, e)| **n != name && e.queue == queue)
            .and_then(|(n, e)| e.pid.map(|p| (*n, p)));
        if let Some((holder, pid)) = claimed {
            if port.pid_alive(pid) {
                return Err(Rejected::QueueInUse(name, holder));
            }
        }
        if let Some(old) = self.entries.get_mut(&name) {
            if old.queue == queue {
                old.thread_id = thread_id;
                return Ok(());
            }
            let holder_alive = match old.pid {
                Some(p) => port.pid_alive(p) && port.queue_exists(old.queue),
                None => false,
            };
            if holder_alive {
                return Err(Rejected::NameInUse(name));
            }
            // Remove the old queue only when its process is known to be dead: a legacy
            // holder may still be blocked on it.
            let known_dead = old.pid.is_some();
            self.drop_entry(port, &name, known_dead);
        } else if self.entries.len() >= self.max_entries {
            return Err(Rejected::TableFull(name));
        }
        self.entries.insert(
            name,
            Entry {
                queue,
                pid,
                ext: false,
                sender: false,
                batch: false,
                answer_back: false,
                reads: 0,
                thread_id,
                pending: None,
                seen: super::Seen::now(),
            },
        );
        self.changed(name);
        Ok(())
    }

    /// Removes an entry; callers waiting on it get "peer died". With `remove_queue`, its
    /// queue is removed too (its process is dead, nobody else will).
    pub(super) fn drop_entry(&mut self, port: &mut impl Port, name: &MipcName, remove_queue: bool) {
        // Gathered requests hold slots (theirs and their senders'): they go before any
        // slot is freed.
        self.flush_gathered(port);
        let Some((slot, gone)) = self.entries.remove(name) else {
            return;
        };
        self.changed(*name);
        for p in self.subscriptions.of(name).to_vec() {
            self.subscription_changed(*name, p, false);
        }
        self.subscriptions.forget(name);
        if self.gone.len() >= super::GONE_REMEMBERED {
            self.gone.pop_front();
        }
        let pid = gone.pid.filter(|_| gone.ext).map_or(0, |p| p as u32);
        self.gone.push_back((*name, pid));
        if gone.pending.is_some() {
            self.calls.set(port, slot, name, None);
        }
        if remove_queue {
            port.remove_queue(gone.queue);
        }
        for item in self.backlogs.remove(name) {
            self.fail_parked(port, item, RelayErrorCode::PeerDied);
        }
        let waiting: Vec<(Slot, MipcName, QueueId, Pending)> = self
            .entries
            .slots()
            .filter(|(_, _, e)| e.ext)
            .filter_map(|(s, n, e)| {
                e.pending
                    .filter(|p| p.callee == *name)
                    .map(|p| (s, *n, e.queue, p))
            })
            .collect();
        for (slot, caller, queue, p) in waiting {
            if let Some(e) = self.entries.at_mut(slot) {
                e.pending = None;
            }
            self.calls.set(port, slot, &caller, None);
            self.fail_call(port, &caller, queue, &p, RelayErrorCode::PeerDied);
        }
    }

    /// Process `pid` died: drops its entries, removes their queues, and fails the calls
    /// waiting on them. Returns the names dropped.
    pub fn peer_died(&mut self, port: &mut impl Port, pid: i32) -> Vec<MipcName> {
        self.retired.retain(|&(p, q)| {
            if p == pid {
                port.remove_queue(q); // gone already unless its owner died mid-exit
            }
            p != pid
        });
        let names: Vec<MipcName> = self
            .entries
            .iter()
            .filter(|(_, e)| e.pid == Some(pid))
            .map(|(n, _)| *n)
            .collect();
        for n in &names {
            self.drop_entry(port, n, true);
        }
        self.tool_process_died(port, pid, &names);
        names
    }

    /// On shutdown: drops entries whose queue is gone, and removes the queues of entries
    /// whose process is known to be dead.
    pub fn sweep_dead(&mut self, port: &mut impl Port) -> usize {
        let vanished: Vec<MipcName> = self
            .entries
            .iter()
            .filter(|(_, e)| !port.queue_exists(e.queue))
            .map(|(n, _)| *n)
            .collect();
        for n in &vanished {
            self.drop_entry(port, n, false);
        }
        let retired: Vec<(i32, QueueId)> = self.retired.drain(..).collect();
        for (pid, q) in retired {
            if port.pid_alive(pid) {
                self.retired.push_back((pid, q));
            } else {
                port.remove_queue(q);
            }
        }
        let unknown: Vec<MipcName> = self
            .entries
            .iter()
            .filter(|(_, e)| e.pid.is_none())
            .map(|(n, _)| *n)
            .collect();
        for n in unknown {
            self.learn_pid(port, &n);
        }
        let dead: Vec<i32> = self
            .entries
            .values()
            .filter_map(|e| e.pid)
            .filter(|&p| !port.pid_alive(p))
            .collect();
        dead.iter().map(|&p| self.peer_died(port, p).len()).sum()
    }
}
