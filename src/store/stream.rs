//! The stream type: an append-only log of entries keyed by [`StreamId`],
//! plus its consumer groups (see [`group`]).
//!
//! # Layout
//!
//! Entries are packed into *nodes* held in a `BTreeMap<StreamId, Node>`
//! keyed by the node's *master ID* (the ID of the first entry appended to
//! it), as Redis packs them into listpacks held in a radix tree. A node is
//! one contiguous `Vec<u8>` of at most [`NODE_MAX_ENTRIES`] entries and
//! about [`NODE_MAX_BYTES`] bytes:
//!
//! ```text
//! header:  nfields  (flen field)*            the node's master fields
//! entry:   flags  ms-delta  seq-delta  [nfields (flen field vlen value)*]
//!                                       or, with SAMEFIELDS, (vlen value)*
//! ```
//!
//! All integers are LEB128 varints; `ms-delta` is the entry's milliseconds
//! minus the master's, `seq-delta` the zigzag-encoded wrapping difference
//! of the sequences. An entry whose field names equal the master fields
//! (the common case: every message of a stream has the same shape) stores
//! its values only. A 3-field entry with short values costs about 15 bytes
//! plus the values, against ~25 in a Redis listpack, because there is no
//! per-element back-length: a node is only ever decoded forwards (reverse
//! iteration decodes the node's offsets and walks them backwards, at most
//! 100 entries).
//!
//! # Costs
//!
//! - XADD appends to the last node (the B-tree's right edge, height ≤ 4
//!   for 10^6 entries): amortised O(1). A node that is full is shrunk to
//!   its exact size, so only the tail node carries `Vec` slack.
//! - XRANGE seeks the node whose master ID is the greatest ≤ start
//!   (O(log n)), skips at most one node's worth of entries, then decodes
//!   the k entries it returns: O(log n + k).
//! - XDEL flips the entry's flag byte in place (the entry stays as a
//!   tombstone, as in Redis); a node whose last live entry goes is removed.
//! - Trimming (MAXLEN / MINID) removes whole nodes from the front, then,
//!   for `=`, marks entries of the first remaining node deleted; `~` stops
//!   at the first node it cannot drop whole, and LIMIT bounds the work, as
//!   Redis's `streamTrim`.
//!
//! # Memory
//!
//! [`Stream::mem`] is the nodes' buffer capacities plus a per-node
//! overhead, plus each group's running estimate ([`group::Group::mem`]),
//! in O(number of groups).
//!
//! Values stored are always copies of the request arguments (the callers
//! pass slices; the node buffer is their only home).

pub mod group;

use std::collections::BTreeMap;

use bytes::Bytes;

pub use group::{Group, PendingEntry};

/// A node takes at most this many entries (live + deleted), as Redis's
/// default `stream-node-max-entries`.
pub const NODE_MAX_ENTRIES: u32 = 100;
/// A node stops taking entries once its buffer would reach this size, as
/// Redis's default `stream-node-max-bytes`.
pub const NODE_MAX_BYTES: usize = 4096;

/// Redis's `STREAM_LISTPACK_MAX_SIZE`: the node size used when
/// `stream-node-max-bytes` is 0 or larger.
const NODE_HARD_MAX_BYTES: usize = 1 << 30;
/// Per-node bytes besides the buffer: the B-tree slot (16-byte key,
/// 32-byte node) at B-tree occupancy, plus the buffer's allocator header.
const NODE_OVERHEAD: usize = 96;
/// Bytes of an empty stream (the boxed struct).
const STREAM_OVERHEAD: usize = 128;

const FLAG_DELETED: u8 = 1;
const FLAG_SAMEFIELDS: u8 = 2;

