//! The command layer: from a parsed request to the handler that runs it
//! and the reply it builds.
//!
//! [`execute`] looks the command (and its subcommand) up in the static
//! [`TABLE`], applies the checks redis-server's `processCommand` makes, in
//! its order (unknown command or subcommand, arity, authentication and
//! ACLs ([`auth`]), `maxmemory`, a failing AOF, the RESP2 subscribed
//! context, MONITOR, CLIENT PAUSE), then calls the handler. Handlers live
//! one family per file: [`connection`] (PING, HELLO, CLIENT, ...),
//! [`pubsub`] (PUBLISH, SUBSCRIBE, PUBSUB, ...), [`server`] (INFO, CONFIG,
//! COMMAND, ...), [`acl`], [`observe`], [`transactions`]. Each handler gets
//! the [`Client`] and the arguments, and queues its reply on the client.
//!
//! Keyspace commands ([`keys`], [`strings`], [`lists`], [`hashes`],
//! [`sets`], [`zsets`], [`streams`], [`sort`]) are *data* handlers
//! ([`DataHandler`]): they also get the client's selected database, which
//! [`run_spec`] acquires from the engine for the command (or from the unit
//! EXEC runs) and releases after it: the engine then records, publishes
//! and logs the command's effects (see `engine`). Blocking commands
//! register with the engine through [`blocking`].
//!
//! While the client is in MULTI, [`run`] queues commands instead of running
//! them, after the same checks Redis makes first (unknown command, arity,
//! subscribed context), which flag the transaction when they fail.
//!
//! [`Client`] is also the [`Session`](crate::net::Session) the connection
//! loop drives; [`replay`] runs the AOF's commands at start-up through
//! this same path.

pub mod acl;
pub mod auth;
pub mod bitops;
pub mod blocking;
pub mod busy;
pub mod client;
pub mod cluster;
pub mod connection;
pub mod debug;
pub mod dump;
pub mod flags;
pub mod functions;
pub mod geo;
pub mod hashes;
pub mod hll;
pub mod info;
pub mod keys;
pub mod lcs;
pub mod lists;
pub mod lolwut;
pub mod migrate;
pub mod module;
pub mod object;
pub mod observe;
pub mod pubsub;
pub mod replay;
pub mod replication;
pub mod scan;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod shutdown;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod tracking;
pub mod transactions;
pub mod zsetops;
pub mod zsets;

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::config::rename::Resolved;
use crate::engine::Access;
use crate::protocol::Frame;
use crate::store::Db;
use crate::util::{c_str_max as c_str, sanitize_bytes};
pub use client::{Client, ReplyMode};

/// A command handler: runs the command and queues its reply.
pub type Handler = fn(&mut Client, &[Bytes]);

/// A keyspace command handler: also gets the selected database, locked.
pub type DataHandler = fn(&mut Client, &mut Db, &[Bytes]);

