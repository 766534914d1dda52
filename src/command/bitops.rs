//! Bitmap commands on strings, as Redis's `bitops.c`: SETBIT, GETBIT,
//! BITCOUNT, BITPOS (ranges in bytes or bits), BITOP (AND, OR, XOR, NOT),
//! BITFIELD and BITFIELD_RO (GET, SET, INCRBY, OVERFLOW WRAP|SAT|FAIL,
//! `u`/`i` types, `#` offsets).
//!
//! Bit offsets are refused past `proto-max-bulk-len` bytes, as Redis
//! refuses them, so a client cannot make a string grow beyond what it
//! could have sent. The arithmetic itself is in `util::bits`.

use bytes::Bytes;

use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::Frame;
use crate::store::{Db, Value, WRONGTYPE};
use crate::util::bits::{self, Overflow};

const ERR_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const ERR_BIT_VALUE: &str = "ERR bit is not an integer or out of range";
const ERR_BITFIELD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// Redis's `getBitOffsetFromArgument`: a bit offset, or with `hash_bits`
/// (BITFIELD) also `#N`, meaning N fields of that width. Replies the error
/// itself when the offset is not an integer, negative, or addresses a
/// byte at or past `proto-max-bulk-len`.
fn offset_arg(c: &mut Client, arg: &[u8], hash_bits: u32) -> Option<u64> {
    let hashed = hash_bits > 0 && arg.first() == Some(&b'#');
    let digits = if hashed { &arg[1..] } else { arg };
    let Some(mut off) = parse_i64(digits) else {
        c.error(ERR_OFFSET);
        return None;
    };
    if hashed {
        // C multiplies without an overflow check; a wrapped product is
        // then refused as negative or too large, as there.
        off = off.wrapping_mul(i64::from(hash_bits));
    }
    let max = c.shared.config.read().proto_max_bulk_len as u64;
    if off < 0 || (off as u64 >> 3) >= max {
        c.error(ERR_OFFSET);
        return None;
    }
    Some(off as u64)
}

/// The string at `key` for reading: Ok(None) if missing, Err after the
/// WRONGTYPE reply.
fn read(c: &mut Client, db: &mut Db, key: &[u8]) -> Result<Option<Bytes>, ()> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Str(b)) => Ok(Some(b.to_bytes())),
        Some(_) => {
            c.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Redis's `lookupStringForBitCommand`: the string at `key` taken out
/// of the keyspace for writing (its buffer reused when nobody else holds
/// it), zero-padded so that bit `maxbit` exists, with whether it was
/// created or grown. The caller puts it back with [`put_back`]. None
/// after an error reply (WRONGTYPE, or memory refused).
fn take_for_write(c: &mut Client, db: &mut Db, key: &[u8], maxbit: u64) -> Option<(Vec<u8>, bool)> {
    let Ok(need) = usize::try_from((maxbit >> 3) + 1) else {
        c.error(ERR_OFFSET);
        return None;
    };
    let taken = db.update(key, |v| match v {
        Value::Str(b) => Some(std::mem::take(b)),
        _ => None,
    });
    let (mut buf, existed) = match taken {
        Some(Some(b)) => (Vec::from(b), true),
        Some(None) => {
            c.error(WRONGTYPE);
            return None;
        }
        None => (Vec::new(), false),
    };
    let grown = buf.len() < need;
    if grown {
        if buf.try_reserve_exact(need - buf.len()).is_err() {
            if existed {
                db.set(key, Value::Str(buf.into()), true);
            }
            c.error("ERR Insufficient memory");
            return None;
        }
        buf.resize(need, 0);
    }
    Some((buf, grown || !existed))
}

/// Stores a string taken by [`take_for_write`] again (creating the key
/// if it was new, keeping its TTL otherwise).
fn put_back(db: &mut Db, key: &[u8], buf: Vec<u8>) {
    db.set(key, Value::Str(buf.into()), true);
}

/// SETBIT key offset value.
pub fn setbit(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(offset) = offset_arg(c, &args[2], 0) else {
        return;
    };
    let on = match parse_i64(&args[3]) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return c.error(ERR_BIT_VALUE),
    };
    let key = &args[1];
    let Some((mut buf, dirty)) = take_for_write(c, db, key, offset) else {
        return;
    };
    let old = bits::get_bit(&buf, offset);
    let changed = dirty || old != on;
    if changed {
        bits::set_unsigned(&mut buf, offset, 1, u64::from(on));
    }
    put_back(db, key, buf);
    if changed {
        db.modified(key);
        db.notify(notify::STRING, "setbit", key);
    }
    c.reply(Frame::Integer(i64::from(old)));
}

