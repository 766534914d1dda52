//! Replication over TCP, with real clients: herald replicating herald,
//! redis-server 7.0 replicating herald, herald replicating redis-server.
//! Each test loads data of every type, makes the replica sync, streams
//! more writes, checks that a subscriber on the replica gets the
//! primary's PUBLISH, that the replica refuses writes, that WAIT counts
//! it, cuts the link (CLIENT KILL TYPE master / replica) and checks the
//! partial resync, and compares every key of every database.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use redis::Value;

const SYNC: Duration = Duration::from_secs(20);

fn connect(addr: SocketAddr) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
    let con = client.get_connection().expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    con
}

fn q(con: &mut redis::Connection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

fn info(con: &mut redis::Connection, field: &str) -> Option<String> {
    let text: String = redis::cmd("INFO").query(con).expect("info");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
}

fn bulks(v: Value) -> Vec<Vec<u8>> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::BulkString(b) => b,
                other => format!("{other:?}").into_bytes(),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// Every key of databases 0 to 3 as text: type, content (sorted where
/// the type has no order), streams with their groups and pending
/// summaries, and whether the key has a TTL.
fn snapshot(con: &mut redis::Connection) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for db in 0..4 {
        q(con, &["SELECT", &db.to_string()]);
        let mut keys = bulks(q(con, &["KEYS", "*"]));
        keys.sort();
        for k in keys {
            let key = String::from_utf8_lossy(&k).into_owned();
            let ty = match q(con, &["TYPE", &key]) {
                Value::SimpleString(s) => s,
                Value::Okay => "ok".into(),
                other => format!("{other:?}"),
            };
            let content = match ty.as_str() {
                "string" => format!("{:?}", q(con, &["GET", &key])),
                "list" => format!("{:?}", q(con, &["LRANGE", &key, "0", "-1"])),
                "hash" => {
                    let mut pairs: Vec<_> = bulks(q(con, &["HGETALL", &key]))
                        .chunks(2)
                        .map(<[Vec<u8>]>::to_vec)
                        .collect();
                    pairs.sort();
                    format!("{pairs:?}")
                }
                "set" => {
                    let mut m = bulks(q(con, &["SMEMBERS", &key]));
                    m.sort();
                    format!("{m:?}")
                }
                "zset" => format!("{:?}", q(con, &["ZRANGE", &key, "0", "-1", "WITHSCORES"])),
                "stream" => {
                    let mut s = format!("{:?}", q(con, &["XRANGE", &key, "-", "+"]));
                    // Each group's name, consumers, pending count and last
                    // delivered ID. Not entries-read and lag: a replica
                    // applies XCLAIM ... LASTID, after which redis-server's
                    // own replicas show them as unknown (nil) too.
                    if let Value::Array(gs) = q(con, &["XINFO", "GROUPS", &key]) {
                        for g in gs {
                            let Value::Array(f) = g else { continue };
                            let field = |name: &str| {
                                f.chunks(2)
                                    .find(|p| text(&p[0]) == name)
                                    .map(|p| text(&p[1]))
                                    .unwrap_or_default()
                            };
                            let name = field("name");
                            s.push_str(&format!(
                                " group {name} consumers={} pending={} last={}",
                                field("consumers"),
                                field("pending"),
                                field("last-delivered-id")
                            ));
                            let p = q(con, &["XPENDING", &key, &name]);
                            s.push_str(&format!(" pending[{name}]={p:?}"));
                        }
                    }
                    s
                }
                other => format!("type {other}"),
            };
            let ttl = match q(con, &["PTTL", &key]) {
                Value::Int(n) if n > 0 => "ttl",
                _ => "none",
            };
            out.insert(format!("{db}:{key}"), format!("{ty} {ttl} {content}"));
        }
    }
    q(con, &["SELECT", "0"]);
    out
}

/// Writes of every type (round `r`): strings, counters, TTLs, lists,
/// hashes, sets, sorted sets, streams with a group and pending entries,
/// HyperLogLog, bitmaps, another database, a transaction, a script,
/// deletions.
fn write_round(con: &mut redis::Connection, r: u32) {
    let r_s = r.to_string();
    q(con, &["SET", &format!("s:{r}"), &format!("value {r}")]);
    q(con, &["APPEND", &format!("s:{r}"), "+"]);
    q(con, &["INCRBY", "counter", &r_s]);
    q(con, &["SET", &format!("ttl:{r}"), "x", "PX", "600000"]);
    q(con, &["EXPIRE", &format!("s:{r}"), "900"]);
    q(con, &["RPUSH", "list", "a", "b", &r_s]);
    q(con, &["LPOP", "list"]);
    q(con, &["HSET", "hash", &format!("f{r}"), &r_s, "tmp", "1"]);
    q(con, &["HDEL", "hash", "tmp"]);
    q(con, &["SADD", "set", &format!("m{r}"), "gone"]);
    q(con, &["SREM", "set", "gone"]);
    q(con, &["ZADD", "zset", &r_s, &format!("m{r}")]);
    q(con, &["ZINCRBY", "zset", "0.5", "m0"]);
    q(con, &["XADD", "stream", "*", "f", &r_s]);
    q(con, &["XADD", "stream", "*", "g", &r_s]);
    if r == 0 {
        q(con, &["XGROUP", "CREATE", "stream", "grp", "0"]);
    }
    q(
        con,
        &[
            "XREADGROUP",
            "GROUP",
            "grp",
            "c1",
            "COUNT",
            "1",
            "STREAMS",
            "stream",
            ">",
        ],
    );
    q(con, &["PFADD", "hll", &format!("e{r}")]);
    q(con, &["SETBIT", "bits", &(r * 7).to_string(), "1"]);
    q(con, &["SELECT", "1"]);
    q(con, &["SET", &format!("db1:{r}"), &r_s]);
    q(con, &["SELECT", "0"]);
    let _: () = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("counter")
        .ignore()
        .cmd("LPUSH")
        .arg("list")
        .arg("tx")
        .ignore()
        .query(con)
        .expect("transaction");
    q(
        con,
        &[
            "EVAL",
            "redis.call('set', KEYS[1], ARGV[1]) return 1",
            "1",
            &format!("lua:{r}"),
            &r_s,
        ],
    );
    if r > 0 {
        q(con, &["DEL", &format!("lua:{}", r - 1)]);
    }
}

