//! The pattern registry: glob pattern → the clients subscribed to it, with
//! an index so that a PUBLISH does not test every pattern.
//!
//! redis-server tests every subscribed pattern against every published
//! channel. herald groups patterns by their literal prefix (the bytes
//! before the first wildcard): a channel can only match patterns whose
//! prefix is one of its own prefixes, so a publish looks up the channel's
//! prefixes of the lengths in use and tests only the patterns found there.
//! Identical patterns of different clients are one entry. As for channels,
//! publishers deliver under the read lock and (un)subscribers queue their
//! confirmation under the write lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ahash::RandomState;
use bytes::Bytes;
use parking_lot::RwLock;
use smallvec::SmallVec;

use super::message::{encode_push, Message};
use super::registry::{shrink_map, shrink_vec};
use crate::net::handle::ClientHandle;
use crate::net::Pressure;
use crate::protocol::Protocol;
use crate::util::glob::Pattern;

/// One subscribed pattern.
struct Entry {
    compiled: Pattern,
    subscribers: Vec<Arc<ClientHandle>>,
}

#[derive(Default)]
struct Index {
    /// literal prefix → pattern → entry.
    by_prefix: HashMap<Bytes, HashMap<Bytes, Entry, RandomState>, RandomState>,
    /// prefix length → how many prefixes of that length are in use.
    prefix_lens: BTreeMap<usize, usize>,
}

/// All pattern subscriptions.
#[derive(Default)]
pub struct PatternRegistry {
    index: RwLock<Index>,
    /// Distinct patterns with at least one subscriber (PUBSUB NUMPAT).
    count: AtomicUsize,
}

impl PatternRegistry {
    /// Adds `client` to `pattern` and queues `confirmation` under the lock.
    pub fn subscribe(&self, pattern: &Bytes, client: &Arc<ClientHandle>, confirmation: Bytes) {
        let compiled = Pattern::new(pattern);
        let prefix = Bytes::from(compiled.literal_prefix());
        let mut idx = self.index.write();
        let plen = prefix.len();
        let group = idx.by_prefix.entry(prefix).or_default();
        let new_prefix = group.is_empty();
        let entry = group.entry(pattern.clone()).or_insert_with(|| {
            self.count.fetch_add(1, Ordering::Relaxed);
            Entry {
                compiled,
                subscribers: Vec::with_capacity(1),
            }
        });
        entry.subscribers.push(client.clone());
        if new_prefix {
            *idx.prefix_lens.entry(plen).or_insert(0) += 1;
        }
        client.push(confirmation);
    }

    /// Removes `client` from `pattern`, then queues `confirmation`.
    pub fn unsubscribe(&self, pattern: &[u8], client: &ClientHandle, confirmation: Option<Bytes>) {
        let prefix = Pattern::new(pattern).literal_prefix();
        let mut idx = self.index.write();
        let mut prefix_gone = false;
        if let Some(group) = idx.by_prefix.get_mut(prefix.as_slice()) {
            if let Some(entry) = group.get_mut(pattern) {
                if let Some(i) = entry.subscribers.iter().position(|c| c.id == client.id) {
                    entry.subscribers.swap_remove(i);
                    shrink_vec(&mut entry.subscribers);
                }
                if entry.subscribers.is_empty() {
                    group.remove(pattern);
                    self.count.fetch_sub(1, Ordering::Relaxed);
                    shrink_map(group);
                }
            }
            if group.is_empty() {
                idx.by_prefix.remove(prefix.as_slice());
                shrink_map(&mut idx.by_prefix);
                prefix_gone = true;
            }
        }
        if prefix_gone {
            if let Some(n) = idx.prefix_lens.get_mut(&prefix.len()) {
                *n -= 1;
                if *n == 0 {
                    idx.prefix_lens.remove(&prefix.len());
                }
            }
        }
        if let Some(c) = confirmation {
            client.push(c);
        }
    }

    /// Delivers `msg` as `pmessage` to the subscribers of every matching
    /// pattern; returns the number of deliveries.
    pub fn publish(&self, msg: &Message<'_>, mut pressure: Option<&mut Pressure>) -> usize {
        if self.count.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let channel = msg.channel();
        let idx = self.index.read();
        let mut delivered = 0;
        for &len in idx.prefix_lens.keys() {
            if len > channel.len() {
                break;
            }
            let Some(group) = idx.by_prefix.get(&channel[..len]) else {
                continue;
            };
            for (pattern, entry) in group {
                if !entry.compiled.matches(channel) {
                    continue;
                }
                // Encoded once per pattern and protocol, shared by its subscribers.
                let mut frames: SmallVec<[(Protocol, Bytes); 2]> = SmallVec::new();
                for sub in &entry.subscribers {
                    let proto = sub.protocol();
                    let frame = match frames.iter().find(|(p, _)| *p == proto) {
                        Some((_, f)) => f.clone(),
                        None => {
                            let f =
                                encode_push(proto, &[b"pmessage", pattern, channel, msg.payload()]);
                            frames.push((proto, f.clone()));
                            f
                        }
                    };
                    let pushed = sub.deliver(frame);
                    if let Some(f) = pressure.as_deref_mut() {
                        f.record(sub, pushed);
                    }
                }
                delivered += entry.subscribers.len();
            }
        }
        delivered
    }

    /// Number of distinct subscribed patterns.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Every (subscriber id, pattern) pair whose subscriber is one of
    /// `ids`. Visits every pattern: for rare administrative work only (see
    /// `acl`).
    pub fn subscriptions_of(&self, ids: &[u64]) -> Vec<(u64, Bytes)> {
        let idx = self.index.read();
        let mut out = Vec::new();
        for group in idx.by_prefix.values() {
            for (name, entry) in group {
                for s in entry.subscribers.iter().filter(|s| ids.contains(&s.id)) {
                    out.push((s.id, name.clone()));
                }
            }
        }
        out
    }
}
