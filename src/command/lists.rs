//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE,
//! LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH, LMPOP, and
//! the blocking BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP.
//!
//! A blocking command first behaves as its non-blocking form; if no key has
//! data it registers the client with [`block`] (see `engine::blocking` for
//! how it is served), unless it runs inside EXEC, where it answers at once
//! as if it had timed out, like Redis.

use std::time::Duration;

use bytes::Bytes;

use super::blocking::{self, block, BlockOp};
use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::Frame;
use crate::store::{own, Db, List, Value, WRONGTYPE};

/// Checks that `key` is a list or missing; replies WRONGTYPE otherwise.
fn check_list(c: &mut Client, db: &mut Db, key: &[u8]) -> Result<bool, ()> {
    match db.get(key) {
        None => Ok(false),
        Some(Value::List(_)) => Ok(true),
        Some(_) => {
            c.error(WRONGTYPE);
            Err(())
        }
    }
}

/// The list at `key` (read-only), or None; Err after replying WRONGTYPE.
fn read_list<'a>(c: &mut Client, db: &'a mut Db, key: &[u8]) -> Result<Option<&'a List>, ()> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => {
            c.error(WRONGTYPE);
            Err(())
        }
    }
}

fn push_generic(c: &mut Client, db: &mut Db, args: &[Bytes], left: bool, only_existing: bool) {
    let key = &args[1];
    let Ok(exists) = check_list(c, db, key) else {
        return;
    };
    if !exists && only_existing {
        return c.reply(Frame::Integer(0));
    }
    if !exists {
        db.set(key, Value::List(Box::default()), false);
    }
    let len = db
        .update(key, |v| {
            if let Value::List(l) = v {
                for e in &args[2..] {
                    l.push(e, left);
                }
                l.len()
            } else {
                0
            }
        })
        .unwrap_or(0);
    db.modified(key);
    db.notify(notify::LIST, if left { "lpush" } else { "rpush" }, key);
    c.reply(Frame::Integer(len as i64));
}

/// LPUSH key element [element ...].
pub fn lpush(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    push_generic(c, db, args, true, false)
}

/// RPUSH key element [element ...].
pub fn rpush(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    push_generic(c, db, args, false, false)
}

/// LPUSHX key element [element ...].
pub fn lpushx(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    push_generic(c, db, args, true, true)
}

/// RPUSHX key element [element ...].
pub fn rpushx(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    push_generic(c, db, args, false, true)
}

/// Parses a positive count as Redis's `getPositiveLongFromObjectOrReply`.
fn parse_count(c: &mut Client, arg: &[u8]) -> Option<usize> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Some(n as usize),
        _ => {
            c.error("ERR value is out of range, must be positive");
            None
        }
    }
}

fn pop_generic(c: &mut Client, db: &mut Db, args: &[Bytes], left: bool) {
    if args.len() > 3 {
        return c.error(format!(
            "ERR wrong number of arguments for '{}' command",
            if left { "lpop" } else { "rpop" }
        ));
    }
    let count = if args.len() == 3 {
        match parse_count(c, &args[2]) {
            Some(n) => Some(n),
            None => return,
        }
    } else {
        None
    };
    let key = &args[1];
    let Ok(exists) = check_list(c, db, key) else {
        return;
    };
    if !exists {
        return c.reply(if count.is_some() {
            Frame::NullArray
        } else {
            Frame::Null
        });
    }
    if count == Some(0) {
        return c.reply(Frame::Array(vec![]));
    }
    let items = blocking::list_pop(db, key, left, count.unwrap_or(1)).unwrap_or_default();
    match count {
        None => c.reply(items.into_iter().next().map_or(Frame::Null, Frame::Bulk)),
        Some(_) => c.reply(Frame::Array(items.into_iter().map(Frame::Bulk).collect())),
    }
}

/// LPOP key [count].
pub fn lpop(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    pop_generic(c, db, args, true)
}

