//! Whole RDB files (version 10, redis-server 7.0's `rdbSaveRio` /
//! `rdbLoadRioWithLoadingCtx`): `dump.rdb`, the RDB preamble of an AOF
//! base, and the payload of a replication full resync.
//!
//! A file is `REDIS0010`, auxiliary fields (`redis-ver`, `redis-bits`,
//! `ctime`, `used-mem`, the replication id and offset when there is one,
//! `aof-base`), each function library (`RDB_OPCODE_FUNCTION2`), then for
//! each non-empty database `SELECTDB`, `RESIZEDB` and its keys (an
//! optional `EXPIRETIME_MS`, `IDLE` or `FREQ` under an LRU / LFU policy,
//! the type byte, the key, the value as [`super::write_object`] encodes
//! it), and `EOF` with the CRC64 of everything before it (0 with
//! `rdbchecksum no`).
//!
//! The loader takes what redis-server 7.0 writes and what earlier
//! versions wrote (versions 1 to 10, `EXPIRETIME` in seconds, the older
//! value encodings [`super::read_object`] reads). It refuses module data
//! and anything malformed with an error naming the byte offset, checks
//! the CRC64 unless the file carries 0, and hands each library and key to
//! a [`Sink`], so that it does not hold a second copy of the data.

use std::io::{self, Write};

use bytes::Bytes;

use super::{put_len, put_string, read_object, write_object, Encoding, Reader, RDB_VERSION};
use crate::persist::snapshot::{Access, Data, Item, KeyRef};

static CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

// Opcodes (`RDB_OPCODE_*`).
const OP_FUNCTION2: u8 = 245;
const OP_FUNCTION_PRE_GA: u8 = 246;
const OP_MODULE_AUX: u8 = 247;
const OP_IDLE: u8 = 248;
const OP_FREQ: u8 = 249;
const OP_AUX: u8 = 250;
const OP_RESIZEDB: u8 = 251;
const OP_EXPIRETIME_MS: u8 = 252;
const OP_EXPIRETIME: u8 = 253;
const OP_SELECTDB: u8 = 254;
const OP_EOF: u8 = 255;

/// The Redis version an RDB file says wrote it (`redis-ver`).
const REDIS_VER: &str = "7.0.15";

/// What a file records besides the data.
#[derive(Debug, Clone, Default)]
pub struct Aux {
    /// Memory in use when the file was written (`used-mem`).
    pub used_mem: u64,
    /// The replication id and offset the data corresponds to (a full
    /// resync's payload, or a save by a server that replicates), with the
    /// database the replication stream last selected.
    pub repl: Option<(String, i64, usize)>,
    /// The file is the base of an AOF (`aof-base`).
    pub aof_base: bool,
    /// Redis's hidden `rdb-key-save-delay`: a pause after each key, in
    /// microseconds (negative: one key in `-n` pauses 1 µs, as Redis's
    /// `debugDelay`), which Redis's tests use to keep a save running.
    pub key_delay_us: i64,
}