/// GETBIT key offset.
pub fn getbit(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some(offset) = offset_arg(c, &args[2], 0) else {
        return;
    };
    if let Ok(v) = read(c, db, &args[1]) {
        let on = v.is_some_and(|s| bits::get_bit(&s, offset));
        c.reply(Frame::Integer(i64::from(on)));
    }
}

/// A BYTE / BIT unit argument: Some(true) for BIT; None after the
/// syntax error reply.
fn unit_arg(c: &mut Client, arg: &[u8]) -> Option<bool> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Some(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Some(false)
    } else {
        c.error(ERR_SYNTAX);
        None
    }
}

/// A range resolved as Redis does: byte indexes `start..=end` (empty if
/// start > end) and, for a BIT range, the masks of the bits of the first
/// and last bytes that lie outside it.
struct Range {
    start: i64,
    end: i64,
    first_mask: u8,
    last_mask: u8,
}

/// Clamps `start..=end` (negative counting from the end) to a string of
/// `len` bytes, in bits if `isbit`; `totlen` is the length in the unit.
fn resolve(mut start: i64, mut end: i64, totlen: i64, isbit: bool) -> Range {
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if isbit && start <= end {
        first_mask = !((1u16 << (8 - (start & 7))) - 1) as u8;
        last_mask = ((1u16 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    Range {
        start,
        end,
        first_mask,
        last_mask,
    }
}

/// BITCOUNT key [start end [BYTE|BIT]].
pub fn bitcount(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    // Redis 7.0 looks the key up before it reads the range: a missing key
    // answers 0 whatever follows.
    let s = match read(c, db, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return c.reply(Frame::Integer(0)),
        Err(()) => return,
    };
    let strlen = s.len() as i64;
    let r = match args.len() {
        4 | 5 => {
            let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
                return c.error(ERR_NOT_INTEGER);
            };
            if start < 0 && end < 0 && start > end {
                return c.reply(Frame::Integer(0));
            }
            let isbit = match args.get(4) {
                Some(a) => match unit_arg(c, a) {
                    Some(b) => b,
                    None => return,
                },
                None => false,
            };
            let totlen = if isbit { strlen << 3 } else { strlen };
            resolve(start, end, totlen, isbit)
        }
        2 => Range {
            start: 0,
            end: strlen - 1,
            first_mask: 0,
            last_mask: 0,
        },
        _ => return c.error(ERR_SYNTAX),
    };
    if r.start > r.end {
        return c.reply(Frame::Integer(0));
    }
    let (a, b) = (r.start as usize, r.end as usize);
    let Some(bytes) = s.get(a..=b) else {
        return c.reply(Frame::Integer(0));
    };
    let mut count = bits::popcount(bytes) as i64;
    if r.first_mask != 0 {
        count -= i64::from((s[a] & r.first_mask).count_ones());
    }
    if r.last_mask != 0 {
        count -= i64::from((s[b] & r.last_mask).count_ones());
    }
    c.reply(Frame::Integer(count));
}

/// BITPOS key bit [start [end [BYTE|BIT]]].
pub fn bitpos(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let bit = match parse_i64(&args[2]) {
        Some(b @ (0 | 1)) => b == 1,
        Some(_) => return c.error("ERR The bit argument must be 1 or 0."),
        None => return c.error(ERR_NOT_INTEGER),
    };
    // A missing key is an endless run of zeros (looked at before the range).
    let s = match read(c, db, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return c.reply(Frame::Integer(if bit { -1 } else { 0 })),
        Err(()) => return,
    };
    let strlen = s.len() as i64;
    let mut end_given = false;
    let r = match args.len() {
        4..=6 => {
            let Some(start) = parse_i64(&args[3]) else {
                return c.error(ERR_NOT_INTEGER);
            };
            let isbit = match args.get(5) {
                Some(a) => match unit_arg(c, a) {
                    Some(b) => b,
                    None => return,
                },
                None => false,
            };
            let end = match args.get(4) {
                Some(a) => {
                    let Some(e) = parse_i64(a) else {
                        return c.error(ERR_NOT_INTEGER);
                    };
                    end_given = true;
                    e
                }
                None if isbit => (strlen << 3) + 7,
                None => strlen - 1,
            };
            let totlen = if isbit { strlen << 3 } else { strlen };
            resolve(start, end, totlen, isbit)
        }
        3 => Range {
            start: 0,
            end: strlen - 1,
            first_mask: 0,
            last_mask: 0,
        },
        _ => return c.error(ERR_SYNTAX),
    };
    if r.start > r.end {
        return c.reply(Frame::Integer(-1));
    }
    let byte_at = |i: i64| s.get(i as usize).copied().unwrap_or(0);
    let keep = |b: u8, mask: u8| if bit { b & !mask } else { b | mask };
    let (mut start, end) = (r.start, r.end);
    let mut bytes = end - start + 1;
    let pos = 'found: {
        if r.first_mask != 0 {
            let mut tmp = keep(byte_at(start), r.first_mask);
            if r.last_mask != 0 && bytes == 1 {
                tmp = keep(tmp, r.last_mask);
            }
            let pos = bits::first_bit(&[tmp], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let curbytes = bytes - i64::from(r.last_mask != 0);
        if curbytes > 0 {
            let slice = s
                .get(start as usize..(start + curbytes) as usize)
                .unwrap_or_default();
            let pos = bits::first_bit(slice, bit);
            if bytes == curbytes || (pos != -1 && pos != curbytes << 3) {
                break 'found pos;
            }
            start += curbytes;
            bytes -= curbytes;
        }
        bits::first_bit(&[keep(byte_at(end), r.last_mask)], bit)
    };
    // With an explicit end, a search for a 0 may not run past the range.
    if end_given && !bit && pos == bytes << 3 {
        return c.reply(Frame::Integer(-1));
    }
    c.reply(Frame::Integer(if pos == -1 {
        -1
    } else {
        pos + (start << 3)
    }));
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...].
pub fn bitop(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    #[derive(PartialEq, Clone, Copy)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let name = &args[1];
    let op = if name.eq_ignore_ascii_case(b"and") {
        Op::And
    } else if name.eq_ignore_ascii_case(b"or") {
        Op::Or
    } else if name.eq_ignore_ascii_case(b"xor") {
        Op::Xor
    } else if name.eq_ignore_ascii_case(b"not") {
        Op::Not
    } else {
        return c.error(ERR_SYNTAX);
    };
    if op == Op::Not && args.len() != 4 {
        return c.error("ERR BITOP NOT must be called with a single source key.");
    }
    let mut srcs = Vec::with_capacity(args.len() - 3);
    for k in &args[3..] {
        match read(c, db, k) {
            Ok(v) => srcs.push(v.unwrap_or_default()),
            Err(()) => return,
        }
    }
    let maxlen = srcs.iter().map(Bytes::len).max().unwrap_or(0);
    let dest = &args[2];
    if maxlen > 0 {
        let mut res = vec![0u8; maxlen];
        if let Some(first) = srcs.first() {
            res[..first.len()].copy_from_slice(first);
        }
        if op == Op::Not {
            res.iter_mut().for_each(|b| *b = !*b);
        }
        for s in srcs.iter().skip(1) {
            let (head, rest) = res.split_at_mut(s.len());
            match op {
                Op::And => {
                    head.iter_mut().zip(s.iter()).for_each(|(r, b)| *r &= b);
                    rest.fill(0);
                }
                Op::Or => head.iter_mut().zip(s.iter()).for_each(|(r, b)| *r |= b),
                Op::Xor => head.iter_mut().zip(s.iter()).for_each(|(r, b)| *r ^= b),
                Op::Not => {}
            }
        }
        db.set(dest, Value::Str(res.into()), false);
        db.modified(dest);
        db.notify(notify::STRING, "set", dest);
    } else {
        db.delete(dest);
    }
    c.reply(Frame::Integer(maxlen as i64));
}

/// One BITFIELD operation, parsed before any is run.
struct FieldOp {
    kind: FieldKind,
    offset: u64,
    bits: u32,
    signed: bool,
    value: i64,
    overflow: Overflow,
}

#[derive(PartialEq, Clone, Copy)]
enum FieldKind {
    Get,
    Set,
    IncrBy,
}

/// Redis's `getBitfieldTypeFromArgument`: `i1`..`i64` or `u1`..`u63`.
fn type_arg(c: &mut Client, arg: &[u8]) -> Option<(bool, u32)> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => {
            c.error(ERR_BITFIELD_TYPE);
            return None;
        }
    };
    match parse_i64(crate::util::c_str(&arg[1..])) {
        Some(n) if n >= 1 && n <= if signed { 64 } else { 63 } => Some((signed, n as u32)),
        _ => {
            c.error(ERR_BITFIELD_TYPE);
            None
        }
    }
}

/// Parses BITFIELD's operations; None after an error reply.
fn parse_ops(c: &mut Client, args: &[Bytes]) -> Option<Vec<FieldOp>> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = &args[j];
        let kind = if sub.eq_ignore_ascii_case(b"get") && remaining >= 2 {
            FieldKind::Get
        } else if sub.eq_ignore_ascii_case(b"set") && remaining >= 3 {
            FieldKind::Set
        } else if sub.eq_ignore_ascii_case(b"incrby") && remaining >= 3 {
            FieldKind::IncrBy
        } else if sub.eq_ignore_ascii_case(b"overflow") && remaining >= 1 {
            let t = &args[j + 1];
            overflow = if t.eq_ignore_ascii_case(b"wrap") {
                Overflow::Wrap
            } else if t.eq_ignore_ascii_case(b"sat") {
                Overflow::Sat
            } else if t.eq_ignore_ascii_case(b"fail") {
                Overflow::Fail
            } else {
                c.error("ERR Invalid OVERFLOW type specified");
                return None;
            };
            j += 2;
            continue;
        } else {
            c.error(ERR_SYNTAX);
            return None;
        };
        let (signed, bits) = type_arg(c, &args[j + 1])?;
        let offset = offset_arg(c, &args[j + 2], bits)?;
        let mut value = 0;
        if kind != FieldKind::Get {
            let Some(v) = parse_i64(&args[j + 3]) else {
                c.error(ERR_NOT_INTEGER);
                return None;
            };
            value = v;
        }
        ops.push(FieldOp {
            kind,
            offset,
            bits,
            signed,
            value,
            overflow,
        });
        j += if kind == FieldKind::Get { 3 } else { 4 };
    }
    Some(ops)
}

