//! Configuration that changes how the server runs, checked against a real
//! server over TCP or by running the `herald` binary:
//!
//! - `rename-command`: the new name works, the old one is an unknown
//!   command, "" removes a command, COMMAND INFO / DOCS / COUNT / LIST and
//!   ACL DRYRUN answer as redis-server 7.0.15 does with the same config,
//!   scripts and MULTI see the renamed table, the AOF written under renames
//!   loads again; a bad line stops start-up with Redis's message; CONFIG
//!   SET knows no such option.
//! - `logfile`: the log goes to the file, appended to.
//! - CONFIG SET port: the server listens on the new port at once; a port
//!   it cannot bind rolls the whole CONFIG SET back with Redis's error.
//! - Settings herald refuses (their effect would be missing) stop start-up
//!   and are refused by CONFIG SET; their defaults are accepted.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use herald::config::Config;

fn herald_from(text: &str) -> herald::server::ServerHandle {
    let mut config = Config::from_config_text(text).expect("config loads");
    config.port = 0;
    herald::server::start(config).expect("herald starts")
}

fn connect(h: &herald::server::ServerHandle) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}/", h.port()))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
        .expect("connect")
}

fn q(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

fn err_text(r: redis::RedisResult<redis::Value>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

const RENAMES: &str = "rename-command CONFIG \"\"\n\
                       rename-command FLUSHALL NUKE\n\
                       rename-command set myset\n\
                       rename-command auth login\n";

#[test]
fn renamed_commands_answer_to_their_new_names_only() {
    let h = herald_from(RENAMES);
    let mut con = connect(&h);
    let e = err_text(q(&mut con, &["FLUSHALL"]));
    assert!(e.contains("unknown command 'FLUSHALL'"), "{e}");
    assert_eq!(q(&mut con, &["nuke"]).unwrap(), redis::Value::Okay);
    let e = err_text(q(&mut con, &["CONFIG", "GET", "port"]));
    assert!(e.contains("unknown command 'CONFIG'"), "{e}");
    assert!(err_text(q(&mut con, &["SET", "a", "b"])).contains("unknown command"));
    assert_eq!(
        q(&mut con, &["MYSET", "a", "b"]).unwrap(),
        redis::Value::Okay
    );
    // AUTH renamed: the new name is still AUTH (so still redacted, still
    // allowed before authentication).
    let e = err_text(q(&mut con, &["login", "x"]));
    assert!(
        e.contains("AUTH <password> called without any password"),
        "{e}"
    );
    assert!(err_text(q(&mut con, &["auth", "x"])).contains("unknown command"));

    // Scripts and transactions call by the new names too.
    let e = err_text(q(
        &mut con,
        &["EVAL", "return redis.call('set','x','y')", "0"],
    ));
    assert!(
        e.contains("Unknown Redis command called from script"),
        "{e}"
    );
    let v = q(
        &mut con,
        &["EVAL", "return redis.call('myset','x','y')", "0"],
    )
    .unwrap();
    assert_eq!(v, redis::Value::Okay);
    q(&mut con, &["MULTI"]).unwrap();
    q(&mut con, &["myset", "t", "1"]).unwrap();
    assert!(err_text(q(&mut con, &["flushall"])).contains("unknown command"));
    let e = err_text(q(&mut con, &["EXEC"]));
    assert!(e.contains("Transaction discarded"), "{e}");
    q(&mut con, &["MULTI"]).unwrap();
    q(&mut con, &["myset", "t", "1"]).unwrap();
    q(&mut con, &["nuke"]).unwrap();
    q(&mut con, &["EXEC"]).unwrap();
}

#[test]
fn command_introspection_follows_the_renames_as_redis_does() {
    let h = herald_from(RENAMES);
    let mut con = connect(&h);
    let info = |con: &mut redis::Connection, name: &str| match q(con, &["COMMAND", "INFO", name])
        .unwrap()
    {
        redis::Value::Array(v) => match &v[0] {
            redis::Value::Array(entry) => match &entry[0] {
                redis::Value::BulkString(n) => Some(String::from_utf8_lossy(n).into_owned()),
                other => panic!("{other:?}"),
            },
            redis::Value::Nil => None,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    // Looked up by the name the dispatcher knows, shown under the original.
    assert_eq!(info(&mut con, "nuke").as_deref(), Some("flushall"));
    assert_eq!(info(&mut con, "flushall"), None);
    assert_eq!(info(&mut con, "config"), None);
    assert_eq!(info(&mut con, "config|get"), None);
    assert_eq!(info(&mut con, "myset").as_deref(), Some("set"));
    let list = |con: &mut redis::Connection, pat: &str| -> Vec<String> {
        redis::cmd("COMMAND")
            .arg("LIST")
            .arg("FILTERBY")
            .arg("PATTERN")
            .arg(pat)
            .query(con)
            .unwrap()
    };
    assert_eq!(list(&mut con, "*nuke*"), Vec::<String>::new());
    assert_eq!(list(&mut con, "flushall"), ["flushall"]);
    assert_eq!(list(&mut con, "config*"), Vec::<String>::new());
    let docs: Vec<redis::Value> = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("nuke")
        .arg("flushall")
        .query(&mut con)
        .unwrap();
    assert_eq!(docs.len(), 2, "only nuke, under its original name");
    assert_eq!(docs[0], redis::Value::BulkString(b"flushall".to_vec()));
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("myset")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .unwrap();
    assert_eq!(keys, ["k"]);
    let e = err_text(q(&mut con, &["COMMAND", "GETKEYS", "set", "k", "v"]));
    assert!(e.contains("Invalid command specified"), "{e}");
    // COUNT: CONFIG is gone, the renamed ones are still there.
    let plain = common::herald();
    let mut plain_con = redis::Client::open(format!("redis://127.0.0.1:{}/", plain.port()))
        .and_then(|c| c.get_connection())
        .unwrap();
    let count = |con: &mut redis::Connection| -> i64 {
        redis::cmd("COMMAND").arg("COUNT").query(con).unwrap()
    };
    assert_eq!(count(&mut con), count(&mut plain_con) - 1);
    // ACL rules name commands by their original names; DRYRUN takes the
    // command line as the dispatcher reads it.
    assert_eq!(
        q(&mut con, &["ACL", "DRYRUN", "default", "nuke"]).unwrap(),
        redis::Value::Okay
    );
    let e = err_text(q(&mut con, &["ACL", "DRYRUN", "default", "flushall"]));
    assert!(e.contains("Command 'flushall' not found"), "{e}");
    let e = err_text(q(&mut con, &["ACL", "SETUSER", "u", "+nuke"]));
    assert!(e.contains("Unknown command or category name in ACL"), "{e}");
    q(&mut con, &["ACL", "SETUSER", "u", "+flushall"]).unwrap();
}

#[test]
fn rename_command_errors_are_redis_s() {
    let e = Config::from_config_text("rename-command nosuch x\n").unwrap_err();
    assert!(
        e.0.contains(">>> 'rename-command nosuch x'\nNo such command in rename-command"),
        "{}",
        e.0
    );
    let e =
        Config::from_config_text("rename-command get \"\"\nrename-command get x\n").unwrap_err();
    assert!(e.0.contains("at line 2"), "{}", e.0);
    assert!(
        e.0.ends_with("No such command in rename-command"),
        "{}",
        e.0
    );
    let e = Config::from_config_text("rename-command get set\n").unwrap_err();
    assert!(
        e.0.ends_with("Target command name already exists"),
        "{}",
        e.0
    );
    // Commands herald lacks but Redis has may be renamed (hardened configs).
    Config::from_config_text("rename-command DEBUG \"\"\n").expect("DEBUG can be removed");

    let h = herald_from("");
    let mut con = connect(&h);
    let e = err_text(q(&mut con, &["CONFIG", "SET", "rename-command", "get x"]));
    assert!(
        e.contains("Unknown option or number of arguments for CONFIG SET - 'rename-command'"),
        "{e}"
    );
}

/// Starts the `herald` binary with `args`, waits for PING.
fn spawn_herald(args: &[&str], port: u16) -> common::KillOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn herald");
    let mut guard = common::KillOnDrop(child);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    common::wait_for_ping(addr, Duration::from_secs(10), Some(&mut guard.0))
        .expect("herald answers PING");
    guard
}

fn shutdown(port: u16, mut guard: common::KillOnDrop) {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .unwrap();
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut con);
    common::wait_exit(&mut guard.0, Duration::from_secs(10)).expect("herald exits");
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

#[test]
fn an_aof_written_under_renames_loads_again() {
    let dir = common::temp_dir("conf-rename-aof");
    let conf = dir.join("herald.conf");
    write(
        &conf,
        &format!("{RENAMES}appendonly yes\ndir {}\n", dir.display()),
    );
    let port = common::free_port();
    let p = port.to_string();
    let conf_s = conf.to_string_lossy().into_owned();
    let guard = spawn_herald(&[&conf_s, "--port", &p], port);
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .unwrap();
    q(&mut con, &["myset", "gone", "1"]).unwrap();
    q(&mut con, &["nuke"]).unwrap();
    // SET with EX is logged as SET ... PXAT under the original name, as
    // Redis logs it: the loader takes both names.
    q(&mut con, &["myset", "k", "v", "EX", "1000"]).unwrap();
    q(&mut con, &["myset", "k2", "v2"]).unwrap();
    shutdown(port, guard);

    let guard = spawn_herald(&[&conf_s, "--port", &p], port);
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .unwrap();
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 2);
    let v: String = redis::cmd("GET").arg("k2").query(&mut con).unwrap();
    assert_eq!(v, "v2");
    shutdown(port, guard);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn logfile_and_pidfile_are_written() {
    let dir = common::temp_dir("conf-logfile");
    let log = dir.join("herald.log");
    write(&log, "an earlier line\n");
    let pid = dir.join("herald.pid");
    let port = common::free_port();
    let p = port.to_string();
    let args = [
        "--port",
        &p,
        "--appendonly",
        "no",
        "--dir",
        dir.to_str().unwrap(),
        "--logfile",
        "herald.log",
        "--pidfile",
        pid.to_str().unwrap(),
    ];
    let guard = spawn_herald(&args, port);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("an earlier line\n"), "appended: {text}");
    assert!(text.contains("* Ready to accept connections"), "{text}");
    let written = std::fs::read_to_string(&pid).unwrap();
    assert_eq!(written.trim(), guard.0.id().to_string());
    shutdown(port, guard);
    assert!(!pid.exists(), "the PID file goes at exit");

    // A log file that cannot be opened stops start-up as in Redis.
    let out = common::run(
        Command::new(env!("CARGO_BIN_EXE_herald")).args(["--logfile", "/nonexistent/x.log"]),
        Duration::from_secs(20),
    );
    assert!(!out.status.success());
    assert!(
        out.stderr
            .ends_with("Can't open the log file: No such file or directory\n"),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn settings_herald_lacks_stop_start_up() {
    for args in [
        &["--daemonize", "yes"][..],
        &["--syslog-enabled", "yes"],
        &["--loadmodule", "/x.so"],
    ] {
        let out = common::run(
            Command::new(env!("CARGO_BIN_EXE_herald"))
                .args(args)
                .args(["--port", "0"]),
            Duration::from_secs(20),
        );
        assert!(!out.status.success(), "{args:?} started");
        assert!(
            out.stderr.contains("FATAL CONFIG FILE ERROR"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn config_set_port_moves_the_listener_or_rolls_back() {
    let h = herald_from("");
    let mut con = connect(&h);
    // A port taken by someone else: nothing of this CONFIG SET stays.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port().to_string();
    let e = err_text(q(
        &mut con,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "10000001",
            "port",
            &taken_port,
        ],
    ));
    assert!(
        e.contains("CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port"),
        "{e}"
    );
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut con)
        .expect("config get");
    assert_eq!(got, ["maxmemory", "0"]);
    // A free port: new connections go there, the old port closes, this
    // connection stays.
    let new_port = common::free_port();
    q(&mut con, &["CONFIG", "SET", "port", &new_port.to_string()]).expect("config set port");
    let mut moved = redis::Client::open(format!("redis://127.0.0.1:{new_port}/"))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
        .expect("connects on the new port");
    let pong: String = redis::cmd("PING").query(&mut moved).expect("ping");
    assert_eq!(pong, "PONG");
    let old = std::net::SocketAddr::from(([127, 0, 0, 1], h.port()));
    common::wait_until("the old port closes", Duration::from_secs(5), || {
        std::net::TcpStream::connect_timeout(&old, Duration::from_millis(200)).is_err()
    });
    let pong: String = redis::cmd("PING").query(&mut con).expect("ping");
    assert_eq!(pong, "PONG");
}
