//! The keyspace: numbered databases of keys, each key holding a [`Value`].
//!
//! # Shape
//!
//! - [`Store`] owns the databases (16 by default). Each [`Db`] sits behind
//!   its own `parking_lot::Mutex` inside an `Arc`, so traffic on one database
//!   never waits for another, and a transaction (EXEC) can keep the guards
//!   it took (`ArcMutexGuard`, owned, no borrow of the store) for the whole
//!   queue. A command holds its database's lock for its own duration only,
//!   never across an `.await` and never while writing to a socket (keyspace
//!   notifications and blocked-client replies are pushed into outboxes,
//!   which are leaf locks). Commands that touch several databases (SWAPDB,
//!   MOVE, COPY ... DB, FLUSHALL, a transaction that SELECTs) lock them in
//!   index order, so two of them can never deadlock.
//! - Keys live in a [`KeyMap`] (an insertion-ordered hash map in the
//!   manner of `IndexMap`, smaller per key; `swap_remove` on delete).
//!   Besides O(1) lookups it gives O(1) random access by index,
//!   which RANDOMKEY and active expiry sampling need, and a SCAN cursor that
//!   walks indices from the end towards 0: a `swap_remove` only ever moves
//!   the last entry, which a downward walk has already visited, so a full
//!   iteration returns every key that existed throughout (see [`Db::scan`]).
//! - Deadlines live in a second `KeyMap` (key → unix ms), only for keys
//!   with a TTL, so expiry sampling looks at candidates only ([`expire`]).
//! - Every read goes through [`Db::expire_if_needed`] (lazy expiry); the
//!   background task of [`expire`] removes keys nobody reads.
//!
//! # What a write must do
//!
//! A command that changes a key calls [`Db::modified`] (Redis's
//! `signalModifiedKey`: breaks WATCH, marks the key ready for clients
//! blocked on it) and [`Db::notify`] for its keyspace event. Events are
//! buffered in the database and published when the command (or the whole
//! EXEC) ends, still under the lock, so their order is the commands' order
//! (`Engine::unlock`).
//!
//! # Memory accounting
//!
//! [`Db::used_memory`] is an estimate kept up to date on every insert,
//! removal and in-place change: per key, [`KEY_OVERHEAD`] plus the key's
//! length plus [`Value::mem`]. Each collection type keeps its own running
//! byte count in O(1) (element lengths plus a per-element overhead
//! constant chosen from the container's layout), and [`Db::update`]
//! applies the difference of `Value::mem` before and after a change. INFO
//! memory reports the sum over databases plus a fixed base.
//!
//! Stored keys and values never borrow the client's read buffer: every
//! argument kept is copied into its own allocation ([`own`]).

pub mod digest;
pub mod encoding;
pub mod evict;
pub mod expire;
pub mod hash;
pub mod hll;
pub mod keymap;
pub mod list;

pub mod set;
pub mod stream;
pub mod string;
pub mod usage;
pub mod zset;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexMap;
use parking_lot::{Mutex, RawMutex};

use crate::config::notify;
pub use crate::util::key::Key;
pub use hash::Hash;
pub use keymap::KeyMap;
pub use list::List;
pub use set::Set;
pub use stream::Stream;
pub use string::Str;
pub use zset::ZSet;

/// Insertion-ordered hash map with ahash: the table form of a hash.
pub type Map<K, V> = IndexMap<K, V, ahash::RandomState>;

/// Estimated bytes per key besides the key and the value's contents: the
/// [`KeyMap`] entry (24-byte [`Key`], 48-byte [`Entry`]: the 40-byte
/// `Value` and the access clock) and its table slot at the table's load
/// factor, rounded up: an estimate on the high side, so that
/// `maxmemory` evicts early rather than late.
pub const KEY_OVERHEAD: usize = 128;