/// A stream entry ID: milliseconds and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The smallest ID, `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID, `18446744073709551615-18446744073709551615`.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// Builds an ID.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// True for `0-0`.
    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The next ID (Redis's `streamIncrID`); None after the last one.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                return None;
            }
            return Some(StreamId::new(self.ms + 1, 0));
        }
        Some(StreamId::new(self.ms, self.seq + 1))
    }

    /// The previous ID (Redis's `streamDecrID`); None before `0-0`.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                return None;
            }
            return Some(StreamId::new(self.ms - 1, u64::MAX));
        }
        Some(StreamId::new(self.ms, self.seq - 1))
    }

    /// The `ms-seq` text replies use.
    pub fn to_bytes(self) -> Bytes {
        let mut buf = [0u8; 41];
        Bytes::copy_from_slice(self.write_text(&mut buf))
    }

    /// Writes the `ms-seq` text into `buf` (41 bytes hold the longest),
    /// without the formatting machinery: replies write one per entry.
    pub fn write_text(self, buf: &mut [u8; 41]) -> &[u8] {
        let mut a = itoa::Buffer::new();
        let ms = a.format(self.ms).as_bytes();
        let n = ms.len();
        buf[..n].copy_from_slice(ms);
        buf[n] = b'-';
        let mut b = itoa::Buffer::new();
        let seq = b.format(self.seq).as_bytes();
        buf[n + 1..n + 1 + seq.len()].copy_from_slice(seq);
        &buf[..n + 1 + seq.len()]
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One decoded entry: its ID and field/value pairs.
pub type Entry = (StreamId, Vec<(Bytes, Bytes)>);

/// The field-value pairs of one entry, read in place (see
/// [`Stream::visit_range`]).
pub struct Fields<'a> {
    buf: &'a [u8],
    /// Where the next field name is in the node's master entry, when the
    /// entry has the master's fields.
    master: Option<usize>,
    pos: usize,
    left: u64,
}