/// What herald knows about a command.
pub struct Spec {
    /// Lower-case name (`client|kill` style names are built from the parent).
    pub name: &'static str,
    /// Redis arity: N means exactly N arguments (name included), -N at least N.
    pub arity: i32,
    /// Allowed in the RESP2 subscribed context.
    pub pubsub_ok: bool,
    /// The handler; for a container command, what runs when it is called
    /// without a subcommand.
    pub handler: Handler,
    /// Subcommands (CLIENT LIST, PUBSUB NUMSUB, ...), empty for plain commands.
    pub subcommands: &'static [Spec],
    /// For keyspace commands: the handler run with the database locked
    /// (then `handler` is unused).
    pub data: Option<DataHandler>,
    /// Redis's `protected` commands (DEBUG, MODULE LOAD ...): the
    /// `enable-*-command` option that must allow them, checked by the
    /// dispatcher before anything else runs.
    pub protected: Option<&'static str>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

const fn cmd(name: &'static str, arity: i32, handler: Handler) -> Spec {
    Spec {
        name,
        arity,
        pubsub_ok: false,
        handler,
        subcommands: &[],
        data: None,
        protected: None,
    }
}

const fn pubsub_cmd(name: &'static str, arity: i32, handler: Handler) -> Spec {
    Spec {
        name,
        arity,
        pubsub_ok: true,
        handler,
        subcommands: &[],
        data: None,
        protected: None,
    }
}

const fn container(
    name: &'static str,
    arity: i32,
    handler: Handler,
    subcommands: &'static [Spec],
) -> Spec {
    Spec {
        name,
        arity,
        pubsub_ok: false,
        handler,
        subcommands,
        data: None,
        protected: None,
    }
}

/// A protected command (see [`Spec::protected`]), allowed by `option`.
const fn protected(spec: Spec, option: &'static str) -> Spec {
    Spec {
        protected: Some(option),
        ..spec
    }
}

/// A keyspace command (see [`DataHandler`]).
const fn dcmd(name: &'static str, arity: i32, data: DataHandler) -> Spec {
    Spec {
        name,
        arity,
        pubsub_ok: false,
        handler: no_subcommand,
        subcommands: &[],
        data: Some(data),
        protected: None,
    }
}

/// The handler of a container called with no subcommand: arity rules make
/// it unreachable except for COMMAND, which has its own.
fn no_subcommand(_: &mut Client, _: &[Bytes]) {}

/// Every command herald implements, alphabetically.
pub static TABLE: &[Spec] = &[
    container("acl", -2, no_subcommand, acl::ACL_SUBCOMMANDS),
    dcmd("append", 3, strings::append),
    cmd("asking", 1, cluster::disabled),
    cmd("auth", -2, connection::auth),
    cmd("bgrewriteaof", 1, server::bgrewriteaof),
    cmd("bgsave", -1, server::bgsave),
    dcmd("bitcount", -2, bitops::bitcount),
    dcmd("bitfield", -2, bitops::bitfield),
    dcmd("bitfield_ro", -2, bitops::bitfield_ro),
    dcmd("bitop", -4, bitops::bitop),
    dcmd("bitpos", -3, bitops::bitpos),
    dcmd("blmove", 6, lists::blmove),
    dcmd("blmpop", -5, lists::blmpop),
    dcmd("blpop", -3, lists::blpop),
    dcmd("brpop", -3, lists::brpop),
    dcmd("brpoplpush", 4, lists::brpoplpush),
    dcmd("bzmpop", -5, zsets::bzmpop),
    dcmd("bzpopmax", -3, zsets::bzpopmax),
    dcmd("bzpopmin", -3, zsets::bzpopmin),
    container("client", -2, no_subcommand, connection::CLIENT_SUBCOMMANDS),
    container("cluster", -2, no_subcommand, cluster::CLUSTER_SUBCOMMANDS),
    container(
        "command",
        -1,
        server::command_all,
        server::COMMAND_SUBCOMMANDS,
    ),
    container("config", -2, no_subcommand, server::CONFIG_SUBCOMMANDS),
    cmd("copy", -3, keys::copy),
    dcmd("dbsize", 1, keys::dbsize),
    protected(cmd("debug", -2, debug::debug), "enable-debug-command"),
    dcmd("decr", 2, strings::decr),
    dcmd("decrby", 3, strings::decrby),
    dcmd("del", -2, keys::del),
    cmd("discard", 1, transactions::discard),
    dcmd("dump", 2, dump::dump),
    cmd("echo", 2, connection::echo),
    cmd("eval", -3, scripting::eval),
    cmd("eval_ro", -3, scripting::eval_ro),
    cmd("evalsha", -3, scripting::evalsha),
    cmd("evalsha_ro", -3, scripting::evalsha_ro),
    cmd("exec", 1, transactions::exec),
    dcmd("exists", -2, keys::exists),
    dcmd("expire", -3, keys::expire),
    dcmd("expireat", -3, keys::expireat),
    dcmd("expiretime", 2, keys::expiretime),
    cmd("failover", -1, replication::failover),
    cmd("fcall", -3, functions::fcall),
    cmd("fcall_ro", -3, functions::fcall_ro),
    cmd("flushall", -1, keys::flushall),
    dcmd("flushdb", -1, keys::flushdb),
    container(
        "function",
        -2,
        no_subcommand,
        functions::FUNCTION_SUBCOMMANDS,
    ),
    dcmd("geoadd", -5, geo::geoadd),
    dcmd("geodist", -4, geo::geodist),
    dcmd("geohash", -2, geo::geohash_cmd),
    dcmd("geopos", -2, geo::geopos),
    dcmd("georadius", -6, geo::georadius),
    dcmd("georadius_ro", -6, geo::georadius_ro),
    dcmd("georadiusbymember", -5, geo::georadiusbymember),
    dcmd("georadiusbymember_ro", -5, geo::georadiusbymember_ro),
    dcmd("geosearch", -7, geo::geosearch),
    dcmd("geosearchstore", -8, geo::geosearchstore),
    dcmd("get", 2, strings::get),
    dcmd("getbit", 3, bitops::getbit),
    dcmd("getdel", 2, strings::getdel),
    dcmd("getex", -2, strings::getex),
    dcmd("getrange", 4, strings::getrange),
    dcmd("getset", 3, strings::getset),
    dcmd("hdel", -3, hashes::hdel),
    cmd("hello", -1, connection::hello),
    dcmd("hexists", 3, hashes::hexists),
    dcmd("hget", 3, hashes::hget),
    dcmd("hgetall", 2, hashes::hgetall),
    dcmd("hincrby", 4, hashes::hincrby),
    dcmd("hincrbyfloat", 4, hashes::hincrbyfloat),
    dcmd("hkeys", 2, hashes::hkeys),
    dcmd("hlen", 2, hashes::hlen),
    dcmd("hmget", -3, hashes::hmget),
    dcmd("hmset", -4, hashes::hmset),
    dcmd("hrandfield", -2, hashes::hrandfield),
    dcmd("hscan", -3, scan::hscan),
    dcmd("hset", -4, hashes::hset),
    dcmd("hsetnx", 4, hashes::hsetnx),
    dcmd("hstrlen", 3, hashes::hstrlen),
    dcmd("hvals", 2, hashes::hvals),
    dcmd("incr", 2, strings::incr),
    dcmd("incrby", 3, strings::incrby),
    dcmd("incrbyfloat", 3, strings::incrbyfloat),
    cmd("info", -1, server::info),
    dcmd("keys", 2, keys::keys),
    cmd("lastsave", 1, server::lastsave),
    container("latency", -2, no_subcommand, observe::LATENCY_SUBCOMMANDS),
    dcmd("lcs", -3, lcs::lcs),
    dcmd("lindex", 3, lists::lindex),
    dcmd("linsert", 5, lists::linsert),
    dcmd("llen", 2, lists::llen),
    dcmd("lmove", 5, lists::lmove),
    dcmd("lmpop", -4, lists::lmpop),
    cmd("lolwut", -1, lolwut::lolwut),
    dcmd("lpop", -2, lists::lpop),
    dcmd("lpos", -3, lists::lpos),
    dcmd("lpush", -3, lists::lpush),
    dcmd("lpushx", -3, lists::lpushx),
    dcmd("lrange", 4, lists::lrange),
    dcmd("lrem", 4, lists::lrem),
    dcmd("lset", 4, lists::lset),
    dcmd("ltrim", 4, lists::ltrim),
    container("memory", -2, no_subcommand, object::MEMORY_SUBCOMMANDS),
    dcmd("mget", -2, strings::mget),
    dcmd("migrate", -6, migrate::migrate),
    container("module", -2, no_subcommand, module::MODULE_SUBCOMMANDS),
    cmd("monitor", 1, observe::monitor),
    cmd("move", 3, object::move_),
    dcmd("mset", -3, strings::mset),
    dcmd("msetnx", -3, strings::msetnx),
    cmd("multi", 1, transactions::multi),
    container("object", -2, no_subcommand, object::OBJECT_SUBCOMMANDS),
    dcmd("persist", 2, keys::persist),
    dcmd("pexpire", -3, keys::pexpire),
    dcmd("pexpireat", -3, keys::pexpireat),
    dcmd("pexpiretime", 2, keys::pexpiretime),
    dcmd("pfadd", -2, hll::pfadd),
    dcmd("pfcount", -2, hll::pfcount),
    dcmd("pfdebug", 3, hll::pfdebug),
    dcmd("pfmerge", -2, hll::pfmerge),
    cmd("pfselftest", 1, hll::pfselftest),
    pubsub_cmd("ping", -1, connection::ping),
    dcmd("psetex", 4, strings::psetex),
    pubsub_cmd("psubscribe", -2, pubsub::psubscribe),
    cmd("psync", -3, replication::psync),
    dcmd("pttl", 2, keys::pttl),
    cmd("publish", 3, pubsub::publish),
    container("pubsub", -2, no_subcommand, pubsub::PUBSUB_SUBCOMMANDS),
    pubsub_cmd("punsubscribe", -1, pubsub::punsubscribe),
    pubsub_cmd("quit", -1, connection::quit),
    dcmd("randomkey", 1, keys::randomkey),
    cmd("readonly", 1, cluster::disabled),
    cmd("readwrite", 1, cluster::disabled),
    dcmd("rename", 3, keys::rename),
    dcmd("renamenx", 3, keys::renamenx),
    cmd("replconf", -1, replication::replconf),
    cmd("replicaof", 3, replication::replicaof),
    pubsub_cmd("reset", 1, connection::reset),
    dcmd("restore", -4, dump::restore),
    dcmd("restore-asking", -4, dump::restore),
    cmd("role", 1, replication::role),
    dcmd("rpop", -2, lists::rpop),
    dcmd("rpoplpush", 3, lists::rpoplpush),
    dcmd("rpush", -3, lists::rpush),
    dcmd("rpushx", -3, lists::rpushx),
    dcmd("sadd", -3, sets::sadd),
    cmd("save", 1, server::save),
    dcmd("scan", -2, keys::scan),
    dcmd("scard", 2, sets::scard),
    container("script", -2, no_subcommand, scripting::SCRIPT_SUBCOMMANDS),
    dcmd("sdiff", -2, sets::sdiff),
    dcmd("sdiffstore", -3, sets::sdiffstore),
    cmd("select", 2, connection::select),
    dcmd("set", -3, strings::set),
    dcmd("setbit", 4, bitops::setbit),
    dcmd("setex", 4, strings::setex),
    dcmd("setnx", 3, strings::setnx),
    dcmd("setrange", 4, strings::setrange),
    cmd("shutdown", -1, shutdown::shutdown),
    dcmd("sinter", -2, sets::sinter),
    dcmd("sintercard", -3, sets::sintercard),
    dcmd("sinterstore", -3, sets::sinterstore),
    dcmd("sismember", 3, sets::sismember),
    cmd("slaveof", 3, replication::replicaof),
    container("slowlog", -2, no_subcommand, observe::SLOWLOG_SUBCOMMANDS),
    dcmd("smembers", 2, sets::smembers),
    dcmd("smismember", -3, sets::smismember),
    dcmd("smove", 4, sets::smove),
    dcmd("sort", -2, sort::sort),
    dcmd("sort_ro", -2, sort::sort_ro),
    dcmd("spop", -2, sets::spop),
    cmd("spublish", 3, pubsub::spublish),
    dcmd("srandmember", -2, sets::srandmember),
    dcmd("srem", -3, sets::srem),
    dcmd("sscan", -3, scan::sscan),
    pubsub_cmd("ssubscribe", -2, pubsub::ssubscribe),
    dcmd("strlen", 2, strings::strlen),
    pubsub_cmd("subscribe", -2, pubsub::subscribe),
    dcmd("substr", 4, strings::getrange),
    dcmd("sunion", -2, sets::sunion),
    dcmd("sunionstore", -3, sets::sunionstore),
    pubsub_cmd("sunsubscribe", -1, pubsub::sunsubscribe),
    cmd("swapdb", 3, keys::swapdb),
    cmd("sync", 1, replication::sync),
    cmd("time", 1, server::time),
    dcmd("touch", -2, object::touch),
    dcmd("ttl", 2, keys::ttl),
    dcmd("type", 2, keys::type_),
    dcmd("unlink", -2, keys::del),
    pubsub_cmd("unsubscribe", -1, pubsub::unsubscribe),
    cmd("unwatch", 1, transactions::unwatch),
    cmd("wait", 3, replication::wait),
    cmd("watch", -2, transactions::watch),
    dcmd("xack", -4, streams::xack),
    dcmd("xadd", -5, streams::xadd),
    dcmd("xautoclaim", -6, streams::xautoclaim),
    dcmd("xclaim", -6, streams::xclaim),
    dcmd("xdel", -3, streams::xdel),
    container("xgroup", -2, no_subcommand, streams::XGROUP_SUBCOMMANDS),
    container("xinfo", -2, no_subcommand, streams::XINFO_SUBCOMMANDS),
    dcmd("xlen", 2, streams::xlen),
    dcmd("xpending", -3, streams::xpending),
    dcmd("xrange", -4, streams::xrange),
    dcmd("xread", -4, streams::xread),
    dcmd("xreadgroup", -7, streams::xreadgroup),
    dcmd("xrevrange", -4, streams::xrevrange),
    dcmd("xsetid", -3, streams::xsetid),
    dcmd("xtrim", -4, streams::xtrim),
    dcmd("zadd", -4, zsets::zadd),
    dcmd("zcard", 2, zsets::zcard),
    dcmd("zcount", 4, zsets::zcount),
    dcmd("zdiff", -3, zsetops::zdiff),
    dcmd("zdiffstore", -4, zsetops::zdiffstore),
    dcmd("zincrby", 4, zsets::zincrby),
    dcmd("zinter", -3, zsetops::zinter),
    dcmd("zintercard", -3, zsetops::zintercard),
    dcmd("zinterstore", -4, zsetops::zinterstore),
    dcmd("zlexcount", 4, zsets::zlexcount),
    dcmd("zmpop", -4, zsets::zmpop),
    dcmd("zmscore", -3, zsets::zmscore),
    dcmd("zpopmax", -2, zsets::zpopmax),
    dcmd("zpopmin", -2, zsets::zpopmin),
    dcmd("zrandmember", -2, zsetops::zrandmember),
    dcmd("zrange", -4, zsets::zrange),
    dcmd("zrangebylex", -4, zsets::zrangebylex),
    dcmd("zrangebyscore", -4, zsets::zrangebyscore),
    dcmd("zrangestore", -5, zsets::zrangestore),
    dcmd("zrank", 3, zsets::zrank),
    dcmd("zrem", -3, zsets::zrem),
    dcmd("zremrangebylex", 4, zsets::zremrangebylex),
    dcmd("zremrangebyrank", 4, zsets::zremrangebyrank),
    dcmd("zremrangebyscore", 4, zsets::zremrangebyscore),
    dcmd("zrevrange", -4, zsets::zrevrange),
    dcmd("zrevrangebylex", -4, zsets::zrevrangebylex),
    dcmd("zrevrangebyscore", -4, zsets::zrevrangebyscore),
    dcmd("zrevrank", 3, zsets::zrevrank),
    dcmd("zscan", -3, scan::zscan),
    dcmd("zscore", 3, zsets::zscore),
    dcmd("zunion", -3, zsetops::zunion),
    dcmd("zunionstore", -4, zsetops::zunionstore),
];

/// Finds a spec by case-insensitive name in a table.
fn find<'a>(table: &'a [Spec], name: &[u8]) -> Option<&'a Spec> {
    if name.len() > 32 {
        return None;
    }
    let mut lower = [0u8; 32];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    // The top-level table is searched for every command and every
    // `redis.call`: hashed, rather than a binary search of a few hundred
    // names.
    if std::ptr::eq(table, TABLE) {
        return top_index().get(&*lower).copied();
    }
    table
        .binary_search_by(|s| s.name.as_bytes().cmp(lower))
        .ok()
        .map(|i| &table[i])
}

