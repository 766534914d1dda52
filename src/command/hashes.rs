//! Hash commands: HSET, HSETNX, HGET, HMGET, HMSET, HGETALL, HDEL, HEXISTS,
//! HLEN, HKEYS, HVALS, HSTRLEN, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN.
//!
//! The structure is `store::hash` (a packed buffer while small, an
//! insertion-ordered map after); small hashes reply in insertion order,
//! as Redis's listpack encoding does.

use bytes::Bytes;

use super::{parse_i64, ERR_NOT_INTEGER};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::{Frame, Protocol};
use crate::store::{own, Db, Hash, Value, WRONGTYPE};

/// The hash at `key` (read-only): Ok(None) if missing, Err after WRONGTYPE.
fn read<'a>(c: &mut Client, db: &'a mut Db, key: &[u8]) -> Result<Option<&'a Hash>, ()> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => {
            c.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Makes sure `key` holds a hash (creating it); false after WRONGTYPE.
fn ensure(c: &mut Client, db: &mut Db, key: &[u8]) -> bool {
    match read(c, db, key) {
        Err(()) => false,
        Ok(Some(_)) => true,
        Ok(None) => {
            db.set(key, Value::Hash(Box::default()), false);
            true
        }
    }
}

/// Applies `f` to the hash at `key` (which must exist).
fn with_hash<R: Default>(db: &mut Db, key: &[u8], f: impl FnOnce(&mut Hash) -> R) -> R {
    db.update(key, |v| match v {
        Value::Hash(h) => f(h),
        _ => R::default(),
    })
    .unwrap_or_default()
}

