//! Consumer groups: the group's pending-entries list (PEL), its consumers
//! and their own PELs.
//!
//! The group PEL is a `BTreeMap<StreamId, PendingEntry>` (ordered, as
//! XPENDING, XAUTOCLAIM and XINFO walk it by ID); each consumer keeps the
//! IDs it owns in a `BTreeSet`, so that its history (XREADGROUP with an
//! ID), XPENDING with a consumer filter and DELCONSUMER cost O(log n) per
//! entry whatever the group's PEL size. A pending entry names its owner
//! (a shared `Bytes`, no copy) so XACK finds the consumer PEL in O(log n).
//! Every mutation goes through the methods here, which keep
//! [`Group::mem`] right in O(1).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::StreamId;

/// Estimated bytes per pending entry: group B-tree slot (16-byte key +
/// 48-byte value) plus consumer B-tree slot (16 bytes), at B-tree
/// occupancy.
const PEL_ENTRY_MEM: usize = 112;
/// Estimated bytes per consumer besides its name.
const CONSUMER_MEM: usize = 96;
/// Estimated bytes per group besides its name.
const GROUP_MEM: usize = 128;

/// One delivered, not yet acknowledged entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    /// Number of deliveries.
    pub delivery_count: u64,
    /// The consumer that owns it.
    pub consumer: Bytes,
}

/// A consumer of a group.
#[derive(Debug, Clone, Default)]
pub struct Consumer {
    /// Unix ms of its last interaction (XINFO `seen-time`, `idle`).
    pub seen_time: u64,
    /// The IDs it owns in the group PEL.
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    /// The last ID delivered with `>`.
    pub last_id: StreamId,
    /// The logical read counter (None: unknown, Redis's -1).
    pub entries_read: Option<u64>,
    /// Delivered, unacknowledged entries.
    pub pel: BTreeMap<StreamId, PendingEntry>,
    /// Consumers by name.
    pub consumers: BTreeMap<Bytes, Consumer>,
    name_len: usize,
    consumer_names: usize,
}

impl Group {
    /// A group starting after `last_id`.
    pub fn new(name: &[u8], last_id: StreamId, entries_read: Option<u64>) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
            name_len: name.len(),
            consumer_names: 0,
        }
    }

    /// Estimated heap bytes, O(1).
    pub fn mem(&self) -> usize {
        GROUP_MEM
            + self.name_len
            + self.pel.len() * PEL_ENTRY_MEM
            + self.consumers.len() * CONSUMER_MEM
            + self.consumer_names
    }

    /// Creates consumer `name` if missing (true if created); refreshes
    /// its seen time either way when `touch`.
    pub fn ensure_consumer(&mut self, name: &[u8], now: u64, touch: bool) -> bool {
        if let Some(c) = self.consumers.get_mut(name) {
            if touch {
                c.seen_time = now;
            }
            return false;
        }
        self.consumer_names += name.len();
        self.consumers.insert(
            Bytes::copy_from_slice(name),
            Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// The stored name of consumer `name` (a shared handle).
    fn consumer_key(&self, name: &[u8]) -> Option<Bytes> {
        self.consumers.get_key_value(name).map(|(k, _)| k.clone())
    }

    /// Removes consumer `name` and its pending entries; returns how many
    /// it had, None if no such consumer.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        self.consumer_names -= name.len();
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Records the delivery of `id` to `consumer` (which must exist) as
    /// XREADGROUP `>` does: a new pending entry, or one taken over from
    /// its previous owner with its counter reset to 1.
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: u64) {
        let Some(owner) = self.consumer_key(consumer) else {
            return;
        };
        if let Some(old) = self.pel.get(&id).map(|p| p.consumer.clone()) {
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pel.remove(&id);
            }
        }
        self.pel.insert(
            id,
            PendingEntry {
                delivery_time: now,
                delivery_count: 1,
                consumer: owner.clone(),
            },
        );
        if let Some(c) = self.consumers.get_mut(&owner) {
            c.pel.insert(id);
        }
    }

    /// Acknowledges `id`; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pel.remove(&id);
        }
        true
    }

    /// Gives pending entry `id` to `consumer` (which must exist), creating
    /// the entry first if `create` (XCLAIM FORCE, counter 1). The counter
    /// is then set to `retry` if given, else incremented if `incr`.
    /// Returns false if not pending.
    pub fn claim(
        &mut self,
        id: StreamId,
        consumer: &[u8],
        delivery_time: u64,
        retry: Option<u64>,
        incr: bool,
        create: bool,
    ) -> bool {
        let Some(owner) = self.consumer_key(consumer) else {
            return false;
        };
        let created = !self.pel.contains_key(&id);
        if created {
            if !create {
                return false;
            }
            self.pel.insert(
                id,
                PendingEntry {
                    delivery_time,
                    delivery_count: 1,
                    consumer: Bytes::new(),
                },
            );
        }
        let Some(p) = self.pel.get_mut(&id) else {
            return false;
        };
        p.delivery_time = delivery_time;
        match retry {
            Some(n) => p.delivery_count = n,
            None if incr => p.delivery_count += 1,
            None => {}
        }
        let prev = std::mem::replace(&mut p.consumer, owner.clone());
        if created || prev != owner {
            if !created {
                if let Some(c) = self.consumers.get_mut(&prev) {
                    c.pel.remove(&id);
                }
            }
            if let Some(c) = self.consumers.get_mut(&owner) {
                c.pel.insert(id);
            }
        }
        true
    }

    /// Bumps the delivery counter and time of `id` (history reads).
    pub fn redeliver(&mut self, id: StreamId, now: u64) {
        if let Some(p) = self.pel.get_mut(&id) {
            p.delivery_time = now;
            p.delivery_count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pel_stays_consistent_with_100k_entries() {
        let mut g = Group::new(b"g", StreamId::MIN, Some(0));
        g.ensure_consumer(b"a", 0, true);
        g.ensure_consumer(b"b", 0, true);
        for i in 0..100_000 {
            g.deliver(StreamId::new(i, 0), b"a", 1);
        }
        assert_eq!(g.consumers[&b"a"[..]].pel.len(), 100_000);
        for i in (0..100_000).step_by(2) {
            assert!(g.claim(StreamId::new(i, 0), b"b", 2, None, true, false));
        }
        assert_eq!(g.consumers[&b"b"[..]].pel.len(), 50_000);
        for i in 0..100_000 {
            assert!(g.ack(StreamId::new(i, 0)));
            assert!(!g.ack(StreamId::new(i, 0)));
        }
        assert!(g.pel.is_empty());
        assert!(g.consumers.values().all(|c| c.pel.is_empty()));
        assert_eq!(g.delete_consumer(b"a"), Some(0));
        assert_eq!(g.delete_consumer(b"a"), None);
    }
}
