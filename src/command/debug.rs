//! DEBUG, a protected command (refused unless `enable-debug-command`
//! allows it, Redis's default). herald implements the subcommands that
//! make sense for it — the ones tests and operators use to steer the
//! server — and names the rest of Redis's as unsupported rather than
//! pretending to run them.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;

use super::client::Client;
use super::reply_help;
use crate::protocol::Frame;

/// Redis 7.0's DEBUG subcommands herald does not implement (they inspect
/// or break redis-server's internals: allocator, encodings, RDB reload).
const UNSUPPORTED: &[&str] = &[
    "aof-flush-sleep",
    "assert",
    "change-repl-id",
    "crash-and-recover",
    "htstats",
    "htstats-key",
    "jmap",
    "leak",
    "listpack",
    "loadaof",
    "mallctl",
    "mallctl-str",
    "oom",
    "panic",
    "pause-cron",
    "protocol",
    "quicklist",
    "quicklist-packed-threshold",
    "replybuffer",
    "restart",
    "sdslen",
    "segfault",
    "set-disable-deny-scripts",
    "set-skip-checksum-validation",
    "stringmatch-len",
    "structsize",
    "ziplist",
];

/// DEBUG subcommand [arg ...].
pub fn debug(c: &mut Client, args: &[Bytes]) {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("help", 2) => help(c),
        ("sleep", 3) => sleep(c, &args[2]),
        ("set-active-expire", 3) => {
            let Some(on) = super::parse_i64(&args[2]) else {
                return c.error(super::ERR_NOT_INTEGER);
            };
            c.shared.engine.active_expire.store(on != 0, Relaxed);
            c.reply(Frame::ok());
        }
        ("log", 3) => {
            tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
            c.reply(Frame::ok());
        }
        ("error", 3) => c.reply(Frame::Error(args[2].clone())),
        ("reload", _) => reload(c, &args[2..]),
        ("digest", 2) => digest(c),
        ("config-rewrite-force-all", 2) => config_rewrite_force_all(c),
        ("object", 3) => object(c, &args[2]),
        ("populate", 3..=5) => populate(c, &args[2..]),
        ("replicate", n) if n >= 3 => {
            c.shared.engine.repl.feed_unselected(&args[2..]);
            c.reply(Frame::ok());
        }
        ("digest-value", _) => digest_value(c, &args[2..]),
        (s, _) if UNSUPPORTED.contains(&s) => c.error(format!(
            "ERR DEBUG {} is not supported by herald",
            s.to_ascii_uppercase()
        )),
        _ => c.error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(crate::util::c_str_max(&args[1], 128))
        )),
    }
}

/// DEBUG CONFIG-REWRITE-FORCE-ALL: CONFIG REWRITE writing every option.
/// Without a config file Redis tries to open a NULL path and answers with
/// EFAULT's text; herald answers the same.
fn config_rewrite_force_all(c: &mut Client) {
    use crate::config::RewriteError;
    match super::server::rewrite_config_file(c, true) {
        Ok(()) => c.reply(Frame::ok()),
        Err(RewriteError::NoFile) => c.error("ERR CONFIG-REWRITE-FORCE-ALL failed: Bad address"),
        Err(RewriteError::Io(e)) => c.error(format!("ERR CONFIG-REWRITE-FORCE-ALL failed: {e}")),
    }
}

