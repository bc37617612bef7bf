//! Pending sync calls: which caller waits on whom, the deadlock check over that chain, and
//! the ERROR answers that end a call the relay cannot complete.

use super::entries::{Key, Slot};
use super::route::Delivery;
use super::{Now, Pending, Port, Rejected, Router};
use crate::pending::PendingStore;
use mipc::error::RelayErrorCode;
use mipc::sysv::QueueId;
use mipc::wire::control::ErrorAnswer;
use mipc::wire::{CallTag, Header, MsgBuf};
use mipc::MipcName;
use std::os::raw::c_long;
use std::time::Duration;

/// A caller waiting for an answer the relay will not deliver: where and how to tell it.
#[derive(Debug, Clone, Copy)]
pub(super) struct WaitingCall {
    /// The caller.
    pub caller: MipcName,
    /// Its queue.
    pub queue: QueueId,
    /// The SysV type it waits on.
    pub mtype: c_long,
    /// The api id of its call.
    pub api: u32,
    /// Its call's tag.
    pub tag: CallTag,
}

/// Where the pending calls are kept for a relay started after this one: the mapped file
/// (`pending.rs`), written here under the router's lock (the router is the only writer, so
/// the file needs no lock of its own), or, without one, the port (tests, fuzzers).
#[derive(Debug, Default)]
pub(super) struct CallRecord(Option<PendingStore>);

impl CallRecord {
    /// `caller` (in `slot`) now waits on `p`, or no longer waits (`None`).
    #[inline]
    pub(super) fn set(
        &mut self,
        port: &mut impl Port,
        slot: Slot,
        caller: &MipcName,
        p: Option<&Pending>,
    ) {
        match &mut self.0 {
            Some(store) => store.set(slot.index(), caller, p),
            None => port.pending_changed(slot.index(), caller, p),
        }
    }
}

impl Router {
    /// Keeps the pending calls in `store` from now on, rather than telling the port.
    pub fn keep_calls_in(&mut self, store: PendingStore) {
        self.calls.0 = Some(store);
    }

    /// The store of pending calls given to [`Router::keep_calls_in`].
    pub fn calls_store(&mut self) -> Option<&mut PendingStore> {
        self.calls.0.as_mut()
    }

    /// Takes back the pending calls an earlier relay of this bus left (`pending.rs`), for
    /// callers that are still registered. A call whose callee did not come back (its process
    /// died while no relay ran) is failed at once with "peer died".
    pub fn restore_pending(
        &mut self,
        port: &mut impl Port,
        calls: Vec<(MipcName, Pending)>,
    ) -> usize {
        let mut kept = 0;
        // Each call kept is recorded again in its caller's slot of this relay's table; the
        // places the earlier relay used are cleared after (`PendingStore::settle`).
        for (caller, p) in calls {
            let callee_back = self.entries.contains_key(&p.callee);
            match self.entries.find_mut(&caller) {
                Some((slot, e)) if callee_back => {
                    e.pending = Some(p);
                    self.calls.set(port, slot, &caller, Some(&p));
                    kept += 1;
                }
                // Its callee did not come back.
                Some((_, e)) if e.ext => {
                    let queue = e.queue;
                    self.fail_call(port, &caller, queue, &p, RelayErrorCode::PeerDied);
                }
                _ => {}
            }
        }
        kept
    }

    /// A call recorded as pending could not be delivered: it is not pending after all.
    pub(super) fn forget_call(
        &mut self,
        port: &mut impl Port,
        caller: &MipcName,
        call: Option<CallTag>,
    ) {
        let Some(tag) = call else { return };
        if let Some((slot, e)) = self.entries.find_mut(caller) {
            if e.pending.is_some_and(|p| p.tag == tag) {
                e.pending = None;
                self.calls.set(port, slot, caller, None);
            }
        }
    }

