//! Introspection of keys and memory, and the key commands that go with
//! them: OBJECT (ENCODING, FREQ, IDLETIME, REFCOUNT, HELP), MEMORY (USAGE,
//! STATS, DOCTOR, MALLOC-STATS, PURGE, HELP), TOUCH and MOVE, as Redis
//! 7.0's `object.c` and `db.c`.
//!
//! OBJECT and MEMORY USAGE look keys up as Redis's `objectCommandLookup`
//! does: no lazy expiry, no access recorded, no hit or miss counted. The
//! representation they report is the one Redis would have chosen
//! (`store::encoding`), and MEMORY USAGE estimates Redis's sizes
//! (`store::usage`). The access clock they read is the one eviction keeps
//! (`store::evict`): LRU milliseconds, or the LFU counter under an LFU
//! `maxmemory-policy`.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{
    parse_i64, put_db, reply_help, take_db, Client, ERR_INT_RANGE, ERR_NOT_INTEGER, ERR_SYNTAX,
};
use crate::config::{notify, MaxmemoryPolicy};
use crate::protocol::Frame;
use crate::store::{evict, usage, Db};

/// OBJECT's subcommands.
pub static OBJECT_SUBCOMMANDS: &[super::Spec] = &[
    super::dcmd("encoding", 3, object_encoding),
    super::dcmd("freq", 3, object_freq),
    super::cmd("help", 2, object_help),
    super::dcmd("idletime", 3, object_idletime),
    super::dcmd("refcount", 3, object_refcount),
];

/// MEMORY's subcommands.
pub static MEMORY_SUBCOMMANDS: &[super::Spec] = &[
    super::cmd("doctor", 2, memory_doctor),
    super::cmd("help", 2, memory_help),
    super::cmd("malloc-stats", 2, memory_malloc_stats),
    super::cmd("purge", 2, memory_purge),
    super::cmd("stats", 2, memory_stats),
    super::dcmd("usage", -3, memory_usage),
];

/// Redis's OBJECT_SHARED_REFCOUNT: the reference count of the shared
/// integers 0..9999.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Redis's OBJ_SHARED_INTEGERS.
const SHARED_INTEGERS: i64 = 10_000;

const ERR_LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const ERR_LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// OBJECT ENCODING key.
pub fn object_encoding(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    match db.inspect(&args[2]) {
        Some((v, _, enc)) => {
            let name = v.encoding(enc);
            c.reply(Frame::Bulk(Bytes::from_static(name.as_bytes())))
        }
        None => c.reply(Frame::Null),
    }
}

/// OBJECT FREQ key: the LFU counter, decayed for the time since the last
/// access (only under an LFU policy).
pub fn object_freq(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some((_, clock, _)) = db.inspect(&args[2]) else {
        return c.reply(Frame::Null);
    };
    match db.lfu {
        Some(p) => {
            let n = evict::lfu_decayed(clock, db.now, p.decay_time);
            c.reply(Frame::Integer(n as i64))
        }
        None => c.error(ERR_LFU_NOT_SELECTED),
    }
}

/// OBJECT IDLETIME key: seconds since the last access (not under an LFU
/// policy, where the clock holds a counter).
pub fn object_idletime(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some((_, clock, _)) = db.inspect(&args[2]) else {
        return c.reply(Frame::Null);
    };
    if db.lfu.is_some() {
        return c.error(ERR_LFU_SELECTED);
    }
    let idle_ms = (db.now as u32).wrapping_sub(clock);
    c.reply(Frame::Integer((idle_ms / 1000) as i64));
}

/// OBJECT REFCOUNT key: Redis shares the objects of the integers 0..9999
/// (unless an LRU or LFU policy with `maxmemory` needs a clock per key),
/// every other value has one reference.
pub fn object_refcount(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Some((v, _, enc)) = db.inspect(&args[2]) else {
        return c.reply(Frame::Null);
    };
    let small_int = match v {
        crate::store::Value::Str(b) if v.encoding(enc) == "int" => {
            super::parse_i64(b).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n))
        }
        _ => false,
    };
    let settings = &c.shared.engine.store.evictor.settings;
    let clocked = settings.maxmemory.load(Relaxed) != 0
        && !matches!(
            settings.policy(),
            MaxmemoryPolicy::NoEviction
                | MaxmemoryPolicy::AllkeysRandom
                | MaxmemoryPolicy::VolatileRandom
                | MaxmemoryPolicy::VolatileTtl
        );
    let n = if small_int && !clocked {
        SHARED_REFCOUNT
    } else {
        1
    };
    c.reply(Frame::Integer(n));
}

