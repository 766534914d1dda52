//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP,
//! SRANDMEMBER, SMOVE, SINTER, SUNION, SDIFF and their STORE forms,
//! SINTERCARD, SSCAN.
//!
//! The structure is `store::set` (insertion-ordered hash set). Sets reply
//! as RESP3 sets (`~`) where Redis does.

use bytes::Bytes;

use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::Frame;
use crate::store::{Db, Key, Set, Value, WRONGTYPE};

/// The set at `key` (read-only): Ok(None) if missing, Err after WRONGTYPE.
fn read<'a>(c: &mut Client, db: &'a mut Db, key: &[u8]) -> Result<Option<&'a Set>, ()> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => {
            c.error(WRONGTYPE);
            Err(())
        }
    }
}

fn with_set<R: Default>(db: &mut Db, key: &[u8], f: impl FnOnce(&mut Set) -> R) -> R {
    db.update(key, |v| match v {
        Value::Set(s) => f(s),
        _ => R::default(),
    })
    .unwrap_or_default()
}

fn members_frame(items: impl IntoIterator<Item = Bytes>) -> Frame {
    Frame::Set(items.into_iter().map(Frame::Bulk).collect())
}

/// SADD key member [member ...].
pub fn sadd(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    match read(c, db, key) {
        Err(()) => return,
        Ok(None) => db.set(key, Value::Set(Box::default()), false),
        Ok(Some(_)) => {}
    }
    let n = with_set(db, key, |s| {
        args[2..].iter().filter(|m| s.insert(m)).count()
    });
    if n > 0 {
        db.modified(key);
        db.notify(notify::SET, "sadd", key);
    }
    if !db.exists(key) {
        // Nothing was added to a fresh set: it must not linger empty.
        db.remove(key);
    }
    c.reply(Frame::Integer(n as i64));
}

/// SREM key member [member ...].
pub fn srem(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    match read(c, db, key) {
        Err(()) => return,
        Ok(None) => return c.reply(Frame::Integer(0)),
        Ok(Some(_)) => {}
    }
    let n = with_set(db, key, |s| {
        args[2..].iter().filter(|m| s.remove(m)).count()
    });
    if n > 0 {
        db.changed(key, notify::SET, "srem");
    }
    c.reply(Frame::Integer(n as i64));
}

/// SMEMBERS key.
pub fn smembers(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(s) = read(c, db, &args[1]) {
        let items: Vec<Bytes> =
            s.map_or(vec![], |s| s.members().iter().map(Key::to_bytes).collect());
        c.reply(members_frame(items));
    }
}

/// SISMEMBER key member.
pub fn sismember(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(s) = read(c, db, &args[1]) {
        c.reply(Frame::Integer(
            s.is_some_and(|s| s.contains(&args[2])) as i64
        ));
    }
}

/// SMISMEMBER key member [member ...].
pub fn smismember(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(s) = read(c, db, &args[1]) {
        let out = args[2..]
            .iter()
            .map(|m| Frame::Integer(s.is_some_and(|s| s.contains(m)) as i64))
            .collect();
        c.reply(Frame::Array(out));
    }
}

/// SCARD key.
pub fn scard(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(s) = read(c, db, &args[1]) {
        c.reply(Frame::Integer(s.map_or(0, |s| s.len()) as i64));
    }
}

fn parse_count(c: &mut Client, args: &[Bytes], positive: bool) -> Result<Option<i64>, ()> {
    match args.len() {
        2 => Ok(None),
        3 => match parse_i64(&args[2]) {
            Some(n) => Ok(Some(n)),
            None => {
                c.error(if positive {
                    "ERR value is out of range, must be positive"
                } else {
                    ERR_NOT_INTEGER
                });
                Err(())
            }
        },
        _ => {
            c.error(ERR_SYNTAX);
            Err(())
        }
    }
}

