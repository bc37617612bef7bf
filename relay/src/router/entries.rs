//! The name table's storage: entries in a slab (a `Vec` whose free places are reused), found
//! by name through a keyed hash map of their 32-byte name fields. A message's route looks its
//! source and destination up once each and keeps their [`Slot`]s for the rest of the way,
//! where it used to look names up again for every question (the sender's pid, the pending
//! call, each traffic counter). A slot is also the entry's place in the pending-calls file
//! (`pending.rs`): the slab never holds more than the table's most entries, and neither has
//! that file slots.

use super::Entry;
use mipc::fasthash::KeyedMap;
use mipc::wire::MIPC_NAME_MAX_LEN;
use mipc::MipcName;
use std::hash::{Hash, Hasher};

/// Where an entry lies in the slab; valid until that entry is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(u32);

impl Slot {
    /// No entry's slot.
    pub const NONE: Slot = Slot(u32::MAX);

    /// The slot at `index` (which may hold no entry: lookups then find none).
    pub fn at_index(index: u32) -> Slot {
        Slot(index)
    }

    /// Its index (also the entry's slot in the pending-calls file).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A name as the index's key: its whole zero-padded field, compared and hashed as four
/// words (a fixed size: no length, no `memcmp` or `memcpy` call per lookup). Every
/// [`MipcName`] zeroes its field past its bytes, and a key read from a received field zeroes
/// what follows the NUL there, so equal keys are equal names. Words are read little-endian on
/// every target (byte k of a word is bits 8k..8k+8).
#[derive(Clone, Copy, Eq)]
pub struct Key([u64; WORDS]);

impl PartialEq for Key {
    /// All four words at once, without a branch per word.
    #[inline]
    fn eq(&self, other: &Key) -> bool {
        let (a, b) = (&self.0, &other.0);
        ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0
    }
}

const WORDS: usize = MIPC_NAME_MAX_LEN / 8;
const _: () = assert!(WORDS == 4, "Key::eq compares four words");

fn word(c: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(c);
    u64::from_le_bytes(b)
}

impl Key {
    /// The relay's own name.
    pub const RELAY: Key = Key::of_bytes(b"mipc_main");

    /// The key of `name`.
    pub fn of(name: &MipcName) -> Key {
        let mut k = [0u64; WORDS];
        for (w, c) in k.iter_mut().zip(name.field().chunks_exact(8)) {
            *w = word(c);
        }
        Key(k)
    }

    const fn of_bytes(bytes: &[u8]) -> Key {
        let mut k = [0u64; WORDS];
        let mut i = 0;
        while i < bytes.len() {
            k[i / 8] |= (bytes[i] as u64) << (8 * (i % 8));
            i += 1;
        }
        Key(k)
    }

    /// The key of the name in a received name field, read where it lies: the bytes up to
    /// the first NUL, the rest taken as zeros. The field was checked (`wire::decode_frame`):
    /// it holds a NUL (a field without one would give a key no entry has, as no name fills
    /// all 32 bytes).
    #[inline]
    pub fn in_field(field: &[u8]) -> Key {
        const LOW: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let mut k = [0u64; WORDS];
        for (w, c) in k.iter_mut().zip(field.chunks_exact(8)) {
            let v = word(c);
            // The lowest bit set marks the first zero byte exactly.
            let zeros = v.wrapping_sub(LOW) & !v & HIGH;
            if zeros != 0 {
                let bits = zeros.trailing_zeros() & !7; // 8 * the NUL's place in the word
                *w = v & ((1u64 << bits) - 1);
                break;
            }
            *w = v;
        }
        Key(k)
    }

    /// Whether this is `name`'s key.
    pub fn is(&self, name: &MipcName) -> bool {
        *self == Key::of(name)
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for w in self.0 {
            state.write_u64(w);
        }
    }
}

/// The registered entries (in declaration order, `repr(C)`: what a message's route reads
/// first, in as few cache lines as can be).
#[derive(Default)]
#[repr(C)]
pub struct Entries {
    /// The last two names the route found, compared before any hashing: a call and its
    /// answer, or a flood from one sender to one receiver, name the same two entries message
    /// after message. A name is only kept here while its entry is in the table.
    recent: Recent,
    slab: Vec<Option<(MipcName, Entry)>>,
    index: KeyedMap<Key, u32>,
    free: Vec<u32>,
}

/// Two keys and their slots, the older one replaced first.
struct Recent {
    keys: [Key; 2],
    /// [`FREE`] marks a free place.
    slots: [u32; 2],
    /// The place to fill next.
    older: usize,
}

/// The slot of a free place in [`Recent`] (no slot: the slab never holds that many).
const FREE: u32 = u32::MAX;

impl Default for Recent {
    fn default() -> Recent {
        Recent {
            keys: [Key::default(); 2],
            slots: [FREE; 2],
            older: 0,
        }
    }
}

impl Default for Key {
    fn default() -> Key {
        Key([0; WORDS])
    }
}

impl Entries {
    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// The slot of `name`'s entry.
    pub fn find(&self, name: &MipcName) -> Option<Slot> {
        self.find_key(&Key::of(name))
    }