/// OBJECT HELP.
pub fn object_help(c: &mut Client, _args: &[Bytes]) {
    reply_help(
        c,
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
}

/// MEMORY HELP.
pub fn memory_help(c: &mut Client, _args: &[Bytes]) {
    reply_help(
        c,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
}

/// Redis's default MEMORY USAGE sample (`OBJ_COMPUTE_SIZE_DEF_SAMPLES`).
const DEFAULT_SAMPLES: usize = 5;

/// MEMORY USAGE key [SAMPLES count].
pub fn memory_usage(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let mut samples = DEFAULT_SAMPLES;
    let mut j = 3;
    while j < args.len() {
        if !args[j].eq_ignore_ascii_case(b"samples") || j + 1 >= args.len() {
            return c.error(ERR_SYNTAX);
        }
        let Some(n) = parse_i64(&args[j + 1]) else {
            return c.error(ERR_NOT_INTEGER);
        };
        if n < 0 {
            return c.error(ERR_SYNTAX);
        }
        samples = if n == 0 {
            usize::MAX
        } else {
            usize::try_from(n).unwrap_or(usize::MAX)
        };
        j += 2;
    }
    match db.inspect(&args[2]) {
        Some((v, _, enc)) => {
            let n = usage::key_usage(&args[2], v, enc, samples);
            c.reply(Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX)))
        }
        None => c.reply(Frame::Null),
    }
}

/// The figures MEMORY STATS and MEMORY DOCTOR report (Redis's
/// `redisMemOverhead`), from herald's accounting: used memory is the
/// keyspace estimate plus client buffers, as INFO memory reports it.
struct Overhead {
    peak: u64,
    used: u64,
    rss: u64,
    clients: u64,
    clients_count: u64,
    lua: u64,
    functions: u64,
    scripts: u64,
    /// (database, main table overhead, expires table overhead).
    dbs: Vec<(usize, u64, u64)>,
    keys: u64,
    total: u64,
}

/// Redis's per-database table overhead: entries, slots and `robj`s.
fn table_overhead(n: usize, with_objects: bool) -> u64 {
    let slots = if n == 0 {
        0
    } else {
        n.max(4).next_power_of_two()
    };
    (n * 24 + slots * 8 + if with_objects { n * 16 } else { 0 }) as u64
}

fn overhead(c: &Client) -> Overhead {
    let sh = &c.shared;
    let clients = sh.observe.sum_clients_memory(&sh.clients);
    let used = (sh.engine.store.used_memory_total() + clients.total) as u64;
    let peak = sh.observe.note_used(used as usize) as u64;
    let figures = sh.scripting.figures();
    let lua = figures.scripts_eval.load(Relaxed) as u64;
    let functions = figures.functions_memory.load(Relaxed) as u64;
    let mut dbs = Vec::new();
    let mut keys = 0;
    let mut total = clients.total as u64 + lua + functions;
    for i in 0..sh.engine.store.len() {
        let (n, expires, _) = super::keys::db_stats(c, i);
        if n == 0 {
            continue;
        }
        let (main, exp) = (table_overhead(n, true), table_overhead(expires, false));
        total += main + exp;
        keys += n as u64;
        dbs.push((i, main, exp));
    }
    let mut clients_count = 0;
    sh.clients.for_each(|_| clients_count += 1);
    Overhead {
        peak,
        used,
        rss: super::server::rss_bytes(),
        clients: clients.total as u64,
        clients_count,
        lua,
        functions,
        scripts: figures.cached_scripts.load(Relaxed) as u64,
        dbs,
        keys,
        total,
    }
}

/// A ratio as Redis computes it: in a C `float`.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        (a as f32 / b as f32) as f64
    }
}

