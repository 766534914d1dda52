//! The key type of the big maps (the keyspace, sorted-set members, the
//! channel registry): short byte strings stored inline, longer ones in one
//! exact-size allocation.
//!
//! Most keys and channel names of a messaging workload are short
//! (`user:1234`, `bull:queue:5`, `key:000000012345`). A `Bytes` handle is
//! 32 bytes and points to an allocation of its own, so every lookup follows
//! a pointer to compare the key, a cache miss on a large map, and every key
//! pays an allocation. A [`Key`] of up to [`INLINE`] bytes lives inside the
//! map's entry: the comparison reads the line the lookup already brought
//! in, and the key costs no allocation. It hashes and compares as its bytes
//! do, so maps keyed by it are searched with a plain `&[u8]`.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;

/// The longest key kept inline: what fits in 24 bytes beside the length
/// and the variant's tag.
pub const INLINE: usize = 22;

/// A stored key (see the module header). Built only by `From<&[u8]>`,
/// which keeps an inline key's length within its buffer.
#[derive(Clone)]
pub struct Key(Repr);

#[derive(Clone)]
enum Repr {
    /// Up to [`INLINE`] bytes.
    Inline(Inline),
    /// A longer key, in an allocation of exactly its length.
    Heap(Box<[u8]>),
}

impl Key {
    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(i) => i.as_bytes(),
            Repr::Heap(b) => b,
        }
    }

    /// True when the key lives inside the entry (no allocation).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline(_))
    }

    /// A `Bytes` copy, for a reply or a value that must own the key.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

/// Up to [`INLINE`] bytes kept in place: the short form of a [`Key`] and of
/// a string value (`store::Str`). Built only by [`Inline::new`], which
/// keeps the length within the buffer.
#[derive(Clone, Copy)]
pub struct Inline {
    len: u8,
    buf: [u8; INLINE],
}

impl Inline {
    /// A copy of `b`, if it is short enough.
    pub fn new(b: &[u8]) -> Option<Inline> {
        (b.len() <= INLINE).then(|| {
            let mut buf = [0; INLINE];
            buf[..b.len()].copy_from_slice(b);
            Inline {
                len: b.len() as u8,
                buf,
            }
        })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Key {
        match Inline::new(b) {
            Some(i) => Key(Repr::Inline(i)),
            None => Key(Repr::Heap(b.into())),
        }
    }
}

impl Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Lets maps keyed by `Key` be searched with `&[u8]`: `Hash` and `Eq`
/// below are the bytes', as `Borrow` requires.
impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl PartialEq<[u8]> for Key {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_bytes()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of<T: Hash + ?Sized>(t: &T) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    #[test]
    fn a_key_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }

    #[test]
    fn short_keys_are_inline_long_ones_on_the_heap_and_both_hash_as_their_bytes() {
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 100] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            let k = Key::from(&bytes[..]);
            assert_eq!(k.as_bytes(), &bytes[..]);
            assert_eq!(k.is_inline(), len <= INLINE);
            assert_eq!(hash_of(&k), hash_of(&bytes[..]));
            assert_eq!(k, Key::from(&bytes[..]));
        }
        let mut m: std::collections::HashMap<Key, u32> = Default::default();
        m.insert(Key::from(&b"user:1"[..]), 1);
        assert_eq!(m.get(&b"user:1"[..]), Some(&1));
        assert_eq!(m.get(&b"user:2"[..]), None);
    }
}