/// The command a client calls `name` (`rename-command` applied).
fn find_renamed(shared: &crate::state::Shared, name: &[u8]) -> Option<&'static Spec> {
    match shared.command_names.resolve(name) {
        Resolved::Same(n) => find(TABLE, n),
        Resolved::Renamed(orig) => find(TABLE, orig.as_bytes()),
        Resolved::Gone => None,
    }
}

/// The top-level command a typed name calls once `rename-command` is
/// applied (see `config::rename`): without renames, the table's binary
/// search alone. The AOF loader's internal client also reaches a command
/// by its original name, so that a log holding both (Redis logs a
/// rewritten command, `SET ... PXAT`, under its original name) loads.
fn find_top(c: &Client, name: &[u8]) -> Option<&'static Spec> {
    match find_renamed(&c.shared, name) {
        None if c.handle.id == INTERNAL_ID && !c.in_script => find(TABLE, name),
        found => found,
    }
}

/// The top-level command a client called last, by the name exactly as it
/// typed it: clients mostly repeat a few commands, and comparing a few
/// bytes costs less than lower-casing and hashing the name for [`TABLE`].
/// (Names resolve the same way for the whole run: `rename-command` is read
/// at start-up only.)
#[derive(Debug, Default)]
pub struct LastCommand {
    name: [u8; 16],
    len: usize,
    spec: Option<&'static Spec>,
}

