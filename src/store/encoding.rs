//! The internal representation Redis 7.0 would give each value, for
//! OBJECT ENCODING and MEMORY USAGE.
//!
//! herald stores every value of a type the same way; Redis switches
//! between a compact and a general representation under thresholds from
//! the configuration, and the switch only goes one way (a hash that
//! became `hashtable` stays one after fields are deleted). So that
//! OBJECT ENCODING answers as Redis would after the same commands, each
//! hash, set and sorted set carries a [`Track`]: whether it has switched,
//! and what was inserted since the database last checked it. The database
//! checks ([`Value::settle_encoding`]) after every write, against the
//! thresholds in force then ([`Limits`], snapshot when the database is
//! locked), which is when Redis converts: at the insertion that crosses a
//! threshold. Lists are always `quicklist` in Redis 7.0 and streams
//! `stream`.
//!
//! Strings are `int`, `embstr` or `raw` from their content as SET leaves
//! them, unless the command that wrote them leaves another representation
//! ([`StrEnc`], kept beside the value in the keyspace: APPEND and SETRANGE
//! make `raw`, INCRBYFLOAT never makes `int`).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::Value;
use crate::config::Config;
use crate::protocol::parse::string_to_i64;

/// Longest string Redis stores as `embstr` (`OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
pub const EMBSTR_MAX: usize = 44;

/// The encoding thresholds of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `hash-max-listpack-entries`, `hash-max-listpack-value`.
    pub hash_entries: usize,
    pub hash_value: usize,
    /// `set-max-intset-entries`.
    pub set_entries: usize,
    /// `zset-max-listpack-entries`, `zset-max-listpack-value`.
    pub zset_entries: usize,
    pub zset_value: usize,
    /// `stream-node-max-bytes`, `stream-node-max-entries` (0 = no limit):
    /// where a stream starts a new node, which decides what an
    /// approximate trim can remove.
    pub stream_node_bytes: usize,
    pub stream_node_entries: usize,
}

impl Default for Limits {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        Limits {
            hash_entries: 512,
            hash_value: 64,
            set_entries: 512,
            zset_entries: 128,
            zset_value: 64,
            stream_node_bytes: 4096,
            stream_node_entries: 100,
        }
    }
}

/// The thresholds, shared by the databases (read when one is locked,
/// refreshed at start and after CONFIG SET).
#[derive(Debug)]
pub struct Settings {
    values: [AtomicUsize; 7],
}

impl Default for Settings {
    fn default() -> Self {
        let d = Limits::default();
        Settings {
            values: [
                AtomicUsize::new(d.hash_entries),
                AtomicUsize::new(d.hash_value),
                AtomicUsize::new(d.set_entries),
                AtomicUsize::new(d.zset_entries),
                AtomicUsize::new(d.zset_value),
                AtomicUsize::new(d.stream_node_bytes),
                AtomicUsize::new(d.stream_node_entries),
            ],
        }
    }
}

/// The configuration names of [`Settings::values`], in order.
const NAMES: [&str; 7] = [
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "set-max-intset-entries",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "stream-node-max-bytes",
    "stream-node-max-entries",
];

impl Settings {
    /// Reads the thresholds from the configuration.
    pub fn configure(&self, cfg: &Config) {
        for (slot, name) in self.values.iter().zip(NAMES) {
            if let Some(n) = cfg.value(name).and_then(|v| v.parse::<u64>().ok()) {
                slot.store(usize::try_from(n).unwrap_or(usize::MAX), Relaxed);
            }
        }
    }

    /// The thresholds in force.
    pub fn limits(&self) -> Limits {
        let [a, b, c, d, e, f, g] = &self.values;
        Limits {
            hash_entries: a.load(Relaxed),
            hash_value: b.load(Relaxed),
            set_entries: c.load(Relaxed),
            zset_entries: d.load(Relaxed),
            zset_value: e.load(Relaxed),
            stream_node_bytes: f.load(Relaxed),
            stream_node_entries: g.load(Relaxed),
        }
    }
}

/// A collection's representation: switched to the general one or not, and
/// what was inserted since the last check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Track {
    /// Switched to `hashtable` / `skiplist` (never switches back).
    big: bool,
    /// The longest element inserted since the last check.
    longest: usize,
    /// A set member that is not an integer was inserted since the last check.
    non_int: bool,
}

impl Track {
    /// Notes an inserted element (hash field or value, sorted set member).
    #[inline]
    pub fn saw(&mut self, len: usize) {
        if !self.big && len > self.longest {
            self.longest = len;
        }
    }

    /// Notes an inserted set member (an `intset` holds integers only).
    #[inline]
    pub fn saw_member(&mut self, m: &[u8]) {
        if !self.big && !self.non_int && string_to_i64(m).is_none() {
            self.non_int = true;
        }
    }

    /// Switches if `over`, and forgets what was inserted.
    fn settle(&mut self, over: bool) {
        self.big |= over;
        self.longest = 0;
        self.non_int = false;
    }
}