/// The error for an operation against a key holding the wrong type.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// A copy of an argument in its own allocation. Arguments are slices of the
/// connection's read buffer; storing one would pin the whole buffer.
pub fn own(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

pub use crate::util::now_ms;

/// A stored value, one variant per Redis data type herald implements.
#[derive(Debug, Clone)]
pub enum Value {
    /// A string (binary-safe; integers are kept as their decimal text),
    /// inline when short.
    Str(Str),
    /// A list (quicklist in Redis). Collections are boxed so that a
    /// `Value` stays 40 bytes: most keys of a messaging workload are small
    /// strings, and every keyspace entry pays for the largest variant.
    List(Box<List>),
    /// A hash.
    Hash(Box<Hash>),
    /// A set.
    Set(Box<Set>),
    /// A sorted set.
    ZSet(Box<ZSet>),
    /// A stream (with its consumer groups).
    Stream(Box<Stream>),
}

impl Value {
    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// Estimated heap bytes of the contents, in O(1).
    pub fn mem(&self) -> usize {
        match self {
            Value::Str(b) => b.len(),
            Value::List(l) => l.mem(),
            Value::Hash(h) => h.mem(),
            Value::Set(s) => s.mem(),
            Value::ZSet(z) => z.mem(),
            Value::Stream(s) => s.mem(),
        }
    }

    /// True for a collection with no element left (Redis deletes those keys).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            // An emptied stream stays (it keeps its last ID and groups).
            Value::Stream(_) => false,
        }
    }
}

/// What the keyspace holds for a key: its value and its access clock (last
/// access time, or LFU counter, for eviction; see [`evict`]).
#[derive(Debug, Clone)]
struct Entry {
    value: Value,
    clock: u32,
    /// How a string value was written (see [`encoding`]); fits in the
    /// padding after `clock`.
    enc: encoding::StrEnc,
}

/// One keyspace event waiting to be published when the lock is released.
#[derive(Debug, Clone)]
pub struct Event {
    /// Redis's event name (`set`, `lpush`, `expired`, ...).
    pub name: &'static str,
    /// The key, in its own allocation.
    pub key: Bytes,
}

/// WATCH bookkeeping for one watched key.
#[derive(Debug, Clone, Copy, Default)]
struct Watched {
    /// How many WATCH registrations (clients) refer to the key.
    refs: u32,
    /// Bumped by every modification of the key.
    version: u64,
}

/// One database.
#[derive(Debug)]
pub struct Db {
    /// This database's number (for notification channel names).
    pub index: usize,
    /// Key → value (with its access clock).
    keys: KeyMap<Entry>,
    /// Key → deadline in unix milliseconds, only for keys with a TTL.
    expires: KeyMap<u64>,
    /// Keys a client of a writable replica gave a TTL: the replica expires
    /// these itself, since its primary knows nothing of them (Redis's
    /// `slaveKeysWithExpire`).
    replica_ttl_keys: HashSet<Key, ahash::RandomState>,
    /// Version counters of the keys some client WATCHes.
    watched: HashMap<Bytes, Watched, ahash::RandomState>,
    /// Keys some client is blocked on (BLPOP and friends; the engine keeps
    /// the clients themselves): a write to one makes it *ready*.
    waited_on: HashSet<Bytes, ahash::RandomState>,
    /// Waited-on keys written by the running command(s): the engine serves
    /// their blocked clients when the command ends.
    pub(crate) ready: Vec<Bytes>,
    /// Keyspace events of the running command(s), published on unlock.
    pub(crate) events: Vec<Event>,
    /// The time the running command sees (ms): fixed when the lock is taken,
    /// as Redis fixes `server.mstime` per command (and per EXEC).
    pub now: u64,
    /// Notification classes enabled (snapshot taken when locking).
    pub notify_flags: u32,
    /// Estimated bytes used by keys and values (see the module header).
    used: usize,
    /// Keys removed because their TTL passed (INFO stats `expired_keys`).
    pub expired_keys: u64,
    /// Expired keys are kept while clients are paused (snapshot taken when
    /// locking): they read as missing but stay, uncounted, until expiry
    /// resumes (see `Engine::hold_expiry`).
    pub expiry_held: bool,
    /// The running command comes from this server's primary: on a replica
    /// (where expiry is held) it sees every key as live, as Redis's master
    /// client does (`expireIfNeeded` returns 0 for it): the primary decides
    /// what expired, and its DEL frees the key.
    pub from_primary: bool,
    /// This server is a replica (snapshot taken when locking): a TTL set
    /// by one of its own clients is remembered in `replica_ttl_keys`.
    pub on_replica: bool,
    /// Lookups by [`Db::get`] that found / did not find their key (INFO
    /// stats `keyspace_hits` / `keyspace_misses`).
    pub hits: u64,
    pub misses: u64,
    /// The LFU parameters while an LFU `maxmemory-policy` is in force
    /// (snapshot taken when locking); None: access clocks are LRU times.
    pub lfu: Option<evict::Lfu>,
    /// The encoding thresholds in force (snapshot taken when locking).
    pub enc_limits: encoding::Limits,
    /// The store-wide sum of every database's `used` (what `maxmemory` is
    /// checked against without locking every database).
    total: Arc<AtomicUsize>,
    /// Changes made so far (Redis's `server.dirty`, per database): bumped by
    /// [`Db::modified`] and [`Db::remove_all`]; the engine compares it
    /// before and after a command to know whether to record it (`engine`).
    pub dirty: u64,
    /// True while the append-only file is on (snapshot taken when locking),
    /// so that [`Db::propagate`] costs nothing when persistence is off.
    pub propagating: bool,
    /// Effects to append to the AOF, in order, drained when the command
    /// (or EXEC) ends (see `persist` for the rules).
    pub prop: Vec<Vec<Bytes>>,
    /// Set by [`Db::propagate`]: the running command logged its own
    /// rewrite, so its arguments are not logged as they are.
    pub prop_rewritten: bool,
    /// On once some client tracks keys (client-side caching; shared by
    /// the store): modified keys are then recorded in `invalidated`.
    tracking: Arc<AtomicBool>,
    /// Keys modified by the running command(s) while tracking is on, for
    /// the engine to invalidate (see `tracking`).
    pub invalidated: Vec<Bytes>,
    /// The id of the client whose command runs (0: the server itself),
    /// for tracking's NOLOOP and for messages that wait for its reply.
    pub origin: u64,
}