impl Fields<'_> {
    /// How many pairs are left.
    pub fn remaining(&self) -> u64 {
        self.left
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let field = match &mut self.master {
            Some(at) => get_slice(self.buf, at),
            None => get_slice(self.buf, &mut self.pos),
        };
        let value = get_slice(self.buf, &mut self.pos);
        Some((field, value))
    }
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads a varint at `*pos`. The buffers are written by this module only,
/// so a malformed varint cannot occur; it decodes as 0 rather than panic.
fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = buf.get(*pos) {
        *pos += 1;
        if shift < 64 {
            v |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

fn get_slice<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = get_varint(buf, pos) as usize;
    let start = (*pos).min(buf.len());
    let end = start.saturating_add(len).min(buf.len());
    *pos = end;
    &buf[start..end]
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// One packed node (see the module header).
#[derive(Debug, Clone)]
struct Node {
    buf: Vec<u8>,
    /// Offset of the first entry (end of the master-fields header).
    start: u32,
    /// Number of master fields.
    nmaster: u32,
    /// Live entries.
    live: u32,
    /// Entries marked deleted.
    deleted: u32,
}

/// Position and header of one entry inside a node.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Offset of the flags byte.
    at: usize,
    flags: u8,
    id: StreamId,
    /// Offset of the fields (after the ID).
    body: usize,
}

impl Node {
    fn new(fields: &[&[u8]]) -> Node {
        let mut buf = Vec::with_capacity(256);
        put_varint(&mut buf, fields.len() as u64);
        for f in fields {
            put_varint(&mut buf, f.len() as u64);
            buf.extend_from_slice(f);
        }
        Node {
            start: buf.len() as u32,
            nmaster: fields.len() as u32,
            buf,
            live: 0,
            deleted: 0,
        }
    }

    fn mem(&self) -> usize {
        self.buf.capacity() + NODE_OVERHEAD
    }

    fn master_fields(&self) -> Vec<&[u8]> {
        let mut pos = 0;
        let n = get_varint(&self.buf, &mut pos);
        (0..n).map(|_| get_slice(&self.buf, &mut pos)).collect()
    }

    fn same_as_master(&self, fields: &[&[u8]]) -> bool {
        if fields.len() != self.nmaster as usize {
            return false;
        }
        let mut pos = 0;
        get_varint(&self.buf, &mut pos);
        fields.iter().all(|f| get_slice(&self.buf, &mut pos) == *f)
    }

    fn append(&mut self, master: StreamId, id: StreamId, pairs: &[(&[u8], &[u8])]) {
        let fields: Vec<&[u8]> = pairs.iter().map(|p| p.0).collect();
        let same = self.same_as_master(&fields);
        self.buf.push(if same { FLAG_SAMEFIELDS } else { 0 });
        put_varint(&mut self.buf, id.ms - master.ms);
        put_varint(
            &mut self.buf,
            zigzag(id.seq.wrapping_sub(master.seq) as i64),
        );
        if !same {
            put_varint(&mut self.buf, pairs.len() as u64);
        }
        for (f, v) in pairs {
            if !same {
                put_varint(&mut self.buf, f.len() as u64);
                self.buf.extend_from_slice(f);
            }
            put_varint(&mut self.buf, v.len() as u64);
            self.buf.extend_from_slice(v);
        }
        self.live += 1;
    }

    /// Decodes the entry header at `at`; returns it and the next offset.
    fn cursor(&self, master: StreamId, at: usize) -> (Cursor, usize) {
        let mut pos = at;
        let flags = self.buf.get(pos).copied().unwrap_or(FLAG_DELETED);
        pos += 1;
        let ms = master.ms.wrapping_add(get_varint(&self.buf, &mut pos));
        let seq = master
            .seq
            .wrapping_add(unzigzag(get_varint(&self.buf, &mut pos)) as u64);
        let body = pos;
        let n = if flags & FLAG_SAMEFIELDS != 0 {
            self.nmaster as u64
        } else {
            get_varint(&self.buf, &mut pos)
        };
        for _ in 0..n {
            if flags & FLAG_SAMEFIELDS == 0 {
                get_slice(&self.buf, &mut pos);
            }
            get_slice(&self.buf, &mut pos);
        }
        let c = Cursor {
            at,
            flags,
            id: StreamId::new(ms, seq),
            body,
        };
        (c, pos)
    }

    /// Every entry header of the node, in order (deleted ones included).
    fn cursors(&self, master: StreamId) -> Vec<Cursor> {
        let mut out = Vec::with_capacity((self.live + self.deleted) as usize);
        let mut at = self.start as usize;
        while at < self.buf.len() {
            let (c, next) = self.cursor(master, at);
            out.push(c);
            at = next;
        }
        out
    }

    /// The field/value pairs of the entry at `c` (copied out).
    fn fields(&self, c: &Cursor) -> Vec<(Bytes, Bytes)> {
        let mut pos = c.body;
        if c.flags & FLAG_SAMEFIELDS != 0 {
            let master = self.master_fields();
            master
                .into_iter()
                .map(|f| {
                    let v = get_slice(&self.buf, &mut pos);
                    (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v))
                })
                .collect()
        } else {
            let n = get_varint(&self.buf, &mut pos);
            (0..n)
                .map(|_| {
                    let f = get_slice(&self.buf, &mut pos);
                    let v = get_slice(&self.buf, &mut pos);
                    (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v))
                })
                .collect()
        }
    }

    /// The field-value pairs of the entry at `c`, read in place.
    fn fields_in_place(&self, c: &Cursor) -> Fields<'_> {
        let mut pos = c.body;
        let (master, left) = if c.flags & FLAG_SAMEFIELDS != 0 {
            let mut master = 0;
            get_varint(&self.buf, &mut master);
            (Some(master), self.nmaster as u64)
        } else {
            (None, get_varint(&self.buf, &mut pos))
        };
        Fields {
            buf: &self.buf,
            master,
            pos,
            left,
        }
    }

    fn mark_deleted(&mut self, at: usize) {
        if let Some(f) = self.buf.get_mut(at) {
            *f |= FLAG_DELETED;
        }
        self.live -= 1;
        self.deleted += 1;
    }
}

/// How to trim (XADD / XTRIM options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Remove entries with an ID below this one.
    MinId(StreamId),
}

