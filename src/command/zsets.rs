//! Sorted set commands: ZADD, ZREM, ZCARD, ZSCORE, ZMSCORE, ZINCRBY,
//! ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT, ZRANGE (BYSCORE, BYLEX, REV, LIMIT,
//! WITHSCORES) and its older forms, ZRANGESTORE, ZREMRANGEBY*, ZPOPMIN,
//! ZPOPMAX, ZMPOP, the blocking BZPOPMIN, BZPOPMAX, BZMPOP, and ZSCAN.
//!
//! The structure is `store::zset` (hash map + skiplist with spans): every
//! range here is one O(log n) descent to its first element plus a walk.
//! Scores are replied as doubles (`%.17g`; RESP3 `,`).

use bytes::Bytes;

use super::blocking::{self, block, BlockOp};
use super::lists::parse_timeout;
use super::strings::parse_f64;
use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::{Frame, Protocol};
use crate::store::zset::{Cursor, LexBound, LexRange, ScoreRange};
use crate::store::{Db, Value, ZSet, WRONGTYPE};

const ERR_FLOAT: &str = "ERR value is not a valid float";
const ERR_MINMAX: &str = "ERR min or max is not a float";
const ERR_LEX: &str = "ERR min or max not valid string range item";

/// The sorted set at `key` (read-only): Ok(None) if missing, Err after
/// replying WRONGTYPE.
pub(super) fn read<'a>(c: &mut Client, db: &'a mut Db, key: &[u8]) -> Result<Option<&'a ZSet>, ()> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => {
            c.error(WRONGTYPE);
            Err(())
        }
    }
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...].
pub fn zadd(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    zadd_generic(c, db, args, false)
}

/// ZINCRBY key increment member.
pub fn zincrby(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    zadd_generic(c, db, args, true)
}

fn zadd_generic(c: &mut Client, db: &mut Db, args: &[Bytes], zincrby: bool) {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, zincrby);
    let mut i = 2;
    if !zincrby {
        // Compared in place: the first argument that is no flag (the
        // score) is not copied for it.
        while let Some(a) = args.get(i) {
            let is = |name: &[u8]| a.eq_ignore_ascii_case(name);
            let flag = if is(b"nx") {
                &mut nx
            } else if is(b"xx") {
                &mut xx
            } else if is(b"gt") {
                &mut gt
            } else if is(b"lt") {
                &mut lt
            } else if is(b"ch") {
                &mut ch
            } else if is(b"incr") {
                &mut incr
            } else {
                break;
            };
            *flag = true;
            i += 1;
        }
    }
    let rest = &args[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return c.error(ERR_SYNTAX);
    }
    if nx && xx {
        return c.error("ERR XX and NX options at the same time are not compatible");
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return c.error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && rest.len() > 2 {
        return c.error("ERR INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        let Some(s) = parse_f64(&p[0]) else {
            return c.error(ERR_FLOAT);
        };
        pairs.push((s, &p[1]));
    }
    let key = &args[1];
    match db.get(key) {
        None => {
            if xx {
                return c.reply(if incr { Frame::Null } else { Frame::Integer(0) });
            }
            db.set(key, Value::ZSet(Box::default()), false);
        }
        Some(Value::ZSet(_)) => {}
        Some(_) => return c.error(WRONGTYPE),
    }
    let outcome = db
        .update(key, |v| {
            let Value::ZSet(z) = v else {
                return Err("");
            };
            let (mut added, mut changed) = (0i64, 0i64);
            let mut last: Option<f64> = None;
            for (score, m) in &pairs {
                let cur = z.score(m);
                match cur {
                    Some(old) => {
                        if nx {
                            continue;
                        }
                        let new = if incr { old + score } else { *score };
                        if new.is_nan() {
                            return Err("ERR resulting score is not a number (NaN)");
                        }
                        if (gt && new <= old) || (lt && new >= old) {
                            continue;
                        }
                        last = Some(new);
                        if new != old {
                            z.insert(m, new);
                            changed += 1;
                        }
                    }
                    None => {
                        if xx {
                            continue;
                        }
                        z.insert(m, *score);
                        added += 1;
                        last = Some(*score);
                    }
                }
            }
            Ok((added, changed, last))
        })
        .unwrap_or(Err(""));
    match outcome {
        Err(e) => {
            if !e.is_empty() {
                c.error(e);
            }
        }
        Ok((added, changed, last)) => {
            if added + changed > 0 {
                db.modified(key);
                db.notify(notify::ZSET, if incr { "zincr" } else { "zadd" }, key);
            }
            if incr {
                c.reply(last.map_or(Frame::Null, Frame::Double));
            } else {
                c.reply(Frame::Integer(if ch { added + changed } else { added }));
            }
        }
    }
}

