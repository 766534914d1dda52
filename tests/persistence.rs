//! Issue 7: append-only persistence in Redis 7.0's multi-part format.
//!
//! - Interchange with a real redis-server 7.0 in both directions.
//! - Crash test: the `herald` binary with `appendfsync always` is killed
//!   with SIGKILL at random moments while a client writes numbered
//!   entries; after each restart every acknowledged write is there, in order.
//! - Torn tails: the last file cut at every byte of its last records loads
//!   exactly the complete records (or the data before an open MULTI).
//! - Rewrite: BGREWRITEAOF keeps the data and a restart reloads it.
//!
//! Every wait is for an event (PING answering, a process exiting) with a
//! deadline; nothing sleeps to let something happen.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use herald::config::{AppendFsync, Config};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "herald-persist-{name}-{}-{}",
        std::process::id(),
        rand_u64()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn redis_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HERALD_REDIS_SERVER") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let c = dir.join("redis-server");
        if c.is_file() {
            return c;
        }
    }
    panic!("redis-server not found (set HERALD_REDIS_SERVER or run bash scripts/test.sh)");
}

/// A child server process, SIGKILLed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects once PING answers (deadline 10 s).
fn connect(port: u16) -> redis::Connection {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).map(|_| c));
        match r {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("server on {port} not ready: {e}"),
            Err(_) => std::thread::yield_now(),
        }
    }
}

fn redis_server(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new(redis_server_binary())
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir)
        .args([
            "--appendonly",
            "yes",
            "--aof-use-rdb-preamble",
            "no",
            "--save",
            "",
            "--daemonize",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    (Proc(child), port)
}

fn herald_bin(dir: &Path, fsync: &str) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir)
        .args(["--appendfsync", fsync])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("herald");
    (Proc(child), port)
}

/// Stops a server with SHUTDOWN and waits for the process to exit.
fn shutdown(mut p: Proc, c: &mut redis::Connection) {
    let _ = redis::cmd("SHUTDOWN").query::<()>(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::yield_now();
    }
}

fn write_sample(c: &mut redis::Connection) {
    let q = |c: &mut redis::Connection, args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query::<redis::Value>(c).unwrap();
    };
    q(c, &["SET", "plain", "v"]);
    q(c, &["SET", "ttl", "v", "EX", "1000"]);
    q(c, &["INCRBYFLOAT", "f", "1.25"]);
    q(c, &["RPUSH", "list", "a", "b", "c", "d"]);
    q(c, &["LPOP", "list"]);
    q(c, &["HSET", "hash", "f1", "v1", "f2", "v2"]);
    q(c, &["SADD", "set", "x", "y", "z"]);
    q(c, &["SPOP", "set"]);
    q(c, &["ZADD", "zset", "1", "a", "2.5", "b", "0.1", "c"]);
    q(c, &["SELECT", "5"]);
    q(c, &["SET", "in5", "five"]);
    q(c, &["SELECT", "0"]);
}

/// Everything `write_sample` left, as comparable text.
fn dump(c: &mut redis::Connection) -> Vec<String> {
    let mut out = Vec::new();
    let mut q = |args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let v: redis::Value = cmd.query(c).unwrap();
        out.push(format!("{args:?} => {v:?}"));
    };
    q(&["GET", "plain"]);
    q(&["GET", "ttl"]);
    q(&["GET", "f"]);
    q(&["LRANGE", "list", "0", "-1"]);
    q(&["HGETALL", "hash"]);
    q(&["SCARD", "set"]);
    q(&["ZRANGE", "zset", "0", "-1", "WITHSCORES"]);
    q(&["SELECT", "5"]);
    q(&["GET", "in5"]);
    q(&["SELECT", "0"]);
    q(&["DBSIZE"]);
    let ttl: i64 = redis::cmd("TTL").arg("ttl").query(c).unwrap();
    assert!(ttl > 900 && ttl <= 1000, "ttl {ttl}");
    out
}

