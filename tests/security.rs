//! Security end to end: TLS with redis-cli and redis-py on a
//! `tls-port` beside the plain port (client certificates required, optional
//! or not asked for; a missing or wrong one refused), protected mode, users
//! from the config file, and the ACL file (`aclfile`, ACL SAVE / LOAD).
//!
//! Certificates are made at test time with rcgen: a CA, a server
//! certificate for 127.0.0.1 / localhost, a client certificate from that CA
//! and one from another CA. redis-cli must be built with TLS (Debian's is);
//! redis-py comes from the test venv (`HERALD_PYTHON`, see tests/common).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use herald::config::Config;

/// Certificates and keys written to a temporary directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().expect("ca key");
    let cert = params.self_signed(&key).expect("ca cert");
    (cert, key)
}

fn leaf(
    names: &[&str],
    usage: rcgen::ExtendedKeyUsagePurpose,
    issuer: &(rcgen::Certificate, rcgen::KeyPair),
) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("leaf params");
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    params.extended_key_usages = vec![usage];
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let cert = params
        .signed_by(&key, &issuer.0, &issuer.1)
        .expect("sign leaf");
    (cert.pem(), key.serialize_pem())
}

fn make_pki() -> Pki {
    let dir = common::temp_dir("pki");
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write pem");
    let good = ca("herald test CA");
    let rogue = ca("rogue CA");
    write("ca.crt", &good.0.pem());
    let (cert, key) = leaf(
        &["localhost"],
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        &good,
    );
    write("server.crt", &cert);
    write("server.key", &key);
    let (cert, key) = leaf(
        &["client"],
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        &good,
    );
    write("client.crt", &cert);
    write("client.key", &key);
    let (cert, key) = leaf(
        &["rogue"],
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        &rogue,
    );
    write("rogue.crt", &cert);
    write("rogue.key", &key);
    Pki { dir }
}

fn try_start(text: &str) -> std::io::Result<herald::server::ServerHandle> {
    let mut config = Config::from_config_text(text).expect("config");
    config.port = 0;
    herald::server::start(config)
}

fn start(text: &str) -> herald::server::ServerHandle {
    try_start(text).expect("start herald")
}

/// Starts herald with the configuration `text(tls_port)`. The TLS port is
/// probed free and then bound by the server: a test running beside may
/// take it in between, so a taken port is tried again with another.
fn start_on_tls_port(text: impl Fn(u16) -> String) -> herald::server::ServerHandle {
    let mut taken = None;
    for _ in 0..5 {
        match try_start(&text(common::free_port())) {
            Ok(server) => return server,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => taken = Some(e),
            Err(e) => panic!("start herald: {e:?}"),
        }
    }
    panic!("start herald: {taken:?}")
}

fn start_tls(pki: &Pki, auth: &str) -> herald::server::ServerHandle {
    start_on_tls_port(|port| {
        format!(
            "bind 127.0.0.1\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients {auth}\n",
            pki.path("server.crt"),
            pki.path("server.key"),
            pki.path("ca.crt"),
        )
    })
}

/// redis-cli over TLS with the given extra arguments.
fn cli_tls(port: u16, pki: &Pki, cert: Option<&str>, args: &[&str]) -> common::Output {
    let mut cmd = Command::new(common::redis_cli());
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls"])
        .args(["--cacert", &pki.path("ca.crt")]);
    if let Some(name) = cert {
        cmd.args(["--cert", &pki.path(&format!("{name}.crt"))])
            .args(["--key", &pki.path(&format!("{name}.key"))]);
    }
    cmd.args(args);
    common::run(&mut cmd, Duration::from_secs(30))
}