    /// The slot of the entry whose name has key `key`.
    pub fn find_key(&self, key: &Key) -> Option<Slot> {
        self.index.get(key).map(|&i| Slot(i))
    }

    /// The slot of the entry whose name has key `key`, looked up first among the last two
    /// found this way (the route's lookups).
    #[inline]
    pub fn lookup(&mut self, key: &Key) -> Option<Slot> {
        let r = &mut self.recent;
        for i in 0..2 {
            if r.keys[i] == *key && r.slots[i] != FREE {
                r.older = 1 - i;
                return Some(Slot(r.slots[i]));
            }
        }
        self.lookup_indexed(key)
    }

    /// [`Entries::lookup`] of a key not among the last two: hashed, and kept in place of the
    /// older of them.
    fn lookup_indexed(&mut self, key: &Key) -> Option<Slot> {
        let i = *self.index.get(key)?;
        let r = &mut self.recent;
        let place = r.older;
        r.keys[place] = *key;
        r.slots[place] = i;
        r.older = 1 - place;
        Some(Slot(i))
    }

    /// [`Entries::lookup`], with the entry to change.
    #[inline]
    pub fn lookup_mut(&mut self, key: &Key) -> Option<(Slot, &mut Entry)> {
        let slot = self.lookup(key)?;
        self.at_mut(slot).map(|e| (slot, e))
    }

    /// The slot and entry of `name`, to change.
    pub fn find_mut(&mut self, name: &MipcName) -> Option<(Slot, &mut Entry)> {
        let slot = self.find(name)?;
        self.at_mut(slot).map(|e| (slot, e))
    }

    /// The entry in `slot`.
    pub fn at(&self, slot: Slot) -> Option<&Entry> {
        self.slab.get(slot.index())?.as_ref().map(|(_, e)| e)
    }

    /// The name of the entry in `slot`.
    pub fn name_at(&self, slot: Slot) -> Option<&MipcName> {
        self.slab.get(slot.index())?.as_ref().map(|(n, _)| n)
    }

    /// The name and entry in `slot`, the entry to change.
    pub fn named_mut(&mut self, slot: Slot) -> Option<(&MipcName, &mut Entry)> {
        self.slab
            .get_mut(slot.index())?
            .as_mut()
            .map(|(n, e)| (&*n, e))
    }

    /// The entry in `slot`, to change.
    pub fn at_mut(&mut self, slot: Slot) -> Option<&mut Entry> {
        self.slab.get_mut(slot.index())?.as_mut().map(|(_, e)| e)
    }

    /// The entry named `name`.
    pub fn get(&self, name: &MipcName) -> Option<&Entry> {
        self.at(self.find(name)?)
    }

    /// The entry named `name`, to change.
    pub fn get_mut(&mut self, name: &MipcName) -> Option<&mut Entry> {
        let slot = self.find(name)?;
        self.at_mut(slot)
    }

    /// Whether `name` has an entry.
    pub fn contains_key(&self, name: &MipcName) -> bool {
        self.find(name).is_some()
    }

    /// Adds `name`'s entry, or replaces it (in its slot); returns the slot.
    pub fn insert(&mut self, name: MipcName, entry: Entry) -> Slot {
        if let Some(slot) = self.find(&name) {
            self.slab[slot.index()] = Some((name, entry));
            return slot;
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some((name, entry));
                i
            }
            None => {
                self.slab.push(Some((name, entry)));
                (self.slab.len() - 1) as u32
            }
        };
        self.index.insert(Key::of(&name), i);
        Slot(i)
    }

    /// Removes `name`'s entry and returns it with the slot it had.
    pub fn remove(&mut self, name: &MipcName) -> Option<(Slot, Entry)> {
        let key = Key::of(name);
        let i = self.index.remove(&key)?;
        let r = &mut self.recent;
        for k in 0..2 {
            if r.keys[k] == key {
                r.slots[k] = FREE;
                r.older = k;
            }
        }
        let (_, e) = self.slab.get_mut(i as usize)?.take()?;
        self.free.push(i);
        Some((Slot(i), e))
    }

    /// The entries with their names.
    pub fn iter(&self) -> impl Iterator<Item = (&MipcName, &Entry)> {
        self.slab.iter().flatten().map(|(n, e)| (n, e))
    }

