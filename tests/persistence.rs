//! Issue 7: append-only persistence in Redis 7.0's multi-part format.
//!
//! - Interchange with a real redis-server 7.0 in both directions.
//! - Crash tests: the `herald` binary (`appendfsync always`, `everysec`,
//!   `no`) is killed with SIGKILL at random moments while a client writes
//!   numbered entries; after each restart every acknowledged write is
//!   there, in order.
//! - Torn tails: the last file cut at every byte of its last records loads
//!   exactly the complete records (or the data before an open MULTI).
//! - Rewrite: BGREWRITEAOF keeps the data and a restart reloads it.
//! - Round trips: every data type, TTLs, streams with consumer groups
//!   (PELs with delivery times and counts, consumers, last-delivered IDs,
//!   entries-read) compare equal after a restart, after BGREWRITEAOF, after
//!   both, and in redis-server loading herald's rewritten files.
//! - Rewrite under load: writers and a group reader run while BGREWRITEAOF
//!   happens several times; a restart has every key as it was.
//! - Automatic rewrite: small auto-aof-rewrite-percentage / min-size make
//!   it happen; the manifest never names a missing file; old files go.
//! - SIGTERM and SHUTDOWN write and fsync the log before exit.
//! - Disk errors (injected): MISCONF for writes, reads and pub/sub go on,
//!   the reply to a write that could not be written is held until it is,
//!   recovery.
//! - CONFIG SET appendonly yes / no at run time, also while a rewrite runs
//!   (the enable is scheduled, never waited for); a failed enabling
//!   rewrite is retried.
//!
//! Every wait has a deadline: a process's exit is waited for as an event;
//! what nothing announces (PING answering, INFO figures, a rewrite held
//! halfway) is polled with a short pause; nothing sleeps to let something
//! happen (the one sleep is the crash tests' random moment to kill at).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use herald::config::{AppendFsync, Config};

use common::dataset::{dump_all, qs, write_every_type};
use common::KillOnDrop;

/// Connects once PING answers (deadline 10 s).
fn connect(port: u16) -> redis::Connection {
    let mut last_err = None;
    common::poll(Duration::from_secs(10), || {
        let r = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).map(|_| c));
        r.map_err(|e| last_err = Some(e)).ok()
    })
    .unwrap_or_else(|| {
        panic!(
            "server on {port} not ready after 10 s: {}",
            last_err.expect("tried at least once")
        )
    })
}

fn redis_server(dir: &Path) -> (KillOnDrop, u16) {
    let port = common::free_port();
    let child = Command::new(common::redis_server())
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
    (KillOnDrop(child), port)
}

fn herald_bin(dir: &Path, fsync: &str) -> (KillOnDrop, u16) {
    let port = common::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir)
        .args(["--appendfsync", fsync])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("herald");
    (KillOnDrop(child), port)
}

/// Stops a server with SHUTDOWN and waits for the process to exit.
fn shutdown(mut p: KillOnDrop, c: &mut redis::Connection) {
    let _ = redis::cmd("SHUTDOWN").query::<()>(c);
    wait_exit(&mut p);
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
    let d = common::temp_dir("persist-h2r");
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
    let d = common::temp_dir("persist-r2h");
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
    let info = common::poll(Duration::from_secs(10), || {
        let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
        info.contains("aof_rewrite_in_progress:0").then_some(info)
    })
    .expect("the rewrite did not finish within 10 s");
    assert!(info.contains("aof_last_bgrewrite_status:ok"));
    shutdown(p, &mut c);
    let files: Vec<String> = std::fs::read_dir(d.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f == "appendonly.aof.2.base.rdb"),
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
    crash_rounds("always", 20, Duration::from_secs(30));
}

/// The same under `everysec` and `no`: a reply leaves only once its
/// effects are handed to the kernel, so killing the process (not the
/// machine) loses nothing acknowledged.
#[test]
fn crash_loses_no_acknowledged_write_everysec_and_no() {
    crash_rounds("everysec", 15, Duration::from_secs(20));
    crash_rounds("no", 8, Duration::from_secs(10));
}

