//! String commands: GET, SET (EX, PX, EXAT, PXAT, NX, XX, KEEPTTL, GET),
//! SETEX, PSETEX, SETNX, GETSET, GETDEL, GETEX, MGET, MSET, MSETNX, the
//! INCR / DECR family, INCRBYFLOAT, APPEND, STRLEN, GETRANGE, SETRANGE.
//!
//! Values are stored as their bytes (integers as decimal text, as GET
//! returns them); every stored argument is copied out of the read buffer.

use bytes::Bytes;

use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::Frame;
use crate::store::encoding::StrEnc;
use crate::store::{own, Db, Value, WRONGTYPE};

/// Largest string SETRANGE / APPEND may build (Redis's 512 MB default).
const MAX_STRING: usize = 512 * 1024 * 1024;

/// The string at `key`: Ok(None) if missing, Err(()) (WRONGTYPE replied) if
/// another type.
fn get_str(c: &mut Client, db: &mut Db, key: &[u8]) -> Result<Option<Bytes>, ()> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Str(b)) => Ok(Some(b.to_bytes())),
        Some(_) => {
            c.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Stores a string and emits `set`.
fn store(db: &mut Db, key: &[u8], v: &[u8], keep_ttl: bool) {
    db.set(key, Value::Str(v.into()), keep_ttl);
    db.modified(key);
    db.notify(notify::STRING, "set", key);
}

/// GET key.
pub fn get(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    match db.get(&args[1]) {
        None => c.reply(Frame::Null),
        Some(Value::Str(b)) => c.reply_bulk(b),
        Some(_) => c.error(WRONGTYPE),
    }
}

/// An expiry option of SET / GETEX.
#[derive(Clone, Copy, PartialEq)]
enum Ttl {
    None,
    Keep,
    Persist,
    /// Absolute deadline in ms, computed later from (value, unit, absolute).
    At(i64, bool, bool),
}

/// True if expire option `opt` (lower case) may follow `ttl`: nothing
/// yet, or the same option again.
fn same_unit(ttl: Ttl, opt: &[u8]) -> bool {
    match ttl {
        Ttl::None => true,
        Ttl::At(_, ms, abs) => ms == (opt[0] == b'p') && abs == (opt.len() == 4),
        _ => false,
    }
}

/// Turns a parsed expire option into a deadline; Err is the reply text.
fn deadline(now: u64, ttl: Ttl, cmd: &str) -> Result<Option<u64>, String> {
    let Ttl::At(n, ms, abs) = ttl else {
        return Ok(None);
    };
    let invalid = || format!("ERR invalid expire time in '{cmd}' command");
    if n <= 0 {
        return Err(invalid());
    }
    let v = if ms { Some(n) } else { n.checked_mul(1000) }.ok_or_else(invalid)?;
    let at = if abs {
        Some(v)
    } else {
        v.checked_add(now as i64)
    }
    .ok_or_else(invalid)?;
    Ok(Some(at as u64))
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL].
pub fn set(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut ttl = Ttl::None;
    let mut expire_arg: Option<&Bytes> = None;
    let mut i = 3;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        let next = args.get(i + 1);
        match a.as_slice() {
            b"nx" if !xx => nx = true,
            b"xx" if !nx => xx = true,
            b"get" => get = true,
            // An expire option conflicts only with a different one
            // (Redis lets `EX 1 EX 2` through, the last one winning).
            b"keepttl" if matches!(ttl, Ttl::None | Ttl::Keep) => ttl = Ttl::Keep,
            b"ex" | b"px" | b"exat" | b"pxat" if same_unit(ttl, &a) && next.is_some() => {
                let ms = a[0] == b'p';
                let abs = a.len() == 4;
                expire_arg = next;
                ttl = Ttl::At(0, ms, abs);
                i += 1;
            }
            _ => return c.error(ERR_SYNTAX),
        }
        i += 1;
    }
    if let (Ttl::At(_, ms, abs), Some(arg)) = (ttl, expire_arg) {
        let Some(n) = parse_i64(arg) else {
            return c.error(ERR_NOT_INTEGER);
        };
        ttl = Ttl::At(n, ms, abs);
    }
    let at = match deadline(db.now, ttl, "set") {
        Ok(at) => at,
        Err(e) => return c.error(e),
    };
    let key = &args[1];
    let old = if get {
        match get_str(c, db, key) {
            Ok(v) => Some(v),
            Err(()) => return,
        }
    } else {
        None
    };
    let found = db.exists(key);
    if (nx && found) || (xx && !found) {
        return c.reply(match old {
            Some(Some(v)) => Frame::Bulk(v),
            _ => Frame::Null,
        });
    }
    store(db, key, &args[2], ttl == Ttl::Keep);
    if let Some(at) = at {
        db.set_deadline(key, at);
        db.notify(notify::GENERIC, "expire", key);
        // Logged with an absolute deadline, as Redis 7.0 does.
        db.propagate_with(|| {
            vec![
                Bytes::from_static(b"SET"),
                own(key),
                own(&args[2]),
                Bytes::from_static(b"PXAT"),
                Bytes::from(at.to_string()),
            ]
        });
    }
    c.reply(match old {
        Some(Some(v)) => Frame::Bulk(v),
        Some(None) => Frame::Null,
        None => Frame::ok(),
    });
}

