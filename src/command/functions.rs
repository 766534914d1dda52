//! FUNCTION and FCALL / FCALL_RO: loading Lua libraries and calling their
//! functions (the Lua side is `scripting::functions`). A function runs as
//! an EVAL script does (`command::scripting::run_script`): with the
//! keyspace to itself, its commands on the script client, its effects as
//! one unit.

use bytes::Bytes;

use super::scripting::{run_script, split_keys, Body, Job};
use super::{reply_help, Client, Spec};
use crate::engine::gate::Holder;
use crate::protocol::Frame;
use crate::scripting::functions::{dump, undump};
use crate::scripting::Flags;

/// FCALL function numkeys [key ...] [arg ...]
pub fn fcall(c: &mut Client, args: &[Bytes]) {
    fcall_generic(c, args, false);
}

/// FCALL_RO: FCALL of a function flagged `no-writes`.
pub fn fcall_ro(c: &mut Client, args: &[Bytes]) {
    fcall_generic(c, args, true);
}

fn fcall_generic(c: &mut Client, args: &[Bytes], read_only: bool) {
    if super::parse_i64(&args[2]).is_none() {
        return c.error("ERR Bad number of keys provided");
    }
    let nkeys = match split_keys(args, 2) {
        Ok((keys, _)) => keys.len(),
        Err(e) => return c.error(e),
    };
    let job = Job {
        args: std::borrow::Cow::Borrowed(args),
        nkeys,
        holder: Holder::Function,
        flags: Flags(0),
        read_only,
    };
    run_script(c, job, prepare_fcall);
}

/// FCALL's [`Prepare`](super::scripting::Prepare): the function, or the
/// error.
fn prepare_fcall(
    _: &crate::state::Shared,
    engines: &mut crate::scripting::Engines,
    job: &Job,
) -> Result<(Flags, Body), String> {
    let Some((_, info)) = engines.functions.function(&job.args[1]) else {
        return Err("ERR Function not found".to_string());
    };
    let flags = info.flags;
    let name = String::from_utf8_lossy(&job.args[1]).into_owned();
    let command = job.args.to_vec();
    let body: Body = Box::new(move |engines, _, keys, argv, ctx, running| {
        *running.current.lock() = Some((name.clone(), command));
        engines.functions.run(&name, keys, argv, ctx, running)
    });
    Ok((flags, body))
}

/// FUNCTION LOAD [REPLACE] code
pub fn function_load(c: &mut Client, args: &[Bytes]) {
    let mut replace = false;
    for opt in &args[2..args.len() - 1] {
        if opt.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else {
            return c.error(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(opt)
            ));
        }
    }
    let code = args[args.len() - 1].clone();
    match change_libraries(c, args, |lib| lib.load(&code, replace)) {
        Ok(name) => c.reply(Frame::bulk(name)),
        Err(e) => c.error(e),
    }
}

/// Applies a change to the libraries and logs the command that made it,
/// under the current database's lock: an AOF rewrite (which snapshots the
/// libraries with every database locked, see
/// [`Scripting::libraries`](crate::scripting::Scripting::libraries)) sees
/// the change either in its base file or in the new incremental file,
/// never in both nor in neither. Functions live outside the databases but
/// persist as Redis persists them: the command goes to the AOF as given.
fn change_libraries<R>(
    c: &mut Client,
    args: &[Bytes],
    change: impl FnOnce(&mut crate::scripting::functions::Library) -> Result<R, String>,
) -> Result<R, String> {
    let shared = c.shared.clone();
    super::with_db(c, |_, db| {
        let mut engines = shared.scripting.engines();
        let r = change(&mut engines.functions);
        shared.scripting.libraries_changed(&engines);
        drop(engines);
        if r.is_ok() {
            db.propagate(args.to_vec());
        }
        r
    })
}

/// FUNCTION DELETE library
pub fn function_delete(c: &mut Client, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    let deleted = change_libraries(c, args, |lib| match lib.remove(&name) {
        Ok(true) => Ok(()),
        _ => Err("ERR Library not found".to_string()),
    });
    match deleted {
        Ok(()) => c.reply(Frame::ok()),
        Err(e) => c.error(e),
    }
}

/// FUNCTION FLUSH [ASYNC|SYNC]
pub fn function_flush(c: &mut Client, args: &[Bytes]) {
    if args.len() > 3 {
        return super::subcommand_syntax_error(c, args);
    }
    if args.len() == 3
        && !args[2].eq_ignore_ascii_case(b"sync")
        && !args[2].eq_ignore_ascii_case(b"async")
    {
        return c.error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    }
    let flushed = change_libraries(c, args, |lib| {
        lib.flush();
        Ok::<_, String>(())
    });
    match flushed {
        Ok(()) => c.reply(Frame::ok()),
        Err(e) => c.error(e),
    }
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
pub fn function_list(c: &mut Client, args: &[Bytes]) {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"withcode") && !with_code {
            with_code = true;
        } else if a.eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
            let Some(p) = args.get(i + 1) else {
                return c.error("ERR library name argument was not given");
            };
            pattern = Some(p);
            i += 1;
        } else {
            return c.error(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(a)
            ));
        }
        i += 1;
    }
    let shared = c.shared.clone();
    let engines = shared.scripting.engines();
    let mut out = Vec::new();
    for (name, lib) in engines.functions.libs() {
        if let Some(p) = pattern {
            if !crate::util::glob::matches(p, name.as_bytes()) {
                continue;
            }
        }
        let functions = lib
            .functions
            .iter()
            .map(|(f, info)| {
                let flags = Flags::NAMES
                    .iter()
                    .filter(|(_, bit)| info.flags.has(*bit))
                    // Redis adds each flag as a status reply.
                    .map(|(n, _)| Frame::simple(n))
                    .collect();
                Frame::Map(vec![
                    (Frame::bulk("name"), Frame::bulk(f.clone())),
                    (
                        Frame::bulk("description"),
                        info.description.clone().map_or(Frame::Null, Frame::Bulk),
                    ),
                    (Frame::bulk("flags"), Frame::Set(flags)),
                ])
            })
            .collect();
        let mut entry = vec![
            (Frame::bulk("library_name"), Frame::bulk(name.clone())),
            (Frame::bulk("engine"), Frame::bulk("LUA")),
            (Frame::bulk("functions"), Frame::Array(functions)),
        ];
        if with_code {
            entry.push((Frame::bulk("library_code"), Frame::Bulk(lib.code.clone())));
        }
        out.push(Frame::Map(entry));
    }
    drop(engines);
    c.reply(Frame::Array(out));
}

