//! Stream commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID,
//! XREAD, XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER,
//! HELP), XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM and XINFO
//! (STREAM, GROUPS, CONSUMERS, HELP), with redis-server 7.0's parsing
//! order, replies and error texts (`t_stream.c`).
//!
//! The data structure is [`crate::store::stream`]. Blocking XREAD and
//! XREADGROUP register a [`BlockOp::XRead`] / [`BlockOp::XReadGroup`]
//! waiter through the shared blocking machinery (`lists::block`); the
//! writer that makes data available serves it with [`serve_waiter`],
//! under the database lock, in blocking order.

use bytes::Bytes;

use super::blocking::BlockOp;
use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::{Frame, Protocol};
use crate::store::stream::{AddError, Entry, Fields, Group, Stream, StreamId, Trim};
use crate::store::{own, Db, Value, WRONGTYPE};

const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
/// Default COUNT of a blocked XREAD / XREADGROUP (Redis's
/// `XREAD_BLOCKED_DEFAULT_COUNT`).
const BLOCKED_DEFAULT_COUNT: usize = 1000;

/// A key or name as Redis prints it with `%s`: up to a NUL, CR/LF as spaces.
fn cs(b: &[u8]) -> String {
    crate::util::sanitize(crate::util::c_str(b))
}

/// Redis's `string2ull`: a strict non-negative integer, or else what
/// `strtoull` accepts (leading blanks, a sign, wrapping negation), with
/// overflow rejected.
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return (v >= 0).then_some(v as u64);
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    if i >= s.len() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in &s[i..] {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Redis's `streamGenericParseIDOrReply`: `ms[-seq]`, `-`, `+` (unless
/// `strict`), `ms-*` when `seq_star` (then the bool is false: sequence
/// not given). Errors are the invalid-ID reply.
fn parse_id_full(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_star: bool,
) -> Option<(StreamId, bool)> {
    if arg.len() > 127 {
        return None;
    }
    let buf = crate::util::c_str_max(arg, 127);
    if strict && (buf == b"-" || buf == b"+") {
        return None;
    }
    if buf == b"-" {
        return Some((StreamId::MIN, true));
    }
    if buf == b"+" {
        return Some((StreamId::MAX, true));
    }
    match memchr::memchr(b'-', buf) {
        Some(d) => {
            let ms = string2ull(&buf[..d])?;
            let rest = &buf[d + 1..];
            if seq_star && rest == b"*" {
                return Some((StreamId::new(ms, 0), false));
            }
            Some((StreamId::new(ms, string2ull(rest)?), true))
        }
        None => Some((StreamId::new(string2ull(buf)?, missing_seq), true)),
    }
}

/// A strict ID (no `-` / `+`), replying the error if invalid.
fn strict_id(c: &mut Client, arg: &[u8]) -> Option<StreamId> {
    match parse_id_full(arg, 0, true, false) {
        Some((id, _)) => Some(id),
        None => {
            c.error(ERR_INVALID_ID);
            None
        }
    }
}

/// Redis's `streamParseIntervalIDOrReply` plus the exclusive-bound step:
/// the inclusive bound, or None after replying.
fn interval_id(c: &mut Client, arg: &[u8], missing_seq: u64, start: bool) -> Option<StreamId> {
    let exclusive = arg.len() > 1 && arg[0] == b'(';
    let parsed = if exclusive {
        parse_id_full(&arg[1..], missing_seq, true, false)
    } else {
        parse_id_full(arg, missing_seq, false, false)
    };
    let Some((id, _)) = parsed else {
        c.error(ERR_INVALID_ID);
        return None;
    };
    if !exclusive {
        return Some(id);
    }
    let r = if start { id.incr() } else { id.decr() };
    if r.is_none() {
        c.error(if start {
            "ERR invalid start ID for the interval"
        } else {
            "ERR invalid end ID for the interval"
        });
    }
    r
}

/// `getLongLongFromObjectOrReply` with an optional custom message.
fn int_arg(c: &mut Client, arg: &[u8], msg: Option<&str>) -> Option<i64> {
    let v = parse_i64(arg);
    if v.is_none() {
        match msg {
            Some(m) => c.error(format!("ERR {m}")),
            None => c.error(ERR_NOT_INTEGER),
        }
    }
    v
}

/// The stream at `key` for reading: Ok(None) if missing, Err after
/// replying WRONGTYPE.
fn read_stream<'a>(c: &mut Client, db: &'a mut Db, key: &[u8]) -> Result<Option<&'a Stream>, ()> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => {
            c.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Runs `f` on the stream at `key` (which the caller checked exists),
/// keeping the memory estimate right.
fn with_stream<R: Default>(db: &mut Db, key: &[u8], f: impl FnOnce(&mut Stream) -> R) -> R {
    db.update(key, |v| match v {
        Value::Stream(s) => f(s),
        _ => R::default(),
    })
    .unwrap_or_default()
}

fn id_frame(id: StreamId) -> Frame {
    Frame::Bulk(id.to_bytes())
}

fn entry_frame((id, fields): Entry) -> Frame {
    let mut fv = Vec::with_capacity(fields.len() * 2);
    for (f, v) in fields {
        fv.push(Frame::Bulk(f));
        fv.push(Frame::Bulk(v));
    }
    Frame::Array(vec![id_frame(id), Frame::Array(fv)])
}

fn entries_frame(entries: Vec<Entry>) -> Frame {
    Frame::Array(entries.into_iter().map(entry_frame).collect())
}

/// XREAD's reply: `[[key, entries], ...]` in RESP2, a map in RESP3.
fn xread_reply(proto: Protocol, items: Vec<(Bytes, Frame)>) -> Frame {
    match proto {
        Protocol::Resp2 => Frame::Array(
            items
                .into_iter()
                .map(|(k, v)| Frame::Array(vec![Frame::Bulk(k), v]))
                .collect(),
        ),
        Protocol::Resp3 => Frame::Map(
            items
                .into_iter()
                .map(|(k, v)| (Frame::Bulk(k), v))
                .collect(),
        ),
    }
}

// ---------------------------------------------------------------------------
// XADD / XTRIM

/// Parsed trimming options of XADD / XTRIM.
#[derive(Default)]
struct TrimArgs {
    how: Option<Trim>,
    approx: bool,
    limit: u64,
    id: Option<(StreamId, bool)>,
    nomkstream: bool,
}