fn setex_generic(c: &mut Client, db: &mut Db, args: &[Bytes], ms: bool, name: &str) {
    let Some(n) = parse_i64(&args[2]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let at = match deadline(db.now, Ttl::At(n, ms, false), name) {
        Ok(Some(at)) => at,
        Ok(None) => return,
        Err(e) => return c.error(e),
    };
    let key = &args[1];
    store(db, key, &args[3], false);
    db.set_deadline(key, at);
    db.notify(notify::GENERIC, "expire", key);
    db.propagate_with(|| {
        vec![
            Bytes::from_static(b"SET"),
            own(key),
            own(&args[3]),
            Bytes::from_static(b"PXAT"),
            Bytes::from(at.to_string()),
        ]
    });
    c.reply(Frame::ok());
}

/// SETEX key seconds value.
pub fn setex(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    setex_generic(c, db, args, false, "setex")
}

/// PSETEX key milliseconds value.
pub fn psetex(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    setex_generic(c, db, args, true, "psetex")
}

/// SETNX key value.
pub fn setnx(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if db.exists(&args[1]) {
        return c.reply(Frame::Integer(0));
    }
    store(db, &args[1], &args[2], false);
    c.reply(Frame::Integer(1));
}

/// GETSET key value.
pub fn getset(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Ok(old) = get_str(c, db, &args[1]) else {
        return;
    };
    store(db, &args[1], &args[2], false);
    // Logged as SET, as Redis 7.0 propagates GETSET.
    db.propagate_with(|| vec![Bytes::from_static(b"SET"), args[1].clone(), args[2].clone()]);
    c.reply(old.map_or(Frame::Null, Frame::Bulk));
}

/// GETDEL key.
pub fn getdel(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Ok(old) = get_str(c, db, &args[1]) else {
        return;
    };
    if old.is_some() {
        db.delete(&args[1]);
    }
    c.reply(old.map_or(Frame::Null, Frame::Bulk));
}

/// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST].
pub fn getex(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let mut ttl = Ttl::None;
    let mut i = 2;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        match a.as_slice() {
            b"persist" if matches!(ttl, Ttl::None | Ttl::Persist) => ttl = Ttl::Persist,
            b"ex" | b"px" | b"exat" | b"pxat" if same_unit(ttl, &a) && i + 1 < args.len() => {
                let Some(n) = parse_i64(&args[i + 1]) else {
                    return c.error(ERR_NOT_INTEGER);
                };
                ttl = Ttl::At(n, a[0] == b'p', a.len() == 4);
                i += 1;
            }
            _ => return c.error(ERR_SYNTAX),
        }
        i += 1;
    }
    let at = match deadline(db.now, ttl, "getex") {
        Ok(at) => at,
        Err(e) => return c.error(e),
    };
    let key = &args[1];
    let Ok(v) = get_str(c, db, key) else {
        return;
    };
    let Some(v) = v else {
        return c.reply(Frame::Null);
    };
    if let Some(at) = at {
        if at <= db.now {
            db.remove(key);
            db.modified(key);
            db.notify(notify::GENERIC, "del", key);
            db.propagate_with(|| vec![Bytes::from_static(b"DEL"), own(key)]);
        } else {
            db.set_deadline(key, at);
            db.modified(key);
            db.notify(notify::GENERIC, "expire", key);
            db.propagate_with(|| {
                vec![
                    Bytes::from_static(b"PEXPIREAT"),
                    own(key),
                    Bytes::from(at.to_string()),
                ]
            });
        }
    } else if ttl == Ttl::Persist && db.persist(key) {
        db.modified(key);
        db.notify(notify::GENERIC, "persist", key);
        db.propagate_with(|| vec![Bytes::from_static(b"PERSIST"), own(key)]);
    }
    c.reply(Frame::Bulk(v));
}

