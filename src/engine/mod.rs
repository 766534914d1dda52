//! The engine: where a command's work meets the keyspace, and where its
//! effects go.
//!
//! Every command that touches a database goes through [`Engine::acquire`]
//! and [`Engine::release`], whoever runs it: a client, EXEC, the AOF
//! loader (an internal client), a script, and later a primary's stream.
//! Between the two the command works on a locked [`Db`]; its changes bump
//! `Db::dirty`, and what it must tell the world is recorded on the
//! database as it goes (the *effects*):
//!
//! - the propagation record: the commands to append to the AOF (and, with
//!   replication, to send to replicas), in execution order. A command that
//!   changed something is recorded *as given* unless it recorded a
//!   deterministic rewrite of itself (`Db::propagate`; see `persist` for
//!   the rules), and keys removed by expiry or eviction as `DEL`;
//! - keyspace events (`Db::notify`), published as
//!   `__keyspace@<db>__:<key>` / `__keyevent@<db>__:<event>`;
//! - the keys it modified that clients are blocked on (`Db::modified`):
//!   those clients are served ([`blocking`]) before the lock goes;
//! - WATCH versions, bumped in place by `Db::modified`.
//!
//! [`Engine::release`] turns the record into effects, still under the
//! database lock so that their order is the commands' order: events are
//! published, blocked clients served (which may record more), and the
//! record appended to the AOF; it returns the log offset the caller's
//! reply must wait for. Commands that run as one unit (EXEC, a script)
//! keep their databases locked in [`Locks`] from [`Engine::begin_unit`]
//! (or, for a script, from each database's first use) to
//! [`Engine::end_unit`], which appends their whole record as one
//! `MULTI ... EXEC`. A script also holds the [`gate`] exclusively: no
//! other client command runs while it does.
//!
//! The engine also drives the work that runs against the keyspace on its
//! own: active expiry ([`expire`]) and eviction under `maxmemory`
//! ([`evict`]).

pub mod blocking;
pub mod evict;
pub mod expire;
pub mod gate;
pub mod lazyfree;

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::config::notify;
use crate::config::Config;
use crate::persist::aof::Aof;
use crate::pubsub::PubSub;
use crate::repl::Repl;
use crate::store::{Db, DbGuard, Store};
use crate::tracking::Tracking;
use blocking::{Waiter, Waiters};

/// The keyspace with everything a change of it reaches.
pub struct Engine {
    /// The databases.
    pub store: Store,
    /// Channels, patterns and shard channels (keyspace events go there).
    pub pubsub: PubSub,
    /// The append-only file writer, fed from the propagation record (idle
    /// while `appendonly no`).
    pub aof: Arc<Aof>,
    /// The replication stream, backlog and replicas, fed from the same
    /// record as the AOF (idle until a replica attaches).
    pub repl: Arc<Repl>,
    /// Clients blocked on keys, one set of queues per database.
    waiters: Vec<Mutex<Waiters>>,
    /// `notify-keyspace-events` as flags, parsed once per change.
    notify: AtomicU32,
    /// Client batches enter it; a script takes it whole (see [`gate`]).
    pub gate: Arc<gate::Gate>,
    /// Client-side caching: the keys clients may cache, invalidated as
    /// the databases change them (see `tracking`).
    pub tracking: Tracking,
    /// Whether the periodic expiry cycle runs (DEBUG SET-ACTIVE-EXPIRE);
    /// keys still expire when read.
    pub active_expire: std::sync::atomic::AtomicBool,
    /// Frees what UNLINK deletes off the command path (see [`lazyfree`]).
    pub lazyfree: lazyfree::LazyFree,
    /// Unix ms until which expired keys are kept (0: never): CLIENT PAUSE
    /// holds expiry, as Redis skips active and lazy expiry while clients
    /// are paused, so that a paused server's data does not change.
    expiry_held_until: AtomicU64,
}