/// Redis's `debugDelay`: pauses `us` microseconds, or 1 µs once in `-us`
/// calls when negative.
pub(crate) fn debug_delay(us: i64) {
    let us = if us < 0 {
        u64::from(rand::random::<u64>().is_multiple_of(us.unsigned_abs()))
    } else {
        us as u64
    };
    if us > 0 {
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

/// Writes `data` as a whole RDB file to `out`, with the CRC64 unless
/// `enc.checksum` is off. Returns the bytes written.
pub fn write(
    out: &mut impl Write,
    data: &(impl Data + ?Sized),
    enc: &Encoding,
    aux: &Aux,
) -> io::Result<u64> {
    let mut w = Crc64Writer {
        inner: out,
        digest: CRC.digest(),
        written: 0,
    };
    let mut buf = Vec::with_capacity(1 << 16);
    buf.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
    put_aux(&mut buf, "redis-ver", REDIS_VER.as_bytes());
    put_aux(&mut buf, "redis-bits", b"64");
    let ctime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    put_aux(&mut buf, "ctime", ctime.to_string().as_bytes());
    put_aux(&mut buf, "used-mem", aux.used_mem.to_string().as_bytes());
    if let Some((id, offset, db)) = &aux.repl {
        put_aux(&mut buf, "repl-stream-db", db.to_string().as_bytes());
        put_aux(&mut buf, "repl-id", id.as_bytes());
        put_aux(&mut buf, "repl-offset", offset.to_string().as_bytes());
    }
    put_aux(&mut buf, "aof-base", if aux.aof_base { b"1" } else { b"0" });
    for code in data.libraries() {
        buf.push(OP_FUNCTION2);
        put_string(&mut buf, code, enc.compress);
    }
    for i in 0..data.db_count() {
        let (keys, expires) = data.keys(i).fold((0u64, 0u64), |(n, e), k| {
            (n + 1, e + u64::from(k.expire_at.is_some()))
        });
        if keys == 0 {
            continue;
        }
        buf.push(OP_SELECTDB);
        put_len(&mut buf, i as u64);
        buf.push(OP_RESIZEDB);
        put_len(&mut buf, keys);
        put_len(&mut buf, expires);
        for item in data.keys(i) {
            put_item(&mut buf, &item, enc);
            if aux.key_delay_us != 0 {
                // Each key goes out before the pause: a reader sees the
                // save progress.
                w.write_all(&buf)?;
                w.flush()?;
                buf.clear();
                debug_delay(aux.key_delay_us);
            } else if buf.len() >= 1 << 16 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    buf.push(OP_EOF);
    w.write_all(&buf)?;
    let crc = if enc.checksum {
        std::mem::replace(&mut w.digest, CRC.digest()).finalize()
    } else {
        0
    };
    w.write_all(&crc.to_le_bytes())?;
    Ok(w.written)
}

/// One key as `rdbSaveKeyValuePair` writes it.
fn put_item(buf: &mut Vec<u8>, item: &KeyRef<'_>, enc: &Encoding) {
    if let Some(at) = item.expire_at {
        buf.push(OP_EXPIRETIME_MS);
        buf.extend_from_slice(&at.to_le_bytes());
    }
    match item.access {
        Access::None => {}
        Access::IdleSecs(s) => {
            buf.push(OP_IDLE);
            put_len(buf, s);
        }
        Access::Freq(f) => {
            buf.push(OP_FREQ);
            buf.push(f);
        }
    }
    // The type byte, then the key, then the value: the object encoder
    // writes the type and the value together, so the key goes between.
    let at = buf.len();
    write_object(buf, item.value, enc);
    let mut key = Vec::with_capacity(item.key.len() + 9);
    put_string(&mut key, item.key, enc.compress);
    buf.splice(at + 1..at + 1, key);
}

/// `rdbSaveAuxField`: both as strings (integers in their encodings).
fn put_aux(buf: &mut Vec<u8>, key: &str, value: &[u8]) {
    buf.push(OP_AUX);
    put_string(buf, key.as_bytes(), false);
    put_string(buf, value, false);
}

/// A writer that checksums and counts what passes through it.
struct Crc64Writer<'a, W: Write> {
    inner: &'a mut W,
    digest: crc::Digest<'static, u64>,
    written: u64,
}

impl<W: Write> Write for Crc64Writer<'_, W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.digest.update(&b[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where a loaded file's contents go.
pub trait Sink {
    /// A function library's code; an error stops the load.
    fn library(&mut self, code: Bytes) -> Result<(), String>;
    /// A key of database `db` (its `expire_at` still in the future when
    /// the loader skips expired keys); an error stops the load.
    fn key(&mut self, db: usize, item: Item) -> Result<(), String>;
    /// A key of database `db` left out because its TTL had passed: a
    /// primary restoring its replication point propagates its deletion.
    fn expired(&mut self, _db: usize, _key: Bytes) {}
}

/// What a load found besides the data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The file's RDB version.
    pub version: u16,
    /// Keys handed to the sink (INFO `rdb_last_load_keys_loaded`).
    pub keys_loaded: u64,
    /// Keys left out because their TTL had passed
    /// (`rdb_last_load_keys_expired`).
    pub keys_expired: u64,
    /// `repl-id` and `repl-offset`, if the file has them.
    pub repl_id: Option<String>,
    pub repl_offset: Option<i64>,
    /// `repl-stream-db`: the database the replication stream had selected.
    pub repl_stream_db: Option<usize>,
    /// `aof-base` was 1.
    pub aof_base: bool,
    /// Where the file ended (after its checksum): an AOF with an RDB
    /// preamble goes on with commands from there.
    pub end: usize,
}

/// Why a file was refused: a message and the offset it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Byte offset in the file.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.offset)
    }
}

