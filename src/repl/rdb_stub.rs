//! A whole RDB v10 file, written and read, for replication's full resyncs.
//!
//! STUB: stands in for `persist::rdb::file` (the RDB file module written
//! on main) until it is merged; delete this module then and call that one.
//! It writes what a full resync needs (aux fields with the replication id
//! and offset, function libraries, every database with expiries, EOF,
//! CRC64) and reads the same, plus the opcodes a redis-server 7.0 RDB
//! holds (IDLE, FREQ, RESIZEDB, expiries in seconds).

use bytes::Bytes;

use crate::persist::rdb::{put_len, put_string, read_object, write_object, Encoding, Reader};
use crate::store::Value;

const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

const OP_FUNCTION2: u8 = 245;
const OP_MODULE_AUX: u8 = 247;
const OP_IDLE: u8 = 248;
const OP_FREQ: u8 = 249;
const OP_AUX: u8 = 250;
const OP_RESIZEDB: u8 = 251;
const OP_EXPIRETIME_MS: u8 = 252;
const OP_EXPIRETIME: u8 = 253;
const OP_SELECTDB: u8 = 254;
const OP_EOF: u8 = 255;

/// One database's keys: key, value, deadline (unix ms).
pub type DbKeys = Vec<(Bytes, Value, Option<u64>)>;

/// What an RDB file held.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Each non-empty database's index and keys.
    pub dbs: Vec<(usize, DbKeys)>,
    /// Function libraries' code.
    pub libraries: Vec<Bytes>,
    /// `repl-id` / `repl-offset` aux fields.
    pub repl_id: Option<String>,
    pub repl_offset: Option<i64>,
}

