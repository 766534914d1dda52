//! Fuzz target for herald's command layer (`herald::execute`),
//! without a network: every input is a sequence of commands run, in order,
//! by an internal client (`herald::Client::internal`), the
//! way the AOF loader runs them.
//!
//! Each input gets a fresh server state (`Shared::new`), so a failing
//! input reproduces on its own.
//!
//! Input format, decoded byte by byte (decoding never fails; it stops at the
//! end of the input):
//! - per command: two bytes pick a name among every command and subcommand
//!   of `herald::TABLE` (a subcommand comes with its parent), one
//!   byte the number of further arguments (0 to 7);
//! - per argument: one byte picks its shape (a key of four, a number, an
//!   option word, a channel or pattern, a stream id, a range bound, a
//!   configuration name, a short or long filler, or raw bytes taken from
//!   the input), the next byte which one.
//!
//! Checked: nothing panics (including arithmetic overflow in debug builds
//! and slicing). Blocking commands (BLPOP, XREAD BLOCK, ...) never block
//! here: a blocked client is only marked (`Client::blocked`) and the
//! connection loop does the waiting; the harness removes the waiter at once,
//! as the AOF loader does. Commands that would touch the process or the
//! disk are not run: CONFIG SET outside a list of harmless parameters (no
//! `dir`, `appendonly`, ...) and CONFIG REWRITE.

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use herald::TABLE;
use herald::config::Config;
use herald::Client;
use herald::Shared;
use libfuzzer_sys::fuzz_target;

/// Every command and subcommand: the arguments that name it.
fn names() -> &'static [Vec<&'static str>] {
    static NAMES: OnceLock<Vec<Vec<&'static str>>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut v = Vec::new();
        for spec in TABLE {
            v.push(vec![spec.name]);
            for sub in spec.subcommands {
                v.push(vec![spec.name, sub.name]);
            }
        }
        v
    })
}

const KEYS: &[&str] = &["k", "k2", "{k}3", "ch"];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "-2",
    "10",
    "-10",
    "100",
    "1000",
    "-1000",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "2147483647",
    "-2147483648",
    "4294967296",
    "1.5",
    "-0.5",
    "3.0",
    "-0",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "1e308",
    "1e309",
    "-1e308",
    "0x10",
    " 1",
    "1 ",
    "",
    "01",
    "1e2",
    "5e-324",
    "17976931348623157e292",
];

const OPTIONS: &[&str] = &[
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "KEEPTTL",
    "GET",
    "PERSIST",
    "WITHSCORES",
    "WITHSCORE",
    "LIMIT",
    "BYSCORE",
    "BYLEX",
    "REV",
    "COUNT",
    "MATCH",
    "TYPE",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "RANK",
    "MAXLEN",
    "MINID",
    "~",
    "=",
    "STREAMS",
    "BLOCK",
    "GROUP",
    "NOACK",
    "IDLE",
    "TIME",
    "RETRYCOUNT",
    "FORCE",
    "JUSTID",
    "LASTID",
    "MKSTREAM",
    "ENTRIESREAD",
    "CREATE",
    "SETID",
    "DESTROY",
    "CREATECONSUMER",
    "DELCONSUMER",
    "CONSUMERS",
    "GROUPS",
    "STREAM",
    "FULL",
    "HELP",
    "WEIGHTS",
    "AGGREGATE",
    "SUM",
    "MIN",
    "MAX",
    "REPLACE",
    "DB",
    "ASYNC",
    "SYNC",
    "WITHVALUES",
    "SCHEDULE",
    "NOSAVE",
    "ABORT",
    "ON",
    "OFF",
    "SKIP",
    "ID",
    "ADDR",
    "LADDR",
    "USER",
    "SKIPME",
    "YES",
    "NO",
    "SETNAME",
    "AUTH",
    "default",
    "LIB-NAME",
    "LIB-VER",
    "NORMAL",
    "PUBSUB",
    "MASTER",
    "REPLICA",
    "string",
    "list",
    "hash",
    "set",
    "zset",
    "stream",
    "all",
    "default",
    "everything",
    "clients",
    "stats",
    "memory",
    "keyspace",
    "server",
    "persistence",
    "commandstats",
    "NUMSUB",
    "NUMPAT",
    "CHANNELS",
    "SHARDCHANNELS",
    "SHARDNUMSUB",
    "DOCS",
    "INFO",
    "LIST",
    "GETKEYS",
    "FILTERBY",
    "MODULE",
    "ACLCAT",
    "PATTERN",
    "$",
    ">",
    "*",
    "+",
    "-",
];