#[test]
fn herald_writes_redis_reads() {
    let d = temp_dir("h2r");
    let (p, port) = herald_bin(&d, "everysec");
    let mut c = connect(port);
    write_sample(&mut c);
    let want = dump(&mut c);
    shutdown(p, &mut c);
    let (rp, rport) = redis_server(&d);
    let mut r = connect(rport);
    assert_eq!(dump(&mut r), want);
    // And back: redis-server appends to herald's files, herald reloads.
    redis::cmd("SET")
        .arg("from-redis")
        .arg("1")
        .query::<()>(&mut r)
        .unwrap();
    shutdown(rp, &mut r);
    let (_p, port) = herald_bin(&d, "everysec");
    let mut c = connect(port);
    assert_eq!(
        dump(&mut c),
        want[..want.len() - 1]
            .iter()
            .cloned()
            .chain([format!("{:?} => {:?}", ["DBSIZE"], redis::Value::Int(8))])
            .collect::<Vec<_>>()
    );
    let v: String = redis::cmd("GET").arg("from-redis").query(&mut c).unwrap();
    assert_eq!(v, "1");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn redis_writes_herald_reads_and_rewrites() {
    let d = temp_dir("r2h");
    let (rp, rport) = redis_server(&d);
    let mut r = connect(rport);
    write_sample(&mut r);
    let want = dump(&mut r);
    shutdown(rp, &mut r);
    let (p, port) = herald_bin(&d, "always");
    let mut c = connect(port);
    assert_eq!(dump(&mut c), want);
    // Rewrite, wait for it to finish, restart: same data.
    let s: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    assert_eq!(s, "Background append only file rewriting started");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
        if info.contains("aof_rewrite_in_progress:0") {
            assert!(info.contains("aof_last_bgrewrite_status:ok"));
            break;
        }
        assert!(Instant::now() < deadline, "rewrite did not finish");
        std::thread::yield_now();
    }
    shutdown(p, &mut c);
    let files: Vec<String> = std::fs::read_dir(d.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f == "appendonly.aof.2.base.aof"),
        "{files:?}"
    );
    let (_p, port) = herald_bin(&d, "always");
    let mut c = connect(port);
    assert_eq!(dump(&mut c), want);
    // redis-server loads herald's rewritten base too.
    shutdown(_p, &mut c);
    let (_rp, rport) = redis_server(&d);
    let mut r = connect(rport);
    assert_eq!(dump(&mut r), want);
    let _ = std::fs::remove_dir_all(&d);
}

/// SIGKILL at random moments under `appendfsync always`: every
/// acknowledged write survives, in order.
#[test]
fn crash_loses_no_acknowledged_write() {
    let d = temp_dir("crash");
    let start = Instant::now();
    let mut acked: u64 = 0;
    let mut rounds = 0;
    while rounds < 20 && start.elapsed() < Duration::from_secs(30) {
        rounds += 1;
        let (p, port) = herald_bin(&d, "always");
        let mut c = connect(port);
        // Everything acknowledged before is there, in order; at most one
        // more (in flight when killed, durable but unacknowledged).
        let list: Vec<u64> = redis::cmd("LRANGE")
            .arg("l")
            .arg(0)
            .arg(-1)
            .query(&mut c)
            .unwrap();
        let n = list.len() as u64;
        assert!(
            n == acked || n == acked + 1,
            "round {rounds}: {n} entries, {acked} acknowledged"
        );
        assert!(
            list.iter().copied().eq(0..n),
            "round {rounds}: out of order"
        );
        let zn: u64 = redis::cmd("ZCARD").arg("z").query(&mut c).unwrap();
        assert!(zn >= acked, "round {rounds}: zset {zn} < {acked}");
        if acked > 0 {
            let last: u64 = redis::cmd("GET")
                .arg(format!("k{}", acked - 1))
                .query(&mut c)
                .unwrap();
            assert_eq!(last, acked - 1);
        }
        acked = n;
        // A writer; the killer fires after a random delay.
        let writer = std::thread::spawn(move || {
            let mut done = acked;
            loop {
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("RPUSH")
                    .arg("l")
                    .arg(done)
                    .cmd("ZADD")
                    .arg("z")
                    .arg(done)
                    .arg(format!("m{done}"))
                    .cmd("SET")
                    .arg(format!("k{done}"))
                    .arg(done);
                if pipe.query::<redis::Value>(&mut c).is_err() {
                    return done;
                }
                done += 1;
            }
        });
        let delay = 20 + rand_u64() % 200;
        let until = Instant::now() + Duration::from_millis(delay);
        while Instant::now() < until {
            std::thread::yield_now();
        }
        drop(p); // SIGKILL
        acked = writer.join().unwrap();
    }
    assert!(rounds >= 5, "only {rounds} rounds");
    assert!(acked > 0, "nothing was written");
    let _ = std::fs::remove_dir_all(&d);
}

