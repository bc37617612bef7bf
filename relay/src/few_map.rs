//! A map keyed by destination names for the look-ups the receive loop makes per message
//! (the backlogs: `backlog.rs`). While it holds a few keys, which is what a flood to a few
//! slow receivers makes, a look-up compares names: that costs less than hashing one (in a
//! flood to 4 full queues, the two look-ups of a message that hashed the name cost the relay
//! about 200 instructions). Past [`FEW`] keys a hash index beside the names takes over.

use mipc::fasthash::KeyedMap;
use mipc::MipcName;

/// Up to how many keys a look-up compares names instead of hashing one.
pub const FEW: usize = 8;

/// Values by name; positions are not stable (a removal moves the last one).
#[derive(Debug)]
pub struct FewMap<V> {
    names: Vec<MipcName>,
    values: Vec<V>,
    /// The position of every name, kept only while there are more than [`FEW`].
    index: KeyedMap<MipcName, usize>,
}

impl<V> Default for FewMap<V> {
    fn default() -> Self {
        FewMap {
            names: Vec::new(),
            values: Vec::new(),
            index: KeyedMap::default(),
        }
    }
}

impl<V> FewMap<V> {
    /// How many keys.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    #[inline]
    fn position(&self, k: &MipcName) -> Option<usize> {
        if self.names.len() <= FEW {
            self.names.iter().position(|n| n == k)
        } else {
            self.index.get(k).copied()
        }
    }

    /// Whether `k` is there.
    pub fn contains_key(&self, k: &MipcName) -> bool {
        self.position(k).is_some()
    }

    /// The value of `k`.
    pub fn get(&self, k: &MipcName) -> Option<&V> {
        self.position(k).and_then(|i| self.values.get(i))
    }

    /// The value of `k`, to change.
    #[inline]
    pub fn get_mut(&mut self, k: &MipcName) -> Option<&mut V> {
        let i = self.position(k)?;
        self.values.get_mut(i)
    }

    /// Adds `v` under `k`, which is not there yet (check with [`FewMap::get_mut`] first);
    /// returns it in its place.
    pub fn insert_new(&mut self, k: MipcName, v: V) -> &mut V {
        debug_assert!(self.position(&k).is_none(), "{k} is there already");
        let at = self.names.len();
        self.names.push(k);
        self.values.push(v);
        if at == FEW {
            // One past the few: from now on the index answers.
            self.index = self
                .names
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, i))
                .collect();
        } else if at > FEW {
            self.index.insert(k, at);
        }
        &mut self.values[at]
    }

    /// Takes `k` and its value out.
    pub fn remove(&mut self, k: &MipcName) -> Option<V> {
        let i = self.position(k)?;
        self.names.swap_remove(i);
        let v = self.values.swap_remove(i);
        if self.names.len() <= FEW {
            self.index = KeyedMap::default();
        } else {
            self.index.remove(k);
            if let Some(moved) = self.names.get(i) {
                self.index.insert(*moved, i);
            }
        }
        Some(v)
    }

    /// Every key and its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&MipcName, &V)> {
        self.names.iter().zip(self.values.iter())
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.values.iter()
    }

    /// Every key and its value, to change, in no particular order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&MipcName, &mut V)> {
        self.names.iter().zip(self.values.iter_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn name(i: usize) -> MipcName {
        MipcName::new(format!("d{i}").as_bytes()).unwrap()
    }

    /// The map and a plain map given the same inserts and removals (growing past FEW and
    /// shrinking back, removing from the middle and the end) answer the same for every name.
    #[test]
    fn answers_as_a_plain_map_across_the_few_limit() {
        let mut m = FewMap::default();
        let mut plain = HashMap::new();
        let all = 3 * FEW;
        let check = |m: &FewMap<usize>, plain: &HashMap<MipcName, usize>| {
            assert_eq!(m.len(), plain.len());
            for i in 0..all + 2 {
                let k = name(i);
                assert_eq!(m.get(&k), plain.get(&k), "{} keys, name {i}", plain.len());
                assert_eq!(m.contains_key(&k), plain.contains_key(&k));
            }
            let sorted = |mut v: Vec<(String, usize)>| {
                v.sort();
                v
            };
            let listed = sorted(m.iter().map(|(k, v)| (k.to_string(), *v)).collect());
            let want = sorted(plain.iter().map(|(k, v)| (k.to_string(), *v)).collect());
            assert_eq!(listed, want);
        };
        for i in 0..all {
            *m.insert_new(name(i), i) += 1000;
            plain.insert(name(i), i + 1000);
            check(&m, &plain);
        }
        // Out of the middle, every third, then the rest from the end and the start.
        let mut order: Vec<usize> = (0..all).filter(|i| i % 3 == 1).collect();
        order.extend((0..all).filter(|i| i % 3 != 1).rev().step_by(2));
        order.extend((0..all).filter(|i| i % 3 != 1).rev().skip(1).step_by(2));
        for i in order {
            assert_eq!(m.remove(&name(i)), plain.remove(&name(i)), "remove {i}");
            assert_eq!(m.remove(&name(i)), None, "gone: {i}");
            if let Some(v) = m.get_mut(&name(all - 1)) {
                *v += 1;
                *plain.get_mut(&name(all - 1)).unwrap() += 1;
            }
            check(&m, &plain);
        }
        assert!(m.is_empty());
    }
}