/// RPOP key [count].
pub fn rpop(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    pop_generic(c, db, args, false)
}

/// LLEN key.
pub fn llen(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(l) = read_list(c, db, &args[1]) {
        let n = l.map_or(0, |l| l.len());
        c.reply(Frame::Integer(n as i64));
    }
}

/// Clamps Redis-style (start, end) indices to a range of a `len` list.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { start + len } else { start };
    let mut e = if end < 0 { end + len } else { end };
    s = s.max(0);
    if s >= len || s > e || e < 0 {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as usize, e as usize))
}

/// LRANGE key start stop.
pub fn lrange(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let (Some(s), Some(e)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let Ok(l) = read_list(c, db, &args[1]) else {
        return;
    };
    match l.and_then(|l| clamp_range(s, e, l.len()).map(|r| (l, r))) {
        None => c.reply(Frame::Array(vec![])),
        Some((l, (s, e))) => c.reply_bulks(e - s + 1, l.iter_from(s)),
    }
}

/// Turns a possibly negative index into a position.
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i + len as i64 } else { i };
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

/// LINDEX key index.
pub fn lindex(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(i) = parse_i64(&args[2]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let Ok(l) = read_list(c, db, &args[1]) else {
        return;
    };
    let f = l
        .and_then(|l| index(i, l.len()).and_then(|i| l.get(i).map(own)))
        .map_or(Frame::Null, Frame::Bulk);
    c.reply(f);
}

/// LSET key index element.
pub fn lset(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(i) = parse_i64(&args[2]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let key = &args[1];
    let Ok(exists) = check_list(c, db, key) else {
        return;
    };
    if !exists {
        return c.error("ERR no such key");
    }
    let ok = db
        .update(key, |v| match v {
            Value::List(l) => index(i, l.len()).is_some_and(|i| l.set(i, &args[3])),
            _ => false,
        })
        .unwrap_or(false);
    if !ok {
        return c.error("ERR index out of range");
    }
    db.modified(key);
    db.notify(notify::LIST, "lset", key);
    c.reply(Frame::ok());
}

/// LINSERT key BEFORE|AFTER pivot element.
pub fn linsert(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let after = match args[2].to_ascii_lowercase().as_slice() {
        b"after" => true,
        b"before" => false,
        _ => return c.error(ERR_SYNTAX),
    };
    let key = &args[1];
    let Ok(exists) = check_list(c, db, key) else {
        return;
    };
    if !exists {
        return c.reply(Frame::Integer(0));
    }
    let n = db
        .update(key, |v| match v {
            Value::List(l) => match l.position(&args[3]) {
                Some(p) => {
                    l.insert(if after { p + 1 } else { p }, &args[4]);
                    l.len() as i64
                }
                None => -1,
            },
            _ => -1,
        })
        .unwrap_or(-1);
    if n > 0 {
        db.modified(key);
        db.notify(notify::LIST, "linsert", key);
    }
    c.reply(Frame::Integer(n));
}

/// LREM key count element.
pub fn lrem(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(n) = parse_i64(&args[2]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let key = &args[1];
    let Ok(exists) = check_list(c, db, key) else {
        return;
    };
    if !exists {
        return c.reply(Frame::Integer(0));
    }
    let removed = db
        .update(key, |v| match v {
            Value::List(l) => l.remove_eq(&args[3], n.unsigned_abs() as usize, n < 0),
            _ => 0,
        })
        .unwrap_or(0);
    if removed > 0 {
        db.changed(key, notify::LIST, "lrem");
    }
    c.reply(Frame::Integer(removed as i64));
}

/// LTRIM key start stop.
pub fn ltrim(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let (Some(s), Some(e)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let key = &args[1];
    let Ok(exists) = check_list(c, db, key) else {
        return;
    };
    if !exists {
        return c.reply(Frame::ok());
    }
    db.update(key, |v| {
        if let Value::List(l) = v {
            let r = clamp_range(s, e, l.len());
            l.trim(r);
        }
    });
    db.changed(key, notify::LIST, "ltrim");
    c.reply(Frame::ok());
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len].
pub fn lpos(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut i = 3;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        let Some(v) = args.get(i + 1) else {
            return c.error(ERR_SYNTAX);
        };
        let Some(n) = parse_i64(v) else {
            return c.error(ERR_NOT_INTEGER);
        };
        match a.as_slice() {
            b"rank" => {
                if n == 0 {
                    return c.error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
                }
                rank = n;
            }
            b"count" => {
                if n < 0 {
                    return c.error("ERR COUNT can't be negative");
                }
                count = Some(n);
            }
            b"maxlen" => {
                if n < 0 {
                    return c.error("ERR MAXLEN can't be negative");
                }
                maxlen = n;
            }
            _ => return c.error(ERR_SYNTAX),
        }
        i += 2;
    }
    let Ok(l) = read_list(c, db, &args[1]) else {
        return;
    };
    let Some(l) = l else {
        return c.reply(if count.is_some() {
            Frame::Array(vec![])
        } else {
            Frame::Null
        });
    };
    let len = l.len();
    let want = match count {
        Some(0) => usize::MAX,
        // Redis 7.0 negates the rank in a long: LLONG_MIN stays negative
        // (from the tail, the first match qualifies) and its COUNT test,
        // `matches-rank+1 >= count`, overflows and never holds.
        Some(_) if rank == i64::MIN => usize::MAX,
        Some(n) => n as usize,
        None => 1,
    };
    let mut skip = if rank == i64::MIN {
        0
    } else {
        rank.unsigned_abs() - 1
    };
    let mut found = Vec::new();
    let limit = if maxlen == 0 {
        len
    } else {
        (maxlen as usize).min(len)
    };
    // One walk in the direction of the rank (indexing each position would
    // walk the chunks again every time).
    let walk: Box<dyn Iterator<Item = &[u8]>> = if rank > 0 {
        Box::new(l.iter())
    } else {
        Box::new(l.iter_rev_from(0))
    };
    for (step, e) in walk.take(limit).enumerate() {
        let idx = if rank > 0 { step } else { len - 1 - step };
        if e == &args[2][..] {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(Frame::Integer(idx as i64));
            if found.len() >= want {
                break;
            }
        }
    }
    if count.is_some() {
        c.reply(Frame::Array(found));
    } else {
        c.reply(found.pop().unwrap_or(Frame::Null));
    }
}

/// Parses LEFT / RIGHT.
fn parse_side(a: &[u8]) -> Option<bool> {
    match a.to_ascii_lowercase().as_slice() {
        b"left" => Some(true),
        b"right" => Some(false),
        _ => None,
    }
}

/// The move of LMOVE / RPOPLPUSH (and their blocking forms when data is
/// there): Ok(Some(element)), Ok(None) if the source is empty, Err after
/// replying WRONGTYPE.
fn do_move(
    c: &mut Client,
    db: &mut Db,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    as_cmd: Option<Vec<Bytes>>,
) -> Result<Option<Bytes>, ()> {
    // As lmoveGenericCommand: the destination's type is checked only when
    // there is something to move (an empty source replies nil, or blocks).
    if !check_list(c, db, src)? {
        return Ok(None);
    }
    check_list(c, db, dst)?;
    Ok(blocking::list_move(
        db, src, dst, from_left, to_left, as_cmd,
    ))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT.
pub fn lmove(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let (Some(from), Some(to)) = (parse_side(&args[3]), parse_side(&args[4])) else {
        return c.error(ERR_SYNTAX);
    };
    if let Ok(e) = do_move(c, db, &args[1], &args[2], from, to, None) {
        c.reply(e.map_or(Frame::Null, Frame::Bulk));
    }
}

/// RPOPLPUSH source destination.
pub fn rpoplpush(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(e) = do_move(c, db, &args[1], &args[2], false, true, None) {
        c.reply(e.map_or(Frame::Null, Frame::Bulk));
    }
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` of LMPOP / BLMPOP starting
/// at `args[0]` = numkeys. Returns (keys, left, count).
fn parse_mpop(
    c: &mut Client,
    args: &[Bytes],
    sides: fn(&[u8]) -> Option<bool>,
) -> Option<(Vec<Bytes>, bool, usize)> {
    let n = match parse_i64(&args[0]) {
        Some(n) if n > 0 => n as usize,
        Some(_) => {
            c.error("ERR numkeys should be greater than 0");
            return None;
        }
        None => {
            c.error("ERR numkeys should be greater than 0");
            return None;
        }
    };
    if 1 + n >= args.len() {
        c.error(ERR_SYNTAX);
        return None;
    }
    let keys: Vec<Bytes> = args[1..=n].to_vec();
    let Some(left) = sides(&args[1 + n]) else {
        c.error(ERR_SYNTAX);
        return None;
    };
    let mut count = 1;
    let rest = &args[2 + n..];
    match rest.len() {
        0 => {}
        2 if rest[0].eq_ignore_ascii_case(b"count") => match parse_i64(&rest[1]) {
            Some(k) if k > 0 => count = k as usize,
            _ => {
                c.error("ERR count should be greater than 0");
                return None;
            }
        },
        _ => {
            c.error(ERR_SYNTAX);
            return None;
        }
    }
    Some((keys, left, count))
}

/// The first non-empty list among `keys`: Ok(Some(key)), Err after WRONGTYPE.
fn first_nonempty(c: &mut Client, db: &mut Db, keys: &[Bytes]) -> Result<Option<Bytes>, ()> {
    for k in keys {
        if check_list(c, db, k)? {
            return Ok(Some(k.clone()));
        }
    }
    Ok(None)
}

fn mpop_reply(key: Bytes, items: Vec<Bytes>) -> Frame {
    Frame::Array(vec![
        Frame::Bulk(key),
        Frame::Array(items.into_iter().map(Frame::Bulk).collect()),
    ])
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count].
pub fn lmpop(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some((keys, left, count)) = parse_mpop(c, &args[1..], parse_side) else {
        return;
    };
    let Ok(k) = first_nonempty(c, db, &keys) else {
        return;
    };
    match k {
        None => c.reply(Frame::NullArray),
        Some(k) => {
            let items = blocking::list_pop(db, &k, left, count).unwrap_or_default();
            c.reply(mpop_reply(k, items));
        }
    }
}

/// Parses a blocking timeout (seconds, fractional; 0 = forever) as Redis's
/// `getTimeoutFromObjectOrReply` does: `strtold` rules (hex, `inf`), then
/// milliseconds truncated to a `long long`. A value whose milliseconds do
/// not fit (`1e20`, `inf`) becomes LLONG_MIN in that conversion, so Redis
/// calls it negative; a fraction of a millisecond truncates to 0, forever.
pub fn parse_timeout(c: &mut Client, arg: &[u8]) -> Option<Option<tokio::time::Instant>> {
    // string2ld: no leading space, the whole text a number, not NaN, and
    // shorter than MAX_LONG_DOUBLE_CHARS.
    let parsed = match crate::util::strtod::strtod(arg) {
        Some((v, n))
            if n == arg.len()
                && arg.len() < 5 * 1024
                && !arg.first().is_some_and(u8::is_ascii_whitespace)
                && !v.is_nan() =>
        {
            Some(v)
        }
        _ => None,
    };
    let Some(t) = parsed else {
        c.error("ERR timeout is not a float or out of range");
        return None;
    };
    let ms = (t * 1000.0).trunc();
    // `(long long)` of a value out of range gives LLONG_MIN on x86.
    // (`i64::MAX as f64` is 2^63, the first value that does not fit.)
    if !(0.0..i64::MAX as f64).contains(&ms) {
        c.error("ERR timeout is negative");
        return None;
    }
    // Past about 30 years, as good as forever (and clear of Instant's range).
    if ms == 0.0 || ms > 1e12 {
        return Some(None);
    }
    Some(Some(
        tokio::time::Instant::now() + Duration::from_millis(ms as u64),
    ))
}

fn bpop_generic(c: &mut Client, db: &mut Db, args: &[Bytes], left: bool) {
    let Some(deadline) = parse_timeout(c, &args[args.len() - 1]) else {
        return;
    };
    let keys = &args[1..args.len() - 1];
    let Ok(k) = first_nonempty(c, db, keys) else {
        return;
    };
    if let Some(k) = k {
        let e = blocking::list_pop(db, &k, left, 1).and_then(|mut v| v.pop());
        if let Some(e) = e {
            return c.reply(Frame::Array(vec![Frame::Bulk(k), Frame::Bulk(e)]));
        }
    }
    block(
        c,
        db,
        keys.to_vec(),
        BlockOp::Pop { left },
        deadline,
        Frame::NullArray,
    );
}

/// BLPOP key [key ...] timeout.
pub fn blpop(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    bpop_generic(c, db, args, true)
}

/// BRPOP key [key ...] timeout.
pub fn brpop(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    bpop_generic(c, db, args, false)
}

fn bmove_generic(
    c: &mut Client,
    db: &mut Db,
    args: &[Bytes],
    from_left: bool,
    to_left: bool,
    t: &[u8],
    rpoplpush: bool,
) {
    let Some(deadline) = parse_timeout(c, t) else {
        return;
    };
    // Served at once, it is logged as the non-blocking form (Redis's
    // rewriteClientCommandVector in lmoveGenericCommand).
    let as_cmd = blocking::move_cmd(&args[1], &args[2], from_left, to_left, rpoplpush);
    let Ok(e) = do_move(c, db, &args[1], &args[2], from_left, to_left, Some(as_cmd)) else {
        return;
    };
    if let Some(e) = e {
        return c.reply(Frame::Bulk(e));
    }
    let op = BlockOp::Move {
        from_left,
        to_left,
        dest: own(&args[2]),
        rpoplpush,
    };
    // Inside MULTI (Redis's CLIENT_DENY_BLOCKING) the reply is a null
    // bulk, addReplyNull; a real timeout replies a null array.
    if c.tx.in_exec {
        return c.reply(Frame::Null);
    }
    block(c, db, vec![args[1].clone()], op, deadline, Frame::NullArray);
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout.
pub fn blmove(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let (Some(from), Some(to)) = (parse_side(&args[3]), parse_side(&args[4])) else {
        return c.error(ERR_SYNTAX);
    };
    bmove_generic(c, db, args, from, to, &args[5], false)
}

/// BRPOPLPUSH source destination timeout.
pub fn brpoplpush(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    bmove_generic(c, db, args, false, true, &args[3], true)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count].
pub fn blmpop(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(deadline) = parse_timeout(c, &args[1]) else {
        return;
    };
    let Some((keys, left, count)) = parse_mpop(c, &args[2..], parse_side) else {
        return;
    };
    let Ok(k) = first_nonempty(c, db, &keys) else {
        return;
    };
    if let Some(k) = k {
        let items = blocking::list_pop(db, &k, left, count).unwrap_or_default();
        return c.reply(mpop_reply(k, items));
    }
    block(
        c,
        db,
        keys,
        BlockOp::MPop { left, count },
        deadline,
        Frame::NullArray,
    );
}

/// Shared with zsets: the numkeys/keys/where/COUNT parser.
pub(crate) fn parse_mpop_with(
    c: &mut Client,
    args: &[Bytes],
    sides: fn(&[u8]) -> Option<bool>,
) -> Option<(Vec<Bytes>, bool, usize)> {
    parse_mpop(c, args, sides)
}
