//! Lua scripting seen from clients, over TCP with the `redis` crate: what a
//! byte-for-byte comparison of one connection (tests/differential) cannot
//! show, because it needs several clients, time or a restart.
//!
//! - EVALSHA after SCRIPT LOAD, NOSCRIPT after SCRIPT FLUSH;
//! - the time stands still for a script's commands;
//! - a script's writes are atomic for other clients;
//! - a script looping past `busy-reply-threshold` makes other clients get
//!   `-BUSY`, SCRIPT KILL ends it; FUNCTION KILL likewise for a function;
//!   also a script that ran quickly before (which herald runs on a worker
//!   until it loops), and a script run by EXEC;
//! - a script that has written cannot be killed (`-UNKILLABLE`); SHUTDOWN
//!   NOSAVE then ends the server (a server process the test owns);
//! - a script's writes raise keyspace events, invalidate WATCH, and serve a
//!   client blocked in BLPOP with the state the script left;
//! - functions (and a script's writes) survive a restart and an AOF rewrite
//!   with `appendonly yes`, and redis-server loads the files;
//! - ACL: a user's missing command or key permission is refused inside the
//!   script, with Redis's texts, and logged with context `lua`.
//!
//! Most tests use `common::start_server`, so they also run against a
//! redis-server named by `HERALD_TEST_SERVER_PORT` (which checks the tests
//! themselves); the tests that need their own server process or an AOF
//! directory start herald themselves, and the UNKILLABLE test runs against
//! both herald and redis-server.
//!
//! Waits are replies and reads with timeouts, or bounded polls where
//! nothing announces the awaited state (a script turning busy, a client
//! blocking); nothing sleeps to wait.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::KillOnDrop;
use redis::{Connection, RedisError, Value};

/// Read timeout of ordinary connections.
const TIMEOUT: Duration = Duration::from_secs(10);

fn connect_port(port: u16) -> Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let con = client.get_connection().expect("connect");
    con.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    con
}

fn cmd(con: &mut Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
}

