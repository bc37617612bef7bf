//! Answers straight back (docs/PROTOCOL.md §11): the relay lets a server's library answer a
//! sync request straight to the caller's queue, so the answer crosses one queue instead of
//! two (the root queue and the relay's send), and takes the library's word (ANSWERED) that
//! such a call is over.
//!
//! The relay offers it when it forwards a tagged sync request from a greeted caller to an
//! entry that asked for it in its HELLO, has a known process and a sender trailer, and:
//! - no monitor is attached (a monitor sees every answer that passes the relay);
//! - nothing waits for the caller in a backlog (the answer must not overtake it);
//! - the caller is not the server itself;
//! - by default, several callers share the relay: one of the last [`SHARED_CALLS`] sync
//!   requests came from another caller ([`Offering::WhenShared`]). A lone caller's calls keep
//!   their four hops: three processes in a cycle of three hops on two CPUs never settle on
//!   one CPU, and every call then takes two cross-CPU wake-ups, where four-hop calls often
//!   take none (measured: docs/PERFORMANCE.md, "Where the scheduler-placement gap comes
//!   from"); with several callers the relay is the resource they share, and answers straight
//!   back take half its work off it. `MIPC_ANSWER_BACK=always` offers to lone callers too.
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
use std::sync::atomic::{AtomicU8, Ordering};

/// When a relay offers answers straight back (`MIPC_ANSWER_BACK` in its environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offering {
    /// Never (`MIPC_ANSWER_BACK=0`): answers go through the relay, as in MIPC.
    Never,
    /// While several callers share the relay (the default).
    WhenShared,
    /// On every sync request that qualifies (`MIPC_ANSWER_BACK=always`).
    Always,
}

/// How many sync requests in a row from one caller make it a lone caller again.
pub const SHARED_CALLS: u32 = 8;

/// When routers made from now on offer answers straight back.
static OFFERING: AtomicU8 = AtomicU8::new(Offering::WhenShared as u8);

/// Sets when routers made from now on offer answers straight back.
pub fn set_answering_back(when: Offering) {
    OFFERING.store(when as u8, Ordering::Relaxed);
}

/// When routers made from now on offer answers straight back.
pub fn answering_back() -> Offering {
    match OFFERING.load(Ordering::Relaxed) {
        x if x == Offering::Never as u8 => Offering::Never,
        x if x == Offering::Always as u8 => Offering::Always,
        _ => Offering::WhenShared,
    }
}

/// Whether several callers share the relay: the caller of the last sync request, and how
/// many more sync requests count as shared since one came from another caller.
#[derive(Debug, Clone, Copy)]
pub(super) struct Callers {
    last: Slot,
    shared_for: u32,
}

impl Default for Callers {
    fn default() -> Self {
        Callers {
            last: Slot::NONE,
            shared_for: 0,
        }
    }
}

impl Callers {
    /// A sync request from `src`: whether the relay is shared now.
    #[inline]
    fn called_by(&mut self, src: Slot) -> bool {
        if src != self.last {
            if self.last != Slot::NONE {
                self.shared_for = SHARED_CALLS;
            }
            self.last = src;
        } else {
            self.shared_for = self.shared_for.saturating_sub(1);
        }
        self.shared_for > 0
    }
}

/// An offer to answer straight back, as it goes after the request's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Offer {
    pub queue: i32,
    pub slot: u32,
    pub stamp: u32,
}

impl Router {
    /// Sets when this router offers answers straight back (it starts as [`answering_back`]
    /// says).
    pub fn set_answering_back(&mut self, when: Offering) {
        self.answer_back = when;
    }

    /// Counts a message read off the root queue from the entry in `src`.
    #[inline(always)]
    pub(super) fn count_read(&mut self, src: Option<Slot>) {
        if let Some(e) = src.and_then(|s| self.entries.at_mut(s)) {
            e.reads = e.reads.wrapping_add(1);
        }
    }

    /// Notes a sync request from `src` (whether several callers share the relay).
    #[inline]
    pub(super) fn note_caller(&mut self, src: Option<Slot>) {
        let shared = self.callers.called_by(src.unwrap_or(Slot::NONE));
        self.shared = shared;
    }

    /// The offer for a sync request from `src` to the entry in `dst` (which answers back,
    /// with `stamp` messages read from it), if the relay may make one.
    #[inline]
    pub(super) fn offer(&self, src: Option<Slot>, dst: Slot, stamp: u32) -> Option<Offer> {
        let src = src.filter(|s| *s != dst)?;
        let wanted = match self.answer_back {
            Offering::Never => false,
            Offering::WhenShared => self.shared,
            Offering::Always => true,
        };
        if !wanted || !self.monitors.is_empty() {
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
