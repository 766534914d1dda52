//! Generic keyspace commands: DEL, UNLINK, EXISTS, TYPE, the EXPIRE family,
//! TTL / PTTL / EXPIRETIME / PEXPIRETIME, PERSIST, KEYS, SCAN, RENAME,
//! RENAMENX, RANDOMKEY, COPY, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB.
//!
//! Most are data handlers (they get the selected database locked, see
//! [`super::with_db`]); those that touch several databases (COPY ... DB,
//! SWAPDB, FLUSHALL) lock them in index order with [`super::take_db`].

use bytes::Bytes;

use super::{parse_i64, put_db, take_db, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::Frame;
use crate::store::encoding::StrEnc;
use crate::store::{Db, Value};
use crate::util::glob::Pattern;

/// DEL / UNLINK key [key ...]. UNLINK (and DEL under
/// `lazyfree-lazy-user-del`) frees large values in the background (see
/// `engine::lazyfree`).
pub fn del(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let lazy = c.shared.engine.lazyfree.user_del() || args[0].eq_ignore_ascii_case(b"unlink");
    let mut n = 0;
    for k in &args[1..] {
        if let Some(v) = db.delete_value(k) {
            n += 1;
            if lazy {
                c.shared.engine.lazyfree.free(v);
            }
        }
    }
    c.reply(Frame::Integer(n as i64));
}

/// EXISTS key [key ...] (duplicates count each time).
pub fn exists(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let n = args[1..]
        .iter()
        .filter(|k| db.get_no_touch(k).is_some())
        .count();
    c.reply(Frame::Integer(n as i64));
}

/// TYPE key.
pub fn type_(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let t = db.get_no_touch(&args[1]).map_or("none", |v| v.type_name());
    c.reply(Frame::simple(t));
}

/// Which unit and base an EXPIRE-family command uses.
#[derive(Clone, Copy)]
struct ExpireKind {
    name: &'static str,
    ms: bool,
    absolute: bool,
}

fn expire_generic(c: &mut Client, db: &mut Db, args: &[Bytes], kind: ExpireKind) {
    let Some(n) = parse_i64(&args[2]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        match a.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => {
                return c.error(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(a)
                ))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return c.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return c.error("ERR GT and LT options at the same time are not compatible");
    }
    let invalid = || format!("ERR invalid expire time in '{}' command", kind.name);
    let ms = if kind.ms {
        Some(n)
    } else {
        n.checked_mul(1000)
    };
    let Some(ms) = ms else {
        return c.error(invalid());
    };
    let at = if kind.absolute {
        Some(ms)
    } else {
        ms.checked_add(db.now as i64)
    };
    let Some(at) = at else {
        return c.error(invalid());
    };
    let key = &args[1];
    if !db.exists(key) {
        return c.reply(Frame::Integer(0));
    }
    let current = db.deadline(key);
    if (nx && current.is_some()) || (xx && current.is_none()) {
        return c.reply(Frame::Integer(0));
    }
    if gt || lt {
        // A key without TTL counts as an infinite one.
        let cur = current.map_or(i128::MAX, |d| d as i128);
        let new = at as i128;
        if (gt && new <= cur) || (lt && new >= cur) {
            return c.reply(Frame::Integer(0));
        }
    }
    if at <= db.now as i64 {
        db.remove(key);
        db.modified(key);
        db.notify(notify::GENERIC, "del", key);
        db.propagate_with(|| vec![Bytes::from_static(b"DEL"), crate::store::own(key)]);
    } else {
        db.set_deadline(key, at as u64);
        db.modified(key);
        db.notify(notify::GENERIC, "expire", key);
        // Absolute, so a reload does not extend the key's life.
        db.propagate_with(|| {
            vec![
                Bytes::from_static(b"PEXPIREAT"),
                crate::store::own(key),
                Bytes::from(at.to_string()),
            ]
        });
    }
    c.reply(Frame::Integer(1));
}

/// EXPIRE key seconds [NX|XX|GT|LT].
pub fn expire(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let k = ExpireKind {
        name: "expire",
        ms: false,
        absolute: false,
    };
    expire_generic(c, db, args, k)
}

/// PEXPIRE key milliseconds [NX|XX|GT|LT].
pub fn pexpire(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let k = ExpireKind {
        name: "pexpire",
        ms: true,
        absolute: false,
    };
    expire_generic(c, db, args, k)
}

/// EXPIREAT key unix-seconds [NX|XX|GT|LT].
pub fn expireat(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let k = ExpireKind {
        name: "expireat",
        ms: false,
        absolute: true,
    };
    expire_generic(c, db, args, k)
}

/// PEXPIREAT key unix-ms [NX|XX|GT|LT].
pub fn pexpireat(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let k = ExpireKind {
        name: "pexpireat",
        ms: true,
        absolute: true,
    };
    expire_generic(c, db, args, k)
}

fn ttl_generic(c: &mut Client, db: &mut Db, key: &[u8], ms: bool, absolute: bool) {
    if db.get_no_touch(key).is_none() {
        return c.reply(Frame::Integer(-2));
    }
    let Some(at) = db.deadline(key) else {
        return c.reply(Frame::Integer(-1));
    };
    let t = if absolute {
        at as i64
    } else {
        (at as i64 - db.now as i64).max(0)
    };
    c.reply(Frame::Integer(if ms { t } else { (t + 500) / 1000 }));
}

/// TTL key.
pub fn ttl(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    ttl_generic(c, db, &args[1], false, false)
}

/// PTTL key.
pub fn pttl(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    ttl_generic(c, db, &args[1], true, false)
}

/// EXPIRETIME key.
pub fn expiretime(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    ttl_generic(c, db, &args[1], false, true)
}

/// PEXPIRETIME key.
pub fn pexpiretime(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    ttl_generic(c, db, &args[1], true, true)
}

/// PERSIST key.
pub fn persist(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    if db.exists(key) && db.persist(key) {
        db.modified(key);
        db.notify(notify::GENERIC, "persist", key);
        return c.reply(Frame::Integer(1));
    }
    c.reply(Frame::Integer(0));
}

/// KEYS pattern.
pub fn keys(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let p = Pattern::new(&args[1]);
    let all = args[1][..] == b"*"[..];
    // Encoded as found (the count is known only at the end), and cut at
    // the output limit, as Redis's keysCommand stops on CLOSE_ASAP.
    let room = c.reply_room();
    let mut body = bytes::BytesMut::new();
    let mut n = 0;
    for k in db.all_keys().filter(|k| all || p.matches(k)) {
        crate::protocol::frame::put_bulk(&mut body, k);
        n += 1;
        if body.len() > room {
            return c.overflow();
        }
    }
    c.reply_array_header(n);
    c.reply_raw(&body);
}

/// Parses a SCAN-family cursor as Redis's `parseScanCursorOrReply` does,
/// with C's `strtoul`: an optional sign (a negative value wraps, so `-1`
/// is 2^64-1), decimal digits, nothing after them, no leading space, no
/// overflow. The empty string is cursor 0.
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    if arg.is_empty() {
        return Some(0);
    }
    let (negative, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { n.wrapping_neg() } else { n })
}