/// Runs a command that must succeed.
fn ok(con: &mut Connection, args: &[&str]) -> Value {
    cmd(con, args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Runs a command that must fail; its error.
fn err(con: &mut Connection, args: &[&str]) -> RedisError {
    match cmd(con, args) {
        Ok(v) => panic!("{args:?} succeeded with {v:?}, expected an error"),
        Err(e) => e,
    }
}

fn text(v: &Value) -> String {
    common::text(v)
}

/// Sends PING until the reply is `-BUSY` (the script has passed the
/// threshold); returns that error's text. Before the threshold PING waits
/// for the script, so this is mostly one round trip; the poll covers the
/// script not having started yet.
fn wait_busy(con: &mut Connection) -> String {
    common::poll(TIMEOUT, || match cmd(con, &["PING"]) {
        Err(e) if e.code() == Some("BUSY") => Some(e.to_string()),
        _ => None,
    })
    .expect("the server never answered -BUSY while the script ran")
}

/// `CONFIG SET busy-reply-threshold`, set back to Redis's default when
/// dropped (the server may be a shared external one).
struct BusyThreshold(u16);

impl BusyThreshold {
    fn set(port: u16, ms: &str) -> BusyThreshold {
        let mut c = connect_port(port);
        common::config_set(&mut c, "busy-reply-threshold", ms);
        BusyThreshold(port)
    }
}

impl Drop for BusyThreshold {
    fn drop(&mut self) {
        if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{}/", self.0)) {
            if let Ok(mut c) = client.get_connection() {
                let _ = cmd(&mut c, &["CONFIG", "SET", "busy-reply-threshold", "5000"]);
            }
        }
    }
}

#[test]
fn evalsha_runs_a_loaded_script_until_script_flush() {
    let s = common::start_server();
    let mut c = connect_port(s.port());
    ok(&mut c, &["SCRIPT", "FLUSH"]);
    let body = "return {KEYS[1], ARGV[1], redis.call('incr', KEYS[1])}";
    let sha = text(&ok(&mut c, &["SCRIPT", "LOAD", body]));
    assert_eq!(sha.len(), 40);
    let exists = ok(&mut c, &["SCRIPT", "EXISTS", &sha]);
    assert_eq!(exists, Value::Array(vec![Value::Int(1)]));
    ok(&mut c, &["DEL", "sc:evalsha"]);
    let reply = ok(&mut c, &["EVALSHA", &sha, "1", "sc:evalsha", "arg"]);
    let Value::Array(items) = &reply else {
        panic!("{reply:?}")
    };
    assert_eq!(
        items.iter().map(text).collect::<Vec<_>>(),
        ["sc:evalsha", "arg", "1"]
    );
    // The loaded script writes: EVALSHA_RO runs it and refuses the write.
    let e = err(&mut c, &["EVALSHA_RO", &sha, "1", "sc:evalsha", "arg"]);
    assert!(
        e.to_string()
            .contains("Write commands are not allowed from read-only scripts"),
        "{e}"
    );
    ok(&mut c, &["SCRIPT", "FLUSH"]);
    let e = err(&mut c, &["EVALSHA", &sha, "1", "sc:evalsha", "arg"]);
    assert_eq!(e.code(), Some("NOSCRIPT"), "{e}");
    assert_eq!(text(&ok(&mut c, &["GET", "sc:evalsha"])), "1");
}

/// Redis freezes the time for a script: a key that expires while the script
/// runs still exists for the script's commands, and is gone for the next
/// command after it.
#[test]
fn the_time_stands_still_while_a_script_runs() {
    let s = common::start_server();
    let mut c = connect_port(s.port());
    ok(&mut c, &["DEL", "sc:frozen"]);
    // The script waits for TIME (which does move) to pass 30 ms after it
    // set a key that expires in 5 ms.
    let body = "redis.call('SET', KEYS[1], 'v', 'PX', 5)
        local function us() local t = redis.call('TIME') return t[1] * 1000000 + t[2] end
        local start = us()
        while us() - start < 30000 do end
        return redis.call('EXISTS', KEYS[1])";
    assert_eq!(ok(&mut c, &["EVAL", body, "1", "sc:frozen"]), Value::Int(1));
    assert_eq!(ok(&mut c, &["EXISTS", "sc:frozen"]), Value::Int(0));
}

#[test]
fn a_scripts_writes_are_atomic_for_other_clients() {
    const KEYS: usize = 10;
    const ROUNDS: usize = 300;
    let s = common::start_server();
    let port = s.port();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("sc:atomic:{{t}}{i}")).collect();
    let mut writer = connect_port(port);
    let mut setup: Vec<&str> = vec!["MSET"];
    for k in &keys {
        setup.push(k);
        setup.push("0");
    }
    ok(&mut writer, &setup);

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (keys, done) = (keys.clone(), done.clone());
        std::thread::spawn(move || {
            let mut c = connect_port(port);
            let mut reads = 0;
            loop {
                let finished = done.load(Ordering::Acquire);
                let mut mget = redis::cmd("MGET");
                for k in &keys {
                    mget.arg(k);
                }
                let values: Vec<String> = mget.query(&mut c).expect("mget");
                assert!(
                    values.iter().all(|v| *v == values[0]),
                    "a reader saw a script half done: {values:?}"
                );
                reads += 1;
                if finished {
                    return reads;
                }
            }
        })
    };
    let script = "for i = 1, #KEYS do redis.call('set', KEYS[i], ARGV[1]) end return #KEYS";
    for round in 1..=ROUNDS {
        let mut eval = redis::cmd("EVAL");
        eval.arg(script).arg(KEYS);
        for k in &keys {
            eval.arg(k);
        }
        eval.arg(round);
        let n: i64 = eval.query(&mut writer).expect("eval");
        assert_eq!(n, KEYS as i64);
    }
    done.store(true, Ordering::Release);
    let reads = reader.join().expect("reader");
    assert!(reads > 0);
    let last: String = redis::cmd("GET")
        .arg(&keys[KEYS - 1])
        .query(&mut writer)
        .unwrap();
    assert_eq!(last, ROUNDS.to_string());
}

#[test]
fn a_busy_script_gets_other_clients_busy_and_script_kill_ends_it() {
    let s = common::start_server();
    let port = s.port();
    let _threshold = BusyThreshold::set(port, "50");
    let runner = std::thread::spawn(move || {
        let mut c = connect_port(port);
        let r = cmd(&mut c, &["EVAL", "while true do end", "0"]);
        // The connection goes on serving once the script is gone.
        let after = cmd(&mut c, &["PING"]);
        (r, after)
    });
    let mut other = connect_port(port);
    let busy = wait_busy(&mut other);
    assert!(
        busy.contains(
            "Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
        ),
        "{busy}"
    );
    // FUNCTION KILL does not stop an EVAL script.
    let e = err(&mut other, &["FUNCTION", "KILL"]);
    assert_eq!(e.code(), Some("BUSY"), "{e}");
    assert!(e.to_string().contains("SCRIPT KILL"), "{e}");
    ok(&mut other, &["SCRIPT", "KILL"]);
    let (r, after) = runner.join().expect("runner");
    let e = r.expect_err("a killed script fails");
    assert!(
        e.to_string()
            .contains("Script killed by user with SCRIPT KILL"),
        "{e}"
    );
    assert_eq!(text(&after.expect("ping after the kill")), "PONG");
    assert_eq!(text(&ok(&mut other, &["PING"])), "PONG");
    let e = err(&mut other, &["SCRIPT", "KILL"]);
    assert_eq!(e.code(), Some("NOTBUSY"), "{e}");
}

