//! Command dispatch: from a parsed request to the handler that runs it.
//!
//! [`execute`] looks the command (and its subcommand) up in the static
//! [`TABLE`], applies the checks redis-server's `processCommand` makes, in
//! its order (unknown command or subcommand, arity, the RESP2 subscribed
//! context), then calls the handler. Handlers live one family per file:
//! [`connection`] (PING, HELLO, CLIENT, ...), [`pubsub`] (PUBLISH,
//! SUBSCRIBE, PUBSUB, ...) and [`server`] (INFO, CONFIG, COMMAND, ...).
//! Each handler gets the connection's [`Client`] and the arguments, and
//! queues its reply on the client.

pub mod connection;
pub mod docs;
pub mod pubsub;
pub mod server;

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::connection::{Client, ReplyMode};

/// A command handler: runs the command and queues its reply.
pub type Handler = fn(&mut Client, &[Bytes]);

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
}

const fn cmd(name: &'static str, arity: i32, handler: Handler) -> Spec {
    Spec {
        name,
        arity,
        pubsub_ok: false,
        handler,
        subcommands: &[],
    }
}

const fn pubsub_cmd(name: &'static str, arity: i32, handler: Handler) -> Spec {
    Spec {
        name,
        arity,
        pubsub_ok: true,
        handler,
        subcommands: &[],
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
    }
}

/// The handler of a container called with no subcommand: arity rules make
/// it unreachable except for COMMAND, which has its own.
fn no_subcommand(_: &mut Client, _: &[Bytes]) {}

/// Every command herald implements, alphabetically.
pub static TABLE: &[Spec] = &[
    cmd("auth", -2, connection::auth),
    container("client", -2, no_subcommand, connection::CLIENT_SUBCOMMANDS),
    container(
        "command",
        -1,
        server::command_all,
        server::COMMAND_SUBCOMMANDS,
    ),
    container("config", -2, no_subcommand, server::CONFIG_SUBCOMMANDS),
    cmd("dbsize", 1, server::dbsize),
    cmd("echo", 2, connection::echo),
    cmd("flushall", -1, server::flushall),
    cmd("flushdb", -1, server::flushdb),
    cmd("hello", -1, connection::hello),
    cmd("info", -1, server::info),
    pubsub_cmd("ping", -1, connection::ping),
    pubsub_cmd("psubscribe", -2, pubsub::psubscribe),
    cmd("publish", 3, pubsub::publish),
    container("pubsub", -2, no_subcommand, pubsub::PUBSUB_SUBCOMMANDS),
    pubsub_cmd("punsubscribe", -1, pubsub::punsubscribe),
    pubsub_cmd("quit", -1, connection::quit),
    pubsub_cmd("reset", 1, connection::reset),
    cmd("select", 2, connection::select),
    cmd("shutdown", -1, server::shutdown),
    cmd("spublish", 3, pubsub::spublish),
    pubsub_cmd("ssubscribe", -2, pubsub::ssubscribe),
    pubsub_cmd("subscribe", -2, pubsub::subscribe),
    pubsub_cmd("sunsubscribe", -1, pubsub::sunsubscribe),
    cmd("time", 1, server::time),
    pubsub_cmd("unsubscribe", -1, pubsub::unsubscribe),
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
    table
        .binary_search_by(|s| s.name.as_bytes().cmp(lower))
        .ok()
        .map(|i| &table[i])
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

/// Makes `text` safe inside an error line: Redis replaces CR and LF by spaces.
fn sanitize(text: &[u8]) -> String {
    String::from_utf8_lossy(text).replace(['\r', '\n'], " ")
}

/// `%.128s` of a C string: at most 128 bytes, stopping at a NUL byte.
fn c_str(arg: &[u8], max: usize) -> &[u8] {
    let end = memchr::memchr(0, arg).unwrap_or(arg.len()).min(max);
    &arg[..end]
}

/// Runs one command for `c` (called by the connection for each request).
pub fn execute(c: &mut Client, args: Vec<Bytes>) {
    let Some(name) = args.first() else {
        return;
    };
    let skip_after = match c.reply_mode {
        ReplyMode::SkipNext => {
            c.reply_mode = ReplyMode::Skip;
            true
        }
        ReplyMode::Skip => true,
        _ => false,
    };
    run(c, name, &args);
    if skip_after && c.reply_mode == ReplyMode::Skip {
        c.reply_mode = ReplyMode::On;
    }
}

fn run(c: &mut Client, name: &Bytes, args: &[Bytes]) {
    let Some(spec) = find(TABLE, name) else {
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
        let msg = format!(
            "ERR unknown command '{}', with args beginning with: {}",
            sanitize(c_str(name, 128)),
            sanitize(&list)
        );
        return reject(c, msg);
    };
    let (spec, fullname) = if !spec.subcommands.is_empty() && args.len() >= 2 {
        match find(spec.subcommands, &args[1]) {
            Some(sub) => (sub, format!("{}|{}", spec.name, sub.name)),
            None => {
                let msg = format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    sanitize(c_str(&args[1], 128)),
                    spec.name.to_ascii_uppercase()
                );
                return reject(c, msg);
            }
        }
    } else {
        (spec, spec.name.to_string())
    };
    let argc = args.len() as i32;
    if (spec.arity > 0 && spec.arity != argc) || argc < -spec.arity {
        return reject(
            c,
            format!("ERR wrong number of arguments for '{fullname}' command"),
        );
    }
    if c.in_resp2_pubsub() && !spec.pubsub_ok {
        return reject(
            c,
            format!(
                "ERR Can't execute '{fullname}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ),
        );
    }
    c.shared
        .stats
        .total_commands_processed
        .fetch_add(1, Ordering::Relaxed);
    c.current_cmd = fullname;
    (spec.handler)(c, args);
}

/// Replies with a command-rejection error (not counted as processed).
fn reject(c: &mut Client, msg: String) {
    c.shared
        .stats
        .total_error_replies
        .fetch_add(1, Ordering::Relaxed);
    c.error(msg);
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
}
