//! SORT and SORT_RO: the elements of a list, set or sorted set, sorted
//! numerically or lexicographically, by themselves or by weights read from
//! other keys (`BY pattern`), optionally replaced by values read from other
//! keys (`GET pattern`), cut by `LIMIT`, and replied or stored as a list
//! (`STORE`, SORT only).
//!
//! It follows Redis 7.0's `sortCommandGeneric` step by step, because its
//! corners are observable: options are parsed (and refused) before the key
//! is looked up; a `BY` pattern without `*` means "do not sort", and then a
//! list or sorted set keeps its native order (which `DESC` reverses and
//! `LIMIT` cuts), while a set, whose order is arbitrary, is sorted `ALPHA`
//! anyway when the result is stored or the command comes from a script, so
//! that what replicas and the AOF replay get is deterministic; numeric
//! weights are read with C's `strtod` (the empty string is 0, trailing
//! garbage, NaN, overflow and underflow are errors); equal scores fall back
//! to comparing the elements' bytes; patterns and option names are C strings
//! (they end at a NUL byte).
//!
//! `BY` and `GET` patterns read keys that the command's key specs do not
//! declare, so, as in Redis, they are allowed only to a user that may read
//! every key (`command::auth::reads_all_keys`). Redis's cluster-mode refusals
//! do not apply: herald has no cluster mode.

use std::cmp::Ordering;

use bytes::Bytes;

use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::Frame;
use crate::store::{Db, Key, List, Value, WRONGTYPE};
use crate::util::c_str;
use crate::util::strtod::{has_nonzero_mantissa, strtod};

/// The error for a weight `strtod` does not read whole.
const ERR_NOT_DOUBLE: &str = "ERR One or more scores can't be converted into double";

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
/// [ALPHA] [STORE destination].
pub fn sort(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    sort_generic(c, db, args, false)
}

/// SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...]
/// [ASC|DESC] [ALPHA]: SORT without STORE (which is a syntax error here).
pub fn sort_ro(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    sort_generic(c, db, args, true)
}

/// The options of one SORT call.
#[derive(Default)]
struct Options<'a> {
    desc: bool,
    alpha: bool,
    /// LIMIT's offset and count as given (count -1: no limit).
    limit_start: i64,
    limit_count: i64,
    /// Where to store the result (the last STORE wins).
    store: Option<&'a Bytes>,
    /// The BY pattern (the last BY wins).
    by: Option<&'a [u8]>,
    /// A BY pattern without `*` was given (at any position): no sorting.
    dontsort: bool,
    /// GET patterns, in order.
    gets: Vec<&'a [u8]>,
}

/// True if the argument, as a C string, is `word` in any case (`strcasecmp`).
fn is(arg: &[u8], word: &str) -> bool {
    c_str(arg).eq_ignore_ascii_case(word.as_bytes())
}

/// Parses the options after the key; on error, replies and returns None.
fn parse<'a>(c: &mut Client, args: &'a [Bytes], readonly: bool) -> Option<Options<'a>> {
    let mut o = Options {
        limit_count: -1,
        ..Options::default()
    };
    let name = if readonly { "sort_ro" } else { "sort" };
    // Asked once, and only if a BY or GET pattern needs it.
    let mut full_access: Option<bool> = None;
    let mut may_read_all =
        |c: &Client| *full_access.get_or_insert_with(|| super::auth::reads_all_keys(c, name, args));
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j][..];
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && left >= 2 {
            match (parse_i64(&args[j + 1]), parse_i64(&args[j + 2])) {
                (Some(start), Some(count)) => {
                    o.limit_start = start;
                    o.limit_count = count;
                }
                _ => {
                    c.error(ERR_NOT_INTEGER);
                    return None;
                }
            }
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            o.store = Some(&args[j + 1]);
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let pattern = &args[j + 1][..];
            o.by = Some(pattern);
            if !c_str(pattern).contains(&b'*') {
                o.dontsort = true;
            } else if !may_read_all(c) {
                c.error("ERR BY option of SORT denied due to insufficient ACL permissions.");
                return None;
            }
            j += 1;
        } else if is(a, "get") && left >= 1 {
            if !may_read_all(c) {
                c.error("ERR GET option of SORT denied due to insufficient ACL permissions.");
                return None;
            }
            o.gets.push(&args[j + 1]);
            j += 1;
        } else {
            c.error(ERR_SYNTAX);
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// One element being sorted, with what it is compared by.
struct Item {
    elem: Bytes,
    /// The numeric weight (0 when the BY key is missing).
    score: f64,
    /// The ALPHA weight read through BY (None when missing).
    by: Option<Bytes>,
}

impl Item {
    fn new(elem: Bytes) -> Item {
        Item {
            elem,
            score: 0.0,
            by: None,
        }
    }
}

/// The kind of value being sorted (a missing key sorts as an empty list).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    List,
    Set,
    ZSet,
}

