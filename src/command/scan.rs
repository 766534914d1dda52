//! HSCAN, SSCAN and ZSCAN: Redis's cursor over one value.
//!
//! Redis answers a value in a compact encoding (a listpack hash or sorted
//! set, an intset) with every element at once and cursor 0, whatever
//! COUNT says, and pages through a hash table COUNT buckets at a time.
//! herald does the same with the same thresholds (`hash-max-listpack-*`,
//! `set-max-intset-entries`, `zset-max-listpack-*`). Its cursors keep
//! SCAN's guarantee (an element present for the whole scan is returned at
//! least once): hashes and sets are `IndexMap`s walked downward from the
//! end by position, as the keyspace is (a removal moves only an element
//! already visited into a visited or an unvisited slot); a sorted set is
//! walked upward through its skiplist's arena, whose slots never move.

use bytes::Bytes;

use super::keys::{parse_cursor, parse_scan_opts, ScanOpts};
use crate::command::Client;
use crate::protocol::frame::format_double;
use crate::protocol::Frame;
use crate::store::{walk_down, Db, Value, WRONGTYPE};

/// Redis's `shared.emptyscan`: cursor 0, no element.
fn empty_scan() -> Frame {
    Frame::Array(vec![Frame::bulk("0"), Frame::Array(vec![])])
}

/// A numeric option of the configuration (the compact-encoding limits).
fn limit(c: &Client, name: &str) -> u64 {
    c.shared
        .config
        .read()
        .value(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The common start of the three commands, in Redis's order: the cursor,
/// then the key (a missing key answers an empty scan before the options
/// are read), then the options. None once the reply is sent.
fn begin<'a>(
    c: &mut Client,
    db: &'a mut Db,
    args: &[Bytes],
    kind: &str,
) -> Option<(u64, &'a Value, ScanOpts)> {
    let Some(cursor) = parse_cursor(&args[2]) else {
        c.error("ERR invalid cursor");
        return None;
    };
    let Some(v) = db.get(&args[1]) else {
        c.reply(empty_scan());
        return None;
    };
    if v.type_name() != kind {
        c.error(WRONGTYPE);
        return None;
    }
    match parse_scan_opts(&args[3..], false) {
        Ok(o) => Some((cursor, v, o)),
        Err(e) => {
            c.error(e);
            None
        }
    }
}

fn matches(o: &ScanOpts, item: &[u8]) -> bool {
    o.pattern.as_ref().is_none_or(|p| p.matches(item))
}

fn reply(c: &mut Client, next: u64, out: Vec<Frame>) {
    c.reply(Frame::Array(vec![
        Frame::bulk(next.to_string()),
        Frame::Array(out),
    ]));
}

/// HSCAN key cursor [MATCH pattern] [COUNT count].
pub fn hscan(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let entries = limit(c, "hash-max-listpack-entries");
    let value_max = limit(c, "hash-max-listpack-value");
    let Some((cursor, Value::Hash(h), o)) = begin(c, db, args, "hash") else {
        return;
    };
    let compact = h.len() as u64 <= entries
        && h.iter()
            .all(|(k, v)| k.len() as u64 <= value_max && v.len() as u64 <= value_max);
    let mut out = Vec::new();
    let mut push = |k: &[u8], v: &[u8]| {
        if matches(&o, k) {
            out.push(Frame::Bulk(Bytes::copy_from_slice(k)));
            out.push(Frame::Bulk(Bytes::copy_from_slice(v)));
        }
    };
    if compact {
        h.iter().for_each(|(k, v)| push(k, v));
        return reply(c, 0, out);
    }
    let next = walk_down(h.len(), cursor, o.count, |i| {
        if let Some((k, v)) = h.get_index(i) {
            push(k, v);
        }
    });
    reply(c, next, out);
}

/// SSCAN key cursor [MATCH pattern] [COUNT count].
pub fn sscan(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let entries = limit(c, "set-max-intset-entries");
    let Some((cursor, Value::Set(s), o)) = begin(c, db, args, "set") else {
        return;
    };
    let members = s.members();
    let intset = members.len() as u64 <= entries
        && members
            .iter()
            .all(|m| crate::protocol::parse::string_to_i64(m).is_some());
    let mut out = Vec::new();
    let mut push = |m: &[u8]| {
        if matches(&o, m) {
            out.push(Frame::Bulk(Bytes::copy_from_slice(m)));
        }
    };
    if intset {
        // An intset is sorted.
        let mut all: Vec<(i64, &[u8])> = members
            .iter()
            .filter_map(|m| crate::protocol::parse::string_to_i64(m).map(|n| (n, m.as_bytes())))
            .collect();
        all.sort_unstable_by_key(|(n, _)| *n);
        all.into_iter().for_each(|(_, m)| push(m));
        return reply(c, 0, out);
    }
    let next = walk_down(members.len(), cursor, o.count, |i| {
        if let Some(m) = members.get_index(i) {
            push(m);
        }
    });
    reply(c, next, out);
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count].
pub fn zscan(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let entries = limit(c, "zset-max-listpack-entries");
    let value_max = limit(c, "zset-max-listpack-value");
    let Some((cursor, Value::ZSet(z), o)) = begin(c, db, args, "zset") else {
        return;
    };
    let mut out = Vec::new();
    let mut push = |m: &[u8], s: f64| {
        if matches(&o, m) {
            out.push(Frame::Bulk(Bytes::copy_from_slice(m)));
            out.push(Frame::Bulk(Bytes::from(format_double(s))));
        }
    };
    let compact = z.len() as u64 <= entries && {
        let mut all_short = true;
        let mut cur = z.first();
        while let Some(p) = cur {
            all_short &= z.entry(p).0.len() as u64 <= value_max;
            cur = z.next(p);
        }
        all_short
    };
    if compact {
        // A listpack is in score order.
        let mut cur = z.first();
        while let Some(p) = cur {
            let (m, s) = z.entry(p);
            push(m, s);
            cur = z.next(p);
        }
        return reply(c, 0, out);
    }
    let next = z.scan_slots(cursor, o.count, push);
    reply(c, next, out);
}