fn assert_same(primary: &mut redis::Connection, replica: &mut redis::Connection, what: &str) {
    let mut last = (BTreeMap::new(), BTreeMap::new());
    let same = poll(SYNC, || {
        let a = snapshot(primary);
        let b = snapshot(replica);
        if a == b && !a.is_empty() {
            Some(())
        } else {
            last = (a, b);
            None
        }
    });
    if same.is_none() {
        let (a, b) = last;
        let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
        let diff: Vec<String> = keys
            .into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| format!("{k}:\n  primary {:?}\n  replica {:?}", a.get(k), b.get(k)))
            .collect();
        panic!("{what}: replica differs from primary:\n{}", diff.join("\n"));
    }
}

fn link_up(con: &mut redis::Connection) -> bool {
    info(con, "master_link_status").as_deref() == Some("up")
}

/// A subscriber on `addr`, subscribed to `channel`.
fn subscriber(addr: SocketAddr, channel: &str) -> std::net::TcpStream {
    let mut s = connect_raw(addr);
    write!(s, "SUBSCRIBE {channel}\r\n").expect("subscribe");
    for _ in 0..6 {
        read_line(&mut s);
    }
    s
}

/// Reads a `message` push on a RESP2 subscriber; returns its payload.
fn message(s: &mut std::net::TcpStream) -> String {
    let lines: Vec<String> = (0..7).map(|_| read_line(s)).collect();
    assert_eq!(lines[0], "*3\r\n", "a message push: {lines:?}");
    assert_eq!(lines[2], "message\r\n", "a message push: {lines:?}");
    lines[6].trim_end().to_string()
}

fn readonly_refused(addr: SocketAddr) {
    let mut s = connect_raw(addr);
    s.write_all(b"SET not-here 1\r\n").expect("write");
    assert_eq!(
        read_line(&mut s),
        "-READONLY You can't write against a read only replica.\r\n"
    );
}

fn stat(con: &mut redis::Connection, field: &str) -> u64 {
    info(con, field)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO has no {field}"))
}