fn sort_generic(c: &mut Client, db: &mut Db, args: &[Bytes], readonly: bool) {
    let Some(mut o) = parse(c, args, readonly) else {
        return;
    };
    // One lookup of the key (one keyspace hit or miss, as in Redis).
    let src = db.get(&args[1]);
    let kind = match src {
        None | Some(Value::List(_)) => Kind::List,
        Some(Value::Set(_)) => Kind::Set,
        Some(Value::ZSet(_)) => Kind::ZSet,
        Some(_) => return c.error(WRONGTYPE),
    };
    // A set's order is arbitrary: when the result is stored (and so
    // replicated as the command) or a script sees it, sort it anyway.
    if o.dontsort && kind == Kind::Set && (o.store.is_some() || c.in_script) {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let len = match src {
        Some(Value::List(l)) => l.len(),
        Some(Value::Set(s)) => s.len(),
        Some(Value::ZSet(z)) => z.len(),
        _ => 0,
    } as i64;
    // LIMIT, clamped to the value's size (as Redis does since it fixed an
    // overflow there): an out-of-range offset gives an empty result, a
    // negative count means "to the end".
    let mut start = o.limit_start.max(0).min(len);
    let count = o.limit_count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    let elems = if o.dontsort && kind != Kind::Set {
        // The native order, read directly from `start` (reversed by DESC).
        let take = if end >= start {
            (end - start + 1) as usize
        } else {
            0
        };
        let elems = native_range(src, start.max(0) as usize, take, o.desc);
        end -= start;
        start = 0;
        elems
    } else {
        all_elements(src)
    };
    let mut items: Vec<Item> = elems.into_iter().map(Item::new).collect();

    let mut not_double = false;
    if !o.dontsort {
        for it in items.iter_mut() {
            let weight = match o.by {
                Some(pattern) => match lookup_by_pattern(db, pattern, &it.elem) {
                    Some(w) => w,
                    None => continue,
                },
                None => it.elem.clone(),
            };
            if o.alpha {
                if o.by.is_some() {
                    it.by = Some(weight);
                }
            } else {
                match to_double(&weight) {
                    Some(v) => it.score = v,
                    None => not_double = true,
                }
            }
        }
        if !not_double {
            let (alpha, by, binary, desc) = (o.alpha, o.by.is_some(), o.store.is_some(), o.desc);
            items.sort_by(|a, b| {
                let cmp = compare(a, b, alpha, by, binary);
                if desc {
                    cmp.reverse()
                } else {
                    cmp
                }
            });
        }
    }

    if not_double {
        return c.error(ERR_NOT_DOUBLE);
    }
    let picked: &[Item] = if end >= start {
        items.get(start as usize..=end as usize).unwrap_or_default()
    } else {
        &[]
    };
    match o.store {
        None => {
            let mut out = Vec::with_capacity(picked.len() * o.gets.len().max(1));
            for it in picked {
                if o.gets.is_empty() {
                    out.push(Frame::Bulk(it.elem.clone()));
                }
                for pattern in &o.gets {
                    out.push(
                        lookup_by_pattern(db, pattern, &it.elem).map_or(Frame::Null, Frame::Bulk),
                    );
                }
            }
            c.reply(Frame::Array(out));
        }
        Some(dst) => {
            let mut list = List::new();
            for it in picked {
                if o.gets.is_empty() {
                    list.push(&it.elem, false);
                }
                for pattern in &o.gets {
                    let v = lookup_by_pattern(db, pattern, &it.elem).unwrap_or_default();
                    list.push(&v, false);
                }
            }
            let n = list.len();
            if n > 0 {
                db.set(dst, Value::List(Box::new(list)), false);
                db.modified(dst);
                db.notify(notify::LIST, "sortstore", dst);
            } else {
                db.delete(dst);
            }
            c.reply(Frame::Integer(n as i64));
        }
    }
}

/// Every element of the value, in its own order.
fn all_elements(src: Option<&Value>) -> Vec<Bytes> {
    match src {
        Some(Value::List(l)) => l.iter().map(Bytes::copy_from_slice).collect(),
        Some(Value::Set(s)) => s.members().iter().map(Key::to_bytes).collect(),
        Some(Value::ZSet(z)) => {
            let mut out = Vec::with_capacity(z.len());
            let mut at = z.first();
            while let Some(cur) = at {
                out.push(Bytes::copy_from_slice(z.entry(cur).0));
                at = z.next(cur);
            }
            out
        }
        _ => Vec::new(),
    }
}

/// `take` elements of a list or sorted set in its native order, from
/// position `start` (counted from the end when `desc`), walking towards
/// the other end when `desc`.
fn native_range(src: Option<&Value>, start: usize, take: usize, desc: bool) -> Vec<Bytes> {
    match src {
        Some(Value::List(l)) => {
            if desc {
                l.iter_rev_from(start)
                    .take(take)
                    .map(Bytes::copy_from_slice)
                    .collect()
            } else {
                l.range_bytes(start, take)
            }
        }
        Some(Value::ZSet(z)) => {
            let mut out = Vec::with_capacity(take);
            let len = z.len();
            let mut at = if desc {
                len.checked_sub(start + 1).and_then(|r| z.at_rank(r))
            } else {
                z.at_rank(start)
            };
            while out.len() < take {
                let Some(cur) = at else { break };
                out.push(Bytes::copy_from_slice(z.entry(cur).0));
                at = if desc { z.prev(cur) } else { z.next(cur) };
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the
/// first `*` is replaced by the element to name a key, whose string value
/// is returned, or, with `->field` after the `*`, that field of its hash.
/// None for a pattern without `*`, a missing key, field or wrong type.
fn lookup_by_pattern(db: &mut Db, pattern: &[u8], elem: &Bytes) -> Option<Bytes> {
    if c_str(pattern) == b"#" {
        return Some(elem.clone());
    }
    // The pattern is searched as a C string, but its parts are cut from
    // the whole argument.
    let cpat = c_str(pattern);
    let star = memchr::memchr(b'*', cpat)?;
    let field = memchr::memmem::find(&cpat[star + 1..], b"->")
        .map(|i| star + 1 + i)
        .filter(|&arrow| arrow + 2 < cpat.len());
    let key_end = field.unwrap_or(pattern.len());
    let mut name = Vec::with_capacity(key_end + elem.len());
    name.extend_from_slice(&pattern[..star]);
    name.extend_from_slice(elem);
    name.extend_from_slice(&pattern[star + 1..key_end]);
    match (db.get(&name)?, field) {
        (Value::Str(s), None) => Some(s.to_bytes()),
        (Value::Hash(h), Some(arrow)) => h.get_bytes(&pattern[arrow + 2..]),
        _ => None,
    }
}

/// A numeric weight as SORT reads it: C's `strtod` must take the whole C
/// string (an empty one reads as 0), and NaN, overflow and underflow to a
/// subnormal or zero are refused (`ERANGE`).
fn to_double(s: &[u8]) -> Option<f64> {
    let s = c_str(s);
    if s.is_empty() {
        return Some(0.0);
    }
    let (v, used) = strtod(s)?;
    if used != s.len() || v.is_nan() {
        return None;
    }
    if v.is_infinite() && !s.iter().any(|b| matches!(b, b'i' | b'I')) {
        return None;
    }
    if (v == 0.0 || v.is_subnormal()) && has_nonzero_mantissa(s) {
        return None;
    }
    Some(v)
}

/// Redis's `sortCompare` (before DESC reverses it). Numeric: by score, then
/// by the elements' bytes. ALPHA by a pattern: missing weights first, then
/// by weight. ALPHA: by the elements. With STORE, ALPHA compares whole
/// strings byte by byte; without, it compares as C's `strcoll` in the C
/// locale (`strcmp`: up to a NUL byte).
fn compare(a: &Item, b: &Item, alpha: bool, by: bool, binary: bool) -> Ordering {
    let text = |x: &[u8], y: &[u8]| {
        if binary {
            x.cmp(y)
        } else {
            c_str(x).cmp(c_str(y))
        }
    };
    if !alpha {
        if a.score > b.score {
            Ordering::Greater
        } else if a.score < b.score {
            Ordering::Less
        } else {
            a.elem.cmp(&b.elem)
        }
    } else if by {
        match (&a.by, &b.by) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => text(x, y),
        }
    } else {
        text(&a.elem, &b.elem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_read_as_strtod() {
        assert_eq!(to_double(b""), Some(0.0));
        assert_eq!(to_double(b"1.5"), Some(1.5));
        assert_eq!(to_double(b" 2"), Some(2.0));
        assert_eq!(to_double(b"0x10"), Some(16.0));
        assert_eq!(to_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(to_double(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(to_double(b"1e-5"), Some(1e-5));
        assert_eq!(to_double(b"0.000"), Some(0.0));
        assert_eq!(to_double(b"3\0junk"), Some(3.0));
        for bad in [&b"abc"[..], b"1x", b" ", b"nan", b"1e999", b"1e-400", b"2 "] {
            assert_eq!(to_double(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn numeric_ties_fall_back_to_bytes() {
        let mk = |e: &'static str, s: f64| Item {
            elem: Bytes::from_static(e.as_bytes()),
            score: s,
            by: None,
        };
        assert_eq!(
            compare(&mk("b", 1.0), &mk("a", 1.0), false, false, false),
            Ordering::Greater
        );
        assert_eq!(
            compare(&mk("b", 0.0), &mk("a", 1.0), false, false, false),
            Ordering::Less
        );
    }

    #[test]
    fn alpha_by_missing_weights_first() {
        let mk = |w: Option<&'static str>| Item {
            elem: Bytes::new(),
            score: 0.0,
            by: w.map(|w| Bytes::from_static(w.as_bytes())),
        };
        assert_eq!(
            compare(&mk(None), &mk(Some("a")), true, true, false),
            Ordering::Less
        );
        assert_eq!(
            compare(&mk(None), &mk(None), true, true, false),
            Ordering::Equal
        );
    }
}
