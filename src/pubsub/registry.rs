//! The channel registry: channel name → the clients subscribed to it.
//!
//! One instance holds the classic channels, another the shard channels.
//! The map is split into independently locked shards chosen by the
//! channel's hash, so publishers and subscribers of different channels
//! never meet on a lock. A publisher holds its shard's *read* lock while it
//! pushes the message into each subscriber's outbox (never while anything
//! is written to a socket); (un)subscribing takes the *write* lock and
//! queues its confirmation before releasing it. That makes the two
//! guarantees Redis gives cheap: no message on a channel reaches a client
//! before its `subscribe` confirmation, and none after its `unsubscribe`
//! confirmation. A channel whose last subscriber leaves is removed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ahash::RandomState;
use bytes::Bytes;
use parking_lot::RwLock;

use super::message::Message;
use crate::net::handle::ClientHandle;
use crate::net::Pressure;
use crate::util::glob::Pattern;
use crate::util::key::Key;

/// Number of independently locked parts of the map.
const SHARDS: usize = 64;

type Subscribers = Vec<Arc<ClientHandle>>;

/// Gives memory back once a list is mostly empty, so that a channel that
/// once had many subscribers does not keep their room.
pub(crate) fn shrink_vec<T>(v: &mut Vec<T>) {
    if v.capacity() > 8 && v.len() < v.capacity() / 4 {
        v.shrink_to(v.len() * 2);
    }
}

/// Same for a map whose entries were mostly removed.
pub(crate) fn shrink_map<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(
    m: &mut HashMap<K, V, S>,
) {
    if m.capacity() > 64 && m.len() < m.capacity() / 4 {
        m.shrink_to(m.len() * 2);
    }
}

/// Channel → subscribers, sharded.
pub struct ChannelRegistry {
    hasher: RandomState,
    shards: Box<[RwLock<HashMap<Key, Subscribers, RandomState>>]>,
    /// Number of channels with at least one subscriber (INFO, PUBSUB).
    channels: AtomicUsize,
}

impl Default for ChannelRegistry {
    fn default() -> Self {
        let hasher = RandomState::new();
        let shards = (0..SHARDS)
            .map(|_| RwLock::new(HashMap::with_hasher(hasher.clone())))
            .collect();
        ChannelRegistry {
            hasher,
            shards,
            channels: AtomicUsize::new(0),
        }
    }
}

impl ChannelRegistry {
    fn shard(&self, channel: &[u8]) -> &RwLock<HashMap<Key, Subscribers, RandomState>> {
        let h = self.hasher.hash_one(channel) as usize;
        &self.shards[h % SHARDS]
    }

    /// Adds `client` to `channel` (the caller knows it is not there yet) and
    /// queues `confirmation` to it before any message of the channel can be.
    pub fn subscribe(&self, channel: &Bytes, client: &Arc<ClientHandle>, confirmation: Bytes) {
        let mut map = self.shard(channel).write();
        let subs = map.entry(Key::from(&channel[..])).or_insert_with(|| {
            self.channels.fetch_add(1, Ordering::Relaxed);
            Vec::with_capacity(1)
        });
        subs.push(client.clone());
        client.push(confirmation);
    }

    /// Removes `client` from `channel` and queues `confirmation` (if any)
    /// after the last message of the channel it will receive.
    pub fn unsubscribe(&self, channel: &[u8], client: &ClientHandle, confirmation: Option<Bytes>) {
        let mut map = self.shard(channel).write();
        if let Some(subs) = map.get_mut(channel) {
            if let Some(i) = subs.iter().position(|c| c.id == client.id) {
                subs.swap_remove(i);
                shrink_vec(subs);
            }
            if subs.is_empty() {
                map.remove(channel);
                self.channels.fetch_sub(1, Ordering::Relaxed);
                shrink_map(&mut map);
            }
        }
        if let Some(c) = confirmation {
            client.push(c);
        }
    }

    /// Delivers `msg` to every subscriber of its channel; returns how many.
    /// What the pushes found is recorded in `pressure`, if given.
    pub fn publish(&self, msg: &Message<'_>, mut pressure: Option<&mut Pressure>) -> usize {
        let map = self.shard(msg.channel()).read();
        let Some(subs) = map.get(msg.channel()) else {
            return 0;
        };
        for sub in subs {
            let pushed = sub.deliver(msg.frame(sub.protocol()));
            if let Some(f) = pressure.as_deref_mut() {
                f.record(sub, pushed);
            }
        }
        subs.len()
    }

    /// Number of subscribers of `channel` (PUBSUB NUMSUB).
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.shard(channel)
            .read()
            .get(channel)
            .map_or(0, |s| s.len())
    }

    /// Channels with subscribers, optionally filtered by a glob (PUBSUB CHANNELS).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let pat = pattern.map(Pattern::new);
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            for name in shard.read().keys() {
                if pat.as_ref().is_none_or(|p| p.matches(name)) {
                    out.push(name.to_bytes());
                }
            }
        }
        out
    }

    /// Number of channels with at least one subscriber.
    pub fn count(&self) -> usize {
        self.channels.load(Ordering::Relaxed)
    }

    /// Every (subscriber id, channel) pair whose subscriber is one of
    /// `ids`. Visits every channel: for rare administrative work only (ACL
    /// changes that must find a user's subscriptions, see `acl`).
    pub fn subscriptions_of(&self, ids: &[u64]) -> Vec<(u64, Bytes)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            for (name, subs) in shard.read().iter() {
                for s in subs.iter().filter(|s| ids.contains(&s.id)) {
                    out.push((s.id, name.to_bytes()));
                }
            }
        }
        out
    }
}