#[test]
fn herald_replicates_herald() {
    let p = herald();
    let r = herald();
    let mut pc = connect(p.addr());
    let mut rc = connect(r.addr());
    for round in 0..5 {
        write_round(&mut pc, round);
    }
    q(&mut pc, &["SET", "short-lived", "x", "PX", "300"]);
    q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port().to_string()]);
    wait_until("the link is up", SYNC, || link_up(&mut rc));
    assert_same(&mut pc, &mut rc, "after the full sync");
    assert_eq!(stat(&mut pc, "sync_full"), 1);

    // The stream: writes of every type, PUBLISH to a replica's subscriber.
    let mut sub = subscriber(r.addr(), "news");
    for round in 5..10 {
        write_round(&mut pc, round);
    }
    q(&mut pc, &["PUBLISH", "news", "hello"]);
    assert_eq!(message(&mut sub), "hello");
    assert_same(&mut pc, &mut rc, "after streaming");
    readonly_refused(r.addr());
    assert_eq!(q(&mut pc, &["WAIT", "1", "5000"]), Value::Int(1));
    // The key that expired on the primary is gone on the replica too.
    q(&mut rc, &["SELECT", "0"]);
    wait_until("the expired key's DEL", SYNC, || {
        q(&mut rc, &["DBSIZE"]) == q(&mut pc, &["DBSIZE"])
    });
    // ... and the DEL freed it (OBJECT sees keys whatever their TTL).
    wait_until("the replica freed the expired key", SYNC, || {
        q(&mut rc, &["OBJECT", "ENCODING", "short-lived"]) == Value::Nil
    });

    // ROLE on both sides.
    let role = format!("{:?}", q(&mut rc, &["ROLE"]));
    assert!(
        role.contains("slave") && role.contains("connected"),
        "{role}"
    );
    let role = format!("{:?}", q(&mut pc, &["ROLE"]));
    assert!(role.contains("master"), "{role}");

    // The link cut from the replica's side, then from the primary's: both
    // times a partial resync. The stream had database 2 selected when the
    // link broke, and goes on in it without a new SELECT.
    let mut in_db2 = connect(p.addr());
    q(&mut in_db2, &["SELECT", "2"]);
    q(&mut in_db2, &["SET", "db2:before", "1"]);
    q(&mut rc, &["CLIENT", "KILL", "TYPE", "master"]);
    q(&mut in_db2, &["SET", "db2:after", "1"]);
    write_round(&mut pc, 10);
    wait_until("the link is up again", SYNC, || link_up(&mut rc));
    assert_same(&mut pc, &mut rc, "after CLIENT KILL TYPE master");
    q(&mut pc, &["CLIENT", "KILL", "TYPE", "replica"]);
    write_round(&mut pc, 11);
    wait_until("a second partial resync", SYNC, || {
        stat(&mut pc, "sync_partial_ok") == 2
    });
    assert_same(&mut pc, &mut rc, "after CLIENT KILL TYPE replica");
    assert_eq!(stat(&mut pc, "sync_full"), 1, "no second full sync");
    assert_eq!(q(&mut pc, &["WAIT", "1", "5000"]), Value::Int(1));

    // min-replicas-to-write: writes pass while the replica acknowledges,
    // and are refused once it is gone.
    q(&mut pc, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    q(&mut pc, &["CONFIG", "SET", "min-replicas-max-lag", "10"]);
    q(&mut pc, &["SET", "with-replica", "1"]);

    // Promotion keeps the history: the new primary's replid2 is the old id.
    let old_id = info(&mut pc, "master_replid").unwrap_or_default();
    q(&mut rc, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(info(&mut rc, "role").as_deref(), Some("master"));
    assert_eq!(info(&mut rc, "master_replid2"), Some(old_id));
    q(&mut rc, &["SET", "after-promotion", "1"]);
    wait_until("the replica detached", SYNC, || {
        stat(&mut pc, "connected_slaves") == 0
    });
    let refused = redis::cmd("SET")
        .arg("no-replica")
        .arg("1")
        .query::<()>(&mut pc)
        .expect_err("NOREPLICAS");
    assert_eq!(refused.code(), Some("NOREPLICAS"), "{refused}");
}

/// A replica that stops reading is cut at its `client-output-buffer-limit
/// replica` hard limit (the stream is not kept for it beyond that).
#[test]
fn stalled_replica_is_cut_at_its_output_limit() {
    let p = herald();
    let mut pc = connect(p.addr());
    q(
        &mut pc,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 1mb 0 0",
        ],
    );
    let mut fake = connect_raw(p.addr());
    fake.write_all(b"PSYNC ? -1\r\n").expect("psync");
    assert!(read_line(&mut fake).starts_with("+FULLRESYNC "));
    // It never reads again: the primary's stream piles up for it.
    wait_until("the replica is online", SYNC, || {
        info(&mut pc, "slave0").is_some_and(|l| l.contains("state=online"))
    });
    let value = "x".repeat(64 * 1024);
    let mut written = 0;
    while stat(&mut pc, "connected_slaves") > 0 {
        q(&mut pc, &["SET", "big", &value]);
        written += value.len();
        assert!(written < 512 << 20, "the replica was never cut");
    }
    // Counted when its connection closes, a moment after it is detached.
    wait_until("the disconnection counted", SYNC, || {
        stat(&mut pc, "client_output_buffer_limit_disconnections") == 1
    });
}

/// A redis-server binary, or `None` (the interop tests then say they are
/// skipped).
fn redis_server_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HERALD_REDIS_SERVER") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
    })
}