fn hset_generic(c: &mut Client, db: &mut Db, args: &[Bytes], name: &str) {
    if !args.len().is_multiple_of(2) {
        return c.error(format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    let key = &args[1];
    if !ensure(c, db, key) {
        return;
    }
    let added = with_hash(db, key, |h| {
        args[2..]
            .chunks(2)
            .filter(|p| h.insert(&p[0], own(&p[1])))
            .count()
    });
    db.modified(key);
    db.notify(notify::HASH, "hset", key);
    if name == "hmset" {
        c.reply(Frame::ok());
    } else {
        c.reply(Frame::Integer(added as i64));
    }
}

/// HSET key field value [field value ...].
pub fn hset(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    hset_generic(c, db, args, "hset")
}

/// HMSET key field value [field value ...].
pub fn hmset(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    hset_generic(c, db, args, "hmset")
}

/// HSETNX key field value.
pub fn hsetnx(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    match read(c, db, key) {
        Err(()) => return,
        Ok(Some(h)) if h.get(&args[2]).is_some() => return c.reply(Frame::Integer(0)),
        _ => {}
    }
    if !ensure(c, db, key) {
        return;
    }
    with_hash(db, key, |h| h.insert(&args[2], own(&args[3])));
    db.modified(key);
    db.notify(notify::HASH, "hset", key);
    c.reply(Frame::Integer(1));
}

/// HGET key field.
pub fn hget(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(h) = read(c, db, &args[1]) {
        let f = h
            .and_then(|h| h.get_bytes(&args[2]))
            .map_or(Frame::Null, Frame::Bulk);
        c.reply(f);
    }
}

/// HMGET key field [field ...].
pub fn hmget(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(h) = read(c, db, &args[1]) {
        let out = args[2..]
            .iter()
            .map(|f| {
                h.and_then(|h| h.get_bytes(f))
                    .map_or(Frame::Null, Frame::Bulk)
            })
            .collect();
        c.reply(Frame::Array(out));
    }
}

/// HGETALL key.
pub fn hgetall(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(h) = read(c, db, &args[1]) {
        let pairs = h.map_or(vec![], |h| {
            h.iter_bytes()
                .map(|(k, v)| (Frame::Bulk(k), Frame::Bulk(v)))
                .collect()
        });
        c.reply(Frame::Map(pairs));
    }
}

/// HKEYS key.
pub fn hkeys(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(h) = read(c, db, &args[1]) {
        let out = h.map_or(vec![], |h| {
            h.iter_bytes().map(|(k, _)| Frame::Bulk(k)).collect()
        });
        c.reply(Frame::Array(out));
    }
}

/// HVALS key.
pub fn hvals(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(h) = read(c, db, &args[1]) {
        let out = h.map_or(vec![], |h| {
            h.iter_bytes().map(|(_, v)| Frame::Bulk(v)).collect()
        });
        c.reply(Frame::Array(out));
    }
}

/// HDEL key field [field ...].
pub fn hdel(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    match read(c, db, key) {
        Err(()) => return,
        Ok(None) => return c.reply(Frame::Integer(0)),
        Ok(Some(_)) => {}
    }
    let n = with_hash(db, key, |h| {
        args[2..].iter().filter(|f| h.remove(f)).count()
    });
    if n > 0 {
        db.changed(key, notify::HASH, "hdel");
    }
    c.reply(Frame::Integer(n as i64));
}

/// HEXISTS key field.
pub fn hexists(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(h) = read(c, db, &args[1]) {
        let e = h.is_some_and(|h| h.get(&args[2]).is_some());
        c.reply(Frame::Integer(e as i64));
    }
}

/// HLEN key.
pub fn hlen(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(h) = read(c, db, &args[1]) {
        c.reply(Frame::Integer(h.map_or(0, |h| h.len()) as i64));
    }
}

/// HSTRLEN key field.
pub fn hstrlen(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(h) = read(c, db, &args[1]) {
        let n = h.and_then(|h| h.get(&args[2])).map_or(0, |v| v.len());
        c.reply(Frame::Integer(n as i64));
    }
}

/// HINCRBY key field increment.
pub fn hincrby(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(by) = parse_i64(&args[3]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let key = &args[1];
    let cur = match read(c, db, key) {
        Err(()) => return,
        Ok(h) => h.and_then(|h| h.get_bytes(&args[2])),
    };
    let cur = match cur {
        None => 0,
        Some(v) => match parse_i64(&v) {
            Some(n) => n,
            None => return c.error("ERR hash value is not an integer"),
        },
    };
    let Some(n) = cur.checked_add(by) else {
        return c.error("ERR increment or decrement would overflow");
    };
    if !ensure(c, db, key) {
        return;
    }
    with_hash(db, key, |h| h.insert(&args[2], Bytes::from(n.to_string())));
    db.modified(key);
    db.notify(notify::HASH, "hincrby", key);
    c.reply(Frame::Integer(n));
}

/// HINCRBYFLOAT key field increment.
pub fn hincrbyfloat(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    use crate::util::long_double::{self as ld, LongDouble};
    let Some(by) = ld::parse(&args[3]) else {
        return c.error("ERR value is not a valid float");
    };
    if !by.is_finite() {
        return c.error("ERR value is NaN or Infinity");
    }
    let key = &args[1];
    let cur = match read(c, db, key) {
        Err(()) => return,
        Ok(h) => h.and_then(|h| h.get_bytes(&args[2])),
    };
    let cur = match cur {
        None => LongDouble::from_i64(0),
        Some(v) => match ld::parse(&v) {
            Some(n) => n,
            None => return c.error("ERR hash value is not a float"),
        },
    };
    let n = ld::add(cur, by);
    if !n.is_finite() {
        return c.error("ERR increment would produce NaN or Infinity");
    }
    if !ensure(c, db, key) {
        return;
    }
    let text = Bytes::from(ld::format_human(n));
    with_hash(db, key, |h| h.insert(&args[2], text.clone()));
    db.modified(key);
    db.notify(notify::HASH, "hincrbyfloat", key);
    db.propagate_with(|| {
        vec![
            Bytes::from_static(b"HSET"),
            crate::store::own(key),
            crate::store::own(&args[2]),
            text.clone(),
        ]
    });
    c.reply(Frame::Bulk(text));
}

/// HRANDFIELD key [count [WITHVALUES]].
pub fn hrandfield(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    use rand::Rng;
    let mut count: Option<i64> = None;
    let mut withvalues = false;
    if args.len() >= 3 {
        let Some(n) = parse_i64(&args[2]) else {
            return c.error(ERR_NOT_INTEGER);
        };
        if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
            return c.error("ERR value is out of range");
        }
        count = Some(n);
        if args.len() == 4 {
            if !args[3].eq_ignore_ascii_case(b"withvalues") {
                return c.error(super::ERR_SYNTAX);
            }
            withvalues = true;
        } else if args.len() > 4 {
            return c.error(super::ERR_SYNTAX);
        }
    }
    let proto = c.protocol;
    let Ok(h) = read(c, db, &args[1]) else {
        return;
    };
    let mut rng = rand::thread_rng();
    let Some(h) = h else {
        return c.reply(if count.is_some() {
            Frame::Array(vec![])
        } else {
            Frame::Null
        });
    };
    // The packed form's positional access is linear: index it once.
    let packed: Vec<(&[u8], &[u8])> = if h.is_packed() {
        h.iter().collect()
    } else {
        Vec::new()
    };
    let pick = |i: usize| {
        if h.is_packed() {
            packed
                .get(i)
                .map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
        } else {
            h.get_index_bytes(i)
        }
    };
    let Some(n) = count else {
        let i = rng.gen_range(0..h.len());
        return c.reply(pick(i).map_or(Frame::Null, |(k, _)| Frame::Bulk(k)));
    };
    if n < 0 {
        let len = h.len();
        return c.reply_picks(n.unsigned_abs(), withvalues, || {
            pick(rng.gen_range(0..len)).map_or((Frame::Null, Frame::Null), |(k, v)| {
                (Frame::Bulk(k), Frame::Bulk(v))
            })
        });
    }
    let mut chosen = Vec::new();
    {
        let n = (n as usize).min(h.len());
        let idx = rand::seq::index::sample(&mut rng, h.len(), n);
        chosen.extend(idx.into_iter().filter_map(pick));
    }
    let out = if !withvalues {
        chosen.into_iter().map(|(k, _)| Frame::Bulk(k)).collect()
    } else if proto == Protocol::Resp3 {
        chosen
            .into_iter()
            .map(|(k, v)| Frame::Array(vec![Frame::Bulk(k), Frame::Bulk(v)]))
            .collect()
    } else {
        chosen
            .into_iter()
            .flat_map(|(k, v)| [Frame::Bulk(k), Frame::Bulk(v)])
            .collect()
    };
    c.reply(Frame::Array(out));
}