/// The value of a GET field.
fn field_get(s: &[u8], op: &FieldOp) -> i64 {
    if op.signed {
        bits::get_signed(s, op.offset, op.bits)
    } else {
        bits::get_unsigned(s, op.offset, op.bits) as i64
    }
}

/// Runs a SET or INCRBY on `buf`: the reply, and whether the field changed.
fn field_write(buf: &mut [u8], op: &FieldOp) -> (Frame, bool) {
    let (reply, old, new) = if op.signed {
        let old = bits::get_signed(buf, op.offset, op.bits);
        let (candidate, incr, ret_new) = match op.kind {
            FieldKind::IncrBy => (old, op.value, true),
            _ => (op.value, 0, false),
        };
        let (of, limit) = bits::check_signed(candidate, incr, op.bits, op.overflow);
        if of != 0 && op.overflow == Overflow::Fail {
            return (Frame::Null, false);
        }
        let new = match limit {
            Some(l) if of != 0 => l,
            _ => candidate.wrapping_add(incr),
        };
        (if ret_new { new } else { old }, old as u64, new as u64)
    } else {
        let old = bits::get_unsigned(buf, op.offset, op.bits);
        let (candidate, incr, ret_new) = match op.kind {
            FieldKind::IncrBy => (old, op.value, true),
            _ => (op.value as u64, 0, false),
        };
        let (of, limit) = bits::check_unsigned(candidate, incr, op.bits, op.overflow);
        if of != 0 && op.overflow == Overflow::Fail {
            return (Frame::Null, false);
        }
        let new = match limit {
            Some(l) if of != 0 => l,
            _ => candidate.wrapping_add(incr as u64),
        };
        ((if ret_new { new } else { old }) as i64, old, new)
    };
    bits::set_unsigned(buf, op.offset, op.bits, new);
    (Frame::Integer(reply), old != new)
}

