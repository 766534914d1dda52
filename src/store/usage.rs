//! MEMORY USAGE's estimate of what a key costs, in the terms of Redis
//! 7.0's `objectComputeSize` on a 64-bit jemalloc build: the `robj`
//! header, the representation [`encoding`](super::encoding) names
//! (embedded string, listpack, intset, quicklist nodes, dict slots and
//! entries, skiplist nodes), each allocation rounded up to jemalloc's size
//! class, and for the big representations an average over the first
//! `samples` elements multiplied by the element count, as Redis samples.
//!
//! These are not herald's own allocations (which [`Value::mem`] counts
//! for `maxmemory`): the point is that sizes compare as they do on Redis
//! (a bigger value costs more, a listpack is cheaper than a hashtable).

use super::encoding::{StrEnc, EMBSTR_MAX};
use super::Value;
use crate::protocol::parse::string_to_i64;

/// `sizeof(robj)`.
const ROBJ: usize = 16;
/// `sizeof(dictEntry)`.
const DICT_ENTRY: usize = 24;
/// `sizeof(dict)`.
const DICT: usize = 56;
/// `sizeof(quicklist)`, `sizeof(quicklistNode)`.
const QUICKLIST: usize = 40;
const QUICKLIST_NODE: usize = 40;
/// A quicklist node's listpack limit under `list-max-listpack-size -2`.
const QUICKLIST_NODE_BYTES: usize = 8192;
/// A skiplist node's fixed part and one level.
const ZSL_NODE: usize = 32;
const ZSL_LEVEL: usize = 16;
/// A listpack's header and end marker.
const LP_EMPTY: usize = 7;

/// The jemalloc size class `n` bytes are served from.
pub fn jemalloc_size(n: usize) -> usize {
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return n.div_ceil(16) * 16;
    }
    // Four classes per doubling: (2^k, 2^(k+1)] in steps of 2^(k-2).
    let k = usize::BITS - 1 - (n - 1).leading_zeros();
    let step = 1usize << (k - 2);
    n.div_ceil(step).saturating_mul(step)
}

/// Allocated size of an sds string of `len` bytes; `type5` lets short
/// strings use the 1-byte header (keys and duplicated elements do).
fn sds_alloc(len: usize, type5: bool) -> usize {
    let header = match len {
        1..=31 if type5 => 1,
        0..=255 => 3,
        256..=65535 => 5,
        _ => 9,
    };
    jemalloc_size(header + len + 1)
}

/// Bytes of one listpack entry holding `s`.
fn lp_entry(s: &[u8]) -> usize {
    let body = match string_to_i64(s) {
        Some(v) if (0..=127).contains(&v) => 1,
        Some(v) if (-4096..=4095).contains(&v) => 2,
        Some(v) if i16::try_from(v).is_ok() => 3,
        Some(v) if (-(1 << 23)..(1 << 23)).contains(&v) => 4,
        Some(v) if i32::try_from(v).is_ok() => 5,
        Some(_) => 9,
        None if s.len() < 64 => 1 + s.len(),
        None if s.len() < 4096 => 2 + s.len(),
        None => 5 + s.len(),
    };
    let backlen = match body {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    body + backlen
}

/// Allocated size of a listpack of entries `items`.
fn listpack<'a>(items: impl Iterator<Item = &'a [u8]>) -> usize {
    jemalloc_size(LP_EMPTY + items.map(lp_entry).sum::<usize>())
}

/// Slots of a dict holding `n` entries (a power of two, at least 4).
fn dict_slots(n: usize) -> usize {
    n.max(4).next_power_of_two()
}

/// `sampled / samples * n`, the way Redis extrapolates from a sample.
fn extrapolate(sampled: usize, samples: usize, n: usize) -> usize {
    if samples == 0 {
        0
    } else {
        (sampled as f64 / samples as f64 * n as f64) as usize
    }
}

/// What MEMORY USAGE replies for `key` holding `v` written as `enc`:
/// Redis's `objectComputeSize(v, samples)` plus the key's sds and its
/// dict entry.
pub fn key_usage(key: &[u8], v: &Value, enc: StrEnc, samples: usize) -> usize {
    value_usage(v, enc, samples.max(1)) + sds_alloc(key.len(), true) + DICT_ENTRY
}

