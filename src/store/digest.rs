//! The data set's fingerprint as redis-server 7.0 computes it for DEBUG
//! DIGEST and DEBUG DIGEST-VALUE (`debug.c`'s `xorObjectDigest` and
//! `computeDatasetDigest`), bit for bit: tools and Redis's own tests
//! compare a primary's digest with its replicas', and a herald replica of a
//! redis-server primary must agree with it.
//!
//! Unordered collections (the keys, a set's members, a hash's fields, a
//! sorted set's members) are combined with XOR of SHA1s, so their order
//! does not matter; ordered ones (a list, a stream) are chained, each step
//! hashing the digest so far.

use sha1::{Digest as _, Sha1};

use super::stream::StreamId;
use super::Value;
use crate::protocol::frame::format_double;

/// A 20-byte SHA1-sized digest.
pub type Digest = [u8; 20];

/// XORs the SHA1 of `data` into `d` (`xorDigest`).
fn xor(d: &mut Digest, data: &[u8]) {
    let hash = Sha1::digest(data);
    for (a, b) in d.iter_mut().zip(hash.iter()) {
        *a ^= b;
    }
}

/// XORs `data` in, then replaces `d` by its own SHA1 (`mixDigest`).
fn mix(d: &mut Digest, data: &[u8]) {
    xor(d, data);
    let hash = Sha1::digest(&d[..]);
    d.copy_from_slice(&hash);
}

/// Redis's type number (`OBJ_STRING` ... `OBJ_STREAM`).
fn type_number(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// Mixes one value (and whether its key has a TTL) into `d`
/// (`xorObjectDigest`).
pub fn mix_value(d: &mut Digest, v: &Value, has_ttl: bool) {
    mix(d, &type_number(v).to_be_bytes());
    match v {
        Value::Str(s) => mix(d, s),
        Value::List(l) => {
            for item in l.iter() {
                mix(d, item);
            }
        }
        Value::Set(s) => {
            for m in s.members() {
                xor(d, m);
            }
        }
        Value::ZSet(z) => {
            let mut cur = z.first();
            while let Some(c) = cur {
                let (m, score) = z.entry(c);
                let mut e = Digest::default();
                mix(&mut e, m);
                mix(&mut e, format_double(score).as_bytes());
                xor(d, &e);
                cur = z.next(c);
            }
        }
        Value::Hash(h) => {
            for (f, v) in h.iter() {
                let mut e = Digest::default();
                mix(&mut e, f);
                mix(&mut e, v);
                xor(d, &e);
            }
        }
        Value::Stream(s) => {
            s.visit_range(StreamId::MIN, StreamId::MAX, 0, false, |id, fields| {
                mix(d, format!("{}.{}", id.ms, id.seq).as_bytes());
                for (f, v) in fields {
                    mix(d, f);
                    mix(d, v);
                }
            });
        }
    }
    if has_ttl {
        xor(d, b"!!expire!!");
    }
}

/// The digest of one key's value as DEBUG DIGEST-VALUE gives it (all
/// zeros for a missing key).
pub fn value_digest(v: Option<&Value>, has_ttl: bool) -> Digest {
    let mut d = Digest::default();
    if let Some(v) = v {
        mix_value(&mut d, v, has_ttl);
    }
    d
}

/// Folds one database into the data-set digest `total`: its number, then
/// each key with its value (`computeDatasetDigest`). Empty databases are
/// skipped, as Redis skips them.
pub fn mix_database<'a>(
    total: &mut Digest,
    index: usize,
    keys: impl Iterator<Item = (&'a [u8], &'a Value, bool)>,
) {
    let mut keys = keys.peekable();
    if keys.peek().is_none() {
        return;
    }
    mix(total, &(index as u32).to_be_bytes());
    for (k, v, has_ttl) in keys {
        let mut d = Digest::default();
        mix(&mut d, k);
        mix_value(&mut d, v, has_ttl);
        xor(total, &d);
    }
}

/// A digest as DEBUG prints it: 40 lowercase hex digits.
pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
