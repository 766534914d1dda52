//! Server commands: INFO, CONFIG, COMMAND, TIME, SHUTDOWN (DBSIZE,
//! FLUSHDB and FLUSHALL live with the keyspace commands in `keys`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::connection::REDIS_VERSION;
use super::{cmd, implemented_names, reply_help, Spec, ERR_SYNTAX};
use crate::catalog;
use crate::command::Client;
use crate::config::{Live, RewriteError};
use crate::protocol::Frame;

/// COMMAND subcommands (sorted by name).
pub static COMMAND_SUBCOMMANDS: &[Spec] = &[
    cmd("count", 2, command_count),
    cmd("docs", -2, command_docs),
    cmd("getkeys", -4, command_getkeys),
    cmd("getkeysandflags", -4, command_getkeysandflags),
    cmd("help", 2, command_help),
    cmd("info", -2, command_info),
    cmd("list", -2, command_list),
];

/// CONFIG subcommands (sorted by name).
pub static CONFIG_SUBCOMMANDS: &[Spec] = &[
    cmd("get", -3, config_get),
    cmd("help", 2, config_help),
    cmd("resetstat", 2, config_resetstat),
    cmd("rewrite", 2, config_rewrite),
    cmd("set", -4, config_set),
];

/// Bare COMMAND: the container runs this when called without a subcommand.
pub fn command_all(c: &mut Client, _args: &[Bytes]) {
    let f = with_names(c, catalog::command_reply);
    c.reply(f);
}

/// Runs `f` with the names of the commands clients can call: the
/// implemented ones less those `rename-command` removed (a renamed one
/// keeps its original name, as in Redis's COMMAND replies).
fn with_names<T>(c: &Client, f: impl FnOnce(&[&str]) -> T) -> T {
    let removed = c.shared.command_names.removed();
    let names = implemented_names();
    let names: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !removed.contains(&n.split('|').next().unwrap_or(n)))
        .collect();
    f(&names)
}

/// A command name given to COMMAND INFO / DOCS / GETKEYS read as the
/// dispatcher reads it (Redis looks them up in its renamed table): a
/// renamed command's new name gives its original name, an old or removed
/// name gives "" (no command).
fn as_dispatched(c: &Client, name: &[u8]) -> Bytes {
    use crate::config::rename::Resolved;
    let bar = name.iter().position(|&b| b == b'|').unwrap_or(name.len());
    match c.shared.command_names.resolve(&name[..bar]) {
        Resolved::Same(_) => Bytes::copy_from_slice(name),
        Resolved::Renamed(orig) => {
            let mut v = orig.as_bytes().to_vec();
            v.extend_from_slice(&name[bar..]);
            Bytes::from(v)
        }
        Resolved::Gone => Bytes::new(),
    }
}

fn command_count(c: &mut Client, _args: &[Bytes]) {
    let n = with_names(c, catalog::count);
    c.reply(Frame::Integer(n));
}

fn command_info(c: &mut Client, args: &[Bytes]) {
    let names: Vec<Bytes> = args[2..].iter().map(|a| as_dispatched(c, a)).collect();
    let f = with_names(c, |imp| {
        if names.is_empty() {
            catalog::command_reply(imp)
        } else {
            catalog::info(&names, imp)
        }
    });
    c.reply(f);
}

fn command_docs(c: &mut Client, args: &[Bytes]) {
    let names: Vec<Bytes> = args[2..].iter().map(|a| as_dispatched(c, a)).collect();
    let f = with_names(c, |imp| catalog::docs(&names, imp));
    c.reply(f);
}

fn command_list(c: &mut Client, args: &[Bytes]) {
    match with_names(c, |imp| catalog::list(&args[2..], imp)) {
        Ok(f) | Err(f) => c.reply(f),
    }
}

/// The command line GETKEYS analyses, its name read as dispatched.
fn getkeys_args(c: &Client, args: &[Bytes]) -> Vec<Bytes> {
    let mut line = args[2..].to_vec();
    if let Some(first) = line.first_mut() {
        if !c.shared.command_names.is_empty() {
            *first = as_dispatched(c, first);
        }
    }
    line
}

