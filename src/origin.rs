//! Where a received message came from: the sender's process as the relay reported it
//! (docs/PROTOCOL.md §9, sender trailer), kept per receiving thread for the last few
//! receive buffers, so that `mipc_sender_pid(msg)` can answer for the buffer a program
//! received into. The relay's word, never the sender's own claim.

use crate::local::Local;

/// How many recent receive buffers a thread remembers.
const REMEMBERED: usize = 8;

/// (buffer address, sender pid) of a thread's last receives, oldest first: part of the
/// thread's state (`local.rs`). A fixed array: no heap, nothing to drop.
pub(crate) struct Recent {
    slots: [(usize, u32); REMEMBERED],
    len: usize,
}

impl Recent {
    /// Nothing remembered.
    pub(crate) const fn new() -> Recent {
        Recent {
            slots: [(0, 0); REMEMBERED],
            len: 0,
        }
    }

    fn used(&mut self) -> &mut [(usize, u32)] {
        &mut self.slots[..self.len]
    }

    fn forget(&mut self, addr: usize) {
        if let Some(i) = self.used().iter().position(|(a, _)| *a == addr) {
            self.used()[i..].rotate_left(1);
            self.len -= 1;
        }
    }

    #[inline]
    fn remember(&mut self, addr: usize, pid: Option<u32>) {
        match (self.used().last_mut(), pid) {
            // A program mostly receives into the same buffer again: update it in place.
            (Some(last), Some(pid)) if last.0 == addr => last.1 = pid,
            // No sender reported (a direct call, a legacy sender) and nothing to forget.
            (None, None) => {}
            _ => self.remember_other(addr, pid),
        }
    }

    #[cold]
    fn remember_other(&mut self, addr: usize, pid: Option<u32>) {
        self.forget(addr);
        if let Some(pid) = pid {
            if self.len == REMEMBERED {
                self.slots.rotate_left(1);
                self.len -= 1;
            }
            self.slots[self.len] = (addr, pid);
            self.len += 1;
        }
    }
}

/// Records that the message just received into the buffer at `addr` came from process `pid`
/// (`None`: unknown, which forgets what the buffer held before).
pub fn remember(addr: usize, pid: Option<u32>) {
    crate::local::with(|l| remember_in(l, addr, pid));
}

/// [`remember`] with the thread's state at hand.
#[inline]
pub(crate) fn remember_in(l: Option<&Local>, addr: usize, pid: Option<u32>) {
    if let Some(mut r) = l.and_then(|l| l.recent.try_borrow_mut().ok()) {
        r.remember(addr, pid);
    }
}

/// The sender's process of the message last received into the buffer at `addr` by this
/// thread, if the relay reported it.
pub fn recall(addr: usize) -> Option<u32> {
    crate::local::with(|l| {
        let mut r = l?.recent.try_borrow_mut().ok()?;
        r.used().iter().find(|(a, _)| *a == addr).map(|(_, p)| *p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_buffer_and_bounded() {
        remember(0x1000, Some(42));
        remember(0x2000, Some(43));
        assert_eq!((recall(0x1000), recall(0x2000)), (Some(42), Some(43)));
        remember(0x1000, None);
        assert_eq!(
            recall(0x1000),
            None,
            "a legacy sender's message forgets the old pid"
        );
        for i in 0..REMEMBERED {
            remember(0x9000 + i, Some(i as u32));
        }
        assert_eq!(recall(0x2000), None, "the oldest buffer is forgotten");
        assert_eq!(recall(0x9000 + REMEMBERED - 1), Some(REMEMBERED as u32 - 1));
    }
}
