//! HyperLogLog commands (PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST),
//! as redis-server 7.0's `hyperloglog.c`: the values are strings in
//! Redis's layout (`store::hll`), so they survive GET / SET, DUMP-free
//! copies between servers and the AOF unchanged.
//!
//! Propagation follows Redis: every command is logged as sent when it
//! changed the database, including PFCOUNT when it refreshed the cached
//! cardinality (Redis counts that as a change of the string) and PFDEBUG
//! GETREG / TODENSE when they converted the value to dense. PFADD and
//! PFMERGE emit the `pfadd` event (class string); PFCOUNT and PFDEBUG none.

use bytes::Bytes;

use super::Client;
use crate::config::notify;
use crate::protocol::Frame;
use crate::store::hll::{self, Corrupt, REGISTERS};
use crate::store::{Db, Value, WRONGTYPE};

/// A string that is not an HLL (Redis's `isHLLObjectOrReply`).
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// A sparse HLL whose opcodes do not add up (Redis's `invalid_hll_err`).
const INVALID: &str = "INVALIDOBJ Corrupted HLL object detected";

/// `hll-sparse-max-bytes`: the size past which a sparse HLL turns dense.
fn sparse_max_bytes(c: &Client) -> usize {
    c.shared
        .config
        .read()
        .value("hll-sparse-max-bytes")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(3000)
}

