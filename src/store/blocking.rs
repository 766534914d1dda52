//! Clients blocked on keys (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
//! BZPOPMIN, BZPOPMAX, BZMPOP, XREAD and XREADGROUP with BLOCK) and how
//! they are served.
//!
//! # Design
//!
//! A blocking command that finds no data registers a [`Waiter`] in its
//! database's [`Waiters`]: one FIFO queue per key, in blocking order. The
//! waiter says what to do when data comes ([`BlockOp`]) and carries the
//! client's outbox handle and a [`Slot`] (served flag + `Notify`).
//!
//! Any write to a key with waiters marks it *ready* ([`super::Db::modified`]).
//! When the writing command (or the whole EXEC) ends, still under the
//! database lock, [`serve_ready`] serves the waiters of each ready key in
//! FIFO order, as Redis's `handleClientsBlockedOnKeys` does: it performs the
//! pop *on the waiter's behalf*, pushes the reply into the waiter's outbox,
//! removes the waiter from all its keys and signals its slot. Serving in the
//! writer's context, atomically with the write, is what makes the order
//! exact: first blocked, first served, and nobody can steal the element
//! between the push and the wake-up. A push inside MULTI is served after
//! EXEC because EXEC keeps the lock until the end of the queue.
//!
//! The blocked client's connection task only waits (see
//! `net::connection`): on the slot (served: go on with the
//! pipeline), on its deadline (remove the waiter under the lock; if it was
//! not served meanwhile, reply with the timeout value), or on a disconnect
//! (remove the waiter).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

use super::{notify, own, Db, List, Value};
use crate::net::handle::ClientHandle;
use crate::protocol::Frame;

/// What a blocked command does once its key has data.
#[derive(Debug, Clone)]
pub enum BlockOp {
    /// BLPOP / BRPOP: `[key, element]`.
    Pop { left: bool },
    /// BLMPOP: `[key, [elements]]`.
    MPop { left: bool, count: usize },
    /// BLMOVE / BRPOPLPUSH: the element, pushed to `dest`.
    Move {
        from_left: bool,
        to_left: bool,
        dest: Bytes,
    },
    /// BZPOPMIN / BZPOPMAX: `[key, member, score]`.
    ZPop { min: bool },
    /// BZMPOP: `[key, [[member, score], ...]]`.
    ZMPop { min: bool, count: usize },
    /// XREAD: entries after the given ID of the stream that got data,
    /// as `[[key, entries]]` (a map in RESP3). Served by
    /// `command::streams::serve_waiter`.
    XRead {
        /// Each key with the ID its entries must follow.
        ids: Vec<(Bytes, super::stream::StreamId)>,
        /// At most this many entries.
        count: usize,
    },
    /// XREADGROUP with `>`: new entries for the group, or an error if the
    /// group or the stream is gone.
    XReadGroup {
        /// The group.
        group: Bytes,
        /// The consumer (created when served if missing).
        consumer: Bytes,
        /// Deliver without adding to the PELs.
        noack: bool,
        /// At most this many entries.
        count: usize,
    },
}

/// Wake-up signal shared between a waiter and its connection task.
#[derive(Debug, Default)]
pub struct Slot {
    /// Set (under the database lock) once the waiter has been served.
    pub served: AtomicBool,
    /// Notified once served.
    pub notify: Notify,
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
    pub op: BlockOp,
    /// Its wake-up signal.
    pub slot: Arc<Slot>,
}

/// Per-key FIFO queues of blocked clients of one database.
#[derive(Debug, Default)]
pub struct Waiters {
    by_key: HashMap<Bytes, VecDeque<Arc<Waiter>>, ahash::RandomState>,
}

impl Waiters {
    /// True if some client waits on `key`.
    pub fn has(&self, key: &[u8]) -> bool {
        !self.by_key.is_empty() && self.by_key.contains_key(key)
    }

    /// The keys with waiters.
    pub fn keys(&self) -> Vec<Bytes> {
        self.by_key.keys().cloned().collect()
    }

