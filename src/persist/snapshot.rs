//! A consistent copy of the whole data set, for the writers that walk it
//! off the databases' locks: the AOF rewrite (`rewrite`) and RDB saves
//! (`save`, replication's full resyncs).
//!
//! Every database is locked in index order (as every multi-database
//! command locks them, so this cannot deadlock), the caller's `at_cut`
//! runs with all of them held (the AOF rewrite switches files there), the
//! function libraries are read, then each database is cloned and released
//! at once: a client of database 0 waits only for database 0's clone.
//! Keys whose TTL has passed are left out of an AOF rewrite, as Redis's
//! rewrite leaves them out; an RDB keeps them, as Redis's does (a replica
//! loads them and waits for its primary's deletion; a primary restarting
//! from the file deletes them and propagates the deletions).

use bytes::Bytes;

use super::Host;
use crate::config::MaxmemoryPolicy;
use crate::store::evict::lfu_decayed;
use crate::store::Value;

/// One key of a snapshot.
#[derive(Debug, Clone)]
pub struct Item {
    /// The key.
    pub key: Bytes,
    /// A deep copy of its value.
    pub value: Value,
    /// Its deadline in unix ms.
    pub expire_at: Option<u64>,
    /// What an RDB file records of its last access.
    pub access: Access,
}

/// The access information Redis writes beside a key in an RDB file: the
/// idle time under an LRU policy, the LFU counter under an LFU policy,
/// nothing otherwise (`rdbSaveKeyValuePair`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No eviction policy reads access times.
    None,
    /// Seconds since the last access (`RDB_OPCODE_IDLE`).
    IdleSecs(u64),
    /// The decayed LFU counter (`RDB_OPCODE_FREQ`).
    Freq(u8),
}

/// The data set at one point in time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every function library's code.
    pub libraries: Vec<Bytes>,
    /// Each database's keys, by database number.
    pub dbs: Vec<Vec<Item>>,
    /// The sum of the databases' change counters at the cut (what
    /// `rdb_changes_since_last_save` counts from once this is saved).
    pub dirty: u64,
}

/// Takes a snapshot of `host`'s data, with the keys whose TTL has passed
/// if `keep_expired`. `at_cut` runs while every database is held; its
/// error abandons the snapshot.
pub fn take<H: Host + ?Sized, E>(
    host: &H,
    keep_expired: bool,
    at_cut: impl FnOnce() -> Result<(), E>,
) -> Result<Snapshot, E> {
    let store = host.store();
    let policy = store.evictor.settings.policy();
    let n = store.len();
    let mut guards: Vec<_> = (0..n).map(|i| store.lock(i)).collect();
    at_cut()?;
    // Library changes are logged under a database lock: with all of them
    // held, the libraries match the cut.
    let libraries = host.function_libraries();
    let dirty = guards.iter().map(|g| g.dirty).sum();
    let mut dbs = Vec::with_capacity(n);
    for g in guards.drain(..) {
        let now = g.now;
        let lfu = g.lfu;
        dbs.push(
            g.entries()
                .filter(|(_, _, at, _)| keep_expired || at.is_none_or(|at| at > now))
                .map(|(k, v, at, clock)| Item {
                    key: Bytes::copy_from_slice(k),
                    value: v.clone(),
                    expire_at: at,
                    access: access(policy, lfu.map(|l| l.decay_time), clock, now),
                })
                .collect(),
        );
        drop(g);
    }
    Ok(Snapshot {
        libraries,
        dbs,
        dirty,
    })
}

/// The access record of a key with access clock `clock` at `now`.
fn access(policy: MaxmemoryPolicy, decay: Option<u32>, clock: u32, now: u64) -> Access {
    match policy {
        MaxmemoryPolicy::AllkeysLru | MaxmemoryPolicy::VolatileLru => {
            Access::IdleSecs(((now as u32).wrapping_sub(clock) / 1000) as u64)
        }
        MaxmemoryPolicy::AllkeysLfu | MaxmemoryPolicy::VolatileLfu => {
            Access::Freq(lfu_decayed(clock, now, decay.unwrap_or(1)).min(255) as u8)
        }
        _ => Access::None,
    }
}
