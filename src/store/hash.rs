//! The hash type: field → value, insertion-ordered, in one of two forms
//! that follow Redis's two encodings.
//!
//! - Packed (Redis's `listpack`): every field and value in one byte
//!   buffer, each preceded by its length as a LEB128 varint, in insertion
//!   order. Lookups scan it linearly, which is fast at the few hundred
//!   short entries this form is kept for, and a small hash costs one
//!   allocation instead of a table plus two `Bytes` per field.
//! - Table (Redis's `hashtable`): an `IndexMap` of compact fields and values
//!   (`Key`, `Str`: short ones inline), for O(1) field access,
//!   O(1) random fields (HRANDFIELD) and the same downward, deletion-safe
//!   cursor as the keyspace for HSCAN.
//!
//! Which form a hash has is decided where OBJECT ENCODING's answer is
//! ([`super::Value::settle_encoding`], after each write): the packed form
//! is converted to the table once Redis would convert, and never back.
//! Within one write, a packed hash also converts itself as soon as it
//! outgrows the entry limit last settled, so a single large HSET or RDB
//! load stays linear.

use bytes::Bytes;

use super::{Key, Map, Str};

/// Estimated bytes per field of the table form besides field and value
/// contents.
pub const FIELD_OVERHEAD: usize = 96;

/// The entry limit a hash packs up to before the database first settles
/// it: Redis 7.0's default `hash-max-listpack-entries`.
const DEFAULT_PACKED_MAX: usize = 512;

/// A hash value.
#[derive(Debug, Clone)]
pub struct Hash {
    repr: Repr,
    /// Sum of field and value lengths, for the table form's estimate.
    bytes: usize,
    /// Most entries the packed form takes before converting itself
    /// (`hash-max-listpack-entries` at the last settle).
    packed_max: usize,
    /// Redis's representation (listpack / hashtable), see `encoding`.
    pub(super) enc: super::encoding::Track,
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            repr: Repr::Packed(Packed::default()),
            bytes: 0,
            packed_max: DEFAULT_PACKED_MAX,
            enc: Default::default(),
        }
    }
}

#[derive(Debug, Clone)]
enum Repr {
    Packed(Packed),
    /// Boxed so that a packed hash does not carry the table's size.
    Table(Box<Map<Key, Str>>),
}