    /// The entries with their names and slots.
    pub fn slots(&self) -> impl Iterator<Item = (Slot, &MipcName, &Entry)> {
        self.slab
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|(n, e)| (Slot(i as u32), n, e)))
    }

    /// The entries.
    pub fn values(&self) -> impl Iterator<Item = &Entry> {
        self.iter().map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mipc::sysv::QueueId;

    fn entry(q: i32) -> Entry {
        Entry {
            queue: QueueId(q),
            pid: None,
            ext: false,
            sender: false,
            batch: false,
            answer_back: false,
            reads: 0,
            thread_id: 0,
            pending: None,
            seen: Default::default(),
        }
    }

    #[test]
    fn a_key_read_in_a_field_is_the_names_key() {
        for len in 1..MIPC_NAME_MAX_LEN {
            let bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let name = MipcName::new(&bytes).unwrap();
            // What follows the NUL in a received field is not part of the name.
            let mut field = [0xffu8; MIPC_NAME_MAX_LEN];
            field[..len].copy_from_slice(&bytes);
            field[len] = 0;
            assert!(Key::in_field(&field).is(&name), "{len} bytes");
            assert!(Key::in_field(name.field()).is(&name), "{len} bytes");
        }
        assert!(Key::RELAY.is(&MipcName::RELAY));
        let mut t = Entries::default();
        let a = MipcName::new(b"abcdefgh").unwrap();
        let slot = t.insert(a, entry(1));
        assert_eq!(
            t.find_key(&Key::in_field(b"abcdefgh\0garbage_after_the_nul__")),
            Some(slot)
        );
        assert_eq!(
            t.find_key(&Key::in_field(b"abcdefg\0hgarbage_after_the_nul__")),
            None
        );
    }

    #[test]
    fn the_last_names_found_follow_the_table() {
        let mut t = Entries::default();
        assert_eq!(t.lookup(&Key::default()), None, "no name has the zero key");
        let (a, b, c) = (
            MipcName::new(b"a").unwrap(),
            MipcName::new(b"b").unwrap(),
            MipcName::new(b"c").unwrap(),
        );
        let sa = t.insert(a, entry(1));
        let sb = t.insert(b, entry(2));
        let sc = t.insert(c, entry(3));
        for _ in 0..3 {
            assert_eq!(t.lookup(&Key::of(&a)), Some(sa));
            assert_eq!(t.lookup(&Key::of(&b)), Some(sb));
            assert_eq!(t.lookup(&Key::of(&c)), Some(sc));
            assert_eq!(t.lookup(&Key::of(&b)), Some(sb));
        }
        // A name removed is not found, though it was among the last found; its slot goes to
        // another name.
        t.remove(&b);
        assert_eq!(t.lookup(&Key::of(&b)), None);
        let d = MipcName::new(b"d").unwrap();
        assert_eq!(t.insert(d, entry(4)), sb);
        assert_eq!(t.lookup(&Key::of(&d)), Some(sb));
        assert_eq!(t.lookup(&Key::of(&b)), None);
        assert_eq!(t.lookup(&Key::of(&c)), Some(sc));
        assert_eq!(
            t.lookup_mut(&Key::of(&a)).map(|(s, e)| (s, e.queue)),
            Some((sa, QueueId(1)))
        );
        assert_eq!(t.lookup(&Key::default()), None, "no name has the zero key");
    }

    #[test]
    fn slots_are_reused_and_names_found() {
        let mut t = Entries::default();
        let a = MipcName::new(b"a").unwrap();
        let b = MipcName::new(b"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb").unwrap();
        let c = MipcName::new(b"c").unwrap();
        let sa = t.insert(a, entry(1));
        let sb = t.insert(b, entry(2));
        assert_ne!(sa, sb);
        assert_eq!(t.insert(a, entry(3)), sa, "a replaced in its slot");
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(&a).map(|e| e.queue), Some(QueueId(3)));
        assert_eq!(
            t.remove(&a).map(|(s, e)| (s, e.queue)),
            Some((sa, QueueId(3)))
        );
        assert!(t.get(&a).is_none() && t.at(sa).is_none());
        assert_eq!(t.insert(c, entry(4)), sa, "a free slot is taken first");
        assert_eq!(t.find(&b), Some(sb));
        assert_eq!(t.at(sb).map(|e| e.queue), Some(QueueId(2)));
        let mut names: Vec<MipcName> = t.iter().map(|(n, _)| *n).collect();
        names.sort_by_key(|n| n.as_bytes().to_vec());
        assert_eq!(names, vec![b, c]);
    }
}
