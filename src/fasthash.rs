//! A small multiplicative hasher (the FxHash recipe) for the library's internal maps: wait
//! ids, pids and this process's own route names. Their keys never come from a peer, so they
//! need no protection against chosen collisions, and SipHash was a third of the instructions
//! of a direct call. The relay's name table, whose keys anyone on the bus chooses, keeps
//! the standard hasher.

use std::hash::{BuildHasherDefault, Hasher};

/// The hasher.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    fn write_i32(&mut self, v: i32) {
        self.add(v as u32 as u64);
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashMap`/`HashSet` builder with [`FastHasher`].
pub type FastBuild = BuildHasherDefault<FastHasher>;
/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastBuild>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    #[test]
    fn spreads_neighbours() {
        let b = FastBuild::default();
        let h: std::collections::HashSet<u64> = (0..1000u64).map(|i| b.hash_one(i)).collect();
        assert_eq!(h.len(), 1000);
        let mut a = FastHasher::default();
        b"alarm_apm".hash(&mut a);
        let mut c = FastHasher::default();
        b"alarm_apn".hash(&mut c);
        assert_ne!(a.finish(), c.finish());
    }
}