/// FUNCTION DUMP
pub fn function_dump(c: &mut Client, _args: &[Bytes]) {
    let shared = c.shared.clone();
    let compress = shared
        .config
        .read()
        .value("rdbcompression")
        .is_none_or(|v| v != "no");
    let payload = dump(shared.scripting.engines().functions.libs(), compress);
    c.reply(Frame::bulk(payload));
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
pub fn function_restore(c: &mut Client, args: &[Bytes]) {
    if args.len() > 4 {
        return super::subcommand_syntax_error(c, args);
    }
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    let policy =
        match args.get(3) {
            None => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
            Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
            Some(_) => return c.error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ),
        };
    let codes = match undump(&args[2]) {
        Ok(codes) => codes,
        Err(e) => return c.error(e.replacen("ERR payload", "ERR DUMP payload", 1)),
    };
    let restored = change_libraries(c, args, |lib| {
        // As Redis: the payload's libraries load into an empty context
        // first (a library twice in the payload, a bad one: refused with
        // nothing changed), then join the current ones.
        let mut loaded = lib.scratch()?;
        for code in &codes {
            loaded.load(code, false)?;
        }
        if policy == Policy::Flush {
            *lib = loaded;
            return Ok(());
        }
        let replaced: Vec<&String> = loaded
            .libs()
            .keys()
            .filter(|name| lib.libs().contains_key(*name))
            .collect();
        if let (Some(name), Policy::Append) = (replaced.first(), &policy) {
            return Err(format!("ERR Library {name} already exists"));
        }
        for new in loaded.libs().values() {
            for f in new.functions.keys() {
                if let Some((owner, _)) = lib.function(f.as_bytes()) {
                    if !replaced.iter().any(|r| r.as_str() == owner) {
                        return Err(format!("ERR Function {f} already exists"));
                    }
                }
            }
        }
        let saved = lib.snapshot();
        // The replaced libraries go first, so that their functions may
        // move to another library of the payload.
        for name in &replaced {
            if let Err(e) = lib.remove(name) {
                lib.restore_snapshot(saved);
                return Err(format!("ERR {e}"));
            }
        }
        for new in loaded.libs().values() {
            if let Err(e) = lib.load(&new.code, true) {
                lib.restore_snapshot(saved);
                return Err(e);
            }
        }
        Ok(())
    });
    match restored {
        Ok(()) => c.reply(Frame::ok()),
        Err(e) => c.error(e),
    }
}

/// FUNCTION STATS
pub fn function_stats(c: &mut Client, _args: &[Bytes]) {
    let shared = c.shared.clone();
    let running = &shared.scripting.running;
    let script = match &*running.current.lock() {
        Some((name, command)) => Frame::Map(vec![
            (Frame::bulk("name"), Frame::bulk(name.clone())),
            (
                Frame::bulk("command"),
                Frame::Array(command.iter().cloned().map(Frame::Bulk).collect()),
            ),
            (
                Frame::bulk("duration_ms"),
                Frame::Integer(running.elapsed_ms() as i64),
            ),
        ]),
        None => Frame::Null,
    };
    let (libraries, functions) = shared.scripting.function_counts();
    let lua = Frame::Map(vec![
        (
            Frame::bulk("libraries_count"),
            Frame::Integer(libraries as i64),
        ),
        (
            Frame::bulk("functions_count"),
            Frame::Integer(functions as i64),
        ),
    ]);
    c.reply(Frame::Map(vec![
        (Frame::bulk("running_script"), script),
        (
            Frame::bulk("engines"),
            Frame::Map(vec![(Frame::bulk("LUA"), lua)]),
        ),
    ]));
}

/// FUNCTION KILL
pub fn function_kill(c: &mut Client, _args: &[Bytes]) {
    match c.shared.scripting.running.kill(false) {
        Ok(()) => c.reply(Frame::ok()),
        Err(e) => c.error(e),
    }
}

/// FUNCTION HELP
pub fn function_help(c: &mut Client, _args: &[Bytes]) {
    reply_help(
        c,
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    );
}

/// FUNCTION's subcommands.
pub static FUNCTION_SUBCOMMANDS: &[Spec] = &[
    super::cmd("delete", 3, function_delete),
    super::cmd("dump", 2, function_dump),
    super::cmd("flush", -2, function_flush),
    super::cmd("help", 2, function_help),
    super::cmd("kill", 2, function_kill),
    super::cmd("list", -2, function_list),
    super::cmd("load", -3, function_load),
    super::cmd("restore", -3, function_restore),
    super::cmd("stats", 2, function_stats),
];