/// A script run by EXEC has the keyspace to itself as it would alone: past
/// the threshold the others get -BUSY, SCRIPT KILL ends it, and EXEC's reply
/// holds the script's error.
#[test]
fn a_busy_script_inside_exec_gets_other_clients_busy_and_script_kill_ends_it() {
    let s = common::start_server();
    let port = s.port();
    let _threshold = BusyThreshold::set(port, "50");
    let runner = std::thread::spawn(move || {
        let mut c = connect_port(port);
        ok(&mut c, &["MULTI"]);
        let queued = ok(&mut c, &["EVAL", "while true do end", "0"]);
        let r = cmd(&mut c, &["EXEC"]);
        let after = cmd(&mut c, &["PING"]);
        (queued, r, after)
    });
    let mut other = connect_port(port);
    let busy = wait_busy(&mut other);
    assert!(busy.contains("Redis is busy running a script"), "{busy}");
    ok(&mut other, &["SCRIPT", "KILL"]);
    let (queued, r, after) = runner.join().expect("runner");
    assert_eq!(text(&queued), "QUEUED");
    let r = format!("{r:?}");
    assert!(r.contains("Script killed by user with SCRIPT KILL"), "{r}");
    assert_eq!(text(&after.expect("ping after the kill")), "PONG");
}

/// A script herald has seen run quickly runs on a worker thread; when it
/// then loops without having written, it moves to the scripting thread,
/// where it turns busy and SCRIPT KILL ends it as any other script.
fn a_quick_script_that_turns_slow_still_gets_busy_and_killed(io_threads: usize) {
    let s = common::herald_with(|c| c.io_threads = io_threads);
    let port = s.port();
    // Above the threshold under which herald keeps every script off the
    // workers.
    let _threshold = BusyThreshold::set(port, "300");
    let script = "if ARGV[1] == 'loop' then while true do end end \
                  return redis.call('GET', KEYS[1])";
    let mut c = connect_port(port);
    ok(&mut c, &["SET", "quick:k", "v"]);
    for _ in 0..3 {
        let v = ok(&mut c, &["EVAL", script, "1", "quick:k", "once"]);
        assert_eq!(text(&v), "v");
    }
    let runner = std::thread::spawn(move || {
        let mut c = connect_port(port);
        let r = cmd(&mut c, &["EVAL", script, "1", "quick:k", "loop"]);
        let after = cmd(&mut c, &["EVAL", script, "1", "quick:k", "once"]);
        (r, after)
    });
    let mut other = connect_port(port);
    let busy = wait_busy(&mut other);
    assert!(busy.contains("SCRIPT KILL"), "{busy}");
    ok(&mut other, &["SCRIPT", "KILL"]);
    let (r, after) = runner.join().expect("runner");
    let e = r.expect_err("a killed script fails");
    assert!(e.to_string().contains("Script killed by user"), "{e}");
    assert_eq!(text(&after.expect("the quick run after the kill")), "v");
}

#[test]
fn a_quick_script_that_turns_slow_on_the_only_worker_still_gets_busy_and_killed() {
    a_quick_script_that_turns_slow_still_gets_busy_and_killed(1);
}

#[test]
fn a_quick_script_that_turns_slow_on_one_of_two_workers_still_gets_busy_and_killed() {
    a_quick_script_that_turns_slow_still_gets_busy_and_killed(2);
}

/// Runs `script` with EVAL, kills it with SCRIPT KILL once it is busy, and
/// returns what its caller got.
fn killed_eval(port: u16, script: &'static str) -> redis::RedisResult<Value> {
    let _threshold = BusyThreshold::set(port, "50");
    let runner = std::thread::spawn(move || {
        let mut c = connect_port(port);
        cmd(&mut c, &["EVAL", script, "0"])
    });
    let mut other = connect_port(port);
    wait_busy(&mut other);
    ok(&mut other, &["SCRIPT", "KILL"]);
    let r = runner.join().expect("runner");
    assert_eq!(text(&ok(&mut other, &["PING"])), "PONG");
    r
}