    /// Number of distinct blocked clients.
    pub fn clients(&self) -> usize {
        let mut ids: Vec<u64> = self.by_key.values().flatten().map(|w| w.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// True when nobody is blocked.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Appends `w` to the queue of each of its keys.
    pub fn add(&mut self, w: Arc<Waiter>) {
        for k in &w.keys {
            let q = self.by_key.entry(k.clone()).or_default();
            if !q.iter().any(|x| x.id == w.id) {
                q.push_back(w.clone());
            }
        }
    }

    /// Removes client `id` from the queues of `keys`.
    pub fn remove(&mut self, id: u64, keys: &[Bytes]) {
        for k in keys {
            if let Some(q) = self.by_key.get_mut(k) {
                q.retain(|w| w.id != id);
                if q.is_empty() {
                    self.by_key.remove(k);
                }
            }
        }
    }

    fn front(&self, key: &[u8]) -> Option<Arc<Waiter>> {
        self.by_key.get(key).and_then(|q| q.front().cloned())
    }
}

/// Serves the waiters of every ready key of `db` (see the module header).
/// Called when a command or EXEC ends, before events are published.
pub fn serve_ready(db: &mut Db) {
    let mut i = 0;
    while i < db.ready.len() {
        let key = db.ready[i].clone();
        i += 1;
        while let Some(w) = db.waiters.front(&key) {
            let Some(reply) = try_serve(db, &key, &w) else {
                break;
            };
            db.waiters.remove(w.id, &w.keys);
            w.slot.served.store(true, Ordering::Release);
            w.handle.push(reply.to_bytes(w.handle.protocol()));
            w.slot.notify.notify_one();
        }
    }
    db.ready.clear();
}

/// Pops for `w` from `key` if the key has the data it wants.
fn try_serve(db: &mut Db, key: &Bytes, w: &Waiter) -> Option<Frame> {
    match &w.op {
        op @ (BlockOp::XRead { .. } | BlockOp::XReadGroup { .. }) => {
            crate::command::streams::serve_waiter(db, key, op, w.handle.protocol())
        }
        BlockOp::Pop { left } => {
            let e = list_pop(db, key, *left, 1)?.pop()?;
            Some(Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Bulk(e)]))
        }
        BlockOp::MPop { left, count } => {
            let items = list_pop(db, key, *left, *count)?;
            Some(Frame::Array(vec![
                Frame::Bulk(key.clone()),
                Frame::Array(items.into_iter().map(Frame::Bulk).collect()),
            ]))
        }
        BlockOp::Move {
            from_left,
            to_left,
            dest,
        } => {
            if !matches!(db.get(key), Some(Value::List(_))) {
                return None;
            }
            match db.get(dest) {
                None | Some(Value::List(_)) => {}
                Some(_) => {
                    return Some(Frame::error(crate::store::WRONGTYPE));
                }
            }
            let e = list_pop(db, key, *from_left, 1)?.pop()?;
            list_push(db, dest, e.clone(), *to_left);
            Some(Frame::Bulk(e))
        }
        BlockOp::ZPop { min } => {
            let mut items = zset_pop(db, key, *min, 1)?;
            let (m, s) = items.pop()?;
            Some(Frame::Array(vec![
                Frame::Bulk(key.clone()),
                Frame::Bulk(m),
                Frame::Double(s),
            ]))
        }
        BlockOp::ZMPop { min, count } => {
            let items = zset_pop(db, key, *min, *count)?;
            Some(Frame::Array(vec![
                Frame::Bulk(key.clone()),
                Frame::Array(
                    items
                        .into_iter()
                        .map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), Frame::Double(s)]))
                        .collect(),
                ),
            ]))
        }
    }
}

