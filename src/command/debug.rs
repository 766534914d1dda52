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
    "config-rewrite-force-all",
    "crash-and-recover",
    "digest",
    "digest-value",
    "htstats",
    "htstats-key",
    "jmap",
    "leak",
    "listpack",
    "loadaof",
    "mallctl",
    "mallctl-str",
    "object",
    "oom",
    "panic",
    "pause-cron",
    "populate",
    "protocol",
    "quicklist",
    "quicklist-packed-threshold",
    "reload",
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

fn help(c: &mut Client) {
    reply_help(
        c,
        "DEBUG",
        &[
            "ERROR <string>",
            "    Return a Redis protocol error with <string> as message. Useful for clients",
            "    unit tests to simulate Redis errors.",
            "LOG <message>",
            "    Write <message> to the server log.",
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