/// MEMORY STATS.
pub fn memory_stats(c: &mut Client, _args: &[Bytes]) {
    let o = overhead(c);
    let int = |n: u64| Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let key = |k: &str| Frame::Bulk(Bytes::copy_from_slice(k.as_bytes()));
    let dataset = o.used.saturating_sub(o.total);
    let net = o.used.max(1);
    let mut m = vec![
        (key("peak.allocated"), int(o.peak)),
        (key("total.allocated"), int(o.used)),
        (key("startup.allocated"), int(0)),
        (key("replication.backlog"), int(0)),
        (key("clients.slaves"), int(0)),
        (key("clients.normal"), int(o.clients)),
        (key("cluster.links"), int(0)),
        (key("aof.buffer"), int(0)),
        (key("lua.caches"), int(o.lua)),
        (key("functions.caches"), int(o.functions)),
    ];
    for &(i, main, exp) in &o.dbs {
        m.push((
            key(&format!("db.{i}")),
            Frame::Map(vec![
                (key("overhead.hashtable.main"), int(main)),
                (key("overhead.hashtable.expires"), int(exp)),
                (key("overhead.hashtable.slot-to-keys"), int(0)),
            ]),
        ));
    }
    m.extend([
        (key("overhead.total"), int(o.total)),
        (key("keys.count"), int(o.keys)),
        (
            key("keys.bytes-per-key"),
            int(net.checked_div(o.keys).unwrap_or(0)),
        ),
        (key("dataset.bytes"), int(dataset)),
        (
            key("dataset.percentage"),
            Frame::Double(ratio(dataset * 100, net)),
        ),
        (
            key("peak.percentage"),
            Frame::Double(ratio(o.used * 100, o.peak)),
        ),
        (key("allocator.allocated"), int(o.used)),
        (key("allocator.active"), int(o.used)),
        (key("allocator.resident"), int(o.rss)),
        (key("allocator-fragmentation.ratio"), Frame::Double(1.0)),
        (key("allocator-fragmentation.bytes"), int(0)),
        (
            key("allocator-rss.ratio"),
            Frame::Double(ratio(o.rss, o.used)),
        ),
        (
            key("allocator-rss.bytes"),
            int(o.rss.saturating_sub(o.used)),
        ),
        (key("rss-overhead.ratio"), Frame::Double(1.0)),
        (key("rss-overhead.bytes"), int(0)),
        (key("fragmentation"), Frame::Double(ratio(o.rss, o.used))),
        (
            key("fragmentation.bytes"),
            Frame::Integer(o.rss as i64 - o.used as i64),
        ),
    ]);
    c.reply(Frame::Map(m));
}

/// MEMORY DOCTOR: Redis's report, from the checks herald can make (peak,
/// fragmentation against the process's RSS, client buffers).
pub fn memory_doctor(c: &mut Client, _args: &[Bytes]) {
    let o = overhead(c);
    let text = doctor_report(&o);
    c.reply(Frame::Verbatim("txt", Bytes::from(text)));
}

