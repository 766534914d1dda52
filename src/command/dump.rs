//! DUMP and RESTORE (Redis's `dumpCommand` / `restoreCommand` in
//! `cluster.c`): a key's value as a DUMP payload in Redis 7.0's RDB
//! encoding, and a key created from one. The codec is
//! `persist::rdb`; this module reads the configuration that shapes the
//! encoding and applies RESTORE's options, events and propagation.

use bytes::Bytes;

use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::persist::rdb::{self, Encoding};
use crate::protocol::Frame;
use crate::store::Db;

/// The encoding options in force (CONFIG SET changes them at any time).
pub fn encoding(c: &Client) -> Encoding {
    Encoding::from_config(&c.shared.config.read())
}

/// DUMP key
pub fn dump(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let enc = encoding(c);
    match db.get(&args[1]) {
        Some(v) => {
            let payload = rdb::dump(v, &enc);
            c.reply(Frame::Bulk(Bytes::from(payload)));
        }
        None => c.reply(Frame::Null),
    }
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds]
/// [FREQ frequency]
pub fn restore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let more = args.len() - j - 1;
        let opt = args[j].to_ascii_lowercase();
        match opt.as_slice() {
            b"replace" => replace = true,
            b"absttl" => absttl = true,
            b"idletime" if more >= 1 && freq.is_none() => {
                let Some(v) = parse_i64(&args[j + 1]) else {
                    return c.error(ERR_NOT_INTEGER);
                };
                if v < 0 {
                    return c.error("ERR Invalid IDLETIME value, must be >= 0");
                }
                idle = Some(v);
                j += 1;
            }
            b"freq" if more >= 1 && idle.is_none() => {
                let Some(v) = parse_i64(&args[j + 1]) else {
                    return c.error(ERR_NOT_INTEGER);
                };
                if !(0..=255).contains(&v) {
                    return c.error("ERR Invalid FREQ value, must be >= 0 and <= 255");
                }
                freq = Some(v);
                j += 1;
            }
            _ => return c.error(ERR_SYNTAX),
        }
        j += 1;
    }
    let key = &args[1];
    // lookupKeyWrite: expires the key, counts no hit or miss.
    db.expire_if_needed(key);
    if !replace && db.contains(key) {
        return c.error("BUSYKEY Target key name already exists.");
    }
    let Some(ttl) = parse_i64(&args[2]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    if ttl < 0 {
        return c.error("ERR Invalid TTL value, must be >= 0");
    }
    let payload = &args[3];
    if !rdb::payload_ok(payload) {
        return c.error("ERR DUMP payload version or checksum are wrong");
    }
    let Some(value) = rdb::restore(payload) else {
        return c.error("ERR Bad data format");
    };
    let deleted = replace && db.remove(key).is_some();
    let at = if ttl != 0 && !absttl {
        ttl.saturating_add(db.now as i64)
    } else {
        ttl
    };
    if at != 0 && at <= db.now as i64 {
        if deleted {
            db.modified(key);
            db.notify(notify::GENERIC, "del", key);
            db.propagate_with(|| vec![Bytes::from_static(b"DEL"), crate::store::own(key)]);
        }
        return c.reply(Frame::ok());
    }
    db.set(key, value, false);
    if at != 0 {
        db.set_deadline(key, at as u64);
        if !absttl {
            // The TTL as an absolute time, so that a replay does not
            // extend the key's life.
            db.propagate_with(|| {
                let mut cmd: Vec<Bytes> = args.iter().map(|a| crate::store::own(a)).collect();
                cmd[2] = Bytes::from(at.to_string());
                cmd.push(Bytes::from_static(b"ABSTTL"));
                cmd
            });
        }
    }
    db.restore_clock(
        key,
        idle.map(|s| (s as u64).saturating_mul(1000)),
        freq.map(|f| f as u8),
    );
    db.modified(key);
    db.notify(notify::GENERIC, "restore", key);
    c.reply(Frame::ok());
}