/// Sends raw RESP and reads replies until they end with `last` (or EOF).
fn raw(addr: SocketAddr, req: &[u8], last: &[u8]) -> Vec<u8> {
    let mut s = common::connect_raw(addr);
    s.write_all(req).expect("write");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !out.ends_with(last) {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    out
}

#[test]
fn tls_with_redis_cli_and_client_certificates() {
    let pki = make_pki();
    let server = start_tls(&pki, "yes");
    let port = server.tls_addr().expect("tls listener").port();

    let out = cli_tls(port, &pki, Some("client"), &["PING"]);
    out.print("redis-cli --tls PING");
    assert_eq!(out.stdout.trim(), "PONG");

    // A big value both ways: partial TLS writes and reads.
    let big = "x".repeat(300_000);
    let out = common::run_with_input(
        Command::new(common::redis_cli())
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls"])
            .args(["--cacert", &pki.path("ca.crt")])
            .args([
                "--cert",
                &pki.path("client.crt"),
                "--key",
                &pki.path("client.key"),
            ])
            .args(["-x", "SET", "big"]),
        big.as_bytes(),
        Duration::from_secs(30),
    );
    assert_eq!(out.stdout.trim(), "OK");
    let out = cli_tls(port, &pki, Some("client"), &["STRLEN", "big"]);
    assert_eq!(out.stdout.trim(), "300000");
    let out = cli_tls(port, &pki, Some("client"), &["GET", "big"]);
    assert_eq!(out.stdout.trim().len(), 300_000);

    // No certificate, or one from another CA: the handshake fails.
    for cert in [None, Some("rogue")] {
        let out = cli_tls(port, &pki, cert, &["PING"]);
        out.print("redis-cli --tls without a good certificate");
        assert!(
            !out.stdout.contains("PONG"),
            "a client without a good certificate was served ({cert:?})"
        );
    }

    // The plain port serves beside the TLS one.
    assert_eq!(raw(server.addr(), b"PING\r\n", b"\r\n"), b"+PONG\r\n");
    server.shutdown();
}

#[test]
fn tls_client_certificates_optional_or_not_asked() {
    let pki = make_pki();
    for auth in ["optional", "no"] {
        let server = start_tls(&pki, auth);
        let port = server.tls_addr().expect("tls listener").port();
        let out = cli_tls(port, &pki, None, &["PING"]);
        out.print(&format!("tls-auth-clients {auth}, no certificate"));
        assert_eq!(out.stdout.trim(), "PONG", "tls-auth-clients {auth}");
        if auth == "optional" {
            let out = cli_tls(port, &pki, Some("client"), &["PING"]);
            assert_eq!(out.stdout.trim(), "PONG");
            let out = cli_tls(port, &pki, Some("rogue"), &["PING"]);
            assert!(
                !out.stdout.contains("PONG"),
                "a wrong certificate was accepted"
            );
        }
        server.shutdown();
    }
}

const PY_TLS: &str = r#"
import sys, redis
port, ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def client(**extra):
    return redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=ca,
                       socket_timeout=10, **extra)
for proto in (2, 3):
    r = client(ssl_certfile=cert, ssl_keyfile=key, protocol=proto)
    assert r.ping()
    p = r.pubsub()
    p.subscribe("tls:news")
    assert p.get_message(timeout=10)["type"] == "subscribe"
    payload = "m" * 100000
    assert r.publish("tls:news", payload) == 1
    msg = p.get_message(timeout=10)
    assert msg["type"] == "message" and msg["data"] == payload.encode(), msg
    p.close()
    r.set("k", "v" * 70000)
    assert r.get("k") == b"v" * 70000
    r.close()
try:
    client(protocol=2).ping()
except redis.exceptions.ConnectionError:
    print("refused without certificate")
else:
    raise SystemExit("served without a client certificate")
print("ok")
"#;

#[test]
fn tls_with_redis_py() {
    let pki = make_pki();
    let server = start_tls(&pki, "yes");
    let port = server.tls_addr().expect("tls listener").port();
    let out = common::run(
        Command::new(common::python())
            .arg("-c")
            .arg(PY_TLS)
            .arg(port.to_string())
            .arg(pki.path("ca.crt"))
            .arg(pki.path("client.crt"))
            .arg(pki.path("client.key")),
        Duration::from_secs(60),
    );
    out.print("redis-py ssl=True");
    assert!(
        out.status.success(),
        "redis-py over TLS failed (output above)"
    );
    assert!(out.stdout.contains("refused without certificate"));
    assert!(out.stdout.trim_end().ends_with("ok"));
    server.shutdown();
}

#[test]
fn tls_misconfiguration_stops_start_up() {
    let mut config = Config::from_config_text(&format!(
        "tls-port {}\ntls-cert-file /nonexistent/server.crt\ntls-key-file /nonexistent/server.key\ntls-auth-clients no\n",
        common::free_port()
    ))
    .expect("config");
    config.port = 0;
    let err = herald::server::start(config)
        .err()
        .expect("start must fail");
    assert!(err.to_string().contains("/nonexistent/server.crt"), "{err}");
}

/// Connects to `to` from the local address `from`.
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let local: SocketAddr = (from, 0).into();
    sock.bind(&local.into()).expect("bind local address");
    sock.connect(&to.into()).expect("connect");
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(common::WAIT)).expect("timeout");
    s
}