impl LastCommand {
    /// The command `typed` names, if it is the one remembered.
    #[inline]
    fn get(&self, typed: &[u8]) -> Option<&'static Spec> {
        let spec = self.spec?;
        (typed.len() == self.len && typed == &self.name[..self.len]).then_some(spec)
    }

    /// Remembers that `typed` names `spec` (names longer than 16 bytes are
    /// not remembered).
    #[inline]
    fn set(&mut self, typed: &[u8], spec: &'static Spec) {
        if let Some(slot) = self.name.get_mut(..typed.len()) {
            slot.copy_from_slice(typed);
            self.len = typed.len();
            self.spec = Some(spec);
        }
    }
}

/// [`find_top`] for the command a client sends, through its
/// [`LastCommand`] (not for the AOF loader's client, whose lookups depend
/// on whether a script runs).
#[inline]
fn find_sent(c: &mut Client, name: &[u8]) -> Option<&'static Spec> {
    if let Some(spec) = c.last_command.get(name) {
        return Some(spec);
    }
    let spec = find_top(c, name)?;
    if c.handle.id != INTERNAL_ID {
        c.last_command.set(name, spec);
    }
    Some(spec)
}

/// The full name (`set`, `config|set`) of the command `args` ran as
/// `spec`: original names, whatever name the client typed.
pub fn full_name(c: &Client, spec: &Spec, args: &[Bytes]) -> String {
    match args.first().and_then(|n| find_top(c, n)) {
        Some(top) if !std::ptr::eq(top, spec) => format!("{}|{}", top.name, spec.name),
        _ => spec.name.to_string(),
    }
}

