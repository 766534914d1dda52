//! `maxmemory`: how keys are chosen for eviction, with Redis 7.0's
//! policies and its sampled approximations (`evict.c`), and the access
//! clock each key carries. The engine (`engine::evict`) runs it while used
//! memory is over the limit.
//!
//! # How a key is chosen
//!
//! - `allkeys-random` / `volatile-random`: a random key (with a TTL for
//!   `volatile-*`) of the next non-empty database, round-robin.
//! - `*-lru`, `*-lfu`, `volatile-ttl`: Redis's eviction pool. Each round
//!   samples `maxmemory-samples` keys of every database and keeps the 16
//!   best candidates seen so far (across rounds and databases) ordered by
//!   score: idle time for LRU, 255 minus the decayed access counter for
//!   LFU, how soon the key expires for TTL. The best candidate still
//!   present is evicted.
//!
//! An evicted key is deleted as Redis does it: WATCH is broken, the
//! deletion goes to the AOF as `DEL`, the `evicted` keyspace event (class
//! `e`) is published, and INFO's `evicted_keys` counts it.
//!
//! # The access clock
//!
//! Each key carries one `u32` next to its value (no other per-key cost):
//! under an LRU (or non-LFU) policy, the low 32 bits of the Unix time in
//! milliseconds of its last access; under an LFU policy, Redis's layout
//! widened: the time of the last decrement in minutes (24 bits) and a
//! logarithmic access counter (8 bits), incremented with probability
//! `1 / ((counter - 5) * lfu-log-factor + 1)` and decremented by one per
//! `lfu-decay-time` minutes without access. New keys start at 5
//! (`LFU_INIT_VAL`) so that they are not evicted at once. As in Redis, a
//! policy change reinterprets the clocks already stored until keys are
//! touched again; and the LRU clock wraps after 49.7 days (Redis's after
//! 194), so a key idle for longer may look recently used.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use rand::Rng;

use super::Db;
use crate::config::{Config, MaxmemoryPolicy};

/// Candidates kept by the eviction pool (Redis's `EVPOOL_SIZE`).
const POOL_SIZE: usize = 16;
/// Initial LFU counter of a new key (Redis's `LFU_INIT_VAL`).
pub const LFU_INIT_VAL: u32 = 5;

/// The LFU parameters, copied into a database when it is locked while an
/// LFU policy is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lfu {
    /// `lfu-log-factor`.
    pub log_factor: u32,
    /// `lfu-decay-time` (minutes).
    pub decay_time: u32,
}

/// The eviction settings, read on hot paths (atomics, refreshed by
/// [`Settings::configure`] at start and after CONFIG SET).
#[derive(Debug, Default)]
pub struct Settings {
    /// `maxmemory` in bytes (0: no limit).
    pub maxmemory: AtomicU64,
    /// `maxmemory-policy` (index in [`POLICIES`]).
    policy: AtomicU8,
    /// `maxmemory-samples`.
    samples: AtomicUsize,
    /// `lfu-log-factor`, `lfu-decay-time`.
    lfu_log_factor: AtomicU32,
    lfu_decay_time: AtomicU32,
    /// `maxmemory-eviction-tenacity`.
    tenacity: AtomicU32,
}

/// The policies, in the order [`Settings`] numbers them.
const POLICIES: [MaxmemoryPolicy; 8] = [
    MaxmemoryPolicy::NoEviction,
    MaxmemoryPolicy::AllkeysLru,
    MaxmemoryPolicy::AllkeysLfu,
    MaxmemoryPolicy::AllkeysRandom,
    MaxmemoryPolicy::VolatileLru,
    MaxmemoryPolicy::VolatileLfu,
    MaxmemoryPolicy::VolatileRandom,
    MaxmemoryPolicy::VolatileTtl,
];

