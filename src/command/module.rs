//! MODULE: herald loads no Redis modules (they are C libraries written
//! against redis-server's internals), so MODULE LIST is always empty and
//! the loaders fail as a failed load fails in Redis 7.0, with a log line
//! that says why. LOAD, LOADEX and UNLOAD are protected commands: refused
//! unless `enable-module-command` allows them, as Redis does by default.

use bytes::Bytes;

use super::client::Client;
use super::{cmd, protected, reply_help, Spec};
use crate::protocol::Frame;

/// MODULE's subcommands, with Redis 7.0's arities.
pub static MODULE_SUBCOMMANDS: &[Spec] = &[
    cmd("help", 2, help),
    cmd("list", 2, list),
    protected(cmd("load", -3, load), "enable-module-command"),
    protected(cmd("loadex", -3, load), "enable-module-command"),
    protected(cmd("unload", 3, unload), "enable-module-command"),
];

fn help(c: &mut Client, _: &[Bytes]) {
    reply_help(
        c,
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    );
}

fn list(c: &mut Client, _: &[Bytes]) {
    c.reply(Frame::Array(Vec::new()));
}

fn load(c: &mut Client, args: &[Bytes]) {
    tracing::warn!(
        "Module {} failed to load: herald does not load Redis modules",
        String::from_utf8_lossy(&args[2])
    );
    c.error("ERR Error loading the extension. Please check the server logs.");
}

fn unload(c: &mut Client, _: &[Bytes]) {
    c.error("ERR Error unloading module: no such module with that name");
}