fn read_to_end(mut s: TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn protected_mode_refuses_non_local_clients() {
    let server = start("bind 0.0.0.0\n");
    let to: SocketAddr = ([127, 0, 0, 1], server.port()).into();

    // 127.0.0.2 is not "local" for Redis (it compares with 127.0.0.1 / ::1).
    let mut s = connect_from([127, 0, 0, 2], to);
    let _ = s.write_all(b"PING\r\n");
    let reply = read_to_end(s);
    assert!(
        reply.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."),
        "{reply}"
    );
    assert!(reply.ends_with("accepting connections from the outside.\r\n"));

    let mut s = connect_from([127, 0, 0, 1], to);
    s.write_all(b"PING\r\n").expect("write");
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"+PONG\r\n");

    // With a password the client is served (and must authenticate).
    s.write_all(b"CONFIG SET requirepass pw\r\n")
        .expect("write");
    let mut ok = [0u8; 5];
    s.read_exact(&mut ok).expect("read");
    let mut other = connect_from([127, 0, 0, 2], to);
    other
        .write_all(b"PING\r\nAUTH pw\r\nPING\r\n")
        .expect("write");
    let mut buf = vec![0u8; 64];
    let mut got = Vec::new();
    while !got.ends_with(b"+PONG\r\n") {
        let n = other.read(&mut buf).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        "-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n"
    );

    // protected-mode no: served without a password too.
    s.write_all(b"CONFIG SET requirepass \"\"\r\nCONFIG SET protected-mode no\r\n")
        .expect("write");
    let mut ok = [0u8; 10];
    s.read_exact(&mut ok).expect("read");
    let mut third = connect_from([127, 0, 0, 2], to);
    third.write_all(b"PING\r\n").expect("write");
    let mut buf = [0u8; 7];
    third.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"+PONG\r\n");
    server.shutdown();
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = common::run(
        Command::new(common::redis_cli())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
        Duration::from_secs(30),
    );
    out.stdout.trim().to_string()
}

#[test]
fn users_from_the_config_file() {
    let server = start(
        "bind 127.0.0.1\nuser default on nopass ~* &* +@all\nuser reader on >rpw ~cache:* +get +acl|whoami\nrequirepass ignored-because-user-lines-come-after\n",
    );
    let port = server.port();
    assert_eq!(
        cli(
            port,
            &["--user", "reader", "--pass", "rpw", "ACL", "WHOAMI"]
        ),
        "reader"
    );
    assert!(cli(
        port,
        &["--user", "reader", "--pass", "rpw", "SET", "cache:1", "v"]
    )
    .contains("NOPERM"));
    let list = cli(port, &["ACL", "LIST"]);
    assert!(list.contains("user reader on #"), "{list}");
    server.shutdown();

    let bad = Config::from_config_text("user bob on bogus\n").expect_err("bad user line");
    // Users in the config file and an ACL file: refused, as Redis does.
    let mut both =
        Config::from_config_text("user bob on\naclfile /tmp/herald-none.acl\n").expect("config");
    both.port = 0;
    let err = herald::server::start(both).err().expect("start must fail");
    assert!(err.to_string().contains("but not both"), "{err}");
    assert!(bad.0.contains("Error in user declaration"), "{}", bad.0);
}

fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