impl Hash {
    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.len,
            Repr::Table(m) => m.len(),
        }
    }

    /// True with no field.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated heap bytes (maxmemory, INFO): the buffer for the packed
    /// form, contents plus a per-field overhead for the table.
    pub fn mem(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.buf.capacity(),
            Repr::Table(m) => self.bytes + m.len() * FIELD_OVERHEAD,
        }
    }

    /// True in the packed form, where positional access is linear.
    pub fn is_packed(&self) -> bool {
        matches!(self.repr, Repr::Packed(_))
    }

    /// The fields and values in order (insertion order for the packed
    /// form; the table's order, deletions swapping, otherwise).
    pub fn iter(&self) -> Iter<'_> {
        Iter(match &self.repr {
            Repr::Packed(p) => IterRepr::Packed(p.iter()),
            Repr::Table(m) => IterRepr::Table(m.iter()),
        })
    }

    /// As [`Hash::iter`], owned for replies: the table's long values are
    /// shared, the packed form's short strings copied.
    pub fn iter_bytes(&self) -> impl Iterator<Item = (Bytes, Bytes)> + '_ {
        let (packed, table) = match &self.repr {
            Repr::Packed(p) => (Some(p.iter()), None),
            Repr::Table(m) => (None, Some(m.iter())),
        };
        let packed = packed
            .into_iter()
            .flatten()
            .map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)));
        let table = table
            .into_iter()
            .flatten()
            .map(|(f, v)| (Bytes::copy_from_slice(f.as_bytes()), v.to_bytes()));
        packed.chain(table)
    }

    /// The field and value at position `i` of [`Hash::iter`]'s order
    /// (linear in the packed form).
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Packed(p) => p.iter().nth(i),
            Repr::Table(m) => m.get_index(i).map(|(f, v)| (f.as_bytes(), &v[..])),
        }
    }

    /// As [`Hash::get_index`], owned.
    pub fn get_index_bytes(&self, i: usize) -> Option<(Bytes, Bytes)> {
        match &self.repr {
            Repr::Packed(p) => p
                .iter()
                .nth(i)
                .map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v))),
            Repr::Table(m) => m
                .get_index(i)
                .map(|(f, v)| (Bytes::copy_from_slice(f.as_bytes()), v.to_bytes())),
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(p) => p.find(field).map(|e| &p.buf[e.value.clone()]),
            Repr::Table(m) => m.get(field).map(|v| &v[..]),
        }
    }

    /// The value of `field`, owned for a reply (shared, not copied, in
    /// the table form, where values may be large).
    pub fn get_bytes(&self, field: &[u8]) -> Option<Bytes> {
        match &self.repr {
            Repr::Packed(p) => p
                .find(field)
                .map(|e| Bytes::copy_from_slice(&p.buf[e.value])),
            Repr::Table(m) => m.get(field).map(Str::to_bytes),
        }
    }

    /// Sets `field` (copied if new); true if the field is new.
    pub fn insert(&mut self, field: &[u8], value: Bytes) -> bool {
        let vlen = value.len();
        self.enc.saw(field.len().max(vlen));
        if let Repr::Packed(p) = &mut self.repr {
            if let Some(e) = p.find(field) {
                self.bytes = self.bytes + vlen - e.value.len();
                p.replace_value(e, &value);
                return false;
            }
            if p.len < self.packed_max {
                p.push(field, &value);
                self.bytes += field.len() + vlen;
                return true;
            }
            self.make_table();
        }
        let Repr::Table(m) = &mut self.repr else {
            return false;
        };
        match m.get_mut(field) {
            Some(v) => {
                self.bytes = self.bytes + vlen - v.len();
                *v = value.into();
                false
            }
            None => {
                self.bytes += field.len() + vlen;
                m.insert(Key::from(field), value.into());
                true
            }
        }
    }

    /// Removes `field`; true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let removed = match &mut self.repr {
            Repr::Packed(p) => p.remove(field),
            Repr::Table(m) => {
                // Small tables keep insertion order on delete too.
                let r = if m.len() <= 128 {
                    m.shift_remove_full(field)
                } else {
                    m.swap_remove_full(field)
                };
                r.map(|(_, k, v)| k.len() + v.len())
            }
        };
        match removed {
            Some(n) => {
                self.bytes -= n;
                true
            }
            None => false,
        }
    }

    /// Makes the form follow the encoding just settled (`table` for
    /// `hashtable`) and notes the entry limit in force.
    pub(super) fn settle_form(&mut self, table: bool, entries: usize) {
        self.packed_max = entries;
        match (&self.repr, table) {
            (Repr::Packed(_), true) => self.make_table(),
            // Converted within the write before the limit was known, by a
            // limit lower than the configured one: Redis packs it still.
            (Repr::Table(m), false) => {
                let mut p = Packed::default();
                p.buf.reserve_exact(self.bytes + 2 * m.len());
                for (f, v) in m.iter() {
                    p.push(f.as_bytes(), v);
                }
                self.repr = Repr::Packed(p);
            }
            _ => {}
        }
    }

    /// Converts the packed form to the table, order kept.
    fn make_table(&mut self) {
        if let Repr::Packed(p) = &self.repr {
            let mut m = Map::with_capacity_and_hasher(p.len + 1, Default::default());
            for (f, v) in p.iter() {
                m.insert(Key::from(f), Str::from(v));
            }
            self.repr = Repr::Table(Box::new(m));
        }
    }
}

/// The fields and values of a hash in order, borrowed.
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Packed(PackedIter<'a>),
    Table(indexmap::map::Iter<'a, Key, Str>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Packed(p) => p.next(),
            IterRepr::Table(t) => t.next().map(|(f, v)| (f.as_bytes(), &v[..])),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Packed(p) => p.size_hint(),
            IterRepr::Table(t) => t.size_hint(),
        }
    }
}

/// The packed form: `len(field) field len(value) value` repeated, lengths
/// as LEB128 varints.
#[derive(Debug, Clone, Default)]
struct Packed {
    buf: Vec<u8>,
    len: usize,
}