/// Redis's `streamParseAddOrTrimArgsOrReply`: returns the options and the
/// index of the ID argument (XADD) or None after replying.
fn parse_add_trim(c: &mut Client, args: &[Bytes], xadd: bool) -> Option<(TrimArgs, usize)> {
    let mut t = TrimArgs::default();
    let mut limit: i64 = 0;
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i][..];
        if xadd && opt == b"*" {
            break;
        } else if (opt.eq_ignore_ascii_case(b"maxlen") || opt.eq_ignore_ascii_case(b"minid"))
            && more > 0
        {
            if t.how.is_some() {
                c.error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
                return None;
            }
            t.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && next == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if opt.eq_ignore_ascii_case(b"maxlen") {
                let n = int_arg(c, &args[i + 1], None)?;
                if n < 0 {
                    c.error("ERR The MAXLEN argument must be >= 0.");
                    return None;
                }
                t.how = Some(Trim::MaxLen(n as u64));
            } else {
                t.how = Some(Trim::MinId(strict_id(c, &args[i + 1])?));
            }
            i += 1;
        } else if opt.eq_ignore_ascii_case(b"limit") && more > 0 {
            limit = int_arg(c, &args[i + 1], None)?;
            if limit < 0 {
                c.error("ERR The LIMIT argument must be >= 0.");
                return None;
            }
            limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            match parse_id_full(opt, 0, true, true) {
                Some(id) => t.id = Some(id),
                None => {
                    c.error(ERR_INVALID_ID);
                    return None;
                }
            }
            break;
        } else {
            c.error(ERR_SYNTAX);
            return None;
        }
        i += 1;
    }
    if limit != 0 && t.how.is_none() {
        c.error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && t.how.is_none() {
        c.error("ERR syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    if c.handle.id == u64::MAX {
        // The AOF loader (Redis's `c->id == CLIENT_ID_AOF`): trims were
        // logged exact, possibly with the LIMIT Redis leaves in place.
        t.limit = 0;
    } else if limit_given {
        if !t.approx {
            c.error("ERR syntax error, LIMIT cannot be used without the special ~ option");
            return None;
        }
        t.limit = limit as u64;
    } else if t.approx {
        // Redis's default: 100 nodes' worth, 10000 without a node limit.
        let per_node = c.shared.engine.store.encodings.limits().stream_node_entries as u64;
        t.limit = if per_node == 0 {
            10_000
        } else {
            per_node.saturating_mul(100).min(1_000_000)
        };
    }
    Some((t, i))
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...].
pub fn xadd(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some((t, idpos)) = parse_add_trim(c, args, true) else {
        return;
    };
    let fpos = idpos + 1;
    if args.len() < fpos + 2 || (args.len() - fpos) % 2 == 1 {
        return c.error("ERR wrong number of arguments for 'xadd' command");
    }
    if let Some((id, true)) = t.id {
        if id.is_zero() {
            return c.error("ERR The ID specified in XADD must be greater than 0-0");
        }
    }
    let key = &args[1];
    let exists = match read_stream(c, db, key) {
        Err(()) => return,
        Ok(s) => s.is_some(),
    };
    if !exists {
        if t.nomkstream {
            return c.reply(Frame::Null);
        }
        db.set(key, Value::Stream(Box::default()), false);
    }
    let now = db.now;
    let pairs: Vec<(&[u8], &[u8])> = args[fpos..]
        .chunks_exact(2)
        .map(|p| (&p[0][..], &p[1][..]))
        .collect();
    let lim = db.enc_limits;
    let res = with_stream(db, key, |s| -> Option<Result<_, AddError>> {
        Some((|| {
            if s.last_id == StreamId::MAX {
                return Err(AddError::Exhausted);
            }
            let id = match t.id {
                None => s.next_id(now)?,
                Some((id, true)) => id,
                Some((id, false)) => s.next_id_for_ms(id.ms)?,
            };
            s.append_within(id, &pairs, lim.stream_node_bytes, lim.stream_node_entries)?;
            let trimmed = t.how.map_or(0, |how| s.trim(how, t.approx, t.limit));
            Ok((id, trimmed))
        })())
    });
    let (id, trimmed) = match res {
        None => return,
        Some(Ok(r)) => r,
        Some(Err(AddError::Exhausted)) => {
            return c.error(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            )
        }
        Some(Err(AddError::TooLarge)) => return c.error("ERR Elements are too large to be stored"),
        Some(Err(AddError::NotGreater)) => {
            return c.error(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            )
        }
    };
    c.reply(id_frame(id));
    db.modified(key);
    db.notify(notify::STREAM, "xadd", key);
    if trimmed > 0 {
        db.notify(notify::STREAM, "xtrim", key);
    }
    if db.propagating {
        // Logged with the ID it got, as Redis rewrites `*`, and an
        // approximate trim as the exact one it amounted to.
        let mut cmd = vec![args[0].clone(), own(key)];
        if t.nomkstream {
            cmd.push(Bytes::from_static(b"NOMKSTREAM"));
        }
        if let Some(how) = t.how {
            match db.get(key) {
                Some(Value::Stream(s)) if t.approx => cmd.extend(exact_trim(s, how)),
                _ => cmd.extend(trim_args(how)),
            }
        }
        cmd.push(id.to_bytes());
        for a in &args[fpos..] {
            cmd.push(own(a));
        }
        db.propagate(cmd);
    }
}

/// `MAXLEN = n` / `MINID = id` for a trim strategy.
fn trim_args(how: Trim) -> [Bytes; 3] {
    match how {
        Trim::MaxLen(n) => [
            Bytes::from_static(b"MAXLEN"),
            Bytes::from_static(b"="),
            Bytes::from(n.to_string()),
        ],
        Trim::MinId(id) => [
            Bytes::from_static(b"MINID"),
            Bytes::from_static(b"="),
            id.to_bytes(),
        ],
    }
}

/// The exact trim an approximate one amounted to, as Redis's
/// `streamRewriteTrimArgument`: `MAXLEN = <length now>` or `MINID =
/// <first ID now>` (an emptied stream: `MAXLEN = 0`).
fn exact_trim(s: &Stream, how: Trim) -> [Bytes; 3] {
    match how {
        Trim::MinId(_) if !s.is_empty() => trim_args(Trim::MinId(s.first_id)),
        _ => trim_args(Trim::MaxLen(s.len())),
    }
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count].
pub fn xtrim(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some((t, _)) = parse_add_trim(c, args, false) else {
        return;
    };
    let key = &args[1];
    match read_stream(c, db, key) {
        Err(()) => return,
        Ok(None) => return c.reply(Frame::Integer(0)),
        Ok(Some(_)) => {}
    }
    let Some(how) = t.how else {
        return c.reply(Frame::Integer(0));
    };
    let log = t.approx && db.propagating;
    let (n, exact) = with_stream(db, key, |s| {
        let n = s.trim(how, t.approx, t.limit);
        (n, log.then(|| exact_trim(s, how)))
    });
    if n > 0 {
        db.notify(notify::STREAM, "xtrim", key);
        db.modified(key);
        if let Some(exact) = exact {
            // Where `~` (and LIMIT) stopped depends on node boundaries:
            // logged as the exact trim that gives the same stream.
            let mut cmd = vec![args[0].clone(), own(key)];
            cmd.extend(exact);
            db.propagate(cmd);
        }
    }
    c.reply(Frame::Integer(n as i64));
}

/// XLEN key.
pub fn xlen(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if let Ok(s) = read_stream(c, db, &args[1]) {
        let n = s.map_or(0, |s| s.len());
        c.reply(Frame::Integer(n as i64));
    }
}

fn range_generic(c: &mut Client, db: &mut Db, args: &[Bytes], rev: bool) {
    let (sa, ea) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let Some(start) = interval_id(c, sa, 0, true) else {
        return;
    };
    let Some(end) = interval_id(c, ea, u64::MAX, false) else {
        return;
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            let Some(n) = int_arg(c, &args[j + 1], None) else {
                return;
            };
            count = n.max(0);
            j += 2;
        } else {
            return c.error(ERR_SYNTAX);
        }
    }
    let s = match read_stream(c, db, &args[1]) {
        Err(()) => return,
        Ok(None) => return c.reply(Frame::Array(vec![])),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return c.reply(Frame::NullArray);
    }
    let count = if count < 0 { 0 } else { count as usize };
    // Encoded straight from the stream (the same bytes in RESP2 and RESP3:
    // entries are arrays in both), then queued behind their count.
    let mut body = bytes::BytesMut::new();
    let mut n = 0;
    s.visit_range(start, end, count, rev, |id, fields| {
        n += 1;
        put_entry(&mut body, id, fields);
    });
    c.reply_array_header(n);
    c.reply_raw(&body);
}

