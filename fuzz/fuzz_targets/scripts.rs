//! Fuzz target for herald's scripting entry points: arbitrary bytes as an
//! EVAL script body, a FUNCTION LOAD payload or a FUNCTION RESTORE payload,
//! run through `herald::execute` with an internal client
//! (`herald::Client::internal`), as the `commands` target runs commands. An
//! internal client runs a script right in the calling thread (no scripting
//! thread, no keyspace gate), so one input is one synchronous run.
//!
//! Input: byte 0 picks the mode, byte 1 is options, the rest is the payload.
//! Modes:
//! - 0: `EVAL_RO <payload> 1 k arg`;
//! - 1: `EVAL "#!lua flags=no-writes\n" + payload 1 k arg` (the shebang path);
//! - 2: as 0 after HELLO 3 (RESP3 replies, `redis.setresp(3)` paths);
//! - 3: `FUNCTION LOAD REPLACE <payload>`;
//! - 4: `FUNCTION LOAD REPLACE "#!lua name=fz\n" + payload` (past the
//!   metadata line, into the library's Lua);
//! - 5: `FUNCTION RESTORE <payload> [APPEND|REPLACE|FLUSH]` (option bits
//!   0-1 pick the policy, 3 = none).
//!
//! Modes 3 to 5 start with one library loaded (`fz`, function `f`) so that
//! LOAD REPLACE and RESTORE meet an existing library, then call FCALL_RO on
//! `f` and `g`, FUNCTION LIST WITHCODE and FUNCTION STATS.
//!
//! Checked: nothing panics (arithmetic overflow included: cargo-fuzz builds
//! with debug assertions), and whatever libraries are loaded survive their
//! own FUNCTION DUMP: RESTORE of it with FLUSH must succeed and leave the
//! same FUNCTION LIST WITHCODE.
//!
//! Scripts are read-only (EVAL_RO, a no-writes shebang, FCALL_RO), so
//! SCRIPT KILL can always stop them: a watchdog thread kills any script
//! that runs longer than [`SCRIPT_LIMIT`], which keeps `while true do end`
//! from being reported as a hang. FUNCTION LOAD has its own time limit (the
//! library's top level is stopped after 500 ms, as in Redis).

#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use herald::config::Config;
use herald::Client;
use herald::Shared;
use libfuzzer_sys::fuzz_target;

/// How long a script may run before the watchdog kills it.
const SCRIPT_LIMIT: Duration = Duration::from_millis(100);

/// The library modes 3 to 5 start with.
const BASE_LIBRARY: &str = "#!lua name=fz\nredis.register_function{function_name='f', \
    callback=function(keys, args) return {keys[1], args[1]} end, flags={'no-writes'}}";

/// The state of the input being run, for the watchdog.
fn current() -> &'static Mutex<Option<Arc<Shared>>> {
    static CURRENT: OnceLock<Mutex<Option<Arc<Shared>>>> = OnceLock::new();
    CURRENT.get_or_init(|| {
        std::thread::Builder::new()
            .name("fuzz-watchdog".into())
            .spawn(|| loop {
                std::thread::sleep(SCRIPT_LIMIT / 4);
                let shared = current().lock().unwrap().clone();
                if let Some(shared) = shared {
                    let running = &shared.scripting.running;
                    if running.elapsed_ms() > SCRIPT_LIMIT.as_millis() as u64 {
                        // One of the two applies (EVAL or FCALL); the other
                        // is refused.
                        let _ = running.kill(true);
                        let _ = running.kill(false);
                    }
                }
            })
            .expect("watchdog thread");
        Mutex::new(None)
    })
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Runs one command; its reply bytes.
fn run(client: &mut Client, args: Vec<Bytes>) -> Vec<u8> {
    herald::execute(client, args);
    let out = client.out.to_vec();
    client.out.clear();
    out
}

/// The payload of a `$N\r\n...\r\n` reply.
fn bulk(reply: &[u8]) -> Option<&[u8]> {
    let rest = reply.strip_prefix(b"$")?;
    let end = rest.iter().position(|&c| c == b'\r')?;
    let n: usize = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    rest.get(end + 2..end + 2 + n)
}

fn eval(client: &mut Client, body: Bytes) {
    run(client, vec![b("EVAL_RO"), body, b("1"), b("k"), b("arg")]);
}

fn exercise_functions(client: &mut Client) {
    for name in ["f", "g"] {
        run(
            client,
            vec![b("FCALL_RO"), b(name), b("1"), b("k"), b("arg")],
        );
    }
    run(client, vec![b("FUNCTION"), b("STATS")]);
    let list = |client: &mut Client| run(client, vec![b("FUNCTION"), b("LIST"), b("WITHCODE")]);
    let before = list(client);
    let dump = run(client, vec![b("FUNCTION"), b("DUMP")]);
    let payload = bulk(&dump)
        .unwrap_or_else(|| panic!("FUNCTION DUMP replied {:?}", String::from_utf8_lossy(&dump)));
    let restored = run(
        client,
        vec![
            b("FUNCTION"),
            b("RESTORE"),
            Bytes::copy_from_slice(payload),
            b("FLUSH"),
        ],
    );
    assert_eq!(
        restored,
        b"+OK\r\n",
        "RESTORE FLUSH of the server's own DUMP failed: {}",
        String::from_utf8_lossy(&restored)
    );
    assert_eq!(
        String::from_utf8_lossy(&list(client)),
        String::from_utf8_lossy(&before),
        "FUNCTION LIST changed across DUMP + RESTORE FLUSH"
    );
}

fuzz_target!(|data: &[u8]| {
    let [mode, options, payload @ ..] = data else {
        return;
    };
    let payload = Bytes::copy_from_slice(payload);
    let shared = Shared::new(Config {
        port: 0,
        ..Config::default()
    });
    *current().lock().unwrap() = Some(shared.clone());
    let mut client = Client::internal(shared.clone());
    match mode % 6 {
        0 => eval(&mut client, payload),
        1 => {
            let mut body = b"#!lua flags=no-writes\n".to_vec();
            body.extend_from_slice(&payload);
            run(
                &mut client,
                vec![b("EVAL"), Bytes::from(body), b("1"), b("k"), b("arg")],
            );
        }
        2 => {
            run(&mut client, vec![b("HELLO"), b("3")]);
            eval(&mut client, payload);
        }
        m => {
            let base = run(&mut client, vec![b("FUNCTION"), b("LOAD"), b(BASE_LIBRARY)]);
            assert_eq!(bulk(&base), Some(&b"fz"[..]), "the base library loads");
            match m {
                3 => {
                    run(
                        &mut client,
                        vec![b("FUNCTION"), b("LOAD"), b("REPLACE"), payload],
                    );
                }
                4 => {
                    let mut code = b"#!lua name=fz\n".to_vec();
                    code.extend_from_slice(&payload);
                    run(
                        &mut client,
                        vec![b("FUNCTION"), b("LOAD"), b("REPLACE"), Bytes::from(code)],
                    );
                }
                _ => {
                    let mut args = vec![b("FUNCTION"), b("RESTORE"), payload];
                    match options & 3 {
                        0 => args.push(b("APPEND")),
                        1 => args.push(b("REPLACE")),
                        2 => args.push(b("FLUSH")),
                        _ => {}
                    }
                    run(&mut client, args);
                }
            }
            exercise_functions(&mut client);
        }
    }
    client.release();
    *current().lock().unwrap() = None;
});
