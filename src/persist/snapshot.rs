//! The data set at one point in time, as the writers walk it: the AOF
//! rewrite (`rewrite`), RDB saves (`save`) and replication's full resyncs.
//!
//! [`hold`] locks every database in index order (as every multi-database
//! command locks them, so this cannot deadlock), runs the caller's
//! `at_cut` with all of them held (the AOF rewrite switches files there,
//! a full resync attaches its replicas to the stream), and reads the
//! function libraries: the [`Held`] it returns *is* the cut, for as long
//! as it lives. The background writers hand it to [`super::fork`], which
//! forks and releases the locks at once in the server, while the child
//! process walks its own copy-on-write image of the databases. A
//! foreground SAVE turns it into a [`Snapshot`] instead ([`take`]): each
//! database is cloned and released at once, and the file written off the
//! locks.
//!
//! Writers read both through the [`Data`] trait, so that a child
//! serializes straight from the held databases without copying them.
//!
//! Keys whose TTL has passed are left out of an AOF rewrite, as Redis's
//! rewrite leaves them out; an RDB keeps them, as Redis's does (a replica
//! loads them and waits for its primary's deletion; a primary restarting
//! from the file deletes them and propagates the deletions).

use bytes::Bytes;

use super::Host;
use crate::config::MaxmemoryPolicy;
use crate::store::evict::lfu_decayed;
use crate::store::{Db, DbGuard, Value};

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

/// One key as a writer reads it, borrowed from a [`Snapshot`] or from a
/// held database.
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    /// The key.
    pub key: &'a [u8],
    /// Its value.
    pub value: &'a Value,
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

/// What the RDB and AOF writers walk: the function libraries, then each
/// database's keys.
pub trait Data {
    /// Every function library's code.
    fn libraries(&self) -> &[Bytes];
    /// How many databases there are (some may be empty).
    fn db_count(&self) -> usize;
    /// Database `db`'s keys, those a rewrite leaves out already left out.
    fn keys(&self, db: usize) -> Box<dyn Iterator<Item = KeyRef<'_>> + '_>;
}

/// The data set copied out of the databases (a foreground SAVE, tests).
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

impl Data for Snapshot {
    fn libraries(&self) -> &[Bytes] {
        &self.libraries
    }

    fn db_count(&self) -> usize {
        self.dbs.len()
    }

    fn keys(&self, db: usize) -> Box<dyn Iterator<Item = KeyRef<'_>> + '_> {
        Box::new(self.dbs[db].iter().map(|i| KeyRef {
            key: &i.key,
            value: &i.value,
            expire_at: i.expire_at,
            access: i.access,
        }))
    }
}

/// Every database held at the cut (see the module header): while this
/// lives, no client touches the data.
pub struct Held {
    /// The guards, in index order.
    guards: Vec<DbGuard>,
    /// Every function library's code at the cut.
    libraries: Vec<Bytes>,
    /// The sum of the databases' change counters at the cut.
    pub dirty: u64,
    /// The eviction policy in force (which access record keys carry).
    policy: MaxmemoryPolicy,
    /// Keep the keys whose TTL has passed (an RDB) or not (a rewrite).
    keep_expired: bool,
}

impl Data for Held {
    fn libraries(&self) -> &[Bytes] {
        &self.libraries
    }

    fn db_count(&self) -> usize {
        self.guards.len()
    }

    fn keys(&self, db: usize) -> Box<dyn Iterator<Item = KeyRef<'_>> + '_> {
        Box::new(keys_of(&self.guards[db], self.keep_expired, self.policy))
    }
}

/// The keys of a held database as the writers read them.
fn keys_of(
    db: &Db,
    keep_expired: bool,
    policy: MaxmemoryPolicy,
) -> impl Iterator<Item = KeyRef<'_>> + '_ {
    let now = db.now;
    let decay = db.lfu.map(|l| l.decay_time);
    db.entries()
        .filter(move |(_, _, at, _)| keep_expired || at.is_none_or(|at| at > now))
        .map(move |(key, value, expire_at, clock)| KeyRef {
            key,
            value,
            expire_at,
            access: access(policy, decay, clock, now),
        })
}

/// Holds every database of `host` (the cut), with the keys whose TTL has
/// passed if `keep_expired`. `at_cut` runs while every database is held;
/// its error releases them.
pub fn hold<H: Host + ?Sized, E>(
    host: &H,
    keep_expired: bool,
    at_cut: impl FnOnce() -> Result<(), E>,
) -> Result<Held, E> {
    let store = host.store();
    let policy = store.evictor.settings.policy();
    let guards: Vec<_> = (0..store.len()).map(|i| store.lock(i)).collect();
    at_cut()?;
    // Library changes are logged under a database lock: with all of them
    // held, the libraries match the cut.
    let libraries = host.function_libraries();
    let dirty = guards.iter().map(|g| g.dirty).sum();
    Ok(Held {
        guards,
        libraries,
        dirty,
        policy,
        keep_expired,
    })
}

/// Takes a copy of `host`'s data (see [`hold`] for the arguments): each
/// database is cloned and released at once, so a client of database 0
/// waits only for database 0's clone.
pub fn take<H: Host + ?Sized, E>(
    host: &H,
    keep_expired: bool,
    at_cut: impl FnOnce() -> Result<(), E>,
) -> Result<Snapshot, E> {
    let Held {
        guards,
        libraries,
        dirty,
        policy,
        keep_expired,
    } = hold(host, keep_expired, at_cut)?;
    let mut dbs = Vec::with_capacity(guards.len());
    for g in guards {
        dbs.push(
            keys_of(&g, keep_expired, policy)
                .map(|k| Item {
                    key: Bytes::copy_from_slice(k.key),
                    value: k.value.clone(),
                    expire_at: k.expire_at,
                    access: k.access,
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