/// Encodes one entry as a reply item: `[id, [field, value, ...]]`.
fn put_entry(out: &mut bytes::BytesMut, id: StreamId, fields: Fields<'_>) {
    use crate::protocol::frame::{put_bulk, put_int_line};
    out.extend_from_slice(b"*2\r\n");
    let mut text = [0u8; 41];
    put_bulk(out, id.write_text(&mut text));
    put_int_line(out, b'*', (fields.remaining() * 2) as i64);
    for (f, v) in fields {
        put_bulk(out, f);
        put_bulk(out, v);
    }
}

/// XRANGE key start end [COUNT count].
pub fn xrange(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    range_generic(c, db, args, false)
}

/// XREVRANGE key end start [COUNT count].
pub fn xrevrange(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    range_generic(c, db, args, true)
}

/// XDEL key id [id ...].
pub fn xdel(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    match read_stream(c, db, key) {
        Err(()) => return,
        Ok(None) => return c.reply(Frame::Integer(0)),
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        let Some(id) = strict_id(c, a) else {
            return;
        };
        ids.push(id);
    }
    let n = with_stream(db, key, |s| ids.iter().filter(|id| s.delete(**id)).count());
    if n > 0 {
        db.modified(key);
        db.notify(notify::STREAM, "xdel", key);
    }
    c.reply(Frame::Integer(n as i64));
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id].
pub fn xsetid(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(id) = strict_id(c, &args[2]) else {
        return;
    };
    let mut added: Option<u64> = None;
    let mut maxdel = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args[i].eq_ignore_ascii_case(b"entriesadded") && more > 0 {
            let Some(n) = int_arg(c, &args[i + 1], None) else {
                return;
            };
            if n < 0 {
                return c.error("ERR entries_added must be positive");
            }
            added = Some(n as u64);
        } else if args[i].eq_ignore_ascii_case(b"maxdeletedid") && more > 0 {
            let Some(m) = strict_id(c, &args[i + 1]) else {
                return;
            };
            if id < m {
                return c.error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
            maxdel = m;
        } else {
            return c.error(ERR_SYNTAX);
        }
        i += 2;
    }
    let key = &args[1];
    let s = match read_stream(c, db, key) {
        Err(()) => return,
        Ok(None) => return c.error("ERR no such key"),
        Ok(Some(s)) => s,
    };
    if !s.is_empty() {
        if id < s.last_valid_id() {
            return c.error(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            );
        }
        if added.is_some_and(|a| s.len() > a) {
            return c.error("ERR The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    // 7.0.15 does not compare with the current max deleted ID.
    with_stream(db, key, |s| {
        s.last_id = id;
        if let Some(a) = added {
            s.entries_added = a;
        }
        if !maxdel.is_zero() {
            s.max_deleted_id = maxdel;
        }
    });
    c.reply(Frame::ok());
    db.modified(key);
    db.notify(notify::STREAM, "xsetid", key);
}

// ---------------------------------------------------------------------------
// XREAD / XREADGROUP

/// Parses a BLOCK argument (milliseconds; 0 = forever).
fn parse_block(c: &mut Client, arg: &[u8]) -> Option<Option<tokio::time::Instant>> {
    let Some(ms) = parse_i64(arg) else {
        c.error("ERR timeout is not an integer or out of range");
        return None;
    };
    if ms < 0 {
        c.error("ERR timeout is negative");
        return None;
    }
    if ms > 0 && ms > i64::MAX - crate::store::now_ms() as i64 {
        c.error("ERR timeout is out of range");
        return None;
    }
    if ms == 0 || ms > 1_000_000_000_000 {
        return Some(None);
    }
    Some(Some(
        tokio::time::Instant::now() + std::time::Duration::from_millis(ms as u64),
    ))
}

/// Reads for a group with `>`: the entries after the group's last ID, at
/// most `count` (0 = all), delivered to `consumer` (created if missing,
/// with its event) and added to the PELs unless `noack`.
fn read_group_new(
    db: &mut Db,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    count: usize,
    noack: bool,
) -> Vec<Entry> {
    let now = db.now;
    let (entries, created) = with_stream(db, key, |s| {
        let Some(g) = s.groups.get_mut(group) else {
            return (Vec::new(), false);
        };
        let created = g.ensure_consumer(consumer, now, true);
        let start = g.last_id.incr();
        let entries = match start {
            Some(start) => s.range(start, StreamId::MAX, count, false),
            None => Vec::new(),
        };
        for (id, _) in &entries {
            s.advance_group(group, *id);
            if !noack {
                if let Some(g) = s.groups.get_mut(group) {
                    g.deliver(*id, consumer, now);
                }
            }
        }
        (entries, created)
    });
    if created {
        db.notify(notify::STREAM, "xgroup-createconsumer", key);
        if entries.is_empty() || noack {
            // No XCLAIM below creates it on replay.
            propagate_create_consumer(db, key, group, consumer);
        }
    }
    if !entries.is_empty() {
        propagate_group_read(db, key, group, consumer, &entries, noack);
    }
    entries
}

/// Logs `XGROUP CREATECONSUMER` for a consumer a read created without
/// giving it entries (its later XCLAIMs would create it otherwise).
fn propagate_create_consumer(db: &mut Db, key: &[u8], group: &[u8], consumer: &[u8]) {
    db.dirty += 1;
    if !db.propagating {
        return;
    }
    db.propagate(vec![
        Bytes::from_static(b"XGROUP"),
        Bytes::from_static(b"CREATECONSUMER"),
        own(key),
        own(group),
        own(consumer),
    ]);
}

/// Redis's `streamPropagateXCLAIM`: pending entry `id` of `group` as it
/// is now (or was just before being dropped because its entry is gone),
/// as an XCLAIM that sets owner, delivery time and count absolutely, so
/// that replaying it gives the same PEL whenever it runs.
fn xclaim_effect(
    key: &[u8],
    group: &[u8],
    id: StreamId,
    p: &crate::store::stream::PendingEntry,
    last_id: StreamId,
) -> Vec<Bytes> {
    let b = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        b("XCLAIM"),
        own(key),
        own(group),
        p.consumer.clone(),
        b("0"),
        id.to_bytes(),
        b("TIME"),
        Bytes::from(p.delivery_time.to_string()),
        b("RETRYCOUNT"),
        Bytes::from(p.delivery_count.to_string()),
        b("FORCE"),
        b("JUSTID"),
        b("LASTID"),
        last_id.to_bytes(),
    ]
}

/// Redis's `streamPropagateGroupID`: the group's position, absolutely.
fn setid_effect(key: &[u8], group: &[u8], g: &Group) -> Vec<Bytes> {
    let read = g.entries_read.map_or(-1, |n| n as i64);
    vec![
        Bytes::from_static(b"XGROUP"),
        Bytes::from_static(b"SETID"),
        own(key),
        own(group),
        g.last_id.to_bytes(),
        Bytes::from_static(b"ENTRIESREAD"),
        Bytes::from(read.to_string()),
    ]
}

/// Logs a group read for the append-only file as Redis does: one
/// `XCLAIM ... FORCE JUSTID` per delivered entry (unless NOACK), then the
/// group's new position with `XGROUP SETID ... ENTRIESREAD`.
fn propagate_group_read(
    db: &mut Db,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    entries: &[Entry],
    noack: bool,
) {
    db.dirty += 1;
    if !db.propagating {
        return;
    }
    let pos = match db.get(key) {
        Some(Value::Stream(s)) => s
            .groups
            .get(group)
            .map(|g| (g.last_id, g.entries_read.map_or(-1, |n| n as i64))),
        _ => None,
    };
    let Some((last, read)) = pos else {
        return;
    };
    let b = |s: &'static str| Bytes::from_static(s.as_bytes());
    if !noack {
        for (id, _) in entries {
            db.propagate(vec![
                b("XCLAIM"),
                own(key),
                own(group),
                own(consumer),
                b("0"),
                id.to_bytes(),
                b("TIME"),
                Bytes::from(db.now.to_string()),
                b("RETRYCOUNT"),
                b("1"),
                b("FORCE"),
                b("JUSTID"),
                b("LASTID"),
                id.to_bytes(),
            ]);
        }
    }
    db.propagate(vec![
        b("XGROUP"),
        b("SETID"),
        own(key),
        own(group),
        last.to_bytes(),
        b("ENTRIESREAD"),
        Bytes::from(read.to_string()),
    ]);
}

/// Reads a consumer's own pending history from `start` (XREADGROUP with
/// an ID): deleted entries come back as `[id, nil]`.
fn read_group_history(
    db: &mut Db,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    start: StreamId,
    count: usize,
) -> Frame {
    let now = db.now;
    // Effects are built only while the AOF is on (no cost otherwise).
    let log = db.propagating;
    let (frames, created, effects) = with_stream(db, key, |s| {
        let Some(g) = s.groups.get_mut(group) else {
            return (Vec::new(), false, Vec::new());
        };
        let created = g.ensure_consumer(consumer, now, true);
        let ids: Vec<StreamId> = g
            .consumers
            .get(consumer)
            .map(|c| {
                c.pel
                    .range(start..)
                    .take(if count == 0 { usize::MAX } else { count })
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let mut frames = Vec::with_capacity(ids.len());
        let mut effects = Vec::new();
        for id in ids {
            match s.get(id) {
                Some(fields) => {
                    frames.push(entry_frame((id, fields)));
                    if let Some(g) = s.groups.get_mut(group) {
                        g.redeliver(id, now);
                        if let Some(p) = g.pel.get(&id).filter(|_| log) {
                            effects.push(xclaim_effect(key, group, id, p, g.last_id));
                        }
                    }
                }
                None => frames.push(Frame::Array(vec![id_frame(id), Frame::NullArray])),
            }
        }
        (frames, created, effects)
    });
    if created {
        db.notify(notify::STREAM, "xgroup-createconsumer", key);
        propagate_create_consumer(db, key, group, consumer);
    }
    // Redis 7.0 does not propagate history reads, so its replicas and AOF
    // lose the new delivery counts and times; herald logs them.
    if !effects.is_empty() {
        db.dirty += 1;
        for e in effects {
            db.propagate(e);
        }
    }
    Frame::Array(frames)
}

fn xread_generic(c: &mut Client, db: &mut Db, args: &[Bytes], group_cmd: bool) {
    let mut block: Option<Option<tokio::time::Instant>> = None;
    let mut count: usize = 0;
    let mut streams_at = 0;
    let mut nstreams = 0;
    let mut group: Option<(Bytes, Bytes)> = None;
    let mut noack = false;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let o = &args[i][..];
        if o.eq_ignore_ascii_case(b"block") && more > 0 {
            if c.in_script {
                // Redis refuses before parsing the timeout, naming the
                // command as the script spelled it.
                let name = String::from_utf8_lossy(&args[0]).into_owned();
                return c.error(format!(
                    "ERR {name} command is not allowed with BLOCK option from scripts"
                ));
            }
            i += 1;
            let Some(b) = parse_block(c, &args[i]) else {
                return;
            };
            block = Some(b);
        } else if o.eq_ignore_ascii_case(b"count") && more > 0 {
            i += 1;
            let Some(n) = int_arg(c, &args[i], None) else {
                return;
            };
            count = n.max(0) as usize;
        } else if o.eq_ignore_ascii_case(b"streams") && more > 0 {
            streams_at = i + 1;
            let n = args.len() - streams_at;
            if !n.is_multiple_of(2) {
                // 7.0 prints this text for XREADGROUP too.
                return c.error("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.");
            }
            nstreams = n / 2;
            break;
        } else if o.eq_ignore_ascii_case(b"group") && more >= 2 {
            if !group_cmd {
                return c.error("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
            }
            group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if o.eq_ignore_ascii_case(b"noack") {
            if !group_cmd {
                return c.error("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
            }
            noack = true;
        } else {
            return c.error(ERR_SYNTAX);
        }
        i += 1;
    }
    if streams_at == 0 {
        return c.error(ERR_SYNTAX);
    }
    if group_cmd && group.is_none() {
        return c.error("ERR Missing GROUP option for XREADGROUP");
    }
    let keys = &args[streams_at..streams_at + nstreams];
    // None = `>`.
    let mut ids: Vec<Option<StreamId>> = Vec::with_capacity(nstreams);
    for (k, key) in keys.iter().enumerate() {
        let arg = &args[streams_at + nstreams + k];
        let s = match read_stream(c, db, key) {
            Err(()) => return,
            Ok(s) => s,
        };
        if let Some((g, _)) = &group {
            if !s.is_some_and(|s| s.groups.contains_key(&g[..])) {
                return c.error(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    cs(key),
                    cs(g)
                ));
            }
        }
        if &arg[..] == b"$" {
            if group_cmd {
                return c.error("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
            }
            ids.push(Some(s.map_or(StreamId::MIN, |s| s.last_id)));
            continue;
        }
        if &arg[..] == b">" {
            if !group_cmd {
                return c.error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
            }
            ids.push(None);
            continue;
        }
        let Some(id) = strict_id(c, arg) else {
            return;
        };
        ids.push(Some(id));
    }
    // Serve synchronously what can be.
    let mut out: Vec<(Bytes, Frame)> = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let Ok(Some(s)) = read_stream(c, db, key) else {
            continue;
        };
        match (&group, ids[k]) {
            (Some((g, consumer)), Some(id)) => {
                // History: always served, even if empty.
                let start = id.incr().unwrap_or(StreamId::MAX);
                let f = read_group_history(db, key, g, consumer, start, count);
                out.push((key.clone(), f));
            }
            (Some((g, consumer)), None) => {
                let last = s.groups.get(&g[..]).map_or(StreamId::MAX, |g| g.last_id);
                if s.is_empty() || s.last_valid_id() <= last {
                    continue;
                }
                let e = read_group_new(db, key, g, consumer, count, noack);
                out.push((key.clone(), entries_frame(e)));
            }
            (None, id) => {
                let gt = id.unwrap_or(StreamId::MAX);
                if s.is_empty() || s.last_valid_id() <= gt {
                    continue;
                }
                let start = gt.incr().unwrap_or(StreamId::MAX);
                let e = s.range(start, StreamId::MAX, count, false);
                out.push((key.clone(), entries_frame(e)));
            }
        }
    }
    if !out.is_empty() {
        return c.reply(xread_reply(c.protocol, out));
    }
    let Some(deadline) = block else {
        return c.reply(Frame::NullArray);
    };
    let count = if count == 0 {
        BLOCKED_DEFAULT_COUNT
    } else {
        count
    };
    let op = match group {
        Some((g, consumer)) => BlockOp::XReadGroup {
            group: own(&g),
            consumer: own(&consumer),
            noack,
            count,
        },
        None => BlockOp::XRead {
            ids: keys
                .iter()
                .zip(&ids)
                .map(|(k, id)| (own(k), id.unwrap_or(StreamId::MAX)))
                .collect(),
            count,
        },
    };
    super::blocking::block(c, db, keys.to_vec(), op, deadline, Frame::NullArray);
}

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...].
pub fn xread(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    xread_generic(c, db, args, false)
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...].
pub fn xreadgroup(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    xread_generic(c, db, args, true)
}

/// Serves a blocked XREAD / XREADGROUP waiter on `key` after a write, as
/// Redis's `serveClientsBlockedOnStreamKey`: None to keep it waiting.
pub fn serve_waiter(db: &mut Db, key: &Bytes, op: &BlockOp, proto: Protocol) -> Option<Frame> {
    match op {
        BlockOp::XRead { ids, count } => {
            let gt = ids.iter().find(|(k, _)| k == key)?.1;
            let Some(Value::Stream(s)) = db.get(key) else {
                return None;
            };
            if s.last_id <= gt {
                return None;
            }
            let start = gt.incr()?;
            let e = s.range(start, StreamId::MAX, *count, false);
            if e.is_empty() {
                return None;
            }
            Some(xread_reply(proto, vec![(key.clone(), entries_frame(e))]))
        }
        BlockOp::XReadGroup {
            group,
            consumer,
            noack,
            count,
        } => {
            let s = match db.get(key) {
                Some(Value::Stream(s)) => s,
                _ => return Some(Frame::error("UNBLOCKED the stream key no longer exists")),
            };
            let Some(g) = s.groups.get(&group[..]) else {
                return Some(Frame::error(
                    "NOGROUP the consumer group this client was blocked on no longer exists",
                ));
            };
            if s.last_id <= g.last_id || s.last_valid_id() <= g.last_id {
                return None;
            }
            let e = read_group_new(db, key, group, consumer, *count, *noack);
            Some(xread_reply(proto, vec![(key.clone(), entries_frame(e))]))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// XGROUP

fn nogroup_for_key(g: &[u8], key: &[u8]) -> String {
    format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        cs(g),
        cs(key)
    )
}

fn subcommand_syntax(c: &mut Client, sub: &[u8], cmd: &str) {
    c.error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        crate::util::sanitize(crate::util::c_str_max(sub, 128))
    ));
}

/// The checks every XGROUP subcommand but HELP makes first (Redis's
/// `xgroupCommand` preamble): Some(group exists) or None after replying.
fn xgroup_preamble(
    c: &mut Client,
    db: &mut Db,
    args: &[Bytes],
    needs_group: bool,
    mkstream: bool,
) -> Option<bool> {
    let s = read_stream(c, db, &args[2]).ok()?;
    let Some(s) = s else {
        if !mkstream {
            c.error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
            return None;
        }
        return Some(false);
    };
    let exists = s.groups.contains_key(&args[3][..]);
    if !exists && needs_group {
        c.error(nogroup_for_key(&args[3], &args[2]));
        return None;
    }
    Some(exists)
}

/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read].
pub fn xgroup_create(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let mut mkstream = false;
    let mut entries_read: Option<u64> = None;
    let mut i = 5;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"mkstream") {
            mkstream = true;
            i += 1;
        } else if args[i].eq_ignore_ascii_case(b"entriesread") && i + 1 < args.len() {
            let Some(n) = int_arg(c, &args[i + 1], None) else {
                return;
            };
            if n < -1 {
                return c.error("ERR value for ENTRIESREAD must be positive or -1");
            }
            entries_read = (n >= 0).then_some(n as u64);
            i += 2;
        } else {
            return subcommand_syntax(c, &args[1], "XGROUP");
        }
    }
    let Some(exists) = xgroup_preamble(c, db, args, false, mkstream) else {
        return;
    };
    if args.len() > 8 {
        return subcommand_syntax(c, &args[1], "XGROUP");
    }
    let key = &args[2];
    let id = if &args[4][..] == b"$" {
        match db.get(key) {
            Some(Value::Stream(s)) => s.last_id,
            _ => StreamId::MIN,
        }
    } else {
        let Some(id) = strict_id(c, &args[4]) else {
            return;
        };
        id
    };
    if !db.exists(key) {
        db.set(key, Value::Stream(Box::default()), false);
        db.modified(key);
    }
    if exists {
        return c.error("BUSYGROUP Consumer Group name already exists");
    }
    let name = own(&args[3]);
    with_stream(db, key, |s| {
        s.groups
            .insert(name.clone(), Group::new(&name, id, entries_read));
    });
    c.reply(Frame::ok());
    db.dirty += 1;
    db.notify(notify::STREAM, "xgroup-create", key);
}

/// XGROUP SETID key group id|$ [ENTRIESREAD entries-read].
pub fn xgroup_setid(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if xgroup_preamble(c, db, args, true, false).is_none() {
        return;
    }
    if args.len() != 5 && args.len() != 7 {
        return subcommand_syntax(c, &args[1], "XGROUP");
    }
    let key = &args[2];
    let id = if &args[4][..] == b"$" {
        match db.get(key) {
            Some(Value::Stream(s)) => s.last_id,
            _ => StreamId::MIN,
        }
    } else {
        match parse_id_full(&args[4], 0, false, false) {
            Some((id, _)) => id,
            None => return c.error(ERR_INVALID_ID),
        }
    };
    let mut entries_read = None;
    if args.len() == 7 {
        if !args[5].eq_ignore_ascii_case(b"entriesread") {
            return subcommand_syntax(c, &args[1], "XGROUP");
        }
        let Some(n) = int_arg(c, &args[6], None) else {
            return;
        };
        if n < -1 {
            return c.error("ERR value for ENTRIESREAD must be positive or -1");
        }
        entries_read = (n >= 0).then_some(n as u64);
    }
    let g = &args[3];
    with_stream(db, key, |s| {
        if let Some(g) = s.groups.get_mut(&g[..]) {
            g.last_id = id;
            g.entries_read = entries_read;
        }
    });
    c.reply(Frame::ok());
    db.dirty += 1;
    db.notify(notify::STREAM, "xgroup-setid", key);
}

/// XGROUP DESTROY key group.
pub fn xgroup_destroy(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(exists) = xgroup_preamble(c, db, args, false, false) else {
        return;
    };
    if !exists {
        return c.reply(Frame::Integer(0));
    }
    let key = &args[2];
    with_stream(db, key, |s| s.groups.remove(&args[3][..]).is_some());
    c.reply(Frame::Integer(1));
    db.dirty += 1;
    db.notify(notify::STREAM, "xgroup-destroy", key);
    // Blocked XREADGROUP clients of this group get NOGROUP.
    let dirty = db.dirty;
    db.modified(key);
    db.dirty = dirty;
}

/// XGROUP CREATECONSUMER key group consumer.
pub fn xgroup_createconsumer(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if xgroup_preamble(c, db, args, true, false).is_none() {
        return;
    }
    let key = &args[2];
    let now = db.now;
    let created = with_stream(db, key, |s| {
        s.groups
            .get_mut(&args[3][..])
            .is_some_and(|g| g.ensure_consumer(&args[4], now, false))
    });
    if created {
        db.dirty += 1;
        db.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    c.reply(Frame::Integer(i64::from(created)));
}

/// XGROUP DELCONSUMER key group consumer.
pub fn xgroup_delconsumer(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if xgroup_preamble(c, db, args, true, false).is_none() {
        return;
    }
    let key = &args[2];
    let removed = with_stream(db, key, |s| {
        s.groups
            .get_mut(&args[3][..])
            .and_then(|g| g.delete_consumer(&args[4]))
    });
    if removed.is_some() {
        db.dirty += 1;
        db.notify(notify::STREAM, "xgroup-delconsumer", key);
    }
    c.reply(Frame::Integer(removed.unwrap_or(0) as i64));
}

/// XGROUP HELP.
pub fn xgroup_help(c: &mut Client, _args: &[Bytes]) {
    super::reply_help(
        c,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
}

/// The XGROUP subcommands.
pub static XGROUP_SUBCOMMANDS: &[super::Spec] = &[
    super::dcmd("create", -5, xgroup_create),
    super::dcmd("createconsumer", 5, xgroup_createconsumer),
    super::dcmd("delconsumer", 5, xgroup_delconsumer),
    super::dcmd("destroy", 4, xgroup_destroy),
    super::cmd("help", 2, xgroup_help),
    super::dcmd("setid", -5, xgroup_setid),
];

// ---------------------------------------------------------------------------
// XACK / XPENDING / XCLAIM / XAUTOCLAIM

/// The stream and group for a command that requires both: Err after
/// replying (WRONGTYPE, or `nogroup` if given, else 0).
fn group_of<'a>(
    c: &mut Client,
    db: &'a mut Db,
    key: &[u8],
    g: &[u8],
) -> Result<Option<&'a Stream>, ()> {
    let s = read_stream(c, db, key)?;
    Ok(s.filter(|s| s.groups.contains_key(g)))
}

/// XACK key group id [id ...].
pub fn xack(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    match group_of(c, db, key, &args[2]) {
        Err(()) => return,
        Ok(None) => return c.reply(Frame::Integer(0)),
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in &args[3..] {
        let Some(id) = strict_id(c, a) else {
            return;
        };
        ids.push(id);
    }
    let n = with_stream(db, key, |s| {
        s.groups
            .get_mut(&args[2][..])
            .map_or(0, |g| ids.iter().filter(|id| g.ack(**id)).count())
    });
    db.dirty += n as u64;
    c.reply(Frame::Integer(n as i64));
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]].
pub fn xpending(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return c.error(ERR_SYNTAX);
    }
    let mut range = None;
    let mut minidle: i64 = 0;
    if argc >= 6 {
        let mut si = 3;
        if args[3].eq_ignore_ascii_case(b"idle") {
            let Some(n) = int_arg(c, &args[4], None) else {
                return;
            };
            minidle = n;
            if argc < 8 {
                return c.error(ERR_SYNTAX);
            }
            si += 2;
        }
        let Some(count) = int_arg(c, &args[si + 2], None) else {
            return;
        };
        let Some(start) = interval_id(c, &args[si], 0, true) else {
            return;
        };
        let Some(end) = interval_id(c, &args[si + 1], u64::MAX, false) else {
            return;
        };
        let consumer = args.get(si + 3).cloned();
        range = Some((start, end, count.max(0) as usize, consumer));
    }
    let key = &args[1];
    let now = db.now;
    let s = match group_of(c, db, key, &args[2]) {
        Err(()) => return,
        Ok(None) => {
            return c.error(format!(
                "NOGROUP No such key '{}' or consumer group '{}'",
                cs(key),
                cs(&args[2])
            ))
        }
        Ok(Some(s)) => s,
    };
    let Some(g) = s.groups.get(&args[2][..]) else {
        return;
    };
    let Some((start, end, mut count, consumer)) = range else {
        if g.pel.is_empty() {
            return c.reply(Frame::Array(vec![
                Frame::Integer(0),
                Frame::Null,
                Frame::Null,
                Frame::NullArray,
            ]));
        }
        let first = g.pel.keys().next().copied().unwrap_or_default();
        let last = g.pel.keys().next_back().copied().unwrap_or_default();
        let per: Vec<Frame> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| {
                Frame::Array(vec![
                    Frame::Bulk(n.clone()),
                    Frame::Bulk(Bytes::from(c.pel.len().to_string())),
                ])
            })
            .collect();
        return c.reply(Frame::Array(vec![
            Frame::Integer(g.pel.len() as i64),
            id_frame(first),
            id_frame(last),
            Frame::Array(per),
        ]));
    };
    let mut out = Vec::new();
    if start <= end {
        let ids: Box<dyn Iterator<Item = StreamId>> = match &consumer {
            Some(name) => match g.consumers.get(&name[..]) {
                Some(cons) => Box::new(cons.pel.range(start..=end).copied()),
                None => return c.reply(Frame::Array(vec![])),
            },
            None => Box::new(g.pel.range(start..=end).map(|(k, _)| *k)),
        };
        for id in ids {
            if count == 0 {
                break;
            }
            let Some(p) = g.pel.get(&id) else {
                continue;
            };
            let idle = now as i64 - p.delivery_time as i64;
            if minidle != 0 && idle < minidle {
                continue;
            }
            count -= 1;
            out.push(Frame::Array(vec![
                id_frame(id),
                Frame::Bulk(p.consumer.clone()),
                Frame::Integer(idle.max(0)),
                Frame::Integer(p.delivery_count as i64),
            ]));
        }
    } else if let Some(name) = &consumer {
        if !g.consumers.contains_key(&name[..]) {
            return c.reply(Frame::Array(vec![]));
        }
    }
    c.reply(Frame::Array(out));
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid].
pub fn xclaim(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    let gname = &args[2];
    match group_of(c, db, key, gname) {
        Err(()) => return,
        Ok(None) => {
            return c.error(format!(
                "NOGROUP No such key '{}' or consumer group '{}'",
                cs(key),
                cs(gname)
            ))
        }
        Ok(Some(_)) => {}
    }
    let Some(minidle) = int_arg(
        c,
        &args[4],
        Some("Invalid min-idle-time argument for XCLAIM"),
    ) else {
        return;
    };
    let minidle = minidle.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_id_full(&args[j], 0, true, false) {
            Some((id, _)) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let now = db.now as i64;
    let mut force = false;
    let mut justid = false;
    let mut retry: i64 = -1;
    let mut time: i64 = -1;
    let mut lastid = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let o = &args[j][..];
        if o.eq_ignore_ascii_case(b"force") {
            force = true;
        } else if o.eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else if o.eq_ignore_ascii_case(b"idle") && more > 0 {
            j += 1;
            let Some(n) = int_arg(c, &args[j], Some("Invalid IDLE option argument for XCLAIM"))
            else {
                return;
            };
            time = now.wrapping_sub(n);
        } else if o.eq_ignore_ascii_case(b"time") && more > 0 {
            j += 1;
            let Some(n) = int_arg(c, &args[j], Some("Invalid TIME option argument for XCLAIM"))
            else {
                return;
            };
            time = n;
        } else if o.eq_ignore_ascii_case(b"retrycount") && more > 0 {
            j += 1;
            let Some(n) = int_arg(
                c,
                &args[j],
                Some("Invalid RETRYCOUNT option argument for XCLAIM"),
            ) else {
                return;
            };
            retry = n;
        } else if o.eq_ignore_ascii_case(b"lastid") && more > 0 {
            j += 1;
            let Some(id) = strict_id(c, &args[j]) else {
                return;
            };
            lastid = id;
        } else {
            return c.error(format!("ERR Unrecognized XCLAIM option '{}'", cs(o)));
        }
        j += 1;
    }
    let delivery = if time < 0 || time > now { now } else { time } as u64;
    let consumer = &args[3];
    let nowu = now as u64;
    let log = db.propagating;
    let (frames, created, effects) = with_stream(db, key, |s| {
        let mut frames = Vec::new();
        let mut created = false;
        let mut effects = Vec::new();
        let mut moved = false;
        if let Some(g) = s.groups.get_mut(&gname[..]) {
            if lastid > g.last_id {
                g.last_id = lastid;
                moved = true;
            }
        }
        for id in ids {
            let exists = s.contains(id);
            let Some(g) = s.groups.get_mut(&gname[..]) else {
                break;
            };
            if !exists {
                if let Some(p) = g.pel.get(&id).filter(|_| log) {
                    effects.push(xclaim_effect(key, gname, id, p, g.last_id));
                }
                g.ack(id);
                continue;
            }
            let pending = g.pel.get(&id);
            if pending.is_none() && !force {
                continue;
            }
            if let Some(p) = pending {
                if minidle > 0 && (nowu as i64 - p.delivery_time as i64) < minidle {
                    continue;
                }
            }
            created |= g.ensure_consumer(consumer, nowu, true);
            let r = (retry >= 0).then_some(retry as u64);
            g.claim(id, consumer, delivery, r, !justid, true);
            if let Some(p) = g.pel.get(&id).filter(|_| log) {
                effects.push(xclaim_effect(key, gname, id, p, g.last_id));
            }
            if justid {
                frames.push(id_frame(id));
            } else {
                match s.get(id) {
                    Some(f) => frames.push(entry_frame((id, f))),
                    None => frames.push(Frame::Null),
                }
            }
        }
        if log && moved && effects.is_empty() {
            if let Some(g) = s.groups.get(&gname[..]) {
                effects.push(setid_effect(key, gname, g));
            }
        }
        (frames, created, effects)
    });
    if created {
        db.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    // Logged as the effects (absolute times and counts), never as given.
    db.dirty += 1;
    db.prop_rewritten = true;
    for e in effects {
        db.propagate(e);
    }
    c.reply(Frame::Array(frames));
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID].
pub fn xautoclaim(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(minidle) = int_arg(
        c,
        &args[4],
        Some("Invalid min-idle-time argument for XAUTOCLAIM"),
    ) else {
        return;
    };
    let minidle = minidle.max(0);
    let Some(start) = interval_id(c, &args[5], 0, true) else {
        return;
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args[j].eq_ignore_ascii_case(b"count") && more > 0 {
            let max = i64::MAX / 16;
            match parse_i64(&args[j + 1]) {
                Some(n) if (1..=max).contains(&n) => count = n,
                _ => return c.error("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if args[j].eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return c.error(ERR_SYNTAX);
        }
        j += 1;
    }
    let key = &args[1];
    let gname = &args[2];
    match group_of(c, db, key, gname) {
        Err(()) => return,
        Ok(None) => {
            return c.error(format!(
                "NOGROUP No such key '{}' or consumer group '{}'",
                cs(key),
                cs(gname)
            ))
        }
        Ok(Some(_)) => {}
    }
    let now = db.now;
    let consumer = &args[3];
    let log = db.propagating;
    let (cursor, frames, deleted, created, effects) = with_stream(db, key, |s| {
        let mut effects = Vec::new();
        let mut attempts = count.saturating_mul(10);
        let mut count = count;
        let mut frames = Vec::new();
        let mut deleted = Vec::new();
        let mut created = false;
        let mut next = Some(start);
        let mut eof = false;
        loop {
            if attempts == 0 || count == 0 {
                break;
            }
            attempts -= 1;
            let Some(from) = next else {
                eof = true;
                break;
            };
            let Some(g) = s.groups.get(&gname[..]) else {
                break;
            };
            let Some((&id, p)) = g.pel.range(from..).next() else {
                eof = true;
                break;
            };
            let idle = now as i64 - p.delivery_time as i64;
            next = id.incr();
            if !s.contains(id) {
                if let Some(g) = s.groups.get_mut(&gname[..]) {
                    if let Some(p) = g.pel.get(&id).filter(|_| log) {
                        effects.push(xclaim_effect(key, gname, id, p, g.last_id));
                    }
                    g.ack(id);
                }
                deleted.push(id_frame(id));
                count -= 1;
                continue;
            }
            if minidle > 0 && idle < minidle {
                continue;
            }
            let Some(g) = s.groups.get_mut(&gname[..]) else {
                break;
            };
            created |= g.ensure_consumer(consumer, now, true);
            g.claim(id, consumer, now, None, !justid, false);
            if let Some(p) = g.pel.get(&id).filter(|_| log) {
                effects.push(xclaim_effect(key, gname, id, p, g.last_id));
            }
            if justid {
                frames.push(id_frame(id));
            } else if let Some(f) = s.get(id) {
                frames.push(entry_frame((id, f)));
            }
            count -= 1;
        }
        let cursor = if eof {
            StreamId::MIN
        } else {
            next.and_then(|n| {
                s.groups
                    .get(&gname[..])
                    .and_then(|g| g.pel.range(n..).next().map(|(k, _)| *k))
            })
            .unwrap_or(StreamId::MIN)
        };
        (cursor, frames, deleted, created, effects)
    });
    if created {
        db.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    // Logged as the effects (XCLAIM with absolute times), never as given.
    db.dirty += 1;
    db.prop_rewritten = true;
    for e in effects {
        db.propagate(e);
    }
    c.reply(Frame::Array(vec![
        id_frame(cursor),
        Frame::Array(frames),
        Frame::Array(deleted),
    ]));
}

// ---------------------------------------------------------------------------
// XINFO

fn bulk(s: &'static str) -> Frame {
    Frame::Bulk(Bytes::from_static(s.as_bytes()))
}

fn opt_int(v: Option<u64>) -> Frame {
    v.map_or(Frame::Null, |n| Frame::Integer(n as i64))
}

fn lag_frame(s: &Stream, g: &Group) -> Frame {
    s.group_lag(g).map_or(Frame::Null, Frame::Integer)
}

/// The stream for XINFO: Err after replying (no such key / WRONGTYPE).
fn info_stream<'a>(c: &mut Client, db: &'a mut Db, key: &[u8]) -> Option<&'a Stream> {
    match read_stream(c, db, key) {
        Err(()) => None,
        Ok(None) => {
            c.error("ERR no such key");
            None
        }
        Ok(Some(s)) => Some(s),
    }
}

/// XINFO CONSUMERS key group.
pub fn xinfo_consumers(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let now = db.now;
    let Some(s) = info_stream(c, db, &args[2]) else {
        return;
    };
    let Some(g) = s.groups.get(&args[3][..]) else {
        return c.error(nogroup_for_key(&args[3], &args[2]));
    };
    let out = g
        .consumers
        .iter()
        .map(|(n, cons)| {
            Frame::Map(vec![
                (bulk("name"), Frame::Bulk(n.clone())),
                (bulk("pending"), Frame::Integer(cons.pel.len() as i64)),
                (
                    bulk("idle"),
                    Frame::Integer((now as i64 - cons.seen_time as i64).max(0)),
                ),
            ])
        })
        .collect();
    c.reply(Frame::Array(out));
}

/// XINFO GROUPS key.
pub fn xinfo_groups(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(s) = info_stream(c, db, &args[2]) else {
        return;
    };
    let out = s
        .groups
        .iter()
        .map(|(n, g)| {
            Frame::Map(vec![
                (bulk("name"), Frame::Bulk(n.clone())),
                (bulk("consumers"), Frame::Integer(g.consumers.len() as i64)),
                (bulk("pending"), Frame::Integer(g.pel.len() as i64)),
                (bulk("last-delivered-id"), id_frame(g.last_id)),
                (bulk("entries-read"), opt_int(g.entries_read)),
                (bulk("lag"), lag_frame(s, g)),
            ])
        })
        .collect();
    c.reply(Frame::Array(out));
}

/// XINFO STREAM key [FULL [COUNT count]].
pub fn xinfo_stream(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let rest = &args[3..];
    let mut full = false;
    let mut count: i64 = 10;
    match rest.len() {
        0 => {}
        1 | 3 => {
            if !rest[0].eq_ignore_ascii_case(b"full") {
                return subcommand_syntax(c, &args[1], "XINFO");
            }
            full = true;
            if rest.len() == 3 {
                if !rest[1].eq_ignore_ascii_case(b"count") {
                    return subcommand_syntax(c, &args[1], "XINFO");
                }
                let Some(n) = int_arg(c, &rest[2], None) else {
                    return;
                };
                count = if n < 0 { 10 } else { n };
            }
        }
        _ => return subcommand_syntax(c, &args[1], "XINFO"),
    }
    let Some(s) = info_stream(c, db, &args[2]) else {
        return;
    };
    let mut m = vec![
        (bulk("length"), Frame::Integer(s.len() as i64)),
        (
            bulk("radix-tree-keys"),
            Frame::Integer(s.node_count() as i64),
        ),
        (
            bulk("radix-tree-nodes"),
            Frame::Integer(s.node_count() as i64 + 1),
        ),
        (bulk("last-generated-id"), id_frame(s.last_id)),
        (bulk("max-deleted-entry-id"), id_frame(s.max_deleted_id)),
        (
            bulk("entries-added"),
            Frame::Integer(s.entries_added as i64),
        ),
        (bulk("recorded-first-entry-id"), id_frame(s.first_id)),
    ];
    if !full {
        m.push((bulk("groups"), Frame::Integer(s.groups.len() as i64)));
        let first = s.range(StreamId::MIN, StreamId::MAX, 1, false).pop();
        let last = s.range(StreamId::MIN, StreamId::MAX, 1, true).pop();
        m.push((bulk("first-entry"), first.map_or(Frame::Null, entry_frame)));
        m.push((bulk("last-entry"), last.map_or(Frame::Null, entry_frame)));
        return c.reply(Frame::Map(m));
    }
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    m.push((
        bulk("entries"),
        entries_frame(s.range(
            StreamId::MIN,
            StreamId::MAX,
            if count == 0 { 0 } else { count as usize },
            false,
        )),
    ));
    let groups = s
        .groups
        .iter()
        .map(|(n, g)| {
            let pel = g
                .pel
                .iter()
                .take(limit)
                .map(|(id, p)| {
                    Frame::Array(vec![
                        id_frame(*id),
                        Frame::Bulk(p.consumer.clone()),
                        Frame::Integer(p.delivery_time as i64),
                        Frame::Integer(p.delivery_count as i64),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(cn, cons)| {
                    let cpel = cons
                        .pel
                        .iter()
                        .take(limit)
                        .map(|id| {
                            let p = g.pel.get(id);
                            Frame::Array(vec![
                                id_frame(*id),
                                Frame::Integer(p.map_or(0, |p| p.delivery_time as i64)),
                                Frame::Integer(p.map_or(0, |p| p.delivery_count as i64)),
                            ])
                        })
                        .collect();
                    Frame::Map(vec![
                        (bulk("name"), Frame::Bulk(cn.clone())),
                        (bulk("seen-time"), Frame::Integer(cons.seen_time as i64)),
                        (bulk("pel-count"), Frame::Integer(cons.pel.len() as i64)),
                        (bulk("pending"), Frame::Array(cpel)),
                    ])
                })
                .collect();
            Frame::Map(vec![
                (bulk("name"), Frame::Bulk(n.clone())),
                (bulk("last-delivered-id"), id_frame(g.last_id)),
                (bulk("entries-read"), opt_int(g.entries_read)),
                (bulk("lag"), lag_frame(s, g)),
                (bulk("pel-count"), Frame::Integer(g.pel.len() as i64)),
                (bulk("pending"), Frame::Array(pel)),
                (bulk("consumers"), Frame::Array(consumers)),
            ])
        })
        .collect();
    m.push((bulk("groups"), Frame::Array(groups)));
    c.reply(Frame::Map(m));
}

/// XINFO HELP.
pub fn xinfo_help(c: &mut Client, _args: &[Bytes]) {
    super::reply_help(
        c,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
}

/// The XINFO subcommands.
pub static XINFO_SUBCOMMANDS: &[super::Spec] = &[
    super::dcmd("consumers", 4, xinfo_consumers),
    super::dcmd("groups", 3, xinfo_groups),
    super::cmd("help", 2, xinfo_help),
    super::dcmd("stream", -3, xinfo_stream),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis() {
        assert_eq!(
            parse_id_full(b"1-2", 0, true, false),
            Some((StreamId::new(1, 2), true))
        );
        assert_eq!(
            parse_id_full(b"5", 7, true, false),
            Some((StreamId::new(5, 7), true))
        );
        assert_eq!(
            parse_id_full(b"5-*", 0, true, true),
            Some((StreamId::new(5, 0), false))
        );
        assert_eq!(parse_id_full(b"5-*", 0, true, false), None);
        assert_eq!(parse_id_full(b"-", 0, true, false), None);
        assert_eq!(
            parse_id_full(b"+", 0, false, false),
            Some((StreamId::MAX, true))
        );
        assert_eq!(parse_id_full(b"18446744073709551616", 0, true, false), None);
        assert_eq!(parse_id_full(b"-1", 0, true, false), None);
        assert_eq!(parse_id_full(b"a-1", 0, true, false), None);
        assert_eq!(parse_id_full(b"1-", 0, true, false), None);
        assert_eq!(
            parse_id_full(b"18446744073709551615-18446744073709551615", 0, true, false),
            Some((StreamId::MAX, true))
        );
    }
}
