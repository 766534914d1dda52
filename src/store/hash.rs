//! The hash type: field → value in an insertion-ordered map with a
//! running memory count.
//!
//! `IndexMap` gives O(1) field access, O(1) random fields (HRANDFIELD) and
//! the same downward, deletion-safe cursor as the keyspace for HSCAN.

use bytes::Bytes;

use super::Map;

/// Estimated bytes per field besides field and value contents.
pub const FIELD_OVERHEAD: usize = 96;

/// A hash value.
#[derive(Debug, Clone, Default)]
pub struct Hash {
    map: Map<Bytes, Bytes>,
    bytes: usize,
    /// Redis's representation (listpack / hashtable), see `encoding`.
    pub(super) enc: super::encoding::Track,
}

impl Hash {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True with no field.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Estimated heap bytes.
    pub fn mem(&self) -> usize {
        self.bytes
    }

    /// The fields and values (read-only).
    pub fn map(&self) -> &Map<Bytes, Bytes> {
        &self.map
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.map.get(field)
    }

    /// Sets `field` (copied if new); true if the field is new.
    pub fn insert(&mut self, field: &[u8], value: Bytes) -> bool {
        let vlen = value.len();
        self.enc.saw(field.len().max(vlen));
        match self.map.get_mut(field) {
            Some(v) => {
                self.bytes = self.bytes + vlen - v.len();
                *v = value;
                false
            }
            None => {
                self.bytes += field.len() + vlen + FIELD_OVERHEAD;
                self.map.insert(super::own(field), value);
                true
            }
        }
    }

    /// Removes `field`; true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        // Small hashes keep insertion order on delete, as Redis's listpack.
        let removed = if self.map.len() <= 128 {
            self.map.shift_remove_full(field)
        } else {
            self.map.swap_remove_full(field)
        };
        match removed {
            Some((_, k, v)) => {
                self.bytes -= k.len() + v.len() + FIELD_OVERHEAD;
                true
            }
            None => false,
        }
    }
}
