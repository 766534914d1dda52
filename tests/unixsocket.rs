//! `unixsocket` and `unixsocketperm`: herald (the binary) listening on a Unix
//! socket as redis-server 7.0 does. Commands, MULTI, blocking commands and
//! pub/sub across a Unix-socket client and a TCP one; CLIENT LIST / INFO /
//! KILL and MONITOR's forms for a Unix-socket client, compared with
//! redis-server 7.0.15's when it is installed; the socket file's
//! permissions, a stale file replaced at start, the file removed at
//! SHUTDOWN, a failed bind stopping start-up, CONFIG SET refused;
//! redis-cli and redis-benchmark over the socket.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, redis_cli, run, temp_dir, wait_exit, wait_for_ping, KillOnDrop, WAIT};

/// A server process (herald or redis-server) with a Unix socket in `dir`.
struct Proc {
    child: KillOnDrop,
    port: u16,
    sock: PathBuf,
    log: PathBuf,
}

/// Starts `bin` on a free port with `--unixsocket dir/s.sock` and `extra`
/// arguments, logging to `dir/server.log`; waits until it answers PING.
fn start(bin: &Path, dir: &Path, extra: &[&str]) -> Proc {
    let sock = dir.join("s.sock");
    let log = dir.join("server.log");
    let port = free_port();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--unixsocket")
        .arg(&sock)
        .arg("--logfile")
        .arg(&log)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server");
    let mut child = KillOnDrop(child);
    let addr = ([127, 0, 0, 1], port).into();
    if let Err(e) = wait_for_ping(addr, WAIT, Some(&mut child.0)) {
        panic!(
            "{} {e}; log: {}",
            bin.display(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    Proc {
        child,
        port,
        sock,
        log,
    }
}

fn herald_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_herald"))
}

fn unix_con(p: &Proc) -> redis::Connection {
    let url = format!("redis+unix://{}", p.sock.display());
    let con = redis::Client::open(url)
        .expect("client")
        .get_connection()
        .expect("connect over the unix socket");
    con.set_read_timeout(Some(WAIT)).expect("timeout");
    con
}

fn tcp_con(p: &Proc) -> redis::Connection {
    let con = redis::Client::open(format!("redis://127.0.0.1:{}/", p.port))
        .expect("client")
        .get_connection()
        .expect("connect over TCP");
    con.set_read_timeout(Some(WAIT)).expect("timeout");
    con
}

fn cmd(con: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn text(con: &mut redis::Connection, args: &[&str]) -> String {
    common::text(&cmd(con, args))
}

/// The `name=` field of a CLIENT LIST / CLIENT INFO line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}

/// Raw RESP over a Unix stream: one command, reads what comes within a
/// moment.
fn raw_unix(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).expect("connect unix");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s
}

fn read_until(s: &mut UnixStream, pred: impl Fn(&str) -> bool) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !pred(&String::from_utf8_lossy(&out)) {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn commands_multi_blocking_and_pubsub_over_the_unix_socket() {
    let dir = temp_dir("unix-cmds");
    let p = start(&herald_bin(), &dir, &[]);
    let mut u = unix_con(&p);
    let mut t = tcp_con(&p);
    assert_eq!(text(&mut u, &["PING"]), "PONG");
    assert_eq!(text(&mut u, &["SET", "k", "v"]), "OK");
    assert_eq!(text(&mut t, &["GET", "k"]), "v");
    // MULTI / EXEC.
    let r: Vec<i64> = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("n")
        .cmd("INCR")
        .arg("n")
        .query(&mut u)
        .expect("exec");
    assert_eq!(r, vec![1, 2]);
    // A blocking command on the Unix socket, served by a TCP client's push.
    let sock = p.sock.clone();
    let blocked = std::thread::spawn(move || {
        let mut s = raw_unix(&sock);
        s.write_all(b"BLPOP q 10\r\n").expect("write");
        read_until(&mut s, |o| o.matches("\r\n").count() >= 5)
    });
    common::wait_until("a blocked client", WAIT, || {
        common::blocked_clients(&mut t) == 1
    });
    assert_eq!(text(&mut t, &["LPUSH", "q", "x"]), "1");
    assert_eq!(
        blocked.join().expect("blpop"),
        "*2\r\n$1\r\nq\r\n$1\r\nx\r\n"
    );
    // Pub/sub: a Unix subscriber, a TCP publisher, and the other way round.
    for (sub_unix, channel) in [(true, "from-tcp"), (false, "from-unix")] {
        let mut sub = if sub_unix { unix_con(&p) } else { tcp_con(&p) };
        let mut publisher = if sub_unix { tcp_con(&p) } else { unix_con(&p) };
        let mut ps = sub.as_pubsub();
        ps.subscribe(channel).expect("subscribe");
        for i in 0..100 {
            let n: i64 = redis::cmd("PUBLISH")
                .arg(channel)
                .arg(format!("m{i}"))
                .query(&mut publisher)
                .expect("publish");
            assert_eq!(n, 1);
        }
        for i in 0..100 {
            let msg = ps.get_message().expect("message");
            assert_eq!(msg.get_channel_name(), channel);
            let payload: String = msg.get_payload().expect("payload");
            assert_eq!(payload, format!("m{i}"));
        }
    }
    // INFO server's tcp_port is the TCP port.
    assert_eq!(
        common::info_u64(&mut u, "server", "tcp_port"),
        u64::from(p.port)
    );
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn client_list_info_kill_and_monitor_name_the_socket() {
    let dir = temp_dir("unix-client");
    let p = start(&herald_bin(), &dir, &[]);
    let path = p.sock.display().to_string();
    let mut u = unix_con(&p);
    let mut t = tcp_con(&p);
    let info = text(&mut u, &["CLIENT", "INFO"]);
    assert_eq!(field(&info, "addr"), format!("{path}:0"));
    assert_eq!(field(&info, "laddr"), format!("{path}:0"));
    assert_eq!(field(&info, "flags"), "U");
    let tinfo = text(&mut t, &["CLIENT", "INFO"]);
    assert_eq!(field(&tinfo, "flags"), "N");
    // A Unix subscriber as another client sees it.
    let mut sub = raw_unix(&p.sock);
    sub.write_all(b"SUBSCRIBE c\r\n").expect("write");
    read_until(&mut sub, |o| o.ends_with(":1\r\n"));
    let list = text(&mut t, &["CLIENT", "LIST"]);
    let line = list
        .lines()
        .find(|l| field(l, "sub") == "1")
        .expect("the subscriber");
    assert_eq!(field(line, "flags"), "PU");
    // MONITOR names a Unix-socket client unix:<path>.
    let mut mon = raw_unix(&p.sock);
    mon.write_all(b"MONITOR\r\n").expect("write");
    read_until(&mut mon, |o| o.ends_with("+OK\r\n"));
    assert_eq!(text(&mut u, &["SET", "mk", "mv"]), "OK");
    let line = read_until(&mut mon, |o| o.contains("\"mv\"\r\n"));
    assert!(
        line.contains(&format!("[0 unix:{path}] \"SET\" \"mk\" \"mv\"")),
        "{line}"
    );
    // CLIENT KILL ADDR <path>:0 kills the Unix clients (all three share
    // that address), not the TCP one.
    let killed = text(&mut t, &["CLIENT", "KILL", "ADDR", &format!("{path}:0")]);
    assert_eq!(killed, "3");
    assert_eq!(text(&mut t, &["PING"]), "PONG");
    let left = text(&mut t, &["CLIENT", "LIST"]);
    assert_eq!(left.lines().count(), 1, "{left}");
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a server shows for a Unix-socket client, with the socket's path
/// and the varying fields taken out: CLIENT INFO's addr / laddr / flags,
/// a subscriber's flags, and a MONITOR line.
fn unix_client_forms(bin: &Path) -> Vec<String> {
    let dir = temp_dir("unix-diff");
    let p = start(bin, &dir, &[]);
    let path = p.sock.display().to_string();
    let mut u = unix_con(&p);
    let info = text(&mut u, &["CLIENT", "INFO"]);
    let mut out: Vec<String> = ["addr", "laddr", "flags"]
        .iter()
        .map(|f| format!("{f}={}", field(&info, f).replace(&path, "<path>")))
        .collect();
    let mut sub = raw_unix(&p.sock);
    sub.write_all(b"SUBSCRIBE c\r\n").expect("write");
    read_until(&mut sub, |o| o.ends_with(":1\r\n"));
    let list = text(&mut u, &["CLIENT", "LIST"]);
    for l in list.lines() {
        out.push(format!(
            "list addr={} flags={}",
            field(l, "addr").replace(&path, "<path>"),
            field(l, "flags")
        ));
    }
    let mut mon = raw_unix(&p.sock);
    mon.write_all(b"MONITOR\r\n").expect("write");
    read_until(&mut mon, |o| o.ends_with("+OK\r\n"));
    text(&mut u, &["SET", "mk", "mv"]);
    let line = read_until(&mut mon, |o| o.contains("\"mv\"\r\n"));
    let line = line.trim_start_matches("+OK\r\n");
    let after_time = line.split_once(' ').map_or(line, |(_, rest)| rest);
    out.push(after_time.replace(&path, "<path>"));
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn unix_client_forms_match_redis_server() {
    let Some(redis) = common::redis_server_if_present() else {
        eprintln!("skipped: no redis-server to compare with");
        return;
    };
    let herald = unix_client_forms(&herald_bin());
    let reference = unix_client_forms(&redis);
    eprintln!("redis-server: {reference:?}");
    assert_eq!(herald, reference);
    assert!(herald.contains(&"addr=<path>:0".to_string()), "{herald:?}");
}

#[test]
fn socket_file_permissions_stale_file_config_and_shutdown() {
    let dir = temp_dir("unix-file");
    // A stale file where the socket goes is replaced.
    std::fs::write(dir.join("s.sock"), b"stale").expect("stale file");
    let mut p = start(&herald_bin(), &dir, &["--unixsocketperm", "700"]);
    let meta = std::fs::metadata(&p.sock).expect("socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let path = p.sock.display().to_string();
    let log = std::fs::read_to_string(&p.log).expect("log");
    assert!(
        log.contains(&format!(
            "The server is now ready to accept connections at {path}"
        )),
        "{log}"
    );
    let mut u = unix_con(&p);
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("unixsocket*")
        .query(&mut u)
        .expect("config get");
    assert_eq!(got, vec!["unixsocket", &path, "unixsocketperm", "700"]);
    let mut raw = raw_unix(&p.sock);
    for (name, value) in [("unixsocket", "/tmp/x.sock"), ("unixsocketperm", "777")] {
        raw.write_all(format!("CONFIG SET {name} {value}\r\n").as_bytes())
            .expect("write");
        assert_eq!(
            read_until(&mut raw, |o| o.ends_with("\r\n")),
            format!(
                "-ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config\r\n"
            )
        );
    }
    // SHUTDOWN over the socket removes its file.
    let out = run(
        Command::new(redis_cli())
            .arg("-s")
            .arg(&p.sock)
            .args(["SHUTDOWN", "NOSAVE"]),
        Duration::from_secs(5),
    );
    let _ = out;
    assert!(
        wait_exit(&mut p.child.0, WAIT).is_some(),
        "herald did not exit"
    );
    assert!(!p.sock.exists(), "socket file left behind");
    let log = std::fs::read_to_string(&p.log).expect("log");
    assert!(log.contains("Removing the unix socket file."), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_socket_that_cannot_be_bound_stops_start_up() {
    let dir = temp_dir("unix-fail");
    let sock = dir.join("missing").join("s.sock");
    let log = dir.join("server.log");
    let child = Command::new(herald_bin())
        .args(["--port", &free_port().to_string(), "--bind", "127.0.0.1"])
        .arg("--unixsocket")
        .arg(&sock)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut child = KillOnDrop(child);
    let status = wait_exit(&mut child.0, WAIT).expect("herald exits");
    assert!(!status.success());
    let log = std::fs::read_to_string(&log).expect("log");
    assert!(
        log.contains("Failed opening Unix socket: bind: No such file or directory"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unix_clients_are_local() {
    let dir = temp_dir("unix-local");
    let p = start(
        &herald_bin(),
        &dir,
        &["--enable-debug-command", "local", "--protected-mode", "yes"],
    );
    let mut u = unix_con(&p);
    assert_eq!(text(&mut u, &["DEBUG", "SLEEP", "0"]), "OK");
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_cli_and_redis_benchmark_over_the_socket() {
    let dir = temp_dir("unix-tools");
    let p = start(&herald_bin(), &dir, &[]);
    let out = run(
        Command::new(redis_cli())
            .arg("-s")
            .arg(&p.sock)
            .args(["SET", "a", "1"]),
        Duration::from_secs(5),
    );
    assert_eq!(out.stdout.trim(), "OK");
    let bench = redis_cli().with_file_name("redis-benchmark");
    if bench.is_file() {
        let out = run(
            Command::new(&bench)
                .arg("-s")
                .arg(&p.sock)
                .args(["-n", "1000", "-t", "set,get", "-q"]),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "{}", out.stderr);
        assert!(out.stdout.contains("SET:"), "{}", out.stdout);
        assert!(out.stdout.contains("GET:"), "{}", out.stdout);
    } else {
        eprintln!("redis-benchmark not found beside redis-cli: skipped");
    }
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_relative_path_is_taken_in_dir() {
    let dir = temp_dir("unix-rel");
    let port = free_port();
    let child = Command::new(herald_bin())
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .args(["--unixsocket", "rel.sock"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut child = KillOnDrop(child);
    let addr = ([127, 0, 0, 1], port).into();
    wait_for_ping(addr, WAIT, Some(&mut child.0)).expect("herald starts");
    let p = Proc {
        child,
        port,
        sock: dir.join("rel.sock"),
        log: dir.join("unused.log"),
    };
    let mut u = unix_con(&p);
    let info = text(&mut u, &["CLIENT", "INFO"]);
    assert_eq!(field(&info, "addr"), "rel.sock:0");
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_buffer_limits_close_a_unix_subscriber_that_does_not_read() {
    let dir = temp_dir("unix-limits");
    let p = start(&herald_bin(), &dir, &[]);
    let mut t = tcp_con(&p);
    common::config_set(&mut t, "client-output-buffer-limit", "pubsub 256kb 0 0");
    let mut sub = raw_unix(&p.sock);
    sub.write_all(b"SUBSCRIBE slow\r\n").expect("write");
    read_until(&mut sub, |o| o.ends_with(":1\r\n"));
    // The subscriber reads nothing more: its socket fills, then its outbox.
    let payload = "x".repeat(16 * 1024);
    let mut published = 0;
    while common::info_u64(&mut t, "stats", "client_output_buffer_limit_disconnections") == 0 {
        let n: i64 = redis::cmd("PUBLISH")
            .arg("slow")
            .arg(&payload)
            .query(&mut t)
            .expect("publish");
        published += 1;
        assert!(n <= 1 && published < 10_000, "never closed");
    }
    common::wait_until("the subscriber gone", WAIT, || {
        let list = text(&mut t, &["CLIENT", "LIST"]);
        !list.contains("flags=PU")
    });
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}