    /// Tells `caller` (whose queue is `queue`) that its pending call `p` failed with `code`.
    pub(super) fn fail_call(
        &mut self,
        port: &mut impl Port,
        caller: &MipcName,
        queue: QueueId,
        p: &Pending,
        code: RelayErrorCode,
    ) {
        let call = WaitingCall {
            caller: *caller,
            queue,
            mtype: p.mtype,
            api: p.api,
            tag: p.tag,
        };
        self.send_error(port, &call, code);
    }

    /// Keeps track of sync calls: a forwarded call is pending for its caller until its answer
    /// passes through.
    pub(super) fn note_delivery(&mut self, port: &mut impl Port, d: &Delivery<'_>) {
        let f = d.frame;
        if let Some(tag) = d.call {
            let Some(slot) = d.src else { return };
            let Some(callee) = self.entries.name_at(d.dst).copied() else {
                return;
            };
            if let Some((caller, src)) = self.entries.named_mut(slot) {
                let until = (f.sync_flag > 0)
                    .then(|| d.now.get() + Duration::from_millis(f.sync_flag as u64));
                let p = Pending {
                    callee,
                    mtype: d.msg.mtype(),
                    api: f.msg_type,
                    tag,
                    until,
                };
                src.pending = Some(p);
                self.calls.set(port, slot, caller, Some(&p));
            }
        } else if let Some(t) = f.tag.filter(|t| t.is_reply()) {
            if let Some((name, caller)) = self.entries.named_mut(d.dst) {
                if caller.pending.is_some_and(|p| p.tag.id() == t.id()) {
                    caller.pending = None;
                    self.calls.set(port, d.dst, name, None);
                }
            }
        }
    }

    /// Whether a call from the entry whose name has key `src` closes a cycle: its
    /// destination (in slot `dst`) waits (transitively) on `src`.
    #[cold]
    pub(super) fn would_deadlock_from(&self, src: &Key, dst: Slot, now: &Now) -> bool {
        let mut next = self.entries.at(dst).and_then(|e| e.pending.as_ref());
        for _ in 0..self.entries.len().min(64) {
            let Some(p) = next else {
                return false;
            };
            if p.until.is_some_and(|u| u <= now.get()) {
                return false;
            }
            if src.is(&p.callee) {
                return true;
            }
            next = self.entries.get(&p.callee).and_then(|e| e.pending.as_ref());
        }
        false
    }

    /// Tells a caller that its tagged sync call failed (only callers that greeted us know
    /// the ERROR type; a legacy caller waits for its timeout, as it always did).
    /// Tells a caller that its tagged sync call failed with `why` (only callers that greeted
    /// us know the ERROR type; a legacy caller waits for its timeout, as it always did), and
    /// returns `why` for the caller of this to pass on.
    pub(super) fn refuse<T>(
        &mut self,
        port: &mut impl Port,
        msg: &MsgBuf,
        hdr: &Header,
        why: Rejected,
    ) -> Result<T, Rejected> {
        if let Some(code) = why.code() {
            self.fail(port, msg, hdr, code);
        }
        Err(why)
    }

    fn fail(&mut self, port: &mut impl Port, msg: &MsgBuf, hdr: &Header, code: RelayErrorCode) {
        let Some(tag) = hdr.tag.filter(|t| !t.is_reply()) else {
            return;
        };
        if hdr.sync_flag == 0 {
            return;
        }
        let Some(caller) = self.entries.get(&hdr.src).filter(|e| e.ext) else {
            return;
        };
        let call = WaitingCall {
            caller: hdr.src,
            queue: caller.queue,
            mtype: msg.mtype(),
            api: hdr.msg_type,
            tag,
        };
        self.send_error(port, &call, code);
    }

    /// Sends `call`'s caller the ERROR answer `code`.
    pub(super) fn send_error(
        &mut self,
        port: &mut impl Port,
        call: &WaitingCall,
        code: RelayErrorCode,
    ) {
        let answer = ErrorAnswer {
            code: code as i32,
            api: call.api,
        };
        self.build_answer(call.mtype, &call.caller, &answer, Some(call.tag.reply()));
        if port.send(call.queue, self.reply.as_sendable()).is_ok() {
            self.stats.errors_sent += 1;
            self.error_sent(port, code as i32);
        }
    }
}
