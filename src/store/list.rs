//! The list type: a `VecDeque` of strings with a running memory count.
//!
//! A ring buffer gives O(1) pushes and pops at both ends (the queue
//! patterns: LPUSH + RPOP, BLMOVE) and O(1) indexing for LINDEX / LSET /
//! LRANGE. Inserts and removals in the middle (LINSERT, LREM) are O(n), as
//! in Redis. Every mutation goes through a method so that [`List::mem`]
//! stays exact for the store's accounting.

use std::collections::VecDeque;

use bytes::Bytes;

/// Estimated bytes per element besides its contents (the `Bytes` handle in
/// the ring buffer plus the element's allocation header).
pub const ELEM_OVERHEAD: usize = 48;

/// A list value.
#[derive(Debug, Clone, Default)]
pub struct List {
    items: VecDeque<Bytes>,
    bytes: usize,
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True with no element.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Estimated heap bytes.
    pub fn mem(&self) -> usize {
        self.bytes
    }

    /// The elements, front (left) to back (right).
    pub fn items(&self) -> &VecDeque<Bytes> {
        &self.items
    }

    /// Element `i` from the left.
    pub fn get(&self, i: usize) -> Option<&Bytes> {
        self.items.get(i)
    }

    /// Pushes at the left (`left`) or the right.
    pub fn push(&mut self, v: Bytes, left: bool) {
        self.bytes += v.len() + ELEM_OVERHEAD;
        if left {
            self.items.push_front(v)
        } else {
            self.items.push_back(v)
        }
    }

    /// Pops from the left (`left`) or the right.
    pub fn pop(&mut self, left: bool) -> Option<Bytes> {
        let v = if left {
            self.items.pop_front()
        } else {
            self.items.pop_back()
        }?;
        self.bytes -= v.len() + ELEM_OVERHEAD;
        Some(v)
    }

    /// Replaces element `i`; false if out of range.
    pub fn set(&mut self, i: usize, v: Bytes) -> bool {
        match self.items.get_mut(i) {
            Some(slot) => {
                self.bytes = self.bytes + v.len() - slot.len();
                *slot = v;
                true
            }
            None => false,
        }
    }

    /// Inserts at position `i` (0..=len).
    pub fn insert(&mut self, i: usize, v: Bytes) {
        self.bytes += v.len() + ELEM_OVERHEAD;
        self.items.insert(i, v);
    }

    /// Removes up to `count` elements equal to `v` (0 = all), scanning from
    /// the left, or from the right if `from_right`. Returns how many.
    pub fn remove_eq(&mut self, v: &[u8], count: usize, from_right: bool) -> usize {
        let mut removed = 0;
        let n = self.items.len();
        let mut keep = vec![true; n];
        let order: Box<dyn Iterator<Item = usize>> = if from_right {
            Box::new((0..n).rev())
        } else {
            Box::new(0..n)
        };
        for i in order {
            if count != 0 && removed == count {
                break;
            }
            if self.items[i] == v {
                keep[i] = false;
                removed += 1;
            }
        }
        if removed > 0 {
            let mut i = 0;
            let mut freed = 0;
            self.items.retain(|e| {
                let k = keep[i];
                i += 1;
                if !k {
                    freed += e.len() + ELEM_OVERHEAD;
                }
                k
            });
            self.bytes -= freed;
        }
        removed
    }

    /// Keeps only elements `start..=end` (already clamped, start <= end <
    /// len), or none if `range` is None.
    pub fn trim(&mut self, range: Option<(usize, usize)>) {
        match range {
            None => {
                self.items.clear();
                self.bytes = 0;
            }
            Some((start, end)) => {
                for _ in end + 1..self.items.len() {
                    self.pop(false);
                }
                for _ in 0..start {
                    self.pop(true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_follows_mutations() {
        let mut l = List::new();
        l.push(Bytes::from_static(b"ab"), true);
        l.push(Bytes::from_static(b"c"), false);
        l.push(Bytes::from_static(b"ab"), false);
        assert_eq!(l.mem(), 5 + 3 * ELEM_OVERHEAD);
        assert_eq!(l.remove_eq(b"ab", 1, true), 1);
        assert_eq!(l.items(), &[b"ab" as &[u8], b"c"].map(Bytes::from_static));
        l.set(0, Bytes::from_static(b"xyz"));
        assert_eq!(l.mem(), 4 + 2 * ELEM_OVERHEAD);
        l.trim(Some((1, 1)));
        assert_eq!(l.items(), &[b"c" as &[u8]].map(Bytes::from_static));
        assert_eq!(l.mem(), 1 + ELEM_OVERHEAD);
    }
}