/// SCAN options: MATCH, COUNT (and TYPE for SCAN itself).
pub struct ScanOpts {
    /// MATCH pattern.
    pub pattern: Option<Pattern>,
    /// COUNT hint.
    pub count: usize,
    /// TYPE filter.
    pub typ: Option<Vec<u8>>,
}

/// Parses `[MATCH p] [COUNT n] [TYPE t]` from `args`; Err is the reply.
pub fn parse_scan_opts(args: &[Bytes], allow_type: bool) -> Result<ScanOpts, &'static str> {
    let mut o = ScanOpts {
        pattern: None,
        count: 10,
        typ: None,
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        let has_val = i + 1 < args.len();
        match a.as_slice() {
            b"count" if has_val => {
                let n = parse_i64(&args[i + 1]).ok_or(ERR_NOT_INTEGER)?;
                if n < 1 {
                    return Err(ERR_SYNTAX);
                }
                o.count = n as usize;
            }
            b"match" if has_val => {
                o.pattern = (args[i + 1][..] != b"*"[..]).then(|| Pattern::new(&args[i + 1]));
            }
            b"type" if has_val && allow_type => {
                o.typ = Some(args[i + 1].to_ascii_lowercase());
            }
            _ => return Err(ERR_SYNTAX),
        }
        i += 2;
    }
    Ok(o)
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
pub fn scan(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(cursor) = parse_cursor(&args[1]) else {
        return c.error("ERR invalid cursor");
    };
    let o = match parse_scan_opts(&args[2..], true) {
        Ok(o) => o,
        Err(e) => return c.error(e),
    };
    let mut out = Vec::new();
    let next = db.scan(cursor, o.count, |k, v| {
        if o.pattern.as_ref().is_some_and(|p| !p.matches(k)) {
            return;
        }
        if o.typ
            .as_ref()
            .is_some_and(|t| t != v.type_name().as_bytes())
        {
            return;
        }
        out.push(Frame::Bulk(Bytes::copy_from_slice(k)));
    });
    c.reply(Frame::Array(vec![
        Frame::bulk(next.to_string()),
        Frame::Array(out),
    ]));
}