impl Db {
    /// An empty database numbered `index`, counted on its own (unit tests).
    #[cfg(test)]
    pub fn new(index: usize) -> Db {
        Db::counted_in(index, Arc::default(), Arc::default())
    }

    /// An empty database whose memory also counts in `total`.
    fn counted_in(index: usize, total: Arc<AtomicUsize>, tracking: Arc<AtomicBool>) -> Db {
        Db {
            index,
            keys: KeyMap::default(),
            expires: KeyMap::default(),
            replica_ttl_keys: HashSet::default(),
            watched: HashMap::default(),
            waited_on: HashSet::default(),
            ready: Vec::new(),
            events: Vec::new(),
            now: now_ms(),
            notify_flags: 0,
            used: 0,
            expired_keys: 0,
            expiry_held: false,
            from_primary: false,
            on_replica: false,
            hits: 0,
            misses: 0,
            lfu: None,
            enc_limits: encoding::Limits::default(),
            total,
            dirty: 0,
            propagating: false,
            prop: Vec::new(),
            prop_rewritten: false,
            tracking,
            invalidated: Vec::new(),
            origin: 0,
        }
    }

    /// Number of keys (expired ones not yet removed included, as Redis).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the database holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of keys with a TTL.
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// Estimated bytes used by this database's keys and values.
    pub fn used_memory(&self) -> usize {
        self.used
    }

    /// Adds `add` and removes `sub` bytes from the estimate (and the
    /// store-wide total).
    #[inline]
    fn account(&mut self, add: usize, sub: usize) {
        if add >= sub {
            let d = add - sub;
            self.used += d;
            self.total.fetch_add(d, Relaxed);
        } else {
            let d = (sub - add).min(self.used);
            self.used -= d;
            self.total.fetch_sub(d, Relaxed);
        }
    }

    /// True if `key` has a deadline that has passed.
    fn is_expired(&self, key: &[u8]) -> bool {
        matches!(self.expires.get(key), Some(&at) if at <= self.now)
    }

    /// Lazy expiry: removes `key` if its deadline has passed, emitting the
    /// `expired` event. Returns true if it is expired: removed, or, while
    /// expiry is held ([`expiry_held`](Self::expiry_held)), kept but to be
    /// read as missing.
    pub fn expire_if_needed(&mut self, key: &[u8]) -> bool {
        if !self.is_expired(key) {
            return false;
        }
        if self.expiry_held {
            return !self.from_primary;
        }
        self.remove(key);
        self.expired_keys += 1;
        self.removed_by_server(key, notify::EXPIRED, "expired");
        true
    }

