//! The ACL command: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT,
//! GENPASS, LOG, SAVE, LOAD, DRYRUN and HELP, with redis-server 7.0's
//! replies and error texts. The users and the checks live in
//! [`crate::acl`].

use bytes::Bytes;

use super::{cmd, parse_i64, reply_help, Spec, ERR_NOT_INTEGER};
use crate::acl::{self, table::table, Rules};
use crate::command::Client;
use crate::protocol::Frame;

/// ACL subcommands (sorted by name), with Redis 7.0's arities.
pub static ACL_SUBCOMMANDS: &[Spec] = &[
    cmd("cat", -2, acl_cat),
    cmd("deluser", -3, acl_deluser),
    cmd("dryrun", -4, acl_dryrun),
    cmd("genpass", -2, acl_genpass),
    cmd("getuser", 3, acl_getuser),
    cmd("help", 2, acl_help),
    cmd("list", 2, acl_list),
    cmd("load", 2, acl_load),
    cmd("log", -2, acl_log),
    cmd("save", 2, acl_save),
    cmd("setuser", -3, acl_setuser),
    cmd("users", 2, acl_users),
    cmd("whoami", 2, acl_whoami),
];

/// An error reply built from bytes, with CR and LF made spaces and the
/// `%s` arguments cut at a NUL byte, as Redis's `addReplyErrorFormat`.
fn error_bytes(c: &mut Client, parts: &[&[u8]]) {
    let mut msg = Vec::new();
    for p in parts {
        msg.extend(
            p.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
    c.reply(Frame::Error(Bytes::from(msg)));
}

/// Redis's `addReplySubcommandSyntaxError` for ACL.
fn syntax_error(c: &mut Client, args: &[Bytes]) {
    let sub = crate::util::c_str(&args[1]);
    error_bytes(
        c,
        &[
            b"ERR unknown subcommand or wrong number of arguments for '",
            &sub[..sub.len().min(128)],
            b"'. Try ACL HELP.",
        ],
    );
}

fn bulk(b: impl Into<Vec<u8>>) -> Frame {
    Frame::Bulk(Bytes::from(b.into()))
}

/// ACL SETUSER username [rule ...]: validates every rule on a copy, then
/// applies them all (or none), then closes the user's subscribers whose
/// subscriptions are no longer allowed.
fn acl_setuser(c: &mut Client, args: &[Bytes]) {
    let name = &args[2];
    if acl::rules::has_spaces(name) {
        return c.error("ERR Usernames can't contain spaces or null characters");
    }
    let ops: Vec<&[u8]> = args[3..].iter().map(|a| &a[..]).collect();
    let merged = match acl::rules::merge_selector_args(&ops) {
        Ok(m) => m,
        Err(j) => {
            return error_bytes(
                c,
                &[
                    b"ERR Unmatched parenthesis in acl selector starting at '",
                    crate::util::c_str(&args[j + 3]),
                    b"'.",
                ],
            )
        }
    };
    let shared = c.shared.clone();
    let _admin = shared.acl.admin.lock();
    let pubsub_all = shared.acl.pubsub_all();
    let mut rules = match shared.acl.user(name) {
        Some(u) => u.rules().clone(),
        None => Rules::new(pubsub_all),
    };
    for op in &merged {
        if let Err(e) = rules.apply(op, pubsub_all) {
            return error_bytes(
                c,
                &[
                    b"ERR Error in ACL SETUSER modifier '",
                    crate::util::c_str(op),
                    b"': ",
                    e.message().as_bytes(),
                ],
            );
        }
    }
    let (user, old) = shared.acl.set_user(name, rules);
    if let Some(old) = old {
        super::auth::kill_pubsub_clients_if_needed(c, &user, &old);
    }
    c.reply(Frame::ok());
}

/// ACL DELUSER username [username ...]: closes their connections.
fn acl_deluser(c: &mut Client, args: &[Bytes]) {
    if args[2..].iter().any(|n| n.as_ref() == b"default") {
        return c.error("ERR The 'default' user cannot be removed");
    }
    let shared = c.shared.clone();
    let _admin = shared.acl.admin.lock();
    let mut deleted = 0;
    for name in &args[2..] {
        if let Some(u) = shared.acl.remove_user(name) {
            super::auth::kill_clients_of(c, &u);
            deleted += 1;
        }
    }
    c.reply(Frame::Integer(deleted));
}

/// ACL GETUSER username: flags, passwords, and the root selector's
/// commands, keys and channels, then the other selectors.
fn acl_getuser(c: &mut Client, args: &[Bytes]) {
    let Some(u) = c.shared.acl.user(&args[2]) else {
        return c.reply(Frame::Null);
    };
    let r = u.rules();
    let selector = |s: &acl::Selector| {
        vec![
            (bulk("commands"), bulk(s.commands_field())),
            (bulk("keys"), bulk(s.keys_field())),
            (bulk("channels"), bulk(s.channels_field())),
        ]
    };
    let mut fields = vec![
        (
            bulk("flags"),
            Frame::Set(r.flag_names().into_iter().map(bulk).collect()),
        ),
        (
            bulk("passwords"),
            Frame::Array(r.passwords.iter().map(|p| bulk(p.as_str())).collect()),
        ),
    ];
    fields.extend(selector(r.root()));
    fields.push((
        bulk("selectors"),
        Frame::Array(
            r.selectors[1..]
                .iter()
                .map(|s| Frame::Map(selector(s)))
                .collect(),
        ),
    ));
    drop(r);
    c.reply(Frame::Map(fields));
}

/// ACL LIST: every user in ACL file form.
fn acl_list(c: &mut Client, _args: &[Bytes]) {
    let items = c
        .shared
        .acl
        .users()
        .iter()
        .map(|u| {
            let mut line = b"user ".to_vec();
            line.extend_from_slice(&u.name);
            line.push(b' ');
            line.extend(u.rules().describe());
            bulk(line)
        })
        .collect();
    c.reply(Frame::Array(items));
}

/// ACL USERS: the user names.
fn acl_users(c: &mut Client, _args: &[Bytes]) {
    let items = c
        .shared
        .acl
        .users()
        .iter()
        .map(|u| Frame::Bulk(u.name.clone()))
        .collect();
    c.reply(Frame::Array(items));
}

/// ACL WHOAMI.
fn acl_whoami(c: &mut Client, _args: &[Bytes]) {
    let reply = match &c.user {
        Some(u) => Frame::Bulk(u.name.clone()),
        None => Frame::Null,
    };
    c.reply(reply);
}

/// ACL CAT [category].
fn acl_cat(c: &mut Client, args: &[Bytes]) {
    match args.len() {
        2 => c.reply(Frame::Array(
            acl::table::CATEGORIES.iter().map(|n| bulk(*n)).collect(),
        )),
        3 => {
            let Some(flag) = acl::table::category(crate::util::c_str(&args[2])) else {
                let name = crate::util::c_str(&args[2]);
                return error_bytes(
                    c,
                    &[
                        b"ERR Unknown category '",
                        &name[..name.len().min(128)],
                        b"'",
                    ],
                );
            };
            let names = table()
                .cmds
                .iter()
                .filter(|cmd| cmd.categories & flag != 0)
                .map(|cmd| bulk(cmd.name))
                .collect();
            c.reply(Frame::Array(names));
        }
        _ => syntax_error(c, args),
    }
}

/// ACL GENPASS [bits]: random hex from the OS's generator.
fn acl_genpass(c: &mut Client, args: &[Bytes]) {
    const MAX_BITS: i64 = 4096;
    let bits = match args.len() {
        2 => 256,
        3 => match parse_i64(&args[2]) {
            Some(b) => b,
            None => return c.error(ERR_NOT_INTEGER),
        },
        _ => return syntax_error(c, args),
    };
    if bits <= 0 || bits > MAX_BITS {
        return c.error(format!(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to {MAX_BITS}"
        ));
    }
    use rand::RngCore;
    let chars = ((bits + 3) / 4) as usize;
    let mut raw = vec![0u8; chars.div_ceil(2)];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let mut hex = String::with_capacity(chars + 1);
    for b in raw {
        hex.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        hex.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    hex.truncate(chars);
    c.reply(bulk(hex));
}

/// ACL LOG [count | RESET].
fn acl_log(c: &mut Client, args: &[Bytes]) {
    let mut count: i64 = 10;
    match args.len() {
        2 => {}
        3 => {
            if crate::util::c_str(&args[2]).eq_ignore_ascii_case(b"reset") {
                c.shared.acl.log.lock().reset();
                return c.reply(Frame::ok());
            }
            match parse_i64(&args[2]) {
                Some(n) => count = n.max(0),
                None => return c.error(ERR_NOT_INTEGER),
            }
        }
        _ => return syntax_error(c, args),
    }
    let reply = c.shared.acl.log.lock().reply(count as usize);
    c.reply(reply);
}

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// ACL LOAD: replaces every user with the ACL file's, all or nothing;
/// connections of the replaced users are closed.
fn acl_load(c: &mut Client, _args: &[Bytes]) {
    let Some((path, shown)) = c.shared.config.read().acl_file() else {
        return c.error(NO_ACL_FILE);
    };
    let shared = c.shared.clone();
    let _admin = shared.acl.admin.lock();
    match acl::file::parse_acl_file(&path, &shown, shared.acl.pubsub_all()) {
        Ok(users) => {
            for old in shared.acl.replace_all(users) {
                super::auth::kill_clients_of(c, &old);
            }
            c.reply(Frame::ok());
        }
        Err(e) => c.error(format!("ERR {e}")),
    }
}

/// ACL SAVE: writes the users to the ACL file (temporary file, then rename).
fn acl_save(c: &mut Client, _args: &[Bytes]) {
    let Some((path, _)) = c.shared.config.read().acl_file() else {
        return c.error(NO_ACL_FILE);
    };
    let text = acl::file::acl_file_text(&c.shared.acl);
    let mut tmp = path.clone().into_os_string();
    tmp.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        crate::util::now_ms()
    ));
    let tmp = std::path::PathBuf::from(tmp);
    let result = std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, &path));
    match result {
        Ok(()) => c.reply(Frame::ok()),
        Err(e) => {
            tracing::warn!("Writing ACL file for ACL SAVE: {e}");
            let _ = std::fs::remove_file(&tmp);
            c.error("ERR There was an error trying to save the ACLs. Please check the server logs for more information");
        }
    }
}

