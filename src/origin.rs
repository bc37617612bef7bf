//! Where a received message came from: the sender's process as the relay reported it
//! (docs/PROTOCOL.md §9, sender trailer), kept per receiving thread for the last few
//! receive buffers, so that `mipc_sender_pid(msg)` can answer for the buffer a program
//! received into. The relay's word, never the sender's own claim.

use std::cell::RefCell;

/// How many recent receive buffers a thread remembers.
const REMEMBERED: usize = 8;

thread_local! {
    /// (buffer address, sender pid) of this thread's last receives, newest last.
    static RECENT: RefCell<Vec<(usize, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Records that the message just received into the buffer at `addr` came from process `pid`
/// (`None`: unknown, which forgets what the buffer held before).
pub fn remember(addr: usize, pid: Option<u32>) {
    let _ = RECENT.try_with(|r| {
        let mut r = r.borrow_mut();
        // A program mostly receives into the same buffer again: update it in place.
        if let (Some(last), Some(pid)) = (r.last_mut(), pid) {
            if last.0 == addr {
                last.1 = pid;
                return;
            }
        }
        r.retain(|(a, _)| *a != addr);
        if let Some(pid) = pid {
            if r.len() >= REMEMBERED {
                r.remove(0);
            }
            r.push((addr, pid));
        }
    });
}

/// The sender's process of the message last received into the buffer at `addr` by this
/// thread, if the relay reported it.
pub fn recall(addr: usize) -> Option<u32> {
    RECENT
        .try_with(|r| r.borrow().iter().find(|(a, _)| *a == addr).map(|(_, p)| *p))
        .ok()
        .flatten()
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