    /// After the server itself removed `key` (expiry, eviction): breaks
    /// WATCH and wakes blocked clients as any write does, records the
    /// removal as its own `DEL` (as Redis's `propagateDeletion`) without
    /// counting it as the running command's change (so that command is
    /// not logged for it), and queues `event` of `class`.
    pub fn removed_by_server(&mut self, key: &[u8], class: u32, event: &'static str) {
        let dirty = self.dirty;
        self.modified(key);
        self.dirty = dirty;
        if self.propagating {
            self.prop.push(vec![Bytes::from_static(b"DEL"), own(key)]);
        }
        self.notify(class, event, key);
    }

    /// The value of `key`, after lazy expiry; counts a keyspace hit or
    /// miss and marks the key accessed (for eviction).
    pub fn get(&mut self, key: &[u8]) -> Option<&Value> {
        self.lookup(key, true)
    }

    /// [`Db::get`] without marking the key accessed: what Redis's
    /// `LOOKUP_NOTOUCH` reads (TTL, TYPE, EXISTS) see.
    pub fn get_no_touch(&mut self, key: &[u8]) -> Option<&Value> {
        self.lookup(key, false)
    }

    /// A lookup after lazy expiry, counted as a hit or miss, marking the
    /// key accessed if `touch`.
    fn lookup(&mut self, key: &[u8], touch: bool) -> Option<&Value> {
        if self.expire_if_needed(key) {
            self.misses += 1;
            return None;
        }
        let (now, lfu) = (self.now, self.lfu);
        match self.keys.get_mut(key) {
            Some(e) => {
                self.hits += 1;
                if touch {
                    e.clock = evict::touched(e.clock, now, lfu);
                }
                Some(&e.value)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// True if `key` exists (after lazy expiry).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Runs `f` on the value of `key` (after lazy expiry) and keeps the
    /// memory estimate right; a collection left empty is deleted (the
    /// caller emits its `del` event if Redis does). None if no such key.
    pub fn update<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Value) -> R) -> Option<R> {
        if self.expire_if_needed(key) {
            return None;
        }
        let (now, lfu) = (self.now, self.lfu);
        let e = self.keys.get_mut(key)?;
        e.clock = evict::touched(e.clock, now, lfu);
        let v = &mut e.value;
        let before = v.mem();
        let r = f(v);
        v.settle_encoding(&self.enc_limits);
        let after = v.mem();
        let empty = v.is_empty_collection();
        self.account(after, before);
        if empty {
            self.remove(key);
        }
        Some(r)
    }

    /// Stores `value` at `key`, replacing any value; the TTL is dropped
    /// unless `keep_ttl`. The key is copied into its own allocation if new.
    pub fn set(&mut self, key: &[u8], mut value: Value, keep_ttl: bool) {
        if self.expiry_held && !self.from_primary && self.is_expired(key) {
            // A write over a key that expired while expiry is held (a
            // writable replica's own client): the old key goes first, TTL and all, as
            // Redis's write lookups delete it (EXPIRE_FORCE_DELETE_EXPIRED).
            self.remove(key);
            self.expired_keys += 1;
            self.removed_by_server(key, notify::EXPIRED, "expired");
        }
        value.settle_encoding(&self.enc_limits);
        let add = value.mem();
        let (now, lfu) = (self.now, self.lfu);
        match self.keys.get_mut(key) {
            Some(old) => {
                let before = old.value.mem();
                old.value = value;
                old.enc = encoding::StrEnc::Derived;
                // As Redis's dbSetValue: an overwrite keeps the LFU counter.
                if lfu.is_none() {
                    old.clock = evict::fresh_clock(now, lfu);
                }
                self.account(add, before);
            }
            None => {
                let clock = evict::fresh_clock(now, lfu);
                self.keys.insert(
                    Key::from(key),
                    Entry {
                        value,
                        clock,
                        enc: encoding::StrEnc::Derived,
                    },
                );
                self.account(KEY_OVERHEAD + key.len() + add, 0);
                // Redis's dbAdd: the `new` event precedes the command's own.
                self.notify(notify::NEW, "new", key);
            }
        }
        if !keep_ttl {
            self.expires.swap_remove(key);
        }
    }

    /// Sets the access clock of `key` as RESTORE's IDLETIME / FREQ say
    /// (see [`evict::restored_clock`]).
    pub fn restore_clock(&mut self, key: &[u8], idle_ms: Option<u64>, freq: Option<u8>) {
        let (now, lfu) = (self.now, self.lfu);
        if let Some(clock) = evict::restored_clock(now, lfu, idle_ms, freq) {
            if let Some(e) = self.keys.get_mut(key) {
                e.clock = clock;
            }
        }
    }

    /// Removes `key` and its TTL, returning the value (no event).
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let v = self.keys.swap_remove(key)?.value;
        self.expires.swap_remove(key);
        self.account(0, KEY_OVERHEAD + key.len() + v.mem());
        Some(v)
    }