fn doctor_report(o: &Overhead) -> String {
    if o.used < 5 * 1024 * 1024 {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".into();
    }
    let big_peak = o.peak as f32 / o.used as f32 > 1.5;
    let high_frag = ratio(o.rss, o.used) > 1.4 && o.rss.saturating_sub(o.used) > 10 << 20;
    let big_client_buf = o.clients / o.clients_count.max(1) > 1024 * 200;
    let many_scripts = o.scripts > 1000;
    if !(big_peak || high_frag || big_client_buf || many_scripts) {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".into();
    }
    let mut s =
        String::from("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
    if big_peak {
        s.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
    }
    if high_frag {
        s.push_str(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"libc\".\n\n");
    }
    if big_client_buf {
        s.push_str(" * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n");
    }
    if many_scripts {
        s.push_str(" * Many scripts: There seem to be many cached scripts in this instance (more than 1000). This may be because scripts are generated and `EVAL`ed, instead of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. Unless `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming most of your memory.\n\n");
    }
    s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    s
}

/// MEMORY MALLOC-STATS: Redis's reply when not built with jemalloc (INFO
/// reports `mem_allocator:libc`).
pub fn memory_malloc_stats(c: &mut Client, _args: &[Bytes]) {
    c.reply(Frame::bulk(
        &b"Stats not supported for the current allocator"[..],
    ));
}

/// MEMORY PURGE: nothing to purge outside jemalloc, as in Redis.
pub fn memory_purge(c: &mut Client, _args: &[Bytes]) {
    c.reply(Frame::ok());
}

/// TOUCH key [key ...]: looks the keys up as a read does (access clock,
/// hits and misses), counting those that exist.
pub fn touch(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let n = args[1..].iter().filter(|k| db.get(k).is_some()).count();
    c.reply(Frame::Integer(n as i64));
}

/// MOVE key db: moves the key (its value, TTL, access clock and
/// representation: Redis moves the object itself) to another database,
/// unless a key of that name exists there.
pub fn move_(c: &mut Client, args: &[Bytes]) {
    let key = &args[1];
    let Some(target) = parse_i64(&args[2]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let Ok(target) = i32::try_from(target) else {
        return c.error(ERR_INT_RANGE);
    };
    let Some(target) = usize::try_from(target)
        .ok()
        .filter(|&t| t < c.shared.engine.store.len())
    else {
        return c.error("ERR DB index is out of range");
    };
    if target == c.db {
        return c.error("ERR source and destination objects are the same");
    }
    let src_db = c.db;
    let (lo, hi) = (src_db.min(target), src_db.max(target));
    let mut g_lo = take_db(c, lo);
    let mut g_hi = take_db(c, hi);
    let (from, to): (&mut Db, &mut Db) = if src_db == lo {
        (&mut g_lo, &mut g_hi)
    } else {
        (&mut g_hi, &mut g_lo)
    };
    let moved = move_key(from, to, key);
    if moved {
        // Logged as given, in the client's database.
        from.propagate(args.to_vec());
    }
    put_db(c, g_hi);
    put_db(c, g_lo);
    c.reply(Frame::Integer(moved as i64));
}

/// MOVE's work once both databases are locked; true if the key moved.
fn move_key(from: &mut Db, to: &mut Db, key: &[u8]) -> bool {
    from.expire_if_needed(key);
    to.expire_if_needed(key);
    if !from.contains(key) || to.contains(key) {
        return false;
    }
    let deadline = from.deadline(key);
    let meta = from.meta(key);
    let Some(v) = from.remove(key) else {
        return false;
    };
    to.set(key, v, false);
    if let Some(at) = deadline {
        to.set_deadline(key, at);
    }
    if let Some(m) = meta {
        to.set_meta(key, m);
    }
    from.modified(key);
    to.modified(key);
    from.notify(notify::GENERIC, "move_from", key);
    to.notify(notify::GENERIC, "move_to", key);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{encoding::StrEnc, Value};

    #[test]
    fn move_carries_value_ttl_and_representation() {
        let (mut a, mut b) = (Db::new(0), Db::new(1));
        a.set(b"k", Value::Str((&b"12"[..]).into()), false);
        a.set_str_enc(b"k", StrEnc::Raw);
        a.set_deadline(b"k", a.now + 60_000);
        assert!(move_key(&mut a, &mut b, b"k"));
        assert!(!a.contains(b"k"));
        let (v, _, enc) = b
            .inspect(b"k")
            .map(|(v, c, e)| (v.clone(), c, e))
            .unwrap_or((Value::Str(Default::default()), 0, StrEnc::Derived));
        assert_eq!(v.encoding(enc), "raw");
        assert!(b.deadline(b"k").is_some());
        // An existing key in the target stops the move.
        a.set(b"k", Value::Str((&b"x"[..]).into()), false);
        assert!(!move_key(&mut a, &mut b, b"k"));
        assert!(a.contains(b"k"));
    }

    #[test]
    fn doctor_says_empty_below_five_megabytes() {
        let o = Overhead {
            peak: 0,
            used: 1000,
            rss: 0,
            clients: 0,
            clients_count: 1,
            lua: 0,
            functions: 0,
            scripts: 0,
            dbs: Vec::new(),
            keys: 0,
            total: 0,
        };
        assert!(doctor_report(&o).starts_with("Hi Sam, this instance is empty"));
    }
}