impl Settings {
    /// Reads the options from the configuration.
    pub fn configure(&self, cfg: &Config) {
        let num = |name: &str, default: u64| {
            cfg.value(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        self.maxmemory.store(cfg.maxmemory, Relaxed);
        let p = POLICIES
            .iter()
            .position(|&p| p == cfg.maxmemory_policy)
            .unwrap_or(0);
        self.policy.store(p as u8, Relaxed);
        self.samples
            .store(num("maxmemory-samples", 5).max(1) as usize, Relaxed);
        self.lfu_log_factor.store(
            num("lfu-log-factor", 10).min(u32::MAX as u64) as u32,
            Relaxed,
        );
        self.lfu_decay_time.store(
            num("lfu-decay-time", 1).min(u32::MAX as u64) as u32,
            Relaxed,
        );
        self.tenacity.store(
            num("maxmemory-eviction-tenacity", 10).min(100) as u32,
            Relaxed,
        );
    }

    /// The policy in force.
    pub fn policy(&self) -> MaxmemoryPolicy {
        POLICIES
            .get(self.policy.load(Relaxed) as usize)
            .copied()
            .unwrap_or(MaxmemoryPolicy::NoEviction)
    }

    /// The LFU parameters if an LFU policy is in force.
    #[inline]
    pub fn lfu(&self) -> Option<Lfu> {
        let p = self.policy.load(Relaxed);
        (p == 2 || p == 5).then(|| Lfu {
            log_factor: self.lfu_log_factor.load(Relaxed),
            decay_time: self.lfu_decay_time.load(Relaxed),
        })
    }

    /// How long one call of [`perform`] may evict (Redis's
    /// `evictionTimeLimitUs`).
    pub(crate) fn time_limit(&self) -> Duration {
        let t = self.tenacity.load(Relaxed);
        let us = if t <= 10 {
            50 * t as u64
        } else if t < 100 {
            (500.0 * 1.15f64.powi(t as i32 - 10)) as u64
        } else {
            u64::MAX / 2
        };
        Duration::from_micros(us)
    }
}

/// The eviction pool and the round-robin position of the random policies.
#[derive(Debug, Default)]
pub struct Evictor {
    /// Settings read on hot paths.
    pub settings: Settings,
    /// Best candidates so far, ascending score (best last).
    pool: Mutex<Vec<Candidate>>,
    /// Next database the random policies look at.
    pub(crate) next_db: AtomicUsize,
    /// Keys evicted (INFO stats `evicted_keys`).
    pub evicted_keys: AtomicU64,
}

/// A key the eviction pool considers, with its score (higher: evicted
/// sooner).
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) score: u64,
    pub(crate) db: usize,
    pub(crate) key: Bytes,
}

/// Minutes clock for LFU (24 bits).
fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xFF_FFFF) as u32
}