/// Pops up to `count` elements of the list at `key` with the events Redis
/// emits (`lpop`/`rpop`, then `del` if emptied). None if not a non-empty list.
pub fn list_pop(db: &mut Db, key: &[u8], left: bool, count: usize) -> Option<Vec<Bytes>> {
    if !matches!(db.get(key), Some(Value::List(l)) if !l.is_empty()) {
        return None;
    }
    let items = db.update(key, |v| {
        let mut out = Vec::new();
        if let Value::List(l) = v {
            while out.len() < count.max(1) {
                match l.pop(left) {
                    Some(e) => out.push(e),
                    None => break,
                }
            }
        }
        out
    })?;
    db.modified(key);
    // Logged as the pop itself, whatever command (LPOP, LMOVE, BLPOP, a
    // served waiter, ...) did it: deterministic on reload.
    db.propagate_with(|| pop_cmd(if left { "LPOP" } else { "RPOP" }, key, items.len()));
    db.notify(notify::LIST, if left { "lpop" } else { "rpop" }, key);
    if !db.exists(key) {
        db.notify(notify::GENERIC, "del", key);
    }
    Some(items)
}

/// `NAME key` or `NAME key count`: how a pop of `n` elements is logged.
fn pop_cmd(name: &'static str, key: &[u8], n: usize) -> Vec<Bytes> {
    let mut v = vec![Bytes::from_static(name.as_bytes()), own(key)];
    if n > 1 {
        v.push(Bytes::from(n.to_string()));
    }
    v
}

/// Pushes onto the list at `key` (created if absent; the caller checked the
/// type) with its `lpush`/`rpush` event.
pub fn list_push(db: &mut Db, key: &[u8], e: Bytes, left: bool) {
    if db
        .update(key, |v| {
            if let Value::List(l) = v {
                l.push(e.clone(), left)
            }
        })
        .is_none()
    {
        let mut l = List::new();
        l.push(e.clone(), left);
        db.set(key, Value::List(Box::new(l)), false);
    }
    if db.propagating {
        let name = if left { "LPUSH" } else { "RPUSH" };
        db.propagate_with(|| vec![Bytes::from_static(name.as_bytes()), own(key), e]);
    }
    db.modified(key);
    db.notify(notify::LIST, if left { "lpush" } else { "rpush" }, key);
}

/// Pops up to `count` members with the lowest (`min`) or highest scores,
/// with the `zpopmin`/`zpopmax` event (and `del` if emptied). None if not a
/// non-empty sorted set.
pub fn zset_pop(db: &mut Db, key: &[u8], min: bool, count: usize) -> Option<Vec<(Bytes, f64)>> {
    if !matches!(db.get(key), Some(Value::ZSet(z)) if !z.is_empty()) {
        return None;
    }
    let items = db.update(key, |v| {
        let mut out = Vec::new();
        if let Value::ZSet(z) = v {
            while out.len() < count.max(1) {
                let c = if min { z.first() } else { z.last() };
                let Some(c) = c else { break };
                let (m, s) = z.entry(c);
                let m = m.clone();
                z.remove(&m);
                out.push((m, s));
            }
        }
        out
    })?;
    db.modified(key);
    db.propagate_with(|| pop_cmd(if min { "ZPOPMIN" } else { "ZPOPMAX" }, key, items.len()));
    db.notify(notify::ZSET, if min { "zpopmin" } else { "zpopmax" }, key);
    if !db.exists(key) {
        db.notify(notify::GENERIC, "del", key);
    }
    Some(items)
}

/// What a blocked client's connection keeps while it waits.
#[derive(Debug)]
pub struct Blocked {
    /// Shared with the [`Waiter`]: served flag and wake-up.
    pub slot: Arc<Slot>,
    /// The database the keys are in.
    pub db: usize,
    /// The keys waited on.
    pub keys: Vec<Bytes>,
    /// When to give up (None = forever).
    pub deadline: Option<tokio::time::Instant>,
    /// The reply on timeout (null array, or null bulk for BLMOVE).
    pub timeout_reply: Frame,
}

/// Sleeps until `deadline`, or forever if None.
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