/// ACL DRYRUN username command [arg ...]: would the user be allowed?
fn acl_dryrun(c: &mut Client, args: &[Bytes]) {
    let Some(u) = c.shared.acl.user(&args[2]) else {
        return error_bytes(
            c,
            &[b"ERR User '", crate::util::c_str(&args[2]), b"' not found"],
        );
    };
    let t = table();
    let argv = &args[3..];
    // The command as the dispatcher would find it (after rename-command),
    // checked by its original name, as ACL rules name it.
    use crate::config::rename::Resolved;
    let typed = match c.shared.command_names.resolve(&argv[0]) {
        Resolved::Same(n) => Some(n),
        Resolved::Renamed(orig) => Some(orig.as_bytes()),
        Resolved::Gone => None,
    };
    let base = typed
        .and_then(|n| String::from_utf8(n.to_ascii_lowercase()).ok())
        .filter(|n| !n.contains('|'))
        .and_then(|n| t.id(&n));
    let id = base.and_then(|b| {
        if argv.len() == 1 || t.cmds[b].subs.is_empty() {
            return Some(b);
        }
        let sub = String::from_utf8(argv[1].to_ascii_lowercase()).ok()?;
        t.id(&format!("{}|{sub}", t.cmds[b].name))
    });
    let Some(id) = id else {
        return error_bytes(
            c,
            &[
                b"ERR Command '",
                crate::util::c_str(&argv[0]),
                b"' not found",
            ],
        );
    };
    let name = t.cmds[id].name;
    let arity = crate::catalog::arity(name).unwrap_or(-1);
    let n = argv.len() as i64;
    if (arity > 0 && arity != n) || n < -arity {
        return c.error(format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    match acl::check::dry_run(&u, id, argv) {
        Ok(()) => c.reply(Frame::ok()),
        Err(d) => {
            let text = match d {
                acl::Denied::Command => format!(
                    "This user has no permissions to run the '{}' command",
                    t.cmds[id].name
                )
                .into_bytes(),
                acl::Denied::Key(p) => [
                    &b"This user has no permissions to access the '"[..],
                    crate::util::c_str(&argv[p]),
                    &b"' key"[..],
                ]
                .concat(),
                acl::Denied::Channel(p) => [
                    &b"This user has no permissions to access the '"[..],
                    crate::util::c_str(&argv[p]),
                    &b"' channel"[..],
                ]
                .concat(),
            };
            c.reply(bulk(text));
        }
    }
}

fn acl_help(c: &mut Client, _args: &[Bytes]) {
    reply_help(
        c,
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
}
