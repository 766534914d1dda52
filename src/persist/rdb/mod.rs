//! Redis's RDB value encoding (`src/rdb.c` of redis-server 7.0):
//! how one value is written after its type byte, in RDB files and in
//! DUMP payloads, and read back.
//!
//! Values are written as Redis 7.0 writes them, so that herald's DUMP is
//! redis-server's for the same data and either server restores the
//! other's payloads:
//!
//! - strings: integers that fit 32 bits in their integer encodings,
//!   strings longer than 20 bytes LZF-compressed (`rdbcompression`);
//! - lists: quicklist 2, nodes of listpacks filled as
//!   `list-max-listpack-size` fills them;
//! - hashes and sorted sets: one listpack while within their
//!   `*-max-listpack-entries` / `-value` limits, else a plain hash / a
//!   `ZSET_2` (binary doubles, greatest score first);
//! - sets: an intset while every member is an integer and there are at
//!   most `set-max-intset-entries`, else a plain set;
//! - streams: `STREAM_LISTPACKS_2` with consumer groups ([`stream`]).
//!
//! The reader takes every encoding a Redis 7.0 RESTORE takes, older ones
//! included (ziplists, quicklist 1, zipmap, `ZSET` with text scores,
//! `STREAM_LISTPACKS`). It trusts nothing: every length is checked
//! against the bytes that are there, no allocation is sized by a claimed
//! count beyond the input's size, and anything malformed is `None`,
//! never a panic.
//!
//! A DUMP payload ([`dump`], [`restore`]) is the type byte and the value,
//! then the RDB version (2 bytes LE) and a CRC64 (Jones, 8 bytes LE) of
//! everything before it.

pub mod file;
pub mod listpack;
mod stream;
pub mod ziplist;

use bytes::Bytes;

use crate::protocol::frame::format_double;
use crate::store::{Hash, List, Set, Value, ZSet};
use listpack::canonical_i64;

/// The RDB version of redis-server 7.0.
pub const RDB_VERSION: u16 = 10;

/// Redis's CRC64 (Jones polynomial, reflected), as `crc64.c`.
pub(crate) const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

// Object types (`RDB_TYPE_*`).
const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_HASH_ZIPMAP: u8 = 9;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_STREAM_LISTPACKS: u8 = 15;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
const TYPE_STREAM_LISTPACKS_2: u8 = 19;

/// Quicklist node containers (`QUICKLIST_NODE_CONTAINER_*`).
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

/// `RDB_ENC_*`, under the `RDB_ENCVAL` bits of a length byte.
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// The configuration that decides how values are encoded (Redis's
/// defaults in `Default`).
#[derive(Debug, Clone)]
pub struct Encoding {
    /// `rdbcompression`.
    pub compress: bool,
    /// `rdbchecksum`: whole files end with their CRC64 (else 0).
    pub checksum: bool,
    /// `list-max-listpack-size`.
    pub list_fill: i64,
    /// `hash-max-listpack-entries`, `hash-max-listpack-value`.
    pub hash_entries: u64,
    pub hash_value: u64,
    /// `zset-max-listpack-entries`, `zset-max-listpack-value`.
    pub zset_entries: u64,
    pub zset_value: u64,
    /// `set-max-intset-entries`.
    pub set_intset: u64,
    /// `stream-node-max-bytes`, `stream-node-max-entries`.
    pub stream_node_bytes: u64,
    pub stream_node_entries: u64,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding {
            compress: true,
            checksum: true,
            list_fill: -2,
            hash_entries: 128,
            hash_value: 64,
            zset_entries: 128,
            zset_value: 64,
            set_intset: 512,
            stream_node_bytes: 4096,
            stream_node_entries: 100,
        }
    }
}