/// [`TABLE`] by name, for [`find`].
fn top_index(
) -> &'static std::collections::HashMap<&'static [u8], &'static Spec, ahash::RandomState> {
    static INDEX: std::sync::OnceLock<
        std::collections::HashMap<&'static [u8], &'static Spec, ahash::RandomState>,
    > = std::sync::OnceLock::new();
    INDEX.get_or_init(|| TABLE.iter().map(|s| (s.name.as_bytes(), s)).collect())
}

/// The names of every implemented command and subcommand (`client|kill`),
/// for COMMAND COUNT / LIST / INFO.
pub fn implemented_names() -> Vec<String> {
    let mut out = Vec::new();
    for s in TABLE {
        out.push(s.name.to_string());
        for sub in s.subcommands {
            out.push(format!("{}|{}", s.name, sub.name));
        }
    }
    out
}

/// Runs one command for `c` (called by the connection for each request).
pub fn execute(c: &mut Client, args: Vec<Bytes>) {
    let Some(name) = args.first() else {
        return;
    };
    let mode = c.reply_mode;
    let skip_after = match c.reply_mode {
        ReplyMode::SkipNext => {
            c.reply_mode = ReplyMode::Skip;
            true
        }
        ReplyMode::Skip => true,
        _ => false,
    };
    c.argv_mem = args.iter().map(Bytes::len).sum();
    run(c, name, &args);
    c.argv_mem = 0;
    if c.tracking.mode.on {
        tracking::command_ended(c, name);
    }
    if c.postponed.is_some() {
        // Held back by CLIENT PAUSE: it runs again later, as if now.
        c.reply_mode = mode;
        return;
    }
    if skip_after && c.reply_mode == ReplyMode::Skip {
        c.reply_mode = ReplyMode::On;
    }
}

