//! Clients blocked on keys (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
//! BZPOPMIN, BZPOPMAX, BZMPOP, XREAD and XREADGROUP with BLOCK) and how
//! they are served.
//!
//! # Design
//!
//! A blocking command that finds no data registers a [`Waiter`] with
//! [`super::Engine::block`]: one FIFO queue per key of its database, in
//! blocking order, kept here beside the database and only touched under its
//! lock (lock order: database, then its queues). The waiter says what to do
//! when data comes (a [`Serve`] the command layer provides) and carries the
//! client's outbox handle and a [`Slot`] (served flag + `Notify`). The
//! database itself only knows which keys someone waits on
//! (`Db::is_waited_on`), so that a write to one marks it *ready*.
//!
//! When the writing command (or the whole EXEC) ends, still under the
//! database lock, [`super::Engine::unlock`] serves the waiters of each
//! ready key in FIFO order, as Redis's `handleClientsBlockedOnKeys` does:
//! it performs the pop *on the waiter's behalf*, pushes the reply into the
//! waiter's outbox, removes the waiter from all its keys and signals its
//! slot. Serving in the writer's context, atomically with the write, is
//! what makes the order exact: first blocked, first served, and nobody can
//! steal the element between the push and the wake-up. A push inside MULTI
//! is served after EXEC because EXEC keeps the lock until the end of the
//! queue.
//!
//! The blocked client's connection only waits (see `command::blocking`):
//! on the slot (served: go on with the pipeline), on its deadline (remove
//! the waiter under the lock; if it was not served meanwhile, reply with
//! the timeout value), or on a disconnect (remove the waiter).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::net::handle::ClientHandle;
use crate::protocol::{Frame, Protocol};
use crate::store::Db;

/// What a blocked command does once one of its keys has data: performs
/// its work against the database on the waiter's behalf and returns the
/// reply, or None if the key does not have what it waits for (yet).
pub trait Serve: Send + Sync + std::fmt::Debug {
    /// Serves the waiter from `key` of `db`; the reply is encoded in
    /// `protocol` (the waiter's).
    fn serve(&self, db: &mut Db, key: &Bytes, protocol: Protocol) -> Option<Frame>;
}

/// Wake-up signal shared between a waiter and its connection task.
#[derive(Debug, Default)]
pub struct Slot {
    /// Set (under the database lock) once the waiter has been served.
    pub served: AtomicBool,
    /// Notified once served, or once CLIENT UNBLOCK asked it to stop.
    pub notify: Notify,
    /// The error text the waiter was served with, if any (a group or key
    /// gone): the client's command then failed, which its error counters
    /// must show although the reply did not pass through them.
    pub error: std::sync::OnceLock<Bytes>,
    /// Set (under the queues' lock) by CLIENT UNBLOCK: [`UNBLOCK_TIMEOUT`]
    /// or [`UNBLOCK_ERROR`]. A waiter so marked is never served; its
    /// connection leaves the queues and replies accordingly.
    pub unblocked: AtomicU8,
}

/// CLIENT UNBLOCK [TIMEOUT]: the client replies as if its timeout passed.
pub const UNBLOCK_TIMEOUT: u8 = 1;
/// CLIENT UNBLOCK ERROR: the client replies Redis's `-UNBLOCKED` error.
pub const UNBLOCK_ERROR: u8 = 2;
/// The server became a replica: the client gets Redis's `-UNBLOCKED ...
/// instance state changed` error and is disconnected, so that no write
/// of the new primary's stream serves it.
pub const UNBLOCK_ROLE_CHANGE: u8 = 3;

impl Slot {
    /// The CLIENT UNBLOCK request pending on this waiter (0: none).
    pub fn unblock_request(&self) -> u8 {
        self.unblocked.load(Ordering::Acquire)
    }
}

/// One blocked client.
#[derive(Debug)]
pub struct Waiter {
    /// The client's id.
    pub id: u64,
    /// Where the reply goes.
    pub handle: Arc<ClientHandle>,
    /// The keys it waits on, in argument order.
    pub keys: Vec<Bytes>,
    /// What to do when served.
    pub op: Box<dyn Serve>,
    /// Its wake-up signal.
    pub slot: Arc<Slot>,
}