fn rename_generic(c: &mut Client, db: &mut Db, args: &[Bytes], nx: bool) {
    let (src, dst) = (&args[1], &args[2]);
    if !db.exists(src) {
        return c.error("ERR no such key");
    }
    if src == dst {
        return c.reply(if nx { Frame::Integer(0) } else { Frame::ok() });
    }
    if db.exists(dst) {
        if nx {
            return c.reply(Frame::Integer(0));
        }
        db.remove(dst);
    }
    let deadline = db.deadline(src);
    let meta = db.meta(src);
    let Some(v) = db.remove(src) else {
        return c.error("ERR no such key");
    };
    db.set(dst, v, false);
    if let Some(m) = meta {
        db.set_meta(dst, m);
    }
    if let Some(at) = deadline {
        db.set_deadline(dst, at);
    }
    db.modified(src);
    db.modified(dst);
    db.notify(notify::GENERIC, "rename_from", src);
    db.notify(notify::GENERIC, "rename_to", dst);
    c.reply(if nx { Frame::Integer(1) } else { Frame::ok() });
}

/// RENAME key newkey.
pub fn rename(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    rename_generic(c, db, args, false)
}

/// RENAMENX key newkey.
pub fn renamenx(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    rename_generic(c, db, args, true)
}

/// RANDOMKEY.
pub fn randomkey(c: &mut Client, db: &mut Db, _args: &[Bytes]) {
    c.reply(db.random_key().map_or(Frame::Null, Frame::Bulk));
}

/// COPY source destination [DB destination-db] [REPLACE].
pub fn copy(c: &mut Client, args: &[Bytes]) {
    let mut target = c.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        if a == b"replace" {
            replace = true;
        } else if a == b"db" && i + 1 < args.len() {
            let Some(n) = parse_i64(&args[i + 1]) else {
                return c.error(ERR_NOT_INTEGER);
            };
            if n < 0 || n as usize >= c.shared.engine.store.len() || i32::try_from(n).is_err() {
                return c.error("ERR DB index is out of range");
            }
            target = n as usize;
            i += 1;
        } else {
            return c.error(ERR_SYNTAX);
        }
        i += 1;
    }
    let (src, dst) = (&args[1], &args[2]);
    if target == c.db && src == dst {
        return c.error("ERR source and destination objects are the same");
    }
    let (lo, hi) = (c.db.min(target), c.db.max(target));
    let src_is_lo = c.db == lo;
    let mut g_lo = take_db(c, lo);
    let mut second = if hi != lo { Some(take_db(c, hi)) } else { None };
    let result = match second.as_mut() {
        None => {
            let v = g_lo.get(src).cloned();
            let d = g_lo.deadline(src);
            let enc = g_lo.meta(src).map(|m| m.1);
            copy_into(&mut g_lo, dst, v.zip(enc), d, replace)
        }
        Some(g_hi) => {
            let (from, to): (&mut Db, &mut Db) = if src_is_lo {
                (&mut g_lo, &mut *g_hi)
            } else {
                (&mut *g_hi, &mut g_lo)
            };
            let v = from.get(src).cloned();
            let d = from.deadline(src);
            let enc = from.meta(src).map(|m| m.1);
            copy_into(to, dst, v.zip(enc), d, replace)
        }
    };
    if result == 1 {
        // Logged as given, in the client's database (SELECT precedes it).
        let cdb = c.db;
        let own_db = if g_lo.index == cdb {
            Some(&mut g_lo)
        } else {
            second.as_mut()
        };
        if let Some(g) = own_db {
            g.propagate(args.to_vec());
        }
    }
    if let Some(g) = second {
        put_db(c, g);
    }
    put_db(c, g_lo);
    c.reply(Frame::Integer(result));
}

/// COPY's write into the destination database.
fn copy_into(
    to: &mut Db,
    dst: &[u8],
    v: Option<(Value, StrEnc)>,
    deadline: Option<u64>,
    replace: bool,
) -> i64 {
    let Some((v, enc)) = v else { return 0 };
    if to.exists(dst) && !replace {
        return 0;
    }
    to.remove(dst);
    to.set(dst, v, false);
    // A copy keeps the representation (Redis's `dupStringObject`), not
    // the access clock.
    to.set_str_enc(dst, enc);
    if let Some(at) = deadline {
        to.set_deadline(dst, at);
    }
    to.modified(dst);
    to.notify(notify::GENERIC, "copy_to", dst);
    1
}