fn run(c: &mut Client, name: &Bytes, args: &[Bytes]) {
    let Some(spec) = find_sent(c, name) else {
        let mut list = Vec::new();
        for a in &args[1..] {
            if list.len() >= 128 {
                break;
            }
            let room = 128 - list.len();
            list.push(b'\'');
            list.extend_from_slice(c_str(a, room));
            list.extend_from_slice(b"' ");
        }
        let mut msg = b"ERR unknown command '".to_vec();
        msg.extend(sanitize_bytes(c_str(name, 128)));
        msg.extend_from_slice(b"', with args beginning with: ");
        msg.extend(sanitize_bytes(&list));
        // No command ran: CLIENT LIST shows `cmd=NULL`, as Redis.
        c.current_cmd.clear();
        return reject(c, msg, false);
    };
    let is_exec = spec.name == "exec";
    let (spec, fullname) = if !spec.subcommands.is_empty() && args.len() >= 2 {
        match find(spec.subcommands, &args[1]) {
            Some(sub) => (
                sub,
                std::borrow::Cow::Owned(format!("{}|{}", spec.name, sub.name)),
            ),
            None => {
                let mut msg = b"ERR unknown subcommand '".to_vec();
                msg.extend(sanitize_bytes(c_str(&args[1], 128)));
                msg.extend_from_slice(
                    format!("'. Try {} HELP.", spec.name.to_ascii_uppercase()).as_bytes(),
                );
                return reject(c, msg, false);
            }
        }
    } else {
        // A plain command's name is the table's: no allocation per command.
        (spec, std::borrow::Cow::Borrowed(spec.name))
    };
    let argc = args.len() as i32;
    if (spec.arity > 0 && spec.arity != argc) || argc < -spec.arity {
        return reject_cmd(
            c,
            spec,
            format!("ERR wrong number of arguments for '{fullname}' command"),
            is_exec,
        );
    }
    // DEBUG and MODULE's loaders run only where enable-debug-command /
    // enable-module-command allow (Redis's allowProtectedAction).
    if let Some(option) = spec.protected {
        let local = c.handle.addr.is_local();
        if !c.shared.config.read().allows(option, local) {
            let name = fullname
                .split('|')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            return reject_cmd(
                c,
                spec,
                format!(
                    "ERR {name} command not allowed. If the {option} option is set to \"local\", \
                     you can run it from a local connection, otherwise you need to set this option \
                     in the configuration file, and then restart the server."
                ),
                is_exec,
            );
        }
    }
    // Authentication, then ACLs, as Redis's processCommand. Both
    // cost a flag test for an authenticated client with full permissions.
    if crate::command::auth::auth_required(c) && !no_auth(&fullname) {
        return reject_cmd(c, spec, crate::acl::NOAUTH, is_exec);
    }
    // SHUTDOWN, SAVE, SYNC, PSYNC never join a transaction (refused, and
    // the transaction fails at EXEC), as Redis's CMD_NO_MULTI.
    if c.tx.multi.is_some() && flags::of(spec) & flags::NO_MULTI != 0 {
        return reject_cmd(
            c,
            spec,
            "ERR Command not allowed inside a transaction",
            is_exec,
        );
    }
    if let Some(err) = crate::command::auth::check_command(c, &fullname, args) {
        return reject_cmd(c, spec, err, is_exec);
    }
    // The keyspace gate: the batch's first command enters it. While a
    // script holds it the command waits (postponed), and once the script
    // is busy it is refused, unless Redis lets it run then.
    // A script command does not enter: it queues on the scripting thread,
    // which takes the gate itself (see `scripting::run_script`); only a
    // busy script refuses it.
    // (Only a batch's first command gets this far: the flags are looked
    // up then, not for every command.)
    let queues = |c: &Client| {
        !is_exec
            && !c.tx.in_exec
            && flags::of(spec) & flags::RUNS_SCRIPT != 0
            && c.shared.engine.gate.busy().is_none()
    };
    if c.gate.is_none() && !c.in_script && c.handle.id != INTERNAL_ID && !queues(c) {
        match c.shared.engine.gate.enter() {
            Some(entry) => c.gate = Some(entry),
            None => match c.shared.engine.gate.busy() {
                Some(_) if flags::of(spec) & flags::ALLOW_BUSY != 0 => {}
                // The primary's stream waits for the script instead (Redis
                // stops reading it): refused, it would be lost.
                Some(_) if c.is_master => return postpone(c, args),
                Some(holder) => {
                    let text = match holder {
                        crate::engine::gate::Holder::Eval => crate::scripting::BUSY_EVAL,
                        crate::engine::gate::Holder::Function => crate::scripting::BUSY_FUNCTION,
                    };
                    return reject_cmd(c, spec, text, is_exec);
                }
                None => return postpone(c, args),
            },
        }
    }
    // Over maxmemory: evict, or refuse what would use more memory (as
    // Redis's processCommand, after the arity check and before MISCONF).
    // (Not while loading the AOF: Redis does not evict then either.)
    if c.shared
        .engine
        .store
        .evictor
        .settings
        .maxmemory
        .load(Ordering::Relaxed)
        != 0
        && c.handle.id != INTERNAL_ID
        && !ignores_maxmemory(c)
        && !evict(c)
        && rejects_on_oom(c, spec, &fullname)
    {
        return reject_cmd(c, spec, ERR_OOM, is_exec);
    }
    // The last background save failed while save points are set
    // (`stop-writes-on-bgsave-error`): refuse writes and PING as Redis's
    // `writeCommandsDeniedByDiskError` does, until a save succeeds.
    if crate::persist::save::writes_refused(c.shared.as_ref())
        && c.handle.id != INTERNAL_ID
        && (is_write_command(c, &fullname) || fullname == "ping")
    {
        return reject_cmd(c, spec, ERR_MISCONF_RDB, is_exec);
    }
    // The AOF cannot be written: refuse writes (reads and pub/sub go on),
    // with Redis 7.0's text, until the writer succeeds again. Redis refuses
    // PING too, so that monitoring notices.
    if let Some(err) = c.shared.engine.aof.write_error() {
        if is_write_command(c, &fullname) || fullname == "ping" {
            return reject_cmd(
                c,
                spec,
                format!("MISCONF Errors writing to the AOF file: {err}"),
                is_exec,
            );
        }
    }
    // A replica ignores min-replicas-to-write: its primary decides.
    if c.shared.replicas_short()
        && !c.shared.engine.repl.is_replica()
        && is_write_command(c, &fullname)
    {
        return reject_cmd(c, spec, ERR_NOREPLICAS, is_exec);
    }
    // A read-only replica takes writes from its primary only.
    if c.shared.engine.repl.is_replica()
        && !c.is_master
        && is_write_command(c, &fullname)
        && c.shared.config.read().value("replica-read-only").as_deref() != Some("no")
    {
        return reject_cmd(c, spec, replication::ERR_READONLY, is_exec);
    }
    // A replica whose link is down answers only `stale` commands while
    // replica-serve-stale-data is no.
    if c.shared.engine.repl.is_replica()
        && !c.is_master
        && replication::serves_no_stale_data(c)
        && !crate::catalog::flags(&fullname).is_some_and(|f| f.contains(&"stale"))
    {
        return reject_cmd(c, spec, replication::ERR_MASTERDOWN, is_exec);
    }
    if c.in_resp2_pubsub() && !spec.pubsub_ok {
        return reject_cmd(
            c,
            spec,
            format!(
                "ERR Can't execute '{fullname}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ),
            is_exec,
        );
    }
    // A MONITOR client is a replica to Redis: it may not touch the
    // keyspace, and is never paused.
    if c.monitor
        && queue_has(
            c,
            spec,
            is_exec,
            flags::WRITE | flags::MAY_REPLICATE | flags::READONLY,
        )
    {
        return reject_cmd(
            c,
            spec,
            "ERR Replica can't interact with the keyspace",
            is_exec,
        );
    }
    // CLIENT PAUSE: hold the command back (the connection waits for the
    // pause to end and runs it then). One atomic load when no pause is on.
    if !c.monitor
        && c.shared
            .observe
            .pause
            .postpones(|| held_by_write_pause(c, spec, args, is_exec))
    {
        return postpone(c, args);
    }
    // Inside MULTI everything but the transaction commands is queued.
    if c.tx.multi.is_some() && !transactions::runs_in_multi(&fullname) {
        transactions::queue(c, spec, args);
        return c.reply(Frame::simple("QUEUED"));
    }
    c.shared
        .stats
        .total_commands_processed
        .fetch_add(1, Ordering::Relaxed);
    // Copied into the client's own buffer, which keeps its capacity.
    c.current_cmd.clear();
    c.current_cmd.push_str(&fullname);
    c.failed = false;
    run_spec(c, spec, args);
    observe::after_command(c, spec, args);
}

/// A replica leaves eviction to its primary (`replica-ignore-maxmemory
/// yes`, Redis's default): it neither evicts nor refuses with -OOM.
fn ignores_maxmemory(c: &Client) -> bool {
    c.shared.engine.repl.is_replica()
        && c.shared
            .config
            .read()
            .value("replica-ignore-maxmemory")
            .as_deref()
            != Some("no")
}

/// Evicts keys as `maxmemory` asks (see `Engine::evict`); false if
/// nothing could be. A tracking client's earlier replies are queued first,
/// so that the invalidations eviction sends it come after them.
fn evict(c: &mut Client) -> bool {
    if c.tracking.mode.on {
        c.queue_replies();
    }
    c.shared.engine.evict(c.shared.clients_memory())
}

/// Holds a command back until CLIENT PAUSE ends or the running script
/// ends or becomes busy: the connection waits, then runs it again.
fn postpone(c: &mut Client, args: &[Bytes]) {
    c.postponed = Some(args.to_vec());
    c.shared
        .observe
        .pause
        .waiting
        .fetch_add(1, Ordering::Relaxed);
}

/// The id of [`Client::internal`] (the AOF loader's client).
pub(crate) const INTERNAL_ID: u64 = u64::MAX;

/// Redis's error for a write while `min-replicas-to-write` is not met.
pub const ERR_NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// Redis's OOM error.
const ERR_MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
const ERR_OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// True if `spec` has flag bits `bit`, or is EXEC of a queue with a
/// command that has them.
fn queue_has(c: &Client, spec: &Spec, is_exec: bool, bit: u16) -> bool {
    if flags::of(spec) & bit != 0 {
        return true;
    }
    is_exec
        && c.tx.multi.as_ref().is_some_and(|m| {
            m.queue
                .iter()
                .any(|a| lookup(c, a).is_some_and(|s| flags::of(s) & bit != 0))
        })
}

/// Whether CLIENT PAUSE WRITE holds the command back, as Redis decides
/// from its flags (`write` or `may_replicate`, a script's declared flags
/// for the script commands), for EXEC from those of the commands queued.
fn held_by_write_pause(c: &Client, spec: &Spec, args: &[Bytes], is_exec: bool) -> bool {
    let one = |spec: &Spec, args: &[Bytes]| {
        let bits = flags::of(spec);
        if bits & flags::RUNS_SCRIPT != 0 {
            scripting::held_by_write_pause(c, spec.name, args)
        } else {
            bits & (flags::WRITE | flags::MAY_REPLICATE) != 0
        }
    };
    if one(spec, args) {
        return true;
    }
    is_exec
        && c.tx.multi.as_ref().is_some_and(|m| {
            m.queue
                .iter()
                .any(|a| lookup(c, a).is_some_and(|s| one(s, a)))
        })
}

/// Whether a command is refused while memory cannot be freed (Redis's
/// `reject_cmd_on_oom`): `denyoom` commands (EXEC if its queue holds one),
/// and in MULTI anything queued but EXEC, DISCARD, QUIT and RESET.
fn rejects_on_oom(c: &Client, spec: &Spec, fullname: &str) -> bool {
    let is_exec = fullname == "exec";
    queue_has(c, spec, is_exec, flags::DENYOOM)
        || (c.tx.multi.is_some() && !matches!(fullname, "exec" | "discard" | "quit" | "reset"))
}

/// Commands flagged `no-auth` (AUTH, HELLO, ...): they run before the
/// client authenticates.
fn no_auth(fullname: &str) -> bool {
    crate::catalog::flags(fullname).is_some_and(|f| f.contains(&"no_auth"))
}

/// Runs a command whose checks passed (directly, or queued by EXEC).
///
/// A data command runs with its database acquired from the engine, which
/// records and propagates its effects (see `engine` and `persist`).
fn run_spec(c: &mut Client, spec: &Spec, args: &[Bytes]) {
    if c.shared.observe.monitors.active() && flags::of(spec) & flags::RUNS_SCRIPT != 0 {
        let peer = c.handle.addr.clone();
        observe::feed_monitors(c, spec, args, &peer.monitor_form());
    }
    match spec.data {
        Some(d) => with_db_recording(c, Some(args), |c, db| d(c, db, args)),
        None => (spec.handler)(c, args),
    }
    if c.tracking.mode.on && !c.tracking.mode.bcast {
        tracking::after_command(c, spec, args);
    }
}

/// True if `args` names a command herald implements, for `c` (the AOF
/// loader refuses files with unknown commands, as Redis does).
pub fn is_known(c: &Client, args: &[Bytes]) -> bool {
    args.first().is_some_and(|n| find_top(c, n).is_some())
}

/// True for a command Redis flags `write` (refused with MISCONF while the
/// AOF cannot be written); EXEC counts as one if its queue holds one.
fn is_write_command(c: &Client, fullname: &str) -> bool {
    let write = |name: &str| crate::catalog::flags(name).is_some_and(|f| f.contains(&"write"));
    if fullname == "exec" {
        return c.tx.multi.as_ref().is_some_and(|m| {
            m.queue
                .iter()
                .any(|a| lookup(c, a).is_some_and(|s| write(&full_name(c, s, a))))
        });
    }
    write(fullname)
}

/// Looks a command (and subcommand) up as [`run`] does, for EXEC.
fn lookup(c: &Client, args: &[Bytes]) -> Option<&'static Spec> {
    let spec = find_top(c, args.first()?)?;
    if !spec.subcommands.is_empty() && args.len() >= 2 {
        return find(spec.subcommands, &args[1]);
    }
    Some(spec)
}