/// [`killed_eval`]'s error.
fn killed_eval_error(port: u16, script: &'static str) -> String {
    killed_eval(port, script)
        .expect_err("a killed script fails")
        .to_string()
}

/// As in Redis, a pcall catches the kill (as the text of Redis's error
/// table), and the kill comes back at the script's next line: a script
/// with no line after that pcall ends with what the pcall returned.
#[test]
fn a_pcall_catches_the_kill_until_the_next_line() {
    let s = common::start_server();
    let got = killed_eval(
        s.port(),
        "local ok, e = pcall(function() while true do end end) return {tostring(ok), e}",
    )
    .expect("the script ends on the line of its pcall");
    assert_eq!(
        got,
        Value::Array(vec![
            Value::BulkString(b"false".to_vec()),
            Value::BulkString(b"ERR Script killed by user with SCRIPT KILL...".to_vec()),
        ])
    );
    let e = killed_eval_error(
        s.port(),
        "local n = 0\nwhile true do\n  pcall(function()\n    while true do\n      n = n + 1\n    end\n  end)\nend",
    );
    // Where redis-server 7.0.15 says the script was.
    assert!(e.contains("on @user_script:7."), "{e}");
}

/// A pcall catches the kill only until the script's next line: the loop
/// around the pcall ends too.
const LOOP_IN_PCALL: &str = "while true do pcall(function() while true do end end) end";

#[test]
fn script_kill_stops_a_loop_inside_pcall() {
    let s = common::start_server();
    let e = killed_eval_error(s.port(), LOOP_IN_PCALL);
    assert!(
        e.contains("Script killed by user with SCRIPT KILL..."),
        "{e}"
    );
}

/// Redis names the script's line, as for any error in it.
#[test]
fn script_kill_inside_pcall_names_the_script_line() {
    let s = common::start_server();
    let e = killed_eval_error(s.port(), LOOP_IN_PCALL);
    assert!(
        e.contains(
            "Script killed by user with SCRIPT KILL... script: \
             3d7b0cfd4124d0a72b8a39e531e7c806bc453d3e, on @user_script:1."
        ),
        "{e}"
    );
}

#[test]
fn a_busy_function_shows_in_function_stats_and_function_kill_ends_it() {
    let s = common::start_server();
    let port = s.port();
    let mut admin = connect_port(port);
    ok(
        &mut admin,
        &[
            "FUNCTION",
            "LOAD",
            "REPLACE",
            "#!lua name=sc_spin\nredis.register_function('sc_spin', function(keys, args) while true do end end)",
        ],
    );
    let _threshold = BusyThreshold::set(port, "50");
    let runner = std::thread::spawn(move || {
        let mut c = connect_port(port);
        cmd(&mut c, &["FCALL", "sc_spin", "0", "an-arg"])
    });
    let busy = wait_busy(&mut admin);
    assert!(
        busy.contains("You can only call FUNCTION KILL or SHUTDOWN NOSAVE."),
        "{busy}"
    );
    let e = err(&mut admin, &["SCRIPT", "KILL"]);
    assert_eq!(e.code(), Some("BUSY"), "{e}");
    assert!(e.to_string().contains("FUNCTION KILL"), "{e}");

    // FUNCTION STATS may run meanwhile and names the running function.
    let stats = ok(&mut admin, &["FUNCTION", "STATS"]);
    let Value::Array(items) = &stats else {
        panic!("{stats:?}")
    };
    assert_eq!(text(&items[0]), "running_script");
    let Value::Array(running) = &items[1] else {
        panic!("no running script in {stats:?}")
    };
    assert_eq!(text(&running[0]), "name");
    assert_eq!(text(&running[1]), "sc_spin");
    assert_eq!(text(&running[2]), "command");
    let Value::Array(command) = &running[3] else {
        panic!("{stats:?}")
    };
    assert_eq!(
        command.iter().map(text).collect::<Vec<_>>(),
        ["FCALL", "sc_spin", "0", "an-arg"]
    );
    assert_eq!(text(&running[4]), "duration_ms");

    ok(&mut admin, &["FUNCTION", "KILL"]);
    let e = runner
        .join()
        .expect("runner")
        .expect_err("a killed function fails");
    assert!(e.to_string().contains("Script killed by user with"), "{e}");
    assert_eq!(text(&ok(&mut admin, &["PING"])), "PONG");
    ok(&mut admin, &["FUNCTION", "DELETE", "sc_spin"]);
}