/// ZREM key member [member ...].
pub fn zrem(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    if read(c, db, key).is_err() {
        return;
    }
    let n = db
        .update(key, |v| match v {
            Value::ZSet(z) => args[2..].iter().filter(|m| z.remove(m)).count(),
            _ => 0,
        })
        .unwrap_or(0);
    if n > 0 {
        db.changed(key, notify::ZSET, "zrem");
    }
    c.reply(Frame::Integer(n as i64));
}

/// ZCARD key.
pub fn zcard(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(z) = read(c, db, &args[1]) {
        let n = z.map_or(0, |z| z.len());
        c.reply(Frame::Integer(n as i64));
    }
}

/// ZSCORE key member.
pub fn zscore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(z) = read(c, db, &args[1]) {
        let f = z
            .and_then(|z| z.score(&args[2]))
            .map_or(Frame::Null, Frame::Double);
        c.reply(f);
    }
}

/// ZMSCORE key member [member ...].
pub fn zmscore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(z) = read(c, db, &args[1]) {
        let out = args[2..]
            .iter()
            .map(|m| {
                z.and_then(|z| z.score(m))
                    .map_or(Frame::Null, Frame::Double)
            })
            .collect();
        c.reply(Frame::Array(out));
    }
}

fn rank_generic(c: &mut Client, db: &mut Db, args: &[Bytes], rev: bool) {
    if let Ok(z) = read(c, db, &args[1]) {
        let f = z
            .and_then(|z| {
                z.rank(&args[2])
                    .map(|r| if rev { z.len() - 1 - r } else { r })
            })
            .map_or(Frame::Null, |r| Frame::Integer(r as i64));
        c.reply(f);
    }
}

/// ZRANK key member.
pub fn zrank(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    rank_generic(c, db, args, false)
}

/// ZREVRANK key member.
pub fn zrevrank(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    rank_generic(c, db, args, true)
}

/// One score bound as Redis's `zslParseRange` reads it: C's `strtod` over
/// the whole text after an optional `(`, so hex, leading blanks and an empty
/// number (`(` alone means "above 0") are accepted; NaN is not.
fn parse_score_bound(a: &[u8]) -> Option<(f64, bool)> {
    let (text, exclusive) = match a.split_first() {
        Some((b'(', rest)) => (rest, true),
        _ => (a, false),
    };
    let v = match crate::util::strtod::strtod(text) {
        Some((v, used)) if used == text.len() => v,
        None if text.is_empty() => 0.0,
        _ => return None,
    };
    (!v.is_nan()).then_some((v, exclusive))
}

/// Parses `min max` score bounds (`(` for exclusive, `-inf`, `+inf`).
pub fn parse_score_range(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
    let (min, minex) = parse_score_bound(min)?;
    let (max, maxex) = parse_score_bound(max)?;
    Some(ScoreRange {
        min,
        minex,
        max,
        maxex,
    })
}

fn parse_lex_bound(a: &[u8]) -> Option<LexBound> {
    match a.first() {
        Some(b'-') if a.len() == 1 => Some(LexBound::Min),
        Some(b'+') if a.len() == 1 => Some(LexBound::Max),
        Some(b'[') => Some(LexBound::Value(Bytes::copy_from_slice(&a[1..]), true)),
        Some(b'(') => Some(LexBound::Value(Bytes::copy_from_slice(&a[1..]), false)),
        _ => None,
    }
}