/// A redis-server child on a free port with `extra` arguments.
fn spawn_redis(bin: &PathBuf, extra: &[&str]) -> (KillOnDrop, SocketAddr) {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let dir = temp_dir("repl-redis");
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--repl-diskless-sync-delay", "0"])
        .arg("--dir")
        .arg(&dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs");
    let mut child = KillOnDrop(child);
    wait_for_ping(addr, Duration::from_secs(10), Some(&mut child.0)).expect("redis-server up");
    (child, addr)
}

/// A herald primary and a redis-server replica of it, fully synced (both
/// stop when this is dropped: bind every field).
struct HeraldAndRedisReplica {
    herald: herald::server::ServerHandle,
    hc: redis::Connection,
    _redis: KillOnDrop,
    raddr: SocketAddr,
    rc: redis::Connection,
}

/// [`HeraldAndRedisReplica`] after `rounds` rounds of writes; None (with
/// a notice naming `test`) when redis-server is not on PATH.
fn herald_with_redis_replica(test: &str, rounds: u32) -> Option<HeraldAndRedisReplica> {
    let Some(bin) = redis_server_bin() else {
        eprintln!("redis-server not on PATH: {test} skipped");
        return None;
    };
    let herald = herald();
    let mut hc = connect(herald.addr());
    for round in 0..rounds {
        write_round(&mut hc, round);
    }
    let (child, raddr) = spawn_redis(
        &bin,
        &["--replicaof", "127.0.0.1", &herald.port().to_string()],
    );
    let mut rc = connect(raddr);
    wait_until("redis-server's link is up", SYNC, || link_up(&mut rc));
    assert_same(&mut hc, &mut rc, "redis-server after the full sync");
    Some(HeraldAndRedisReplica {
        herald,
        hc,
        _redis: child,
        raddr,
        rc,
    })
}

#[test]
fn redis_server_replicates_herald() {
    let Some(HeraldAndRedisReplica {
        herald: _p,
        hc: mut pc,
        _redis: _r,
        raddr,
        mut rc,
    }) = herald_with_redis_replica("redis_server_replicates_herald", 5)
    else {
        return;
    };

    let mut sub = subscriber(raddr, "news");
    for round in 5..10 {
        write_round(&mut pc, round);
    }
    q(&mut pc, &["PUBLISH", "news", "from herald"]);
    assert_eq!(message(&mut sub), "from herald");
    assert_same(&mut pc, &mut rc, "redis-server after streaming");
    readonly_refused(raddr);
    assert_eq!(q(&mut pc, &["WAIT", "1", "5000"]), Value::Int(1));

    q(&mut pc, &["CLIENT", "KILL", "TYPE", "replica"]);
    write_round(&mut pc, 10);
    wait_until("redis-server's partial resync", SYNC, || {
        stat(&mut pc, "sync_partial_ok") == 1
    });
    assert_same(&mut pc, &mut rc, "redis-server after the partial resync");
    assert_eq!(stat(&mut pc, "sync_full"), 1);
}

#[test]
fn herald_replicates_redis_server() {
    let Some(bin) = redis_server_bin() else {
        eprintln!("redis-server not on PATH: herald_replicates_redis_server skipped");
        return;
    };
    let (_child, paddr) = spawn_redis(&bin, &[]);
    let mut pc = connect(paddr);
    for round in 0..5 {
        write_round(&mut pc, round);
    }
    q(
        &mut pc,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function{function_name='one', callback=function() return 1 end, flags={'no-writes'}}",
        ],
    );
    let r = herald();
    let mut rc = connect(r.addr());
    q(
        &mut rc,
        &["REPLICAOF", "127.0.0.1", &paddr.port().to_string()],
    );
    wait_until("herald's link is up", SYNC, || link_up(&mut rc));
    assert_same(&mut pc, &mut rc, "herald after the full sync");
    assert_eq!(q(&mut rc, &["FCALL_RO", "one", "0"]), Value::Int(1));

    let mut sub = subscriber(r.addr(), "news");
    for round in 5..10 {
        write_round(&mut pc, round);
    }
    q(&mut pc, &["PUBLISH", "news", "from redis"]);
    assert_eq!(message(&mut sub), "from redis");
    assert_same(&mut pc, &mut rc, "herald after streaming");
    readonly_refused(r.addr());
    assert_eq!(q(&mut pc, &["WAIT", "1", "5000"]), Value::Int(1));

    q(&mut rc, &["CLIENT", "KILL", "TYPE", "master"]);
    write_round(&mut pc, 10);
    wait_until("herald's partial resync", SYNC, || {
        stat(&mut pc, "sync_partial_ok") == 1
    });
    assert_same(&mut pc, &mut rc, "herald after the partial resync");
    assert_eq!(stat(&mut pc, "sync_full"), 1);

    // Promoted, herald takes writes and keeps redis-server's history.
    let old_id = info(&mut pc, "master_replid").unwrap_or_default();
    q(&mut rc, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(info(&mut rc, "master_replid2"), Some(old_id));
    q(&mut rc, &["SET", "after-promotion", "1"]);
}

/// `replicaof` in the configuration: the server starts as a replica.
#[test]
fn replicaof_at_start() {
    let p = herald();
    let mut pc = connect(p.addr());
    q(&mut pc, &["SET", "before", "1"]);
    let text = format!("replicaof 127.0.0.1 {}", p.port());
    let mut cfg = herald::config::Config::from_config_text(&text).expect("config");
    cfg.port = 0;
    cfg.dir = temp_dir("replicaof-at-start");
    let r = herald::server::start(cfg).expect("replica starts");
    let mut rc = connect(r.addr());
    wait_until("the link is up", SYNC, || link_up(&mut rc));
    q(&mut pc, &["SET", "after", "2"]);
    assert_eq!(q(&mut pc, &["WAIT", "1", "5000"]), Value::Int(1));
    assert_eq!(text_of(q(&mut rc, &["GET", "before"])), "1");
    assert_eq!(text_of(q(&mut rc, &["GET", "after"])), "2");
    let role = format!("{:?}", q(&mut rc, &["ROLE"]));
    assert!(role.contains("slave"), "{role}");
}

fn text_of(v: Value) -> String {
    text(&v)
}

/// The primary (a separate process) killed with SIGKILL under writes that
/// each wait for `WAIT 1`: after the replica's promotion, every write WAIT
/// acknowledged is there, over several cycles.
#[test]
fn acknowledged_writes_survive_the_primary_s_death() {
    for cycle in 0..3 {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "no", "--save", ""])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("herald runs");
        let mut child = KillOnDrop(child);
        wait_for_ping(addr, Duration::from_secs(10), Some(&mut child.0)).expect("primary up");
        let r = herald();
        let mut rc = connect(r.addr());
        q(&mut rc, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
        wait_until("the link is up", SYNC, || link_up(&mut rc));

        let mut pc = connect(addr);
        let mut acked = Vec::new();
        for i in 0..200 + cycle * 50 {
            let key = format!("k:{i}");
            q(&mut pc, &["SET", &key, &i.to_string()]);
            if q(&mut pc, &["WAIT", "1", "1000"]) == Value::Int(1) {
                acked.push(key);
            }
        }
        // Writes without waiting, then the kill in the middle of them.
        for i in 0..100 {
            let _: redis::RedisResult<()> = redis::cmd("SET")
                .arg(format!("late:{i}"))
                .arg(i)
                .query(&mut pc);
        }
        child.0.kill().expect("SIGKILL");
        let _ = child.0.wait();
        q(&mut rc, &["REPLICAOF", "NO", "ONE"]);
        assert!(!acked.is_empty(), "cycle {cycle}: WAIT never acknowledged");
        for key in &acked {
            assert_ne!(
                q(&mut rc, &["GET", key]),
                Value::Nil,
                "cycle {cycle}: {key} was acknowledged by WAIT and is lost"
            );
        }
        q(&mut rc, &["SET", "writable", "1"]);
    }
}

