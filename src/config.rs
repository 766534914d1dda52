//! Server configuration: redis.conf-style files, `--name value` flags and
//! CONFIG GET / SET / REWRITE, all as redis-server 7.0 does them.
//!
//! herald accepts every option redis-server 7.0.15 has, so that a redis.conf
//! written for Redis 7 loads unchanged. The options live in a table
//! (`config/table.rs`, generated from a real redis-server by
//! `scripts/gen-config-table.py`) giving each one's type, bounds, default
//! and flags; `config/value.rs` parses and prints values with Redis's exact
//! rules and error texts.
//!
//! The options herald acts on have typed public fields in [`Config`]
//! (`port`, `bind`, `maxmemory`, ...): those fields are the live values, and
//! CONFIG GET / SET read and write them. A value whose effect herald lacks,
//! where that matters for safety or operations (`daemonize yes`,
//! `replicaof`, ...), is refused at start-up and by CONFIG SET
//! (`config/support.rs`); every other option is stored as parsed and shown
//! by CONFIG GET but changes nothing; [`Config::ignored_options_set`] names
//! the ones a file or flag set, so start-up can log them. docs/configuration.md
//! gives each option's status. `rename-command` is applied while loading
//! (`config/rename.rs`). CONFIG REWRITE writes the running configuration
//! back into the file (`config/rewrite.rs`).
//!
//! # herald's defaults versus Redis's
//!
//! [`Config::default`] is redis-server 7.0's configuration (except `bind`,
//! `io-threads` and `save`, which is empty), `appendonly no` included:
//! that is what embedders and tests get from `server::start`, so a test
//! never writes or loads files unless it asks. The `herald` binary, through
//! [`Config::from_args`], applies the production defaults on top:
//! `appendonly yes`, `dir ./herald-data` (created when the AOF is opened)
//! and Redis's `save 3600 1 300 100 60 10000`, each only if neither the
//! config file nor the command line set it. `appendfsync everysec` is
//! Redis's default too.
//!
//! How it fits: `main.rs` calls [`Config::from_args`] and reports a
//! [`ConfigError`] by printing it and exiting; the CONFIG command calls
//! [`Config::get`] and [`Config::set_args`] (or [`Config::set_with`] to
//! apply side effects such as re-binding, all or nothing).

mod def;
pub mod notify;
pub mod rename;
mod rewrite;
mod support;
mod table;
#[cfg(test)]
mod tests;
mod value;

use std::path::{Path, PathBuf};

use crate::protocol::parse::split_args;
use crate::util::glob::Pattern;
use def::{Def, Flag, Kind, Special};
use table::OPTIONS;
use value::{display, Context, Value};

pub use rewrite::{Live, RewriteError};
pub use value::{BufferLimit, ClientOutputBufferLimits};

/// The server configuration: typed fields for what herald acts on, plus
/// every other Redis option (kept for CONFIG GET).
///
/// Tests build one by changing the defaults:
///
/// ```
/// let c = herald::config::Config { port: 0, ..Default::default() };
/// assert_eq!(c.value("port").as_deref(), Some("0"));
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (`bind`), default `127.0.0.1 -::1`. As in
    /// Redis, a leading `-` marks an address that may be skipped if it is
    /// unavailable, and `*` / `::*` mean every IPv4 / IPv6 address.
    pub bind: Vec<String>,
    /// TCP port (`port`); 0 picks a free port (tests).
    pub port: u16,
    /// Largest bulk argument accepted (`proto-max-bulk-len`).
    pub proto_max_bulk_len: usize,
    /// Number of databases (`databases`).
    pub databases: usize,
    /// Worker threads serving connections (`io-threads`); 0 = one per core,
    /// which is what herald does unless `io-threads` is set (CONFIG GET then
    /// shows Redis's default, 1).
    pub io_threads: usize,
    /// Most clients connected at once (`maxclients`).
    pub maxclients: usize,
    /// Close a client idle this many seconds (`timeout`); 0 = never.
    pub timeout: u64,
    /// TCP keepalive period in seconds (`tcp-keepalive`); 0 = off.
    pub tcp_keepalive: u64,
    /// Listen backlog (`tcp-backlog`).
    pub tcp_backlog: u32,
    /// Largest unparsed input kept for one client (`client-query-buffer-limit`).
    pub client_query_buffer_limit: usize,
    /// Output buffer limits per client class (`client-output-buffer-limit`).
    pub client_output_buffer_limit: ClientOutputBufferLimits,
    /// Memory limit in bytes (`maxmemory`); 0 = none.
    pub maxmemory: u64,
    /// What to do at the memory limit (`maxmemory-policy`).
    pub maxmemory_policy: MaxmemoryPolicy,
    /// Keyspace notification classes as configured (`notify-keyspace-events`,
    /// e.g. `KEA`; checked, not yet decoded). CONFIG GET shows Redis's
    /// canonical spelling of it.
    pub notify_keyspace_events: String,
    /// Password of the default user (`requirepass`); empty = none.
    pub requirepass: String,
    /// Log verbosity (`loglevel`).
    pub loglevel: LogLevel,
    /// Log file (`logfile`); empty = standard output.
    pub logfile: String,
    /// Working directory for files herald writes (`dir`), absolute.
    pub dir: PathBuf,
    /// Append-only file persistence on (`appendonly`).
    pub appendonly: bool,
    /// When the append-only file is fsynced (`appendfsync`).
    pub appendfsync: AppendFsync,
    /// Background task frequency per second (`hz`), kept within 1..=500 as
    /// Redis does.
    pub hz: u32,
    /// `pubsub-coalesce-us` (herald's own): how long, at most, a published
    /// message waits for more to join its write while the worker is busy
    /// (`net::delivery`); 0 = never.
    pub pubsub_coalesce_us: u64,
    /// The config file the server was started with, made absolute (for
    /// CONFIG REWRITE and INFO).
    pub config_file: Option<String>,
    /// `rename-command old new` lines, in order (an empty new name removes
    /// the command), as written.
    pub rename_commands: Vec<(String, String)>,
    /// The names commands answer to once those lines are applied (checked
    /// as Redis checks them while loading; see [`rename`]).
    pub command_names: rename::CommandNames,
    /// Every other option's value, and what the file and command line set
    /// (read them with [`Config::value`] and [`Config::ignored_options_set`]).
    pub others: OtherOptions,
}