/// Parses `min max` lex bounds (`-`, `+`, `[x`, `(x`).
pub fn parse_lex_range(min: &[u8], max: &[u8]) -> Option<LexRange> {
    Some(LexRange {
        min: parse_lex_bound(min)?,
        max: parse_lex_bound(max)?,
    })
}

/// ZCOUNT key min max.
pub fn zcount(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(r) = parse_score_range(&args[2], &args[3]) else {
        return c.error(ERR_MINMAX);
    };
    if let Ok(z) = read(c, db, &args[1]) {
        let n = z.map_or(0, |z| match (z.first_in_score(&r), z.last_in_score(&r)) {
            (Some(a), Some(b)) if !r.is_empty() => (z.rank_of(b) + 1).saturating_sub(z.rank_of(a)),
            _ => 0,
        });
        c.reply(Frame::Integer(n as i64));
    }
}

/// ZLEXCOUNT key min max.
pub fn zlexcount(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(r) = parse_lex_range(&args[2], &args[3]) else {
        return c.error(ERR_LEX);
    };
    if let Ok(z) = read(c, db, &args[1]) {
        let n = z.map_or(0, |z| match (z.first_in_lex(&r), z.last_in_lex(&r)) {
            (Some(a), Some(b)) if !r.is_empty() => (z.rank_of(b) + 1).saturating_sub(z.rank_of(a)),
            _ => 0,
        });
        c.reply(Frame::Integer(n as i64));
    }
}

/// What a range selects by.
#[derive(Clone, Copy, PartialEq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed range request.
struct RangeReq {
    by: By,
    rev: bool,
    /// (offset, count): count < 0 means all.
    limit: Option<(i64, i64)>,
    withscores: bool,
}

/// Walks from `start` (backwards when `rev`) while `within(member, score)`
/// holds, skipping `skip` entries, then taking `count` (negative: all):
/// the BYSCORE and BYLEX forms of a range.
fn walk(
    z: &ZSet,
    start: Option<Cursor>,
    rev: bool,
    mut skip: i64,
    mut count: i64,
    out: &mut Vec<(Bytes, f64)>,
    within: impl Fn(&[u8], f64) -> bool,
) {
    let mut cur = start;
    while let Some(p) = cur {
        let (m, sc) = z.entry(p);
        if !within(m, sc) || count == 0 {
            break;
        }
        if skip > 0 {
            skip -= 1;
        } else {
            out.push((Bytes::copy_from_slice(m), sc));
            count -= 1;
        }
        cur = if rev { z.prev(p) } else { z.next(p) };
    }
}

/// Collects the members a range selects, in reply order.
fn collect(
    z: &ZSet,
    req: &RangeReq,
    a: &[u8],
    b: &[u8],
) -> Result<Vec<(Bytes, f64)>, &'static str> {
    let mut out = Vec::new();
    let (offset, count) = req.limit.unwrap_or((0, -1));
    if offset < 0 {
        return Ok(out);
    }
    match req.by {
        By::Rank => {
            let (Some(s), Some(e)) = (parse_i64(a), parse_i64(b)) else {
                return Err(ERR_NOT_INTEGER);
            };
            let len = z.len() as i64;
            let mut s = if s < 0 { s + len } else { s };
            let mut e = if e < 0 { e + len } else { e };
            s = s.max(0);
            if s > e || s >= len {
                return Ok(out);
            }
            if e >= len {
                e = len - 1;
            }
            let n = (e - s + 1) as usize;
            let mut cur = if req.rev {
                z.at_rank((len - 1 - s) as usize)
            } else {
                z.at_rank(s as usize)
            };
            while let Some(p) = cur {
                if out.len() >= n {
                    break;
                }
                let (m, sc) = z.entry(p);
                out.push((Bytes::copy_from_slice(m), sc));
                cur = if req.rev { z.prev(p) } else { z.next(p) };
            }
        }
        By::Score => {
            let (min, max) = if req.rev { (b, a) } else { (a, b) };
            let Some(r) = parse_score_range(min, max) else {
                return Err(ERR_MINMAX);
            };
            if r.is_empty() {
                return Ok(out);
            }
            let start = if req.rev {
                z.last_in_score(&r)
            } else {
                z.first_in_score(&r)
            };
            walk(z, start, req.rev, offset, count, &mut out, |_, sc| {
                ZSet::score_in(&r, sc)
            });
        }
        By::Lex => {
            let (min, max) = if req.rev { (b, a) } else { (a, b) };
            let Some(r) = parse_lex_range(min, max) else {
                return Err(ERR_LEX);
            };
            if r.is_empty() {
                return Ok(out);
            }
            let start = if req.rev {
                z.last_in_lex(&r)
            } else {
                z.first_in_lex(&r)
            };
            walk(z, start, req.rev, offset, count, &mut out, |m, _| {
                ZSet::lex_in(&r, m)
            });
        }
    }
    Ok(out)
}

