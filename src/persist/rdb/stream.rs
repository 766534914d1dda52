//! Streams in RDB (`RDB_TYPE_STREAM_LISTPACKS_2`, and reading the older
//! `RDB_TYPE_STREAM_LISTPACKS`): the entries as Redis's listpack nodes,
//! keyed by their master ID, then the stream's metadata and its consumer
//! groups with their pending entries and consumers.
//!
//! A node's listpack, as `t_stream.c` lays it out:
//!
//! ```text
//! master:  count  deleted  nfields  field*  0
//! entry:   flags  ms-delta  seq-delta  [nfields (field value)* | value*]  lp-count
//! ```
//!
//! (`SAMEFIELDS` entries carry values only, the master's fields being
//! theirs.) Herald keeps its nodes its own way; the writer lays the live
//! entries out in nodes exactly as a Redis stream filled by XADD has them
//! (`stream-node-max-bytes` / `-entries`), so a stream without deletions
//! dumps as Redis's bytes.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::listpack::{self, Item};
use super::{put_len, put_string, Encoding, Reader};
use crate::store::stream::{Group, PendingEntry, Stream, StreamId};

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;
/// `STREAM_LISTPACK_MAX_SIZE`.
const LISTPACK_MAX_SIZE: u64 = 1 << 30;

/// A node being laid out: what follows its count element, so that the
/// count can be written last (Redis rewrites it in place at each append).
struct NodeOut {
    master: StreamId,
    fields: Vec<Bytes>,
    count: i64,
    rest: listpack::Writer,
}

impl NodeOut {
    /// `lpBytes` of the node as Redis has it at this point.
    fn bytes(&self) -> usize {
        self.rest.bytes() + listpack::int_size(self.count)
    }

    fn finish(self) -> (StreamId, Vec<u8>) {
        let mut lp = listpack::Writer::new();
        lp.push_int(self.count);
        lp.append(&self.rest);
        (self.master, lp.finish())
    }
}

fn raw_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

/// Appends the stream's encoding (after its type byte).
pub fn write(out: &mut Vec<u8>, s: &Stream, enc: &Encoding) {
    let max_bytes = match enc.stream_node_bytes {
        0 => LISTPACK_MAX_SIZE,
        n => n.min(LISTPACK_MAX_SIZE),
    } as usize;
    let mut nodes: Vec<(StreamId, Vec<u8>)> = Vec::new();
    let mut cur: Option<NodeOut> = None;
    for (id, pairs) in s.range(StreamId::MIN, StreamId::MAX, 0, false) {
        let total: usize = pairs.iter().map(|(f, v)| f.len() + v.len()).sum();
        if let Some(node) = &cur {
            let full = node.bytes() + total >= max_bytes
                || (enc.stream_node_entries != 0 && node.count as u64 >= enc.stream_node_entries);
            if full {
                if let Some(done) = cur.take() {
                    nodes.push(done.finish());
                }
            }
        }
        let node = cur.get_or_insert_with(|| {
            let mut rest = listpack::Writer::new();
            rest.push_int(0);
            rest.push_int(pairs.len() as i64);
            for (f, _) in &pairs {
                rest.push(f);
            }
            rest.push_int(0);
            NodeOut {
                master: id,
                fields: pairs.iter().map(|(f, _)| f.clone()).collect(),
                count: 0,
                rest,
            }
        });
        let same = node.fields.len() == pairs.len()
            && node.fields.iter().zip(&pairs).all(|(m, (f, _))| m == f);
        let rest = &mut node.rest;
        rest.push_int(if same { FLAG_SAMEFIELDS } else { 0 });
        rest.push_int(id.ms.wrapping_sub(node.master.ms) as i64);
        rest.push_int(id.seq.wrapping_sub(node.master.seq) as i64);
        if !same {
            rest.push_int(pairs.len() as i64);
        }
        for (f, v) in &pairs {
            if !same {
                rest.push(f);
            }
            rest.push(v);
        }
        let n = pairs.len() as i64;
        rest.push_int(if same { n + 3 } else { 2 * n + 4 });
        node.count += 1;
    }
    if let Some(done) = cur {
        nodes.push(done.finish());
    }
    put_len(out, nodes.len() as u64);
    for (master, lp) in nodes {
        let mut key = Vec::with_capacity(16);
        raw_id(&mut key, master);
        put_string(out, &key, enc.compress);
        put_string(out, &lp, enc.compress);
    }
    put_len(out, s.len());
    put_len(out, s.last_id.ms);
    put_len(out, s.last_id.seq);
    put_len(out, s.first_id.ms);
    put_len(out, s.first_id.seq);
    put_len(out, s.max_deleted_id.ms);
    put_len(out, s.max_deleted_id.seq);
    put_len(out, s.entries_added);
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_string(out, name, enc.compress);
        put_len(out, g.last_id.ms);
        put_len(out, g.last_id.seq);
        // Redis's -1 (unknown) as the unsigned length it casts to.
        put_len(out, g.entries_read.unwrap_or(u64::MAX));
        put_len(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            raw_id(out, *id);
            out.extend_from_slice(&p.delivery_time.to_le_bytes());
            put_len(out, p.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_string(out, cname, enc.compress);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            put_len(out, c.pel.len() as u64);
            for id in &c.pel {
                raw_id(out, *id);
            }
        }
    }
}

