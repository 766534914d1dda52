//! Small helpers every layer uses: the clocks, how C code sees a byte
//! string, C's `strtod` ([`strtod`]), Redis's glob matcher ([`glob`]) and
//! its bit-string arithmetic ([`bits`]), C's `long double` ([`long_double`]),
//! Redis's LZF compressor ([`lzf`]), the geohash of GEO commands
//! ([`geohash`]), Redis's partial quicksort ([`pqsort`]) and the compact
//! byte string big maps are keyed by ([`key`]).
//!
//! Nothing here knows a client, a command or the keyspace.

pub mod bits;
pub mod geohash;
pub mod glob;
pub mod key;
pub mod long_double;
pub mod lzf;
pub mod pqsort;
pub mod strtod;

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the clock TTLs, `idle=` and the ACL
/// log are measured on.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Seconds since the Unix epoch (LASTSAVE, slow log entries).
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An argument as Redis's C code sees it: the bytes up to its first NUL
/// (`strcasecmp`, `%s`).
pub fn c_str(s: &[u8]) -> &[u8] {
    match memchr::memchr(0, s) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// `%.<max>s` of an argument: at most `max` bytes, stopping at a NUL.
pub fn c_str_max(s: &[u8], max: usize) -> &[u8] {
    let s = c_str(s);
    &s[..s.len().min(max)]
}

/// Makes `text` safe inside an error line: Redis replaces CR and LF by
/// spaces and sends every other byte as it is (not re-encoded).
pub fn sanitize_bytes(text: &[u8]) -> impl Iterator<Item = u8> + '_ {
    text.iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
}

/// [`sanitize_bytes`] as text, for messages built with `format!` (bytes
/// that are not UTF-8 are replaced).
pub fn sanitize(text: &[u8]) -> String {
    String::from_utf8_lossy(&sanitize_bytes(text).collect::<Vec<u8>>()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_strings() {
        assert_eq!(c_str(b"ab\0cd"), b"ab");
        assert_eq!(c_str(b"abc"), b"abc");
        assert_eq!(c_str_max(b"abcdef", 3), b"abc");
        assert_eq!(c_str_max(b"a\0bcdef", 3), b"a");
        assert_eq!(sanitize(b"a\r\nb"), "a  b");
    }
}