    /// Deletes `key` if it exists (after lazy expiry), with the `del` event
    /// and WATCH/blocking signal. Returns true if a key was deleted.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        self.delete_value(key).is_some()
    }

    /// [`delete`](Self::delete), handing back the value (UNLINK frees it
    /// off the command path).
    pub fn delete_value(&mut self, key: &[u8]) -> Option<Value> {
        if self.expire_if_needed(key) {
            return None;
        }
        let v = self.remove(key)?;
        self.modified(key);
        self.notify(notify::GENERIC, "del", key);
        Some(v)
    }

    /// The deadline (unix ms) of `key`, if it has one.
    pub fn deadline(&self, key: &[u8]) -> Option<u64> {
        self.expires.get(key).copied()
    }

    /// Sets the deadline of an existing key.
    pub fn set_deadline(&mut self, key: &[u8], at_ms: u64) {
        if self.on_replica && !self.from_primary && !self.replica_ttl_keys.contains(key) {
            if let Some((k, _)) = self.keys.get_key_value(key) {
                self.replica_ttl_keys.insert(k.clone());
            }
        }
        if let Some(d) = self.expires.get_mut(key) {
            *d = at_ms;
        } else if let Some((k, _)) = self.keys.get_key_value(key) {
            let k = k.clone();
            self.expires.insert(k, at_ms);
        }
    }

    /// On a writable replica, removes the keys its own clients gave a TTL
    /// that has passed (Redis's `expireSlaveKeys`); forgets those that are
    /// gone or lost their TTL. Once the server is a primary again the list
    /// is dropped, as normal expiry covers every key.
    pub fn expire_replica_ttl_keys(&mut self) {
        if self.replica_ttl_keys.is_empty() {
            return;
        }
        if !self.on_replica {
            self.replica_ttl_keys.clear();
            return;
        }
        let keys: Vec<Key> = self.replica_ttl_keys.iter().cloned().collect();
        for k in keys {
            match self.expires.get(&k) {
                Some(&at) if at <= self.now => {
                    self.remove(&k);
                    self.expired_keys += 1;
                    self.removed_by_server(&k, notify::EXPIRED, "expired");
                    self.replica_ttl_keys.remove(&k);
                }
                Some(_) => {}
                None => {
                    self.replica_ttl_keys.remove(&k);
                }
            }
        }
    }

    /// Removes the TTL of `key`; true if it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        self.expires.swap_remove(key).is_some()
    }

    /// A key chosen uniformly at random among the live ones (expired keys
    /// met on the way are removed, as Redis's dbRandomKey does).
    pub fn random_key(&mut self) -> Option<Bytes> {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            if self.keys.is_empty() {
                return None;
            }
            let i = rng.gen_range(0..self.keys.len());
            let k = self.keys.get_index(i).map(|(k, _)| k.to_bytes())?;
            if !self.expire_if_needed(&k) {
                return Some(k);
            }
        }
        self.keys.get_index(0).map(|(k, _)| k.to_bytes())
    }

    /// One SCAN step over the keys (see [`walk_down`]), calling `f` on
    /// each live key; returns the next cursor (0 when done). See the module
    /// header for why downwards.
    pub fn scan(&mut self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Value)) -> u64 {
        walk_down(self.keys.len(), cursor, count, |pos| {
            if let Some((k, e)) = self.keys.get_index(pos) {
                let dead = matches!(self.expires.get(k), Some(&at) if at <= self.now);
                if !dead {
                    f(k, &e.value);
                }
            }
        })
    }

    /// Every live key, in storage order (KEYS).
    pub fn all_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.keys
            .keys()
            .map(Key::as_bytes)
            .filter(move |k| !matches!(self.expires.get(k), Some(&at) if at <= self.now))
    }

    /// The key at storage position `i` of the TTL table (expiry sampling).
    pub(crate) fn expire_entry(&self, i: usize) -> Option<(&[u8], u64)> {
        self.expires.get_index(i).map(|(k, v)| (k.as_bytes(), *v))
    }

    /// Redis's `signalModifiedKey`: breaks WATCH on `key` and wakes clients
    /// blocked on it (they are served when the command ends).
    pub fn modified(&mut self, key: &[u8]) {
        self.dirty += 1;
        if let Some(w) = self.watched.get_mut(key) {
            w.version += 1;
        }
        if self.tracking.load(Relaxed) {
            self.invalidated.push(own(key));
        }
        if !self.waited_on.is_empty()
            && self.waited_on.contains(key)
            && !self.ready.iter().any(|k| &k[..] == key)
        {
            self.ready.push(own(key));
        }
    }

    /// Logs `cmd` to the append-only file in place of the running
    /// command's own arguments (Redis's `rewriteClientCommandVector` /
    /// `alsoPropagate`): how nondeterministic or relative commands are
    /// written as their deterministic effect (SPOP → SREM, EXPIRE →
    /// PEXPIREAT, BLPOP → LPOP, ...). A no-op when persistence is off.
    pub fn propagate(&mut self, cmd: Vec<Bytes>) {
        self.prop_rewritten = true;
        if self.propagating {
            self.prop.push(cmd);
        }
    }

    /// [`Db::propagate`] with the command built only while the log is on:
    /// with `appendonly no` a write pays nothing for persistence, not even
    /// the allocation of the command it would have logged.
    #[inline]
    pub fn propagate_with(&mut self, cmd: impl FnOnce() -> Vec<Bytes>) {
        self.prop_rewritten = true;
        if self.propagating {
            self.prop.push(cmd());
        }
    }

    /// Every key with its value, deadline and access clock, expired ones
    /// included (snapshots for the AOF rewrite and RDB files are cloned
    /// from this under the lock).
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &Value, Option<u64>, u32)> {
        self.keys.iter().map(move |(k, e)| {
            let k = k.as_bytes();
            (k, &e.value, self.expires.get(k).copied(), e.clock)
        })
    }

    /// After a write that removed elements: bumps WATCH versions
    /// ([`modified`](Self::modified)), emits `event` of `class`, and, as
    /// Redis does, a `del` event if that emptied and so removed the key.
    pub fn changed(&mut self, key: &[u8], class: u32, event: &'static str) {
        self.modified(key);
        self.notify(class, event, key);
        if !self.exists(key) {
            self.notify(notify::GENERIC, "del", key);
        }
    }

    /// Queues the keyspace event `name` of class `class` for `key`, if the
    /// configuration enables it.
    pub fn notify(&mut self, class: u32, name: &'static str, key: &[u8]) {
        if notify::wanted(self.notify_flags, class) {
            self.events.push(Event {
                name,
                key: own(key),
            });
        }
    }

    /// Removes every key (FLUSHDB), breaking WATCH on the keys that existed
    /// and, as Redis's `scanDatabaseForDeletedStreams`, making ready the
    /// streams clients are blocked on (XREADGROUP then fails with
    /// `UNBLOCKED the stream key no longer exists`).
    #[must_use = "the old contents are dropped where the caller drops them"]
    pub fn remove_all(&mut self) -> Flushed {
        self.dirty += 1;
        if !self.watched.is_empty() {
            let keys: Vec<Bytes> = self.watched.keys().cloned().collect();
            for k in keys {
                if self.keys.contains_key(&k[..]) {
                    self.modified(&k);
                }
            }
        }
        let deleted_streams: Vec<Bytes> = self
            .waited_on
            .iter()
            .filter(
                |k| matches!(self.keys.get(&k[..]), Some(e) if matches!(e.value, Value::Stream(_))),
            )
            .cloned()
            .collect();
        for k in deleted_streams {
            if !self.ready.contains(&k) {
                self.ready.push(k);
            }
        }
        let flushed = Flushed {
            keys: std::mem::take(&mut self.keys),
            expires: std::mem::take(&mut self.expires),
        };
        self.account(0, self.used);
        flushed
    }

    /// Exchanges the data (keys, TTLs, memory) of two databases, keeping
    /// each one's watchers and blocked clients (SWAPDB).
    pub fn swap_data(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.keys, &mut other.keys);
        std::mem::swap(&mut self.expires, &mut other.expires);
        std::mem::swap(&mut self.used, &mut other.used);
        for db in [self, other] {
            let keys: Vec<Bytes> = db.watched.keys().cloned().collect();
            for k in keys {
                db.modified(&k);
            }
            let waited: Vec<Bytes> = db.waited_on.iter().cloned().collect();
            for k in waited {
                db.modified(&k);
            }
        }
    }

    /// Registers a WATCH of `key`; returns the version to compare at EXEC.
    pub fn watch(&mut self, key: &[u8]) -> u64 {
        let w = self.watched.entry(own(key)).or_default();
        w.refs += 1;
        w.version
    }

    /// Drops one WATCH registration of `key`.
    pub fn unwatch(&mut self, key: &[u8]) {
        if let Some(w) = self.watched.get_mut(key) {
            w.refs = w.refs.saturating_sub(1);
            if w.refs == 0 {
                self.watched.remove(key);
            }
        }
    }

    /// The current version of a watched key.
    pub fn watch_version(&self, key: &[u8]) -> u64 {
        self.watched.get(key).map_or(0, |w| w.version)
    }

    /// True if `key` exists but its deadline has passed (WATCH checks this
    /// at EXEC, as Redis's `isWatchedKeyExpired`).
    pub fn is_logically_expired(&self, key: &[u8]) -> bool {
        self.keys.contains_key(key) && self.is_expired(key)
    }

    /// The value of `key` with its access clock and how a string was
    /// written, as OBJECT and MEMORY USAGE see it (Redis's
    /// `objectCommandLookup`): no lazy expiry, no access recorded, no
    /// hit or miss counted.
    pub fn inspect(&self, key: &[u8]) -> Option<(&Value, u32, encoding::StrEnc)> {
        self.keys.get(key).map(|e| (&e.value, e.clock, e.enc))
    }

    /// Records how the string at `key` was written, when the command left
    /// another representation than SET would (see [`encoding`]).
    pub fn set_str_enc(&mut self, key: &[u8], enc: encoding::StrEnc) {
        if let Some(e) = self.keys.get_mut(key) {
            e.enc = enc;
        }
    }

    /// What travels with a value when RENAME or MOVE move the object
    /// itself (Redis keeps the same `robj`): its access clock and string
    /// representation.
    pub fn meta(&self, key: &[u8]) -> Option<(u32, encoding::StrEnc)> {
        self.keys.get(key).map(|e| (e.clock, e.enc))
    }

    /// Gives `key` the access clock and representation [`Db::meta`] read.
    pub fn set_meta(&mut self, key: &[u8], meta: (u32, encoding::StrEnc)) {
        if let Some(e) = self.keys.get_mut(key) {
            (e.clock, e.enc) = meta;
        }
    }

    /// True if `key` is stored, expired or not (no lazy expiry, no access
    /// recorded): for eviction's candidates.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.keys.contains_key(key)
    }

    /// The value of `key` as stored, with no lazy expiry and no access
    /// recorded: for a command that reads several keys together after
    /// looking each one up with [`get`](Self::get) (ZUNION and friends).
    pub fn peek(&self, key: &[u8]) -> Option<&Value> {
        self.keys.get(key).map(|e| &e.value)
    }

    /// Records whether some client is blocked on `key` (kept by the
    /// engine's blocking queues).
    pub fn set_waited_on(&mut self, key: &Bytes, waited: bool) {
        if waited {
            if !self.waited_on.contains(key) {
                self.waited_on.insert(key.clone());
            }
        } else {
            self.waited_on.remove(key);
        }
    }
}

