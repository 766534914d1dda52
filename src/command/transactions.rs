//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! - MULTI puts a [`Multi`] in the client's [`TxState`]; from then on
//!   [`super::run`] queues every command except the transaction commands
//!   (MULTI, EXEC, DISCARD, WATCH, QUIT, RESET), replying `+QUEUED`, after
//!   the checks Redis makes first. A command rejected by those checks
//!   (unknown, wrong arity, subscribed context) flags the transaction and
//!   EXEC then answers `EXECABORT`.
//! - WATCH records, per key, the key's version counter in its database
//!   ([`crate::store::Db::watch`]); every write bumps it
//!   ([`crate::store::Db::modified`]). EXEC fails with a null array if a
//!   version moved, or if a key that was alive at WATCH time has expired.
//! - EXEC runs its queue as one engine unit (`engine::Locks`): the
//!   databases the transaction can touch (the selected one and those of
//!   watched keys; all of them if the queue holds SELECT, SWAPDB, MOVE,
//!   COPY or FLUSHALL) are locked in index order before the first command
//!   and released after the last (the data handlers find them through
//!   [`super::with_db`]). No other client can observe an intermediate
//!   state; the transaction's effects are logged as one `MULTI ... EXEC`;
//!   clients blocked on keys it pushed to are served after it, as in Redis.

use bytes::Bytes;

use super::{lookup, put_db, run_spec, take_db, with_db, Spec};
use crate::command::Client;
use crate::engine::Locks;
use crate::protocol::Frame;
use crate::store::own;

/// A transaction being queued.
#[derive(Debug, Default)]
pub struct Multi {
    /// The queued commands, arguments copied out of the read buffer.
    pub queue: Vec<Vec<Bytes>>,
    /// Set when a command was rejected while queueing (EXEC aborts).
    pub dirty: bool,
    /// A queued command runs a script (EVAL, FCALL, ...): EXEC takes the
    /// keyspace gate exclusively.
    pub runs_script: bool,
}

/// One WATCHed key.
#[derive(Debug, Clone)]
pub struct WatchedKey {
    /// Database of the key.
    pub db: usize,
    /// The key (own allocation).
    pub key: Bytes,
    /// Its version when watched.
    pub version: u64,
    /// True if it was already expired when watched.
    pub expired: bool,
}

/// A client's transaction state (a field of [`Client`]).
#[derive(Default)]
pub struct TxState {
    /// Some while between MULTI and EXEC / DISCARD.
    pub multi: Option<Multi>,
    /// Keys watched since the last EXEC / DISCARD / UNWATCH.
    pub watched: Vec<WatchedKey>,
    /// The databases a running EXEC holds, and its effects so far.
    pub locks: Locks,
    /// True while EXEC runs its queue (blocking commands do not block).
    pub in_exec: bool,
}

/// True for the commands that run immediately even inside MULTI.
pub fn runs_in_multi(name: &str) -> bool {
    matches!(
        name,
        "multi" | "exec" | "discard" | "watch" | "quit" | "reset"
    )
}

/// Queues a command of a client in MULTI.
pub fn queue(c: &mut Client, spec: &Spec, args: &[Bytes]) {
    if let Some(m) = &mut c.tx.multi {
        m.runs_script |= super::flags::of(spec) & super::flags::RUNS_SCRIPT != 0;
        m.queue.push(args.iter().map(|a| own(a)).collect());
    }
}

/// Marks the transaction as failed (a command was rejected while queueing).
pub fn flag(c: &mut Client) {
    if let Some(m) = &mut c.tx.multi {
        m.dirty = true;
    }
}

/// A rejected EXEC: discard the transaction and reply as Redis's
/// `execCommandAbort`.
pub fn abort_exec(c: &mut Client, msg: &str) {
    c.tx.multi = None;
    unwatch_all(c);
    let msg = msg.strip_prefix("ERR ").unwrap_or(msg);
    c.error(format!("EXECABORT Transaction discarded because of: {msg}"));
}

/// Drops every WATCH of the client.
pub fn unwatch_all(c: &mut Client) {
    if c.tx.watched.is_empty() {
        return;
    }
    let mut watched = std::mem::take(&mut c.tx.watched);
    watched.sort_by_key(|w| w.db);
    let mut i = 0;
    while i < watched.len() {
        let dbi = watched[i].db;
        let mut g = take_db(c, dbi);
        while i < watched.len() && watched[i].db == dbi {
            g.unwatch(&watched[i].key);
            i += 1;
        }
        put_db(c, g);
    }
}

/// Cleans up after a disconnected client: its WATCHes and a pending block.
pub fn client_gone(c: &mut Client) {
    c.tx.multi = None;
    unwatch_all(c);
    if let Some(b) = c.blocked.take() {
        super::blocking::unblock(c, &b);
    }
}

/// RESET's part: leave MULTI and drop WATCHes.
pub fn reset(c: &mut Client) {
    c.tx.multi = None;
    unwatch_all(c);
}