/// The LFU counter of `clock` after decay (Redis's `LFUDecrAndReturn`).
pub fn lfu_decayed(clock: u32, now_ms: u64, decay_time: u32) -> u32 {
    let ldt = clock >> 8;
    let counter = clock & 255;
    let elapsed = lfu_minutes(now_ms).wrapping_sub(ldt) & 0xFF_FFFF;
    let periods = elapsed.checked_div(decay_time).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Redis's `LFULogIncr`.
fn lfu_log_incr(counter: u32, log_factor: u32) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let r: f64 = rand::thread_rng().gen();
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// The access clock of a new key.
#[inline]
pub fn fresh_clock(now_ms: u64, lfu: Option<Lfu>) -> u32 {
    match lfu {
        None => now_ms as u32,
        Some(_) => (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL,
    }
}

/// The access clock RESTORE gives a key (Redis's `objectSetLRUOrLFU`):
/// the LFU counter `freq` under an LFU policy, else `idle_ms` in the
/// past; None leaves the fresh clock.
pub fn restored_clock(
    now_ms: u64,
    lfu: Option<Lfu>,
    idle_ms: Option<u64>,
    freq: Option<u8>,
) -> Option<u32> {
    match lfu {
        Some(_) => freq.map(|f| (lfu_minutes(now_ms) << 8) | f as u32),
        None => idle_ms.map(|i| now_ms.wrapping_sub(i) as u32),
    }
}

/// The access clock after an access (Redis's `lookupKey` update).
#[inline]
pub fn touched(clock: u32, now_ms: u64, lfu: Option<Lfu>) -> u32 {
    match lfu {
        None => now_ms as u32,
        Some(p) => {
            let c = lfu_log_incr(lfu_decayed(clock, now_ms, p.decay_time), p.log_factor);
            (lfu_minutes(now_ms) << 8) | c
        }
    }
}

/// A random key of `db` (with a TTL if `volatile`).
pub(crate) fn random_candidate(db: &Db, volatile: bool) -> Option<Bytes> {
    let mut rng = rand::thread_rng();
    let n = if volatile {
        db.expires_len()
    } else {
        db.keys.len()
    };
    if n == 0 {
        return None;
    }
    let i = rng.gen_range(0..n);
    let key = if volatile {
        db.expire_entry(i).map(|(k, _)| k)
    } else {
        db.keys.get_index(i).map(|(k, _)| k.as_bytes())
    };
    key.map(Bytes::copy_from_slice)
}

/// Samples `maxmemory-samples` keys of database `i` and scores them.
pub(crate) fn sample(
    db: &Db,
    i: usize,
    volatile: bool,
    policy: MaxmemoryPolicy,
    s: &Settings,
) -> Vec<Candidate> {
    let mut rng = rand::thread_rng();
    let n = if volatile {
        db.expires_len()
    } else {
        db.keys.len()
    };
    let samples = s.samples.load(Relaxed).min(n);
    let decay = s.lfu_decay_time.load(Relaxed);
    let now32 = db.now as u32;
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let idx = rng.gen_range(0..n);
        let (key, clock, deadline) = if volatile {
            let Some((k, at)) = db.expire_entry(idx) else {
                continue;
            };
            let clock = db.keys.get(k).map_or(0, |e| e.clock);
            (k, clock, at)
        } else {
            let Some((k, e)) = db.keys.get_index(idx) else {
                continue;
            };
            (k.as_bytes(), e.clock, 0)
        };
        let score = match policy {
            MaxmemoryPolicy::VolatileTtl => u64::MAX - deadline,
            MaxmemoryPolicy::AllkeysLfu | MaxmemoryPolicy::VolatileLfu => {
                255 - lfu_decayed(clock, db.now, decay) as u64
            }
            _ => now32.wrapping_sub(clock) as u64,
        };
        out.push(Candidate {
            score,
            db: i,
            key: Bytes::copy_from_slice(key),
        });
    }
    out
}

impl Evictor {
    /// Adds sampled candidates to the pool (Redis's
    /// `evictionPoolPopulate`): kept sorted by score, at most
    /// [`POOL_SIZE`], the worst dropped first.
    pub(crate) fn merge(&self, found: Vec<Candidate>) {
        let mut pool = self.pool.lock();
        for c in found {
            if pool.iter().any(|p| p.db == c.db && p.key == c.key) {
                continue;
            }
            if pool.len() >= POOL_SIZE {
                if pool.first().is_some_and(|w| w.score >= c.score) {
                    continue;
                }
                pool.remove(0);
            }
            let at = pool.partition_point(|p| p.score < c.score);
            pool.insert(at, c);
        }
    }

    /// Takes the best candidate.
    pub(crate) fn pop(&self) -> Option<Candidate> {
        self.pool.lock().pop()
    }

    /// Forgets the pool (FLUSHALL, policy change: candidates are stale).
    pub fn clear(&self) {
        self.pool.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let p = Lfu {
            log_factor: 10,
            decay_time: 1,
        };
        let now = 10 * 60_000;
        let mut clock = fresh_clock(now, Some(p));
        assert_eq!(clock & 255, LFU_INIT_VAL);
        for _ in 0..1000 {
            clock = touched(clock, now, Some(p));
        }
        let c = clock & 255;
        assert!(c > 10 && c < 40, "counter {c} after 1000 hits");
        // Three minutes later, three decrements.
        assert_eq!(lfu_decayed(clock, now + 3 * 60_000, 1), c - 3);
        assert_eq!(lfu_decayed(clock, now + 3 * 60_000, 0), c);
    }

    #[test]
    fn lookups_touch_the_clock_and_count_hits() {
        use crate::store::Value;
        let mut db = Db::new(0);
        db.now = 1_000;
        db.set(b"k", Value::Str((&b"v"[..]).into()), false);
        assert_eq!(db.keys.get(&b"k"[..]).map(|e| e.clock), Some(1_000));
        db.now = 5_000;
        assert!(db.get(b"k").is_some());
        assert!(db.get(b"nope").is_none());
        assert_eq!((db.hits, db.misses), (1, 1));
        assert_eq!(db.keys.get(&b"k"[..]).map(|e| e.clock), Some(5_000));
        // Under LFU an overwrite keeps the counter.
        db.lfu = Some(Lfu {
            log_factor: 10,
            decay_time: 1,
        });
        db.set(b"f", Value::Str(Default::default()), false);
        for _ in 0..50 {
            db.get(b"f");
        }
        let before = db.keys.get(&b"f"[..]).map(|e| e.clock & 255);
        db.set(b"f", Value::Str((&b"x"[..]).into()), false);
        assert_eq!(db.keys.get(&b"f"[..]).map(|e| e.clock & 255), before);
    }

    #[test]
    fn volatile_sampling_sees_only_keys_with_a_ttl() {
        use crate::store::Value;
        let mut db = Db::new(0);
        for i in 0..50 {
            let k = format!("k{i}");
            db.set(k.as_bytes(), Value::Str(Default::default()), false);
            if i % 2 == 0 {
                db.set_deadline(k.as_bytes(), 1_000_000 + i);
            }
        }
        let s = Settings::default();
        s.samples.store(20, Relaxed);
        let found = sample(&db, 0, true, MaxmemoryPolicy::VolatileTtl, &s);
        assert_eq!(found.len(), 20);
        for c in &found {
            let i: u64 = std::str::from_utf8(&c.key[1..])
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(1);
            assert_eq!(i % 2, 0);
            assert_eq!(c.score, u64::MAX - (1_000_000 + i));
        }
    }

    #[test]
    fn pool_keeps_the_best_sixteen() {
        let ev = Evictor::default();
        let cands: Vec<Candidate> = (0..40u64)
            .map(|s| Candidate {
                score: s,
                db: 0,
                key: Bytes::from(s.to_string()),
            })
            .collect();
        ev.merge(cands.clone());
        ev.merge(cands);
        assert_eq!(ev.pool.lock().len(), POOL_SIZE);
        assert_eq!(ev.pop().map(|c| c.score), Some(39));
        assert_eq!(ev.pop().map(|c| c.score), Some(38));
    }
}