/// One step of a SCAN-style cursor over positions `0..len`: visits up to
/// `count` positions below `cursor` walking downwards (from the end for
/// cursor 0, or for a cursor past the end, which deletions since it was
/// issued can cause), and returns the next cursor (0 when done). Walking
/// downwards, an element that stays in the collection the whole scan is
/// seen, whatever swap-removals move meanwhile. A cursor with the top bit
/// set was never issued (no collection is that big); Redis reads one such
/// as `SCAN -1` as its last bucket and ends the scan, so it ends here too,
/// with nothing visited.
pub fn walk_down(len: usize, cursor: u64, count: usize, mut f: impl FnMut(usize)) -> u64 {
    if cursor > i64::MAX as u64 {
        return 0;
    }
    let len = len as u64;
    let mut pos = if cursor == 0 || cursor > len {
        len
    } else {
        cursor
    };
    let mut visited = 0;
    while pos > 0 && visited < count.max(1) {
        pos -= 1;
        visited += 1;
        f(pos as usize);
    }
    pos
}

/// A flushed database's former contents (FLUSHDB / FLUSHALL): dropping it
/// frees them, which the engine may leave to a background thread. (Its
/// maps are held only to be dropped.)
#[allow(dead_code)]
pub struct Flushed {
    keys: KeyMap<Entry>,
    expires: KeyMap<u64>,
}