/// A replica whose primary is unreachable, with `replica-serve-stale-data
/// no`: commands get MASTERDOWN (PING included, as redis-server 7.0),
/// those Redis flags `stale` (INFO, CONFIG) answer.
#[test]
fn stale_replica_refuses_data_commands_when_told_to() {
    let r = herald();
    let mut rc = connect(r.addr());
    q(
        &mut rc,
        &["CONFIG", "SET", "replica-serve-stale-data", "no"],
    );
    q(
        &mut rc,
        &["REPLICAOF", "127.0.0.1", &free_port().to_string()],
    );
    let mut s = connect_raw(r.addr());
    s.write_all(b"GET k\r\n").expect("write");
    assert_eq!(
        read_line(&mut s),
        "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"
    );
    s.write_all(b"PING\r\n").expect("write");
    assert!(read_line(&mut s).starts_with("-MASTERDOWN "));
    assert_eq!(info(&mut rc, "master_link_status").as_deref(), Some("down"));
    q(
        &mut rc,
        &["CONFIG", "SET", "replica-serve-stale-data", "yes"],
    );
    assert_eq!(q(&mut rc, &["GET", "k"]), Value::Nil);
}

/// FAILOVER: the primary pauses writes, waits for its replica to catch up,
/// becomes that replica's replica and the replica takes over with a
/// partial resync; the data is the same on both and writes go to the new
/// primary. Also the refusals with Redis 7.0's texts, and FAILOVER ABORT.
#[test]
fn failover_hands_the_primary_role_over() {
    let p = herald();
    let r = herald();
    let mut pc = connect(p.addr());
    let mut rc = connect(r.addr());
    let err = |con: &mut redis::Connection, args: &[&str]| -> String {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        match c.query::<Value>(con) {
            Err(e) => e.to_string(),
            Ok(v) => panic!("{args:?} succeeded: {v:?}"),
        }
    };
    assert!(err(&mut pc, &["FAILOVER"]).contains("FAILOVER requires connected replicas."));
    assert!(err(&mut pc, &["FAILOVER", "ABORT"]).contains("No failover in progress."));
    for round in 0..3 {
        write_round(&mut pc, round);
    }
    q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port().to_string()]);
    wait_until("the link is up", SYNC, || link_up(&mut rc));
    assert!(err(&mut rc, &["FAILOVER"]).contains("FAILOVER is not valid when server is a replica."));
    assert!(err(&mut pc, &["FAILOVER", "TO", "127.0.0.1", "1", "FORCE"])
        .contains("FAILOVER with force option requires both a timeout and target HOST and IP."));
    assert!(err(&mut pc, &["FAILOVER", "TO", "127.0.0.1", "1"])
        .contains("FAILOVER target HOST and PORT is not a replica."));
    assert!(err(&mut pc, &["FAILOVER", "TIMEOUT", "0"])
        .contains("FAILOVER timeout must be greater than 0"));
    let before = snapshot(&mut pc);

    let port = r.port().to_string();
    assert_eq!(
        q(&mut pc, &["FAILOVER", "TO", "127.0.0.1", &port]),
        Value::Okay
    );
    wait_until("the roles to swap", SYNC, || {
        info(&mut rc, "role").as_deref() == Some("master")
            && info(&mut pc, "role").as_deref() == Some("slave")
            && info(&mut pc, "master_failover_state").as_deref() == Some("no-failover")
            && link_up(&mut pc)
    });
    assert_eq!(snapshot(&mut rc), before, "the new primary has everything");
    assert_eq!(
        stat(&mut rc, "sync_partial_ok"),
        1,
        "the old primary resynced partially"
    );
    write_round(&mut rc, 3);
    assert_same(&mut rc, &mut pc, "the old primary replicates the new one");
    readonly_refused(p.addr());

    // FAILOVER ABORT while it waits (sent in the same batch, before the
    // replica's next acknowledgement can complete it): writes resume.
    let (started, aborted): (Value, Value) = redis::pipe()
        .cmd("FAILOVER")
        .arg("TIMEOUT")
        .arg(60000)
        .cmd("FAILOVER")
        .arg("ABORT")
        .query(&mut rc)
        .expect("failover, abort");
    assert_eq!((started, aborted), (Value::Okay, Value::Okay));
    assert_eq!(
        info(&mut rc, "master_failover_state").as_deref(),
        Some("no-failover")
    );
    q(&mut rc, &["SET", "after-abort", "1"]);
    assert_eq!(info(&mut rc, "role").as_deref(), Some("master"));
}

