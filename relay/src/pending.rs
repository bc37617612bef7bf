//! Pending sync calls in memory that outlives the relay: a file in the state directory
//! (`mipc-<key>.pending`, next to the name table), mapped into the relay, one 128-byte slot
//! per caller with a call in flight. Recording a call is a few stores into the mapping, no
//! system call, so it costs nothing on the message path; and a relay killed with SIGKILL
//! leaves the slots in the page cache, where the relay started after it finds them, so a
//! caller blocked across a restart still gets "peer died" or "deadlock" from the new relay.
//!
//! A caller's slot is its place in the relay's name table (`router/entries.rs`), which holds
//! no more entries than the file has slots: recording or ending a call writes that slot
//! directly, with no lookup. A relay started later takes the calls back from wherever the
//! earlier one kept them, records each again in its caller's new slot, then clears the
//! places it did not reuse ([`PendingStore::settle`]).
//!
//! Slot layout (native endian): `u32 used`, `u32 api`, `u32 tag`, `u32 pad`, `i64 mtype`,
//! `u64 until` (CLOCK_MONOTONIC ns, 0: forever), caller name field (32 bytes), callee name
//! field (32 bytes), 32 bytes unused.

use crate::router::Pending;
use mipc::os::mapped::MappedFile;
use mipc::wire::{CallTag, MIPC_NAME_MAX_LEN};
use mipc::MipcName;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SLOT: usize = 128;

/// The mapped table of pending calls.
#[derive(Debug)]
pub struct PendingStore {
    path: PathBuf,
    map: MappedFile,
    slots: usize,
    /// An earlier relay left the file (only then is it worth reading).
    existed: bool,
    /// Slots holding calls an earlier relay left and this one has not written since.
    stale: Vec<usize>,
    /// A moment on both clocks, to turn an [`Instant`] into `CLOCK_MONOTONIC` ns without
    /// reading a clock per call.
    base: (Instant, u64),
}

/// The pending-calls file of the bus whose name table is at `entries_path`.
pub fn path_beside(entries_path: &Path) -> PathBuf {
    entries_path.with_extension("pending")
}

/// `mtype` as stored: 8 bytes on every target (a `long` is 4 bytes on ARM32, where this
/// conversion is not a no-op).
#[allow(clippy::useless_conversion)]
fn wide(mtype: std::os::raw::c_long) -> i64 {
    i64::from(mtype)
}

fn mono_ns() -> u64 {
    mipc::os::process::monotonic_ns()
}

impl PendingStore {
    /// Opens (making it if needed) the file at `path` with room for `slots` callers and
    /// maps it.
    ///
    /// # Errors
    /// When the file cannot be made, sized or mapped.
    pub fn open(path: PathBuf, slots: usize) -> io::Result<PendingStore> {
        let file = mipc::os::mapped::open_kept(&path)?;
        let existed = file.metadata()?.len() > 0;
        let len = slots * SLOT;
        file.set_len(len as u64)?;
        let map = MappedFile::map(&file, len)?;
        Ok(PendingStore {
            path,
            map,
            slots,
            existed,
            stale: Vec::new(),
            base: (Instant::now(), mono_ns()),
        })
    }

    fn slot(&mut self, i: usize) -> Option<&mut [u8]> {
        self.map.bytes().get_mut(i * SLOT..(i + 1) * SLOT)
    }

