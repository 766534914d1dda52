//! The string value: short strings stored inline in the keyspace entry,
//! longer ones as a shared `Bytes`.
//!
//! Most values of a messaging workload are short: counters, flags, ids,
//! lock tokens, small JSON. As a `Bytes` each cost an allocation of its
//! own, and each read a second cache miss to reach it. A [`Str`] of up to
//! 22 bytes (`util::key::INLINE`, as a key) lives in the room the `Bytes`
//! handle took, inside the entry (a `Value` stays 40 bytes), so it costs no
//! allocation and a GET reads it from the line the lookup brought in. Longer values stay
//! `Bytes`: a reply or a snapshot that takes a large value shares it
//! instead of copying it.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

use crate::util::key::Inline;

/// A string value (see the module header). Built only through its `From`
/// impls, which keep an inline string's length within its buffer.
#[derive(Clone)]
pub struct Str(Repr);

#[derive(Clone)]
enum Repr {
    /// Up to `util::key::INLINE` bytes.
    Inline(Inline),
    /// A longer string.
    Shared(Bytes),
}

// The inline form must not make a `Value` larger than the `Bytes` it
// replaces.
const _: () = assert!(std::mem::size_of::<Str>() == std::mem::size_of::<Bytes>());

impl Str {
    /// The empty string.
    pub fn new() -> Str {
        Str::from(&b""[..])
    }

    /// The string's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(i) => i.as_bytes(),
            Repr::Shared(b) => b,
        }
    }

    /// The string as `Bytes`, for a reply or a copy that outlives the
    /// keyspace's lock: a long one shared, a short one copied.
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline(i) => Bytes::copy_from_slice(i.as_bytes()),
            Repr::Shared(b) => b.clone(),
        }
    }

    /// As [`Str::to_bytes`], consuming the string.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Shared(b) => b,
            Repr::Inline(i) => Bytes::copy_from_slice(i.as_bytes()),
        }
    }

    /// True when the string lives inside the entry (no allocation).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline(_))
    }

    /// The inline form of `b`, if it is short enough.
    fn inline(b: &[u8]) -> Option<Str> {
        Inline::new(b).map(|i| Str(Repr::Inline(i)))
    }
}

impl Default for Str {
    fn default() -> Str {
        Str::new()
    }
}

impl From<&[u8]> for Str {
    /// A copy of `b` (never a view of the buffer it came from).
    fn from(b: &[u8]) -> Str {
        Str::inline(b).unwrap_or_else(|| Str(Repr::Shared(Bytes::copy_from_slice(b))))
    }
}

impl From<Bytes> for Str {
    /// `b` itself when long, a copy when short enough to go inline.
    fn from(b: Bytes) -> Str {
        Str::inline(&b).unwrap_or(Str(Repr::Shared(b)))
    }
}

impl From<Vec<u8>> for Str {
    fn from(v: Vec<u8>) -> Str {
        Str::inline(&v).unwrap_or_else(|| Str(Repr::Shared(Bytes::from(v))))
    }
}

impl From<Str> for Vec<u8> {
    /// The bytes, for an edit in place (a long string's buffer is reused
    /// when nothing else holds it).
    fn from(s: Str) -> Vec<u8> {
        match s.0 {
            Repr::Shared(b) => Vec::from(b),
            Repr::Inline(i) => i.as_bytes().to_vec(),
        }
    }
}

impl Deref for Str {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Str {}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As `Bytes` prints (b"..."), which tests compare against.
        fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_bytes()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::key::INLINE;

    #[test]
    fn short_strings_go_inline_and_long_ones_are_shared() {
        for n in [0, 1, INLINE, INLINE + 1, 100] {
            let data: Vec<u8> = (0..n as u8).collect();
            for s in [
                Str::from(&data[..]),
                Str::from(Bytes::from(data.clone())),
                Str::from(data.clone()),
            ] {
                assert_eq!(s.as_bytes(), &data[..]);
                assert_eq!(s.is_inline(), n <= INLINE);
                assert_eq!(s.to_bytes(), data);
                assert_eq!(s.clone().into_bytes(), data);
            }
        }
        assert_eq!(Str::new().as_bytes(), b"");
    }
}