fn value_usage(v: &Value, enc: StrEnc, samples: usize) -> usize {
    let encoding = v.encoding(enc);
    match v {
        Value::Str(b) => match encoding {
            "int" => ROBJ,
            "embstr" if b.len() <= EMBSTR_MAX => jemalloc_size(ROBJ + 3 + b.len() + 1),
            _ => ROBJ + sds_alloc(b.len(), false),
        },
        Value::List(l) => {
            // Elements fill 8 KiB listpacks; the first `samples` nodes
            // stand for the others.
            let (mut sampled, mut seen, mut nodes) = (0, 0, 0);
            let mut cur = LP_EMPTY;
            for item in l.iter() {
                let e = lp_entry(item);
                if cur + e > QUICKLIST_NODE_BYTES && cur > LP_EMPTY {
                    sampled += QUICKLIST_NODE + jemalloc_size(cur);
                    nodes += 1;
                    cur = LP_EMPTY;
                    if nodes >= samples {
                        break;
                    }
                }
                cur += e;
                seen += 1;
            }
            // The last node, unless the walk stopped after the sample.
            if cur > LP_EMPTY {
                sampled += QUICKLIST_NODE + jemalloc_size(cur);
            }
            ROBJ + QUICKLIST + extrapolate(sampled, seen, l.len())
        }
        Value::Hash(h) if encoding == "listpack" => {
            ROBJ + listpack(h.iter().flat_map(|(f, v)| [f, v]))
        }
        Value::Hash(h) => {
            let sampled: usize = h
                .iter()
                .take(samples)
                .map(|(f, v)| sds_alloc(f.len(), true) + sds_alloc(v.len(), true) + DICT_ENTRY)
                .sum();
            ROBJ + DICT
                + 8 * dict_slots(h.len())
                + extrapolate(sampled, samples.min(h.len()), h.len())
        }
        Value::Set(s) if encoding == "intset" => {
            // An intset's width is that of its widest member.
            let width = s
                .members()
                .iter()
                .filter_map(|m| string_to_i64(m))
                .map(|x| {
                    if i16::try_from(x).is_ok() {
                        2
                    } else if i32::try_from(x).is_ok() {
                        4
                    } else {
                        8
                    }
                })
                .max()
                .unwrap_or(2);
            ROBJ + jemalloc_size(8 + width * s.len())
        }
        Value::Set(s) => {
            let sampled: usize = s
                .members()
                .iter()
                .take(samples)
                .map(|m| sds_alloc(m.len(), true) + DICT_ENTRY)
                .sum();
            ROBJ + DICT
                + 8 * dict_slots(s.len())
                + extrapolate(sampled, samples.min(s.len()), s.len())
        }
        Value::ZSet(z) if encoding == "listpack" => {
            let mut bytes = LP_EMPTY;
            let mut cur = z.first();
            while let Some(c) = cur {
                let (m, score) = z.entry(c);
                let text = crate::protocol::frame::format_double(score);
                bytes += lp_entry(m) + lp_entry(text.as_bytes());
                cur = z.next(c);
            }
            ROBJ + jemalloc_size(bytes)
        }
        Value::ZSet(z) => {
            // The header node has all 32 levels.
            let header = jemalloc_size(ZSL_NODE + 32 * ZSL_LEVEL);
            let (mut sampled, mut n) = (0, 0);
            let mut cur = z.first();
            while let Some(c) = cur {
                if n >= samples {
                    break;
                }
                let (m, _) = z.entry(c);
                // One level for three nodes in four, two for the rest
                // (Redis draws levels with p = 1/4).
                let levels = if n % 4 == 3 { 2 } else { 1 };
                sampled += sds_alloc(m.len(), true)
                    + DICT_ENTRY
                    + jemalloc_size(ZSL_NODE + levels * ZSL_LEVEL);
                n += 1;
                cur = z.next(c);
            }
            // `zset` and `zskiplist` structs, the dict, its slots.
            ROBJ + 16
                + 32
                + DICT
                + 8 * dict_slots(z.len())
                + header
                + extrapolate(sampled, n, z.len())
        }
        // One preallocated node listpack (`stream-node-max-bytes`) and
        // the entries.
        Value::Stream(s) => ROBJ + 4096 + s.mem(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn size_classes() {
        let classes = [
            (1, 8),
            (9, 16),
            (25, 32),
            (49, 64),
            (129, 160),
            (200, 224),
            (1006, 1024),
            (16385, 20480),
        ];
        for (n, c) in classes {
            assert_eq!(jemalloc_size(n), c, "{n}");
        }
    }

    #[test]
    fn strings_cost_what_redis_reports() {
        // Measured on redis-server 7.0.15 with the key "k".
        let cases: [(&[u8], StrEnc, usize); 6] = [
            (b"1", StrEnc::Derived, 48),
            (b"hello", StrEnc::Derived, 64),
            (&[b'a'; 44], StrEnc::Derived, 96),
            (&[b'a'; 45], StrEnc::Derived, 112),
            (&[b'a'; 1000], StrEnc::Derived, 1072),
            (b"hellox", StrEnc::Raw, 64),
        ];
        for (s, enc, want) in cases {
            let v = Value::Str(s.into());
            assert_eq!(key_usage(b"k", &v, enc, 5), want, "{}", s.len());
        }
    }

    #[test]
    fn small_collections_cost_what_redis_reports() {
        let mut l = crate::store::List::new();
        for x in [&b"a"[..], b"b", b"c"] {
            l.push(x, false);
        }
        let l = Value::List(Box::new(l));
        assert_eq!(key_usage(b"l", &l, StrEnc::Derived, 5), 144);
        let mut h = crate::store::Hash::default();
        h.insert(b"a", Bytes::from_static(b"1"));
        h.insert(b"b", Bytes::from_static(b"2"));
        let h = Value::Hash(Box::new(h));
        assert_eq!(key_usage(b"h", &h, StrEnc::Derived, 5), 80);
        for (members, want) in [
            ([&b"1"[..], b"2", b"3"], 64),
            ([&b"a"[..], b"b", b"c"], 232),
        ] {
            let mut s = crate::store::Set::default();
            for x in members {
                s.insert(x);
            }
            let mut s = Value::Set(Box::new(s));
            s.settle_encoding(&Default::default());
            assert_eq!(key_usage(b"s", &s, StrEnc::Derived, 5), want);
        }
    }

    #[test]
    fn bigger_lists_cost_more() {
        let mut last = 0;
        for n in [1usize, 10, 100, 1000, 10000] {
            let mut l = crate::store::List::new();
            for i in 0..n {
                l.push(format!("element-{i}").as_bytes(), false);
            }
            let u = key_usage(b"l", &Value::List(Box::new(l)), StrEnc::Derived, 5);
            assert!(u > last, "{n}: {u} <= {last}");
            last = u;
        }
    }
}