/// MGET key [key ...] (non-strings read as nil).
pub fn mget(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let out = args[1..]
        .iter()
        .map(|k| match db.get(k) {
            Some(Value::Str(b)) => Frame::Bulk(b.to_bytes()),
            _ => Frame::Null,
        })
        .collect();
    c.reply(Frame::Array(out));
}

/// MSET key value [key value ...].
pub fn mset(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        return c.error("ERR wrong number of arguments for 'mset' command");
    }
    for p in args[1..].chunks(2) {
        store(db, &p[0], &p[1], false);
    }
    c.reply(Frame::ok());
}

/// MSETNX key value [key value ...].
pub fn msetnx(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        return c.error("ERR wrong number of arguments for 'msetnx' command");
    }
    if args[1..].chunks(2).any(|p| db.exists(&p[0])) {
        return c.reply(Frame::Integer(0));
    }
    for p in args[1..].chunks(2) {
        store(db, &p[0], &p[1], false);
    }
    c.reply(Frame::Integer(1));
}

fn incr_generic(c: &mut Client, db: &mut Db, key: &[u8], by: i64) {
    // The value is parsed where it lies (no handle to it is taken).
    let cur = match db.get(key) {
        None => 0,
        Some(Value::Str(b)) => match parse_i64(b) {
            Some(n) => n,
            None => return c.error(ERR_NOT_INTEGER),
        },
        Some(_) => return c.error(WRONGTYPE),
    };
    let Some(n) = cur.checked_add(by) else {
        return c.error("ERR increment or decrement would overflow");
    };
    let mut text = itoa::Buffer::new();
    db.set(key, Value::Str(text.format(n).as_bytes().into()), true);
    db.modified(key);
    db.notify(notify::STRING, "incrby", key);
    c.reply(Frame::Integer(n));
}

/// INCR key.
pub fn incr(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    incr_generic(c, db, &args[1], 1)
}

/// DECR key.
pub fn decr(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    incr_generic(c, db, &args[1], -1)
}

/// INCRBY key increment.
pub fn incrby(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    match parse_i64(&args[2]) {
        Some(n) => incr_generic(c, db, &args[1], n),
        None => c.error(ERR_NOT_INTEGER),
    }
}

/// DECRBY key decrement.
pub fn decrby(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    match parse_i64(&args[2]) {
        Some(i64::MIN) => c.error("ERR decrement would overflow"),
        Some(n) => incr_generic(c, db, &args[1], -n),
        None => c.error(ERR_NOT_INTEGER),
    }
}

/// Parses a float argument as Redis's `string2ld` / `string2d`: no blanks,
/// no NaN; `inf`, `-inf`, `+inf` accepted.
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(|ch: char| ch.is_ascii_whitespace()) {
        return None;
    }
    if s.ends_with(|ch: char| ch.is_ascii_whitespace()) {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    if lower.contains("nan") {
        return None;
    }
    if lower.trim_start_matches(['+', '-']).starts_with("infinity") {
        return None;
    }
    s.parse::<f64>().ok()
}