fn command_getkeys(c: &mut Client, args: &[Bytes]) {
    let line = getkeys_args(c, args);
    match with_names(c, |imp| catalog::getkeys_for(&line, imp)) {
        Ok(f) | Err(f) => c.reply(f),
    }
}

fn command_getkeysandflags(c: &mut Client, args: &[Bytes]) {
    let line = getkeys_args(c, args);
    match with_names(c, |imp| catalog::getkeysandflags_for(&line, imp)) {
        Ok(f) | Err(f) => c.reply(f),
    }
}

fn command_help(c: &mut Client, _args: &[Bytes]) {
    c.reply(catalog::help());
}

fn config_get(c: &mut Client, args: &[Bytes]) {
    let patterns: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
    let pairs = c.shared.config.read().get(&patterns);
    let items = pairs
        .into_iter()
        .map(|(k, v)| (Frame::bulk(k), Frame::bulk(v)))
        .collect();
    c.reply(Frame::Map(items));
}

fn config_set(c: &mut Client, args: &[Bytes]) {
    let words: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
    let local = c.handle.addr.is_local();
    let aof_before = c.shared.config.read().appendonly;
    let tls_before = tls_settings(&c.shared.config.read());
    let before = c.shared.config.read().clone();
    let result = c.shared.config.write().set_args(&words, local);
    match result {
        Ok(()) => {
            // A new port is listened on before CONFIG SET answers; if it
            // cannot be bound, everything set is rolled back (Redis's
            // updatePort). Port 0 stops accepting TCP connections.
            let port = c.shared.config.read().port;
            if port != before.port {
                let bound = if port == 0 {
                    Ok(Vec::new())
                } else {
                    crate::net::listener::bind_all(&c.shared.config.read())
                };
                match bound {
                    Ok(listeners) => {
                        *c.shared.rebind.lock() = Some(listeners);
                        c.shared.rebound.notify_one();
                        c.shared
                            .port
                            .store(port, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!("Unable to listen on port {port}: {e}");
                        *c.shared.config.write() = before;
                        return c.error("ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port");
                    }
                }
            }
            // New certificates or client-auth mode for the TLS port: all
            // or nothing, as Redis's applyTlsCfg.
            if tls_settings(&c.shared.config.read()) != tls_before {
                if let Err(e) = reload_tls(&c.shared) {
                    tracing::warn!("Unable to update TLS configuration: {e}");
                    *c.shared.config.write() = before;
                    let name = tls_option_named(&words).unwrap_or("tls-cert-file");
                    return c.error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - Unable to update TLS configuration. Check server logs."));
                }
            }
            c.shared.config_changed();
            // A lower maxmemory evicts at once, as Redis's updateMaxmemory
            // does, not only when the next command comes.
            if before.maxmemory != c.shared.config.read().maxmemory {
                super::evict(c);
            }
            // appendonly yes / no starts or stops the log.
            let aof_after = c.shared.config.read().appendonly;
            if aof_after != aof_before {
                if let Err(e) = crate::persist::set_appendonly(&c.shared, aof_after) {
                    tracing::warn!("Unable to turn on AOF: {e}");
                    c.shared.config.write().appendonly = aof_before;
                    return c.error("ERR CONFIG SET failed (possibly related to argument 'appendonly') - Unable to turn on AOF. Check server logs.");
                }
            }
            c.reply(Frame::ok())
        }
        Err(e) => c.error(e),
    }
}

/// The TLS options a running TLS port picks up on CONFIG SET.
fn tls_settings(cfg: &crate::config::Config) -> Vec<Option<String>> {
    TLS_RELOADED.iter().map(|n| cfg.value(n)).collect()
}

const TLS_RELOADED: [&str; 4] = [
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
];

/// The first TLS option among CONFIG SET's arguments (for the error text).
fn tls_option_named(words: &[&[u8]]) -> Option<&'static str> {
    words.chunks(2).find_map(|p| {
        TLS_RELOADED
            .into_iter()
            .find(|n| p[0].eq_ignore_ascii_case(n.as_bytes()))
    })
}