/// Encodes members (with scores) as ZRANGE replies them.
pub(super) fn members_reply(proto: Protocol, items: Vec<(Bytes, f64)>, withscores: bool) -> Frame {
    if !withscores {
        return Frame::Array(items.into_iter().map(|(m, _)| Frame::Bulk(m)).collect());
    }
    if proto == Protocol::Resp3 {
        Frame::Array(
            items
                .into_iter()
                .map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), Frame::Double(s)]))
                .collect(),
        )
    } else {
        let mut out = Vec::with_capacity(items.len() * 2);
        for (m, s) in items {
            out.push(Frame::Bulk(m));
            out.push(Frame::Double(s));
        }
        Frame::Array(out)
    }
}

/// Parses ZRANGE-style options from `opts`; `fixed` is the form's implied
/// (by, rev) for the older commands.
fn parse_range_opts(
    opts: &[Bytes],
    fixed: Option<(By, bool)>,
    store: bool,
) -> Result<RangeReq, &'static str> {
    let mut req = RangeReq {
        by: By::Rank,
        rev: false,
        limit: None,
        withscores: false,
    };
    if let Some((by, rev)) = fixed {
        req.by = by;
        req.rev = rev;
    }
    let mut i = 0;
    while i < opts.len() {
        let a = opts[i].to_ascii_lowercase();
        match a.as_slice() {
            b"withscores" if !store && fixed.is_none_or(|f| f.0 != By::Lex) => {
                req.withscores = true
            }
            b"limit" if i + 2 < opts.len() => {
                let (Some(o), Some(n)) = (parse_i64(&opts[i + 1]), parse_i64(&opts[i + 2])) else {
                    return Err(ERR_NOT_INTEGER);
                };
                req.limit = Some((o, n));
                i += 2;
            }
            b"byscore" if fixed.is_none() && req.by == By::Rank => req.by = By::Score,
            b"bylex" if fixed.is_none() && req.by == By::Rank => req.by = By::Lex,
            b"rev" if fixed.is_none() => req.rev = true,
            _ => return Err(ERR_SYNTAX),
        }
        i += 1;
    }
    if req.limit.is_some() && req.by == By::Rank {
        return Err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if req.withscores && req.by == By::Lex {
        return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    Ok(req)
}

fn range_command(c: &mut Client, db: &mut Db, args: &[Bytes], fixed: Option<(By, bool)>) {
    let req = match parse_range_opts(&args[4..], fixed, false) {
        Ok(r) => r,
        Err(e) => return c.error(e),
    };
    let proto = c.protocol;
    let Ok(z) = read(c, db, &args[1]) else {
        return;
    };
    let items = match z {
        None => {
            // Bounds are still validated on a missing key.
            let empty = ZSet::default();
            collect(&empty, &req, &args[2], &args[3])
        }
        Some(z) => collect(z, &req, &args[2], &args[3]),
    };
    match items {
        Ok(items) => c.reply(members_reply(proto, items, req.withscores)),
        Err(e) => c.error(e),
    }
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES].
pub fn zrange(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    range_command(c, db, args, None)
}

/// ZREVRANGE key start stop [WITHSCORES].
pub fn zrevrange(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    range_command(c, db, args, Some((By::Rank, true)))
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count].
pub fn zrangebyscore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    range_command(c, db, args, Some((By::Score, false)))
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count].
pub fn zrevrangebyscore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    range_command(c, db, args, Some((By::Score, true)))
}