/// Writes a whole RDB file of `dbs` (index = database) and `libraries`,
/// naming `repl` (id, offset) in its aux fields.
pub fn write(
    out: &mut Vec<u8>,
    dbs: &[DbKeys],
    libraries: &[Bytes],
    enc: &Encoding,
    repl: (&str, u64),
) {
    out.extend_from_slice(b"REDIS0010");
    let ctime = (crate::util::now_ms() / 1000).to_string();
    let offset = repl.1.to_string();
    let aux: [(&str, &str); 7] = [
        ("redis-ver", "7.0.15"),
        ("redis-bits", "64"),
        ("ctime", &ctime),
        ("used-mem", "0"),
        ("repl-id", repl.0),
        ("repl-offset", &offset),
        ("aof-base", "0"),
    ];
    for (k, v) in aux {
        out.push(OP_AUX);
        put_string(out, k.as_bytes(), false);
        put_string(out, v.as_bytes(), false);
    }
    for lib in libraries {
        out.push(OP_FUNCTION2);
        put_string(out, lib, enc.compress);
    }
    for (i, keys) in dbs.iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        out.push(OP_SELECTDB);
        put_len(out, i as u64);
        out.push(OP_RESIZEDB);
        put_len(out, keys.len() as u64);
        put_len(out, keys.iter().filter(|k| k.2.is_some()).count() as u64);
        for (k, v, at) in keys {
            if let Some(at) = at {
                out.push(OP_EXPIRETIME_MS);
                out.extend_from_slice(&at.to_le_bytes());
            }
            // The type byte goes before the key: write the object apart.
            let mut obj = Vec::new();
            write_object(&mut obj, v, enc);
            out.push(obj[0]);
            put_string(out, k, enc.compress);
            out.extend_from_slice(&obj[1..]);
        }
    }
    out.push(OP_EOF);
    let crc = CRC64.checksum(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Reads a whole RDB file (versions 1 to 10). Errors name the offset.
pub fn load(bytes: &[u8]) -> Result<Loaded, String> {
    if bytes.len() < 9 || &bytes[..5] != b"REDIS" {
        return Err("Wrong signature trying to load DB from file".into());
    }
    let version: u32 = std::str::from_utf8(&bytes[5..9])
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or("Can't handle RDB format version")?;
    if !(1..=10).contains(&version) {
        return Err(format!("Can't handle RDB format version {version}"));
    }
    let mut r = Reader::new(&bytes[9..]);
    let at = |r: &Reader| bytes.len() - r.remaining();
    let bad = |r: &Reader| format!("Short read or corrupt RDB at offset {}", at(r));
    let mut out = Loaded::default();
    let mut db = 0usize;
    let mut current: DbKeys = Vec::new();
    let mut expire: Option<u64> = None;
    loop {
        let op = r.byte().ok_or_else(|| bad(&r))?;
        match op {
            OP_EOF => break,
            OP_AUX => {
                let k = r.string().ok_or_else(|| bad(&r))?;
                let v = r.string().ok_or_else(|| bad(&r))?;
                let v = String::from_utf8_lossy(&v).into_owned();
                match &k[..] {
                    b"repl-id" => out.repl_id = Some(v),
                    b"repl-offset" => out.repl_offset = v.parse().ok(),
                    _ => {}
                }
            }
            OP_FUNCTION2 => out.libraries.push(r.bytes().ok_or_else(|| bad(&r))?),
            OP_MODULE_AUX => {
                return Err(format!(
                    "The RDB holds module data (offset {}): herald loads no modules",
                    at(&r)
                ))
            }
            OP_SELECTDB => {
                let n = r.read_len().ok_or_else(|| bad(&r))?;
                if !current.is_empty() {
                    out.dbs.push((db, std::mem::take(&mut current)));
                }
                db = usize::try_from(n).map_err(|_| bad(&r))?;
            }
            OP_RESIZEDB => {
                r.read_len().ok_or_else(|| bad(&r))?;
                r.read_len().ok_or_else(|| bad(&r))?;
            }
            OP_EXPIRETIME_MS => expire = Some(r.millis().ok_or_else(|| bad(&r))?),
            OP_EXPIRETIME => {
                let s = r.take(4).ok_or_else(|| bad(&r))?;
                let s = u32::from_le_bytes(s.try_into().map_err(|_| bad(&r))?);
                expire = Some(u64::from(s) * 1000);
            }
            OP_IDLE => {
                r.read_len().ok_or_else(|| bad(&r))?;
            }
            OP_FREQ => {
                r.byte().ok_or_else(|| bad(&r))?;
            }
            ty => {
                let key = r.bytes().ok_or_else(|| bad(&r))?;
                let value = read_object(&mut r, ty).ok_or_else(|| bad(&r))?;
                current.push((key, value, expire.take()));
            }
        }
    }
    if !current.is_empty() {
        out.dbs.push((db, current));
    }
    if version >= 5 {
        let body_len = at(&r);
        let crc = r.take(8).ok_or_else(|| bad(&r))?;
        let crc = u64::from_le_bytes(crc.try_into().map_err(|_| bad(&r))?);
        if crc != 0 && crc != CRC64.checksum(&bytes[..body_len]) {
            return Err(format!("Wrong RDB checksum at offset {body_len}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dbs = vec![
            vec![(
                Bytes::from_static(b"k"),
                Value::Str(Bytes::from_static(b"v")),
                None,
            )],
            vec![],
            vec![(
                Bytes::from_static(b"t"),
                Value::Str(Bytes::from_static(b"12345")),
                Some(4_000_000_000_000),
            )],
        ];
        let mut out = Vec::new();
        write(&mut out, &dbs, &[], &Encoding::default(), ("abc", 42));
        let l = load(&out).unwrap_or_default();
        assert_eq!(l.dbs.len(), 2);
        assert_eq!(l.dbs[1].0, 2);
        assert_eq!(l.dbs[1].1[0].2, Some(4_000_000_000_000));
        assert_eq!(l.repl_id.as_deref(), Some("abc"));
        assert_eq!(l.repl_offset, Some(42));
        out[12] ^= 1;
        assert!(load(&out).is_err());
    }
}
