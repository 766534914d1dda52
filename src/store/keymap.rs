//! The map of a database's keys (and of its TTLs): a dense vector of
//! entries in insertion order, found through a hash table of `u32`
//! positions.
//!
//! This is `IndexMap`'s design (O(1) lookup, O(1) access by position for
//! RANDOMKEY, eviction sampling and SCAN's downward cursor, removal by
//! swapping the last entry in) with a smaller footprint, because the
//! keyspace is the structure every key pays for:
//! - positions are `u32`, not `usize`: 4 bytes less per table slot, and
//!   the table has up to twice as many slots as keys;
//! - entries keep no copy of their hash: 8 bytes less per key. A lookup
//!   compares the key it reaches anyway (short keys are inline, see
//!   `store::Key`); growing the table hashes every key again, walking the
//!   entries in order rather than the table's slots, so the reads are
//!   sequential.
//!
//! A database holds fewer than 2^32 keys: each costs more than 72 bytes,
//! so that many would need over 300 GB.

use hashbrown::HashTable;

use super::Key;

/// Keys → `V`, in insertion order but for removals (see the module header).
#[derive(Debug, Clone)]
pub struct KeyMap<V> {
    /// Positions in `entries`, filed under their key's hash.
    table: HashTable<u32>,
    entries: Vec<(Key, V)>,
    hasher: ahash::RandomState,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap {
            table: HashTable::new(),
            entries: Vec::new(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl<V> KeyMap<V> {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True with no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn hash(&self, k: &[u8]) -> u64 {
        self.hasher.hash_one(k)
    }

    /// The position of `k` (an empty map is not even hashed into: most
    /// databases have no TTL table to look in).
    fn position(&self, k: &[u8]) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        self.find(self.hash(k), k)
    }

    /// The position of `k`, whose hash is `h`.
    fn find(&self, h: u64, k: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.table
            .find(h, |&i| entries[i as usize].0.as_bytes() == k)
            .map(|&i| i as usize)
    }

    /// The value of `k`.
    pub fn get(&self, k: &[u8]) -> Option<&V> {
        let i = self.position(k)?;
        Some(&self.entries[i].1)
    }

    /// The value of `k`, for writing.
    pub fn get_mut(&mut self, k: &[u8]) -> Option<&mut V> {
        let i = self.position(k)?;
        Some(&mut self.entries[i].1)
    }

    /// The stored key equal to `k` (to share it) and its value.
    pub fn get_key_value(&self, k: &[u8]) -> Option<(&Key, &V)> {
        let i = self.position(k)?;
        let (k, v) = &self.entries[i];
        Some((k, v))
    }

    /// True if `k` is present.
    pub fn contains_key(&self, k: &[u8]) -> bool {
        self.position(k).is_some()
    }

    /// The key and value at position `i`.
    pub fn get_index(&self, i: usize) -> Option<(&Key, &V)> {
        self.entries.get(i).map(|(k, v)| (k, v))
    }

    /// Sets `k` to `v`: the former value if `k` was present (its position
    /// kept), else `k` goes last.
    pub fn insert(&mut self, k: Key, v: V) -> Option<V> {
        let h = self.hash(&k);
        if let Some(i) = self.find(h, &k) {
            return Some(std::mem::replace(&mut self.entries[i].1, v));
        }
        if self.table.len() == self.table.capacity() {
            self.grow();
        }
        let i = u32::try_from(self.entries.len())
            .expect("fewer than 2^32 keys (see the module header)");
        self.entries.push((k, v));
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.table
            .insert_unique(h, i, |&j| hasher.hash_one(entries[j as usize].0.as_bytes()));
        None
    }

    /// Doubles the table, filing the entries again in their order.
    fn grow(&mut self) {
        let mut table = HashTable::with_capacity((self.table.capacity() * 2).max(4));
        let (entries, hasher) = (&self.entries, &self.hasher);
        for (i, (k, _)) in entries.iter().enumerate() {
            // Room was made for them all: the rehash closure never runs.
            table.insert_unique(hasher.hash_one(k.as_bytes()), i as u32, |&j| {
                hasher.hash_one(entries[j as usize].0.as_bytes())
            });
        }
        self.table = table;
    }

    /// Removes `k`, moving the last entry into its position; its value.
    pub fn swap_remove(&mut self, k: &[u8]) -> Option<V> {
        if self.entries.is_empty() {
            return None;
        }
        let h = self.hash(k);
        let entries = &self.entries;
        let found = self
            .table
            .find_entry(h, |&i| entries[i as usize].0.as_bytes() == k)
            .ok()?;
        let (i, _) = found.remove();
        let last = self.entries.len() - 1;
        if i as usize != last {
            let moved = self.hash(&self.entries[last].0);
            if let Some(slot) = self.table.find_mut(moved, |&j| j as usize == last) {
                *slot = i;
            }
        }
        Some(self.entries.swap_remove(i as usize).1)
    }

    /// The keys and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.entries.iter().map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against IndexMap, whose semantics it keeps (order, swap removal).
        #[test]
        fn matches_indexmap(ops in proptest::collection::vec((0u8..3, 0u16..300), 0..2000)) {
            let mut m: KeyMap<u16> = KeyMap::default();
            let mut model: indexmap::IndexMap<Vec<u8>, u16> = indexmap::IndexMap::new();
            for (op, k) in ops {
                let key = format!("key:{k}").repeat(1 + (k as usize % 4)).into_bytes();
                match op {
                    0 => prop_assert_eq!(m.insert(Key::from(&key[..]), k), model.insert(key.clone(), k)),
                    1 => prop_assert_eq!(m.swap_remove(&key), model.swap_remove(&key)),
                    _ => prop_assert_eq!(m.get(&key), model.get(&key)),
                }
                prop_assert_eq!(m.len(), model.len());
            }
            for (i, (k, v)) in model.iter().enumerate() {
                let (mk, mv) = m.get_index(i).expect("same length");
                prop_assert_eq!(mk.as_bytes(), &k[..]);
                prop_assert_eq!(mv, v);
                prop_assert!(m.contains_key(k));
            }
        }
    }
}