impl Flushed {
    /// How many keys it held.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }
}

/// An owned lock on one database (can be kept by EXEC across commands).
pub type DbGuard = parking_lot::ArcMutexGuard<RawMutex, Db>;

/// All databases.
pub struct Store {
    dbs: Vec<Arc<Mutex<Db>>>,
    /// Sum of the databases' memory estimates, kept by each [`Db`].
    used_total: Arc<AtomicUsize>,
    /// `maxmemory` settings and the eviction pool (see [`evict`]).
    pub evictor: evict::Evictor,
    /// On once some client tracks keys: the databases then record the
    /// keys they modify (see `tracking`).
    pub tracking: Arc<AtomicBool>,
    /// The encoding thresholds (see [`encoding`]).
    pub encodings: encoding::Settings,
}

impl Store {
    /// `n` empty databases.
    pub fn new(n: usize) -> Store {
        let used_total = Arc::new(AtomicUsize::new(0));
        let tracking = Arc::new(AtomicBool::new(false));
        Store {
            dbs: (0..n.max(1))
                .map(|i| {
                    let db = Db::counted_in(i, used_total.clone(), tracking.clone());
                    Arc::new(Mutex::new(db))
                })
                .collect(),
            used_total,
            evictor: evict::Evictor::default(),
            tracking,
            encodings: encoding::Settings::default(),
        }
    }