#[test]
fn acl_file_load_and_save() {
    let dir = common::temp_dir("aclfile");
    let file = dir.join("users.acl");
    write_file(
        &file,
        "user default on nopass ~* &* +@all\nuser alice on >apw ~* &* +@all -flushall\n",
    );
    let server = start(&format!("bind 127.0.0.1\naclfile {}\n", file.display()));
    let port = server.port();
    assert_eq!(
        cli(port, &["--user", "alice", "--pass", "apw", "ACL", "WHOAMI"]),
        "alice"
    );
    assert_eq!(
        cli(port, &["ACL", "SETUSER", "bob", "on", ">bpw", "+ping"]),
        "OK"
    );
    assert_eq!(cli(port, &["ACL", "SAVE"]), "OK");
    let saved = std::fs::read_to_string(&file).expect("read acl file");
    assert!(saved.contains("user bob on #"), "{saved}");
    assert!(saved.contains("user alice on #"), "{saved}");

    // A broken file changes nothing.
    write_file(&file, "user carol on bogus\n");
    let err = cli(port, &["ACL", "LOAD"]);
    assert!(err.contains("Syntax error"), "{err}");
    assert!(
        err.contains("no change to the previously active ACL rules"),
        "{err}"
    );
    assert_eq!(
        cli(port, &["--user", "bob", "--pass", "bpw", "PING"]),
        "PONG"
    );

    // A good one replaces every user.
    write_file(&file, &saved.replace("user bob", "user robert"));
    assert_eq!(cli(port, &["ACL", "LOAD"]), "OK");
    let users = cli(port, &["ACL", "USERS"]);
    assert_eq!(
        users.lines().collect::<Vec<_>>(),
        ["alice", "default", "robert"]
    );
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_auth_floods_are_counted_and_do_not_block_others() {
    let server = start("bind 127.0.0.1\nrequirepass right\n");
    let addr = server.addr();
    let flood = std::thread::spawn(move || {
        let mut s = common::connect_raw(addr);
        let req = "AUTH wrong\r\n".repeat(2000);
        s.write_all(req.as_bytes()).expect("write");
        let want =
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n".len() * 2000;
        let mut got = 0;
        let mut buf = vec![0u8; 65536];
        while got < want {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0);
            got += n;
        }
    });
    // Meanwhile another client is served promptly.
    let started = std::time::Instant::now();
    for _ in 0..50 {
        assert_eq!(
            raw(addr, b"AUTH right\r\nPING\r\n", b"+PONG\r\n"),
            b"+OK\r\n+PONG\r\n"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    flood.join().expect("flood thread");
    let info = cli(
        server.port(),
        &["-a", "right", "--no-auth-warning", "INFO", "stats"],
    );
    let denied: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("acl_access_denied_auth:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("acl_access_denied_auth in INFO");
    assert_eq!(denied, 2000);
    server.shutdown();
}

#[test]
fn a_subscriber_narrowing_its_own_channels_is_closed() {
    // redis-server 7.0.15 frees the client in the middle of its own command
    // (and crashes); herald closes it without a reply, as Redis means to.
    let server = start("bind 127.0.0.1\n");
    let addr = server.addr();
    let mut a = common::connect_raw(addr);
    a.write_all(b"ACL SETUSER me on >pw +@all ~* resetchannels &a &b\r\n")
        .expect("write");
    assert_eq!(common::read_line(&mut a), "+OK\r\n");
    let mut b = common::connect_raw(addr);
    b.write_all(b"AUTH me pw\r\nHELLO 3\r\n").expect("write");
    assert_eq!(common::read_line(&mut b), "+OK\r\n");
    // The HELLO map, then the subscription confirmation.
    let mut buf = vec![0u8; 4096];
    let n = b.read(&mut buf).expect("read");
    assert!(buf[..n].starts_with(b"%7\r\n"));
    b.write_all(b"SUBSCRIBE a\r\n").expect("write");
    let n = b.read(&mut buf).expect("read");
    assert!(buf[..n].starts_with(b">3\r\n"));
    b.write_all(b"ACL SETUSER me resetchannels &b\r\n")
        .expect("write");
    assert_eq!(read_to_end(b), "");
    a.write_all(b"PUBLISH a m\r\nACL DELUSER me\r\n")
        .expect("write");
    assert_eq!(common::read_line(&mut a), ":0\r\n");
    assert_eq!(common::read_line(&mut a), ":1\r\n");
    server.shutdown();
}

const PY_TLS_FROM: &str = r#"
import socket, ssl, sys
port, ca, source = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(b"PING\r\n")
data = b""
while not data.endswith(b"\r\n") or data.startswith(b"-DENIED") and not data.endswith(b"outside.\r\n"):
    d = s.recv(4096)
    if not d:
        break
    data += d
print(data.decode())
"#;

#[test]
fn protected_mode_on_the_tls_port() {
    let pki = make_pki();
    let server = start_on_tls_port(|port| {
        format!(
            "bind 0.0.0.0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-auth-clients no\n",
            pki.path("server.crt"),
            pki.path("server.key"),
        )
    });
    let port = server.tls_addr().expect("tls listener").port();
    let from = |source: &str| {
        let out = common::run(
            Command::new(common::python())
                .arg("-c")
                .arg(PY_TLS_FROM)
                .arg(port.to_string())
                .arg(pki.path("ca.crt"))
                .arg(source),
            Duration::from_secs(30),
        );
        out.print(&format!("TLS client from {source}"));
        out.stdout
    };
    assert!(from("127.0.0.2").starts_with("-DENIED Redis is running in protected mode"));
    assert_eq!(from("127.0.0.1").trim(), "+PONG");
    server.shutdown();
}

#[test]
fn tls_settings_change_at_run_time() {
    let pki = make_pki();
    let server = start_tls(&pki, "yes");
    let port = server.tls_addr().expect("tls listener").port();
    let plain = server.port();
    assert!(!cli_tls(port, &pki, None, &["PING"]).stdout.contains("PONG"));
    // A file that cannot be read: refused, nothing changes.
    let err = cli(
        plain,
        &["CONFIG", "SET", "tls-cert-file", "/nonexistent.crt"],
    );
    assert_eq!(
        err,
        "ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs."
    );
    assert_eq!(
        cli(plain, &["CONFIG", "GET", "tls-cert-file"])
            .lines()
            .nth(1),
        Some(pki.path("server.crt").as_str())
    );
    // Client certificates no longer asked for: new connections get in.
    assert_eq!(
        cli(plain, &["CONFIG", "SET", "tls-auth-clients", "no"]),
        "OK"
    );
    assert_eq!(cli_tls(port, &pki, None, &["PING"]).stdout.trim(), "PONG");
    server.shutdown();
}