/// DBSIZE.
pub fn dbsize(c: &mut Client, db: &mut Db, _args: &[Bytes]) {
    c.reply(Frame::Integer(db.len() as i64));
}

/// Parses the optional ASYNC / SYNC flag of FLUSHDB / FLUSHALL.
/// FLUSHALL / FLUSHDB's mode: None for a syntax error, else whether the
/// old contents are freed in the background (ASYNC, or no mode under
/// `lazyfree-lazy-user-flush`).
fn flush_mode(c: &Client, args: &[Bytes]) -> Option<bool> {
    match args.len() {
        1 => Some(c.shared.engine.lazyfree.user_flush()),
        2 if args[1].eq_ignore_ascii_case(b"async") => Some(true),
        2 if args[1].eq_ignore_ascii_case(b"sync") => Some(false),
        _ => None,
    }
}

/// Frees a flushed database's contents: here, or off the command path for
/// ASYNC (Redis's `emptyDbAsync`).
fn free_flushed(c: &Client, f: crate::store::Flushed, background: bool) {
    if background {
        c.shared.engine.lazyfree.free_flushed(f);
    } else {
        drop(f);
    }
}

/// FLUSHDB [ASYNC|SYNC].
pub fn flushdb(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(background) = flush_mode(c, args) else {
        return c.error(ERR_SYNTAX);
    };
    let old = db.remove_all();
    free_flushed(c, old, background);
    flushed(c);
    c.reply(Frame::ok());
}

/// Tells tracking clients every key is invalid (Redis's
/// `trackingInvalidateKeysOnFlush`).
fn flushed(c: &Client) {
    let origin = c.tracking.origin(c.handle.id);
    c.shared.engine.tracking.flushed(origin);
}

/// FLUSHALL [ASYNC|SYNC].
pub fn flushall(c: &mut Client, args: &[Bytes]) {
    let Some(background) = flush_mode(c, args) else {
        return c.error(ERR_SYNTAX);
    };
    for i in 0..c.shared.engine.store.len() {
        let mut g = take_db(c, i);
        let old = g.remove_all();
        free_flushed(c, old, background);
        // Logged under the client's database, as Redis does (no SELECT
        // needed in a stream already there).
        if i == c.db {
            g.propagate(args.to_vec());
        }
        put_db(c, g);
    }
    flushed(c);
    save_after_flushall(c);
    c.reply(Frame::ok());
}

/// With save points set, Redis saves right after FLUSHALL
/// (`flushAllDataAndResetRDB`), so that a restart does not bring the
/// flushed data back from an older `dump.rdb`.
fn save_after_flushall(c: &Client) {
    if c.handle.id == super::INTERNAL_ID
        || !crate::persist::save::has_save_points(c.shared.as_ref())
    {
        return;
    }
    let busy = c.shared.persist.lock().rdb.in_progress;
    if c.tx.in_exec || c.in_script || busy {
        // The unit holds databases the snapshot must lock, or a background
        // save with older data runs: save once they are done.
        let shared = c.shared.clone();
        std::thread::spawn(move || crate::persist::save::save_after_bgsave(shared.as_ref()));
    } else {
        let _ = crate::persist::save::save(c.shared.as_ref());
    }
}

/// SWAPDB index1 index2.
pub fn swapdb(c: &mut Client, args: &[Bytes]) {
    let Some(a) = parse_i64(&args[1]) else {
        return c.error("ERR invalid first DB index");
    };
    let Some(b) = parse_i64(&args[2]) else {
        return c.error("ERR invalid second DB index");
    };
    let n = c.shared.engine.store.len() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return c.error("ERR DB index is out of range");
    }
    let (lo, hi) = (a.min(b) as usize, a.max(b) as usize);
    if lo != hi {
        let mut g1 = take_db(c, lo);
        let mut g2 = take_db(c, hi);
        g1.swap_data(&mut g2);
        g1.propagate(args.to_vec());
        put_db(c, g2);
        put_db(c, g1);
    }
    c.reply(Frame::ok());
}

/// (keys, keys with TTL, estimated bytes) of database `i`, for INFO; uses
/// the guard EXEC holds if any (locking it again would deadlock).
pub fn db_stats(c: &Client, i: usize) -> (usize, usize, usize) {
    if let Some(g) = c.tx.locks.get(i) {
        return (g.len(), g.expires_len(), g.used_memory());
    }
    let g = c.shared.engine.store.lock(i);
    (g.len(), g.expires_len(), g.used_memory())
}