fn help(c: &mut Client) {
    reply_help(
        c,
        "DEBUG",
        &[
            "CONFIG-REWRITE-FORCE-ALL",
            "    Like CONFIG REWRITE but writes all configuration options, including",
            "    keywords not listed in original configuration file or default values.",
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
            "ERROR <string>",
            "    Return a Redis protocol error with <string> as message. Useful for clients",
            "    unit tests to simulate Redis errors.",
            "OBJECT <key>",
            "    Show low level info about the `key` and associated value.",
            "RELOAD [option ...]",
            "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
            "    * MERGE: conflicting keys will be loaded from RDB.",
            "    * NOFLUSH: the existing database will not be removed before load, but",
            "      conflicting keys will generate an exception and kill the server.",
            "    * NOSAVE: the database will be loaded from an existing RDB file.",
            "    Examples:",
            "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
            "      the database.",
            "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
            "      existing RDB file.",
            "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
            "      file to the database.",
            "LOG <message>",
            "    Write <message> to the server log.",
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys named key:<num>. If <prefix> is specified then",
            "    it is used instead of the 'key' prefix. These are not propagated to",
            "    replicas. Cluster slots are not respected so keys not belonging to the",
            "    current node can be created in cluster mode.",
            "REPLICATE <command> [<arg> ...]",
            "    Send the command to the replicas without running it here.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "SLEEP <seconds>",
            "    Stop the keyspace for <seconds>. Decimals allowed.",
        ],
    );
}

/// DEBUG SLEEP: every database held for the time given, so that keyspace
/// commands wait as they wait behind a slow command in Redis.
fn sleep(c: &mut Client, secs: &Bytes) {
    let Some(secs) = super::strings::parse_f64(secs) else {
        return c.error("ERR value is not a valid float");
    };
    let pause = Duration::from_secs_f64(secs.clamp(0.0, 3600.0));
    if c.tx.in_exec || c.in_script {
        // The transaction or script already holds what it uses, and others
        // wait for it: locking again would deadlock.
        std::thread::sleep(pause);
        return c.reply(Frame::ok());
    }
    let engine = &c.shared.engine;
    let guards: Vec<_> = (0..engine.store.len()).map(|i| engine.lock(i)).collect();
    std::thread::sleep(pause);
    for g in guards {
        engine.unlock(g);
    }
    c.reply(Frame::ok());
}

/// DEBUG DIGEST: the whole data set's fingerprint (Redis's, bit for bit:
/// see `store::digest`), every database held meanwhile. Keys past their
/// TTL but not yet removed count, as in Redis.
fn digest(c: &mut Client) {
    use crate::store::digest;
    let n = c.shared.engine.store.len();
    let dbs: Vec<_> = (0..n).map(|i| super::take_db(c, i)).collect();
    let mut total = digest::Digest::default();
    for (i, db) in dbs.iter().enumerate() {
        let keys = db.entries().map(|(k, v, at, _)| (k, v, at.is_some()));
        digest::mix_database(&mut total, i, keys);
    }
    for db in dbs {
        super::put_db(c, db);
    }
    c.reply(Frame::Simple(Bytes::from(digest::hex(&total))));
}

/// DEBUG DIGEST-VALUE key [key ...]: each value's fingerprint in the
/// selected database (zeros for a missing key).
fn digest_value(c: &mut Client, keys: &[Bytes]) {
    use crate::store::digest;
    let replies = super::with_db(c, |_, db| {
        keys.iter()
            .map(|k| {
                let d = digest::value_digest(db.peek(k), db.deadline(k).is_some());
                Frame::Simple(Bytes::from(digest::hex(&d)))
            })
            .collect()
    });
    c.reply(Frame::Array(replies));
}

/// DEBUG OBJECT key: Redis's one-line description of a value (its
/// encoding, the length of its RDB serialisation, its access clock, and
/// for a list the quicklist's shape), read without expiring the key.
fn object(c: &mut Client, key: &Bytes) {
    let enc = super::dump::encoding(c);
    let line = super::with_db(c, |_, db| {
        let now = db.now;
        let (v, clock, str_enc) = db.inspect(key)?;
        let mut rdb = Vec::new();
        crate::persist::rdb::write_object(&mut rdb, v, &enc);
        let mut extra = String::new();
        if let crate::store::Value::List(l) = v {
            let nodes = crate::persist::rdb::quicklist_nodes(l.iter(), enc.list_fill);
            let size: usize = nodes.iter().map(Vec::len).sum();
            let avg = l.len() as f64 / nodes.len().max(1) as f64;
            extra = format!(
                " ql_nodes:{} ql_avg_node:{avg:.2} ql_listpack_max:{} ql_compressed:0 ql_uncompressed_size:{size}",
                nodes.len(),
                enc.list_fill
            );
        }
        Some(format!(
            "Value at:0x{:x} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}{extra}",
            v as *const _ as usize,
            v.encoding(str_enc),
            rdb.len().saturating_sub(1),
            (clock / 1000) & 0xFF_FFFF,
            (now as u32).wrapping_sub(clock) / 1000
        ))
    });
    match line {
        Some(l) => c.reply(Frame::Simple(Bytes::from(l))),
        None => c.error("ERR no such key"),
    }
}