/// FAILOVER across implementations: herald hands the primary role to a
/// redis-server replica, then redis-server hands it back to herald.
#[test]
fn failover_between_herald_and_redis_server() {
    let Some(HeraldAndRedisReplica {
        herald: _h,
        mut hc,
        _redis: _r,
        raddr: _,
        mut rc,
    }) = herald_with_redis_replica("failover_between_herald_and_redis_server", 3)
    else {
        return;
    };

    assert_eq!(q(&mut hc, &["FAILOVER"]), Value::Okay);
    wait_until("redis-server to take over", SYNC, || {
        info(&mut rc, "role").as_deref() == Some("master")
            && info(&mut hc, "master_failover_state").as_deref() == Some("no-failover")
            && link_up(&mut hc)
    });
    write_round(&mut rc, 3);
    assert_same(
        &mut rc,
        &mut hc,
        "herald replicating redis-server after the failover",
    );

    // And back: redis-server's FAILOVER asks herald to take over.
    wait_until("herald acknowledged the stream", SYNC, || {
        q(&mut rc, &["WAIT", "1", "100"]) == Value::Int(1)
    });
    assert_eq!(q(&mut rc, &["FAILOVER"]), Value::Okay);
    wait_until("herald to take over", SYNC, || {
        info(&mut hc, "role").as_deref() == Some("master")
            && info(&mut rc, "master_failover_state").as_deref() == Some("no-failover")
            && link_up(&mut rc)
    });
    write_round(&mut hc, 4);
    assert_same(&mut hc, &mut rc, "redis-server replicating herald again");
}

/// A primary (a separate process) restarted from the RDB it saved at
/// SHUTDOWN keeps its replication point: its replica continues with a
/// partial resync (Redis 7.0's RDB `repl-id` / `repl-offset`), the keys
/// that expired while it was down are deleted on the replica too, and
/// both end with the same digest.
#[test]
fn primary_restarted_from_its_rdb_lets_replicas_continue() {
    let dir = temp_dir("restart-rdb");
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let start = || {
        let child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "no", "--save", "3600 1"])
            .args(["--enable-debug-command", "yes"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("herald runs");
        let mut child = KillOnDrop(child);
        wait_for_ping(addr, Duration::from_secs(10), Some(&mut child.0)).expect("primary up");
        child
    };
    let mut primary = start();
    let r = herald_with(|c| {
        let mut enabled =
            herald::config::Config::from_config_text("enable-debug-command yes\n").expect("config");
        enabled.port = 0;
        enabled.dir = c.dir.clone();
        *c = enabled;
    });
    let mut rc = connect(r.addr());
    q(&mut rc, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
    wait_until("the link is up", SYNC, || link_up(&mut rc));

    let mut pc = connect(addr);
    q(&mut pc, &["SET", "kept", "1"]);
    q(&mut pc, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    q(&mut pc, &["SET", "short", "1", "PX", "50"]);
    q(&mut pc, &["SELECT", "5"]);
    q(&mut pc, &["SET", "short5", "1", "PX", "50"]);
    assert_eq!(q(&mut pc, &["WAIT", "1", "5000"]), Value::Int(1));
    let replid = info(&mut pc, "master_replid").expect("replid");
    // Past the keys' deadline before the save, so that they expire at load.
    std::thread::sleep(Duration::from_millis(60));
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut pc);
    common::wait_exit(&mut primary.0, Duration::from_secs(10)).expect("primary exits");
    // SHUTDOWN waited for the replica's acknowledgement of everything
    // (its GETACK included): the replica's offset is the primary's last.
    let offset = info(&mut rc, "master_repl_offset").expect("offset");

    let _primary = start();
    let mut pc = connect(addr);
    assert_eq!(info(&mut pc, "master_replid2"), Some(replid));
    let offset: u64 = offset.parse().expect("offset");
    assert_eq!(
        info(&mut pc, "second_repl_offset"),
        Some((offset + 1).to_string())
    );
    assert_eq!(
        info(&mut pc, "rdb_last_load_keys_expired").as_deref(),
        Some("2")
    );
    wait_until("the replica continues", SYNC, || {
        link_up(&mut rc) && stat(&mut pc, "sync_partial_ok") == 1
    });
    assert_eq!(stat(&mut pc, "sync_full"), 0);
    q(&mut pc, &["SET", "after", "1"]);
    assert_eq!(q(&mut pc, &["WAIT", "1", "5000"]), Value::Int(1));
    assert_eq!(q(&mut rc, &["DBSIZE"]), Value::Int(2));
    assert_eq!(
        text_of(q(&mut pc, &["DEBUG", "DIGEST"])),
        text_of(q(&mut rc, &["DEBUG", "DIGEST"]))
    );
}

/// Connections to `p` and `r`, once `r` is a replica of `p` (diskless
/// sync without delay) with its link up.
fn linked(
    p: &herald::server::ServerHandle,
    r: &herald::server::ServerHandle,
) -> (redis::Connection, redis::Connection) {
    let mut pc = connect(p.addr());
    config_set(&mut pc, "repl-diskless-sync-delay", "0");
    let mut rc = connect(r.addr());
    q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port().to_string()]);
    wait_until("the link is up", SYNC, || link_up(&mut rc));
    (pc, rc)
}

fn config_dir(con: &mut redis::Connection) -> PathBuf {
    let v = bulks(q(con, &["CONFIG", "GET", "dir"]));
    PathBuf::from(String::from_utf8_lossy(&v[1]).into_owned())
}