const CHANNELS: &[&str] = &[
    "ch",
    "ch2",
    "c*",
    "*",
    "?",
    "h?llo",
    "h[ae]llo",
    "h[^e]llo",
    "h[a-b]llo",
    "[",
    "[a-",
    "\\",
    "a\\",
    "**",
    "*[",
    "__keyspace@0__:*",
    "__keyevent@0__:set",
];

const IDS: &[&str] = &[
    "0-0",
    "0",
    "0-1",
    "1-0",
    "1-1",
    "1",
    "5-3",
    "$",
    ">",
    "*",
    "1-*",
    "-",
    "+",
    "(1-0",
    "(0-0",
    "18446744073709551615-18446744073709551615",
    "18446744073709551615",
    "18446744073709551616-0",
    "1-18446744073709551615",
    "-1",
    "1-",
    "-1-1",
];

const BOUNDS: &[&str] = &[
    "(1", "[a", "(a", "[", "(", "-", "+", "(inf", "(-inf", "[b", "(1e400", "a", "[\u{ff}",
];

/// Parameters CONFIG SET may change here (none touches the disk or the
/// process).
const CONFIG_OK: &[&str] = &[
    "timeout",
    "notify-keyspace-events",
    "client-output-buffer-limit",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "hash-max-listpack-entries",
    "hash-max-ziplist-entries",
    "list-max-listpack-size",
    "zset-max-listpack-entries",
    "set-max-intset-entries",
    "stream-node-max-entries",
    "stream-node-max-bytes",
    "maxclients",
    "tcp-keepalive",
    "lazyfree-lazy-user-del",
    "hz",
    "lfu-log-factor",
    "lfu-decay-time",
    "maxmemory-samples",
];

/// The input, read a byte at a time.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn pick<'t>(&mut self, table: &'t [&'t str]) -> Option<&'t str> {
        let b = self.byte()?;
        Some(table[usize::from(b) % table.len()])
    }

    fn arg(&mut self) -> Option<Bytes> {
        let kind = self.byte()?;
        let s = |t: &str| Some(Bytes::copy_from_slice(t.as_bytes()));
        match kind % 11 {
            0 | 1 => s(self.pick(KEYS)?),
            2 | 3 => s(self.pick(NUMBERS)?),
            4 => s(self.pick(OPTIONS)?),
            5 => s(self.pick(CHANNELS)?),
            6 => s(self.pick(IDS)?),
            7 => s(self.pick(BOUNDS)?),
            8 => s(self.pick(CONFIG_OK)?),
            9 => {
                // A filler: short, or up to 4 KiB of one byte.
                let n = self.byte()?;
                let len = if n & 0x80 == 0 {
                    usize::from(n)
                } else {
                    usize::from(n & 0x7f) * 32
                };
                Some(Bytes::from(vec![b'a' + (n % 26); len]))
            }
            _ => {
                // Raw bytes from the input.
                let n = usize::from(self.byte()? % 24).min(self.data.len());
                let (raw, rest) = self.data.split_at(n);
                self.data = rest;
                Some(Bytes::copy_from_slice(raw))
            }
        }
    }

    fn command(&mut self) -> Option<Vec<Bytes>> {
        let (a, b) = (self.byte()?, self.byte()?);
        let all = names();
        let name = &all[usize::from(u16::from_le_bytes([a, b])) % all.len()];
        let mut args: Vec<Bytes> = name
            .iter()
            .map(|n| Bytes::copy_from_slice(n.as_bytes()))
            .collect();
        let extra = self.byte()? % 8;
        for _ in 0..extra {
            match self.arg() {
                Some(a) => args.push(a),
                None => break,
            }
        }
        Some(args)
    }
}

/// False for what the harness must not run (see the header).
fn allowed(args: &[Bytes]) -> bool {
    let is = |i: usize, name: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes()))
    };
    if is(0, "config") && is(1, "rewrite") {
        return false;
    }
    if is(0, "config") && is(1, "set") {
        return args[2..].iter().step_by(2).all(|p| {
            CONFIG_OK
                .iter()
                .any(|ok| p.eq_ignore_ascii_case(ok.as_bytes()))
        });
    }
    true
}

fn fresh_config() -> Config {
    Config {
        port: 0,
        ..Config::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    // A fresh state per input, so that a failing input reproduces on its own
    // (reusing one and resetting it with FLUSHALL is ten times slower).
    let shared = Shared::new(fresh_config());
    let mut client = Client::internal(shared.clone());
    let mut commands = 0;
    while let Some(args) = input.command() {
        commands += 1;
        if commands > 64 {
            break;
        }
        if !allowed(&args) {
            continue;
        }
        herald::execute(&mut client, args);
        client.out.clear();
        if client.blocked.is_some() || client.close_after_reply {
            // Blocking never waits here, and QUIT and friends close: go on
            // with a new client on the same state.
            client.release();
            client = Client::internal(shared.clone());
        }
    }
    client.release();
});