/// SPOP key [count].
pub fn spop(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    use rand::Rng;
    let Ok(count) = parse_count(c, args, true) else {
        return;
    };
    if count.is_some_and(|n| n < 0) {
        return c.error("ERR value is out of range, must be positive");
    }
    let key = &args[1];
    let Ok(s) = read(c, db, key) else {
        return;
    };
    if s.is_none() {
        return c.reply(if count.is_some() {
            Frame::Set(vec![])
        } else {
            Frame::Null
        });
    }
    if count == Some(0) {
        return c.reply(Frame::Set(vec![]));
    }
    let want = count.unwrap_or(1) as usize;
    let popped: Vec<Bytes> = with_set(db, key, |s| {
        let mut rng = rand::thread_rng();
        let mut out = Vec::new();
        while out.len() < want && !s.is_empty() {
            let i = rng.gen_range(0..s.len());
            if let Some(m) = s.remove_index(i) {
                out.push(m);
            }
        }
        out
    });
    db.modified(key);
    if db.propagating {
        // The members actually removed (SPOP is random).
        let mut cmd = vec![Bytes::from_static(b"SREM"), crate::store::own(key)];
        cmd.extend(popped.iter().cloned());
        db.propagate(cmd);
    }
    db.notify(notify::SET, "spop", key);
    if !db.exists(key) {
        db.notify(notify::GENERIC, "del", key);
    }
    match count {
        None => c.reply(popped.into_iter().next().map_or(Frame::Null, Frame::Bulk)),
        Some(_) => c.reply(members_frame(popped)),
    }
}

/// SRANDMEMBER key [count].
pub fn srandmember(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    use rand::Rng;
    let Ok(count) = parse_count(c, args, false) else {
        return;
    };
    // Redis reads the count with getRangeLongFromObjectOrReply(-LONG_MAX,
    // LONG_MAX).
    if count == Some(i64::MIN) {
        return c.error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        );
    }
    if count.is_some_and(|n| !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n)) {
        return c.error("ERR value is out of range");
    }
    let Ok(s) = read(c, db, &args[1]) else {
        return;
    };
    let Some(s) = s else {
        return c.reply(if count.is_some() {
            Frame::Array(vec![])
        } else {
            Frame::Null
        });
    };
    let mut rng = rand::thread_rng();
    let m = s.members();
    let Some(n) = count else {
        let i = rng.gen_range(0..m.len());
        return c.reply(
            m.get_index(i)
                .map_or(Frame::Null, |m| Frame::Bulk(m.to_bytes())),
        );
    };
    if n < 0 {
        let len = m.len();
        return c.reply_picks(n.unsigned_abs(), false, || {
            let member = m.get_index(rng.gen_range(0..len)).map(Key::to_bytes);
            (member.map_or(Frame::Null, Frame::Bulk), Frame::Null)
        });
    }
    let k = (n as usize).min(m.len());
    let out: Vec<Frame> = rand::seq::index::sample(&mut rng, m.len(), k)
        .into_iter()
        .filter_map(|i| m.get_index(i).map(Key::to_bytes))
        .map(Frame::Bulk)
        .collect();
    c.reply(Frame::Array(out));
}

