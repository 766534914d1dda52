//! Eviction under `maxmemory`: frees keys until used memory is back
//! within the limit, with Redis 7.0's policies (`evict.c`). How keys are
//! sampled and scored, and the access clock each key carries, are the
//! store's (`store::evict`); this drives it against the locked databases
//! and records each eviction as Redis does.
//!
//! While `maxmemory` is set, the command layer calls [`Engine::evict`]
//! before every command (as Redis's `processCommand` does). Under the
//! limit that is two atomic loads. Over it, keys are evicted until the
//! excess is freed, for at most the time `maxmemory-eviction-tenacity`
//! allows (500 µs by default; the next command goes on where it stopped).
//! If nothing can be evicted (policy `noeviction`, or no candidate key),
//! it returns false and the command is refused with Redis's `-OOM` error
//! if it is flagged `denyoom`. An evicted key is deleted as Redis does it:
//! WATCH is broken, the deletion goes to the AOF as `DEL`, the `evicted`
//! keyspace event (class `e`) is published, and INFO's `evicted_keys`
//! counts it.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::Engine;
use crate::config::notify;
use crate::config::MaxmemoryPolicy;
use crate::store::evict::{random_candidate, sample};
use crate::store::Db;

impl Engine {
    /// Evicts keys until used memory (the keyspace's, plus `others`: client
    /// buffers and per-client overhead, see `observe`) is within
    /// `maxmemory` (see the module header). False when over the limit and
    /// nothing can be evicted: the caller then refuses `denyoom` commands.
    pub fn evict(&self, others: usize) -> bool {
        let ev = &self.store.evictor;
        let max = ev.settings.maxmemory.load(Relaxed) as usize;
        if max == 0 {
            return true;
        }
        let used = self.store.used_memory_total() + others;
        if used <= max {
            return true;
        }
        let policy = ev.settings.policy();
        if policy == MaxmemoryPolicy::NoEviction {
            return false;
        }
        let to_free = used - max;
        let limit = ev.settings.time_limit();
        let start = Instant::now();
        let mut freed = 0;
        let mut keys = 0u64;
        while freed < to_free {
            let Some(n) = self.evict_one(policy) else {
                return false;
            };
            freed += n;
            keys += 1;
            if keys.is_multiple_of(16) && start.elapsed() > limit {
                // Still over: the next command goes on (Redis's EVICT_RUNNING).
                break;
            }
        }
        true
    }

    /// Evicts one key chosen by `policy`; returns the bytes it freed, or None
    /// if there is no candidate.
    fn evict_one(&self, policy: MaxmemoryPolicy) -> Option<usize> {
        use MaxmemoryPolicy::*;
        let volatile = matches!(
            policy,
            VolatileLru | VolatileLfu | VolatileRandom | VolatileTtl
        );
        let n = self.store.len();
        if matches!(policy, AllkeysRandom | VolatileRandom) {
            let ev = &self.store.evictor;
            for _ in 0..n {
                let i = ev.next_db.fetch_add(1, Relaxed) % n;
                let mut db = self.lock(i);
                let key = random_candidate(&db, volatile);
                let freed = key.and_then(|k| self.evict_key(&mut db, &k));
                self.unlock(db);
                if freed.is_some() {
                    return freed;
                }
            }
            return None;
        }
        // Pool policies: sample, then evict the best candidate still present.
        for _ in 0..64 {
            let mut total = 0;
            for i in 0..n {
                let db = self.store.lock(i);
                let len = if volatile { db.expires_len() } else { db.len() };
                if len > 0 {
                    total += len;
                    let found = sample(&db, i, volatile, policy, &self.store.evictor.settings);
                    drop(db);
                    self.store.evictor.merge(found);
                }
            }
            if total == 0 {
                return None;
            }
            while let Some(c) = self.store.evictor.pop() {
                let mut db = self.lock(c.db);
                let present = if volatile {
                    db.deadline(&c.key).is_some()
                } else {
                    db.contains(&c.key)
                };
                let freed = if present {
                    self.evict_key(&mut db, &c.key)
                } else {
                    None
                };
                self.unlock(db);
                if freed.is_some() {
                    return freed;
                }
            }
        }
        None
    }

    /// Deletes `key` from `db` as an eviction; returns the bytes freed.
    fn evict_key(&self, db: &mut Db, key: &[u8]) -> Option<usize> {
        let before = db.used_memory();
        let value = db.remove(key)?;
        if self.lazyfree.eviction() {
            self.lazyfree.free(value);
        }
        db.removed_by_server(key, notify::EVICTED, "evicted");
        self.store.evictor.evicted_keys.fetch_add(1, Relaxed);
        Some(before.saturating_sub(db.used_memory()).max(1))
    }
}
