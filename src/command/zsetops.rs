//! Sorted-set algebra and sampling: ZUNION, ZINTER, ZDIFF, their STORE
//! forms, ZINTERCARD and ZRANDMEMBER, as Redis 7.0's `t_zset.c` does them.
//!
//! Inputs may be sorted sets or plain sets (every member of a set scores
//! 1). The inputs are borrowed from the database, never copied: each key
//! is first looked up with `Db::get` (lazy expiry, WRONGTYPE check, hit
//! counts as Redis's `lookupKeyRead`), then all are read together through
//! `Db::peek`.

use std::collections::HashMap;

use bytes::Bytes;
use rand::Rng;

use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::Frame;
use crate::store::{Db, Set, Value, ZSet, WRONGTYPE};
use crate::util::strtod::{has_nonzero_mantissa, strtod};

/// Which combination of the inputs a command computes.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

/// How scores of a member found in several inputs combine.
#[derive(Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// One input: a sorted set, a plain set, or nothing (missing key).
#[derive(Clone, Copy)]
enum Input<'a> {
    Missing,
    Set(&'a Set),
    ZSet(&'a ZSet),
}

impl Input<'_> {
    fn len(&self) -> usize {
        match self {
            Input::Missing => 0,
            Input::Set(s) => s.len(),
            Input::ZSet(z) => z.len(),
        }
    }

    /// The member's score in this input (1 in a plain set).
    fn find(&self, m: &[u8]) -> Option<f64> {
        match self {
            Input::Missing => None,
            Input::Set(s) => s.contains(m).then_some(1.0),
            Input::ZSet(z) => z.score(m),
        }
    }

    /// Every (member, score), a sorted set from its highest element down,
    /// as Redis's `zuiNext` walks one.
    fn for_each(&self, mut f: impl FnMut(&[u8], f64) -> bool) {
        match self {
            Input::Missing => {}
            Input::Set(s) => {
                for m in s.members() {
                    if !f(m, 1.0) {
                        return;
                    }
                }
            }
            Input::ZSet(z) => {
                let mut cur = z.last();
                while let Some(p) = cur {
                    let (m, s) = z.entry(p);
                    if !f(m, s) {
                        return;
                    }
                    cur = z.prev(p);
                }
            }
        }
    }
}

/// Redis's `getDoubleFromObject`: the whole argument is one C `strtod`
/// number, with no leading space, not NaN, neither overflowing nor
/// underflowing to zero.
fn get_double(a: &[u8]) -> Option<f64> {
    if a.first()
        .is_none_or(|b| b.is_ascii_whitespace() || *b == 0x0b)
    {
        return None;
    }
    let (v, used) = strtod(a)?;
    if used != a.len() || v.is_nan() {
        return None;
    }
    if v.is_infinite() && !a.iter().any(|b| matches!(b, b'i' | b'I')) {
        return None;
    }
    if v == 0.0 && has_nonzero_mantissa(a) {
        return None;
    }
    Some(v)
}

/// Redis's `zunionInterAggregate`: a sum that is NaN (inf + -inf) is 0.
fn aggregate(target: &mut f64, val: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val
            }
        }
    }
}

/// A weighted score: inf * 0 is 0, as Redis has it.
fn weighted(weight: f64, score: f64) -> f64 {
    let s = weight * score;
    if s.is_nan() {
        0.0
    } else {
        s
    }
}

/// What a parsed ZUNION / ZINTER / ZDIFF / ZINTERCARD call asks for.
struct Request {
    /// Index in the arguments of each input key, in input order.
    keys: Vec<usize>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    limit: usize,
}