/// [`reject`] of a command found in the table: counted in its
/// `rejected_calls` (INFO commandstats).
fn reject_cmd(c: &mut Client, spec: &Spec, msg: impl Into<Vec<u8>>, is_exec: bool) {
    observe::count_rejected(c, spec);
    reject(c, msg, is_exec);
}

/// Replies with a command-rejection error (not counted as processed). In
/// MULTI the rejection flags the transaction; a rejected EXEC aborts it.
fn reject(c: &mut Client, msg: impl Into<Vec<u8>>, is_exec: bool) {
    let msg = msg.into();
    if is_exec {
        return transactions::abort_exec(c, &String::from_utf8_lossy(&msg));
    }
    transactions::flag(c);
    c.reply(crate::protocol::Frame::Error(Bytes::from(msg)));
}

/// Runs `f` with the client's selected database locked: the guard EXEC
/// holds if in a transaction, else a lock taken and released around `f`
/// (see `engine`). For commands that record their own effects, if any.
pub fn with_db<R>(c: &mut Client, f: impl FnOnce(&mut Client, &mut Db) -> R) -> R {
    with_db_recording(c, None, f)
}

/// [`with_db`] for the command `args`: a change `f` made without recording
/// its own rewrite is recorded as given.
fn with_db_recording<R>(
    c: &mut Client,
    args: Option<&[Bytes]>,
    f: impl FnOnce(&mut Client, &mut Db) -> R,
) -> R {
    // Pushes caused by this command (keyspace events to this very client)
    // must follow the batch's earlier replies.
    if c.subscription_count() > 0 {
        c.queue_replies();
    }
    let now = c.command_time_ms();
    let mut db = c.shared.engine.acquire_at(&mut c.tx.locks, c.db, now);
    db.origin = c.tracking.origin(c.handle.id);
    db.from_primary = c.is_master;
    let r = f(c, &mut db);
    let off = c.shared.engine.release(&mut c.tx.locks, db, args);
    c.durable_at = c.durable_at.max(off);
    r
}

