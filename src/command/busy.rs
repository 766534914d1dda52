//! Serving the other clients while a script runs past
//! `busy-reply-threshold` on the only worker, as Redis's
//! `processEventsWhileBlocked` does from its Lua hook.
//!
//! With one worker thread a quick script runs on it (no hand-off to the
//! scripting thread). If such a script, having written, then runs long,
//! every other connection's task waits behind it. The script's hook then
//! calls [`serve`] every few milliseconds, which reads the sockets of the
//! clients whose tasks wait for requests with nothing buffered
//! (`busy_service::READY`), and answers their complete requests as the
//! command path would while the script is busy: `-BUSY` for what may not
//! run, SCRIPT KILL and FUNCTION KILL (which refuse a script that wrote),
//! SHUTDOWN NOSAVE (which exits). A request that may run while a script is
//! busy (AUTH, HELLO, MULTI, WATCH ...), an unknown command, or anything the
//! parser refuses is left, with all that follows it, for the client's task
//! to run in order once the script ends.
//!
//! A client in the middle of a request, in a transaction, blocked, or over
//! TLS is not read: it waits for the script's end, as do connections to
//! the Unix socket that is not accepted here.

use bytes::{Bytes, BytesMut};

use crate::engine::gate::Holder;
use crate::net::handle::{busy_service, BusyInput, ClientHandle};
use crate::protocol::parse::RequestParser;
use crate::state::Shared;

/// The most bytes read from one client per call: a client that floods the
/// server meanwhile is read no further until the script ends.
const INPUT_LIMIT: usize = 64 * 1024;

/// What to do with one request.
enum Verdict {
    /// Reply with this error text (counted as a rejected command).
    Refuse(&'static str, Option<usize>),
    /// Reply with this (SCRIPT KILL, FUNCTION KILL).
    Reply(Result<(), &'static str>),
    /// Leave it, and what follows, to the client's task.
    Hold,
    /// SHUTDOWN NOSAVE from a trusted client.
    Exit,
}

/// Reads and answers the requests of every waiting client but `caller`
/// (the script's own, whose task reads its socket). Called from the hook of
/// a busy script on the worker: it must not touch the keyspace, the Lua
/// states or anything else the script holds.
pub fn serve(shared: &Shared, caller: u64) {
    let Some(holder) = shared.engine.gate.busy() else {
        return;
    };
    let max_bulk = shared.config.read().proto_max_bulk_len;
    for handle in shared.clients.all() {
        let bits = handle.busy_service();
        if handle.id == caller || bits & busy_service::READY == 0 || handle.is_killed() {
            continue;
        }
        let mut exit = false;
        handle.serve_busy_input(INPUT_LIMIT, |input| {
            exit = answer(shared, &handle, bits, holder, max_bulk, input);
        });
        if exit {
            exit_now(shared);
        }
        handle.write_queued();
    }
}

/// Answers the complete requests at the start of `input` (see [`Verdict`]);
/// true when one was a SHUTDOWN NOSAVE to obey.
fn answer(
    shared: &Shared,
    handle: &ClientHandle,
    bits: u8,
    holder: Holder,
    max_bulk: usize,
    input: &mut BusyInput,
) -> bool {
    let mut parser = RequestParser::new(max_bulk);
    // The parser consumes a request it has only part of: the bytes from
    // the first request not answered are kept from this copy.
    let all = input.bytes.clone().freeze();
    let mut rest = std::mem::take(&mut input.bytes);
    let mut answered = 0;
    loop {
        let args = match parser.next(&mut rest) {
            Ok(Some(args)) => args,
            Ok(None) => {
                // A request not complete yet (the parser holds what it
                // took of it): read again from its start next time.
                if !parser.in_progress() {
                    answered = all.len() - rest.len();
                }
                break;
            }
            // One the parser refuses: the task reads it, gives the error.
            Err(_) => {
                input.held = true;
                break;
            }
        };
        match verdict(shared, &args, bits, holder) {
            Verdict::Refuse(text, id) => {
                if let Some(id) = id {
                    let count = super::flags::names().len();
                    shared.observe.cmdstats.rejected(id, count);
                }
                reply_error(shared, handle, text);
            }
            Verdict::Reply(Ok(())) => {
                handle.push(Bytes::from_static(b"+OK\r\n"));
            }
            Verdict::Reply(Err(text)) => reply_error(shared, handle, text),
            Verdict::Exit => return true,
            Verdict::Hold => {
                input.held = true;
                break;
            }
        }
        answered = all.len() - rest.len();
    }
    input.bytes = BytesMut::from(&all[answered..]);
    false
}

/// See [`Verdict`]: as `command::execute` decides while a script is busy.
fn verdict(shared: &Shared, args: &[Bytes], bits: u8, holder: Holder) -> Verdict {
    let busy = match holder {
        Holder::Eval => crate::scripting::BUSY_EVAL,
        Holder::Function => crate::scripting::BUSY_FUNCTION,
    };
    let Some(spec) = super::find_renamed(shared, &args[0]) else {
        return Verdict::Hold;
    };
    let sub = match (spec.subcommands.is_empty(), args.get(1)) {
        (false, Some(name)) => super::find(spec.subcommands, name),
        _ => None,
    };
    let called = sub.unwrap_or(spec);
    if super::flags::of(called) & super::flags::ALLOW_BUSY == 0 {
        return Verdict::Refuse(busy, super::flags::id(called));
    }
    match (spec.name, sub.map(|s| s.name)) {
        ("shutdown", _) => {
            let nosave = args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"nosave"));
            let abort = args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"abort"));
            if !nosave && !abort {
                // Only SHUTDOWN NOSAVE may stop a busy script (Redis's
                // shutdownCommand).
                Verdict::Refuse(busy, None)
            } else if nosave && !abort && bits & busy_service::TRUSTED != 0 {
                Verdict::Exit
            } else {
                Verdict::Hold
            }
        }
        ("script", Some("kill")) if args.len() == 2 => {
            Verdict::Reply(shared.scripting.running.kill(true))
        }
        ("function", Some("kill")) if args.len() == 2 => {
            Verdict::Reply(shared.scripting.running.kill(false))
        }
        _ => Verdict::Hold,
    }
}

/// Queues `-text` for the client, counted as an error reply.
fn reply_error(shared: &Shared, handle: &ClientHandle, text: &str) {
    shared.stats.count_error(text.as_bytes());
    let mut out = Vec::with_capacity(text.len() + 3);
    out.push(b'-');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
    handle.push(Bytes::from(out));
}

/// SHUTDOWN NOSAVE while the script holds the worker: the shutdown is done
/// here (the AOF flushed, no save), then the process leaves at once, as
/// Redis does; the script is never resumed.
fn exit_now(shared: &Shared) {
    tracing::warn!("User requested shutdown...");
    let how = crate::persist::save::ShutdownSave {
        nosave: true,
        ..Default::default()
    };
    if crate::persist::save::at_shutdown(shared, how).is_err() {
        tracing::warn!("Errors trying to shut down the server.");
    }
    let (dir, pidfile, unixsocket) = {
        let cfg = shared.config.read();
        (
            cfg.dir.clone(),
            cfg.value("pidfile"),
            cfg.value("unixsocket"),
        )
    };
    if let Some(path) = unixsocket.filter(|p| !p.is_empty()) {
        crate::net::listener::remove_unix_socket(std::path::Path::new(&path));
    }
    if let Some(p) = pidfile.filter(|p| !p.is_empty()) {
        let _ = std::fs::remove_file(dir.join(p));
    }
    tracing::info!("herald is now ready to exit, bye bye...");
    std::process::exit(0);
}