/// Full resyncs as Redis 7.0 serves them: a diskless one waits
/// `repl-diskless-sync-delay` (the replica shows `wait_bgsave`) unless
/// `repl-diskless-sync-max-replicas` replicas wait, and then serves them
/// together; with `repl-diskless-sync no` the RDB is written to the
/// primary's `dbfilename` and the replica stores what it received there
/// too (`repl-diskless-load disabled`); `rdb-del-sync-files yes` removes
/// the primary's file when no persistence is configured.
#[test]
fn full_resyncs_diskless_delayed_shared_and_disk_based() {
    let p = herald();
    let mut pc = connect(p.addr());
    for round in 0..2 {
        write_round(&mut pc, round);
    }
    config_set(&mut pc, "appendonly", "no");
    config_set(&mut pc, "save", "");
    config_set(&mut pc, "repl-diskless-sync-delay", "600");
    config_set(&mut pc, "repl-diskless-sync-max-replicas", "2");
    let replicas: Vec<_> = (0..2).map(|_| herald()).collect();
    let mut conns: Vec<_> = replicas.iter().map(|r| connect(r.addr())).collect();
    q(
        &mut conns[0],
        &["REPLICAOF", "127.0.0.1", &p.port().to_string()],
    );
    wait_until("the first replica waits", SYNC, || {
        info(&mut pc, "slave0").is_some_and(|s| s.contains("state=wait_bgsave"))
    });
    // The second replica completes the count: both are served at once,
    // long before the delay.
    q(
        &mut conns[1],
        &["REPLICAOF", "127.0.0.1", &p.port().to_string()],
    );
    for c in conns.iter_mut() {
        wait_until("the link is up", SYNC, || link_up(c));
        assert_same(&mut pc, c, "after the shared diskless sync");
    }
    assert_eq!(stat(&mut pc, "sync_full"), 2);
    let primary_rdb = config_dir(&mut pc).join("dump.rdb");
    assert!(!primary_rdb.exists(), "a diskless sync writes no file");

    // Disk-based: the primary's dump.rdb, and the replica's copy.
    config_set(&mut pc, "repl-diskless-sync", "no");
    let disk = herald();
    let mut dc = connect(disk.addr());
    q(&mut dc, &["REPLICAOF", "127.0.0.1", &p.port().to_string()]);
    wait_until("the link is up", SYNC, || link_up(&mut dc));
    assert_same(&mut pc, &mut dc, "after the disk-based sync");
    assert!(primary_rdb.exists(), "the disk-based sync's RDB");
    assert!(
        config_dir(&mut dc).join("dump.rdb").exists(),
        "the replica's copy"
    );

    // rdb-del-sync-files: no file left behind without persistence.
    std::fs::remove_file(&primary_rdb).expect("remove dump.rdb");
    config_set(&mut pc, "rdb-del-sync-files", "yes");
    let again = herald();
    let mut ac = connect(again.addr());
    q(&mut ac, &["REPLICAOF", "127.0.0.1", &p.port().to_string()]);
    wait_until("the link is up", SYNC, || link_up(&mut ac));
    assert_same(&mut pc, &mut ac, "after the disk-based sync");
    assert!(!primary_rdb.exists(), "rdb-del-sync-files removed it");
}