/// Rebuilds the TLS configuration from the current options; new TLS
/// connections use it (nothing to do while no TLS port is open).
fn reload_tls(shared: &crate::state::Shared) -> Result<(), String> {
    if shared.tls.read().is_none() {
        return Ok(());
    }
    let cfg = crate::net::transport::server_config(&shared.config.read())?;
    if let Some(cfg) = cfg {
        *shared.tls.write() = Some(cfg);
    }
    Ok(())
}

fn config_resetstat(c: &mut Client, _args: &[Bytes]) {
    c.shared.stats.reset();
    c.shared.observe.cmdstats.reset();
    c.shared.acl.denied.reset();
    c.shared.engine.lazyfree.reset_stats();
    super::info::reset_stats(c);
    c.reply(Frame::ok());
}

/// CONFIG REWRITE: the config file rewritten to hold the running
/// configuration (see `config::rewrite`), logged as Redis logs it.
fn config_rewrite(c: &mut Client, _args: &[Bytes]) {
    match rewrite_config_file(c, false) {
        Ok(()) => {
            tracing::warn!("CONFIG REWRITE executed with success.");
            c.reply(Frame::ok());
        }
        Err(RewriteError::NoFile) => c.error("ERR The server is running without a config file"),
        Err(RewriteError::Io(e)) => {
            tracing::warn!("CONFIG REWRITE failed: {e}");
            c.error(format!("ERR Rewriting config file: {e}"));
        }
    }
}

/// Rewrites the config file from the current configuration, ACL users and
/// replication state (`force_all` for DEBUG CONFIG-REWRITE-FORCE-ALL).
/// Rewrites run one at a time, as in single-threaded Redis, so that the
/// file a rewrite reads is the one the previous rewrite left.
pub(super) fn rewrite_config_file(c: &Client, force_all: bool) -> Result<(), RewriteError> {
    static ONE_AT_A_TIME: parking_lot::Mutex<()> = parking_lot::const_mutex(());
    let _one = ONE_AT_A_TIME.lock();
    let users = crate::acl::file::acl_file_text(&c.shared.acl)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let primary = c
        .shared
        .engine
        .repl
        .master
        .lock()
        .as_ref()
        .map(|m| (m.host.clone(), m.port));
    let live = Live { users, primary };
    let config = c.shared.config.read().clone();
    config.rewrite_file(&live, force_all)
}