/// A server process of `bin` on a free port with `dir`, no persistence;
/// killed on drop.
fn server_process(bin: &Path, dir: &Path) -> (KillOnDrop, u16) {
    let port = common::free_port();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir)
        .args(["--appendonly", "no", "--save", "", "--daemonize", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let mut child = KillOnDrop(child);
    let addr = ([127, 0, 0, 1], port).into();
    common::wait_for_ping(addr, TIMEOUT, Some(&mut child.0))
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    (child, port)
}

/// A script that wrote cannot be killed; SHUTDOWN NOSAVE, which Redis
/// accepts while a script is busy, stops the server process. `warm`: the
/// script first runs quickly a few times, so that herald runs it on its
/// only worker; the worker then answers the other clients (and accepts
/// new ones) from the script's hook.
fn unkillable_script_ends_with_shutdown_nosave(bin: &Path, warm: bool) {
    const SCRIPT: &str = "redis.call('set', KEYS[1], 'written') \
                          if ARGV[1] == 'loop' then while true do end end";
    let dir = common::temp_dir("script-unkillable");
    let (mut server, port) = server_process(bin, &dir);
    let mut admin = connect_port(port);
    // Over herald's floor for scripts on a worker (200 ms).
    let threshold = if warm { "250" } else { "50" };
    common::config_set(&mut admin, "busy-reply-threshold", threshold);
    if warm {
        for _ in 0..3 {
            ok(&mut admin, &["EVAL", SCRIPT, "1", "sc:unkillable", "once"]);
        }
    }
    let runner = std::thread::spawn(move || {
        let mut c = connect_port(port);
        cmd(&mut c, &["EVAL", SCRIPT, "1", "sc:unkillable", "loop"])
    });
    wait_busy(&mut admin);
    // A client that connects now is answered too.
    let mut late = connect_port(port);
    assert_eq!(
        err(&mut late, &["GET", "sc:unkillable"]).code(),
        Some("BUSY")
    );
    let e = err(&mut admin, &["SCRIPT", "KILL"]);
    assert_eq!(e.code(), Some("UNKILLABLE"), "{e}");
    assert!(
        e.to_string().contains(
            "Sorry the script already executed write commands against the dataset. \
             You can either wait the script termination or kill the server in a hard way \
             using the SHUTDOWN NOSAVE command."
        ),
        "{e}"
    );
    // Still busy: nothing else has stopped it.
    assert_eq!(err(&mut admin, &["PING"]).code(), Some("BUSY"));
    // No reply: the connection closes as the server goes.
    let r = cmd(&mut admin, &["SHUTDOWN", "NOSAVE"]);
    assert!(r.is_err(), "SHUTDOWN NOSAVE replied {r:?}");
    let status = common::wait_exit(&mut server.0, TIMEOUT);
    assert!(
        status.is_some(),
        "{} still runs 10 s after SHUTDOWN NOSAVE during an unkillable script",
        bin.display()
    );
    let r = runner.join().expect("runner");
    assert!(r.is_err(), "the script's caller got {r:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unkillable_script_ends_with_shutdown_nosave_herald() {
    unkillable_script_ends_with_shutdown_nosave(Path::new(env!("CARGO_BIN_EXE_herald")), false);
}

#[test]
fn unkillable_script_on_the_only_worker_ends_with_shutdown_nosave_herald() {
    unkillable_script_ends_with_shutdown_nosave(Path::new(env!("CARGO_BIN_EXE_herald")), true);
}

/// While a script that wrote loops past the threshold, another client's
/// pipelined requests are answered `-BUSY` as they come, one split across
/// two writes too; MULTI, which may run while a script is busy, is
/// answered and the connection goes on normally after the script. On
/// herald the script runs on its only worker (it ran quickly before), and
/// MULTI waits for the script's end: the bytes are Redis's either way.
fn busy_replies_keep_their_order(bin: &Path) {
    const SCRIPT: &str = "redis.call('set', KEYS[1], 'w') \
        if ARGV[1] == 'loop' then \
          local t = redis.call('time') local from = t[1] * 1000000 + t[2] \
          repeat t = redis.call('time') until t[1] * 1000000 + t[2] > from + 1500000 \
        end return 1";
    let dir = common::temp_dir("script-busy-order");
    let (_server, port) = server_process(bin, &dir);
    let mut admin = connect_port(port);
    common::config_set(&mut admin, "busy-reply-threshold", "250");
    for _ in 0..3 {
        ok(&mut admin, &["EVAL", SCRIPT, "1", "sc:order", "once"]);
    }
    let mut raw = common::connect_raw(([127, 0, 0, 1], port).into());
    let runner = std::thread::spawn(move || {
        let mut c = connect_port(port);
        cmd(&mut c, &["EVAL", SCRIPT, "1", "sc:order", "loop"])
    });
    wait_busy(&mut admin);
    const BUSY: &str =
        "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
    raw.write_all(b"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI")
        .expect("write");
    assert_eq!(common::read_line(&mut raw), BUSY);
    assert_eq!(common::read_line(&mut raw), BUSY);
    raw.write_all(b"NG\r\nMULTI\r\n").expect("write");
    assert_eq!(common::read_line(&mut raw), BUSY);
    assert_eq!(common::read_line(&mut raw), "+OK\r\n");
    let r = runner.join().expect("runner");
    assert_eq!(r.expect("the script ends by itself"), Value::Int(1));
    raw.write_all(b"EXEC\r\nPING\r\n").expect("write");
    assert_eq!(common::read_line(&mut raw), "*0\r\n");
    assert_eq!(common::read_line(&mut raw), "+PONG\r\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn busy_replies_keep_their_order_herald() {
    busy_replies_keep_their_order(Path::new(env!("CARGO_BIN_EXE_herald")));
}

#[test]
fn busy_replies_keep_their_order_redis() {
    busy_replies_keep_their_order(&common::redis_server());
}

/// The same test against redis-server proves it.
#[test]
fn unkillable_script_ends_with_shutdown_nosave_redis() {
    unkillable_script_ends_with_shutdown_nosave(&common::redis_server(), true);
}

#[test]
fn a_scripts_writes_raise_keyspace_events_in_order() {
    let s = common::start_server();
    let port = s.port();
    let mut c = connect_port(port);
    common::config_set(&mut c, "notify-keyspace-events", "KEA");
    let mut sub_con = connect_port(port);
    let mut sub = sub_con.as_pubsub();
    sub.psubscribe("__keyspace@0__:sc:events*")
        .expect("psubscribe");
    ok(
        &mut c,
        &[
            "EVAL",
            "redis.call('set', KEYS[1], 'v') redis.call('expire', KEYS[1], 100) \
             redis.call('rpush', KEYS[2], 'a') redis.call('del', KEYS[1]) return 1",
            "2",
            "sc:events",
            "sc:events:list",
        ],
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        let m = sub.get_message().expect("keyspace event");
        let payload: String = m.get_payload().expect("payload");
        got.push(format!("{} {payload}", m.get_channel_name()));
    }
    assert_eq!(
        got,
        [
            "__keyspace@0__:sc:events set",
            "__keyspace@0__:sc:events expire",
            "__keyspace@0__:sc:events:list rpush",
            "__keyspace@0__:sc:events del",
        ]
    );
    drop(sub);
    common::config_set(&mut c, "notify-keyspace-events", "");
}

#[test]
fn a_scripts_write_invalidates_watch() {
    let s = common::start_server();
    let mut watcher = connect_port(s.port());
    let mut other = connect_port(s.port());
    ok(&mut watcher, &["SET", "sc:watched", "0"]);
    ok(&mut watcher, &["WATCH", "sc:watched"]);
    ok(
        &mut other,
        &[
            "EVAL",
            "return redis.call('incr', KEYS[1])",
            "1",
            "sc:watched",
        ],
    );
    ok(&mut watcher, &["MULTI"]);
    ok(&mut watcher, &["SET", "sc:watched", "from-exec"]);
    assert_eq!(ok(&mut watcher, &["EXEC"]), Value::Nil);
    assert_eq!(text(&ok(&mut watcher, &["GET", "sc:watched"])), "1");

    // A script that only reads the key leaves the transaction alone.
    ok(&mut watcher, &["WATCH", "sc:watched"]);
    ok(
        &mut other,
        &[
            "EVAL",
            "return redis.call('get', KEYS[1])",
            "1",
            "sc:watched",
        ],
    );
    ok(&mut watcher, &["MULTI"]);
    ok(&mut watcher, &["SET", "sc:watched", "from-exec"]);
    assert_eq!(ok(&mut watcher, &["EXEC"]), Value::Array(vec![Value::Okay]));
}

#[test]
fn a_client_blocked_in_blpop_gets_what_the_script_left() {
    let s = common::start_server();
    let port = s.port();
    let mut c = connect_port(port);
    ok(&mut c, &["DEL", "sc:queue"]);
    let blocked = std::thread::spawn(move || {
        let mut b = connect_port(port);
        cmd(&mut b, &["BLPOP", "sc:queue", "10"])
    });
    common::wait_until("the BLPOP client to block", TIMEOUT, || {
        common::blocked_clients(&mut c) == 1
    });
    // The blocked client is served after the script, from the list as the
    // script left it: [b] (a was pushed, then popped again).
    let left = ok(
        &mut c,
        &[
            "EVAL",
            "redis.call('lpush', KEYS[1], 'a', 'b') return redis.call('rpop', KEYS[1])",
            "1",
            "sc:queue",
        ],
    );
    assert_eq!(text(&left), "a");
    let got = blocked.join().expect("blpop thread").expect("blpop");
    let Value::Array(kv) = &got else {
        panic!("{got:?}")
    };
    assert_eq!(kv.iter().map(text).collect::<Vec<_>>(), ["sc:queue", "b"]);
    assert_eq!(ok(&mut c, &["EXISTS", "sc:queue"]), Value::Int(0));
}

#[test]
fn acl_refuses_a_missing_permission_inside_the_script() {
    let s = common::start_server();
    let mut admin = connect_port(s.port());
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "sc_limited",
            "reset",
            "on",
            ">pw",
            "~sc:allowed:*",
            "&*",
            "+@all",
            "-set",
        ],
    );
    ok(&mut admin, &["ACL", "LOG", "RESET"]);
    let mut c = connect_port(s.port());
    ok(&mut c, &["AUTH", "sc_limited", "pw"]);

    let e = err(
        &mut c,
        &[
            "EVAL",
            "return redis.call('set', KEYS[1], 'v')",
            "1",
            "sc:allowed:1",
        ],
    );
    assert!(
        e.to_string().contains(
            "The user executing the script can't run this command or subcommand script: "
        ),
        "{e}"
    );
    let r = ok(
        &mut c,
        &[
            "EVAL",
            "local r = redis.pcall('set', KEYS[1], 'v') return r.err",
            "1",
            "sc:allowed:1",
        ],
    );
    assert_eq!(
        text(&r),
        "ERR The user executing the script can't run this command or subcommand"
    );
    let e = err(
        &mut c,
        &["EVAL", "return redis.call('get', 'sc:other')", "0"],
    );
    assert!(
        e.to_string().contains(
            "The user executing the script can't access at least one of the keys mentioned in the command arguments"
        ),
        "{e}"
    );
    // What the user may do, the script does.
    ok(
        &mut c,
        &[
            "EVAL",
            "return redis.call('incr', KEYS[1])",
            "1",
            "sc:allowed:1",
        ],
    );
    let allowed = ok(
        &mut c,
        &[
            "EVAL",
            "return {redis.acl_check_cmd('set', 'sc:allowed:1', 'v') and 1 or 0, redis.acl_check_cmd('incr', 'sc:allowed:1') and 1 or 0}",
            "0",
        ],
    );
    assert_eq!(allowed, Value::Array(vec![Value::Int(0), Value::Int(1)]));

    // The denials are in the ACL log, with context lua (newest first).
    let log = ok(&mut admin, &["ACL", "LOG"]);
    let Value::Array(entries) = &log else {
        panic!("{log:?}")
    };
    let fields = |e: &Value| -> Vec<(String, String)> {
        let Value::Array(kv) = e else { panic!("{e:?}") };
        kv.chunks(2).map(|p| (text(&p[0]), text(&p[1]))).collect()
    };
    let field = |e: &[(String, String)], k: &str| {
        e.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {e:?}"))
    };
    let newest = fields(&entries[0]);
    assert_eq!(field(&newest, "reason"), "key");
    assert_eq!(field(&newest, "context"), "lua");
    assert_eq!(field(&newest, "object"), "sc:other");
    assert_eq!(field(&newest, "username"), "sc_limited");
    let older = fields(&entries[1]);
    assert_eq!(field(&older, "reason"), "command");
    assert_eq!(field(&older, "context"), "lua");
    assert_eq!(field(&older, "object"), "set");
    ok(&mut admin, &["ACL", "DELUSER", "sc_limited"]);
}

/// An in-process herald with the AOF on in `dir`.
fn herald_aof(dir: &Path) -> herald::server::ServerHandle {
    common::herald_with(|cfg| {
        cfg.appendonly = true;
        cfg.dir = dir.to_path_buf();
    })
}

/// Library names of FUNCTION LIST, sorted.
fn library_names(c: &mut Connection) -> Vec<String> {
    let list = ok(c, &["FUNCTION", "LIST"]);
    let Value::Array(libs) = list else {
        panic!("{list:?}")
    };
    let mut names: Vec<String> = libs
        .iter()
        .map(|l| {
            let Value::Array(kv) = l else { panic!("{l:?}") };
            text(&kv[1])
        })
        .collect();
    names.sort();
    names
}

/// What a server that loaded the directory must hold.
fn check_loaded(c: &mut Connection, what: &str) {
    assert_eq!(library_names(c), ["sc_keep", "sc_replaced"], "{what}");
    assert_eq!(
        text(&ok(c, &["FCALL", "sc_keep", "1", "sc:persist", "x"])),
        "keep:x",
        "{what}"
    );
    assert_eq!(text(&ok(c, &["FCALL", "sc_version", "0"])), "two", "{what}");
    let e = err(c, &["FCALL", "sc_gone", "0"]);
    assert!(e.to_string().contains("Function not found"), "{what}: {e}");
    assert_eq!(text(&ok(c, &["GET", "sc:persist"])), "3", "{what}");
    assert_eq!(
        text(&ok(c, &["GET", "sc:persist:fn"])),
        "from-function",
        "{what}"
    );
}

/// Loads the libraries and makes the writes [`check_loaded`] expects.
fn write_functions_and_scripts(c: &mut Connection) {
    ok(
        c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=sc_keep\nredis.register_function('sc_keep', function(keys, args) \
             redis.call('set', keys[1] .. ':fn', 'from-function') return 'keep:' .. args[1] end)",
        ],
    );
    ok(
        c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=sc_replaced\nredis.register_function('sc_version', function() return 'one' end)",
        ],
    );
    ok(
        c,
        &[
            "FUNCTION",
            "LOAD",
            "REPLACE",
            "#!lua name=sc_replaced\nredis.register_function('sc_version', function() return 'two' end)",
        ],
    );
    ok(
        c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=sc_deleted\nredis.register_function('sc_gone', function() return 'gone' end)",
        ],
    );
    ok(c, &["FUNCTION", "DELETE", "sc_deleted"]);
    ok(
        c,
        &[
            "EVAL",
            "redis.call('set', KEYS[1], 1) redis.call('incrby', KEYS[1], 2) return 1",
            "1",
            "sc:persist",
        ],
    );
    ok(c, &["FCALL", "sc_keep", "1", "sc:persist", "x"]);
    check_loaded(c, "before the restart");
}