/// ZRANGEBYLEX key min max [LIMIT offset count].
pub fn zrangebylex(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    range_command(c, db, args, Some((By::Lex, false)))
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count].
pub fn zrevrangebylex(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    range_command(c, db, args, Some((By::Lex, true)))
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count].
pub fn zrangestore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let req = match parse_range_opts(&args[5..], None, true) {
        Ok(r) => r,
        Err(e) => return c.error(e),
    };
    let Ok(z) = read(c, db, &args[2]) else {
        return;
    };
    let empty = ZSet::default();
    let items = match collect(z.unwrap_or(&empty), &req, &args[3], &args[4]) {
        Ok(i) => i,
        Err(e) => return c.error(e),
    };
    let dst = &args[1];
    let n = items.len();
    if n == 0 {
        if db.delete(dst) {
            // `del` was emitted by delete.
        }
        return c.reply(Frame::Integer(0));
    }
    let mut nz = ZSet::default();
    for (m, s) in items {
        nz.insert(&m, s);
    }
    db.set(dst, Value::ZSet(Box::new(nz)), false);
    db.modified(dst);
    db.notify(notify::ZSET, "zrangestore", dst);
    c.reply(Frame::Integer(n as i64));
}

fn remrange(c: &mut Client, db: &mut Db, args: &[Bytes], by: By, event: &'static str) {
    let req = RangeReq {
        by,
        rev: false,
        limit: None,
        withscores: false,
    };
    // Validate bounds first, as Redis does.
    match by {
        By::Score if parse_score_range(&args[2], &args[3]).is_none() => return c.error(ERR_MINMAX),
        By::Lex if parse_lex_range(&args[2], &args[3]).is_none() => return c.error(ERR_LEX),
        By::Rank if parse_i64(&args[2]).is_none() || parse_i64(&args[3]).is_none() => {
            return c.error(ERR_NOT_INTEGER)
        }
        _ => {}
    }
    let key = &args[1];
    let Ok(z) = read(c, db, key) else {
        return;
    };
    let Some(z) = z else {
        return c.reply(Frame::Integer(0));
    };
    let items = match collect(z, &req, &args[2], &args[3]) {
        Ok(i) => i,
        Err(e) => return c.error(e),
    };
    let n = items.len();
    if n > 0 {
        db.update(key, |v| {
            if let Value::ZSet(z) = v {
                for (m, _) in &items {
                    z.remove(m);
                }
            }
        });
        db.modified(key);
        db.notify(notify::ZSET, event, key);
        if !db.exists(key) {
            db.notify(notify::GENERIC, "del", key);
        }
    }
    c.reply(Frame::Integer(n as i64));
}

/// ZREMRANGEBYSCORE key min max.
pub fn zremrangebyscore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    remrange(c, db, args, By::Score, "zremrangebyscore")
}

/// ZREMRANGEBYRANK key start stop.
pub fn zremrangebyrank(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    remrange(c, db, args, By::Rank, "zremrangebyrank")
}

/// ZREMRANGEBYLEX key min max.
pub fn zremrangebylex(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    remrange(c, db, args, By::Lex, "zremrangebylex")
}

