//! Redis's listpack (`src/listpack.c`): the compact sequence of strings
//! and integers in which Redis 7.0 keeps small hashes, sorted sets, list
//! nodes and stream nodes, and which RDB payloads carry as one blob.
//!
//! ```text
//! total-bytes (u32 LE)  count (u16 LE, 65535: unknown)  entry*  0xFF
//! entry: encoding [data] backlen
//! ```
//!
//! A string that reads as a canonical 64-bit integer is stored as an
//! integer, in the smallest of Redis's integer encodings, as `lpAppend`
//! does; the writer here does the same so that payloads are Redis's bytes.

/// One listpack element as read: listpacks keep integers apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// An integer encoding.
    Int(i64),
    /// A string encoding.
    Str(&'a [u8]),
}

impl Item<'_> {
    /// The element as Redis's `lpGet` returns it: integers as decimal text.
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Item::Int(v) => itoa::Buffer::new().format(v).as_bytes().to_vec(),
            Item::Str(s) => s.to_vec(),
        }
    }

    /// The integer, for the elements Redis reads with `lpGetInteger`
    /// (stream counters and IDs): a string reads as one if it is canonical.
    pub fn int(self) -> Option<i64> {
        match self {
            Item::Int(v) => Some(v),
            Item::Str(s) => canonical_i64(s),
        }
    }
}

/// Redis's `string2ll` with its strictness: an optional `-`, no leading
/// zero, no `+`, no space, at most 20 bytes, within `i64`.
pub fn canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// The size of an entry's back-length for an entry of `len` bytes
/// (`lpEncodeBacklen` without a buffer).
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// `lpEncodeBacklen`: the back-length bytes of an entry of `len` bytes.
fn put_backlen(out: &mut Vec<u8>, len: usize) {
    let n = backlen_size(len);
    // The first byte holds the most significant bits, without the
    // continuation bit; the others have it.
    for i in (0..n).rev() {
        let b = ((len >> (7 * i)) & 127) as u8;
        out.push(if i == n - 1 || n == 1 { b } else { b | 128 });
    }
}

/// Bytes an integer element takes, back-length included.
fn int_entry_size(v: i64) -> usize {
    let enc = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    };
    enc + 1
}