/// Why an append failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddError {
    /// The ID is not greater than the stream's last ID.
    NotGreater,
    /// The stream's last ID is the maximum ID.
    Exhausted,
    /// `ms-*` with the sequence of `ms` used up (Redis reports it as
    /// "Elements are too large to be stored").
    TooLarge,
}

/// A stream value.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    /// The last ID ever generated (or set by XSETID).
    pub last_id: StreamId,
    /// The first live entry's ID (0-0 when empty), as Redis keeps it.
    pub first_id: StreamId,
    /// The greatest ID ever deleted (XDEL, or set by XSETID).
    pub max_deleted_id: StreamId,
    /// Entries ever added (or set by XSETID).
    pub entries_added: u64,
    /// Consumer groups by name (name order, as Redis's rax).
    pub groups: BTreeMap<Bytes, Group>,
    node_mem: usize,
}

impl Stream {
    /// Number of live entries.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// True with no live entry (the key still exists: streams are not
    /// deleted when emptied).
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Number of nodes (XINFO `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Estimated heap bytes (see the module header).
    pub fn mem(&self) -> usize {
        STREAM_OVERHEAD + self.node_mem + self.groups.values().map(Group::mem).sum::<usize>()
    }

    /// The ID XADD `*` would use at time `now_ms` (Redis's
    /// `streamNextID`), or an error if the last ID is the maximum.
    pub fn next_id(&self, now_ms: u64) -> Result<StreamId, AddError> {
        if now_ms > self.last_id.ms {
            Ok(StreamId::new(now_ms, 0))
        } else {
            self.last_id.incr().ok_or(AddError::Exhausted)
        }
    }

    /// The ID for XADD `ms-*`.
    pub fn next_id_for_ms(&self, ms: u64) -> Result<StreamId, AddError> {
        if self.last_id.ms == ms {
            if self.last_id.seq == u64::MAX {
                return Err(AddError::TooLarge);
            }
            Ok(StreamId::new(ms, self.last_id.seq + 1))
        } else {
            Ok(StreamId::new(ms, 0))
        }
    }

    /// Appends an entry with ID `id`, which must be greater than the last
    /// ID. `pairs` are field/value pairs; their bytes are copied.
    pub fn append(&mut self, id: StreamId, pairs: &[(&[u8], &[u8])]) -> Result<(), AddError> {
        self.append_within(id, pairs, NODE_MAX_BYTES, NODE_MAX_ENTRIES as usize)
    }

    /// [`Stream::append`] under the configured node limits
    /// (`stream-node-max-bytes`, `stream-node-max-entries`; 0 = none, as
    /// Redis's `streamAppendItem` reads them).
    pub fn append_within(
        &mut self,
        id: StreamId,
        pairs: &[(&[u8], &[u8])],
        max_bytes: usize,
        max_entries: usize,
    ) -> Result<(), AddError> {
        let max_bytes = if max_bytes == 0 || max_bytes > NODE_HARD_MAX_BYTES {
            NODE_HARD_MAX_BYTES
        } else {
            max_bytes
        };
        if self.last_id == StreamId::MAX {
            return Err(AddError::Exhausted);
        }
        if id <= self.last_id {
            return Err(AddError::NotGreater);
        }
        let total: usize = pairs.iter().map(|(f, v)| f.len() + v.len()).sum();
        let mut new_node = true;
        if let Some(mut last) = self.nodes.last_entry() {
            let n = last.get();
            let entries = (n.live + n.deleted) as usize;
            let full =
                n.buf.len() + total >= max_bytes || (max_entries != 0 && entries >= max_entries);
            if full {
                let n = last.get_mut();
                let before = n.mem();
                n.buf.shrink_to_fit();
                self.node_mem = self.node_mem + n.mem() - before;
            } else {
                new_node = false;
                let master = *last.key();
                let n = last.get_mut();
                let before = n.mem();
                n.append(master, id, pairs);
                self.node_mem = (self.node_mem + n.mem()).saturating_sub(before);
            }
        }
        if new_node {
            let fields: Vec<&[u8]> = pairs.iter().map(|p| p.0).collect();
            let mut n = Node::new(&fields);
            n.append(id, id, pairs);
            self.node_mem += n.mem();
            self.nodes.insert(id, n);
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(())
    }

    /// Live entries with `start <= id <= end`, in order (`rev`: from the
    /// end), at most `count` of them (0 = all).
    pub fn range(&self, start: StreamId, end: StreamId, count: usize, rev: bool) -> Vec<Entry> {
        let mut out = Vec::new();
        self.walk(start, end, rev, |node, c| {
            out.push((c.id, node.fields(c)));
            count == 0 || out.len() < count
        });
        out
    }

    /// [`range`](Self::range) without copying: calls `f` with the ID and
    /// the field-value pairs (read in place) of each entry, so that a reply
    /// is encoded straight from the stream.
    pub fn visit_range(
        &self,
        start: StreamId,
        end: StreamId,
        count: usize,
        rev: bool,
        mut f: impl FnMut(StreamId, Fields<'_>),
    ) {
        let mut seen = 0;
        self.walk(start, end, rev, |node, c| {
            f(c.id, node.fields_in_place(c));
            seen += 1;
            count == 0 || seen < count
        });
    }

    /// Calls `f` on each live entry in `[start, end]` in order until it
    /// returns false.
    fn walk(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        mut f: impl FnMut(&Node, &Cursor) -> bool,
    ) {
        if start > end || self.length == 0 {
            return;
        }
        if !rev {
            let first_key = self
                .nodes
                .range(..=start)
                .next_back()
                .map_or(start, |(k, _)| *k);
            for (master, node) in self.nodes.range(first_key..) {
                if *master > end {
                    return;
                }
                let mut at = node.start as usize;
                while at < node.buf.len() {
                    let (c, next) = node.cursor(*master, at);
                    at = next;
                    if c.id < start || c.flags & FLAG_DELETED != 0 {
                        continue;
                    }
                    if c.id > end {
                        return;
                    }
                    if !f(node, &c) {
                        return;
                    }
                }
            }
        } else {
            for (master, node) in self.nodes.range(..=end).rev() {
                for c in node.cursors(*master).iter().rev() {
                    if c.id > end || c.flags & FLAG_DELETED != 0 {
                        continue;
                    }
                    if c.id < start {
                        return;
                    }
                    if !f(node, c) {
                        return;
                    }
                }
            }
        }
    }

    /// The entry with ID `id`, if live.
    pub fn get(&self, id: StreamId) -> Option<Vec<(Bytes, Bytes)>> {
        self.range(id, id, 1, false).pop().map(|e| e.1)
    }

    /// True if a live entry has ID `id`.
    pub fn contains(&self, id: StreamId) -> bool {
        let mut found = false;
        self.walk(id, id, false, |_, _| {
            found = true;
            false
        });
        found
    }

    /// The first (or last) live ID, None when empty.
    pub fn edge_id(&self, first: bool) -> Option<StreamId> {
        let mut found = None;
        self.walk(StreamId::MIN, StreamId::MAX, !first, |_, c| {
            found = Some(c.id);
            false
        });
        found
    }

    /// The last live ID, or 0-0 (Redis's `streamLastValidID`).
    pub fn last_valid_id(&self) -> StreamId {
        self.edge_id(false).unwrap_or_default()
    }

    fn refresh_first_id(&mut self) {
        self.first_id = if self.length == 0 {
            StreamId::MIN
        } else {
            self.edge_id(true).unwrap_or_default()
        };
    }

    /// Deletes the live entry `id` (XDEL); true if it existed. Updates the
    /// first ID and the max deleted ID as Redis's XDEL does.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let mut at = node.start as usize;
        let mut hit = None;
        while at < node.buf.len() {
            let (c, next) = node.cursor(master, at);
            if c.id == id {
                if c.flags & FLAG_DELETED == 0 {
                    hit = Some(c.at);
                }
                break;
            }
            if c.id > id {
                break;
            }
            at = next;
        }
        let Some(at) = hit else {
            return false;
        };
        if node.live == 1 {
            let mem = node.mem();
            self.nodes.remove(&master);
            self.node_mem -= mem;
        } else {
            node.mark_deleted(at);
        }
        self.length -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if id == self.first_id {
            self.refresh_first_id();
        } else if self.length == 0 {
            self.first_id = StreamId::MIN;
        }
        true
    }

    /// Trims as Redis's `streamTrim`: whole nodes from the front, then (if
    /// not `approx`) entries inside the first remaining node. `limit` (0 =
    /// none) bounds the entries removed, counted per whole node. Returns
    /// the number of entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = how {
                if self.length <= max {
                    break;
                }
            }
            let Some(mut first) = self.nodes.first_entry() else {
                break;
            };
            let master = *first.key();
            let node = first.get_mut();
            let entries = u64::from(node.live);
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match how {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => {
                    let last = node.cursors(master).last().map_or(master, |c| c.id);
                    last < min
                }
            };
            if remove_node {
                let mem = node.mem();
                first.remove();
                self.node_mem -= mem;
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            for c in node.cursors(master) {
                let stop = match how {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => c.id >= min,
                };
                if stop {
                    break;
                }
                if c.flags & FLAG_DELETED == 0 {
                    node.mark_deleted(c.at);
                    self.length -= 1;
                    deleted += 1;
                }
            }
            break;
        }
        self.refresh_first_id();
        deleted
    }

    /// Redis's `streamRangeHasTombstones(s, start, NULL)`: whether a
    /// deleted entry may lie at or after `start`.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: the logical
    /// read counter of `id`, None when it cannot be known.
    pub fn estimate_distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.length);
            }
            if id == self.first_id {
                return Some(self.entries_added - self.length + 1);
            }
        }
        None
    }

    /// The lag of a group as XINFO reports it (Redis's
    /// `streamReplyWithCGLag`); None is a null reply.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.has_tombstones_from(g.last_id) {
                return Some(self.entries_added as i64 - read as i64);
            }
        }
        self.estimate_distance(g.last_id)
            .map(|read| self.entries_added as i64 - read as i64)
    }

    /// Advances `group`'s last ID and read counter over entry `id`, as
    /// XREADGROUP `>` does for each entry it delivers.
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) {
        let tomb = self.has_tombstones_from(id);
        let est = self.estimate_distance(id);
        let added = self.entries_added;
        if let Some(g) = self.groups.get_mut(group) {
            if id > g.last_id {
                match g.entries_read {
                    Some(r) if !tomb => g.entries_read = Some(r + 1),
                    _ if added != 0 => g.entries_read = est,
                    _ => {}
                }
                g.last_id = id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn pairs(i: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        if i.is_multiple_of(7) {
            vec![(b"other".to_vec(), format!("x{i}").into_bytes())]
        } else {
            vec![
                (b"f1".to_vec(), format!("v{i}").into_bytes()),
                (b"f2".to_vec(), vec![b'y'; (i % 50) as usize]),
            ]
        }
    }

    fn add(s: &mut Stream, id: StreamId, i: u64) {
        let p = pairs(i);
        let refs: Vec<(&[u8], &[u8])> = p.iter().map(|(f, v)| (&f[..], &v[..])).collect();
        s.append(id, &refs).expect("append");
    }

    fn model_entry(i: u64) -> Vec<(Bytes, Bytes)> {
        pairs(i)
            .into_iter()
            .map(|(f, v)| (Bytes::from(f), Bytes::from(v)))
            .collect()
    }

    #[test]
    fn random_operations_match_a_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _round in 0..20 {
            let mut s = Stream::default();
            let mut model: BTreeMap<StreamId, u64> = BTreeMap::new();
            let mut next = StreamId::new(1, 0);
            for i in 0..3000u64 {
                match rng.gen_range(0..100) {
                    0..=69 => {
                        add(&mut s, next, i);
                        model.insert(next, i);
                        next = if rng.gen_bool(0.3) {
                            StreamId::new(next.ms + rng.gen_range(1..1000), rng.gen_range(0..3))
                        } else {
                            next.incr().expect("incr")
                        };
                    }
                    70..=84 => {
                        if let Some(&k) = model.keys().nth(rng.gen_range(0..model.len().max(1))) {
                            assert!(s.delete(k));
                            model.remove(&k);
                            assert!(!s.delete(k));
                        }
                    }
                    85..=89 => {
                        let max = rng.gen_range(0..model.len() as u64 + 5);
                        let approx = rng.gen_bool(0.5);
                        let n = s.trim(Trim::MaxLen(max), approx, 0);
                        if approx {
                            assert!(s.len() >= max.min(model.len() as u64));
                            while model.len() as u64 > s.len() {
                                model.pop_first();
                            }
                        } else {
                            while model.len() as u64 > max {
                                model.pop_first();
                            }
                        }
                        let _ = n;
                        assert_eq!(s.len(), model.len() as u64);
                    }
                    90..=92 => {
                        let min = StreamId::new(rng.gen_range(0..next.ms + 1), 0);
                        let n = s.trim(Trim::MinId(min), false, 0);
                        let before = model.len();
                        model.retain(|k, _| *k >= min);
                        assert_eq!(n as usize, before - model.len());
                    }
                    _ => {
                        let a = StreamId::new(rng.gen_range(0..next.ms + 2), rng.gen_range(0..3));
                        let b = StreamId::new(rng.gen_range(0..next.ms + 2), rng.gen_range(0..3));
                        let count = rng.gen_range(0..20);
                        let rev = rng.gen_bool(0.5);
                        let got = s.range(a, b, count, rev);
                        let mut want: Vec<Entry> = model
                            .range(a..=b.max(a))
                            .filter(|_| a <= b)
                            .map(|(k, i)| (*k, model_entry(*i)))
                            .collect();
                        if rev {
                            want.reverse();
                        }
                        if count > 0 {
                            want.truncate(count);
                        }
                        assert_eq!(got, want);
                    }
                }
                assert_eq!(s.len(), model.len() as u64);
                assert_eq!(s.first_id, model.keys().next().copied().unwrap_or_default());
            }
            let all = s.range(StreamId::MIN, StreamId::MAX, 0, false);
            assert_eq!(all.len(), model.len());
            assert!(s.nodes.values().all(|n| n.live > 0));
        }
    }

    #[test]
    fn ids_and_exhaustion() {
        let mut s = Stream::default();
        assert_eq!(s.append(StreamId::MIN, &[]), Err(AddError::NotGreater));
        s.append(StreamId::new(5, 5), &[(b"a", b"b")]).expect("add");
        assert_eq!(s.next_id(3), Ok(StreamId::new(5, 6)));
        assert_eq!(s.next_id(9), Ok(StreamId::new(9, 0)));
        assert_eq!(s.next_id_for_ms(5), Ok(StreamId::new(5, 6)));
        s.append(StreamId::MAX, &[(b"a", b"b")]).expect("add");
        assert_eq!(s.next_id(1), Err(AddError::Exhausted));
        assert_eq!(
            s.append(StreamId::MAX, &[(b"a", b"b")]),
            Err(AddError::Exhausted)
        );
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::MIN.decr(), None);
    }

    #[test]
    fn nodes_pack_entries_compactly() {
        let mut s = Stream::default();
        for i in 0..1000u64 {
            s.append(
                StreamId::new(1_700_000_000_000 + i / 3, i % 3),
                &[(b"f1", b"v1"), (b"f2", b"v2"), (b"f3", b"v3")],
            )
            .expect("add");
        }
        assert_eq!(s.node_count(), 10);
        // values only: ~15 bytes per entry plus node overheads
        assert!(s.mem() < 1000 * 24, "mem {}", s.mem());
        assert_eq!(s.range(StreamId::MIN, StreamId::MAX, 0, true).len(), 1000);
    }
}