/// Where one entry of a [`Packed`] buffer lies.
#[derive(Debug, Clone)]
struct Entry {
    /// Start of the field's length.
    start: usize,
    /// Start of the value's length.
    value_len_at: usize,
    /// The value's bytes.
    value: std::ops::Range<usize>,
}

impl Entry {
    /// One past the entry's last byte.
    fn end(&self) -> usize {
        self.value.end
    }
}

/// Appends `n` as a LEB128 varint.
fn put_varint(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Reads a LEB128 varint at `*pos`, advancing it; None past the end.
#[inline]
fn get_varint(buf: &[u8], pos: &mut usize) -> Option<usize> {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(n);
        }
        shift += 7;
        if shift >= usize::BITS {
            return None;
        }
    }
}

impl Packed {
    fn iter(&self) -> PackedIter<'_> {
        PackedIter {
            buf: &self.buf,
            pos: 0,
            left: self.len,
        }
    }

    /// The entry of `field`.
    fn find(&self, field: &[u8]) -> Option<Entry> {
        let buf = &self.buf[..];
        let mut pos = 0;
        while pos < buf.len() {
            let start = pos;
            let flen = get_varint(buf, &mut pos)?;
            let fend = pos + flen;
            let hit = flen == field.len() && buf.get(pos..fend)? == field;
            pos = fend;
            let value_len_at = pos;
            let vlen = get_varint(buf, &mut pos)?;
            let value = pos..pos + vlen;
            pos = value.end;
            if hit {
                return Some(Entry {
                    start,
                    value_len_at,
                    value,
                });
            }
        }
        None
    }

    /// Appends a new field.
    fn push(&mut self, field: &[u8], value: &[u8]) {
        self.buf.reserve(field.len() + value.len() + 2);
        put_varint(&mut self.buf, field.len());
        self.buf.extend_from_slice(field);
        put_varint(&mut self.buf, value.len());
        self.buf.extend_from_slice(value);
        self.len += 1;
    }

    /// Replaces the value of entry `e` in place.
    fn replace_value(&mut self, e: Entry, value: &[u8]) {
        if e.value.len() == value.len() {
            self.buf[e.value].copy_from_slice(value);
            return;
        }
        let mut tail = Vec::with_capacity(value.len() + 10);
        put_varint(&mut tail, value.len());
        tail.extend_from_slice(value);
        self.buf.splice(e.value_len_at..e.end(), tail);
    }

    /// Removes `field`, keeping the others' order; its field and value
    /// lengths summed if it was there.
    fn remove(&mut self, field: &[u8]) -> Option<usize> {
        let e = self.find(field)?;
        self.buf.drain(e.start..e.end());
        self.len -= 1;
        if self.len == 0 {
            self.buf = Vec::new();
        }
        Some(field.len() + e.value.len())
    }
}