fn read_raw_id(r: &mut Reader) -> Option<StreamId> {
    let b = r.take(16)?;
    let ms = u64::from_be_bytes(b[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(b[8..].try_into().ok()?);
    Some(StreamId::new(ms, seq))
}

fn read_id(r: &mut Reader) -> Option<StreamId> {
    Some(StreamId::new(r.read_len()?, r.read_len()?))
}

/// An entry's field-value pairs, as read.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The live entries of one node's listpack, checked element by element
/// (Redis's `streamValidateListpackIntegrity` with deep sanitization).
fn node_entries(master: StreamId, items: &[Item]) -> Option<Vec<(StreamId, Fields)>> {
    let mut it = items.iter().copied();
    let int = |it: &mut dyn Iterator<Item = Item>| it.next().and_then(Item::int);
    let live = int(&mut it)?;
    let deleted = int(&mut it)?;
    let nmaster = usize::try_from(int(&mut it)?).ok()?;
    if nmaster > items.len() {
        return None;
    }
    let mut fields = Vec::with_capacity(nmaster);
    for _ in 0..nmaster {
        fields.push(it.next()?.to_vec());
    }
    if int(&mut it)? != 0 {
        return None;
    }
    let mut out = Vec::new();
    let (mut seen_live, mut seen_deleted) = (0i64, 0i64);
    while let Some(flags) = it.next() {
        let flags = flags.int()?;
        let ms = master.ms.wrapping_add(int(&mut it)? as u64);
        let seq = master.seq.wrapping_add(int(&mut it)? as u64);
        let same = flags & FLAG_SAMEFIELDS != 0;
        let n = if same {
            nmaster
        } else {
            usize::try_from(int(&mut it)?)
                .ok()
                .filter(|&n| n <= items.len())?
        };
        let mut pairs = Vec::with_capacity(n);
        for i in 0..n {
            let f = match fields.get(i).filter(|_| same) {
                Some(f) => f.clone(),
                None => it.next()?.to_vec(),
            };
            pairs.push((f, it.next()?.to_vec()));
        }
        let lp_count = int(&mut it)?;
        let expected = if same { n as i64 + 3 } else { 2 * n as i64 + 4 };
        if lp_count != expected {
            return None;
        }
        if flags & FLAG_DELETED != 0 {
            seen_deleted += 1;
        } else {
            seen_live += 1;
            out.push((StreamId::new(ms, seq), pairs));
        }
    }
    (seen_live == live && seen_deleted == deleted).then_some(out)
}

/// Reads a stream (after its type byte); `v2`: `STREAM_LISTPACKS_2`,
/// with the first ID, the greatest deleted ID, the entries added and the
/// groups' read counters.
pub fn read(r: &mut Reader, v2: bool) -> Option<Stream> {
    let mut s = Stream::default();
    let nodes = r.count(2)?;
    let mut last_master: Option<StreamId> = None;
    for _ in 0..nodes {
        let key = r.string()?;
        let key: [u8; 16] = key.as_slice().try_into().ok()?;
        let master = StreamId::new(
            u64::from_be_bytes(key[..8].try_into().ok()?),
            u64::from_be_bytes(key[8..].try_into().ok()?),
        );
        if last_master.is_some_and(|m| m >= master) {
            return None;
        }
        last_master = Some(master);
        let lp = r.string()?;
        let items = listpack::decode(&lp)?;
        if items.is_empty() {
            return None;
        }
        for (id, pairs) in node_entries(master, &items)? {
            let refs: Vec<(&[u8], &[u8])> = pairs
                .iter()
                .map(|(f, v)| (f.as_slice(), v.as_slice()))
                .collect();
            s.append(id, &refs).ok()?;
        }
    }
    let length = r.read_len()?;
    let last_id = read_id(r)?;
    if length != s.len() || last_id < s.last_id {
        return None;
    }
    s.last_id = last_id;
    if v2 {
        let first_id = read_id(r)?;
        if s.is_empty() {
            s.first_id = first_id;
        }
        s.max_deleted_id = read_id(r)?;
        s.entries_added = r.read_len()?;
    } else {
        s.max_deleted_id = StreamId::MIN;
        s.entries_added = s.len();
    }
    let groups = r.count(1)?;
    for _ in 0..groups {
        let name = r.bytes()?;
        let last = read_id(r)?;
        let entries_read = if v2 {
            Some(r.read_len()?).filter(|&n| n != u64::MAX)
        } else {
            s.estimate_distance(last)
        };
        if s.groups.contains_key(&name) {
            return None;
        }
        let mut g = Group::new(&name, last, entries_read);
        // Delivery time and count of each pending ID, owners to come.
        let mut pel: BTreeMap<StreamId, (u64, u64, Option<Bytes>)> = BTreeMap::new();
        for _ in 0..r.count(17)? {
            let id = read_raw_id(r)?;
            let time = r.millis()?;
            let count = r.read_len()?;
            if pel.insert(id, (time, count, None)).is_some() {
                return None;
            }
        }
        for _ in 0..r.count(9)? {
            let cname = r.bytes()?;
            let seen = r.millis()?;
            if !g.ensure_consumer(&cname, seen, false) {
                return None;
            }
            let owned = r.count(16)?;
            let mut ids = Vec::with_capacity(owned);
            for _ in 0..owned {
                let id = read_raw_id(r)?;
                let entry = pel.get_mut(&id)?;
                if entry.2.is_some() {
                    return None;
                }
                entry.2 = Some(cname.clone());
                ids.push(id);
            }
            let c = g.consumers.get_mut(&cname)?;
            c.pel.extend(ids);
        }
        for (id, (delivery_time, delivery_count, owner)) in pel {
            // Every pending entry has an owner (Redis checks it when it
            // sanitizes payloads; herald's PEL cannot hold one without).
            let consumer = owner?;
            g.pel.insert(
                id,
                PendingEntry {
                    delivery_time,
                    delivery_count,
                    consumer,
                },
            );
        }
        s.groups.insert(name, g);
    }
    Some(s)
}
