//! The list type: a ring buffer of packed chunks (Redis's quicklist of
//! listpacks, in spirit) with a running memory count.
//!
//! Each chunk is one byte buffer holding its elements back to back, each as
//! a LEB128 length and the bytes: one byte of overhead for an element under
//! 128 bytes, against a 32-byte handle plus an allocation per element in a
//! ring of `Bytes`, so a long list of short elements takes less memory than
//! in Redis (whose listpack entries carry a back-length byte too).
//!
//! A chunk keeps free room at both ends of its buffer, so pushes and pops at
//! either end of the list are O(1) amortized (the queue patterns: LPUSH +
//! RPOP, BLMOVE). A length prefix reads only forwards, so a chunk popped
//! from the right keeps, while that lasts, the offsets of its last elements
//! (found in one scan of the chunk, then used up one pop at a time).
//! Indexing walks the chunks by their counts (from the nearer end), then
//! one chunk. Changes in the middle (LSET, LINSERT, LREM) rewrite the chunks
//! they touch. Every mutation goes through a method so that [`List::mem`]
//! stays right for the store's accounting.

use std::collections::VecDeque;

use bytes::Bytes;

/// Most bytes of elements a chunk holds (Redis's default
/// `list-max-listpack-size -2`, 8 KiB nodes); an element bigger than this
/// gets a chunk of its own.
const CHUNK_BYTES: usize = 8192;

/// Smallest buffer a chunk starts with: a short list stays short in memory.
const CHUNK_MIN: usize = 16;

/// Estimated bytes per chunk besides its buffer (its slot in the ring and
/// the buffer's allocation header).
const CHUNK_OVERHEAD: usize = std::mem::size_of::<Chunk>() + 16;

/// Bytes the LEB128 length of an `n`-byte element takes.
fn len_size(n: usize) -> usize {
    let mut size = 1;
    let mut n = n >> 7;
    while n > 0 {
        size += 1;
        n >>= 7;
    }
    size
}

/// Writes the length prefix of an `n`-byte element at the start of `out`.
fn put_len(out: &mut [u8], mut n: usize) -> usize {
    let mut i = 0;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out[i] = b;
            return i + 1;
        }
        out[i] = b | 0x80;
        i += 1;
    }
}

/// The element whose length prefix starts at `off`: (data start, data end).
fn elem_at(buf: &[u8], mut off: usize) -> (usize, usize) {
    let mut len = 0usize;
    let mut shift = 0;
    while let Some(&b) = buf.get(off) {
        off += 1;
        len |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    (off, off + len)
}

/// Appends `v` with its length prefix to `out`.
fn encode_into(out: &mut Vec<u8>, v: &[u8]) {
    let mut pre = [0u8; 10];
    let n = put_len(&mut pre, v.len());
    out.extend_from_slice(&pre[..n]);
    out.extend_from_slice(v);
}

/// A run of elements packed in one buffer: `buf[head..tail]`, free room on
/// both sides.
#[derive(Debug, Clone)]
struct Chunk {
    buf: Box<[u8]>,
    head: usize,
    tail: usize,
    n: usize,
    /// Offsets of the last `offs.len()` elements, in order (any suffix,
    /// possibly none): what lets a pop from the right find the element
    /// before the one it takes without rescanning the chunk.
    offs: VecDeque<u32>,
}

impl Chunk {
    /// An empty chunk of `cap` bytes, its room at the front or the back.
    fn empty(cap: usize, room_in_front: bool) -> Chunk {
        let at = if room_in_front { cap } else { 0 };
        Chunk {
            buf: vec![0; cap].into_boxed_slice(),
            head: at,
            tail: at,
            n: 0,
            offs: VecDeque::new(),
        }
    }

    /// A chunk holding exactly the encoded elements `data` (`n` of them).
    fn packed(data: Vec<u8>, n: usize) -> Chunk {
        let tail = data.len();
        Chunk {
            buf: data.into_boxed_slice(),
            head: 0,
            tail,
            n,
            offs: VecDeque::new(),
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.head..self.tail]
    }

    /// The elements, front to back.
    fn iter(&self) -> ChunkIter<'_> {
        ChunkIter {
            buf: &self.buf,
            at: self.head,
            end: self.tail,
        }
    }

    /// The offset of every element's length prefix, front to back.
    fn offsets(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.n);
        let mut at = self.head;
        while at < self.tail {
            out.push(at as u32);
            at = elem_at(&self.buf, at).1;
        }
        out
    }

    /// The offset of element `k` (or the tail if `k == n`).
    fn offset_of(&self, k: usize) -> usize {
        let mut at = self.head;
        for _ in 0..k {
            at = elem_at(&self.buf, at).1;
        }
        at
    }

    /// Makes room for `need` more bytes at the front or the back. False if
    /// the chunk is full (the caller starts a new one); otherwise returns
    /// the change in buffer size.
    fn make_room(&mut self, front: bool, need: usize) -> Option<isize> {
        let data = self.tail - self.head;
        let total = data + need;
        if total > CHUNK_BYTES {
            return None;
        }
        let have = if front {
            self.head
        } else {
            self.buf.len() - self.tail
        };
        if have >= need {
            return Some(0);
        }
        let old_cap = self.buf.len();
        let cap = old_cap.max((2 * total).clamp(CHUNK_MIN, CHUNK_BYTES));
        // The spare room is split between both ends, so that pushes
        // alternating between them do not move the data every time.
        let extra = cap - total;
        let new_head = if front {
            need + extra / 2
        } else {
            extra - extra / 2
        };
        if cap == old_cap {
            self.buf.copy_within(self.head..self.tail, new_head);
        } else {
            let mut buf = vec![0; cap].into_boxed_slice();
            buf[new_head..new_head + data].copy_from_slice(self.data());
            self.buf = buf;
        }
        self.head = new_head;
        self.tail = new_head + data;
        self.offs.clear();
        Some(cap as isize - old_cap as isize)
    }
}