/// Starts the `herald` binary with `fsync` on one directory, again and
/// again (at most `max_rounds` times, or for `budget`): each time it checks
/// that every write acknowledged before is there, in order, then lets a
/// client write numbered entries and kills the server with SIGKILL after a
/// random delay.
fn crash_rounds(fsync: &str, max_rounds: u32, budget: Duration) {
    let d = common::temp_dir(&format!("persist-crash-{fsync}"));
    let start = Instant::now();
    let mut acked: u64 = 0;
    let mut rounds = 0;
    while rounds < max_rounds && start.elapsed() < budget {
        rounds += 1;
        let (p, port) = herald_bin(&d, fsync);
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
            "{fsync} round {rounds}: {n} entries, {acked} acknowledged"
        );
        assert!(
            list.iter().copied().eq(0..n),
            "round {rounds}: out of order"
        );
        let zn: u64 = redis::cmd("ZCARD").arg("z").query(&mut c).unwrap();
        assert!(zn >= acked, "round {rounds}: zset {zn} < {acked}");
        // The stream has the same numbered entries, in order, with
        // increasing IDs.
        let entries: Vec<(String, Vec<(String, u64)>)> = redis::cmd("XRANGE")
            .arg("s")
            .arg("-")
            .arg("+")
            .query(&mut c)
            .unwrap();
        assert_eq!(entries.len() as u64, n, "round {rounds}: stream length");
        for (i, (_, fields)) in entries.iter().enumerate() {
            assert_eq!(fields, &[("n".to_string(), i as u64)], "round {rounds}");
        }
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
                    .arg(done)
                    .cmd("XADD")
                    .arg("s")
                    .arg("*")
                    .arg("n")
                    .arg(done);
                if pipe.query::<redis::Value>(&mut c).is_err() {
                    return done;
                }
                done += 1;
            }
        });
        // A random moment for the SIGKILL: the time itself is the point
        // here, nothing is waited for, so a sleep (rather than a spin that
        // takes a core from the server and the writer) is right.
        std::thread::sleep(Duration::from_millis(20 + common::rand_u64() % 200));
        drop(p); // SIGKILL
        acked = writer.join().unwrap();
    }
    assert!(rounds >= 5, "{fsync}: only {rounds} rounds");
    assert!(acked > 0, "{fsync}: nothing was written");
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
    let sh = herald::Shared::new(cfg);
    let mut replay = herald::Replayer::new(sh.clone());
    herald::persist::open(&sh, &mut replay)?;
    let mut c = herald::Client::internal(sh.clone());
    herald::execute(
        &mut c,
        vec!["LRANGE".into(), "l".into(), "0".into(), "-1".into()],
    );
    herald::persist::close(sh.as_ref());
    Ok(String::from_utf8_lossy(&c.out).into_owned())
}