/// How a string was last written, when its content alone does not tell
/// Redis's representation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum StrEnc {
    /// As SET leaves it: `int` if it reads as an integer, else `embstr`
    /// up to 44 bytes, else `raw`.
    #[default]
    Derived = 0,
    /// Modified in place (APPEND, SETRANGE): `raw`.
    Raw = 1,
    /// Never `int` (INCRBYFLOAT's result): `embstr` or `raw` by length.
    NotInt = 2,
}

impl Value {
    /// After a write: switches a collection's representation if what was
    /// inserted crossed a threshold of `lim` (as Redis converts then).
    pub fn settle_encoding(&mut self, lim: &Limits) {
        match self {
            Value::Hash(h) => {
                let over = h.len() > lim.hash_entries || h.enc.longest > lim.hash_value;
                h.enc.settle(over);
                let table = h.enc.big;
                h.settle_form(table, lim.hash_entries);
            }
            Value::Set(s) => {
                let over = s.enc.non_int || s.len() > lim.set_entries;
                s.enc.settle(over);
            }
            Value::ZSet(z) => {
                let over = z.len() > lim.zset_entries || z.enc.longest > lim.zset_value;
                z.enc.settle(over);
            }
            Value::Str(_) | Value::List(_) | Value::Stream(_) => {}
        }
    }

    /// Redis's name for the representation (OBJECT ENCODING); `s` is how a
    /// string was written.
    pub fn encoding(&self, s: StrEnc) -> &'static str {
        match self {
            Value::Str(b) => str_encoding(b, s),
            Value::List(_) => "quicklist",
            Value::Hash(h) if h.enc.big => "hashtable",
            Value::Hash(_) => "listpack",
            Value::Set(s) if s.enc.big => "hashtable",
            Value::Set(_) => "intset",
            Value::ZSet(z) if z.enc.big => "skiplist",
            Value::ZSet(_) => "listpack",
            Value::Stream(_) => "stream",
        }
    }
}

/// The representation of string `b` written as `s` says.
pub fn str_encoding(b: &[u8], s: StrEnc) -> &'static str {
    match s {
        StrEnc::Raw => "raw",
        StrEnc::Derived if b.len() <= 20 && string_to_i64(b).is_some() => "int",
        _ if b.len() <= EMBSTR_MAX => "embstr",
        _ => "raw",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Hash, Set, ZSet};
    use bytes::Bytes;

    #[test]
    fn strings() {
        assert_eq!(str_encoding(b"1234", StrEnc::Derived), "int");
        assert_eq!(
            str_encoding(b"-9223372036854775808", StrEnc::Derived),
            "int"
        );
        assert_eq!(
            str_encoding(b"9223372036854775808", StrEnc::Derived),
            "embstr"
        );
        assert_eq!(str_encoding(b"01", StrEnc::Derived), "embstr");
        assert_eq!(str_encoding(&[b'a'; 44], StrEnc::Derived), "embstr");
        assert_eq!(str_encoding(&[b'a'; 45], StrEnc::Derived), "raw");
        assert_eq!(str_encoding(b"12", StrEnc::Raw), "raw");
        assert_eq!(str_encoding(b"12", StrEnc::NotInt), "embstr");
    }

    #[test]
    fn conversions_are_one_way() {
        let lim = Limits {
            hash_entries: 2,
            hash_value: 4,
            set_entries: 2,
            zset_entries: 2,
            zset_value: 4,
            ..Limits::default()
        };
        let mut h = Value::Hash(Box::default());
        if let Value::Hash(x) = &mut h {
            x.insert(b"a", Bytes::from_static(b"1"));
        }
        h.settle_encoding(&lim);
        assert_eq!(h.encoding(StrEnc::Derived), "listpack");
        if let Value::Hash(x) = &mut h {
            x.insert(b"b", Bytes::from_static(b"12345"));
        }
        h.settle_encoding(&lim);
        assert_eq!(h.encoding(StrEnc::Derived), "hashtable");
        if let Value::Hash(x) = &mut h {
            x.remove(b"b");
        }
        h.settle_encoding(&lim);
        assert_eq!(h.encoding(StrEnc::Derived), "hashtable");

        let mut s = Value::Set(Box::<Set>::default());
        if let Value::Set(x) = &mut s {
            x.insert(b"1");
            x.insert(b"2");
        }
        s.settle_encoding(&lim);
        assert_eq!(s.encoding(StrEnc::Derived), "intset");
        if let Value::Set(x) = &mut s {
            x.insert(b"3");
        }
        s.settle_encoding(&lim);
        assert_eq!(s.encoding(StrEnc::Derived), "hashtable");
        let mut s = Value::Set(Box::<Set>::default());
        if let Value::Set(x) = &mut s {
            x.insert(b"x");
        }
        s.settle_encoding(&lim);
        assert_eq!(s.encoding(StrEnc::Derived), "hashtable");

        let mut z = Value::ZSet(Box::<ZSet>::default());
        if let Value::ZSet(x) = &mut z {
            x.insert(b"abcd", 1.0);
        }
        z.settle_encoding(&lim);
        assert_eq!(z.encoding(StrEnc::Derived), "listpack");
        if let Value::ZSet(x) = &mut z {
            x.insert(b"abcde", 1.0);
        }
        z.settle_encoding(&lim);
        assert_eq!(z.encoding(StrEnc::Derived), "skiplist");
        let _ = Hash::default();
    }
}