/// redis-server started on `dir` (appendonly yes) holds what
/// [`check_loaded`] expects.
fn check_redis_server_loads(dir: &Path, what: &str) {
    let port = common::free_port();
    let child = Command::new(common::redis_server())
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir)
        .args(["--appendonly", "yes", "--save", "", "--daemonize", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let mut child = KillOnDrop(child);
    common::wait_for_ping(([127, 0, 0, 1], port).into(), TIMEOUT, Some(&mut child.0))
        .unwrap_or_else(|e| panic!("redis-server on herald's files ({what}): {e}"));
    let mut r = connect_port(port);
    check_loaded(&mut r, what);
}

/// Starts herald on `d`'s log and checks what it loaded.
fn check_after_restart(d: &Path, when: &str) {
    let s = herald_aof(d);
    let mut c = connect_port(s.port());
    check_loaded(&mut c, when);
    drop(c);
    s.shutdown();
}

#[test]
fn functions_and_script_writes_survive_a_restart() {
    let d = common::temp_dir("script-persist");
    let s = herald_aof(&d);
    let mut c = connect_port(s.port());
    write_functions_and_scripts(&mut c);
    drop(c);
    s.shutdown();
    check_after_restart(&d, "after a restart");

    check_redis_server_loads(&d, "redis-server loading herald's log");
    let _ = std::fs::remove_dir_all(&d);
}

/// Redis's rewrite writes every library into the new base file as a
/// FUNCTION LOAD (`rewriteFunctions`).
#[test]
fn functions_survive_an_aof_rewrite() {
    let d = common::temp_dir("script-rewrite");
    let s = herald_aof(&d);
    let mut c = connect_port(s.port());
    write_functions_and_scripts(&mut c);
    let started: String = redis::cmd("BGREWRITEAOF").query(&mut c).expect("rewrite");
    assert_eq!(started, "Background append only file rewriting started");
    common::wait_for_value("the rewrite to end", Duration::from_secs(60), 0, || {
        common::info_u64(&mut c, "persistence", "aof_rewrite_in_progress")
    });
    check_loaded(&mut c, "after a rewrite");
    drop(c);
    s.shutdown();
    check_after_restart(&d, "after a rewrite and a restart");

    check_redis_server_loads(&d, "redis-server loading herald's rewrite");
    let _ = std::fs::remove_dir_all(&d);
}