/// DEBUG POPULATE count [prefix] [size]: `count` string keys
/// `prefix:N` = `value:N` (cut or zero-padded to `size` bytes), skipping
/// those that exist; neither logged nor replicated, as in Redis.
fn populate(c: &mut Client, args: &[Bytes]) {
    let positive = |c: &mut Client, a: &Bytes| match super::parse_i64(a) {
        Some(n) if n >= 0 => Some(n as u64),
        Some(_) => {
            c.error("ERR value is out of range, must be positive");
            None
        }
        None => {
            c.error(super::ERR_NOT_INTEGER);
            None
        }
    };
    let Some(count) = positive(c, &args[0]) else {
        return;
    };
    let size = match args.get(2) {
        Some(a) => match positive(c, a) {
            Some(n) => n as usize,
            None => return,
        },
        None => 0,
    };
    let prefix = args.get(1).map_or(&b"key"[..], |p| &p[..]);
    super::with_db(c, |_, db| {
        for j in 0..count {
            let mut key = prefix.to_vec();
            key.extend_from_slice(format!(":{j}").as_bytes());
            if db.get(&key).is_some() {
                continue;
            }
            let mut val = format!("value:{j}").into_bytes();
            if size > 0 {
                val.resize(size, 0);
            }
            db.set(&key, crate::store::Value::Str(val.into()), false);
            db.modified(&key);
        }
    });
    c.reply(Frame::ok());
}

/// DEBUG RELOAD [NOSAVE] [NOFLUSH]: saves `dump.rdb`, empties the data set
/// and loads the file back, every database held meanwhile.
fn reload(c: &mut Client, opts: &[Bytes]) {
    let (mut save, mut flush) = (true, true);
    for o in opts {
        match o.to_ascii_lowercase().as_slice() {
            b"nosave" => save = false,
            b"noflush" => flush = false,
            b"merge" => {
                return c.error("ERR DEBUG RELOAD MERGE is not supported by herald");
            }
            _ => {
                return c
                    .error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
            }
        }
    }
    if c.tx.in_exec || c.in_script {
        return c.error("ERR DEBUG RELOAD cannot run inside a transaction or a script");
    }
    let shared = c.shared.clone();
    if save && crate::persist::save::save_after_bgsave(shared.as_ref()).is_err() {
        return c.error("ERR Error trying to save the RDB dump, check server logs.");
    }
    let path = crate::persist::save::path(shared.as_ref());
    let Ok(data) = std::fs::read(&path) else {
        return c.error("ERR Error trying to load the RDB dump, check server logs.");
    };
    let opts = crate::persist::rdb::file::LoadOptions {
        now_ms: crate::util::now_ms(),
        skip_expired: true,
        verify_checksum: true,
    };
    let mut loader = super::replay::KeyLoader::new(shared, flush);
    match crate::persist::rdb::file::load(&data, opts, &mut loader) {
        Ok(_) => {
            drop(loader);
            tracing::info!("DB reloaded by DEBUG RELOAD");
            c.reply(Frame::ok());
        }
        Err(e) => {
            drop(loader);
            tracing::warn!("DEBUG RELOAD: {} ({})", e, path.display());
            c.error("ERR Error trying to load the RDB dump, check server logs.")
        }
    }
}