/// INCRBYFLOAT key increment: computed as Redis does, in C's `long
/// double` (`util::long_double`), so that the digits stored and replied
/// are Redis's, `1e400` included.
pub fn incrbyfloat(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    use crate::util::long_double::{self as ld, LongDouble};
    let key = &args[1];
    let Ok(cur) = get_str(c, db, key) else {
        return;
    };
    let cur = match cur {
        None => LongDouble::from_i64(0),
        Some(b) => match ld::parse(&b) {
            Some(n) => n,
            None => return c.error("ERR value is not a valid float"),
        },
    };
    let Some(by) = ld::parse(&args[2]) else {
        return c.error("ERR value is not a valid float");
    };
    let n = ld::add(cur, by);
    if !n.is_finite() {
        return c.error("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(ld::format_human(n));
    db.set(key, Value::Str(text.clone().into()), true);
    // Redis stores the formatted number as a plain string, never `int`.
    db.set_str_enc(key, StrEnc::NotInt);
    db.modified(key);
    db.notify(notify::STRING, "incrbyfloat", key);
    // The result, not the increment: float sums must not drift on reload.
    db.propagate_with(|| {
        vec![
            Bytes::from_static(b"SET"),
            own(key),
            text.clone(),
            Bytes::from_static(b"KEEPTTL"),
        ]
    });
    c.reply(Frame::Bulk(text));
}

/// APPEND key value.
pub fn append(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    let Ok(cur) = get_str(c, db, key) else {
        return;
    };
    // Appending to an existing string grows it in place (`raw`); a new
    // key is stored as SET would store it.
    let enc = if cur.is_some() {
        StrEnc::Raw
    } else {
        StrEnc::Derived
    };
    let cur = cur.unwrap_or_default();
    if cur.len() + args[2].len() > MAX_STRING {
        return c.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let mut v = Vec::with_capacity(cur.len() + args[2].len());
    v.extend_from_slice(&cur);
    v.extend_from_slice(&args[2]);
    let n = v.len();
    db.set(key, Value::Str(v.into()), true);
    db.set_str_enc(key, enc);
    db.modified(key);
    db.notify(notify::STRING, "append", key);
    c.reply(Frame::Integer(n as i64));
}

/// STRLEN key.
pub fn strlen(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(v) = get_str(c, db, &args[1]) {
        c.reply(Frame::Integer(v.map_or(0, |b| b.len() as i64)));
    }
}

/// GETRANGE key start end.
pub fn getrange(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let (Some(mut start), Some(mut end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let Ok(v) = get_str(c, db, &args[1]) else {
        return;
    };
    let v = v.unwrap_or_default();
    let len = v.len() as i64;
    if start < 0 && end < 0 && start > end {
        return c.reply(Frame::bulk(Bytes::new()));
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if len == 0 || start > end {
        return c.reply(Frame::bulk(Bytes::new()));
    }
    c.reply(Frame::Bulk(v.slice(start as usize..=end as usize)));
}

/// SETRANGE key offset value.
pub fn setrange(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(offset) = parse_i64(&args[2]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    if offset < 0 {
        return c.error("ERR offset is out of range");
    }
    let key = &args[1];
    let Ok(cur) = get_str(c, db, key) else {
        return;
    };
    let val = &args[3];
    let cur_len = cur.as_ref().map_or(0, |b| b.len());
    if val.is_empty() {
        return c.reply(Frame::Integer(cur_len as i64));
    }
    if offset as u64 + val.len() as u64 > MAX_STRING as u64 {
        return c.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let offset = offset as usize;
    let mut v = cur.map(|b| b.to_vec()).unwrap_or_default();
    if v.len() < offset + val.len() {
        v.resize(offset + val.len(), 0);
    }
    v[offset..offset + val.len()].copy_from_slice(val);
    let n = v.len();
    db.set(key, Value::Str(v.into()), true);
    // Written in place: `raw`, whatever it holds.
    db.set_str_enc(key, StrEnc::Raw);
    db.modified(key);
    db.notify(notify::STRING, "setrange", key);
    c.reply(Frame::Integer(n as i64));
}