/// Redis's `zunionInterDiffGenericCommand` up to the computation: numkeys,
/// the keys' types (before the options, as Redis checks them), then the
/// options. None after replying an error.
fn parse(
    c: &mut Client,
    db: &mut Db,
    args: &[Bytes],
    numkeys_at: usize,
    op: Op,
    store: bool,
    card: bool,
) -> Option<Request> {
    let Some(n) = parse_i64(&args[numkeys_at]) else {
        c.error(ERR_NOT_INTEGER);
        return None;
    };
    if n < 1 {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        c.error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
        return None;
    }
    let first = numkeys_at + 1;
    if n > (args.len() - first) as i64 {
        c.error(ERR_SYNTAX);
        return None;
    }
    let n = n as usize;
    for k in &args[first..first + n] {
        match db.get(k) {
            None | Some(Value::Set(_)) | Some(Value::ZSet(_)) => {}
            Some(_) => {
                c.error(WRONGTYPE);
                return None;
            }
        }
    }
    let mut req = Request {
        keys: (first..first + n).collect(),
        weights: vec![1.0; n],
        aggregate: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = first + n;
    while j < args.len() {
        let remaining = args.len() - j;
        let opt = &args[j];
        if op != Op::Diff && !card && remaining > n && opt.eq_ignore_ascii_case(b"weights") {
            for (i, w) in args[j + 1..=j + n].iter().enumerate() {
                let Some(v) = get_double(w) else {
                    c.error("ERR weight value is not a float");
                    return None;
                };
                req.weights[i] = v;
            }
            j += n + 1;
        } else if op != Op::Diff
            && !card
            && remaining >= 2
            && opt.eq_ignore_ascii_case(b"aggregate")
        {
            req.aggregate = match args[j + 1].to_ascii_lowercase().as_slice() {
                b"sum" => Aggregate::Sum,
                b"min" => Aggregate::Min,
                b"max" => Aggregate::Max,
                _ => {
                    c.error(ERR_SYNTAX);
                    return None;
                }
            };
            j += 2;
        } else if !store && !card && opt.eq_ignore_ascii_case(b"withscores") {
            req.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && opt.eq_ignore_ascii_case(b"limit") {
            match parse_i64(&args[j + 1]) {
                Some(l) if l >= 0 => req.limit = l as usize,
                _ => {
                    c.error("ERR LIMIT can't be negative");
                    return None;
                }
            }
            j += 2;
        } else {
            c.error(ERR_SYNTAX);
            return None;
        }
    }
    Some(req)
}

/// The inputs of `req`, borrowed together (every key was looked up by
/// `parse` just before).
fn inputs<'a>(db: &'a Db, args: &[Bytes], req: &Request) -> Vec<(usize, Input<'a>, f64)> {
    req.keys
        .iter()
        .zip(&req.weights)
        .map(|(&k, &w)| {
            let input = match db.peek(&args[k]) {
                Some(Value::Set(s)) => Input::Set(s),
                Some(Value::ZSet(z)) => Input::ZSet(z),
                _ => Input::Missing,
            };
            (k, input, w)
        })
        .collect()
}

/// Computes the operation: the resulting sorted set, or (ZINTERCARD) only
/// its size, stopping at `limit` when one is set.
fn compute(
    args: &[Bytes],
    src: &mut [(usize, Input<'_>, f64)],
    op: Op,
    req: &Request,
    card: bool,
) -> (ZSet, usize) {
    let mut out = ZSet::default();
    let mut count = 0usize;
    // Redis orders the inputs by size (ZDIFF keeps the first one first).
    if op != Op::Diff {
        src.sort_by_key(|s| s.1.len());
    }
    let Some(&(k0, first, w0)) = src.first() else {
        return (out, 0);
    };
    match op {
        Op::Inter => {
            first.for_each(|m, s| {
                let mut score = weighted(w0, s);
                for &(k, input, w) in &src[1..] {
                    let value = if args[k] == args[k0] {
                        Some(s)
                    } else {
                        input.find(m)
                    };
                    match value {
                        Some(v) => aggregate(&mut score, weighted_raw(w, v), req.aggregate),
                        None => return true,
                    }
                }
                if card {
                    count += 1;
                    return req.limit == 0 || count < req.limit;
                }
                out.insert(m, score);
                true
            });
        }
        Op::Union => {
            let cap = src.last().map_or(0, |s| s.1.len());
            let mut acc: HashMap<Bytes, f64, ahash::RandomState> =
                HashMap::with_capacity_and_hasher(cap, ahash::RandomState::default());
            for &(_, input, w) in src.iter() {
                input.for_each(|m, s| {
                    let score = weighted(w, s);
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, req.aggregate),
                        None => {
                            acc.insert(Bytes::copy_from_slice(m), score);
                        }
                    }
                    true
                });
            }
            for (m, s) in acc {
                out.insert(&m, s);
            }
        }
        Op::Diff => {
            first.for_each(|m, s| {
                let found = src[1..]
                    .iter()
                    .any(|&(k, input, _)| args[k] == args[k0] || input.find(m).is_some());
                if !found {
                    out.insert(m, s);
                }
                true
            });
        }
    }
    (out, count)
}

/// Redis multiplies the other inputs' scores by their weight without the
/// NaN check the first input's score gets; the aggregate repairs a NaN sum.
fn weighted_raw(weight: f64, score: f64) -> f64 {
    weight * score
}

fn generic(c: &mut Client, db: &mut Db, args: &[Bytes], op: Op, store: bool, card: bool) {
    let numkeys_at = if store { 2 } else { 1 };
    let Some(req) = parse(c, db, args, numkeys_at, op, store, card) else {
        return;
    };
    let (result, count) = {
        let mut src = inputs(db, args, &req);
        compute(args, &mut src, op, &req, card)
    };
    if card {
        return c.reply(Frame::Integer(count as i64));
    }
    if store {
        let dst = &args[1];
        let n = result.len();
        if n == 0 {
            db.delete(dst);
            return c.reply(Frame::Integer(0));
        }
        db.set(dst, Value::ZSet(Box::new(result)), false);
        db.modified(dst);
        let event = match op {
            Op::Union => "zunionstore",
            Op::Inter => "zinterstore",
            Op::Diff => "zdiffstore",
        };
        db.notify(notify::ZSET, event, dst);
        return c.reply(Frame::Integer(n as i64));
    }
    let mut items = Vec::with_capacity(result.len());
    let mut cur = result.first();
    while let Some(p) = cur {
        let (m, s) = result.entry(p);
        items.push((Bytes::copy_from_slice(m), s));
        cur = result.next(p);
    }
    c.reply(super::zsets::members_reply(
        c.protocol,
        items,
        req.withscores,
    ));
}

/// ZUNION numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES].
pub fn zunion(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    generic(c, db, args, Op::Union, false, false)
}

/// ZINTER numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES].
pub fn zinter(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    generic(c, db, args, Op::Inter, false, false)
}

/// ZDIFF numkeys key [key ...] [WITHSCORES].
pub fn zdiff(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    generic(c, db, args, Op::Diff, false, false)
}

/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE ...].
pub fn zunionstore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    generic(c, db, args, Op::Union, true, false)
}