/// Looks `key` up for reading as an HLL: Ok(None) if missing, Err after
/// replying with the type error.
fn lookup(c: &mut Client, db: &mut Db, key: &[u8]) -> Result<Option<Bytes>, ()> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Str(b)) if hll::is_valid(b) => Ok(Some(b.to_bytes())),
        Some(Value::Str(_)) => {
            c.error(NOT_HLL);
            Err(())
        }
        Some(_) => {
            c.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Runs `f` on the bytes of the string at `key` in place (the caller has
/// checked that it is one).
fn with_bytes<R>(db: &mut Db, key: &[u8], f: impl FnOnce(&mut Vec<u8>) -> R) -> Option<R> {
    db.update(key, |v| match v {
        Value::Str(b) => {
            let mut bytes = Vec::from(std::mem::take(b));
            let r = f(&mut bytes);
            *b = bytes.into();
            Some(r)
        }
        _ => None,
    })
    .flatten()
}

/// PFADD key [element ...].
pub fn pfadd(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let key = &args[1];
    let Ok(found) = lookup(c, db, key) else {
        return;
    };
    let max_bytes = sparse_max_bytes(c);
    // A new key counts as an update: its cache is marked stale too.
    let add_all = |h: &mut Vec<u8>, mut updated: usize| -> Result<usize, Corrupt> {
        for ele in &args[2..] {
            if hll::add(h, ele, max_bytes)? {
                updated += 1;
            }
        }
        if updated > 0 {
            hll::invalidate(h);
        }
        Ok(updated)
    };
    let result = match found {
        None => {
            let mut h = hll::new_sparse();
            let r = add_all(&mut h, 1);
            db.set(key, Value::Str(h.into()), false);
            r
        }
        Some(cur) => {
            drop(cur);
            with_bytes(db, key, |h| add_all(h, 0)).unwrap_or(Err(Corrupt))
        }
    };
    match result {
        Err(Corrupt) => c.error(INVALID),
        Ok(0) => c.reply(Frame::Integer(0)),
        Ok(_) => {
            db.modified(key);
            db.notify(notify::STRING, "pfadd", key);
            c.reply(Frame::Integer(1));
        }
    }
}

/// PFCOUNT key [key ...].
pub fn pfcount(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    if args.len() > 2 {
        let mut max = Box::new([0u8; REGISTERS]);
        for key in &args[1..] {
            let Ok(found) = lookup(c, db, key) else {
                return;
            };
            let Some(h) = found else { continue };
            if hll::merge(&mut max, &h).is_err() {
                return c.error(INVALID);
            }
        }
        return c.reply(Frame::Integer(hll::count_raw(&max) as i64));
    }
    let key = &args[1];
    let Ok(found) = lookup(c, db, key) else {
        return;
    };
    let Some(h) = found else {
        return c.reply(Frame::Integer(0));
    };
    if let Some(card) = hll::cached(&h) {
        return c.reply(Frame::Integer(card as i64));
    }
    drop(h);
    let card = with_bytes(db, key, |h| {
        let card = hll::count(h)?;
        hll::set_cached(h, card);
        Ok(card)
    })
    .unwrap_or(Err(Corrupt));
    match card {
        Err(Corrupt) => c.error(INVALID),
        Ok(card) => {
            // Redis counts the refreshed cache as a change (WATCH, AOF).
            db.modified(key);
            c.reply(Frame::Integer(card as i64));
        }
    }
}

/// PFMERGE destkey [sourcekey ...]: the destination is one of the sources.
pub fn pfmerge(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let mut max = Box::new([0u8; REGISTERS]);
    let mut use_dense = false;
    for key in &args[1..] {
        let Ok(found) = lookup(c, db, key) else {
            return;
        };
        let Some(h) = found else { continue };
        if hll::encoding(&h) == hll::DENSE {
            use_dense = true;
        }
        if hll::merge(&mut max, &h).is_err() {
            return c.error(INVALID);
        }
    }
    let key = &args[1];
    let max_bytes = sparse_max_bytes(c);
    let write = |h: &mut Vec<u8>| -> Result<(), Corrupt> {
        if use_dense {
            *h = hll::to_dense(h)?;
        }
        for (j, &m) in max.iter().enumerate() {
            if m != 0 {
                // As Redis, a failure here is ignored: the sources were
                // checked, the destination among them.
                let _ = hll::set(h, j, m, max_bytes);
            }
        }
        hll::invalidate(h);
        Ok(())
    };
    let result = if db.exists(key) {
        with_bytes(db, key, write).unwrap_or(Err(Corrupt))
    } else {
        let mut h = hll::new_sparse();
        let r = write(&mut h);
        db.set(key, Value::Str(h.into()), false);
        r
    };
    if result.is_err() {
        return c.error(INVALID);
    }
    db.modified(key);
    // Redis emits `pfadd` for a merge too: it is a mass add.
    db.notify(notify::STRING, "pfadd", key);
    c.reply(Frame::ok());
}

/// PFDEBUG subcommand key: GETREG, DECODE, ENCODING, TODENSE (arity 3,
/// so Redis's per-subcommand arity check never fires).
pub fn pfdebug(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let sub = &args[1];
    let key = &args[2];
    let found = match db.get(key) {
        None => return c.error("ERR The specified key does not exist"),
        Some(_) => match lookup(c, db, key) {
            Ok(Some(h)) => h,
            _ => return,
        },
    };
    let sparse = hll::encoding(&found) == hll::SPARSE;
    if sub.eq_ignore_ascii_case(b"getreg") || sub.eq_ignore_ascii_case(b"todense") {
        let getreg = sub.eq_ignore_ascii_case(b"getreg");
        drop(found);
        let dense = with_bytes(db, key, |h| {
            if hll::encoding(h) == hll::SPARSE {
                *h = hll::to_dense(h)?;
            }
            Ok(getreg.then(|| h[hll::HDR..].to_vec()))
        })
        .unwrap_or(Err(Corrupt));
        let regs = match dense {
            Err(Corrupt) => return c.error(INVALID),
            Ok(regs) => regs,
        };
        if sparse {
            // Redis forces propagation of the encoding change (no WATCH
            // signal, no event).
            db.dirty += 1;
        }
        match regs {
            Some(regs) => c.reply(Frame::Array(
                (0..REGISTERS)
                    .map(|i| Frame::Integer(hll::dense_get(&regs, i) as i64))
                    .collect(),
            )),
            None => c.reply(Frame::Integer(sparse as i64)),
        }
    } else if sub.eq_ignore_ascii_case(b"decode") {
        if !sparse {
            return c.error("ERR HLL encoding is not sparse");
        }
        let text = hll::decode(&found[hll::HDR..]);
        c.reply(Frame::bulk(text));
    } else if sub.eq_ignore_ascii_case(b"encoding") {
        c.reply(Frame::simple(if sparse { "sparse" } else { "dense" }));
    } else {
        c.error(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            crate::util::sanitize(sub)
        ));
    }
}

/// PFSELFTEST: Redis's self-test of the register layout and of the
/// estimator's error, dense and sparse side by side.
pub fn pfselftest(c: &mut Client, _args: &[Bytes]) {
    let max_bytes = sparse_max_bytes(c);
    match selftest(max_bytes) {
        Ok(()) => c.reply(Frame::ok()),
        Err(msg) => c.error(msg),
    }
}

fn selftest(max_bytes: usize) -> Result<(), String> {
    const CYCLES: usize = 1000;
    let mut regs = vec![0u8; hll::DENSE_SIZE - hll::HDR];
    let mut bytes = vec![0u8; REGISTERS];
    for _ in 0..CYCLES {
        for (i, b) in bytes.iter_mut().enumerate() {
            let r = rand::random::<u8>() & 63;
            *b = r;
            hll::dense_put(&mut regs, i, r);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let v = hll::dense_get(&regs, i);
            if v != b {
                return Err(format!("TESTFAILED Register {i} should be {b} but is {v}"));
            }
        }
    }
    let mut dense = hll::new_sparse();
    dense = hll::to_dense(&dense).map_err(|_| "TESTFAILED dense".to_string())?;
    let mut sparse = hll::new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint: u64 = 1;
    let seed = rand::random::<u64>();
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        let _ = hll::add(&mut dense, &ele, max_bytes);
        let _ = hll::add(&mut sparse, &ele, max_bytes);
        if j != checkpoint {
            continue;
        }
        if (j as usize) < max_bytes / 2 && hll::encoding(&sparse) != hll::SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let d = hll::count(&dense).unwrap_or(0);
        if hll::count(&sparse).unwrap_or(u64::MAX) != d {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = (checkpoint as i64 - d as i64).unsigned_abs();
        let mut maxerr = (relerr * 6.0 * checkpoint as f64).ceil() as u64;
        if j == 10 {
            maxerr = 1;
        }
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}