fn bitfield_generic(c: &mut Client, db: &mut Db, args: &[Bytes], read_only: bool) {
    let Some(ops) = parse_ops(c, args) else {
        return;
    };
    let key = &args[1];
    let writes = ops.iter().filter(|o| o.kind != FieldKind::Get);
    let Some(highest) = writes.map(|o| o.offset + u64::from(o.bits) - 1).max() else {
        // Only GETs: a read, and a missing key reads as zeros.
        let Ok(s) = read(c, db, key) else {
            return;
        };
        let s = s.unwrap_or_default();
        let out = ops
            .iter()
            .map(|o| Frame::Integer(field_get(&s, o)))
            .collect();
        return c.reply(Frame::Array(out));
    };
    if read_only {
        return c.error("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let Some((mut buf, dirty)) = take_for_write(c, db, key, highest) else {
        return;
    };
    let mut changes = 0;
    let mut out = Vec::with_capacity(ops.len());
    for op in &ops {
        if op.kind == FieldKind::Get {
            out.push(Frame::Integer(field_get(&buf, op)));
            continue;
        }
        let (reply, changed) = field_write(&mut buf, op);
        // As Redis counts them: a write that did not fail counts when the
        // field changed or the string was created or grown.
        if !matches!(reply, Frame::Null) && (dirty || changed) {
            changes += 1;
        }
        out.push(reply);
    }
    put_back(db, key, buf);
    if changes > 0 {
        db.modified(key);
        db.notify(notify::STRING, "setbit", key);
    }
    c.reply(Frame::Array(out));
}

/// BITFIELD key [GET type offset] [SET type offset value]
/// [INCRBY type offset increment] [OVERFLOW WRAP|SAT|FAIL] ...
pub fn bitfield(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    bitfield_generic(c, db, args, false)
}

/// BITFIELD_RO key [GET type offset ...].
pub fn bitfield_ro(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    bitfield_generic(c, db, args, true)
}