/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE ...].
pub fn zinterstore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    generic(c, db, args, Op::Inter, true, false)
}

/// ZDIFFSTORE destination numkeys key [key ...].
pub fn zdiffstore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    generic(c, db, args, Op::Diff, true, false)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit].
pub fn zintercard(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    generic(c, db, args, Op::Inter, false, true)
}

/// ZRANDMEMBER key [count [WITHSCORES]].
pub fn zrandmember(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let mut count: Option<i64> = None;
    let mut withscores = false;
    if args.len() >= 3 {
        let Some(n) = parse_i64(&args[2]) else {
            return c.error(ERR_NOT_INTEGER);
        };
        if n == i64::MIN {
            return c.error(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            );
        }
        if args.len() > 4 || (args.len() == 4 && !args[3].eq_ignore_ascii_case(b"withscores")) {
            return c.error(ERR_SYNTAX);
        }
        if args.len() == 4 {
            withscores = true;
            if !(i64::MIN / 2..=i64::MAX / 2).contains(&n) {
                return c.error("ERR value is out of range");
            }
        }
        count = Some(n);
    }
    let proto = c.protocol;
    let z = match db.get(&args[1]) {
        None => {
            return c.reply(if count.is_some() {
                Frame::Array(vec![])
            } else {
                Frame::Null
            })
        }
        Some(Value::ZSet(z)) => z,
        Some(_) => return c.error(WRONGTYPE),
    };
    let mut rng = rand::thread_rng();
    let at = |i: usize| {
        z.at_rank(i)
            .map(|p| (Bytes::copy_from_slice(z.entry(p).0), z.entry(p).1))
    };
    let size = z.len();
    let Some(n) = count else {
        let pick = at(rng.gen_range(0..size));
        return c.reply(pick.map_or(Frame::Null, |(m, _)| Frame::Bulk(m)));
    };
    let mut items = Vec::new();
    let uniq = n >= 0;
    let want = n.unsigned_abs();
    if want == 0 {
        return c.reply(Frame::Array(vec![]));
    }
    if !uniq || want == 1 {
        // With repetitions: each pick independent.
        return c.reply_picks(want, withscores, || {
            at(rng.gen_range(0..size)).map_or((Frame::Null, Frame::Null), |(m, s)| {
                (Frame::Bulk(m), Frame::Double(s))
            })
        });
    }
    if want >= size as u64 {
        // The whole set, from the highest element down, as Redis walks it.
        let mut cur = z.last();
        while let Some(p) = cur {
            let (m, s) = z.entry(p);
            items.push((Bytes::copy_from_slice(m), s));
            cur = z.prev(p);
        }
    } else {
        let idx = rand::seq::index::sample(&mut rng, size, want as usize);
        items.extend(idx.into_iter().filter_map(at));
    }
    c.reply(super::zsets::members_reply(proto, items, withscores));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_read_as_redis_reads_weights() {
        assert_eq!(get_double(b"2"), Some(2.0));
        assert_eq!(get_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(get_double(b"0x10"), Some(16.0));
        assert_eq!(get_double(b"1e-5"), Some(1e-5));
        assert_eq!(get_double(b"0"), Some(0.0));
        assert_eq!(get_double(b"0e10"), Some(0.0));
        for bad in [
            &b"nan"[..],
            b"",
            b" 1",
            b"1 ",
            b"1e400",
            b"1e-400",
            b"abc",
            b"1\x002",
        ] {
            assert_eq!(get_double(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn sums_of_opposite_infinities_are_zero() {
        let mut t = f64::INFINITY;
        aggregate(&mut t, f64::NEG_INFINITY, Aggregate::Sum);
        assert_eq!(t, 0.0);
        assert_eq!(weighted(0.0, f64::INFINITY), 0.0);
        let mut t = 1.0;
        aggregate(&mut t, 3.0, Aggregate::Max);
        assert_eq!(t, 3.0);
        aggregate(&mut t, -3.0, Aggregate::Min);
        assert_eq!(t, -3.0);
    }
}