/// Takes database `i` for a command that works on several (callers take
/// them in index order): the guard EXEC holds, or a fresh lock. Give it
/// back with [`put_db`].
pub fn take_db(c: &mut Client, i: usize) -> Access {
    let mut db = c.shared.engine.acquire(&mut c.tx.locks, i);
    db.origin = c.tracking.origin(c.handle.id);
    db.from_primary = c.is_master;
    db
}

/// Returns a database taken with [`take_db`].
pub fn put_db(c: &mut Client, db: Access) {
    let off = c.shared.engine.release(&mut c.tx.locks, db, None);
    c.durable_at = c.durable_at.max(off);
}

/// Redis's `addReplySubcommandSyntaxError`: a subcommand given the wrong
/// arguments, named as typed, with the container's HELP to try.
pub fn subcommand_syntax_error(c: &mut Client, args: &[Bytes]) {
    let sub = args.get(1).map(|a| &a[..]).unwrap_or_default();
    let container = args.first().map(|a| &a[..]).unwrap_or_default();
    c.error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(c_str(sub, 128)),
        String::from_utf8_lossy(container).to_ascii_uppercase()
    ));
}

/// Parses an integer argument as Redis's `getLongLongFromObject` does.
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    crate::protocol::parse::string_to_i64(arg)
}

/// The standard reply to a non-integer or out-of-range argument.
pub const ERR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// Redis's reply when an integer argument does not fit a C `int`.
pub const ERR_INT_RANGE: &str =
    "ERR value is out of range, value must between -2147483648 and 2147483647";
/// The standard reply to malformed options.
pub const ERR_SYNTAX: &str = "ERR syntax error";

/// Replies with a HELP text as Redis's `addReplyHelp` does: the header line
/// `<NAME> <subcommand> [<arg> [value] [opt] ...]. Subcommands are:`, the
/// given lines, then `HELP` / `    Prints this help.`, all as status lines.
pub fn reply_help(c: &mut Client, name: &str, lines: &[&str]) {
    use crate::protocol::Frame;
    let mut items = Vec::with_capacity(lines.len() + 3);
    items.push(Frame::Simple(Bytes::from(format!(
        "{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))));
    for l in lines {
        items.push(Frame::Simple(Bytes::copy_from_slice(l.as_bytes())));
    }
    items.push(Frame::simple("HELP"));
    items.push(Frame::simple("    Prints this help."));
    c.reply(Frame::Array(items));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        fn check(t: &[Spec]) {
            for w in t.windows(2) {
                assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
            }
            for s in t {
                check(s.subcommands);
            }
        }
        check(TABLE);
    }

    #[test]
    fn arities_are_redis_7_0s() {
        for s in TABLE {
            assert_eq!(
                crate::catalog::arity(s.name),
                Some(s.arity as i64),
                "arity of {}",
                s.name
            );
            for sub in s.subcommands {
                // CLIENT SETINFO is Redis 7.2's, unknown to the 7.0 data.
                let full = format!("{}|{}", s.name, sub.name);
                if let Some(a) = crate::catalog::arity(&full) {
                    assert_eq!(a, sub.arity as i64, "arity of {full}");
                }
            }
        }
    }
}