fn pop_generic(c: &mut Client, db: &mut Db, args: &[Bytes], min: bool) {
    if args.len() > 3 {
        return c.error(ERR_SYNTAX);
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            None => return c.error(ERR_NOT_INTEGER),
            Some(n) if n < 0 => return c.error("ERR value is out of range, must be positive"),
            Some(n) => Some(n as usize),
        },
    };
    let key = &args[1];
    let Ok(z) = read(c, db, key) else {
        return;
    };
    if z.is_none() || count == Some(0) {
        return c.reply(Frame::Array(vec![]));
    }
    let items = blocking::zset_pop(db, key, min, count.unwrap_or(1)).unwrap_or_default();
    let proto = c.protocol;
    if count.is_some() && proto == Protocol::Resp3 {
        c.reply(members_reply(proto, items, true));
    } else {
        let mut out = Vec::new();
        for (m, s) in items {
            out.push(Frame::Bulk(m));
            out.push(Frame::Double(s));
        }
        c.reply(Frame::Array(out));
    }
}

/// ZPOPMIN key [count].
pub fn zpopmin(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    pop_generic(c, db, args, true)
}

/// ZPOPMAX key [count].
pub fn zpopmax(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    pop_generic(c, db, args, false)
}

fn parse_minmax(a: &[u8]) -> Option<bool> {
    match a.to_ascii_lowercase().as_slice() {
        b"min" => Some(true),
        b"max" => Some(false),
        _ => None,
    }
}

fn first_nonempty(c: &mut Client, db: &mut Db, keys: &[Bytes]) -> Result<Option<Bytes>, ()> {
    for k in keys {
        if read(c, db, k)?.is_some() {
            return Ok(Some(k.clone()));
        }
    }
    Ok(None)
}

fn zmpop_reply(key: Bytes, items: Vec<(Bytes, f64)>) -> Frame {
    Frame::Array(vec![
        Frame::Bulk(key),
        Frame::Array(
            items
                .into_iter()
                .map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), Frame::Double(s)]))
                .collect(),
        ),
    ])
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count].
pub fn zmpop(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some((keys, min, count)) = super::lists::parse_mpop_with(c, &args[1..], parse_minmax)
    else {
        return;
    };
    let Ok(k) = first_nonempty(c, db, &keys) else {
        return;
    };
    match k {
        None => c.reply(Frame::NullArray),
        Some(k) => {
            let items = blocking::zset_pop(db, &k, min, count).unwrap_or_default();
            c.reply(zmpop_reply(k, items));
        }
    }
}

fn bzpop_generic(c: &mut Client, db: &mut Db, args: &[Bytes], min: bool) {
    let Some(deadline) = parse_timeout(c, &args[args.len() - 1]) else {
        return;
    };
    let keys = &args[1..args.len() - 1];
    let Ok(k) = first_nonempty(c, db, keys) else {
        return;
    };
    if let Some(k) = k {
        if let Some((m, s)) = blocking::zset_pop(db, &k, min, 1).and_then(|mut v| v.pop()) {
            return c.reply(Frame::Array(vec![
                Frame::Bulk(k),
                Frame::Bulk(m),
                Frame::Double(s),
            ]));
        }
    }
    block(
        c,
        db,
        keys.to_vec(),
        BlockOp::ZPop { min },
        deadline,
        Frame::NullArray,
    );
}

/// BZPOPMIN key [key ...] timeout.
pub fn bzpopmin(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    bzpop_generic(c, db, args, true)
}

/// BZPOPMAX key [key ...] timeout.
pub fn bzpopmax(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    bzpop_generic(c, db, args, false)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count].
pub fn bzmpop(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(deadline) = parse_timeout(c, &args[1]) else {
        return;
    };
    let Some((keys, min, count)) = super::lists::parse_mpop_with(c, &args[2..], parse_minmax)
    else {
        return;
    };
    let Ok(k) = first_nonempty(c, db, &keys) else {
        return;
    };
    if let Some(k) = k {
        let items = blocking::zset_pop(db, &k, min, count).unwrap_or_default();
        return c.reply(zmpop_reply(k, items));
    }
    block(
        c,
        db,
        keys,
        BlockOp::ZMPop { min, count },
        deadline,
        Frame::NullArray,
    );
}