    /// Reads the eviction options (at start and after CONFIG SET); the
    /// eviction pool's candidates are forgotten (their scores may no
    /// longer mean the same).
    pub fn configure(&self, cfg: &crate::config::Config) {
        self.evictor.settings.configure(cfg);
        self.evictor.clear();
        self.encodings.configure(cfg);
    }

    /// The keyspace's memory estimate over every database, without
    /// locking any (an atomic kept by the databases).
    #[inline]
    pub fn used_memory_total(&self) -> usize {
        self.used_total.load(Relaxed)
    }

    /// Number of databases.
    pub fn len(&self) -> usize {
        self.dbs.len()
    }

    /// Locks database `i` (which must exist) and fixes its clock.
    pub fn lock(&self, i: usize) -> DbGuard {
        self.lock_at(i, None)
    }

    /// [`lock`](Self::lock) with the time its user read already (Unix ms),
    /// or None to read it here.
    pub fn lock_at(&self, i: usize, now: Option<u64>) -> DbGuard {
        let mut g = self.dbs[i.min(self.dbs.len() - 1)].lock_arc();
        g.now = now.unwrap_or_else(now_ms);
        g.lfu = self.evictor.settings.lfu();
        g.enc_limits = self.encodings.limits();
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_expiry_and_memory() {
        let mut db = Db::new(0);
        db.set(b"a", Value::Str((&b"hello"[..]).into()), false);
        assert_eq!(db.used_memory(), KEY_OVERHEAD + 1 + 5);
        db.set_deadline(b"a", db.now - 1);
        assert!(db.get(b"a").is_none());
        assert_eq!(db.used_memory(), 0);
        assert_eq!(db.expired_keys, 1);
    }

    #[test]
    fn scan_visits_every_surviving_key_despite_deletes() {
        let mut db = Db::new(0);
        for i in 0..100 {
            db.set(
                format!("k{i}").as_bytes(),
                Value::Str(Default::default()),
                false,
            );
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = db.scan(cursor, 7, |k, _| {
                seen.insert(k.to_vec());
            });
            // delete some keys between steps (even ones)
            db.remove(format!("k{}", round * 2).as_bytes());
            round += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..100 {
            let k = format!("k{i}");
            if i % 2 == 1 || i / 2 >= round {
                assert!(seen.contains(k.as_bytes()), "{k} missed");
            }
        }
    }

    #[test]
    fn value_stays_small() {
        assert!(std::mem::size_of::<Value>() <= 40);
    }

    #[test]
    fn watch_versions() {
        let mut db = Db::new(0);
        let v = db.watch(b"k");
        db.modified(b"k");
        assert_ne!(db.watch_version(b"k"), v);
        db.unwatch(b"k");
        assert_eq!(db.watch_version(b"k"), 0);
    }
}