/// How to load.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// The time keys' deadlines are compared with (unix ms).
    pub now_ms: u64,
    /// Leave out keys whose deadline has passed (a primary's load; a
    /// replica keeps them for its primary to delete).
    pub skip_expired: bool,
    /// Check the CRC64 (`rdbchecksum`); a file carrying 0 is never checked.
    pub verify_checksum: bool,
}

/// Redis's message for a file that ends early or has bad data.
const SHORT: &str = "Short read or OOM loading DB. Unrecoverable error, aborting now.";

/// Loads the RDB file at the start of `data` into `sink`.
pub fn load(data: &[u8], opts: LoadOptions, sink: &mut dyn Sink) -> Result<Loaded, LoadError> {
    let mut r = Reader::new(data);
    let fail = |r: &Reader, message: &str| LoadError {
        offset: r.pos(),
        message: message.to_string(),
    };
    let Some(magic) = r.take(9) else {
        return Err(fail(&r, SHORT));
    };
    if &magic[..5] != b"REDIS" {
        return Err(LoadError {
            offset: 0,
            message: "Wrong signature trying to load DB from file".into(),
        });
    }
    let version = std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|v| v.parse::<u16>().ok())
        .unwrap_or(0);
    if version == 0 || version > RDB_VERSION {
        return Err(LoadError {
            offset: 5,
            message: format!("Can't handle RDB format version {version}"),
        });
    }
    let mut out = Loaded {
        version,
        ..Loaded::default()
    };
    let mut db = 0usize;
    let mut expire_at: Option<u64> = None;
    let mut access = Access::None;
    loop {
        let at = r.pos();
        let Some(op) = r.byte() else {
            return Err(fail(&r, SHORT));
        };
        match op {
            OP_EXPIRETIME_MS => {
                expire_at = Some(r.millis().ok_or_else(|| fail(&r, SHORT))?);
            }
            OP_EXPIRETIME => {
                let b = r.take(4).ok_or_else(|| fail(&r, SHORT))?;
                let secs = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                expire_at = Some(secs as u64 * 1000);
            }
            OP_IDLE => {
                access = Access::IdleSecs(r.read_len().ok_or_else(|| fail(&r, SHORT))?);
            }
            OP_FREQ => access = Access::Freq(r.byte().ok_or_else(|| fail(&r, SHORT))?),
            OP_SELECTDB => {
                let n = r.read_len().ok_or_else(|| fail(&r, SHORT))?;
                db = usize::try_from(n).map_err(|_| fail(&r, SHORT))?;
            }
            OP_RESIZEDB => {
                r.read_len().ok_or_else(|| fail(&r, SHORT))?;
                r.read_len().ok_or_else(|| fail(&r, SHORT))?;
            }
            OP_AUX => {
                let key = r.string().ok_or_else(|| fail(&r, SHORT))?;
                let value = r.string().ok_or_else(|| fail(&r, SHORT))?;
                let text = || String::from_utf8_lossy(&value).into_owned();
                match key.as_slice() {
                    b"repl-id" => out.repl_id = Some(text()),
                    b"repl-offset" => out.repl_offset = text().parse().ok(),
                    b"repl-stream-db" => out.repl_stream_db = text().parse().ok(),
                    b"aof-base" => out.aof_base = value.as_slice() == b"1",
                    _ => {}
                }
            }
            OP_MODULE_AUX => {
                return Err(LoadError {
                    offset: at,
                    message: "The RDB file contains module data: herald loads no modules".into(),
                })
            }
            OP_FUNCTION2 => {
                let code = r.bytes().ok_or_else(|| fail(&r, SHORT))?;
                sink.library(code).map_err(|m| LoadError {
                    offset: at,
                    message: m,
                })?;
            }
            OP_FUNCTION_PRE_GA => {
                return Err(LoadError {
                    offset: at,
                    message: "The RDB file holds functions in the format of Redis 7.0's release candidates: load and save it with redis-server 7.0 first".into(),
                })
            }
            OP_EOF => break,
            ty => {
                if ty == 6 || ty == 7 {
                    return Err(LoadError {
                        offset: at,
                        message: "The RDB file contains a module value: herald loads no modules"
                            .into(),
                    });
                }
                let key = r.bytes().ok_or_else(|| fail(&r, SHORT))?;
                let value = read_object(&mut r, ty).ok_or_else(|| LoadError {
                    offset: at,
                    message: format!(
                        "Bad data format loading the value of key '{}' (type {ty})",
                        String::from_utf8_lossy(&key)
                    ),
                })?;
                let item = Item {
                    key,
                    value,
                    expire_at: expire_at.take(),
                    access: std::mem::replace(&mut access, Access::None),
                };
                if opts.skip_expired && item.expire_at.is_some_and(|t| t <= opts.now_ms) {
                    out.keys_expired += 1;
                    sink.expired(db, item.key);
                    continue;
                }
                sink.key(db, item).map_err(|m| LoadError {
                    offset: at,
                    message: m,
                })?;
                out.keys_loaded += 1;
            }
        }
    }
    if version >= 5 {
        let body = r.pos();
        let Some(b) = r.take(8) else {
            return Err(fail(&r, SHORT));
        };
        let expected = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        if opts.verify_checksum && expected != 0 {
            let got = CRC.checksum(&data[..body]);
            if got != expected {
                return Err(LoadError {
                    offset: body,
                    message: format!(
                        "Wrong RDB checksum expected: ({expected:x}) got ({got:x}). Aborting now."
                    ),
                });
            }
        }
    }
    out.end = r.pos();
    Ok(out)
}