/// Per-key FIFO queues of blocked clients of one database.
#[derive(Debug, Default)]
pub struct Waiters {
    by_key: HashMap<Bytes, VecDeque<Arc<Waiter>>, ahash::RandomState>,
}

impl Waiters {
    /// Number of distinct blocked clients (those CLIENT UNBLOCK released
    /// no longer count, as Redis unblocks them at once).
    pub fn clients(&self) -> usize {
        let mut ids: Vec<u64> = self
            .by_key
            .values()
            .flatten()
            .filter(|w| w.slot.unblock_request() == 0)
            .map(|w| w.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// Appends `w` to the queue of each of its keys, and tells `db` that
    /// they are waited on.
    pub(super) fn add(&mut self, db: &mut Db, w: Arc<Waiter>) {
        for k in &w.keys {
            let q = self.by_key.entry(k.clone()).or_default();
            if !q.iter().any(|x| x.id == w.id) {
                q.push_back(w.clone());
            }
            db.set_waited_on(k, true);
        }
    }

    /// Removes client `id` from the queues of `keys`; a key nobody waits
    /// on any more is no longer marked so in `db`.
    pub(super) fn remove(&mut self, db: &mut Db, id: u64, keys: &[Bytes]) {
        for k in keys {
            if let Some(q) = self.by_key.get_mut(k) {
                q.retain(|w| w.id != id);
                if q.is_empty() {
                    self.by_key.remove(k);
                    db.set_waited_on(k, false);
                }
            }
        }
    }

    /// CLIENT UNBLOCK: marks client `id` as released with `how`
    /// ([`UNBLOCK_TIMEOUT`] or [`UNBLOCK_ERROR`]) and wakes it. False if it
    /// waits on no key here, or was released already. Once marked it is
    /// never served (the mark is set under this lock, which serving
    /// holds), so its connection's reply is the timeout or the error.
    pub(super) fn request_unblock(&self, id: u64, how: u8) -> bool {
        let Some(w) = self.by_key.values().flatten().find(|w| w.id == id) else {
            return false;
        };
        if w.slot.unblocked.swap(how, Ordering::AcqRel) != 0 {
            return false;
        }
        w.handle.set_blocked(false);
        w.slot.notify.notify_one();
        true
    }

    /// Asks every waiter to stop as `how`; how many were asked.
    pub(super) fn request_unblock_all(&self, how: u8) -> usize {
        let mut n = 0;
        for w in self.by_key.values().flatten() {
            if w.slot.unblocked.swap(how, Ordering::AcqRel) == 0 {
                w.handle.set_blocked(false);
                w.slot.notify.notify_one();
                n += 1;
            }
        }
        n
    }

    fn front(&self, key: &[u8]) -> Option<Arc<Waiter>> {
        self.by_key.get(key).and_then(|q| q.front().cloned())
    }

    /// Serves the waiters of every ready key of `db` (see the module
    /// header). Called when a command or EXEC ends, before its events are
    /// published.
    pub(super) fn serve_ready(&mut self, db: &mut Db) {
        // Serving may make more keys ready (BLMOVE pushes to its
        // destination): they are served in the same pass.
        let mut i = 0;
        while i < db.ready.len() {
            let key = db.ready[i].clone();
            i += 1;
            while let Some(w) = self.front(&key) {
                if w.slot.unblock_request() != 0 {
                    // Released by CLIENT UNBLOCK: its connection replies.
                    self.remove(db, w.id, &w.keys);
                    continue;
                }
                let Some(reply) = w.op.serve(db, &key, w.handle.protocol()) else {
                    break;
                };
                self.remove(db, w.id, &w.keys);
                if let Frame::Error(text) = &reply {
                    let _ = w.slot.error.set(text.clone());
                }
                w.slot.served.store(true, Ordering::Release);
                w.handle.push(reply.to_bytes(w.handle.protocol()));
                w.slot.notify.notify_one();
            }
        }
        db.ready.clear();
    }
}