/// MULTI.
pub fn multi(c: &mut Client, _args: &[Bytes]) {
    if c.tx.multi.is_some() {
        return c.error("ERR MULTI calls can not be nested");
    }
    c.tx.multi = Some(Multi::default());
    c.reply(Frame::ok());
}

/// DISCARD.
pub fn discard(c: &mut Client, _args: &[Bytes]) {
    if c.tx.multi.take().is_none() {
        return c.error("ERR DISCARD without MULTI");
    }
    unwatch_all(c);
    c.reply(Frame::ok());
}

/// WATCH key [key ...].
pub fn watch(c: &mut Client, args: &[Bytes]) {
    if c.tx.multi.is_some() {
        return c.error("ERR WATCH inside MULTI is not allowed");
    }
    let dbi = c.db;
    with_db(c, |c, db| {
        for k in &args[1..] {
            if c.tx.watched.iter().any(|w| w.db == dbi && w.key == k) {
                continue;
            }
            let version = db.watch(k);
            let expired = db.is_logically_expired(k);
            c.tx.watched.push(WatchedKey {
                db: dbi,
                key: own(k),
                version,
                expired,
            });
        }
    });
    c.reply(Frame::ok());
}

/// UNWATCH.
pub fn unwatch(c: &mut Client, _args: &[Bytes]) {
    unwatch_all(c);
    c.reply(Frame::ok());
}

/// Commands whose presence in a queue makes EXEC lock every database: a
/// script may SELECT any of them.
fn touches_other_dbs(c: &Client, args: &[Bytes]) -> bool {
    lookup(c, args).is_some_and(|s| {
        ["select", "swapdb", "move", "copy", "flushall"].contains(&s.name)
            || super::flags::of(s) & super::flags::RUNS_SCRIPT != 0
    })
}

/// EXEC.
pub fn exec(c: &mut Client, args: &[Bytes]) {
    let Some(m) = c.tx.multi.take() else {
        return c.error("ERR EXEC without MULTI");
    };
    if m.dirty {
        unwatch_all(c);
        return c.error("EXECABORT Transaction discarded because of previous errors.");
    }
    // A transaction that runs a script has the keyspace to itself, as the
    // script alone would: once the script runs past
    // `busy-reply-threshold`, the others get -BUSY and SCRIPT KILL or
    // SHUTDOWN NOSAVE can end it (as in Redis). The batch's shared hold
    // goes first. If another holds the gate (a batch on another worker),
    // the transaction runs under a shared hold as any other; if a script
    // took the gate in between, EXEC waits for it as a command that finds
    // the gate closed does (postponed, the transaction kept).
    let exclusive_wanted = m.runs_script && !c.in_script && c.handle.id != super::INTERNAL_ID;
    let shared = exclusive_wanted.then(|| c.shared.clone());
    let _exclusive = if let Some(shared) = &shared {
        let gate = &shared.engine.gate;
        c.gate = None;
        match gate.try_exclusive() {
            Some(x) => Some(x),
            None => match gate.enter() {
                Some(entry) => {
                    c.gate = Some(entry);
                    None
                }
                None => {
                    c.tx.multi = Some(m);
                    return super::postpone(c, args);
                }
            },
        }
    } else {
        None
    };
    // Lock what the transaction can touch (the engine locks in index order).
    let dbs: Vec<usize> = if m.queue.iter().any(|a| touches_other_dbs(c, a)) {
        (0..c.shared.engine.store.len()).collect()
    } else {
        let mut v = vec![c.db];
        v.extend(c.tx.watched.iter().map(|w| w.db));
        v
    };
    c.shared.engine.begin_unit(&mut c.tx.locks, dbs);
    let broken = c.tx.watched.iter().any(|w| {
        c.tx.locks.get(w.db).is_some_and(|g| {
            g.watch_version(&w.key) != w.version || (!w.expired && g.is_logically_expired(&w.key))
        })
    });
    unwatch_all(c);
    if broken {
        release(c);
        return c.reply(Frame::NullArray);
    }
    let mut header = bytes::BytesMut::new();
    crate::protocol::frame::put_int_line(&mut header, b'*', m.queue.len() as i64);
    c.reply_raw(&header);
    c.tx.in_exec = true;
    for args in &m.queue {
        let Some(spec) = lookup(c, args) else {
            c.error("ERR unknown command");
            continue;
        };
        // ACLs may have changed since the command was queued.
        if let Some(err) = crate::command::auth::check_queued(c, args) {
            c.error(err);
            continue;
        }
        c.shared
            .stats
            .total_commands_processed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        c.failed = false;
        run_spec(c, spec, args);
        super::observe::after_command(c, spec, args);
    }
    c.tx.in_exec = false;
    release(c);
}

/// Ends the unit EXEC runs: its effects go to the AOF as MULTI ... EXEC,
/// then its databases are released (serving blocked clients, publishing).
fn release(c: &mut Client) {
    let off = c.shared.engine.end_unit(&mut c.tx.locks);
    c.durable_at = c.durable_at.max(off);
}