/// True if `data` starts like an RDB file (an AOF base with a preamble).
pub fn is_rdb(data: &[u8]) -> bool {
    data.starts_with(b"REDIS")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::snapshot::Snapshot;
    use crate::store::Value;

    #[derive(Default)]
    struct Collect {
        libs: Vec<Bytes>,
        keys: Vec<(usize, Item)>,
    }

    impl Sink for Collect {
        fn library(&mut self, code: Bytes) -> Result<(), String> {
            self.libs.push(code);
            Ok(())
        }
        fn key(&mut self, db: usize, item: Item) -> Result<(), String> {
            self.keys.push((db, item));
            Ok(())
        }
    }

    fn item(k: &str, v: &str, at: Option<u64>) -> Item {
        Item {
            key: Bytes::from(k.to_string()),
            value: Value::Str(v.to_string().into_bytes().into()),
            expire_at: at,
            access: Access::None,
        }
    }

    fn opts() -> LoadOptions {
        LoadOptions {
            now_ms: 1_000,
            skip_expired: true,
            verify_checksum: true,
        }
    }

    fn sample() -> Vec<u8> {
        let snap = Snapshot {
            libraries: vec![Bytes::from_static(
                b"#!lua name=l\nredis.register_function('f', function() return 1 end)",
            )],
            dbs: vec![
                vec![item("a", "1", None), item("gone", "x", Some(10))],
                vec![],
                vec![item("b", &"y".repeat(100), Some(5_000))],
            ],
            dirty: 0,
        };
        let mut out = Vec::new();
        write(
            &mut out,
            &snap,
            &Encoding::default(),
            &Aux {
                repl: Some(("f".repeat(40), 1234, 0)),
                key_delay_us: 0,
                ..Aux::default()
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn round_trip() {
        let data = sample();
        let mut c = Collect::default();
        let l = load(&data, opts(), &mut c).unwrap();
        assert_eq!(l.keys_loaded, 2);
        assert_eq!(l.keys_expired, 1);
        assert_eq!(l.repl_offset, Some(1234));
        assert_eq!(l.end, data.len());
        assert_eq!(c.libs.len(), 1);
        assert_eq!(c.keys[0].0, 0);
        assert_eq!(c.keys[1].0, 2);
        assert_eq!(c.keys[1].1.expire_at, Some(5_000));
    }

    #[test]
    fn corruption_names_an_offset() {
        let mut data = sample();
        let n = data.len();
        data[n - 12] ^= 0x55;
        let e = load(&data, opts(), &mut Collect::default()).unwrap_err();
        assert!(e.to_string().contains("offset"), "{e}");
        // Every truncation is refused, never a panic.
        let data = sample();
        for cut in 0..data.len() {
            assert!(load(&data[..cut], opts(), &mut Collect::default()).is_err());
        }
        // Any byte changed, the checksum left out: an error or a load,
        // never a panic.
        let unchecked = LoadOptions {
            verify_checksum: false,
            ..opts()
        };
        for at in 0..data.len() {
            for flip in [0x01, 0x80, 0xFF] {
                let mut bad = data.clone();
                bad[at] ^= flip;
                let _ = load(&bad, unchecked, &mut Collect::default());
            }
        }
    }
}
