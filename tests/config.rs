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

/// A connection to a server on `port` (herald or redis-server).
fn connect_port(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
        .expect("connect")
}

fn config_get(con: &mut redis::Connection, name: &str) -> String {
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(con)
        .expect("config get");
    got.get(1).cloned().unwrap_or_default()
}

#[test]
fn config_rewrite_writes_the_file_and_a_restart_reads_it_back() {
    let dir = std::fs::canonicalize(common::temp_dir("conf-rewrite")).unwrap();
    let conf = dir.join("herald.conf");
    let port = common::free_port();
    write(
        &conf,
        &format!(
            "# kept comment\nport {port}\nappendonly no\ndir {}\n\nmaxmemory 100mb\nmaxmemory 200mb\n\
             slave-read-only yes\nrename-command FLUSHDB \"\"\n",
            dir.display()
        ),
    );
    let conf_s = conf.to_string_lossy().into_owned();
    let guard = spawn_herald(&[&conf_s], port);
    let mut con = connect_port(port);
    let sets: &[(&str, &str)] = &[
        ("maxmemory", "3gb"),
        ("hz", "20"),
        ("maxmemory-policy", "allkeys-lru"),
        ("notify-keyspace-events", "KEA"),
        ("save", "100 10 200 20"),
        ("replica-read-only", "no"),
        ("client-output-buffer-limit", "pubsub 1mb 2000 0"),
        ("masterauth", "p w\"x"),
    ];
    for (name, value) in sets {
        q(&mut con, &["CONFIG", "SET", name, value]).expect("config set");
    }
    assert_eq!(
        q(&mut con, &["CONFIG", "REWRITE"]).unwrap(),
        redis::Value::Okay
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    let head = format!(
        "# kept comment\nport {port}\nappendonly no\ndir \"{}\"\n\nmaxmemory 3gb\n\n\
         replica-read-only no\nrename-command FLUSHDB \"\"\n\n# Generated by CONFIG REWRITE\n",
        dir.display()
    );
    assert!(text.starts_with(&head), "{text}");
    for line in [
        "client-output-buffer-limit pubsub 1mb 2000 0",
        "hz 20",
        "masterauth \"p w\\\"x\"",
        "maxmemory-policy allkeys-lru",
        "notify-keyspace-events \"AKE\"",
        "save 100 10",
        "save 200 20",
        "user default on nopass ~* &* +@all",
    ] {
        assert_eq!(
            text.lines().filter(|l| *l == line).count(),
            1,
            "{line} in {text}"
        );
    }
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("herald.conf"))
        .collect();
    assert_eq!(names, ["herald.conf"]);
    // A second rewrite keeps every line but one where it is. The one
    // `client-output-buffer-limit` line is taken by the first class
    // rewritten (`normal`, at its default), and the `pubsub` class that
    // differs is appended again: Redis's algorithm does the same.
    q(&mut con, &["CONFIG", "REWRITE"]).unwrap();
    let again = std::fs::read_to_string(&conf).unwrap();
    let moved = text
        .replace(
            "client-output-buffer-limit pubsub 1mb 2000 0\n",
            "client-output-buffer-limit normal 0 0 0\n",
        )
        .replace(
            "+@all\n",
            "+@all\n\nclient-output-buffer-limit pubsub 1mb 2000 0\n",
        );
    assert_eq!(again, moved);
    shutdown(port, guard);

    let guard = spawn_herald(&[&conf_s], port);
    let mut con = connect_port(port);
    for (name, value) in sets {
        let want = match *name {
            "maxmemory" => "3221225472",
            "notify-keyspace-events" => "AKE",
            "client-output-buffer-limit" => {
                "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 2000 0"
            }
            _ => value,
        };
        assert_eq!(config_get(&mut con, name), want, "{name}");
    }
    // The rename-command line stayed.
    assert!(err_text(q(&mut con, &["FLUSHDB"])).contains("unknown command"));
    shutdown(port, guard);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_rewrite_errors_are_redis_s() {
    let h = herald_from("enable-debug-command yes\n");
    let mut con = connect(&h);
    let e = err_text(q(&mut con, &["CONFIG", "REWRITE"]));
    assert!(
        e.contains("The server is running without a config file"),
        "{e}"
    );
    let e = err_text(q(&mut con, &["DEBUG", "CONFIG-REWRITE-FORCE-ALL"]));
    assert!(
        e.contains("CONFIG-REWRITE-FORCE-ALL failed: Bad address"),
        "{e}"
    );
    drop(h);

    // A file whose directory is gone: the temporary file cannot be made.
    let dir = common::temp_dir("conf-rewrite-gone");
    let mut config = Config::from_config_text("").expect("config");
    config.port = 0;
    config.config_file = Some(dir.join("gone/redis.conf").to_string_lossy().into_owned());
    let h = herald::server::start(config).expect("herald starts");
    let mut con = connect(&h);
    let e = err_text(q(&mut con, &["CONFIG", "REWRITE"]));
    assert!(
        e.contains("Rewriting config file: No such file or directory"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn debug_config_rewrite_force_all_writes_defaults_too() {
    let dir = common::temp_dir("conf-rewrite-force");
    let conf = dir.join("redis.conf");
    write(&conf, "port 6379\n");
    let mut config = Config::from_config_text("enable-debug-command yes\n").expect("config");
    config.port = 0;
    config.config_file = Some(conf.to_string_lossy().into_owned());
    let h = herald::server::start(config).expect("herald starts");
    let mut con = connect(&h);
    assert_eq!(
        q(&mut con, &["DEBUG", "CONFIG-REWRITE-FORCE-ALL"]).unwrap(),
        redis::Value::Okay
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    for line in [
        "port 0",
        "hz 10",
        "timeout 0",
        "maxmemory 0",
        "appendonly no",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The old file of the comparison with redis-server: comments, blank
/// lines, duplicates, old option names, kept directives and a user.
const DIFF_CONF: &str = "# compared with redis-server\nport PORT\nbind 127.0.0.1 -::1\n\
    dir DIR\nappendonly no\n   # an indented comment   \n\n\nsave 900 1\nsave 300 10\n\
    maxmemory 100mb\nmaxmemory 200mb\nhash-max-ziplist-entries 64\nslave-read-only yes\n\
    lua-time-limit 5000\ntimeout 0\ntimeout 0\ninclude DIR/empty.conf\n\
    rename-command FLUSHDB \"\"\nuser alice on >pw ~k* +get\nnotify-keyspace-events \"\"\n\
    client-output-buffer-limit normal 0 0 0 slave 1 1 1\nloglevel notice\n";

/// CONFIG SETs both servers take alike (every value here is one herald
/// accepts; options herald refuses a value of are left out).
const DIFF_SETS: &[(&str, &str)] = &[
    ("maxmemory", "3gb"),
    ("hz", "20"),
    ("timeout", "30"),
    ("maxmemory-policy", "allkeys-lru"),
    ("notify-keyspace-events", "KEA"),
    ("client-output-buffer-limit", "pubsub 1mb 2000 0"),
    ("save", "100 10 200 20"),
    ("slowlog-max-len", "256"),
    ("lfu-log-factor", "5"),
    ("hash-max-listpack-entries", "100"),
    ("proto-max-bulk-len", "2000000"),
    ("latency-tracking-info-percentiles", "99.99 50"),
    ("shutdown-on-sigint", "nosave now"),
    ("masterauth", "p w\"x"),
    ("tracking-table-max-keys", "10"),
    ("repl-backlog-size", "2mb"),
    ("list-max-listpack-size", "-3"),
    ("stream-node-max-bytes", "8kb"),
    ("lazyfree-lazy-user-del", "yes"),
    ("activerehashing", "no"),
    ("replica-priority", "5"),
];

/// The rewritten file with its own port made `PORT`, split at the
/// signature: the part before it must match byte for byte; Redis appends
/// the lines after it in its hash table's random order, so those compare
/// sorted.
fn comparable(text: &str, port: u16) -> (String, Vec<String>) {
    let text = text.replace(&format!("port {port}\n"), "port PORT\n");
    let (head, tail) = match text.split_once("# Generated by CONFIG REWRITE\n") {
        Some((h, t)) => (h.to_string(), t),
        None => (text.clone(), ""),
    };
    let mut tail: Vec<String> = tail.lines().map(str::to_string).collect();
    tail.sort();
    (head, tail)
}

/// Both servers start from the same file, take the same CONFIG SETs and
/// ACL SETUSER and rewrite twice; the files must match (the port line
/// aside, appended lines sorted). Left out, because the two differ on
/// purpose: values herald refuses (`daemonize yes`, `unixsocket`, ...),
/// herald's own `pubsub-coalesce-us`, and DEBUG CONFIG-REWRITE-FORCE-ALL
/// (it writes every option of each server's table, and Redis's has the
/// hidden `lua-enable-deprecated-api` herald's lacks).
#[test]
fn config_rewrite_writes_what_redis_server_writes() {
    let Some(redis_server) = common::redis_server_if_present() else {
        eprintln!("skipped: no redis-server");
        return;
    };
    let dir = common::temp_dir("conf-rewrite-diff");
    let dir = std::fs::canonicalize(&dir).unwrap();
    write(&dir.join("empty.conf"), "# nothing\n");
    let mut files = Vec::new();
    let mut ports = Vec::new();
    let mut guards = Vec::new();
    for who in ["redis", "herald"] {
        let port = common::free_port();
        let conf = dir.join(format!("{who}.conf"));
        write(
            &conf,
            &DIFF_CONF
                .replace("PORT", &port.to_string())
                .replace("DIR", &dir.to_string_lossy()),
        );
        let conf_s = conf.to_string_lossy().into_owned();
        let guard = if who == "redis" {
            let child = Command::new(&redis_server)
                .arg(&conf_s)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut guard = common::KillOnDrop(child);
            let addr = format!("127.0.0.1:{port}").parse().unwrap();
            common::wait_for_ping(addr, Duration::from_secs(10), Some(&mut guard.0))
                .expect("redis-server answers PING");
            guard
        } else {
            spawn_herald(&[&conf_s], port)
        };
        let mut con = connect_port(port);
        for (name, value) in DIFF_SETS {
            q(&mut con, &["CONFIG", "SET", name, value])
                .unwrap_or_else(|e| panic!("{who}: CONFIG SET {name} {value}: {e}"));
        }
        q(
            &mut con,
            &["ACL", "SETUSER", "bob", "on", ">x", "~*", "+@read"],
        )
        .expect("setuser");
        for round in 0..2 {
            q(&mut con, &["CONFIG", "REWRITE"])
                .unwrap_or_else(|e| panic!("{who}: rewrite {round}: {e}"));
        }
        files.push(conf);
        ports.push(port);
        guards.push(guard);
    }
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read rewritten file"))
        .collect();
    let redis = comparable(&texts[0], ports[0]);
    let herald = comparable(&texts[1], ports[1]);
    assert_eq!(
        herald.0, redis.0,
        "in place:\nredis:\n{}\nherald:\n{}",
        texts[0], texts[1]
    );
    assert_eq!(
        herald.1, redis.1,
        "appended:\nredis:\n{}\nherald:\n{}",
        texts[0], texts[1]
    );
    for (port, guard) in ports.into_iter().zip(guards) {
        let mut con = connect_port(port);
        let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
        let mut guard = guard;
        common::wait_exit(&mut guard.0, Duration::from_secs(10)).expect("server exits");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