/// Loads `dir` in-process (no network) and returns the reply bytes of
/// `LRANGE l 0 -1`, or the start-up error.
fn load_lrange(dir: &Path) -> Result<String, String> {
    let cfg = Config {
        port: 0,
        appendonly: true,
        dir: dir.to_path_buf(),
        appendfsync: AppendFsync::No,
        ..Default::default()
    };
    let sh = herald::state::Shared::new(cfg);
    herald::persist::open(&sh)?;
    let mut c = herald::connection::Client::internal(sh.clone());
    herald::command::execute(
        &mut c,
        vec!["LRANGE".into(), "l".into(), "0".into(), "-1".into()],
    );
    herald::persist::close(&sh);
    Ok(String::from_utf8_lossy(&c.out).into_owned())
}

#[test]
fn torn_tails_load_the_complete_records() {
    let src = temp_dir("torn-src");
    {
        let sh_cfg = Config {
            port: 0,
            appendonly: true,
            dir: src.clone(),
            appendfsync: AppendFsync::Always,
            ..Default::default()
        };
        let s = herald::server::start(sh_cfg).unwrap();
        let mut c = connect(s.port());
        for i in 0..5 {
            redis::cmd("RPUSH")
                .arg("l")
                .arg(i)
                .query::<()>(&mut c)
                .unwrap();
        }
        redis::pipe()
            .atomic()
            .cmd("RPUSH")
            .arg("l")
            .arg(5)
            .cmd("RPUSH")
            .arg("l")
            .arg(6)
            .query::<()>(&mut c)
            .unwrap();
        s.shutdown();
    }
    let incr = src.join("appendonlydir/appendonly.aof.1.incr.aof");
    let full = std::fs::read(&incr).unwrap();
    // Record boundaries (offsets where a complete record ends).
    let data = bytes::Bytes::from(full.clone());
    let mut ends = vec![0];
    let mut pos = 0;
    while let Some((_, end)) = herald::persist::load::next_record(&data, pos).unwrap() {
        ends.push(end);
        pos = end;
    }
    // Expected list per complete prefix: count RPUSHes outside an open MULTI.
    let expect_for = |cut: usize| -> Vec<u64> {
        let s = herald::persist::load::scan(&data.slice(..cut));
        let mut v = Vec::new();
        let mut p = 0;
        let mut k = 0;
        while p < s.valid {
            let (args, end) = herald::persist::load::next_record(&data, p)
                .unwrap()
                .unwrap();
            if args[0].eq_ignore_ascii_case(b"rpush") {
                v.push(k);
                k += 1;
            }
            p = end;
        }
        v
    };
    let from = ends[ends.len().saturating_sub(6)];
    let dst = temp_dir("torn");
    for cut in from..=full.len() {
        let _ = std::fs::remove_dir_all(&dst);
        std::fs::create_dir_all(dst.join("appendonlydir")).unwrap();
        for e in std::fs::read_dir(src.join("appendonlydir")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join("appendonlydir").join(e.file_name())).unwrap();
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dst.join("appendonlydir/appendonly.aof.1.incr.aof"))
            .unwrap();
        f.set_len(cut as u64).unwrap();
        drop(f);
        let got = load_lrange(&dst).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let want = expect_for(cut);
        let mut enc = format!("*{}\r\n", want.len());
        for w in &want {
            enc.push_str(&format!("${}\r\n{w}\r\n", w.to_string().len()));
        }
        assert_eq!(got, enc, "cut at {cut}");
        // The file was truncated to the complete records.
        let len = std::fs::metadata(dst.join("appendonlydir/appendonly.aof.1.incr.aof"))
            .unwrap()
            .len();
        assert!(
            ends.contains(&(len as usize)),
            "cut {cut}: truncated to {len}"
        );
    }
    // Corruption in the middle is refused, naming file and offset.
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(dst.join("appendonlydir")).unwrap();
    for e in std::fs::read_dir(src.join("appendonlydir")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join("appendonlydir").join(e.file_name())).unwrap();
    }
    let mut bad = full.clone();
    bad[ends[2]] = b'x';
    std::fs::write(dst.join("appendonlydir/appendonly.aof.1.incr.aof"), &bad).unwrap();
    let e = load_lrange(&dst).unwrap_err();
    assert!(
        e.contains("appendonly.aof.1.incr.aof") && e.contains(&format!("offset {}", ends[2])),
        "{e}"
    );
    // check-aof reports it; --fix truncates there; then it loads.
    let out = herald::persist::check::check(&dst, false).unwrap_err();
    assert!(out.contains("not valid"), "{out}");
    herald::persist::check::check(&dst, true).unwrap();
    herald::persist::check::check(&dst, false).unwrap();
    assert!(load_lrange(&dst).is_ok());
    let _ = std::fs::remove_dir_all(&dst);
    let _ = std::fs::remove_dir_all(&src);
}