#[test]
fn torn_tails_load_the_complete_records() {
    let src = common::temp_dir("persist-torn-src");
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
    let dst = common::temp_dir("persist-torn");
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

// ---------------------------------------------------------------------------
// Round trips, rewrite under load, automatic rewrite, clean shutdown.

/// A server on a free port with `dir` set and the log off (to be turned
/// on with CONFIG SET appendonly yes).
fn herald_without_aof(dir: &Path) -> herald::server::ServerHandle {
    common::herald_with(|cfg| {
        cfg.appendonly = false;
        cfg.dir = dir.to_path_buf();
    })
}

/// An in-process herald with the AOF on in `dir`, with extra options.
fn herald_in(
    dir: &Path,
    fsync: AppendFsync,
    extra: &[(&str, &str)],
) -> herald::server::ServerHandle {
    common::herald_with(|cfg| {
        cfg.appendonly = true;
        cfg.dir = dir.to_path_buf();
        cfg.appendfsync = fsync;
        for (k, v) in extra {
            cfg.set(&[(k.as_bytes(), v.as_bytes())])
                .unwrap_or_else(|e| panic!("{k} {v}: {e}"));
        }
    })
}

fn info_field(c: &mut redis::Connection, name: &str) -> String {
    info_fields(c, &[name]).remove(0)
}

/// Several INFO persistence fields from one INFO reply (a consistent view).
fn info_fields(c: &mut redis::Connection, names: &[&str]) -> Vec<String> {
    let info: String = redis::cmd("INFO").arg("persistence").query(c).unwrap();
    names
        .iter()
        .map(|name| {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .unwrap_or_else(|| panic!("no {name} in INFO"))
                .trim()
                .to_string()
        })
        .collect()
}

/// Waits (deadline 60 s: CI machines are small and the crash tests fsync
/// heavily in parallel) until no rewrite runs or is scheduled; asserts the
/// last one succeeded.
fn wait_rewrite_done(c: &mut redis::Connection) {
    common::wait_for_value(
        "aof_rewrite_in_progress, aof_rewrite_scheduled",
        Duration::from_secs(60),
        vec!["0".to_string(), "0".to_string()],
        || info_fields(c, &["aof_rewrite_in_progress", "aof_rewrite_scheduled"]),
    );
    assert_eq!(info_field(c, "aof_last_bgrewrite_status"), "ok");
}

fn bgrewriteaof(c: &mut redis::Connection) {
    let s: String = redis::cmd("BGREWRITEAOF").query(c).unwrap();
    assert_eq!(s, "Background append only file rewriting started");
    wait_rewrite_done(c);
}

/// Starts a server on `d` (the previous one shut down), checks that it
/// holds exactly `want` (a [`dump_all`]), and removes the directory.
fn assert_reloads(d: &Path, want: &[String]) {
    let s = herald_in(d, AppendFsync::Everysec, &[]);
    let mut c = connect(s.port());
    assert_eq!(dump_all(&mut c), want);
    drop(c);
    s.shutdown();
    let _ = std::fs::remove_dir_all(d);
}

/// Every data type, TTLs and stream groups survive a restart, a rewrite,
/// a restart after the rewrite, and redis-server loading herald's files.
#[test]
fn every_type_round_trips_through_restart_and_rewrite() {
    let d = common::temp_dir("persist-types");
    let s = herald_in(&d, AppendFsync::Always, &[]);
    let mut c = connect(s.port());
    write_every_type(&mut c);
    let want = dump_all(&mut c);
    assert!(want.len() > 40, "{want:#?}");
    // HERALD_TEST_DUMP=1 cargo test --test persistence every_type -- --nocapture
    // shows what is compared.
    if std::env::var_os("HERALD_TEST_DUMP").is_some() {
        eprintln!("{want:#?}");
    }
    drop(c);
    s.shutdown();

    let s = herald_in(&d, AppendFsync::Always, &[]);
    let mut c = connect(s.port());
    assert_eq!(dump_all(&mut c), want, "after restart");
    bgrewriteaof(&mut c);
    assert_eq!(dump_all(&mut c), want, "after rewrite");
    drop(c);
    s.shutdown();

    let s = herald_in(&d, AppendFsync::Always, &[]);
    let mut c = connect(s.port());
    assert_eq!(dump_all(&mut c), want, "after rewrite and restart");
    drop(c);
    s.shutdown();

    let (_rp, rport) = redis_server(&d);
    let mut r = connect(rport);
    assert_eq!(
        dump_all(&mut r),
        want,
        "redis-server loading herald's rewrite"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Writers keep writing while BGREWRITEAOF runs (several times); nothing
/// they were told is written is missing after a restart.
#[test]
fn rewrite_under_write_load_loses_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let d = common::temp_dir("persist-rwload");
    let s = herald_in(&d, AppendFsync::Everysec, &[]);
    let port = s.port();
    let stop = Arc::new(AtomicBool::new(false));
    let mut c = connect(port);
    qs(&mut c, &["XGROUP", "CREATE", "x0", "g", "$", "MKSTREAM"]);
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = connect(port);
                let mut i: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut p = redis::pipe();
                    for _ in 0..10 {
                        p.cmd("RPUSH").arg(format!("l{w}")).arg(i).ignore();
                        p.cmd("HSET")
                            .arg(format!("h{w}"))
                            .arg(i % 50)
                            .arg(i)
                            .ignore();
                        p.cmd("INCR").arg(format!("c{w}")).ignore();
                        p.cmd("XADD")
                            .arg(format!("x{w}"))
                            .arg("*")
                            .arg("n")
                            .arg(i)
                            .ignore();
                        p.cmd("ZADD")
                            .arg(format!("z{w}"))
                            .arg(i)
                            .arg(i % 100)
                            .ignore();
                        p.cmd("SET")
                            .arg(format!("k{w}:{}", i % 200))
                            .arg(i)
                            .ignore();
                        if i.is_multiple_of(7) {
                            p.cmd("DEL").arg(format!("k{w}:{}", (i / 7) % 200)).ignore();
                            p.cmd("PEXPIRE")
                                .arg(format!("h{w}"))
                                .arg(10_000_000)
                                .ignore();
                        }
                        i += 1;
                    }
                    p.query::<()>(&mut c).unwrap();
                }
                i
            })
        })
        .collect();
    // A consumer group reader on x0, acknowledging every other entry.
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = connect(port);
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let v = qs(
                    &mut c,
                    &[
                        "XREADGROUP",
                        "GROUP",
                        "g",
                        "r",
                        "COUNT",
                        "5",
                        "STREAMS",
                        "x0",
                        ">",
                    ],
                );
                if let redis::Value::Array(streams) = v {
                    if let redis::Value::Array(kv) = &streams[0] {
                        if let redis::Value::Array(es) = &kv[1] {
                            for e in es {
                                if let redis::Value::Array(p) = e {
                                    n += 1;
                                    if n.is_multiple_of(2) {
                                        qs(&mut c, &["XACK", "x0", "g", &common::text(&p[0])]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        })
    };
    let started = Instant::now();
    for _ in 0..4 {
        // Let some writes in between rewrites (an event, not a sleep:
        // wait for the log to grow).
        let size: u64 = info_field(&mut c, "aof_current_size").parse().unwrap();
        common::wait_until(
            "the log to grow by 20000 bytes (writers stalled)",
            Duration::from_secs(30).saturating_sub(started.elapsed()),
            || {
                info_field(&mut c, "aof_current_size")
                    .parse::<u64>()
                    .unwrap()
                    >= size + 20_000
            },
        );
        bgrewriteaof(&mut c);
    }
    stop.store(true, Ordering::Relaxed);
    let counts: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    reader.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    let want = dump_all(&mut c);
    for (w, n) in counts.iter().enumerate() {
        let l: Vec<u64> = redis::cmd("LRANGE")
            .arg(format!("l{w}"))
            .arg(0)
            .arg(-1)
            .query(&mut c)
            .unwrap();
        assert!(l.iter().copied().eq(0..*n), "writer {w}");
    }
    drop(c);
    s.shutdown();
    let s = herald_in(&d, AppendFsync::Everysec, &[]);
    let mut c = connect(s.port());
    let got = dump_all(&mut c);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    drop(c);
    s.shutdown();
    let _ = std::fs::remove_dir_all(&d);
}

/// The files a manifest names.
fn manifest_files(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

/// auto-aof-rewrite-percentage / min-size trigger rewrites; at every moment
/// the files the manifest names exist (old ones go only after the manifest
/// stopped naming them); at the end nothing else is left; a restart loads
/// the data.
#[test]
fn automatic_rewrite_keeps_the_manifest_valid() {
    let d = common::temp_dir("persist-autorw");
    let s = herald_in(
        &d,
        AppendFsync::Everysec,
        &[
            ("auto-aof-rewrite-percentage", "50"),
            ("auto-aof-rewrite-min-size", "20000"),
        ],
    );
    let mut c = connect(s.port());
    let aofdir = d.join("appendonlydir");
    let mpath = aofdir.join("appendonly.aof.manifest");
    let value = "x".repeat(200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0u64;
    let mut checks = 0;
    while info_field(&mut c, "aof_rewrites").parse::<u64>().unwrap() < 2 {
        assert!(Instant::now() < deadline, "no automatic rewrite");
        let mut p = redis::pipe();
        for _ in 0..50 {
            p.cmd("SET")
                .arg(format!("k{}", i % 100))
                .arg(&value)
                .ignore();
            i += 1;
        }
        p.query::<()>(&mut c).unwrap();
        // Manifest consistency: read it, check its files, read it again;
        // if it did not change meanwhile, every file must have existed.
        let before = std::fs::read_to_string(&mpath).unwrap();
        let missing: Vec<String> = manifest_files(&before)
            .into_iter()
            .filter(|f| !aofdir.join(f).exists())
            .collect();
        let after = std::fs::read_to_string(&mpath).unwrap();
        if before == after {
            assert!(
                missing.is_empty(),
                "manifest names missing {missing:?}:\n{before}"
            );
            checks += 1;
        }
    }
    assert!(checks > 0);
    wait_rewrite_done(&mut c);
    let m = std::fs::read_to_string(&mpath).unwrap();
    assert!(!m.contains("seq 1 type b"), "base not replaced:\n{m}");
    let mut named = manifest_files(&m);
    named.push("appendonly.aof.manifest".into());
    named.sort();
    let mut present: Vec<String> = std::fs::read_dir(&aofdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    assert_eq!(present, named, "old files left behind");
    let want = dump_all(&mut c);
    drop(c);
    s.shutdown();
    assert_reloads(&d, &want);
}

/// The `herald` binary with its log (standard output) captured in `log`.
fn herald_bin_logged(dir: &Path, fsync: &str, log: &Path) -> (KillOnDrop, u16) {
    let port = common::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir)
        .args(["--appendfsync", fsync])
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("herald");
    (KillOnDrop(child), port)
}

/// Waits (deadline 10 s) for the process to exit; its status.
fn wait_exit(p: &mut KillOnDrop) -> std::process::ExitStatus {
    common::wait_exit(&mut p.0, Duration::from_secs(10))
        .expect("the server did not exit within 10 s")
}

/// SIGTERM and SHUTDOWN write and fsync the log before exiting, even with
/// `appendfsync no`: everything acknowledged is there after a restart.
#[test]
fn sigterm_and_shutdown_fsync_before_exit() {
    for how in ["sigterm", "shutdown"] {
        let d = common::temp_dir(&format!("persist-{how}"));
        let log = d.join("herald.log");
        let (mut p, port) = herald_bin_logged(&d, "no", &log);
        let mut c = connect(port);
        let mut pipe = redis::pipe();
        for i in 0..5000 {
            pipe.cmd("RPUSH").arg("l").arg(i).ignore();
        }
        pipe.cmd("SET").arg("last").arg("yes").ignore();
        pipe.query::<()>(&mut c).unwrap();
        if how == "sigterm" {
            let r = unsafe { libc::kill(p.0.id() as i32, libc::SIGTERM) };
            assert_eq!(r, 0);
        } else {
            let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
        }
        let st = wait_exit(&mut p);
        assert!(st.success(), "{how}: {st:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("Calling fsync() on the AOF file"),
            "{how}: no final fsync in the log:\n{text}"
        );
        let (_p, port) = herald_bin(&d, "no");
        let mut c = connect(port);
        let n: u64 = redis::cmd("LLEN").arg("l").query(&mut c).unwrap();
        assert_eq!(n, 5000, "{how}");
        let last: String = redis::cmd("GET").arg("last").query(&mut c).unwrap();
        assert_eq!(last, "yes");
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Sends one command as RESP on a raw connection and returns the first
/// reply line (to compare error texts byte for byte).
fn raw_line(s: &mut std::net::TcpStream, args: &[&str]) -> String {
    use std::io::Write;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).unwrap();
    common::read_line(s)
}

/// A failing disk (writes and fsyncs failing with ENOSPC, injected with
/// the `fault-injection` test hook): write commands, and PING as in Redis,
/// get Redis 7.0's MISCONF error while reads and pub/sub go on; once the
/// disk works again the writer catches up and writes are accepted.
#[test]
fn disk_errors_refuse_writes_until_they_stop() {
    let d = common::temp_dir("persist-misconf");
    let s = herald_in(&d, AppendFsync::Everysec, &[]);
    let mut c = connect(s.port());
    let mut sub = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port()))
        .unwrap()
        .get_connection()
        .unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sub = sub.as_pubsub();
    sub.subscribe("news").unwrap();
    qs(&mut c, &["SET", "before", "1"]);
    let mut other = connect(s.port());
    s.shared().engine.aof.inject_fault(Some(libc::ENOSPC));
    // Refused if the writer already failed (an everysec fsync may come
    // first). Otherwise accepted, but its effects cannot be written, so its
    // reply is held until they are (on another connection: this one goes
    // on meanwhile). Either way the log fails now.
    let during = std::thread::spawn(move || {
        let r = redis::cmd("SET")
            .arg("during")
            .arg("1")
            .query::<()>(&mut other)
            .map_err(|e| e.to_string());
        (r, Instant::now())
    });
    common::wait_for_value(
        "aof_last_write_status (the write error noticed)",
        Duration::from_secs(10),
        "err".to_string(),
        || info_field(&mut c, "aof_last_write_status"),
    );
    let mut raw = common::connect_raw(s.addr());
    let misconf = "-MISCONF Errors writing to the AOF file: No space left on device\r\n";
    assert_eq!(raw_line(&mut raw, &["SET", "refused", "1"]), misconf);
    assert_eq!(raw_line(&mut raw, &["XADD", "s", "*", "a", "b"]), misconf);
    assert_eq!(raw_line(&mut raw, &["PING"]), misconf);
    assert_eq!(raw_line(&mut raw, &["EXISTS", "before"]), ":1\r\n");
    assert_eq!(raw_line(&mut raw, &["MULTI"]), "+OK\r\n");
    assert_eq!(raw_line(&mut raw, &["INCR", "n"]), misconf);
    assert!(raw_line(&mut raw, &["EXEC"]).starts_with("-EXECABORT"));
    // Pub/sub goes on.
    let n: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hi")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    let m = sub.get_message().unwrap();
    assert_eq!(m.get_payload::<String>().unwrap(), "hi");
    // The disk recovers: the writer retries and writes are accepted again;
    // the held reply leaves only now.
    let recovered_at = Instant::now();
    s.shared().engine.aof.inject_fault(None);
    common::wait_for_value(
        "aof_last_write_status (recovered)",
        Duration::from_secs(10),
        "ok".to_string(),
        || info_field(&mut c, "aof_last_write_status"),
    );
    let (during, replied_at) = during.join().unwrap();
    match &during {
        Ok(()) => assert!(replied_at > recovered_at, "acknowledged before written"),
        Err(e) => assert!(e.contains("MISCONF"), "{e}"),
    }
    assert_eq!(raw_line(&mut raw, &["SET", "after", "1"]), "+OK\r\n");
    drop(sub);
    drop(c);
    s.shutdown();
    let s = herald_in(&d, AppendFsync::Everysec, &[]);
    let mut c = connect(s.port());
    let during = i64::from(during.is_ok());
    for (k, there) in [
        ("before", 1),
        ("during", during),
        ("after", 1),
        ("refused", 0),
        ("n", 0),
    ] {
        let n: i64 = redis::cmd("EXISTS").arg(k).query(&mut c).unwrap();
        assert_eq!(n, there, "{k}");
    }
    drop(c);
    s.shutdown();
    let _ = std::fs::remove_dir_all(&d);
}

/// CONFIG SET appendonly yes starts the log at run time (a base with the
/// data set, then appends), no stops it; turning it on again supersedes
/// the old files.
#[test]
fn config_set_appendonly_starts_and_stops_the_log() {
    let d = common::temp_dir("persist-cfgaof");
    let s = herald_without_aof(&d);
    let mut c = connect(s.port());
    write_every_type(&mut c);
    let aofdir = d.join("appendonlydir");
    assert!(!aofdir.exists());
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    assert_eq!(
        common::text(&qs(&mut c, &["CONFIG", "SET", "appendonly", "yes"])),
        "OK"
    );
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    qs(&mut c, &["SET", "after-on", "1"]);
    wait_rewrite_done(&mut c);
    qs(&mut c, &["RPUSH", "after-base", "1"]);
    let want = dump_all(&mut c);
    let m = std::fs::read_to_string(aofdir.join("appendonly.aof.manifest")).unwrap();
    assert_eq!(
        m,
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert_eq!(
        common::text(&qs(&mut c, &["CONFIG", "SET", "appendonly", "no"])),
        "OK"
    );
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    qs(&mut c, &["SET", "after-off", "1"]);
    drop(c);
    s.shutdown();

    let s = herald_in(&d, AppendFsync::Everysec, &[]);
    let mut c = connect(s.port());
    assert_eq!(dump_all(&mut c), want, "what was logged while on");
    // Off, a write, on again: a new base (seq 2) replaces the old files.
    qs(&mut c, &["CONFIG", "SET", "appendonly", "no"]);
    qs(&mut c, &["SET", "while-off", "1"]);
    qs(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
    wait_rewrite_done(&mut c);
    qs(&mut c, &["SET", "on-again", "1"]);
    let want = dump_all(&mut c);
    let m = std::fs::read_to_string(aofdir.join("appendonly.aof.manifest")).unwrap();
    assert_eq!(
        m,
        "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    let mut present: Vec<String> = std::fs::read_dir(&aofdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    assert_eq!(
        present,
        [
            "appendonly.aof.2.base.rdb",
            "appendonly.aof.2.incr.aof",
            "appendonly.aof.manifest"
        ]
    );
    drop(c);
    s.shutdown();
    // Off and on again while a rewrite runs (stalled by the test hook, so it
    // certainly runs): CONFIG SET appendonly yes answers OK at once and
    // schedules the rewrite that turns the log on (Redis's
    // aof_rewrite_scheduled); no cancels it; the writes made meanwhile are
    // in the new log.
    let s = herald_in(&d, AppendFsync::Everysec, &[]);
    let mut c = connect(s.port());
    assert_eq!(dump_all(&mut c), want);
    for round in 0..3 {
        herald::persist::rewrite::stall(s.shared().as_ref(), true);
        let _: String = redis::cmd("BGREWRITEAOF")
            .query(&mut c)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        // Halfway: the writer is on the new incremental file, the base is
        // not written.
        common::wait_until(
            "the rewrite to get halfway (stalled by the test hook)",
            Duration::from_secs(30),
            || herald::persist::rewrite::stalled(s.shared().as_ref()),
        );
        assert_eq!(info_field(&mut c, "aof_rewrite_in_progress"), "1");
        for _ in 0..2 {
            qs(&mut c, &["CONFIG", "SET", "appendonly", "no"]);
            assert_eq!(info_field(&mut c, "aof_enabled"), "0");
            assert_eq!(info_field(&mut c, "aof_rewrite_scheduled"), "0");
            qs(&mut c, &["INCR", "toggles"]);
            let asked = Instant::now();
            assert_eq!(
                common::text(&qs(&mut c, &["CONFIG", "SET", "appendonly", "yes"])),
                "OK"
            );
            // Nothing waited for the stalled rewrite.
            assert!(asked.elapsed() < Duration::from_secs(1), "{round}");
            assert_eq!(info_field(&mut c, "aof_enabled"), "1");
            assert_eq!(info_field(&mut c, "aof_rewrite_scheduled"), "1");
            assert_eq!(info_field(&mut c, "aof_pending_rewrite"), "1");
            assert_eq!(info_field(&mut c, "aof_rewrite_in_progress"), "1");
            qs(&mut c, &["INCR", "toggles"]);
        }
        let r: redis::RedisResult<String> = redis::cmd("BGREWRITEAOF").query(&mut c);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("already in progress"), "{e}");
        herald::persist::rewrite::stall(s.shared().as_ref(), false);
        wait_rewrite_done(&mut c);
        assert_eq!(info_field(&mut c, "aof_enabled"), "1");
        qs(&mut c, &["INCR", "toggles"]);
    }
    assert_eq!(common::text(&qs(&mut c, &["GET", "toggles"])), "15");
    let want = dump_all(&mut c);
    // The superseded files are gone: one base, one incremental file.
    let m = std::fs::read_to_string(aofdir.join("appendonly.aof.manifest")).unwrap();
    let files = manifest_files(&m);
    assert_eq!(files.len(), 2, "{m}");
    let mut present: Vec<String> = std::fs::read_dir(&aofdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "appendonly.aof.manifest")
        .collect();
    present.sort();
    let mut named = files.clone();
    named.sort();
    assert_eq!(present, named);
    drop(c);
    s.shutdown();
    assert_reloads(&d, &want);
}

/// An enabling rewrite that fails (here its temporary base file cannot be
/// created: a directory is in the way) leaves the log scheduled to go on,
/// as Redis in AOF_WAIT_REWRITE; the once-a-second cron tries again, and
/// once the obstacle is gone the log is on with everything written
/// meanwhile.
#[test]
fn failed_enabling_rewrite_is_retried() {
    let d = common::temp_dir("persist-enable-retry");
    let s = herald_without_aof(&d);
    let mut c = connect(s.port());
    qs(&mut c, &["SET", "before", "1"]);
    let obstacle = d
        .join("appendonlydir")
        .join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    std::fs::create_dir_all(&obstacle).unwrap();
    assert_eq!(
        common::text(&qs(&mut c, &["CONFIG", "SET", "appendonly", "yes"])),
        "OK"
    );
    common::wait_for_value(
        "aof_last_bgrewrite_status (the enabling rewrite failed)",
        Duration::from_secs(30),
        "err".to_string(),
        || info_field(&mut c, "aof_last_bgrewrite_status"),
    );
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    assert_ne!(info_field(&mut c, "aof_rewrites_consecutive_failures"), "0");
    qs(&mut c, &["SET", "while-retrying", "1"]);
    std::fs::remove_dir(&obstacle).unwrap();
    wait_rewrite_done(&mut c);
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    assert_eq!(info_field(&mut c, "aof_rewrites_consecutive_failures"), "0");
    qs(&mut c, &["SET", "after", "1"]);
    let want = dump_all(&mut c);
    drop(c);
    s.shutdown();
    assert_reloads(&d, &want);
}

/// redis-server's own log of every type (streams with groups, approximate
/// trims logged as `MAXLEN = n LIMIT m`, XCLAIMs, ...) loads in herald
/// exactly as redis-server itself reloads it.
#[test]
fn redis_log_of_every_type_loads_as_in_redis() {
    let d = common::temp_dir("persist-r2h-types");
    let (rp, rport) = redis_server(&d);
    let mut r = connect(rport);
    write_every_type(&mut r);
    shutdown(rp, &mut r);
    let (rp, rport) = redis_server(&d);
    let mut r = connect(rport);
    let want = dump_all(&mut r);
    shutdown(rp, &mut r);
    assert_reloads(&d, &want);
}

/// A manifest naming a file that is not there (here the last incremental
/// one, as a lost or deleted file leaves it): redis-server 7.0.15 refuses
/// to start, and so does herald, with the same message, loading nothing.
#[test]
fn a_missing_file_named_by_the_manifest_stops_start_up() {
    let d = common::temp_dir("aof-missing-incr");
    let h = herald_in(&d, AppendFsync::Always, &[]);
    let mut c = connect(h.port());
    qs(&mut c, &["SET", "k", "v"]);
    h.shutdown();
    let aofdir = d.join("appendonlydir");
    let manifest = aofdir.join("appendonly.aof.manifest");
    let mut text = std::fs::read_to_string(&manifest).expect("manifest");
    text.push_str("file appendonly.aof.2.incr.aof seq 2 type i\n");
    std::fs::write(&manifest, text).expect("write manifest");
    let want = "Unable to obtain the AOF file appendonly.aof.2.incr.aof length. stat: No such file or directory";

    let port = common::free_port().to_string();
    let out = common::run(
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["--port", &port, "--dir"])
            .arg(&d),
        Duration::from_secs(20),
    );
    let stderr = &out.stderr;
    assert!(!out.status.success(), "herald started: {stderr}");
    assert!(stderr.contains(want), "{stderr}");

    let out = common::run(
        Command::new(common::redis_server())
            .args(["--port", &port, "--dir"])
            .arg(&d)
            .args(["--appendonly", "yes", "--save", "", "--daemonize", "no"]),
        Duration::from_secs(20),
    );
    let stdout = &out.stdout;
    assert!(!out.status.success(), "redis-server started: {stdout}");
    assert!(stdout.contains(want), "{stdout}");
    let _ = std::fs::remove_dir_all(&d);
}

/// `herald check-aof --fix` on a cut last file asks first, as
/// redis-check-aof does (same lines, same prompt): no or no answer leaves
/// the file alone (exit 1), `y` truncates it; `--yes` truncates without
/// reading standard input.
#[test]
fn check_aof_fix_asks_before_truncating() {
    let d = common::temp_dir("check-aof-ask");
    let h = herald_in(&d, AppendFsync::Always, &[]);
    let mut c = connect(h.port());
    qs(&mut c, &["SET", "k", "v"]);
    h.shutdown();
    let incr = d.join("appendonlydir/appendonly.aof.1.incr.aof");
    let good = std::fs::read(&incr).expect("incr file");
    let mut cut = good.clone();
    cut.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nx");
    let shrink = format!(
        "This will shrink the AOF appendonly.aof.1.incr.aof from {} bytes, with {} bytes, to {} bytes\nContinue? [y/N]: ",
        cut.len(),
        cut.len() - good.len(),
        good.len()
    );
    let herald_fix = |extra: &[&str], input: &[u8]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
        cmd.args(["check-aof", "--fix"]).args(extra).arg(&d);
        common::run_with_input(&mut cmd, input, Duration::from_secs(20))
    };
    for input in [&b"n\n"[..], b"", b"\n", b"no\n"] {
        std::fs::write(&incr, &cut).unwrap();
        let out = herald_fix(&[], input);
        assert!(!out.status.success(), "{input:?}: {}", out.stdout);
        assert!(out.stdout.contains(&shrink), "{}", out.stdout);
        assert!(out.stdout.ends_with("Aborting...\n"), "{}", out.stdout);
        assert_eq!(
            std::fs::read(&incr).unwrap(),
            cut,
            "{input:?} left it alone"
        );
    }
    // redis-check-aof words it the same and aborts the same way.
    let out = common::run_with_input(
        Command::new(common::redis_check_aof())
            .arg("--fix")
            .arg(d.join("appendonlydir/appendonly.aof.manifest")),
        b"n\n",
        Duration::from_secs(20),
    );
    assert!(out.stdout.contains(&shrink), "{}", out.stdout);
    assert!(out.stdout.ends_with("Aborting...\n"), "{}", out.stdout);
    assert_eq!(std::fs::read(&incr).unwrap(), cut);

    for (extra, input) in [(&[][..], &b"y\n"[..]), (&["--yes"][..], &b""[..])] {
        std::fs::write(&incr, &cut).unwrap();
        let out = herald_fix(extra, input);
        assert!(out.status.success(), "{extra:?}: {}", out.stdout);
        assert!(
            out.stdout
                .ends_with("Successfully truncated AOF appendonly.aof.1.incr.aof\n"),
            "{}",
            out.stdout
        );
        assert_eq!(std::fs::read(&incr).unwrap(), good);
    }
    let _ = std::fs::remove_dir_all(&d);
}
