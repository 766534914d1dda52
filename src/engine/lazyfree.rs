//! Freeing large values off the command path (UNLINK, FLUSHALL and
//! FLUSHDB ASYNC; DEL, FLUSHALL / FLUSHDB and eviction too under
//! `lazyfree-lazy-user-del`, `-user-flush`, `-eviction`), as Redis's
//! `lazyfree.c`.
//!
//! Dropping a value with many allocations (a big set, a long stream) takes
//! time proportional to them, and a command that deletes one would hold
//! its database lock meanwhile. UNLINK instead hands such a value to a
//! background thread, started on first use, and returns at once. What
//! "large" means is Redis's `lazyfreeGetFreeEffort` (roughly the number of
//! allocations) against its `LAZYFREE_THRESHOLD`: smaller values are
//! dropped in place, as Redis frees them, since queueing would cost more.
//!
//! INFO shows `lazyfree_pending_objects` (handed over, not yet freed) and
//! `lazyfreed_objects` (freed in the background since start-up or CONFIG
//! RESETSTAT), which clients and Redis's tests use to tell whether a value
//! went to the background.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::Config;
use crate::store::encoding::StrEnc;
use crate::store::{Flushed, Value};

/// Above this effort a value is freed in the background (Redis's
/// `LAZYFREE_THRESHOLD`).
pub const THRESHOLD: usize = 64;

/// Bytes per quicklist node at Redis's default `list-max-listpack-size`
/// (-2: 8 KB), to estimate how many nodes a list has.
const LIST_NODE_BYTES: usize = 8 * 1024;

/// The counters INFO shows, shared with the background thread.
#[derive(Debug, Default)]
struct Counters {
    pending: AtomicU64,
    freed: AtomicU64,
}

/// The background freer (see the module header).
#[derive(Debug, Default)]
pub struct LazyFree {
    counters: Arc<Counters>,
    /// `lazyfree-lazy-user-del`: DEL frees as UNLINK does.
    user_del: AtomicBool,
    /// `lazyfree-lazy-user-flush`: FLUSHALL / FLUSHDB without SYNC or
    /// ASYNC free in the background.
    user_flush: AtomicBool,
    /// `lazyfree-lazy-eviction`: evicted values are freed in the background.
    eviction: AtomicBool,
    /// The thread's queue, once started.
    queue: Mutex<Option<Sender<Garbage>>>,
}

/// What the background thread frees (held only to be dropped there).
#[allow(dead_code)]
enum Garbage {
    Value(Value),
    Keyspace(Flushed),
}

impl LazyFree {
    /// Reads the `lazyfree-lazy-*` options it honours (at start and after
    /// CONFIG SET).
    pub fn configure(&self, cfg: &Config) {
        let yes = |name: &str| cfg.value(name).as_deref() == Some("yes");
        self.user_del.store(yes("lazyfree-lazy-user-del"), Relaxed);
        self.user_flush
            .store(yes("lazyfree-lazy-user-flush"), Relaxed);
        self.eviction.store(yes("lazyfree-lazy-eviction"), Relaxed);
    }

    /// Whether DEL frees as UNLINK does.
    pub fn user_del(&self) -> bool {
        self.user_del.load(Relaxed)
    }

    /// Whether a FLUSHALL / FLUSHDB without a mode frees in the background.
    pub fn user_flush(&self) -> bool {
        self.user_flush.load(Relaxed)
    }

    /// Whether evicted values are freed in the background.
    pub fn eviction(&self) -> bool {
        self.eviction.load(Relaxed)
    }

    /// Frees `v`: in the background if its effort is above [`THRESHOLD`],
    /// else here and now.
    pub fn free(&self, v: Value) {
        if effort(&v) <= THRESHOLD {
            return drop(v);
        }
        self.send(Garbage::Value(v), 1);
    }

    /// Frees a flushed database's contents (FLUSHALL / FLUSHDB ASYNC) in
    /// the background, counted as its number of keys, as Redis's
    /// `emptyDbAsync` counts them.
    pub fn free_flushed(&self, f: Flushed) {
        let keys = f.keys() as u64;
        if keys == 0 {
            return;
        }
        self.send(Garbage::Keyspace(f), keys);
    }

    fn send(&self, g: Garbage, count: u64) {
        let mut q = self.queue.lock();
        if q.is_none() {
            *q = self.start();
        }
        let Some(tx) = q.as_ref() else {
            // No thread could be started: free it here.
            return drop(g);
        };
        self.counters.pending.fetch_add(count, Relaxed);
        if let Err(back) = tx.send(g) {
            self.counters.pending.fetch_sub(count, Relaxed);
            *q = None;
            drop(back.0);
        }
    }

    /// Starts the thread that frees what it receives.
    fn start(&self) -> Option<Sender<Garbage>> {
        let (tx, rx) = channel::<Garbage>();
        let counters = self.counters.clone();
        std::thread::Builder::new()
            .name("lazyfree".into())
            .spawn(move || {
                for g in rx {
                    let n = match &g {
                        Garbage::Value(_) => 1,
                        Garbage::Keyspace(f) => f.keys() as u64,
                    };
                    drop(g);
                    counters.pending.fetch_sub(n, Relaxed);
                    counters.freed.fetch_add(n, Relaxed);
                }
            })
            .ok()?;
        Some(tx)
    }

    /// INFO `lazyfree_pending_objects`.
    pub fn pending(&self) -> u64 {
        self.counters.pending.load(Relaxed)
    }

    /// INFO `lazyfreed_objects`.
    pub fn freed(&self) -> u64 {
        self.counters.freed.load(Relaxed)
    }

    /// CONFIG RESETSTAT: `lazyfreed_objects` starts again from 0.
    pub fn reset_stats(&self) {
        self.counters.freed.store(0, Relaxed);
    }
}

/// Redis's `lazyfreeGetFreeEffort`: about how many allocations freeing `v`
/// takes. Compact encodings (listpack, intset) are one allocation.
pub fn effort(v: &Value) -> usize {
    match v {
        Value::Str(_) => 1,
        Value::List(_) => v.mem() / LIST_NODE_BYTES + 1,
        Value::Hash(_) | Value::Set(_) | Value::ZSet(_) if compact(v) => 1,
        Value::Hash(h) => h.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
        Value::Stream(s) => {
            // Every node is an allocation; so are the groups and their
            // pending entries, estimated from the first group's PEL.
            let nodes = s.node_count() + 1;
            let groups = s
                .groups
                .values()
                .next()
                .map_or(0, |g| s.groups.len() * (1 + g.pel.len()));
            nodes + groups
        }
    }
}

/// A collection held in one allocation (listpack, intset).
fn compact(v: &Value) -> bool {
    matches!(v.encoding(StrEnc::Derived), "listpack" | "intset")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_freed_in_place() {
        let lf = LazyFree::default();
        lf.free(Value::Str((&b"x"[..]).into()));
        assert_eq!((lf.pending(), lf.freed()), (0, 0));
        assert!(lf.queue.lock().is_none());
    }

    #[test]
    fn a_big_set_goes_to_the_background() {
        let mut set = crate::store::Set::default();
        for i in 0..1000 {
            set.insert(format!("m{i}").as_bytes());
        }
        let mut v = Value::Set(Box::new(set));
        v.settle_encoding(&crate::store::encoding::Limits::default());
        assert!(effort(&v) > THRESHOLD);
        let lf = LazyFree::default();
        lf.free(v);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while lf.freed() == 0 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!((lf.pending(), lf.freed()), (0, 1));
        lf.reset_stats();
        assert_eq!(lf.freed(), 0);
    }
}