impl Engine {
    /// An empty keyspace of `databases` databases, configured by `cfg`.
    pub fn new(cfg: &Config) -> Engine {
        let store = Store::new(cfg.databases);
        let waiters = (0..store.len()).map(|_| Mutex::default()).collect();
        let tracking = Tracking::new(store.tracking.clone(), Arc::default());
        let engine = Engine {
            lazyfree: Default::default(),
            tracking,
            store,
            pubsub: PubSub::default(),
            aof: Arc::default(),
            repl: Arc::default(),
            waiters,
            notify: AtomicU32::new(0),
            gate: Arc::default(),
            active_expire: std::sync::atomic::AtomicBool::new(true),
            expiry_held_until: AtomicU64::new(0),
        };
        engine.configure(cfg);
        engine
    }

    /// Takes what the engine reads from the configuration (at start and
    /// after CONFIG SET).
    pub fn configure(&self, cfg: &Config) {
        let flags = notify::parse(&cfg.notify_keyspace_events).unwrap_or(0);
        self.notify.store(flags, Relaxed);
        self.store.configure(cfg);
        self.aof.set_policy(cfg.appendfsync);
        let backlog = cfg
            .value("repl-backlog-size")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 20);
        self.repl.set_backlog_size(backlog);
        let max_keys = cfg
            .value("tracking-table-max-keys")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        self.tracking.set_max_keys(max_keys);
        self.lazyfree.configure(cfg);
    }

    /// Keeps expired keys (logically gone, never removed nor counted)
    /// until unix ms `until` or [`release_expiry`](Self::release_expiry):
    /// CLIENT PAUSE.
    pub fn hold_expiry(&self, until: u64) {
        self.expiry_held_until.fetch_max(until, Relaxed);
    }

    /// Lets expiry remove keys again (CLIENT UNPAUSE).
    pub fn release_expiry(&self) {
        self.expiry_held_until.store(0, Relaxed);
    }

    /// Locks database `i` for one command (or one unit): fixes its clock
    /// and snapshots the notification flags and whether effects are logged.
    pub fn lock(&self, i: usize) -> DbGuard {
        self.lock_at(i, None)
    }

    /// True while expiry is held for paused clients (at time `now`).
    pub fn expiry_paused(&self, now: u64) -> bool {
        now < self.expiry_held_until.load(Relaxed)
    }

    /// [`lock`](Self::lock) for a command that started at `now` (Unix ms,
    /// read by its caller), or at the time read here when None.
    pub fn lock_at(&self, i: usize, now: Option<u64>) -> DbGuard {
        let mut g = self.store.lock_at(i, now);
        g.notify_flags = self.notify.load(Relaxed);
        // A replica never expires keys itself: expired keys read as
        // missing until the primary's DEL removes them.
        g.on_replica = self.repl.is_replica();
        g.expiry_held = self.expiry_paused(g.now) || g.on_replica;
        g.propagating = self.aof.enabled() || self.repl.feeding();
        g.from_primary = false;
        g.origin = 0;
        g
    }

    /// Ends a command's (or unit's) use of a database: publishes its
    /// events, serves the clients blocked on keys it wrote (as Redis does
    /// after each command), publishes what serving produced, appends the
    /// propagation record to the AOF, then releases the lock. Returns the
    /// log offset the reply must wait for (0: nothing).
    pub fn unlock(&self, mut db: DbGuard) -> u64 {
        self.publish_events(&mut db);
        let mut durable_at = self.propagate(&mut db);
        if !db.ready.is_empty() {
            self.waiters[db.index].lock().serve_ready(&mut db);
            self.publish_events(&mut db);
            durable_at = durable_at.max(self.propagate(&mut db));
        }
        if self.store.tracking.load(Relaxed) {
            self.tracking.broadcast(db.origin);
        }
        drop(db);
        durable_at
    }

    /// Publishes the keyspace events queued on `db` (under its lock, so
    /// that events leave in the order of the commands that caused them).
    fn publish_events(&self, db: &mut Db) {
        if !db.invalidated.is_empty() {
            let keys = std::mem::take(&mut db.invalidated);
            self.tracking.invalidate(&keys, db.origin);
        }
        if db.events.is_empty() {
            return;
        }
        let flags = db.notify_flags;
        let index = db.index;
        for ev in std::mem::take(&mut db.events) {
            if flags & notify::KEYSPACE != 0 {
                let mut ch = format!("__keyspace@{index}__:").into_bytes();
                ch.extend_from_slice(&ev.key);
                self.pubsub.publish(&ch, ev.name.as_bytes());
            }
            if flags & notify::KEYEVENT != 0 {
                let ch = format!("__keyevent@{index}__:{}", ev.name);
                self.pubsub.publish(ch.as_bytes(), &ev.key);
            }
        }
    }

    /// Appends the propagation record of `db` to the AOF and the
    /// replication stream; returns the AOF offset it ends at (0 if there
    /// was nothing).
    fn propagate(&self, db: &mut Db) -> u64 {
        if db.prop.is_empty() {
            return 0;
        }
        let i = db.index;
        if self.repl.feeding() {
            self.repl.feed(db.prop.iter().map(|c| (i, &c[..])), false);
        }
        let off = self.aof.append(db.prop.iter().map(|c| (i, &c[..])), false);
        db.prop.clear();
        off
    }

    /// Database `i` for one command: the guard the caller's unit holds
    /// (EXEC), or a fresh lock. Give it back with [`release`](Self::release).
    pub fn acquire(&self, locks: &mut Locks, i: usize) -> Access {
        self.acquire_at(locks, i, None)
    }

    /// [`acquire`](Self::acquire) for a command that started at `now` (Unix
    /// ms): a database locked here sees that time (a unit's keeps its own).
    pub fn acquire_at(&self, locks: &mut Locks, i: usize, now: Option<u64>) -> Access {
        let (mut guard, from_unit) = match locks.take(i) {
            Some(g) => (g, true),
            None => (self.lock_at(i, now), locks.open),
        };
        guard.prop_rewritten = false;
        let dirty = guard.dirty;
        Access {
            guard,
            from_unit,
            dirty,
        }
    }

    /// Ends one command's work on a database taken with
    /// [`acquire`](Self::acquire). With `args`, a command that changed the
    /// database and recorded no rewrite of itself is recorded as given.
    /// Outside a unit the database is unlocked ([`unlock`](Self::unlock));
    /// in one, its events are published now and its record joins the
    /// unit's. Returns the log offset the reply must wait for.
    pub fn release(&self, locks: &mut Locks, mut a: Access, args: Option<&[Bytes]>) -> u64 {
        let db = &mut *a.guard;
        if let Some(args) = args {
            if db.propagating && db.dirty != a.dirty && !db.prop_rewritten {
                db.prop.push(args.to_vec());
            }
        }
        if a.from_unit {
            self.publish_events(db);
            let i = db.index;
            locks.effects.extend(db.prop.drain(..).map(|cmd| (i, cmd)));
            locks.guards.push(a.guard);
            return 0;
        }
        self.unlock(a.guard)
    }

    /// Starts a unit (EXEC): locks databases `dbs` in index order, so that
    /// two units can never deadlock; they stay locked until
    /// [`end_unit`](Self::end_unit).
    pub fn begin_unit(&self, locks: &mut Locks, mut dbs: Vec<usize>) {
        dbs.sort_unstable();
        dbs.dedup();
        for i in dbs {
            let g = self.lock(i);
            locks.guards.push(g);
        }
    }

    /// Starts a unit that locks each database when it first uses it (a
    /// script, which cannot say in advance which it will use). Only sound
    /// while the caller holds the gate exclusively: no other unit can then
    /// hold one database while waiting for another.
    pub fn begin_open_unit(&self, locks: &mut Locks) {
        locks.open = true;
    }

    /// Ends a unit: appends its record as one `MULTI ... EXEC`, then
    /// releases each database (serving the clients blocked on keys the
    /// unit wrote, as after one command). Returns the log offset the
    /// reply must wait for.
    pub fn end_unit(&self, locks: &mut Locks) -> u64 {
        locks.open = false;
        let mut durable_at = 0;
        if !locks.effects.is_empty() {
            let effects = std::mem::take(&mut locks.effects);
            if self.repl.feeding() {
                self.repl
                    .feed(effects.iter().map(|(i, cmd)| (*i, &cmd[..])), true);
            }
            durable_at = self
                .aof
                .append(effects.iter().map(|(i, cmd)| (*i, &cmd[..])), true);
        }
        for g in std::mem::take(&mut locks.guards) {
            durable_at = durable_at.max(self.unlock(g));
        }
        durable_at
    }

    /// Registers a blocked client on its keys of `db` (locked by the
    /// caller).
    pub fn block(&self, db: &mut Db, w: Arc<Waiter>) {
        self.waiters[db.index].lock().add(db, w);
    }

    /// Removes client `id` from the queues of `keys` of `db` (locked by the
    /// caller): it timed out, was served, or left.
    pub fn unblock(&self, db: &mut Db, id: u64, keys: &[Bytes]) {
        self.waiters[db.index].lock().remove(db, id, keys);
    }

    /// CLIENT UNBLOCK: releases client `id` if it is blocked on keys of
    /// any database (see `Waiters::request_unblock`). Only the queues'
    /// locks are taken (innermost in the lock order), so this is safe
    /// under EXEC's database locks too.
    pub fn request_unblock(&self, id: u64, how: u8) -> bool {
        self.waiters
            .iter()
            .any(|w| w.lock().request_unblock(id, how))
    }

    /// Releases every client blocked on keys as `how` (a server becoming a
    /// replica, Redis's `disconnectAllBlockedClients`).
    pub fn request_unblock_all(&self, how: u8) -> usize {
        self.waiters
            .iter()
            .map(|w| w.lock().request_unblock_all(how))
            .sum()
    }

    /// Clients blocked on keys, over every database (INFO
    /// `blocked_clients`).
    pub fn blocked_clients(&self) -> usize {
        self.waiters.iter().map(|w| w.lock().clients()).sum()
    }
}