fn config_help(c: &mut Client, _args: &[Bytes]) {
    reply_help(
        c,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
}

/// TIME: [unix seconds, microseconds] as bulk strings.
pub fn time(c: &mut Client, _args: &[Bytes]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    c.reply(Frame::Array(vec![
        Frame::bulk(now.as_secs().to_string()),
        Frame::bulk(now.subsec_micros().to_string()),
    ]));
}

/// INFO persistence, Redis 7.0's fields. The AOF or RDB file is loaded
/// before clients are accepted, so `loading` is always 0 when anyone can
/// ask. Background saves fork (`persist::fork`), but the copy-on-write
/// figures are not measured (Redis reads them from the child's
/// `/proc/<pid>/smaps`): those fields are 0.
fn persistence_info(c: &Client, s: &mut String) {
    let sh = &c.shared;
    // Redis's `server.dirty`: the changes since the last save's cut.
    let changes = super::info::db_sum(c, |d| d.dirty);
    let aof = &sh.engine.aof;
    let st = sh.persist.lock();
    // On from CONFIG SET appendonly yes, before the writer starts, too
    // (even while the rewrite that starts it is only scheduled).
    let on = st.aof_on();
    let rdb = &st.rdb;
    let cur_rewrite = st
        .rewrite_started
        .map_or(-1, |t| t.elapsed().as_secs() as i64);
    let _ = write!(
        s,
        "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\naof_last_bgrewrite_status:{}\r\n",
        changes.saturating_sub(rdb.dirty_at_save),
        rdb.in_progress as u8,
        rdb.last_save_unix,
        if rdb.last_bgsave_ok { "ok" } else { "err" },
        rdb.last_bgsave_secs,
        rdb.started.map_or(-1, |t| t.elapsed().as_secs() as i64),
        rdb.saves,
        rdb.keys_expired,
        rdb.keys_loaded,
        on as u8,
        st.rewrite_in_progress as u8,
        st.rewrite_scheduled as u8,
        st.rewrites,
        st.consecutive_failures,
        if aof.write_error().is_some() { "err" } else { "ok" },
        st.last_rewrite_secs,
        cur_rewrite,
        if st.last_rewrite_ok { "ok" } else { "err" },
    );
    if on {
        let _ = write!(
            s,
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:0\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n",
            aof.current_size(),
            aof.base_size.load(Relaxed),
            st.rewrite_scheduled as u8,
        );
    }
}

/// BGREWRITEAOF: compacts the AOF in the background (see `persist::rewrite`).
pub fn bgrewriteaof(c: &mut Client, _args: &[Bytes]) {
    match crate::persist::rewrite::start(&c.shared) {
        Ok(()) => c.reply(Frame::simple(
            "Background append only file rewriting started",
        )),
        Err(e) => c.error(e),
    }
}

/// SAVE: writes `dump.rdb` before replying (see `persist::save`).
pub fn save(c: &mut Client, _args: &[Bytes]) {
    match crate::persist::save::save(c.shared.as_ref()) {
        Ok(()) => c.reply(Frame::ok()),
        Err(e) if e.starts_with("ERR ") => c.error(e),
        Err(_) => c.error("ERR"),
    }
}

/// BGSAVE [SCHEDULE]: writes `dump.rdb` in the background.
pub fn bgsave(c: &mut Client, args: &[Bytes]) {
    if args.len() > 2 || (args.len() == 2 && !args[1].eq_ignore_ascii_case(b"schedule")) {
        return c.error(ERR_SYNTAX);
    }
    if c.tx.in_exec {
        // EXEC holds databases the snapshot must lock: start it once EXEC
        // has released them.
        if c.shared.persist.lock().rdb.in_progress {
            return c.error("ERR Background save already in progress");
        }
        let shared = c.shared.clone();
        std::thread::spawn(move || crate::persist::save::bgsave(&shared));
        return c.reply(Frame::simple("Background saving started"));
    }
    match crate::persist::save::bgsave(&c.shared) {
        Ok(()) => c.reply(Frame::simple("Background saving started")),
        Err(e) => c.error(e),
    }
}

/// LASTSAVE: the unix time of the last successful save (or start-up).
pub fn lastsave(c: &mut Client, _args: &[Bytes]) {
    let t = c.shared.persist.lock().rdb.last_save_unix;
    c.reply(Frame::Integer(t as i64));
}

/// Resident set size of this process in bytes (Linux), 0 if unknown.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Builds one INFO section, or None for an unknown name.
fn info_section(c: &Client, name: &str) -> Option<String> {
    let sh = &c.shared;
    let mut s = String::new();
    match name {
        "server" => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let up = sh.started.elapsed().as_secs();
            let cfg = sh.config.read();
            let _ = write!(
                s,
                "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:{}\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\n{}herald_version:{}\r\n",
                std::env::consts::OS,
                std::env::consts::ARCH,
                usize::BITS,
                std::process::id(),
                sh.run_id,
                sh.port.load(Relaxed),
                now.as_micros(),
                up,
                up / 86400,
                cfg.hz,
                cfg.hz,
                (now.as_secs() & ((1 << 24) - 1)),
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                cfg.config_file.as_deref().unwrap_or(""),
                super::shutdown::info_field(&sh.engine.repl),
                env!("CARGO_PKG_VERSION"),
            );
        }
        "clients" => super::info::clients(c, &mut s),
        "memory" => super::info::memory(c, &mut s),
        "persistence" => persistence_info(c, &mut s),
        "stats" => {
            super::info::stats(c, &mut s);
            // Failed AUTH and ACL denials (redis-server 7.2's names; 7.0
            // counts them only in ACL LOG).
            let d = &sh.acl.denied;
            let _ = write!(
                s,
                "acl_access_denied_auth:{}\r\nacl_access_denied_cmd:{}\r\nacl_access_denied_key:{}\r\nacl_access_denied_channel:{}\r\n",
                d.auth.load(Relaxed),
                d.cmd.load(Relaxed),
                d.key.load(Relaxed),
                d.channel.load(Relaxed),
            );
        }
        "replication" => {
            super::replication::info(c, &mut s);
        }
        "cpu" => super::info::cpu(&mut s),
        "modules" => s.push_str("# Modules\r\n"),
        "errorstats" => {
            s.push_str("# Errorstats\r\n");
            for (code, n) in sh.stats.errors.lock().iter() {
                let _ = write!(
                    s,
                    "errorstat_{}:count={n}\r\n",
                    String::from_utf8_lossy(code)
                );
            }
        }
        "commandstats" => {
            s.push_str("# Commandstats\r\n");
            let stats = &sh.observe.cmdstats;
            for (id, name) in super::flags::names().iter().enumerate() {
                if let Some(n) = stats.counts(id) {
                    let per_call = if n.calls == 0 {
                        0.0
                    } else {
                        n.usec as f32 / n.calls as f32
                    };
                    let _ = write!(
                        s,
                        "cmdstat_{name}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                        n.calls, n.usec, n.rejected, n.failed
                    );
                }
            }
        }
        "latencystats" => {
            s.push_str("# Latencystats\r\n");
            let stats = &sh.observe.cmdstats;
            for (id, name) in super::flags::names().iter().enumerate() {
                if let Some(line) = stats.percentiles_line(id) {
                    let _ = write!(s, "latency_percentiles_usec_{name}:{line}\r\n");
                }
            }
        }
        "cluster" => s.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "keyspace" => {
            s.push_str("# Keyspace\r\n");
            for db in 0..sh.engine.store.len() {
                let (n, expires, _) = super::keys::db_stats(c, db);
                if n > 0 {
                    let _ = write!(s, "db{db}:keys={n},expires={expires},avg_ttl=0\r\n");
                }
            }
        }
        _ => return None,
    }
    Some(s)
}

