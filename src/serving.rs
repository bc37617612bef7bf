//! The requests an entry's handlers were handed and have not answered yet (`server.rs`), so
//! that an answer sent by another thread (a worker pool) still carries its request's tag.
//!
//! The newest request sits in a one-request slot that needs no lock: the thread that
//! received it and answers it itself (the usual server loop) publishes and takes it back with
//! one compare-and-swap each. Older unanswered ones (the slot was full when the next request
//! came) wait in a locked list. A thread that answers a request it did not receive looks in
//! the list first (oldest first), then in the slot, under the list's lock.
//!
//! The slot is a sequence lock over atomic words: `state` is `seq << 2 | kind`, where kind is
//! EMPTY, BUSY (being written) or FULL, and `seq` grows with every request put there, so a
//! FULL state is never seen twice and a compare-and-swap on it proves the words read before
//! it were that request's.

use crate::name::MipcName;
use crate::name::MIPC_NAME_MAX_LEN;
use crate::sysv::QueueId;
use crate::table::{Serving, SERVING_MAX};
use crate::wire::CallTag;
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::Mutex;

const EMPTY: u32 = 0;
const BUSY: u32 = 1;
const FULL: u32 = 2;
const KIND: u32 = 3;

/// Name bytes (8 words), length and whether there is a reply queue and an offer, api id, tag,
/// reply queue, the offer's slot, stamp and caller's process.
const WORDS: usize = MIPC_NAME_MAX_LEN / 4 + 7;

/// Where [`Served::publish`] put a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// In the slot, whose state is then this value.
    Slot(u32),
    /// In the list.
    List,
    /// Not kept: an async request, which only the thread handed it remembers.
    Nowhere,
}

/// An entry's requests being served.
#[derive(Debug, Default)]
pub struct Served {
    state: AtomicU32,
    words: [AtomicU32; WORDS],
    older: Mutex<VecDeque<Serving>>,
}

fn encode(sv: &Serving) -> [u32; WORDS] {
    let mut w = [0u32; WORDS];
    for (i, c) in sv.src.field().chunks_exact(4).enumerate() {
        w[i] = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
    }
    let n = MIPC_NAME_MAX_LEN / 4;
    w[n] = sv.src.as_bytes().len() as u32
        | (sv.reply_queue.is_some() as u32) << 8
        | (sv.offer.is_some() as u32) << 9;
    w[n + 1] = sv.api;
    w[n + 2] = sv.tag.raw();
    w[n + 3] = sv.reply_queue.map_or(0, |q| q.0 as u32);
    if let Some(o) = sv.offer {
        w[n + 4] = o.slot;
        w[n + 5] = o.stamp;
        w[n + 6] = o.caller_pid;
    }
    w
}

fn decode(w: &[u32; WORDS]) -> Option<Serving> {
    let n = MIPC_NAME_MAX_LEN / 4;
    let mut field = [0u8; MIPC_NAME_MAX_LEN];
    for (i, c) in field.chunks_exact_mut(4).enumerate() {
        c.copy_from_slice(&w[i].to_ne_bytes());
    }
    let len = (w[n] & 0xff) as usize;
    Some(Serving {
        src: MipcName::from_measured(field, len).ok()?,
        api: w[n + 1],
        tag: CallTag::request(w[n + 2])?,
        reply_queue: (w[n] & 0x100 != 0).then_some(QueueId(w[n + 3] as i32)),
        offer: (w[n] & 0x200 != 0).then_some(crate::wire::Offer {
            slot: w[n + 4],
            stamp: w[n + 5],
            caller_pid: w[n + 6],
        }),
    })
}

impl Served {
    /// Keeps `sv`, a request just handed to the entry's handlers.
    #[inline]
    pub fn publish(&self, sv: &Serving) -> Placed {
        let cur = self.state.load(Ordering::Acquire);
        if cur & KIND == EMPTY {
            let busy = next(cur, BUSY);
            if self
                .state
                .compare_exchange(cur, busy, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Placed::Slot(self.fill(sv, busy));
            }
        }
        self.publish_behind(sv)
    }

    /// Writes `sv` into the slot, which this thread holds (state `busy`); returns the FULL
    /// state it leaves.
    #[inline]
    fn fill(&self, sv: &Serving, busy: u32) -> u32 {
        for (slot, v) in self.words.iter().zip(encode(sv)) {
            slot.store(v, Ordering::Relaxed);
        }
        let full = (busy & !KIND) | FULL;
        self.state.store(full, Ordering::Release);
        full
    }

    /// [`Served::publish`] when the slot holds an unanswered request (it moves to the list)
    /// or another thread is writing it (then `sv` goes to the list).
    #[cold]
    fn publish_behind(&self, sv: &Serving) -> Placed {
        let Ok(mut older) = self.older.lock() else {
            return Placed::List; // unreachable in practice: nothing panics under this lock
        };
        loop {
            let cur = self.state.load(Ordering::Acquire);
            match cur & KIND {
                BUSY => {
                    push_bounded(&mut older, *sv);
                    return Placed::List;
                }
                kind => {
                    let busy = next(cur, BUSY);
                    if self
                        .state
                        .compare_exchange(cur, busy, Ordering::Acquire, Ordering::Relaxed)
                        .is_err()
                    {
                        continue;
                    }
                    if kind == FULL {
                        // Ours now: the request there was not answered yet.
                        if let Some(prev) = decode(&self.read()) {
                            push_bounded(&mut older, prev);
                        }
                    }
                    return Placed::Slot(self.fill(sv, busy));
                }
            }
        }
    }

    fn read(&self) -> [u32; WORDS] {
        let mut w = [0u32; WORDS];
        for (v, slot) in w.iter_mut().zip(&self.words) {
            *v = slot.load(Ordering::Relaxed);
        }
        w
    }