    /// The calls an earlier relay left. Their slots are cleared by [`PendingStore::settle`]
    /// unless they are written again before.
    pub fn load(&mut self) -> Vec<(MipcName, Pending)> {
        if !self.existed {
            return Vec::new(); // a new, empty table: reading it would only map its pages
        }
        let (now_i, now_ns) = (Instant::now(), mono_ns());
        let mut out = Vec::new();
        let mut used = Vec::new();
        for i in 0..self.slots {
            let Some(s) = self.slot(i) else { break };
            let word = |o: usize| u32::from_ne_bytes([s[o], s[o + 1], s[o + 2], s[o + 3]]);
            if word(0) != 1 {
                continue;
            }
            let mut l = [0u8; 8];
            l.copy_from_slice(&s[16..24]);
            let mtype = i64::from_ne_bytes(l);
            l.copy_from_slice(&s[24..32]);
            let until_ns = u64::from_ne_bytes(l);
            let field = |o: usize| -> Option<MipcName> {
                let f: &[u8; MIPC_NAME_MAX_LEN] = s[o..o + MIPC_NAME_MAX_LEN].try_into().ok()?;
                MipcName::from_field(f).ok()
            };
            let (Some(caller), Some(callee), Some(tag)) =
                (field(32), field(64), CallTag::request(word(8)))
            else {
                s.fill(0);
                continue;
            };
            let until = (until_ns != 0)
                .then(|| now_i + Duration::from_nanos(until_ns.saturating_sub(now_ns)));
            out.push((
                caller,
                Pending {
                    callee,
                    mtype: mtype as std::os::raw::c_long,
                    api: word(4),
                    tag,
                    until,
                },
            ));
            used.push(i);
        }
        self.stale = used;
        // The scan mapped every page; let them go from the relay's resident set (the data
        // stays in the file, and a page comes back when a call is recorded in it).
        self.map.release_pages();
        out
    }

    /// Records `caller`'s pending call in slot `i`, or clears it with `None`.
    pub fn set(&mut self, i: usize, caller: &MipcName, p: Option<&Pending>) {
        if !self.stale.is_empty() {
            self.stale.retain(|&s| s != i);
        }
        let until = p.and_then(|p| p.until).map_or(0, |u| {
            let (base, base_ns) = self.base;
            let since = u.saturating_duration_since(base).as_nanos() as u64;
            (base_ns + since).max(1)
        });
        let Some(s) = self.slot(i) else { return };
        let Some(p) = p else {
            s[0..4].fill(0);
            return;
        };
        s[4..8].copy_from_slice(&p.api.to_ne_bytes());
        s[8..12].copy_from_slice(&p.tag.raw().to_ne_bytes());
        s[16..24].copy_from_slice(&wide(p.mtype).to_ne_bytes());
        s[24..32].copy_from_slice(&until.to_ne_bytes());
        s[32..64].copy_from_slice(caller.field());
        s[64..96].copy_from_slice(p.callee.field());
        s[0..4].copy_from_slice(&1u32.to_ne_bytes()); // last: the slot is complete
    }

    /// Clears the slots of calls an earlier relay left that were not recorded again (their
    /// callers are gone, or were taken back in another slot).
    pub fn settle(&mut self) {
        for i in std::mem::take(&mut self.stale) {
            if let Some(s) = self.slot(i) {
                s[0..4].fill(0);
            }
        }
    }

    /// Removes the file (a clean stop with no entry left).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_outlive_the_store() {
        let dir = std::env::temp_dir().join(format!("mipc-pending-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.pending");
        let a = MipcName::new(b"caller_a").unwrap();
        let b = MipcName::new(b"caller_b").unwrap();
        let p = Pending {
            callee: MipcName::new(b"server").unwrap(),
            mtype: 42,
            api: 42,
            tag: CallTag::request(7).unwrap(),
            until: None,
        };
        let timed = Pending {
            until: Some(Instant::now() + Duration::from_secs(60)),
            ..p
        };
        {
            let mut s = PendingStore::open(path.clone(), 8).unwrap();
            assert!(s.load().is_empty());
            s.set(0, &a, Some(&p));
            s.set(1, &b, Some(&timed));
            s.set(1, &b, None);
            s.set(1, &b, Some(&timed));
            s.set(8, &b, Some(&timed)); // past the end: ignored
        } // dropped like a killed relay: nothing cleared
        let mut s = PendingStore::open(path.clone(), 8).unwrap();
        let mut got = s.load();
        got.sort_by_key(|(n, _)| n.as_bytes().to_vec());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (a, p));
        assert_eq!(got[1].1.tag, timed.tag);
        let left = got[1]
            .1
            .until
            .unwrap()
            .saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(58) && left <= Duration::from_secs(60));
        // Taken back: b's call in another slot, a's not at all; the old places are cleared.
        s.set(3, &b, Some(&got[1].1));
        s.settle();
        drop(s);
        let mut s = PendingStore::open(path.clone(), 8).unwrap();
        let got = s.load();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, b);
        s.remove();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