/// The entries of a [`Packed`] buffer in order.
struct PackedIter<'a> {
    buf: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.buf;
        let mut pos = self.pos;
        let flen = get_varint(buf, &mut pos)?;
        let field = buf.get(pos..pos + flen)?;
        pos += flen;
        let vlen = get_varint(buf, &mut pos)?;
        let value = buf.get(pos..pos + vlen)?;
        self.pos = pos + vlen;
        self.left = self.left.saturating_sub(1);
        Some((field, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    #[test]
    fn packed_basics() {
        let mut h = Hash::default();
        assert!(h.insert(b"a", b(b"1")));
        assert!(h.insert(b"b", b(b"22")));
        assert!(h.insert(b"c", b(&[b'x'; 300])));
        assert!(!h.insert(b"b", b(b"333")));
        assert!(!h.insert(b"a", b(b"9")));
        assert!(h.is_packed());
        assert_eq!(h.len(), 3);
        assert_eq!(h.get(b"b"), Some(&b"333"[..]));
        assert_eq!(h.get(b"c").map(<[u8]>::len), Some(300));
        assert_eq!(h.get(b"d"), None);
        let keys: Vec<&[u8]> = h.iter().map(|(f, _)| f).collect();
        assert_eq!(keys, [&b"a"[..], b"b", b"c"]);
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(h.get_index(0), Some((&b"b"[..], &b"333"[..])));
        assert!(h.remove(b"b") && h.remove(b"c"));
        assert!(h.is_empty());
        assert_eq!(h.mem(), 0);
    }

    #[test]
    fn converts_past_the_limit_within_a_write() {
        let mut h = Hash::default();
        h.settle_form(false, 4);
        for i in 0..5u8 {
            h.insert(&[i], b(b"v"));
        }
        assert!(!h.is_packed());
        let keys: Vec<u8> = h.iter().map(|(f, _)| f[0]).collect();
        assert_eq!(keys, [0, 1, 2, 3, 4]);
        // A higher configured limit packs it again.
        h.settle_form(false, 10);
        assert!(h.is_packed());
        assert_eq!(h.len(), 5);
        h.settle_form(true, 10);
        assert!(!h.is_packed());
        assert_eq!(h.get(&[3]), Some(&b"v"[..]));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, Vec<u8>),
        Remove(u8),
        Settle(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200))
                .prop_map(|(f, v)| Op::Insert(f, v)),
            3 => any::<u8>().prop_map(Op::Remove),
            1 => any::<bool>().prop_map(Op::Settle),
        ]
    }

    /// A field name of varying length from a small alphabet, so inserts
    /// hit existing fields often.
    fn field(f: u8) -> Vec<u8> {
        let mut v = vec![b'f'; usize::from(f % 7) * 30];
        v.push(f % 80);
        v
    }

    proptest! {
        #[test]
        fn matches_a_model(ops in proptest::collection::vec(op(), 0..400)) {
            let mut h = Hash::default();
            h.settle_form(false, 40);
            let mut table = false;
            let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(f, v) => {
                        let f = field(f);
                        let new = h.insert(&f, Bytes::from(v.clone()));
                        match model.iter_mut().find(|(k, _)| *k == f) {
                            Some(e) => { prop_assert!(!new); e.1 = v; }
                            None => { prop_assert!(new); model.push((f, v)); }
                        }
                    }
                    Op::Remove(f) => {
                        let f = field(f);
                        let pos = model.iter().position(|(k, _)| *k == f);
                        prop_assert_eq!(h.remove(&f), pos.is_some());
                        if let Some(i) = pos {
                            model.remove(i);
                        }
                    }
                    Op::Settle(t) => {
                        table |= t || model.len() > 40;
                        h.settle_form(table, 40);
                        prop_assert_eq!(h.is_packed(), !table);
                    }
                }
                prop_assert_eq!(h.len(), model.len());
                let content: usize = model.iter().map(|(f, v)| f.len() + v.len()).sum();
                prop_assert_eq!(h.bytes, content);
                for (f, v) in &model {
                    prop_assert_eq!(h.get(f), Some(&v[..]));
                    let owned = h.get_bytes(f);
                    prop_assert_eq!(owned.as_deref(), Some(&v[..]));
                }
                prop_assert_eq!(h.get(b"absent"), None);
                if h.is_packed() {
                    // The packed form keeps insertion order exactly.
                    let got: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                    prop_assert_eq!(&got, &model);
                } else {
                    let mut got: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                    let mut want = model.clone();
                    got.sort();
                    want.sort();
                    prop_assert_eq!(got, want);
                }
                let owned: Vec<_> = h.iter_bytes().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                let borrowed: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                prop_assert_eq!(&owned, &borrowed);
                for (i, e) in borrowed.iter().enumerate() {
                    let at = h.get_index(i).map(|(f, v)| (f.to_vec(), v.to_vec()));
                    prop_assert_eq!(at.as_ref(), Some(e));
                }
                prop_assert_eq!(h.get_index(borrowed.len()), None);
            }
        }
    }

    #[test]
    fn varints_round_trip() {
        for n in [
            0,
            1,
            127,
            128,
            300,
            16383,
            16384,
            usize::MAX >> 1,
            usize::MAX,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, n);
            let mut pos = 0;
            assert_eq!(get_varint(&buf, &mut pos), Some(n));
            assert_eq!(pos, buf.len());
        }
    }
}
