//! The command side of blocking (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
//! BZPOPMIN, BZPOPMAX, BZMPOP, XREAD and XREADGROUP with BLOCK): what a
//! blocked command does once its key has data ([`BlockOp`], the engine's
//! [`Serve`]), registering the client ([`block`]), and its timeout.
//!
//! The queues and the serving itself are the engine's
//! (`engine::blocking`): a write to a key someone waits on serves the
//! first waiter under the writer's database lock, pushing its reply into
//! its outbox. The blocked client's connection meanwhile only waits (the
//! [`Session`](crate::net::Session) is suspended): on the slot (served: go
//! on with the pipeline), on its deadline ([`block_timeout`]: remove the
//! waiter under the lock; if it was not served meanwhile, reply with the
//! timeout value), or on a disconnect (remove the waiter).
//!
//! The list and sorted-set pops here ([`list_pop`], [`zset_pop`]) are the
//! ones every command uses, blocking or not, so that a pop is recorded
//! and notified the same way whoever does it.

use std::sync::Arc;

use bytes::Bytes;

use super::Client;
use crate::config::notify;
use crate::engine::blocking::{
    Serve, Slot, Waiter, UNBLOCK_ERROR, UNBLOCK_ROLE_CHANGE, UNBLOCK_TIMEOUT,
};
use crate::protocol::{Frame, Protocol};
use crate::store::{own, Db, List, Value};

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
        /// Served as RPOPLPUSH (BRPOPLPUSH) rather than LMOVE (BLMOVE), in
        /// the log and the replication stream, as Redis propagates it.
        rpoplpush: bool,
    },
    /// BZPOPMIN / BZPOPMAX: `[key, member, score]`.
    ZPop { min: bool },
    /// BZMPOP: `[key, [[member, score], ...]]`.
    ZMPop { min: bool, count: usize },
    /// XREAD: entries after the given ID of the stream that got data,
    /// as `[[key, entries]]` (a map in RESP3). Served by
    /// `streams::serve_waiter`.
    XRead {
        /// Each key with the ID its entries must follow.
        ids: Vec<(Bytes, crate::store::stream::StreamId)>,
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

impl Serve for BlockOp {
    fn serve(&self, db: &mut Db, key: &Bytes, protocol: Protocol) -> Option<Frame> {
        match self {
            op @ (BlockOp::XRead { .. } | BlockOp::XReadGroup { .. }) => {
                super::streams::serve_waiter(db, key, op, protocol)
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
                rpoplpush,
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
                let as_cmd = move_cmd(key, dest, *from_left, *to_left, *rpoplpush);
                list_move(db, key, dest, *from_left, *to_left, Some(as_cmd)).map(Frame::Bulk)
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
                l.push(&e, left)
            }
        })
        .is_none()
    {
        let mut l = List::new();
        l.push(&e, left);
        db.set(key, Value::List(Box::new(l)), false);
    }
    if db.propagating {
        let name = if left { "LPUSH" } else { "RPUSH" };
        db.propagate_with(|| vec![Bytes::from_static(name.as_bytes()), own(key), e]);
    }
    db.modified(key);
    db.notify(notify::LIST, if left { "lpush" } else { "rpush" }, key);
}

/// Moves one element from the list at `src` to `dst` (pushed at
/// `to_left`) with the pop and push events. It is logged as `as_cmd`, or,
/// without one, as the running command itself (LMOVE, RPOPLPUSH): never as
/// the pop and the push it is made of, as Redis logs it. None if `src` is
/// not a non-empty list.
pub fn list_move(
    db: &mut Db,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    as_cmd: Option<Vec<Bytes>>,
) -> Option<Bytes> {
    let (mark, rewritten) = (db.prop.len(), db.prop_rewritten);
    let e = list_pop(db, src, from_left, 1)?.pop()?;
    list_push(db, dst, e.clone(), to_left);
    // Drop the pop's and the push's own records (the last two).
    db.prop.truncate(db.prop.len().saturating_sub(2).max(mark));
    db.prop_rewritten = rewritten;
    if let Some(cmd) = as_cmd {
        db.propagate(cmd);
    }
    Some(e)
}

/// `LMOVE src dst LEFT|RIGHT LEFT|RIGHT`, or `RPOPLPUSH src dst`.
pub fn move_cmd(
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    rpoplpush: bool,
) -> Vec<Bytes> {
    if rpoplpush {
        return vec![Bytes::from_static(b"RPOPLPUSH"), own(src), own(dst)];
    }
    let side = |left: bool| Bytes::from_static(if left { b"LEFT" } else { b"RIGHT" });
    vec![
        Bytes::from_static(b"LMOVE"),
        own(src),
        own(dst),
        side(from_left),
        side(to_left),
    ]
}

/// Pops up to `count` members with the lowest (`min`) or highest scores,
/// with the `zpopmin`/`zpopmax` event (and `del` if emptied). None if not a
/// non-empty sorted set.
pub fn zset_pop(db: &mut Db, key: &[u8], min: bool, count: usize) -> Option<Vec<(Bytes, f64)>> {
    // One lookup: a key of another type pops nothing.
    let (items, emptied) = db.update(key, |v| {
        let mut out = Vec::new();
        let Value::ZSet(z) = v else {
            return (out, false);
        };
        while out.len() < count.max(1) {
            let popped = if min {
                z.pop_first().map(|(m, s)| (m.to_bytes(), s))
            } else {
                z.last().map(|c| {
                    let (m, s) = z.entry(c);
                    let m = Bytes::copy_from_slice(m);
                    z.remove(&m);
                    (m, s)
                })
            };
            let Some(p) = popped else { break };
            out.push(p);
        }
        let emptied = z.is_empty();
        (out, emptied)
    })?;
    if items.is_empty() {
        return None;
    }
    db.modified(key);
    db.propagate_with(|| pop_cmd(if min { "ZPOPMIN" } else { "ZPOPMAX" }, key, items.len()));
    db.notify(notify::ZSET, if min { "zpopmin" } else { "zpopmax" }, key);
    if emptied {
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
    /// The blocked command's number (`flags::id`), set once it was
    /// counted: CLIENT UNBLOCK ERROR makes it a failed call.
    pub cmd: Option<usize>,
    /// The blocked command and how long its first run took: judged slow
    /// or not (SLOWLOG, LATENCY) once it is unblocked, as Redis does.
    pub call: Option<(&'static super::Spec, Vec<Bytes>, std::time::Duration)>,
}

/// Sleeps until `deadline`, or forever if None.
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Blocks the client on `keys` (or, inside EXEC, replies `timeout_reply`
/// at once). The registration happens under the database lock held by the
/// handler, right after it found no data, so no push can be missed.
pub fn block(
    c: &mut Client,
    db: &mut Db,
    keys: Vec<Bytes>,
    op: BlockOp,
    deadline: Option<tokio::time::Instant>,
    timeout_reply: Frame,
) {
    if c.tx.in_exec {
        return c.reply(timeout_reply);
    }
    // Earlier replies of the batch go first; the served reply is pushed
    // straight into the outbox.
    c.queue_replies();
    let keys: Vec<Bytes> = keys.iter().map(|k| own(k)).collect();
    let slot = Arc::new(Slot::default());
    let waiter = Waiter {
        id: c.handle.id,
        handle: c.handle.clone(),
        keys: keys.clone(),
        op: Box::new(op),
        slot: slot.clone(),
    };
    c.shared.engine.block(db, Arc::new(waiter));
    c.handle.set_blocked(true);
    c.blocked = Some(Blocked {
        slot,
        db: db.index,
        keys,
        deadline,
        timeout_reply,
        cmd: None,
        call: None,
    });
}

/// Ends a block that was not served (its deadline passed, or the client
/// left): removes the client from the wait queues, and says whether it was
/// served meanwhile after all (then its reply is already queued).
pub fn unblock(c: &mut Client, b: &Blocked) -> bool {
    let engine = &c.shared.engine;
    let mut g = engine.lock(b.db);
    engine.unblock(&mut g, c.handle.id, &b.keys);
    let served = b.slot.served.load(std::sync::atomic::Ordering::Acquire);
    c.durable_at = c.durable_at.max(engine.unlock(g));
    served
}

/// Redis's reply to a client blocked while the server became a replica.
pub const UNBLOCKED_ROLE_CHANGE: &str =
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";

/// Redis's reply to a client released by CLIENT UNBLOCK ERROR.
pub const UNBLOCKED_ERROR: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// Called when a blocked client's deadline passes or CLIENT UNBLOCK
/// released it: removes it from the wait queues and replies with the
/// timeout value (or, for CLIENT UNBLOCK ERROR, Redis's `-UNBLOCKED`
/// error, a failed call of the command), unless it was served in the
/// meantime.
pub fn block_timeout(c: &mut Client) {
    let Some(mut b) = c.blocked.take() else {
        return;
    };
    if let Some((spec, args, took)) = b.call.take() {
        super::observe::record_if_slow(c, spec, &args, took);
    }
    if unblock(c, &b) {
        return;
    }
    if b.slot.unblock_request() == UNBLOCK_ROLE_CHANGE {
        c.reply(Frame::error(UNBLOCKED_ROLE_CHANGE));
        c.failed = false;
        super::observe::blocked_failed(c, b.cmd);
        c.close_after_reply = true;
    } else if b.slot.unblock_request() == UNBLOCK_ERROR {
        c.reply(Frame::error(UNBLOCKED_ERROR));
        // Counted here, not as the next command's failure.
        c.failed = false;
        super::observe::blocked_failed(c, b.cmd);
    } else {
        c.reply(b.timeout_reply);
    }
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]: 1 if the client was blocked
/// on keys and is now released, else 0.
pub fn client_unblock(c: &mut Client, args: &[Bytes]) {
    if args.len() > 4 {
        return c.error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        ));
    }
    let how = match args.get(3) {
        None => UNBLOCK_TIMEOUT,
        Some(a) if a.eq_ignore_ascii_case(b"timeout") => UNBLOCK_TIMEOUT,
        Some(a) if a.eq_ignore_ascii_case(b"error") => UNBLOCK_ERROR,
        Some(_) => return c.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let Some(id) = super::parse_i64(&args[2]) else {
        return c.error(super::ERR_NOT_INTEGER);
    };
    let released = u64::try_from(id).is_ok_and(|id| c.shared.engine.request_unblock(id, how));
    c.reply(Frame::Integer(i64::from(released)));
}
