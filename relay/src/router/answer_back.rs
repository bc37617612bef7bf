//! Answers straight back (docs/PROTOCOL.md §11): the relay lets a server's library answer a
//! sync request straight to the caller's queue, so the answer crosses one queue instead of
//! two (the root queue and the relay's send), and takes the library's word (ANSWERED) that
//! such a call is over.
//!
//! The relay offers it when it forwards a tagged sync request from a greeted caller to an
//! entry that asked for it in its HELLO, has a known process and a sender trailer, and:
//! - no monitor is attached (a monitor sees every answer that passes the relay);
//! - nothing waits for the caller in a backlog (the answer must not overtake it);
//! - the caller is not the server itself.
//!
//! The offer carries the caller's queue and place in the table, and a stamp: how many
//! messages from the server's entry the relay had read (`Entry::reads`, counted for every
//! message read off the root queue). The library answers straight back only when it sent no
//! more than that from the entry, so nothing it sent before the answer can still be on the
//! root queue behind it: every message the server sent to the caller before answering is on
//! the caller's queue (or in its backlog, which stops the offer) before the answer is.

use super::entries::Slot;
use super::{Handled, Port, Rejected, Router};
use mipc::wire::Header;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether routers made from now on offer answers straight back (`MIPC_ANSWER_BACK=0` on
/// the relay turns it off).
static OFFERING: AtomicBool = AtomicBool::new(true);

/// Turns offering answers straight back on or off for routers made from now on.
pub fn set_answering_back(on: bool) {
    OFFERING.store(on, Ordering::Relaxed);
}

/// Whether routers made from now on offer answers straight back.
pub fn answering_back() -> bool {
    OFFERING.load(Ordering::Relaxed)
}

/// An offer to answer straight back, as it goes after the request's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Offer {
    pub queue: i32,
    pub slot: u32,
    pub stamp: u32,
}

impl Router {
    /// Turns offering answers straight back on or off for this router (it starts as
    /// [`answering_back`] says).
    pub fn set_answering_back(&mut self, on: bool) {
        self.answer_back = on;
    }

    /// Counts a message read off the root queue from the entry in `src`.
    #[inline(always)]
    pub(super) fn count_read(&mut self, src: Option<Slot>) {
        if let Some(e) = src.and_then(|s| self.entries.at_mut(s)) {
            e.reads = e.reads.wrapping_add(1);
        }
    }

    /// The offer for a sync request from `src` to the entry in `dst` (which answers back,
    /// with `stamp` messages read from it), if the relay may make one.
    #[inline]
    pub(super) fn offer(&self, src: Option<Slot>, dst: Slot, stamp: u32) -> Option<Offer> {
        let src = src.filter(|s| *s != dst)?;
        if !self.answer_back || !self.monitors.is_empty() {
            return None;
        }
        let caller = self.entries.at(src).filter(|e| e.ext)?;
        if self.backlogs.has(self.entries.name_at(src)?) {
            return None;
        }
        Some(Offer {
            queue: caller.queue.0,
            slot: src.index() as u32,
            stamp,
        })
    }

    /// An ANSWERED: calls a library answered straight back, which are pending no longer.
    /// Each names its caller's place, tag and process; a call ends only if the caller there
    /// is that process and waits on exactly that tag, on an entry of the sender's process
    /// (most callers made their next call meanwhile; a place and a tag alone come again, as
    /// places are reused and every process numbers its calls from 1). Every call it names
    /// counts as answered straight back.
    pub(super) fn answered(
        &mut self,
        port: &mut impl Port,
        hdr: &Header,
        payload: &[u8],
    ) -> Result<Handled, Rejected> {
        let Some(calls) = mipc::wire::answered::decode(payload) else {
            return Err(Rejected::Control(hdr.msg_type, hdr.src));
        };
        let sender = self.entries.get(&hdr.src).and_then(|e| e.pid);
        let mut ended = 0;
        let mut named = 0u64;
        for c in calls {
            named += 1;
            let slot = Slot::at_index(c.slot);
            let ends = self.entries.at(slot).is_some_and(|e| {
                e.pid == Some(c.caller_pid as i32)
                    && e.pending.is_some_and(|p| {
                        p.tag == c.tag
                            && sender.is_some()
                            && self.entries.get(&p.callee).and_then(|s| s.pid) == sender
                    })
            });
            if ends {
                if let Some((name, e)) = self.entries.named_mut(slot) {
                    e.pending = None;
                    let name = *name;
                    self.calls.set(port, slot, &name, None);
                    ended += 1;
                }
            }
        }
        self.counters.answered_back += named;
        Ok(Handled::AnsweredBack(ended))
    }
}
