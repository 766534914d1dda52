//! The set type: members in an insertion-ordered hash set with a running
//! memory count.
//!
//! `IndexSet` gives O(1) membership, O(1) random members (SPOP,
//! SRANDMEMBER) and the keyspace's deletion-safe downward cursor for SSCAN.

use bytes::Bytes;
use indexmap::IndexSet;

use super::Key;

/// Estimated bytes per member besides its contents.
pub const MEMBER_OVERHEAD: usize = 64;

/// A set value.
#[derive(Debug, Clone, Default)]
pub struct Set {
    members: IndexSet<Key, ahash::RandomState>,
    bytes: usize,
    /// Redis's representation (intset / hashtable), see `encoding`.
    pub(super) enc: super::encoding::Track,
}

impl Set {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True with no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Estimated heap bytes.
    pub fn mem(&self) -> usize {
        self.bytes
    }

    /// The members (read-only).
    pub fn members(&self) -> &IndexSet<Key, ahash::RandomState> {
        &self.members
    }

    /// True if `m` is a member.
    pub fn contains(&self, m: &[u8]) -> bool {
        self.members.contains(m)
    }

    /// Adds `m` (copied, inline when short: see `store::Key`); true if
    /// new.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        if self.members.contains(m) {
            return false;
        }
        self.bytes += m.len() + MEMBER_OVERHEAD;
        self.enc.saw_member(m);
        self.members.insert(Key::from(m));
        true
    }

    /// Adds an already-owned member; true if new.
    pub fn insert_owned(&mut self, m: Key) -> bool {
        let n = m.len();
        self.enc.saw_member(&m);
        if self.members.insert(m) {
            self.bytes += n + MEMBER_OVERHEAD;
            true
        } else {
            false
        }
    }

    /// Removes `m`; true if it was a member.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        if self.members.swap_remove(m) {
            self.bytes -= m.len() + MEMBER_OVERHEAD;
            true
        } else {
            false
        }
    }

    /// Removes and returns the member at position `i`.
    pub fn remove_index(&mut self, i: usize) -> Option<Bytes> {
        let m = self.members.swap_remove_index(i)?;
        self.bytes -= m.len() + MEMBER_OVERHEAD;
        Some(m.to_bytes())
    }
}