/// Every section, in the order Redis prints them, and whether INFO
/// without arguments (`default`) shows it: all but the per-command ones.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

/// The names of [`SECTIONS`] (only the default ones if `default_only`).
fn sections(default_only: bool) -> impl Iterator<Item = String> {
    SECTIONS
        .iter()
        .filter(move |(_, default)| *default || !default_only)
        .map(|(name, _)| name.to_string())
}

/// INFO [section ...].
pub fn info(c: &mut Client, args: &[Bytes]) {
    let mut wanted: Vec<String> = Vec::new();
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => wanted.extend(sections(true)),
            "all" | "everything" => wanted.extend(sections(false)),
            _ => wanted.push(a),
        }
    }
    if wanted.is_empty() {
        wanted.extend(sections(true));
    }
    // Sections come in Redis's order, whatever the order asked.
    let rank = |w: &String| {
        SECTIONS
            .iter()
            .position(|(s, _)| s == w)
            .unwrap_or(usize::MAX)
    };
    wanted.sort_by_key(rank);
    let mut seen = std::collections::HashSet::new();
    let mut parts = Vec::new();
    for w in &wanted {
        if seen.insert(w.clone()) {
            if let Some(text) = info_section(c, w) {
                parts.push(text);
            }
        }
    }
    let text = parts.join("\r\n");
    c.reply(Frame::Verbatim("txt", Bytes::from(text)));
}