/// Appends an integer element (`lpEncodeIntegerGetType` + backlen).
fn put_int(out: &mut Vec<u8>, v: i64) {
    let start = out.len();
    match v {
        0..=127 => out.push(v as u8),
        -4096..=4095 => {
            let u = if v < 0 {
                ((1i64 << 13) + v) as u64
            } else {
                v as u64
            };
            out.push(((u >> 8) as u8) | 0xC0);
            out.push(u as u8);
        }
        -32768..=32767 => {
            out.push(0xF1);
            out.extend_from_slice(&(v as i16).to_le_bytes());
        }
        -8388608..=8388607 => {
            out.push(0xF2);
            out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        }
        -2147483648..=2147483647 => {
            out.push(0xF3);
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
        _ => {
            out.push(0xF4);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let len = out.len() - start;
    put_backlen(out, len);
}

/// Appends a string element as a string encoding.
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let start = out.len();
    let n = s.len();
    if n < 64 {
        out.push(0x80 | n as u8);
    } else if n < 4096 {
        out.push(0xE0 | (n >> 8) as u8);
        out.push(n as u8);
    } else {
        out.push(0xF0);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
    let len = out.len() - start;
    put_backlen(out, len);
}

/// A listpack being written.
#[derive(Debug, Clone)]
pub struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    /// An empty listpack.
    pub fn new() -> Writer {
        Writer {
            buf: vec![0; 6],
            count: 0,
        }
    }

    /// `lpBytes` of the listpack so far (header and terminator included).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Elements so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True with no element.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `lpAppend`: a string, stored as an integer if it reads as one.
    pub fn push(&mut self, s: &[u8]) {
        match canonical_i64(s) {
            Some(v) => put_int(&mut self.buf, v),
            None => put_str(&mut self.buf, s),
        }
        self.count += 1;
    }

    /// `lpAppendInteger`.
    pub fn push_int(&mut self, v: i64) {
        put_int(&mut self.buf, v);
        self.count += 1;
    }

    /// Appends every element of `other`.
    pub fn append(&mut self, other: &Writer) {
        self.buf
            .extend_from_slice(other.buf.get(6..).unwrap_or_default());
        self.count += other.count;
    }

    /// The finished listpack.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        let count = self.count.min(65535) as u16;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// The bytes an integer element takes (stream nodes size their count
/// element before it is final).
pub fn int_size(v: i64) -> usize {
    int_entry_size(v)
}

/// Every element of a listpack blob, checked as Redis's
/// `lpValidateIntegrity` checks it (header size, each entry inside the
/// blob with a matching back-length, the terminator last, the count when
/// known); None if anything is wrong.
pub fn decode(lp: &[u8]) -> Option<Vec<Item<'_>>> {
    let header = lp.get(..6)?;
    let total = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let count = u16::from_le_bytes([header[4], header[5]]) as usize;
    if total != lp.len() || total < 7 {
        return None;
    }
    let end = lp.len() - 1;
    if lp[end] != 0xFF {
        return None;
    }
    // Each element takes at least two bytes.
    let mut out = Vec::with_capacity(count.min((end - 6) / 2));
    let mut p = 6;
    while p < end {
        let b = lp[p];
        let (item, len) = match b {
            0x00..=0x7F => (Item::Int(b as i64), 1),
            0x80..=0xBF => {
                let n = (b & 0x3F) as usize;
                (Item::Str(lp.get(p + 1..p + 1 + n)?), 1 + n)
            }
            0xC0..=0xDF => {
                let u = (((b & 0x1F) as i64) << 8) | *lp.get(p + 1)? as i64;
                let v = if u >= 1 << 12 { u - (1 << 13) } else { u };
                (Item::Int(v), 2)
            }
            0xE0..=0xEF => {
                let n = (((b & 0x0F) as usize) << 8) | *lp.get(p + 1)? as usize;
                (Item::Str(lp.get(p + 2..p + 2 + n)?), 2 + n)
            }
            0xF0 => {
                let h = lp.get(p + 1..p + 5)?;
                let n = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let start = p + 5;
                (Item::Str(lp.get(start..start.checked_add(n)?)?), 5 + n)
            }
            0xF1 => {
                let h = lp.get(p + 1..p + 3)?;
                (Item::Int(i16::from_le_bytes([h[0], h[1]]) as i64), 3)
            }
            0xF2 => {
                let h = lp.get(p + 1..p + 4)?;
                // Sign-extend the 24 bits.
                let v = i32::from_le_bytes([0, h[0], h[1], h[2]]) >> 8;
                (Item::Int(v as i64), 4)
            }
            0xF3 => {
                let h = lp.get(p + 1..p + 5)?;
                (
                    Item::Int(i32::from_le_bytes([h[0], h[1], h[2], h[3]]) as i64),
                    5,
                )
            }
            0xF4 => {
                let h = lp.get(p + 1..p + 9)?;
                (Item::Int(i64::from_le_bytes(h.try_into().ok()?)), 9)
            }
            _ => return None,
        };
        let mut back = Vec::with_capacity(5);
        put_backlen(&mut back, len);
        let at = p + len;
        if lp.get(at..at + back.len())? != back.as_slice() {
            return None;
        }
        p = at + back.len();
        out.push(item);
    }
    if p != end || (count != 65535 && count != out.len()) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_redis_encodings() {
        let mut w = Writer::new();
        for s in [
            "1",
            "-1",
            "4095",
            "-4096",
            "32767",
            "-8388608",
            "2147483647",
            "9223372036854775807",
        ] {
            w.push(s.as_bytes());
        }
        w.push(b"007");
        w.push(b"+1");
        let lp = w.finish();
        let items = decode(&lp).unwrap();
        assert_eq!(items[0], Item::Int(1));
        assert_eq!(items[1], Item::Int(-1));
        assert_eq!(items[5], Item::Int(-8388608));
        assert_eq!(items[7], Item::Int(i64::MAX));
        assert_eq!(items[8], Item::Str(b"007"));
        assert_eq!(items[9], Item::Str(b"+1"));
        // "a" and 1: what redis-server writes for HSET h a 1.
        let mut w = Writer::new();
        w.push(b"a");
        w.push(b"1");
        assert_eq!(w.finish(), b"\x0c\x00\x00\x00\x02\x00\x81a\x02\x01\x01\xff");
    }

    #[test]
    fn long_strings_have_multi_byte_backlens() {
        for n in [63, 64, 127, 200, 4095, 4096, 20000] {
            let s = vec![b'x'; n];
            let mut w = Writer::new();
            w.push(&s);
            w.push(b"y");
            let lp = w.finish();
            let items = decode(&lp).unwrap();
            assert_eq!(items, vec![Item::Str(&s), Item::Str(b"y")]);
        }
    }

    #[test]
    fn corrupt_listpacks_are_refused() {
        let mut w = Writer::new();
        w.push(b"hello");
        let lp = w.finish();
        for cut in 0..lp.len() {
            assert!(decode(&lp[..cut]).is_none());
        }
        let mut bad = lp.clone();
        bad[4] = 3;
        assert!(decode(&bad).is_none());
    }
}