impl Encoding {
    /// The options in force in `cfg`.
    pub fn from_config(cfg: &crate::config::Config) -> Encoding {
        let mut enc = Encoding::default();
        let num = |name: &str| cfg.value(name).and_then(|v| v.parse::<i64>().ok());
        if let Some(v) = cfg.value("rdbcompression") {
            enc.compress = v != "no";
        }
        if let Some(v) = cfg.value("rdbchecksum") {
            enc.checksum = v != "no";
        }
        if let Some(v) = num("list-max-listpack-size") {
            enc.list_fill = v;
        }
        let unsigned = |name: &str, slot: &mut u64| {
            if let Some(v) = num(name).and_then(|v| u64::try_from(v).ok()) {
                *slot = v;
            }
        };
        unsigned("hash-max-listpack-entries", &mut enc.hash_entries);
        unsigned("hash-max-listpack-value", &mut enc.hash_value);
        unsigned("zset-max-listpack-entries", &mut enc.zset_entries);
        unsigned("zset-max-listpack-value", &mut enc.zset_value);
        unsigned("set-max-intset-entries", &mut enc.set_intset);
        unsigned("stream-node-max-bytes", &mut enc.stream_node_bytes);
        unsigned("stream-node-max-entries", &mut enc.stream_node_entries);
        enc
    }
}

/// A DUMP payload of `value`.
pub fn dump(value: &Value, enc: &Encoding) -> Vec<u8> {
    let mut out = Vec::new();
    write_object(&mut out, value, enc);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Redis's `verifyDumpPayload`: at least the footer, a version this
/// server knows, and a matching CRC64 (a CRC of 0 included: only RDB
/// files skip the check then).
pub fn payload_ok(payload: &[u8]) -> bool {
    let Some(split) = payload.len().checked_sub(10) else {
        return false;
    };
    let footer = &payload[split..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return false;
    }
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    let crc = u64::from_le_bytes(crc);
    CRC64.checksum(&payload[..split + 2]) == crc
}

/// The value of a DUMP payload already checked by [`payload_ok`]: its
/// type byte and the value, read from the whole payload as Redis reads
/// it (what follows the value is ignored). None: Redis's "Bad data
/// format".
pub fn restore(payload: &[u8]) -> Option<Value> {
    let mut r = Reader::new(payload);
    let ty = r.byte()?;
    read_object(&mut r, ty)
}

/// Appends the type byte and the encoding of `value` (`rdbSaveObjectType`
/// and `rdbSaveObject`).
pub fn write_object(out: &mut Vec<u8>, value: &Value, enc: &Encoding) {
    match value {
        Value::Str(s) => {
            out.push(TYPE_STRING);
            put_string(out, s, enc.compress);
        }
        Value::List(l) => {
            out.push(TYPE_LIST_QUICKLIST_2);
            let nodes = quicklist_nodes(l.iter(), enc.list_fill);
            put_len(out, nodes.len() as u64);
            for node in nodes {
                put_len(out, CONTAINER_PACKED);
                put_string(out, &node, enc.compress);
            }
        }
        Value::Hash(h) => {
            let small = h.len() as u64 <= enc.hash_entries
                && h.iter().all(|(f, v)| {
                    f.len() as u64 <= enc.hash_value && v.len() as u64 <= enc.hash_value
                });
            if small {
                out.push(TYPE_HASH_LISTPACK);
                let mut lp = listpack::Writer::new();
                for (f, v) in h.iter() {
                    lp.push(f);
                    lp.push(v);
                }
                put_string(out, &lp.finish(), enc.compress);
            } else {
                out.push(TYPE_HASH);
                put_len(out, h.len() as u64);
                for (f, v) in h.iter() {
                    put_string(out, f, enc.compress);
                    put_string(out, v, enc.compress);
                }
            }
        }
        Value::Set(s) => {
            let members: Vec<&[u8]> = s.members().iter().map(|m| m.as_ref()).collect();
            let intset = if members.len() as u64 <= enc.set_intset {
                ziplist::encode_intset(&members)
            } else {
                None
            };
            match intset {
                Some(is) => {
                    out.push(TYPE_SET_INTSET);
                    put_string(out, &is, enc.compress);
                }
                None => {
                    out.push(TYPE_SET);
                    put_len(out, members.len() as u64);
                    for m in members {
                        put_string(out, m, enc.compress);
                    }
                }
            }
        }
        Value::ZSet(z) => write_zset(out, z, enc),
        Value::Stream(s) => {
            out.push(TYPE_STREAM_LISTPACKS_2);
            stream::write(out, s, enc);
        }
    }
}

fn write_zset(out: &mut Vec<u8>, z: &ZSet, enc: &Encoding) {
    let mut entries = Vec::with_capacity(z.len());
    let mut cur = z.first();
    while let Some(c) = cur {
        entries.push(z.entry(c));
        cur = z.next(c);
    }
    let small = entries.len() as u64 <= enc.zset_entries
        && entries
            .iter()
            .all(|(m, _)| m.len() as u64 <= enc.zset_value);
    if small {
        out.push(TYPE_ZSET_LISTPACK);
        let mut lp = listpack::Writer::new();
        for (m, score) in &entries {
            lp.push(m);
            // `d2string`: integral scores as integers, others as %.17g
            // (the same text for the integers it covers).
            lp.push(format_double(*score).as_bytes());
        }
        put_string(out, &lp.finish(), enc.compress);
    } else {
        out.push(TYPE_ZSET_2);
        put_len(out, entries.len() as u64);
        // Greatest first, as Redis saves a skiplist (cheaper to load).
        for (m, score) in entries.iter().rev() {
            put_string(out, m, enc.compress);
            out.extend_from_slice(&score.to_le_bytes());
        }
    }
}

/// The listpacks of a quicklist holding `items`, split as Redis 7.0's
/// `_quicklistNodeAllowInsert` splits elements pushed at the tail: a
/// negative fill limits a node's bytes (4, 8, 16, 32 or 64 KiB), a
/// positive one its count (within 8 KiB).
pub fn quicklist_nodes<'a>(items: impl Iterator<Item = &'a [u8]>, fill: i64) -> Vec<Vec<u8>> {
    const SIZE_SAFETY_LIMIT: usize = 8192;
    const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
    // `quicklistSetFill`'s bounds.
    let fill = fill.clamp(-5, (1 << 15) - 1);
    let mut nodes = Vec::new();
    let mut cur: Option<listpack::Writer> = None;
    for item in items {
        let sz = item.len();
        let allowed = cur.as_ref().is_some_and(|node| {
            let mut overhead = if sz < 254 { 1 } else { 5 };
            overhead += if sz < 64 {
                1
            } else if sz < 16384 {
                2
            } else {
                5
            };
            let new_sz = node.bytes() + sz + overhead;
            let level = if fill < 0 {
                usize::try_from(-fill - 1)
                    .ok()
                    .and_then(|i| OPTIMIZATION_LEVEL.get(i))
            } else {
                None
            };
            match level {
                Some(&limit) if new_sz <= limit => true,
                _ if new_sz > SIZE_SAFETY_LIMIT => false,
                _ => (node.len() as i64) < fill,
            }
        });
        if !allowed {
            if let Some(done) = cur.take() {
                nodes.push(done.finish());
            }
            cur = Some(listpack::Writer::new());
        }
        if let Some(node) = cur.as_mut() {
            node.push(item);
        }
    }
    if let Some(done) = cur {
        nodes.push(done.finish());
    }
    nodes
}