/// SHUTDOWN on a primary whose replica has not acknowledged its stream
/// waits for it up to `shutdown-timeout` with writes paused (Redis 7.0);
/// SHUTDOWN ABORT cancels the wait (the blocked SHUTDOWN gets Redis's
/// error, the paused write goes through); without ABORT the server exits
/// once the timeout passed.
#[test]
fn shutdown_waits_for_lagging_replicas_and_can_be_aborted() {
    let p = herald();
    let mut pc = connect(p.addr());
    config_set(&mut pc, "repl-diskless-sync-delay", "0");
    config_set(&mut pc, "shutdown-timeout", "60");
    // A replica that never acknowledges anything.
    let mut fake = connect_raw(p.addr());
    fake.write_all(b"*3\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n")
        .expect("handshake");
    assert_eq!(read_line(&mut fake), "+OK\r\n");
    assert!(read_line(&mut fake).starts_with("+FULLRESYNC"));
    q(&mut pc, &["SET", "a", "1"]);

    let mut blocked = connect_raw(p.addr());
    blocked
        .write_all(b"*1\r\n$8\r\nSHUTDOWN\r\n")
        .expect("SHUTDOWN");
    wait_until("SHUTDOWN blocked", SYNC, || {
        stat(&mut pc, "blocked_clients") == 1
    });
    let writer = {
        let addr = p.addr();
        std::thread::spawn(move || {
            let mut w = connect(addr);
            q(&mut w, &["SET", "during", "1"])
        })
    };
    assert_eq!(text_of(q(&mut pc, &["SHUTDOWN", "ABORT"])), "OK");
    assert_eq!(
        read_line(&mut blocked),
        "-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    assert_eq!(writer.join().expect("writer"), Value::Okay);
    assert_eq!(text_of(q(&mut pc, &["GET", "during"])), "1");
    let refused = redis::cmd("SHUTDOWN")
        .arg("ABORT")
        .query::<Value>(&mut pc)
        .expect_err("nothing to abort");
    assert!(
        refused.to_string().contains("No shutdown in progress"),
        "{refused}"
    );

    // Without ABORT: the server exits once the timeout passed.
    config_set(&mut pc, "shutdown-timeout", "1");
    let mut last = connect_raw(p.addr());
    last.write_all(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
        .expect("SHUTDOWN");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut last, &mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

/// A client blocked on a key when its server becomes a replica is
/// released with Redis's `-UNBLOCKED ... (master -> replica?)` error and
/// disconnected: the new primary's pushes must not serve it (Redis issue
/// #2473), and both end with the same list.
#[test]
fn blocked_clients_are_released_when_the_server_becomes_a_replica() {
    let a = herald();
    let b = herald();
    let mut ac = connect(a.addr());
    config_set(&mut ac, "repl-diskless-sync-delay", "0");
    let mut bc = connect(b.addr());
    let mut blocked = connect_raw(b.addr());
    blocked
        .write_all(b"*3\r\n$5\r\nBLPOP\r\n$3\r\nfoo\r\n$1\r\n0\r\n")
        .expect("BLPOP");
    wait_until("BLPOP blocked", SYNC, || {
        stat(&mut bc, "blocked_clients") == 1
    });
    q(&mut bc, &["REPLICAOF", "127.0.0.1", &a.port().to_string()]);
    assert_eq!(
        read_line(&mut blocked),
        "-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n"
    );
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut blocked, &mut rest);
    assert!(rest.is_empty(), "closed after the error");
    wait_until("the link is up", SYNC, || link_up(&mut bc));
    q(&mut ac, &["RPUSH", "foo", "a", "b", "c"]);
    assert_eq!(q(&mut ac, &["WAIT", "1", "5000"]), Value::Int(1));
    assert_eq!(
        bulks(q(&mut bc, &["LRANGE", "foo", "0", "-1"])),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
}

/// A diskless full sync while clients keep writing: the stream written
/// meanwhile waits for the replica's first acknowledgement (a replica
/// finds the end of an `$EOF:` payload by its last bytes, so nothing may
/// follow the mark before it read it), then both converge.
#[test]
fn diskless_full_sync_under_write_load() {
    let p = herald();
    let r = herald();
    let mut pc = connect(p.addr());
    config_set(&mut pc, "repl-diskless-sync-delay", "0");
    for round in 0..3 {
        write_round(&mut pc, round);
    }
    // Enough data for the RDB to take a while.
    for batch in 0..5 {
        let mut mset = redis::cmd("MSET");
        for i in 0..1000 {
            mset.arg(format!("bulk:{batch}:{i}")).arg("x".repeat(32));
        }
        let () = mset.query(&mut pc).expect("MSET");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (addr, stop) = (p.addr(), stop.clone());
        std::thread::spawn(move || {
            let mut w = connect(addr);
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut pipe = redis::pipe();
                for _ in 0..200 {
                    pipe.cmd("SET")
                        .arg(format!("load:{}", n % 5000))
                        .arg(n.to_string())
                        .ignore();
                    n += 1;
                }
                let () = pipe.query(&mut w).expect("pipelined SETs");
            }
        })
    };
    let mut rc = connect(r.addr());
    q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port().to_string()]);
    wait_until("the link is up under load", SYNC, || link_up(&mut rc));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("writer");
    assert_eq!(q(&mut pc, &["WAIT", "1", "5000"]), Value::Int(1));
    assert_same(&mut pc, &mut rc, "after a diskless sync under load");
}

/// A link cut while more is written than the backlog holds: the replica
/// comes back with a full resync (the partial one is refused) and has
/// everything.
#[test]
fn gap_beyond_the_backlog_means_a_full_resync() {
    let (p, r) = (herald(), herald());
    let (mut pc, mut rc) = linked(&p, &r);
    config_set(&mut pc, "repl-backlog-size", "16384");
    assert_eq!(stat(&mut pc, "sync_full"), 1);
    let refused = stat(&mut pc, "sync_partial_err");
    q(&mut pc, &["CLIENT", "KILL", "TYPE", "replica"]);
    // The replica reconnects a second later: 100 kB written meanwhile.
    let mut mset = redis::cmd("MSET");
    for i in 0..1000 {
        mset.arg(format!("gap:{i}")).arg("x".repeat(100));
    }
    let () = mset.query(&mut pc).expect("MSET");
    wait_until("a second full resync", SYNC, || {
        stat(&mut pc, "sync_full") == 2 && link_up(&mut rc)
    });
    assert_eq!(stat(&mut pc, "sync_partial_err"), refused + 1);
    assert_eq!(q(&mut pc, &["WAIT", "1", "5000"]), Value::Int(1));
    assert_same(&mut pc, &mut rc, "after the full resync");
}

/// A script on the replica that runs past `busy-reply-threshold` holds the
/// primary's stream back (its commands wait, as Redis stops reading it)
/// rather than refusing it with -BUSY: nothing is lost.
#[test]
fn primary_stream_waits_for_a_busy_script_on_the_replica() {
    let (p, r) = (herald(), herald());
    let (mut pc, mut rc) = linked(&p, &r);
    config_set(&mut rc, "busy-reply-threshold", "50");
    let writer = {
        let addr = p.addr();
        std::thread::spawn(move || {
            let mut w = connect(addr);
            for i in 0..2000 {
                q(&mut w, &["SET", &format!("during:{i}"), "1"]);
            }
        })
    };
    // Long enough to be busy while the writer runs.
    q(
        &mut rc,
        &[
            "EVAL",
            "local n = 0 for i = 1, 50000000 do n = n + 1 end return n",
            "0",
        ],
    );
    writer.join().expect("writer");
    assert_eq!(q(&mut pc, &["WAIT", "1", "10000"]), Value::Int(1));
    assert_same(&mut pc, &mut rc, "after the busy script");
}