/// The elements of one chunk, front to back.
struct ChunkIter<'a> {
    buf: &'a [u8],
    at: usize,
    end: usize,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.end {
            return None;
        }
        let (s, e) = elem_at(self.buf, self.at);
        self.at = e;
        self.buf.get(s..e)
    }
}

/// A list value.
#[derive(Debug, Clone, Default)]
pub struct List {
    chunks: VecDeque<Chunk>,
    len: usize,
    /// The chunks' buffers plus their overhead: what [`List::mem`] reports.
    alloc: usize,
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True with no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Estimated heap bytes.
    pub fn mem(&self) -> usize {
        self.alloc
    }

    /// The elements, front (left) to back (right).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks.iter().flat_map(Chunk::iter)
    }

    /// The elements from position `i` on, left to right.
    pub fn iter_from(&self, i: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (ci, k) = self.locate(i).unwrap_or((self.chunks.len(), 0));
        self.chunks.range(ci..).flat_map(Chunk::iter).skip(k)
    }

    /// The elements right to left, skipping the last `skip`.
    pub fn iter_rev_from(&self, skip: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (ci, k) = match self.len.checked_sub(skip + 1) {
            Some(i) => self.locate(i).map_or((0, 0), |(ci, k)| (ci + 1, k + 1)),
            None => (0, 0),
        };
        let first = ci.saturating_sub(1);
        self.chunks
            .range(..ci)
            .enumerate()
            .rev()
            .flat_map(move |(j, c)| {
                let mut offs = c.offsets();
                if j == first {
                    offs.truncate(k);
                }
                offs.into_iter().rev().map(move |o| {
                    let (s, e) = elem_at(&c.buf, o as usize);
                    &c.buf[s..e]
                })
            })
    }

    /// Elements `start..start + count` as owned strings sharing a single
    /// allocation (what LRANGE replies with).
    pub fn range_bytes(&self, start: usize, count: usize) -> Vec<Bytes> {
        let mut all = Vec::new();
        let mut ends = Vec::with_capacity(count.min(self.len));
        for e in self.iter_from(start).take(count) {
            all.extend_from_slice(e);
            ends.push(all.len());
        }
        let all = Bytes::from(all);
        let mut from = 0;
        ends.into_iter()
            .map(|to| {
                let b = all.slice(from..to);
                from = to;
                b
            })
            .collect()
    }

    /// The chunk holding element `i` and its index there, walking from the
    /// nearer end.
    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.len {
            return None;
        }
        if i < self.len / 2 {
            let mut i = i;
            for (ci, c) in self.chunks.iter().enumerate() {
                if i < c.n {
                    return Some((ci, i));
                }
                i -= c.n;
            }
        } else {
            let mut from_end = self.len - i;
            for (ci, c) in self.chunks.iter().enumerate().rev() {
                if from_end <= c.n {
                    return Some((ci, c.n - from_end));
                }
                from_end -= c.n;
            }
        }
        None
    }

    /// The position of the first element equal to `v` (LINSERT's pivot).
    pub fn position(&self, v: &[u8]) -> Option<usize> {
        self.iter().position(|e| e == v)
    }

    /// Element `i` from the left.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (ci, k) = self.locate(i)?;
        self.chunks.get(ci)?.iter().nth(k)
    }

    /// Pushes at the left (`left`) or the right.
    pub fn push(&mut self, v: &[u8], left: bool) {
        let need = len_size(v.len()) + v.len();
        let slot = if left {
            self.chunks.front_mut()
        } else {
            self.chunks.back_mut()
        };
        match slot.and_then(|c| c.make_room(left, need)) {
            Some(grown) => self.alloc = self.alloc.wrapping_add_signed(grown),
            None => {
                // A list's first chunk starts small; later ones are for a
                // long list and start full size.
                let cap = if self.chunks.is_empty() {
                    (2 * need).clamp(CHUNK_MIN, CHUNK_BYTES).max(need)
                } else {
                    CHUNK_BYTES.max(need)
                };
                self.alloc += cap + CHUNK_OVERHEAD;
                let c = Chunk::empty(cap, left);
                if left {
                    self.chunks.push_front(c)
                } else {
                    self.chunks.push_back(c)
                }
            }
        }
        let slot = if left {
            self.chunks.front_mut()
        } else {
            self.chunks.back_mut()
        };
        let Some(c) = slot else {
            return;
        };
        let at = if left { c.head - need } else { c.tail };
        let n = put_len(&mut c.buf[at..], v.len());
        c.buf[at + n..at + need].copy_from_slice(v);
        if left {
            c.head = at;
        } else {
            c.tail = at + need;
            if !c.offs.is_empty() {
                c.offs.push_back(at as u32);
            }
        }
        c.n += 1;
        self.len += 1;
    }

    /// Pops from the left (`left`) or the right.
    pub fn pop(&mut self, left: bool) -> Option<Bytes> {
        self.pop_with(left, Bytes::copy_from_slice)
    }

    /// Pops from the left (`left`) or the right, handing the element to `f`
    /// before its bytes are reused.
    fn pop_with<R>(&mut self, left: bool, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let c = if left {
            self.chunks.front_mut()
        } else {
            self.chunks.back_mut()
        }?;
        let r = if left {
            let (s, e) = elem_at(&c.buf, c.head);
            let r = f(&c.buf[s..e]);
            if c.offs.front() == Some(&(c.head as u32)) {
                c.offs.pop_front();
            }
            c.head = e;
            r
        } else {
            if c.offs.is_empty() {
                c.offs = c.offsets().into();
            }
            let at = c.offs.pop_back()? as usize;
            let (s, e) = elem_at(&c.buf, at);
            let r = f(&c.buf[s..e]);
            c.tail = at;
            r
        };
        c.n -= 1;
        self.len -= 1;
        if c.n == 0 {
            let freed = c.buf.len() + CHUNK_OVERHEAD;
            self.alloc -= freed;
            if left {
                self.chunks.pop_front();
            } else {
                self.chunks.pop_back();
            }
        }
        Some(r)
    }

    /// Replaces chunk `ci` by the encoded elements `data` (`n` of them),
    /// cut into chunks of about equal size if too big for one, and merged
    /// into a neighbour if small enough.
    fn replace_chunk(&mut self, ci: usize, data: Vec<u8>, n: usize) {
        if let Some(old) = self.chunks.remove(ci) {
            self.alloc -= old.buf.len() + CHUNK_OVERHEAD;
        }
        if n == 0 {
            return;
        }
        let pieces = if n == 1 {
            1
        } else {
            data.len().div_ceil(CHUNK_BYTES).max(1)
        };
        let mut at = ci;
        if pieces == 1 {
            self.alloc += data.len() + CHUNK_OVERHEAD;
            self.chunks.insert(at, Chunk::packed(data, n));
        } else {
            let target = data.len() / pieces;
            let (mut start, mut pos, mut count) = (0, 0, 0);
            while pos < data.len() {
                pos = elem_at(&data, pos).1.min(data.len());
                count += 1;
                if pos - start >= target || pos == data.len() {
                    let piece = data[start..pos].to_vec();
                    self.alloc += piece.len() + CHUNK_OVERHEAD;
                    self.chunks.insert(at, Chunk::packed(piece, count));
                    at += 1;
                    start = pos;
                    count = 0;
                }
            }
            at -= 1;
        }
        self.merge_around(at);
        if ci > 0 {
            self.merge_around(ci - 1);
        }
    }

    /// Merges chunk `ci` with the next one if both fit in one, as Redis
    /// merges small quicklist nodes.
    fn merge_around(&mut self, ci: usize) {
        let (Some(a), Some(b)) = (self.chunks.get(ci), self.chunks.get(ci + 1)) else {
            return;
        };
        let (da, db) = (a.data(), b.data());
        if da.len() + db.len() > CHUNK_BYTES {
            return;
        }
        let mut data = Vec::with_capacity(da.len() + db.len());
        data.extend_from_slice(da);
        data.extend_from_slice(db);
        let n = a.n + b.n;
        for _ in 0..2 {
            if let Some(old) = self.chunks.remove(ci) {
                self.alloc -= old.buf.len() + CHUNK_OVERHEAD;
            }
        }
        self.alloc += data.len() + CHUNK_OVERHEAD;
        self.chunks.insert(ci, Chunk::packed(data, n));
    }

    /// Replaces element `i`; false if out of range.
    pub fn set(&mut self, i: usize, v: &[u8]) -> bool {
        let Some((ci, k)) = self.locate(i) else {
            return false;
        };
        let Some(c) = self.chunks.get_mut(ci) else {
            return false;
        };
        let at = c.offset_of(k);
        let end = elem_at(&c.buf, at).1;
        let need = len_size(v.len()) + v.len();
        if need == end - at {
            let n = put_len(&mut c.buf[at..], v.len());
            c.buf[at + n..end].copy_from_slice(v);
            return true;
        }
        let mut data = Vec::with_capacity(c.tail - c.head - (end - at) + need);
        data.extend_from_slice(&c.buf[c.head..at]);
        encode_into(&mut data, v);
        data.extend_from_slice(&c.buf[end..c.tail]);
        let n = c.n;
        self.replace_chunk(ci, data, n);
        true
    }

    /// Inserts at position `i` (0..=len).
    pub fn insert(&mut self, i: usize, v: &[u8]) {
        if i == 0 || i >= self.len {
            return self.push(v, i == 0);
        }
        let Some((ci, k)) = self.locate(i) else {
            return;
        };
        let Some(c) = self.chunks.get(ci) else {
            return;
        };
        let at = c.offset_of(k);
        let mut data = Vec::with_capacity(c.tail - c.head + len_size(v.len()) + v.len());
        data.extend_from_slice(&c.buf[c.head..at]);
        encode_into(&mut data, v);
        data.extend_from_slice(&c.buf[at..c.tail]);
        let n = c.n + 1;
        self.replace_chunk(ci, data, n);
        self.len += 1;
    }

    /// Removes up to `count` elements equal to `v` (0 = all), scanning from
    /// the left, or from the right if `from_right`. Returns how many.
    pub fn remove_eq(&mut self, v: &[u8], count: usize, from_right: bool) -> usize {
        let mut left = if count == 0 { usize::MAX } else { count };
        let mut removed = 0;
        let mut touched = false;
        let n = self.chunks.len();
        for step in 0..n {
            if left == 0 {
                break;
            }
            let ci = if from_right { n - 1 - step } else { step };
            let Some(c) = self.chunks.get_mut(ci) else {
                continue;
            };
            let offs = c.offsets();
            let mut hits: Vec<usize> = (0..offs.len())
                .filter(|&k| {
                    let (s, e) = elem_at(&c.buf, offs[k] as usize);
                    &c.buf[s..e] == v
                })
                .collect();
            if hits.is_empty() {
                continue;
            }
            if hits.len() > left {
                if from_right {
                    hits.drain(..hits.len() - left);
                } else {
                    hits.truncate(left);
                }
            }
            left -= hits.len();
            removed += hits.len();
            touched = true;
            let mut data = Vec::with_capacity(c.tail - c.head);
            let mut hit = hits.iter().peekable();
            for (k, &o) in offs.iter().enumerate() {
                if hit.peek() == Some(&&k) {
                    hit.next();
                    continue;
                }
                let end = offs.get(k + 1).map_or(c.tail, |&x| x as usize);
                data.extend_from_slice(&c.buf[o as usize..end]);
            }
            let kept = c.n - hits.len();
            self.alloc -= c.buf.len();
            self.alloc += data.len();
            *c = Chunk::packed(data, kept);
        }
        if touched {
            self.len -= removed;
            self.compact();
        }
        removed
    }

    /// Drops empty chunks and merges neighbours that fit in one.
    fn compact(&mut self) {
        let mut ci = 0;
        while ci < self.chunks.len() {
            if self.chunks[ci].n == 0 {
                if let Some(old) = self.chunks.remove(ci) {
                    self.alloc -= old.buf.len() + CHUNK_OVERHEAD;
                }
                continue;
            }
            let before = self.chunks.len();
            self.merge_around(ci);
            if self.chunks.len() == before {
                ci += 1;
            }
        }
    }

    /// Keeps only elements `start..=end` (already clamped, start <= end <
    /// len), or none if `range` is None.
    pub fn trim(&mut self, range: Option<(usize, usize)>) {
        match range {
            None => {
                self.chunks.clear();
                self.len = 0;
                self.alloc = 0;
            }
            Some((start, end)) => {
                let back = self.len.saturating_sub(end + 1);
                self.drop_end(back, false);
                self.drop_end(start, true);
            }
        }
    }

    /// Removes `k` elements from one end: whole chunks, then one by one.
    fn drop_end(&mut self, mut k: usize, left: bool) {
        while k > 0 {
            let c = if left {
                self.chunks.front()
            } else {
                self.chunks.back()
            };
            match c {
                Some(c) if c.n <= k => {
                    k -= c.n;
                    self.len -= c.n;
                    self.alloc -= c.buf.len() + CHUNK_OVERHEAD;
                    if left {
                        self.chunks.pop_front();
                    } else {
                        self.chunks.pop_back();
                    }
                }
                Some(_) => {
                    for _ in 0..k {
                        self.pop_with(left, |_| ());
                    }
                    k = 0;
                }
                None => k = 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn items(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(<[u8]>::to_vec).collect()
    }

    /// What `mem` must be: the chunks' buffers and overhead.
    fn exact_mem(l: &List) -> usize {
        l.chunks.iter().map(|c| c.buf.len() + CHUNK_OVERHEAD).sum()
    }

    fn check(l: &List, model: &VecDeque<Vec<u8>>) {
        let want: Vec<Vec<u8>> = model.iter().cloned().collect();
        assert_eq!(items(l), want);
        assert_eq!(l.len(), model.len());
        assert_eq!(l.mem(), exact_mem(l));
        assert_eq!(
            l.chunks.iter().map(|c| c.n).sum::<usize>(),
            l.len(),
            "chunk counts"
        );
        assert!(l.chunks.iter().all(|c| c.n > 0), "no empty chunk");
        let rev: Vec<Vec<u8>> = l.iter_rev_from(0).map(<[u8]>::to_vec).collect();
        let mut want_rev = want.clone();
        want_rev.reverse();
        assert_eq!(rev, want_rev);
        for i in [0, model.len() / 3, model.len().saturating_sub(1)] {
            assert_eq!(l.get(i), model.get(i).map(Vec::as_slice));
            assert_eq!(
                l.iter_from(i).map(<[u8]>::to_vec).collect::<Vec<_>>(),
                want[i.min(want.len())..]
            );
            assert_eq!(
                l.iter_rev_from(i).map(<[u8]>::to_vec).collect::<Vec<_>>(),
                want_rev[i.min(want.len())..]
            );
        }
    }

    #[test]
    fn accounting_follows_mutations() {
        let mut l = List::new();
        l.push(b"ab", true);
        l.push(b"c", false);
        l.push(b"ab", false);
        assert_eq!(l.remove_eq(b"ab", 1, true), 1);
        assert_eq!(items(&l), [b"ab".to_vec(), b"c".to_vec()]);
        l.set(0, b"xyz");
        l.trim(Some((1, 1)));
        assert_eq!(items(&l), [b"c".to_vec()]);
        assert_eq!(l.mem(), exact_mem(&l));
    }

    #[test]
    fn short_elements_take_about_one_byte_more_than_their_size() {
        let mut l = List::new();
        for i in 0..300_000 {
            l.push(format!("e{}", i % 100).as_bytes(), false);
        }
        // 2.9 bytes on average plus a one-byte length.
        assert!(l.mem() < 300_000 * 4 + 300_000 / 10, "{}", l.mem());
        for i in 0..300_000 {
            let want = format!("e{}", i % 100);
            assert_eq!(l.pop(true).as_deref(), Some(want.as_bytes()));
        }
        assert_eq!(l.mem(), 0);
    }

    #[test]
    fn long_elements_and_range_bytes() {
        let mut l = List::new();
        let big = vec![7u8; 20_000];
        l.push(&big, false);
        l.push(b"x", false);
        l.push(&big, true);
        l.insert(1, b"mid");
        assert_eq!(l.get(1), Some(&b"mid"[..]));
        assert_eq!(l.get(2), Some(&big[..]));
        let r = l.range_bytes(1, 3);
        assert_eq!(r, [&b"mid"[..], &big, b"x"]);
        assert_eq!(l.pop(false).as_deref(), Some(&b"x"[..]));
        assert_eq!(l.mem(), exact_mem(&l));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(Vec<u8>, bool),
        PushMany(usize, bool),
        Pop(bool),
        Set(usize, Vec<u8>),
        Insert(usize, Vec<u8>),
        Remove(Vec<u8>, usize, bool),
        Trim(usize, usize),
    }

    fn elem() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            8 => prop::collection::vec(b'a'..b'd', 0..4),
            1 => prop::collection::vec(any::<u8>(), 100..300),
            1 => prop::collection::vec(any::<u8>(), 5000..10000),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (elem(), any::<bool>()).prop_map(|(e, l)| Op::Push(e, l)),
            1 => (0usize..3000, any::<bool>()).prop_map(|(n, l)| Op::PushMany(n, l)),
            3 => any::<bool>().prop_map(Op::Pop),
            1 => (any::<usize>(), elem()).prop_map(|(i, e)| Op::Set(i, e)),
            1 => (any::<usize>(), elem()).prop_map(|(i, e)| Op::Insert(i, e)),
            1 => (elem(), 0usize..4, any::<bool>()).prop_map(|(e, c, r)| Op::Remove(e, c, r)),
            1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Trim(a, b)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn behaves_as_a_deque(ops in prop::collection::vec(op(), 1..60)) {
            let mut l = List::new();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(e, left) => {
                        l.push(&e, left);
                        if left { model.push_front(e) } else { model.push_back(e) }
                    }
                    Op::PushMany(n, left) => {
                        for i in 0..n {
                            let e = format!("e{}", i % 100).into_bytes();
                            l.push(&e, left);
                            if left { model.push_front(e) } else { model.push_back(e) }
                        }
                    }
                    Op::Pop(left) => {
                        let got = l.pop(left).map(|b| b.to_vec());
                        let want = if left { model.pop_front() } else { model.pop_back() };
                        prop_assert_eq!(got, want);
                    }
                    Op::Set(i, e) => {
                        let i = if model.is_empty() { i } else { i % (model.len() + 1) };
                        let ok = l.set(i, &e);
                        prop_assert_eq!(ok, i < model.len());
                        if ok { model[i] = e; }
                    }
                    Op::Insert(i, e) => {
                        let i = i % (model.len() + 1);
                        l.insert(i, &e);
                        model.insert(i, e);
                    }
                    Op::Remove(e, count, from_right) => {
                        // Most of the time remove something that is there.
                        let e = if model.is_empty() || e.len() > 3 { e } else { model[e.len() % model.len()].clone() };
                        let got = l.remove_eq(&e, count, from_right);
                        let mut left = if count == 0 { usize::MAX } else { count };
                        let mut keep = vec![true; model.len()];
                        let order: Vec<usize> = if from_right { (0..model.len()).rev().collect() } else { (0..model.len()).collect() };
                        for i in order {
                            if left > 0 && model[i] == e { keep[i] = false; left -= 1; }
                        }
                        let before = model.len();
                        let mut k = keep.iter();
                        model.retain(|_| *k.next().unwrap_or(&true));
                        prop_assert_eq!(got, before - model.len());
                    }
                    Op::Trim(a, b) => {
                        if model.is_empty() { continue; }
                        let (s, e) = (a % model.len(), b % model.len());
                        if s > e {
                            l.trim(None);
                            model.clear();
                        } else {
                            l.trim(Some((s, e)));
                            model = model.iter().skip(s).take(e - s + 1).cloned().collect();
                        }
                    }
                }
                check(&l, &model);
            }
        }
    }
}