/// The options of a [`Config`] without a typed field (opaque). It is a
/// public field so that `Config { port: 0, ..Default::default() }` works.
#[derive(Debug, Clone)]
pub struct OtherOptions {
    /// Values by table index (the slots of typed options hold their
    /// defaults, unused).
    values: Vec<Value>,
    /// Option and directive names set by the file or the command line.
    explicit: Vec<String>,
    /// `user <name> <rule> ...` lines, split, in order (see `acl`).
    users: Vec<Vec<Vec<u8>>>,
}

impl Default for OtherOptions {
    /// Redis's defaults.
    fn default() -> Self {
        let cwd = std::env::current_dir().unwrap_or_default();
        OtherOptions {
            values: OPTIONS.iter().map(|d| default_value(d, &cwd)).collect(),
            explicit: Vec::new(),
            users: Vec::new(),
        }
    }
}

/// `loglevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
}

impl LogLevel {
    /// The name Redis uses.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "verbose",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
        }
    }

    fn from_name(s: &str) -> Option<LogLevel> {
        [
            LogLevel::Debug,
            LogLevel::Verbose,
            LogLevel::Notice,
            LogLevel::Warning,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxmemoryPolicy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    NoEviction,
}

impl MaxmemoryPolicy {
    /// The name Redis uses.
    pub fn as_str(self) -> &'static str {
        match self {
            MaxmemoryPolicy::VolatileLru => "volatile-lru",
            MaxmemoryPolicy::VolatileLfu => "volatile-lfu",
            MaxmemoryPolicy::VolatileRandom => "volatile-random",
            MaxmemoryPolicy::VolatileTtl => "volatile-ttl",
            MaxmemoryPolicy::AllkeysLru => "allkeys-lru",
            MaxmemoryPolicy::AllkeysLfu => "allkeys-lfu",
            MaxmemoryPolicy::AllkeysRandom => "allkeys-random",
            MaxmemoryPolicy::NoEviction => "noeviction",
        }
    }

    fn from_name(s: &str) -> Option<MaxmemoryPolicy> {
        use MaxmemoryPolicy::*;
        [
            VolatileLru,
            VolatileLfu,
            VolatileRandom,
            VolatileTtl,
            AllkeysLru,
            AllkeysLfu,
            AllkeysRandom,
            NoEviction,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFsync {
    Always,
    Everysec,
    No,
}

impl AppendFsync {
    /// The name Redis uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::Everysec => "everysec",
            AppendFsync::No => "no",
        }
    }

    fn from_name(s: &str) -> Option<AppendFsync> {
        [AppendFsync::Always, AppendFsync::Everysec, AppendFsync::No]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

impl Default for Config {
    /// Redis 7.0's defaults, except `bind` (`127.0.0.1 -::1`, as Debian's
    /// redis.conf has it) and `io-threads` (one worker per core).
    fn default() -> Self {
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut c = Config {
            bind: Vec::new(),
            port: 6379,
            proto_max_bulk_len: 512 * 1024 * 1024,
            databases: 16,
            io_threads: 0,
            maxclients: 10000,
            timeout: 0,
            tcp_keepalive: 300,
            tcp_backlog: 511,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            client_output_buffer_limit: ClientOutputBufferLimits::default(),
            maxmemory: 0,
            maxmemory_policy: MaxmemoryPolicy::NoEviction,
            notify_keyspace_events: String::new(),
            requirepass: String::new(),
            loglevel: LogLevel::Notice,
            logfile: String::new(),
            dir: cwd.clone(),
            appendonly: false,
            appendfsync: AppendFsync::Everysec,
            hz: 10,
            pubsub_coalesce_us: 200,
            config_file: None,
            rename_commands: Vec::new(),
            command_names: rename::CommandNames::default(),
            others: OtherOptions::default(),
        };
        for (def, v) in OPTIONS.iter().zip(c.others.values.clone()) {
            c.typed_set(def, v);
        }
        c.bind = vec!["127.0.0.1".into(), "-::1".into()];
        c.io_threads = 0;
        c.set_save_points(Vec::new());
        c
    }
}

/// redis-server's default `save` points, which the `herald` binary keeps.
const REDIS_SAVE_POINTS: [(i64, i32); 3] = [(3600, 1), (300, 100), (60, 10000)];

/// An option's default as a [`Value`] (the table's text, parsed).
fn default_value(def: &Def, cwd: &Path) -> Value {
    if let Kind::Special(Special::Dir) = def.kind {
        return Value::Str(cwd.to_string_lossy().into_owned());
    }
    let text = def.default.as_bytes();
    let args = if def.multi_arg() {
        value::split_spaces(text)
    } else {
        vec![text]
    };
    let none = Value::Str(String::new());
    let cx = Context {
        old: &none,
        dir: cwd,
        save_appends: false,
        cluster_enabled: false,
        unixsocket: "",
        config_file: "",
    };
    // The table comes from redis-server's own output, so this parses (a
    // unit test checks every default); keep the text if it ever does not.
    value::parse(def, &args, &cx).unwrap_or_else(|_| Value::Str(def.default.to_string()))
}

/// The file `logfile` names, or `None` for standard output (""). A
/// relative path is taken from `dir`, where redis-server's working
/// directory is once its configuration is read.
pub fn log_path(c: &Config) -> Option<PathBuf> {
    if c.logfile.is_empty() {
        return None;
    }
    Some(c.dir.join(&c.logfile))
}

/// A start-up configuration problem, naming the option and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where config lines come from, for error messages.
enum Source<'a> {
    File(&'a Path),
    CommandLine,
}

/// A failure on one config line.
enum LineError {
    /// Redis's reason text; the caller adds file, line and text.
    Msg(String),
    /// An error already complete (inside an included file).
    Done(ConfigError),
}

impl From<String> for LineError {
    fn from(s: String) -> Self {
        LineError::Msg(s)
    }
}

impl From<&str> for LineError {
    fn from(s: &str) -> Self {
        LineError::Msg(s.to_string())
    }
}

/// State kept across the files and flags of one start-up.
#[derive(Default)]
struct LoadState {
    /// A `save` line was read: later ones add save points (as Redis).
    save_loaded: bool,
    /// Include nesting depth.
    depth: usize,
    /// The `rename-command` lines applied so far.
    renamer: rename::Renamer,
}

/// How deep `include` may nest (Redis has no limit and would recurse forever).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Directives Redis 7.0 still accepts and ignores (with one argument).
const DEPRECATED: &[&str] = &[
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
];

fn fatal_header() -> String {
    format!(
        "*** FATAL CONFIG FILE ERROR (herald {}) ***\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// The table index of option `name` (case-insensitive), and whether `name`
/// is its alias.
fn lookup(name: &[u8]) -> Option<(usize, bool)> {
    OPTIONS.iter().enumerate().find_map(|(i, d)| {
        if d.name.as_bytes().eq_ignore_ascii_case(name) {
            Some((i, false))
        } else if d
            .alias
            .is_some_and(|a| a.as_bytes().eq_ignore_ascii_case(name))
        {
            Some((i, true))
        } else {
            None
        }
    })
}

/// The name of a table entry: the option's, or its alias.
fn entry_name(idx: usize, alias: bool) -> &'static str {
    let d = &OPTIONS[idx];
    match (alias, d.alias) {
        (true, Some(a)) => a,
        _ => d.name,
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ERR CONFIG SET failed ...` as Redis words it.
fn set_failed(name: &str, why: &str) -> String {
    format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
}

/// `text` without leading and trailing bytes from `set` (Redis's `sdstrim`).
fn trim<'a>(mut text: &'a [u8], set: &[u8]) -> &'a [u8] {
    while let [first, rest @ ..] = text {
        if !set.contains(first) {
            break;
        }
        text = rest;
    }
    while let [rest @ .., last] = text {
        if !set.contains(last) {
            break;
        }
        text = rest;
    }
    text
}

impl Config {
    /// Builds the configuration from the command line (without the program
    /// name) as redis-server does: an optional config file path first (any
    /// first argument not starting with `-`), then `--name value ...`
    /// options, applied after the file, so later settings win. A `--name`
    /// starts a new option and the words after it are its arguments.
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        let mut st = LoadState::default();
        let (file, rest, offset) = match args.first() {
            Some(first) if !first.starts_with('-') => (Some(first), &args[1..], 1),
            _ => (None, args, 0),
        };
        let options = cli_options(rest, offset, args.len())?;
        if let Some(file) = file {
            let path = c.dir.join(file);
            c.config_file = Some(path.to_string_lossy().into_owned());
            c.load_file(&path, &mut st)?;
        }
        c.load_text(options.as_bytes(), &Source::CommandLine, &mut st)?;
        c.command_names = st.renamer.names();
        c.apply_binary_defaults();
        c.check_loaded()?;
        Ok(c)
    }

    /// The `herald` binary's defaults that differ from Redis's (see the
    /// module header): persistence on, in `./herald-data`.
    fn apply_binary_defaults(&mut self) {
        let set = |n: &str| self.others.explicit.iter().any(|e| e == n);
        let (appendonly, dir, save) = (set("appendonly"), set("dir"), set("save"));
        if !save {
            self.set_save_points(REDIS_SAVE_POINTS.to_vec());
        }
        if !appendonly {
            self.appendonly = true;
        }
        if !dir {
            self.dir = self.dir.join("herald-data");
        }
    }

    /// Replaces the `save` points (defaults that differ between embedders
    /// and the binary).
    fn set_save_points(&mut self, points: Vec<(i64, i32)>) {
        if let Some((idx, _)) = lookup(b"save") {
            self.others.values[idx] = Value::Save(points);
        }
    }

    /// Builds the configuration from the text of a config file (for tests
    /// and embedding): Redis's defaults, then `text`'s lines.
    pub fn from_config_text(text: &str) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        let mut st = LoadState::default();
        c.load_text(text.as_bytes(), &Source::File(Path::new("(text)")), &mut st)?;
        c.command_names = st.renamer.names();
        c.check_loaded()?;
        Ok(c)
    }

    /// CONFIG GET: (name, value) pairs for every option matching one of the
    /// glob `patterns` (case-insensitive; each option once; an alias is an
    /// option of its own; hidden options only by exact name), sorted by name.
    /// A name given without wildcards is answered under that spelling, as
    /// Redis does.
    pub fn get(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut found: Vec<(String, usize)> = Vec::new();
        let seen = |found: &[(String, usize)], n: &[u8]| {
            found
                .iter()
                .any(|(k, _)| k.as_bytes().eq_ignore_ascii_case(n))
        };
        for &pat in patterns {
            if !pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
                if !seen(&found, pat) {
                    if let Some((idx, _)) = lookup(pat) {
                        found.push((lossy(pat), idx));
                    }
                }
                continue;
            }
            let glob = Pattern::new_nocase(pat);
            for (idx, def) in OPTIONS.iter().enumerate() {
                if def.has(Flag::HIDDEN) {
                    continue;
                }
                for name in [Some(def.name), def.alias].into_iter().flatten() {
                    if !seen(&found, name.as_bytes()) && glob.matches(name.as_bytes()) {
                        found.push((name.to_string(), idx));
                    }
                }
            }
        }
        found.sort_by_cached_key(|(k, _)| k.to_ascii_lowercase());
        found
            .into_iter()
            .map(|(k, idx)| (k, display(&OPTIONS[idx], &self.value_of(idx))))
            .collect()
    }

    /// The current value of one option (name or alias) as CONFIG GET shows
    /// it, or `None` for an unknown name.
    pub fn value(&self, name: &str) -> Option<String> {
        lookup(name.as_bytes()).map(|(idx, _)| display(&OPTIONS[idx], &self.value_of(idx)))
    }

    /// Whether the option's value must be kept out of logs, the slow log and
    /// MONITOR (`requirepass`, `masterauth`, `masteruser`), as Redis redacts.
    pub fn is_sensitive(name: &[u8]) -> bool {
        lookup(name).is_some_and(|(idx, _)| OPTIONS[idx].has(Flag::SENSITIVE))
    }

    /// CONFIG SET with (name, value) pairs, applied all or nothing.
    /// On failure returns the error text Redis sends (without the leading `-`).
    /// Protected options (`dir`, `dbfilename`) are refused unless
    /// `enable-protected-configs` is `yes`; see [`Config::set_with`].
    pub fn set(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
        self.set_with(pairs, false, |_, _| Ok(()))
    }

    /// CONFIG SET from the command's arguments after `CONFIG SET`, with
    /// Redis's errors for a wrong argument count. `local_client` tells
    /// whether the client is on a local connection (for
    /// `enable-protected-configs local`).
    pub fn set_args(&mut self, args: &[&[u8]], local_client: bool) -> Result<(), String> {
        if args.len() < 2 {
            return Err("ERR wrong number of arguments for 'config|set' command".into());
        }
        if args.len() % 2 == 1 {
            return Err("ERR syntax error".into());
        }
        let pairs: Vec<(&[u8], &[u8])> = args.chunks(2).map(|p| (p[0], p[1])).collect();
        self.set_with(&pairs, local_client, |_, _| Ok(()))
    }

    /// CONFIG SET, all or nothing, with a hook to apply side effects.
    ///
    /// Every pair is checked and set on a copy of the configuration; then
    /// `apply(old, new)` runs (e.g. to listen on a new `port` or `bind`).
    /// If it fails with `(option name, reason)` nothing changes and the error
    /// reads as Redis's (`... (possibly related to argument 'port') - Unable
    /// to listen on this port. Check server logs.`); otherwise the new
    /// configuration replaces this one.
    pub fn set_with<F>(
        &mut self,
        pairs: &[(&[u8], &[u8])],
        local_client: bool,
        apply: F,
    ) -> Result<(), String>
    where
        F: FnOnce(&Config, &Config) -> Result<(), (String, String)>,
    {
        // Names first: the first bad one decides the error, as in Redis.
        let mut targets: Vec<(usize, bool)> = Vec::with_capacity(pairs.len());
        for &(name, _) in pairs {
            let Some((idx, alias)) = lookup(name) else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                    lossy(name)
                ));
            };
            let def = &OPTIONS[idx];
            let why = if def.has(Flag::IMMUTABLE) {
                Some("can't set immutable config")
            } else if def.has(Flag::PROTECTED) && !self.protected_allowed(local_client) {
                Some("can't set protected config")
            } else if targets.contains(&(idx, alias)) {
                Some("duplicate parameter")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(set_failed(&lossy(name), why));
            }
            targets.push((idx, alias));
        }
        let mut new = self.clone();
        for (&(idx, alias), &(_, val)) in targets.iter().zip(pairs) {
            let args = if OPTIONS[idx].multi_arg() {
                value::split_spaces(val)
            } else {
                vec![val]
            };
            new.set_option(idx, &args, false)
                .and_then(|()| new.refuse_unsupported(idx, alias))
                .map_err(|e| set_failed(entry_name(idx, alias), &e))?;
            new.after_config_set(idx);
        }
        apply(self, &new).map_err(|(name, why)| set_failed(&name, &why))?;
        *self = new;
        Ok(())
    }

    /// The `user` lines of the config file and command line, each split
    /// into words (`user`, the name, the rules), for the ACL subsystem.
    pub fn user_lines(&self) -> &[Vec<Vec<u8>>] {
        &self.others.users
    }

    /// The configured `aclfile`, resolved against `dir` (Redis has chdir'ed
    /// there by the time it reads it), with its name as configured; `None`
    /// when not set.
    pub fn acl_file(&self) -> Option<(PathBuf, String)> {
        let name = self.value("aclfile").unwrap_or_default();
        if name.is_empty() {
            return None;
        }
        Some((self.dir.join(&name), name))
    }

    /// Names of the options and directives set in the config file or on the
    /// command line that herald accepts but does not act on (for a start-up
    /// log line "accepted but ignored: ..."), in the order first set.
    pub fn ignored_options_set(&self) -> Vec<String> {
        self.others
            .explicit
            .iter()
            .filter(|n| lookup(n.as_bytes()).is_none_or(|(idx, _)| !OPTIONS[idx].has(Flag::HERALD)))
            .cloned()
            .collect()
    }

    /// What Redis's apply functions change in a value CONFIG SET just set.
    fn after_config_set(&mut self, idx: usize) {
        // resizeReplicationBacklog: at least CONFIG_REPL_BACKLOG_MIN_SIZE.
        if OPTIONS[idx].name == "repl-backlog-size" {
            if let Some(Value::Num(n)) = self.others.values.get_mut(idx) {
                *n = (*n).max(16 * 1024);
            }
        }
    }

    fn protected_allowed(&self, local_client: bool) -> bool {
        self.allows("enable-protected-configs", local_client)
    }

    /// Whether a `no` / `yes` / `local` option (`enable-debug-command`,
    /// `enable-module-command`, `enable-protected-configs`) lets a client
    /// (from the loopback interface if `local_client`) do what it guards,
    /// as Redis's allowProtectedAction.
    pub fn allows(&self, option: &str, local_client: bool) -> bool {
        match self.raw(option) {
            Some(Value::Enum(1)) => true,
            Some(Value::Enum(2)) => local_client,
            _ => false,
        }
    }

    /// The stored value of an option without a typed field.
    fn raw(&self, name: &str) -> Option<&Value> {
        lookup(name.as_bytes()).and_then(|(idx, _)| self.others.values.get(idx))
    }

    /// The current value of option `idx`.
    fn value_of(&self, idx: usize) -> Value {
        let def = &OPTIONS[idx];
        self.typed_get(def)
            .or_else(|| self.others.values.get(idx).cloned())
            .unwrap_or(Value::Str(String::new()))
    }

    /// Parses `args` for option `idx` and stores the result.
    fn set_option(&mut self, idx: usize, args: &[&[u8]], save_appends: bool) -> Result<(), String> {
        let def = &OPTIONS[idx];
        let old = self.value_of(idx);
        let str_of = |name: &str| match self.raw(name) {
            Some(Value::Str(s)) => s.as_str(),
            _ => "",
        };
        let config_file = self.config_file.clone().unwrap_or_default();
        let cx = Context {
            old: &old,
            dir: &self.dir,
            save_appends,
            cluster_enabled: matches!(self.raw("cluster-enabled"), Some(Value::Bool(true))),
            unixsocket: str_of("unixsocket"),
            config_file: &config_file,
        };
        let v = value::parse(def, args, &cx)?;
        if !self.typed_set(def, v.clone()) {
            if let Some(slot) = self.others.values.get_mut(idx) {
                *slot = v;
            }
        }
        Ok(())
    }

    /// The value of a typed option, from its field.
    fn typed_get(&self, def: &Def) -> Option<Value> {
        let num = |n: u64| Value::Num(n.into());
        let enum_id = |name: &str| match def.kind {
            Kind::Enum(values) => values
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(Value::Enum(u32::MAX), |&(_, id)| Value::Enum(id)),
            _ => Value::Enum(u32::MAX),
        };
        Some(match def.name {
            "bind" => Value::Bind(self.bind.clone()),
            "port" => num(self.port.into()),
            "proto-max-bulk-len" => num(self.proto_max_bulk_len as u64),
            "databases" => num(self.databases as u64),
            "io-threads" => num(self.io_threads.max(1) as u64),
            "maxclients" => num(self.maxclients as u64),
            "timeout" => num(self.timeout),
            "tcp-keepalive" => num(self.tcp_keepalive),
            "tcp-backlog" => num(self.tcp_backlog.into()),
            "client-query-buffer-limit" => num(self.client_query_buffer_limit as u64),
            "client-output-buffer-limit" => Value::Obuf(self.client_output_buffer_limit),
            "maxmemory" => num(self.maxmemory),
            "maxmemory-policy" => enum_id(self.maxmemory_policy.as_str()),
            "notify-keyspace-events" => Value::Notify(self.notify_keyspace_events.clone()),
            "requirepass" => Value::Str(self.requirepass.clone()),
            "loglevel" => enum_id(self.loglevel.as_str()),
            "logfile" => Value::Str(self.logfile.clone()),
            "dir" => Value::Str(self.dir.to_string_lossy().into_owned()),
            "appendonly" => Value::Bool(self.appendonly),
            "appendfsync" => enum_id(self.appendfsync.as_str()),
            "hz" => num(self.hz.into()),
            "pubsub-coalesce-us" => num(self.pubsub_coalesce_us),
            _ => return None,
        })
    }

    /// Stores `v` into the typed field of option `def`; false if it has none.
    fn typed_set(&mut self, def: &Def, v: Value) -> bool {
        fn conv<T: TryFrom<i128>>(n: i128, old: T) -> T {
            T::try_from(n).unwrap_or(old)
        }
        let name = match (&v, def.kind) {
            (Value::Enum(id), Kind::Enum(values)) => value::enum_name(values, *id),
            _ => "",
        };
        match (def.name, v) {
            ("bind", Value::Bind(b)) => self.bind = b,
            ("port", Value::Num(n)) => self.port = conv(n, self.port),
            ("proto-max-bulk-len", Value::Num(n)) => {
                self.proto_max_bulk_len = conv(n, self.proto_max_bulk_len)
            }
            ("databases", Value::Num(n)) => self.databases = conv(n, self.databases),
            ("io-threads", Value::Num(n)) => self.io_threads = conv(n, self.io_threads),
            ("maxclients", Value::Num(n)) => self.maxclients = conv(n, self.maxclients),
            ("timeout", Value::Num(n)) => self.timeout = conv(n, self.timeout),
            ("tcp-keepalive", Value::Num(n)) => self.tcp_keepalive = conv(n, self.tcp_keepalive),
            ("tcp-backlog", Value::Num(n)) => self.tcp_backlog = conv(n, self.tcp_backlog),
            ("client-query-buffer-limit", Value::Num(n)) => {
                self.client_query_buffer_limit = conv(n, self.client_query_buffer_limit)
            }
            ("client-output-buffer-limit", Value::Obuf(o)) => self.client_output_buffer_limit = o,
            ("maxmemory", Value::Num(n)) => self.maxmemory = conv(n, self.maxmemory),
            ("maxmemory-policy", Value::Enum(_)) => {
                self.maxmemory_policy =
                    MaxmemoryPolicy::from_name(name).unwrap_or(self.maxmemory_policy)
            }
            ("notify-keyspace-events", Value::Notify(s)) => self.notify_keyspace_events = s,
            ("requirepass", Value::Str(s)) => self.requirepass = s,
            ("loglevel", Value::Enum(_)) => {
                self.loglevel = LogLevel::from_name(name).unwrap_or(self.loglevel)
            }
            ("logfile", Value::Str(s)) => self.logfile = s,
            ("dir", Value::Str(s)) => self.dir = PathBuf::from(s),
            ("appendonly", Value::Bool(b)) => self.appendonly = b,
            ("appendfsync", Value::Enum(_)) => {
                self.appendfsync = AppendFsync::from_name(name).unwrap_or(self.appendfsync)
            }
            // Redis keeps hz within CONFIG_MIN_HZ..=CONFIG_MAX_HZ.
            ("hz", Value::Num(n)) => self.hz = n.clamp(1, 500) as u32,
            ("pubsub-coalesce-us", Value::Num(n)) => {
                self.pubsub_coalesce_us = conv(n, self.pubsub_coalesce_us)
            }
            _ => return false,
        }
        true
    }

    /// Records that a file or flag set `name`.
    fn note_explicit(&mut self, name: &str) {
        if !self.others.explicit.iter().any(|n| n == name) {
            self.others.explicit.push(name.to_string());
        }
    }

    /// Loads a config file (Redis's `loadServerConfig`).
    fn load_file(&mut self, path: &Path, st: &mut LoadState) -> Result<(), ConfigError> {
        let text = std::fs::read(path).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.split(" (os error").next().unwrap_or(&msg);
            ConfigError(format!(
                "Fatal error, can't open config file '{}': {msg}",
                path.display()
            ))
        })?;
        self.load_text(&text, &Source::File(path), st)
    }

    /// Loads config lines (Redis's `loadServerConfigFromString`).
    fn load_text(
        &mut self,
        text: &[u8],
        src: &Source,
        st: &mut LoadState,
    ) -> Result<(), ConfigError> {
        for (i, raw) in text.split(|&c| c == b'\n').enumerate() {
            let line = trim(raw, b" \t\r\n");
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            let fail = |msg: &str| {
                let place = match src {
                    Source::File(p) => format!(
                        "Reading the configuration file '{}', at line {}",
                        p.display(),
                        i + 1
                    ),
                    Source::CommandLine => {
                        format!("Reading the command line options, at option {}", i + 1)
                    }
                };
                ConfigError(format!(
                    "{}{place}\n>>> '{}'\n{msg}",
                    fatal_header(),
                    String::from_utf8_lossy(line)
                ))
            };
            let Some(argv) = split_args(line) else {
                return Err(fail("Unbalanced quotes in configuration line"));
            };
            if argv.is_empty() {
                continue;
            }
            match self.load_line(&argv, st) {
                Ok(()) => {}
                Err(LineError::Msg(m)) => return Err(fail(&m)),
                Err(LineError::Done(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// Applies one split config line.
    fn load_line(&mut self, argv: &[Vec<u8>], st: &mut LoadState) -> Result<(), LineError> {
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        let argc = argv.len();
        if let Some((idx, alias)) = lookup(name.as_bytes()) {
            let def = &OPTIONS[idx];
            if !def.multi_arg() && argc != 2 {
                return Err("wrong number of arguments".into());
            }
            // As Redis: a multi-argument option given one non-empty argument
            // (`--save "900 1"`, `--client-output-buffer-limit "pubsub 32mb
            // 8mb 60"`) has it split like a config line.
            let split;
            let argv = if def.multi_arg() && argc == 2 && !argv[1].is_empty() {
                split = split_args(&argv[1])
                    .ok_or_else(|| LineError::from("Unbalanced quotes in configuration line"))?;
                let mut v = vec![argv[0].clone()];
                v.extend(split);
                v
            } else {
                argv.to_vec()
            };
            let args: Vec<&[u8]> = argv[1..].iter().map(Vec::as_slice).collect();
            let save_appends = matches!(def.kind, Kind::Special(Special::Save))
                && std::mem::replace(&mut st.save_loaded, true);
            self.set_option(idx, &args, save_appends)?;
            self.refuse_unsupported(idx, alias)?;
            self.note_explicit(entry_name(idx, alias));
            return Ok(());
        }
        if argc == 2 && DEPRECATED.contains(&name.as_str()) {
            self.note_explicit(&name);
            return Ok(());
        }
        match name.as_str() {
            "include" if argc == 2 => self.include(&argv[1], st).map_err(LineError::Done),
            "rename-command" if argc == 3 => {
                st.renamer.rename(&argv[1], &argv[2])?;
                self.rename_commands
                    .push((lossy(&argv[1]), lossy(&argv[2])));
                Ok(())
            }
            "user" if argc >= 2 => {
                crate::acl::file::validate_user_line(argv, &self.others.users)?;
                self.others.users.push(argv.to_vec());
                Ok(())
            }
            "loadmodule" if argc >= 2 => Err("herald cannot load Redis modules".into()),
            _ if name.contains('.') => {
                if argc < 2 {
                    return Err("Module config specified without value".into());
                }
                self.note_explicit(&name);
                Ok(())
            }
            // Redis runs as Sentinel when started with `--sentinel`; herald
            // has no Sentinel mode.
            "sentinel" if argc == 1 => Err("Sentinel mode is not supported by herald".into()),
            "sentinel" => Err("sentinel directive while not in sentinel mode".into()),
            _ => Err("Bad directive or wrong number of arguments".into()),
        }
    }

    /// `include path`: loads another file (a glob pattern loads every match,
    /// sorted, and none is fine). A relative path is taken from `dir`, which
    /// is where Redis's working directory is at that point.
    fn include(&mut self, path: &[u8], st: &mut LoadState) -> Result<(), ConfigError> {
        if st.depth >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError(format!(
                "{}include nesting too deep (more than {MAX_INCLUDE_DEPTH} levels) at '{}'",
                fatal_header(),
                lossy(path)
            )));
        }
        let pattern = self.dir.join(lossy(path));
        let files = if path.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
            value::expand_path_glob(&pattern.to_string_lossy())
        } else {
            vec![pattern]
        };
        st.depth += 1;
        let result = files.iter().try_for_each(|f| self.load_file(f, st));
        st.depth -= 1;
        result
    }

    /// Refuses a value whose effect herald lacks (see `support`).
    fn refuse_unsupported(&self, idx: usize, alias: bool) -> Result<(), String> {
        let def = &OPTIONS[idx];
        let shown = display(def, &self.value_of(idx));
        match support::refusal(def.name, &shown) {
            Some(why) => Err(support::refused_text(entry_name(idx, alias), &shown, why)),
            None => Ok(()),
        }
    }

    /// Checks made once everything is read (Redis's sanity checks).
    fn check_loaded(&self) -> Result<(), ConfigError> {
        let module_config = self.others.explicit.iter().any(|n| n.contains('.'));
        if module_config && !self.others.explicit.iter().any(|n| n == "loadmodule") {
            return Err(ConfigError(format!(
                "{}Module Configuration detected without loadmodule directive or no ApplyConfig \
                 call: aborting",
                fatal_header()
            )));
        }
        let cluster = matches!(self.raw("cluster-enabled"), Some(Value::Bool(true)));
        let replica = matches!(self.raw("replicaof"), Some(Value::ReplicaOf(Some(_))));
        if cluster && replica {
            return Err(ConfigError(format!(
                "{}replicaof directive not allowed in cluster mode",
                fatal_header()
            )));
        }
        Ok(())
    }
}

impl Config {
    /// The primary `replicaof` names (`None`: this server is a primary).
    pub fn replica_of(&self) -> Option<(String, u16)> {
        match self.raw("replicaof") {
            Some(Value::ReplicaOf(Some((host, port)))) => {
                Some((host.clone(), u16::try_from(*port).ok()?))
            }
            _ => None,
        }
    }
}

/// Turns `--name value ...` arguments into config lines, exactly as
/// redis-server's `main` does (values quoted with `sdscatrepr`). `offset` is
/// the index of `args[0]` among all `total` arguments.
fn cli_options(args: &[String], offset: usize, total: usize) -> Result<String, ConfigError> {
    let mut options = String::new();
    let mut handled_last = true;
    for (k, a) in args.iter().enumerate() {
        let j = offset + k;
        if a == "-" && (j == 0 || j + 1 == total) {
            return Err(ConfigError(
                "Reading the configuration from standard input ('-') is not supported".into(),
            ));
        }
        if handled_last && a.starts_with("--") {
            if !options.is_empty() {
                options.push('\n');
            }
            options.push_str(&a[2..]);
            options.push(' ');
            let words = split_args(a.as_bytes()).map_or(0, |w| w.len());
            if words == 1 {
                // Only a name, like `--port`: its value comes next.
                handled_last = false;
                let next_is_option = args.get(k + 1).is_some_and(|n| n.starts_with("--"));
                let is_last = k + 1 == args.len();
                if a.eq_ignore_ascii_case("--save") && (next_is_option || is_last) {
                    // `--save` with no value means `save ""`.
                    options.push_str("\"\"");
                    handled_last = next_is_option;
                } else if a.eq_ignore_ascii_case("--sentinel") && next_is_option {
                    handled_last = true;
                }
            } else {
                // Name and value in one argument, like "--port 6380".
                handled_last = true;
            }
        } else {
            options.push_str(&value::repr(a.as_bytes()));
            options.push(' ');
            handled_last = true;
        }
    }
    Ok(options)
}