    /// Forgets the request with tag `tag` that this thread was handed (placed as `placed`):
    /// it is being answered.
    #[inline]
    pub fn forget(&self, placed: Placed, tag: CallTag) {
        match placed {
            Placed::Nowhere => return,
            Placed::Slot(full) => {
                let empty = (full & !KIND) | EMPTY;
                if self
                    .state
                    .compare_exchange(full, empty, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
            Placed::List => {}
        }
        self.forget_listed(tag);
    }

    /// [`Served::forget`] for a request that went to the list, or was moved there.
    #[cold]
    fn forget_listed(&self, tag: CallTag) {
        let Ok(mut older) = self.older.lock() else {
            return;
        };
        if let Some(p) = older.iter().position(|x| x.tag == tag) {
            older.remove(p);
        }
    }

    /// Takes the oldest unanswered request of caller `to` for `api`, for an answer from a
    /// thread that was not handed it (a worker).
    pub fn take_for(&self, to: &MipcName, api: u32) -> Option<Serving> {
        let mut older = self.older.lock().ok()?;
        if let Some(p) = older.iter().position(|x| x.src == *to && x.api == api) {
            return older.remove(p);
        }
        // The newest, in the slot; moved to the list only under the lock we hold.
        let cur = self.state.load(Ordering::Acquire);
        if cur & KIND != FULL {
            return None;
        }
        let words = self.read();
        fence(Ordering::Acquire);
        if self.state.load(Ordering::Relaxed) != cur {
            return None; // answered by its thread meanwhile
        }
        let sv = decode(&words).filter(|sv| sv.src == *to && sv.api == api)?;
        let empty = (cur & !KIND) | EMPTY;
        self.state
            .compare_exchange(cur, empty, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| sv)
    }
}

/// The state after `cur` with kind `kind`: the next sequence number when a request is put in.
fn next(cur: u32, kind: u32) -> u32 {
    ((cur & !KIND).wrapping_add(KIND + 1)) | kind
}

fn push_bounded(list: &mut VecDeque<Serving>, sv: Serving) {
    if list.len() >= SERVING_MAX {
        list.pop_front();
    }
    list.push_back(sv);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(src: &str, api: u32, id: u32) -> Serving {
        Serving {
            src: MipcName::new(src.as_bytes()).unwrap(),
            api,
            tag: CallTag::request(id).unwrap(),
            reply_queue: (id % 2 == 0).then_some(QueueId(id as i32 * 7)),
            offer: (id % 4 == 0).then_some(crate::wire::Offer {
                slot: id + 1,
                stamp: id * 3,
                caller_pid: id + 5,
            }),
        }
    }

    #[test]
    fn the_words_hold_a_request() {
        for r in [
            req("a", 1, 1),
            req("caller-with-a-long-name-0123456", 77, 8),
        ] {
            assert_eq!(decode(&encode(&r)), Some(r));
        }
    }

    #[test]
    fn own_answers_take_the_slot_back() {
        let s = Served::default();
        for id in 1..5 {
            let r = req("c", 3, id);
            let placed = s.publish(&r);
            assert!(matches!(placed, Placed::Slot(_)));
            s.forget(placed, r.tag);
            assert_eq!(s.take_for(&r.src, 3), None, "answered: nothing left");
        }
    }

    #[test]
    fn unanswered_requests_wait_oldest_first() {
        let s = Served::default();
        let (a, b, c) = (req("c", 3, 1), req("c", 3, 2), req("d", 3, 3));
        let pa = s.publish(&a);
        s.publish(&b);
        s.publish(&c);
        // A worker answering c's api 3 takes the oldest, a (moved to the list), then b.
        assert_eq!(s.take_for(&a.src, 3), Some(a));
        assert_eq!(s.take_for(&a.src, 3), Some(b));
        assert_eq!(s.take_for(&a.src, 3), None);
        // d's is the newest, in the slot.
        assert_eq!(s.take_for(&c.src, 4), None, "another api");
        assert_eq!(s.take_for(&c.src, 3), Some(c));
        // The thread handed a answers it late: nothing to forget, nothing breaks.
        s.forget(pa, a.tag);
        assert_eq!(s.take_for(&c.src, 3), None);
    }

    #[test]
    fn a_request_moved_to_the_list_is_forgotten_there() {
        let s = Served::default();
        let (a, b) = (req("c", 3, 1), req("c", 3, 2));
        let pa = s.publish(&a);
        let pb = s.publish(&b); // a moves to the list
        s.forget(pa, a.tag);
        assert_eq!(s.take_for(&a.src, 3), Some(b), "only b is left");
        s.forget(pb, b.tag);
        assert_eq!(s.take_for(&a.src, 3), None);
    }

    #[test]
    fn threads_answering_each_others_requests_lose_none() {
        use std::sync::Arc;
        let s = Arc::new(Served::default());
        let n = 2000u32;
        // At most 64 handed over and unanswered: well within what the list keeps.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Serving>(64);
        let receiver = {
            let s = s.clone();
            std::thread::spawn(move || {
                for id in 1..=n {
                    let r = req("c", id % 3, id);
                    let placed = s.publish(&r);
                    if id % 2 == 0 {
                        s.forget(placed, r.tag); // answered by the thread handed it
                    } else {
                        tx.send(r).unwrap(); // by a worker
                    }
                }
            })
        };
        let mut taken = 0;
        for r in rx {
            // Oldest of that caller and api first: the one sent, since odd ids of one api
            // are handed over in order and even ones are forgotten before the next.
            let got = s.take_for(&r.src, r.api);
            assert_eq!(got.map(|g| g.tag), Some(r.tag));
            taken += 1;
        }
        receiver.join().unwrap();
        assert_eq!(taken, n / 2);
    }
}