/// Databases a unit of commands (EXEC, later a script) keeps locked from
/// its first command to its last, and the propagation record they built,
/// appended as one transaction when the unit ends.
#[derive(Default)]
pub struct Locks {
    guards: Vec<DbGuard>,
    effects: Vec<(usize, Vec<Bytes>)>,
    /// An open unit: databases join it as they are first used.
    open: bool,
}

impl Locks {
    /// How many commands the unit's record holds (a script drops what
    /// `redis.set_repl` keeps out of the AOF).
    pub fn effects_len(&self) -> usize {
        self.effects.len()
    }

    /// Forgets the record past `len`.
    pub fn truncate_effects(&mut self, len: usize) {
        self.effects.truncate(len);
    }

    /// True while a unit runs (EXEC, a script).
    pub fn in_unit(&self) -> bool {
        self.open || !self.guards.is_empty()
    }

    /// Database `i`, if the unit has it locked.
    pub fn get(&self, i: usize) -> Option<&Db> {
        self.guards.iter().find(|g| g.index == i).map(|g| &**g)
    }

    /// Database `i`, to change, if the unit has it locked.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Db> {
        self.guards
            .iter_mut()
            .find(|g| g.index == i)
            .map(|g| &mut **g)
    }

    fn take(&mut self, i: usize) -> Option<DbGuard> {
        let pos = self.guards.iter().position(|g| g.index == i)?;
        Some(self.guards.swap_remove(pos))
    }
}

/// One command's access to a database, from [`Engine::acquire`] to
/// [`Engine::release`].
pub struct Access {
    guard: DbGuard,
    /// Taken from the caller's unit: goes back there.
    from_unit: bool,
    /// `Db::dirty` when the command began.
    dirty: u64,
}

impl Deref for Access {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.guard
    }
}

impl DerefMut for Access {
    fn deref_mut(&mut self) -> &mut Db {
        &mut self.guard
    }
}