/// `rdbSaveLen`.
pub fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// `rdbSaveRawString`: an integer encoding for short canonical integers
/// that fit 32 bits, LZF for strings longer than 20 bytes when
/// `compress` and it saves more than four bytes, else as it is.
pub fn put_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = canonical_i64(s) {
            if let Ok(b) = i8::try_from(v) {
                out.push(0xC0 | ENC_INT8);
                out.push(b as u8);
                return;
            }
            if let Ok(h) = i16::try_from(v) {
                out.push(0xC0 | ENC_INT16);
                out.extend_from_slice(&h.to_le_bytes());
                return;
            }
            if let Ok(w) = i32::try_from(v) {
                out.push(0xC0 | ENC_INT32);
                out.extend_from_slice(&w.to_le_bytes());
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(packed) = crate::util::lzf::compress(s, s.len() - 4) {
            out.push(0xC0 | ENC_LZF);
            put_len(out, packed.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A cursor over RDB bytes; every read is checked.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A length, or an `RDB_ENCVAL` string encoding.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes read so far (error messages name this offset).
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// One byte.
    pub fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn len_or_encoding(&mut self) -> Option<Len> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => Len::Plain((first & 0x3F) as u64),
            1 => Len::Plain(((first as u64 & 0x3F) << 8) | self.byte()? as u64),
            3 => Len::Encoded(first & 0x3F),
            _ if first == 0x80 => {
                Len::Plain(u32::from_be_bytes(self.take(4)?.try_into().ok()?) as u64)
            }
            _ if first == 0x81 => Len::Plain(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            _ => return None,
        })
    }

    /// `rdbLoadLen` (an encoding byte where a length is due is an error).
    pub fn read_len(&mut self) -> Option<u64> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Some(n),
            Len::Encoded(_) => None,
        }
    }

    /// A count of things that each take at least `unit` bytes: refused
    /// when the input cannot hold that many, so that it can size an
    /// allocation.
    pub fn count(&mut self, unit: usize) -> Option<usize> {
        let n = usize::try_from(self.read_len()?).ok()?;
        (n <= self.remaining() / unit.max(1)).then_some(n)
    }

    /// `rdbGenericLoadStringObject`: plain, an integer encoding, or LZF.
    pub fn string(&mut self) -> Option<Vec<u8>> {
        let n = match self.len_or_encoding()? {
            Len::Plain(n) => n,
            Len::Encoded(ENC_INT8) => return Some(int_text(self.take(1)?[0] as i8 as i64)),
            Len::Encoded(ENC_INT16) => {
                let b = self.take(2)?;
                return Some(int_text(i16::from_le_bytes([b[0], b[1]]) as i64));
            }
            Len::Encoded(ENC_INT32) => {
                let b = self.take(4)?;
                return Some(int_text(i32::from_le_bytes(b.try_into().ok()?) as i64));
            }
            Len::Encoded(ENC_LZF) => {
                let clen = usize::try_from(self.read_len()?).ok()?;
                let ulen = usize::try_from(self.read_len()?).ok()?;
                let compressed = self.take(clen)?;
                // A back-reference of three bytes makes at most 264:
                // a larger claim cannot be met and would only reserve
                // memory.
                if ulen > clen.saturating_mul(90).saturating_add(64) {
                    return None;
                }
                if ulen == 0 {
                    // liblzf decompresses nothing into no room, and Redis
                    // takes the 0 it returns as the announced length.
                    return Some(Vec::new());
                }
                return lzf::decompress(compressed, ulen)
                    .ok()
                    .filter(|out| out.len() == ulen);
            }
            Len::Encoded(_) => return None,
        };
        self.take(usize::try_from(n).ok()?).map(<[u8]>::to_vec)
    }

    /// A string as `Bytes`.
    pub fn bytes(&mut self) -> Option<Bytes> {
        self.string().map(Bytes::from)
    }

    /// `rdbLoadMillisecondTime` (8 bytes LE).
    pub fn millis(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// `rdbLoadBinaryDoubleValue` (8 bytes LE).
    fn binary_double(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// `rdbLoadDoubleValue`: the text form of `RDB_TYPE_ZSET` (a length
    /// byte, 253 / 254 / 255 for nan / inf / -inf).
    fn text_double(&mut self) -> Option<f64> {
        match self.byte()? {
            253 => Some(f64::NAN),
            254 => Some(f64::INFINITY),
            255 => Some(f64::NEG_INFINITY),
            n => {
                let text = self.take(n as usize)?;
                crate::util::strtod::strtod(text).map(|(v, _)| v)
            }
        }
    }
}

fn int_text(v: i64) -> Vec<u8> {
    itoa::Buffer::new().format(v).as_bytes().to_vec()
}

/// Reads a value of type `ty` (`rdbLoadObject`). Empty collections and
/// duplicates are refused, as Redis refuses them.
pub fn read_object(r: &mut Reader, ty: u8) -> Option<Value> {
    let value = match ty {
        TYPE_STRING => Value::Str(r.bytes()?.into()),
        TYPE_LIST => {
            let n = r.count(1)?;
            let mut l = List::new();
            for _ in 0..n {
                l.push(&r.bytes()?, false);
            }
            Value::List(Box::new(l))
        }
        TYPE_SET => {
            let n = r.count(1)?;
            let mut s = Set::default();
            for _ in 0..n {
                if !s.insert(&r.bytes()?) {
                    return None;
                }
            }
            Value::Set(Box::new(s))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.count(2)?;
            let mut z = ZSet::default();
            for _ in 0..n {
                let m = r.string()?;
                let score = if ty == TYPE_ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                if score.is_nan() || !z.insert(&m, score) {
                    return None;
                }
            }
            Value::ZSet(Box::new(z))
        }
        TYPE_HASH => {
            let n = r.count(2)?;
            let mut h = Hash::default();
            for _ in 0..n {
                let f = r.string()?;
                let v = r.bytes()?;
                if !h.insert(&f, v) {
                    return None;
                }
            }
            Value::Hash(Box::new(h))
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let n = r.count(1)?;
            let mut l = List::new();
            for _ in 0..n {
                let container = if ty == TYPE_LIST_QUICKLIST_2 {
                    r.read_len()?
                } else {
                    CONTAINER_PACKED
                };
                let blob = r.string()?;
                match container {
                    CONTAINER_PLAIN => l.push(&blob, false),
                    CONTAINER_PACKED if ty == TYPE_LIST_QUICKLIST_2 => {
                        for item in listpack::decode(&blob)? {
                            match item {
                                listpack::Item::Str(s) => l.push(s, false),
                                listpack::Item::Int(v) => {
                                    l.push(itoa::Buffer::new().format(v).as_bytes(), false)
                                }
                            }
                        }
                    }
                    CONTAINER_PACKED => {
                        for item in ziplist::decode_ziplist(&blob)? {
                            l.push(&item, false);
                        }
                    }
                    _ => return None,
                }
            }
            Value::List(Box::new(l))
        }
        TYPE_LIST_ZIPLIST => {
            let blob = r.string()?;
            let mut l = List::new();
            for item in ziplist::decode_ziplist(&blob)? {
                l.push(&item, false);
            }
            Value::List(Box::new(l))
        }
        TYPE_SET_INTSET => {
            let blob = r.string()?;
            let mut s = Set::default();
            for v in ziplist::decode_intset(&blob)? {
                s.insert(&int_text(v));
            }
            Value::Set(Box::new(s))
        }
        TYPE_HASH_ZIPMAP => {
            let blob = r.string()?;
            hash_of(ziplist::decode_zipmap(&blob)?)?
        }
        TYPE_HASH_ZIPLIST => {
            let blob = r.string()?;
            hash_of(pairs(ziplist::decode_ziplist(&blob)?)?)?
        }
        TYPE_HASH_LISTPACK => {
            let blob = r.string()?;
            let items = listpack::decode(&blob)?;
            hash_of(pairs(items.into_iter().map(|i| i.to_vec()).collect())?)?
        }
        TYPE_ZSET_ZIPLIST => {
            let blob = r.string()?;
            zset_of(pairs(ziplist::decode_ziplist(&blob)?)?)?
        }
        TYPE_ZSET_LISTPACK => {
            let blob = r.string()?;
            let items = listpack::decode(&blob)?;
            zset_of(pairs(items.into_iter().map(|i| i.to_vec()).collect())?)?
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 => {
            Value::Stream(Box::new(stream::read(r, ty == TYPE_STREAM_LISTPACKS_2)?))
        }
        _ => return None,
    };
    (!value.is_empty_collection()).then_some(value)
}

/// Alternating elements as pairs (None for an odd count).
fn pairs(items: Vec<Vec<u8>>) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut it = items.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Some(out)
}

fn hash_of(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Option<Value> {
    let mut h = Hash::default();
    for (f, v) in pairs {
        if !h.insert(&f, Bytes::from(v)) {
            return None;
        }
    }
    Some(Value::Hash(Box::new(h)))
}

/// Member/score pairs of a ziplist or listpack sorted set; scores are
/// read as `zzlStrtod` reads them.
fn zset_of(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Option<Value> {
    let mut z = ZSet::default();
    for (m, s) in pairs {
        let (score, _) = crate::util::strtod::strtod(&s)?;
        if score.is_nan() || !z.insert(&m, score) {
            return None;
        }
    }
    Some(Value::ZSet(Box::new(z)))
}

#[cfg(test)]
mod tests;