/// SMOVE source destination member.
pub fn smove(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let (src, dst, m) = (&args[1], &args[2], &args[3]);
    let Ok(s) = read(c, db, src) else {
        return;
    };
    let has_src = s.is_some();
    let in_src = s.is_some_and(|s| s.contains(m));
    let Ok(d) = read(c, db, dst) else {
        return;
    };
    let has_dst = d.is_some();
    if !has_src || !in_src {
        return c.reply(Frame::Integer(0));
    }
    if src == dst {
        return c.reply(Frame::Integer(1));
    }
    with_set(db, src, |s| s.remove(m));
    db.changed(src, notify::SET, "srem");
    if !has_dst {
        db.set(dst, Value::Set(Box::default()), false);
    }
    let added = with_set(db, dst, |s| s.insert(m));
    if added {
        db.modified(dst);
        db.notify(notify::SET, "sadd", dst);
    }
    c.reply(Frame::Integer(1));
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Computes an operation over the sets at `keys`; Err after WRONGTYPE.
fn compute(c: &mut Client, db: &mut Db, keys: &[Bytes], op: Op) -> Result<Vec<Bytes>, ()> {
    let mut sets: Vec<Option<Set>> = Vec::with_capacity(keys.len());
    for k in keys {
        sets.push(read(c, db, k)?.cloned());
    }
    let out: Vec<Bytes> = match op {
        Op::Inter => {
            if sets.iter().any(|s| s.is_none()) {
                vec![]
            } else {
                let all: Vec<&Set> = sets.iter().flatten().collect();
                let Some(smallest) = all.iter().min_by_key(|s| s.len()) else {
                    return Ok(vec![]);
                };
                smallest
                    .members()
                    .iter()
                    .filter(|m| all.iter().all(|s| s.contains(m)))
                    .map(Key::to_bytes)
                    .collect()
            }
        }
        Op::Union => {
            let mut u = Set::default();
            for s in sets.iter().flatten() {
                for m in s.members() {
                    u.insert_owned(m.clone());
                }
            }
            u.members().iter().map(Key::to_bytes).collect()
        }
        Op::Diff => match sets.first() {
            Some(Some(first)) => first
                .members()
                .iter()
                .filter(|m| !sets[1..].iter().flatten().any(|s| s.contains(m)))
                .map(Key::to_bytes)
                .collect(),
            _ => vec![],
        },
    };
    Ok(out)
}

fn op_command(c: &mut Client, db: &mut Db, args: &[Bytes], op: Op) {
    if let Ok(items) = compute(c, db, &args[1..], op) {
        c.reply(members_frame(items));
    }
}

fn store_command(c: &mut Client, db: &mut Db, args: &[Bytes], op: Op, event: &'static str) {
    let Ok(items) = compute(c, db, &args[2..], op) else {
        return;
    };
    let dst = &args[1];
    let n = items.len();
    if n == 0 {
        db.delete(dst);
        return c.reply(Frame::Integer(0));
    }
    let mut s = Set::default();
    for m in items {
        s.insert(&m);
    }
    db.set(dst, Value::Set(Box::new(s)), false);
    db.modified(dst);
    db.notify(notify::SET, event, dst);
    c.reply(Frame::Integer(n as i64));
}

/// SINTER key [key ...].
pub fn sinter(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    op_command(c, db, args, Op::Inter)
}

/// SUNION key [key ...].
pub fn sunion(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    op_command(c, db, args, Op::Union)
}

/// SDIFF key [key ...].
pub fn sdiff(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    op_command(c, db, args, Op::Diff)
}

/// SINTERSTORE destination key [key ...].
pub fn sinterstore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    store_command(c, db, args, Op::Inter, "sinterstore")
}

/// SUNIONSTORE destination key [key ...].
pub fn sunionstore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    store_command(c, db, args, Op::Union, "sunionstore")
}

/// SDIFFSTORE destination key [key ...].
pub fn sdiffstore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    store_command(c, db, args, Op::Diff, "sdiffstore")
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit].
pub fn sintercard(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let n = match parse_i64(&args[1]) {
        Some(n) if n > 0 => n as usize,
        Some(_) => return c.error("ERR numkeys should be greater than 0"),
        None => return c.error("ERR numkeys should be greater than 0"),
    };
    if n > args.len() - 2 {
        return c.error("ERR Number of keys can't be greater than number of args");
    }
    let mut limit = 0usize;
    let rest = &args[2 + n..];
    let mut i = 0;
    while i < rest.len() {
        if rest[i].eq_ignore_ascii_case(b"limit") && i + 1 < rest.len() {
            match parse_i64(&rest[i + 1]) {
                Some(l) if l >= 0 => limit = l as usize,
                Some(_) => return c.error("ERR LIMIT can't be negative"),
                // getPositiveLongFromObjectOrReply: one text for both.
                None => return c.error("ERR LIMIT can't be negative"),
            }
            i += 2;
        } else {
            return c.error(ERR_SYNTAX);
        }
    }
    if let Ok(items) = compute(c, db, &args[2..2 + n], Op::Inter) {
        let k = if limit == 0 {
            items.len()
        } else {
            items.len().min(limit)
        };
        c.reply(Frame::Integer(k as i64));
    }
}
