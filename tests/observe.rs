//! Operator facilities over TCP against an in-process herald:
//! INFO's figures as exporters and `redis-cli --stat` read them, SLOWLOG
//! entries (durations, client address and name), LATENCY events, MONITOR
//! lines with the real client address, and CLIENT PAUSE timing.
//! Differential cases (`tests/differential/{slowlog,monitor,latency,
//! client_pause}.case`) check the exact replies; this file checks what
//! differs between servers (times, addresses, rates).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redis::{Commands, Connection};

const TIMEOUT: Duration = Duration::from_secs(10);

fn connect(s: &herald::server::ServerHandle) -> Connection {
    common::connect_redis(s, TIMEOUT)
}

fn info(con: &mut Connection, section: &str) -> HashMap<String, String> {
    let text: String = redis::cmd("INFO").arg(section).query(con).expect("info");
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn num(m: &HashMap<String, String>, k: &str) -> f64 {
    m.get(k)
        .unwrap_or_else(|| panic!("INFO has no {k}"))
        .parse()
        .unwrap_or_else(|_| panic!("INFO {k} is not a number: {:?}", m[k]))
}

/// Fills `n` keys with MSET in batches (to make KEYS * slow).
fn many_keys(con: &mut Connection, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut c = redis::cmd("MSET");
        for i in chunk {
            c.arg(format!("key:{i}")).arg("v");
        }
        let _: () = c.query(con).expect("mset");
    }
}

#[test]
fn info_has_what_exporters_read() {
    let s = common::herald();
    let mut con = connect(&s);
    let mut other = connect(&s);
    let _: () = con.set("a", "1").expect("set");
    let _: () = con.set_ex("b", "2", 100).expect("setex");
    let _: Option<String> = con.get("a").expect("hit");
    let _: Option<String> = con.get("nope").expect("miss");
    let _: () = redis::cmd("SUBSCRIBE")
        .arg("c1")
        .query(&mut other)
        .expect("sub");
    // Keep some load for the instantaneous rates (sampled every 100 ms).
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(400) {
        let _: String = redis::cmd("PING").query(&mut con).expect("ping");
    }
    let all = info(&mut con, "everything");
    for k in [
        "connected_clients",
        "blocked_clients",
        "used_memory",
        "used_memory_rss",
        "used_memory_peak",
        "maxmemory",
        "mem_fragmentation_ratio",
        "total_commands_processed",
        "instantaneous_ops_per_sec",
        "total_net_input_bytes",
        "total_net_output_bytes",
        "instantaneous_input_kbps",
        "instantaneous_output_kbps",
        "keyspace_hits",
        "keyspace_misses",
        "expired_keys",
        "evicted_keys",
        "rejected_connections",
        "pubsub_channels",
        "pubsub_patterns",
        "used_cpu_sys",
        "used_cpu_user",
        "uptime_in_seconds",
        "total_connections_received",
    ] {
        num(&all, k);
    }
    assert_eq!(num(&all, "connected_clients"), 2.0);
    assert_eq!(num(&all, "pubsub_channels"), 1.0);
    assert!(num(&all, "keyspace_hits") >= 1.0);
    assert!(num(&all, "keyspace_misses") >= 1.0);
    assert!(num(&all, "total_net_input_bytes") > 1000.0);
    assert!(num(&all, "total_net_output_bytes") > 1000.0);
    assert!(num(&all, "instantaneous_ops_per_sec") > 0.0);
    assert!(num(&all, "instantaneous_input_kbps") > 0.0);
    assert!(num(&all, "used_memory") > 0.0);
    assert!(num(&all, "used_memory_peak") >= num(&all, "used_memory"));
    assert!(num(&all, "used_memory_rss") > 0.0);
    assert!(num(&all, "used_cpu_user") + num(&all, "used_cpu_sys") > 0.0);
    assert_eq!(all["maxmemory_policy"], "noeviction");
    assert_eq!(all["db0"], "keys=2,expires=1,avg_ttl=0");
}

#[test]
fn redis_cli_stat_reads_real_figures() {
    let s = common::herald();
    let mut con = connect(&s);
    let _: () = con.set("a", "1").expect("set");
    let mut cli = common::Streaming::spawn(
        std::process::Command::new(common::redis_cli())
            .arg("-p")
            .arg(s.addr().port().to_string())
            .arg("--stat")
            .arg("-i")
            .arg("0.1"),
    );
    cli.expect_line("the header", |l| l.contains("keys") && l.contains("mem"));
    let line = cli.expect_line("a figures line", |l| {
        l.split_whitespace().next().is_some_and(|w| w == "1")
    });
    // keys, mem, clients, blocked, requests, connections
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(words.len() >= 6, "{line}");
    assert_eq!(words[2], "2", "clients: {line}");
    cli.kill();
}

#[test]
fn slowlog_records_duration_client_and_name() {
    let s = common::herald();
    let mut con = connect(&s);
    many_keys(&mut con, 200_000);
    common::config_set(&mut con, "slowlog-log-slower-than", "1000");
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(&mut con)
        .expect("reset");
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("slowpoke")
        .query(&mut con)
        .expect("setname");
    let _: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).expect("keys");
    let _: String = redis::cmd("PING").query(&mut con).expect("ping");
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .query(&mut con)
        .expect("get");
    assert_eq!(
        entries.len(),
        1,
        "only KEYS * is slower than 1 ms: {entries:?}"
    );
    let redis::Value::Array(e) = &entries[0] else {
        panic!("entry {entries:?}")
    };
    let dur: i64 = redis::from_redis_value(&e[2]).expect("duration");
    assert!(dur >= 1000, "duration {dur}");
    let args: Vec<String> = redis::from_redis_value(&e[3]).expect("args");
    assert_eq!(args, ["KEYS", "*"]);
    let peer: String = redis::from_redis_value(&e[4]).expect("peer");
    let list: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut con)
        .expect("info");
    assert!(list.contains(&format!("addr={peer} ")), "{peer} vs {list}");
    let name: String = redis::from_redis_value(&e[5]).expect("name");
    assert_eq!(name, "slowpoke");
    let t: i64 = redis::from_redis_value(&e[1]).expect("time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!((now - t).abs() < 60);
}

#[test]
fn latency_monitor_records_slow_commands() {
    let s = common::herald();
    let mut con = connect(&s);
    many_keys(&mut con, 200_000);
    common::config_set(&mut con, "latency-monitor-threshold", "1");
    let _: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).expect("keys");
    let latest: Vec<(String, i64, i64, i64)> = redis::cmd("LATENCY")
        .arg("LATEST")
        .query(&mut con)
        .expect("latest");
    let cmd = latest
        .iter()
        .find(|e| e.0 == "command")
        .unwrap_or_else(|| panic!("no command event in {latest:?}"));
    assert!(cmd.2 >= 1 && cmd.3 >= cmd.2, "{cmd:?}");
    let history: Vec<(i64, i64)> = redis::cmd("LATENCY")
        .arg("HISTORY")
        .arg("command")
        .query(&mut con)
        .expect("history");
    assert!(!history.is_empty());
    let n: i64 = redis::cmd("LATENCY")
        .arg("RESET")
        .query(&mut con)
        .expect("reset");
    assert!(n >= 1);
}

#[test]
fn monitor_lines_name_the_client_and_its_database() {
    let s = common::herald();
    let mut mon = TcpStream::connect(s.addr()).expect("connect");
    mon.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    mon.write_all(b"MONITOR\r\n").expect("monitor");
    let mut r = BufReader::new(mon.try_clone().expect("clone"));
    let mut line = String::new();
    r.read_line(&mut line).expect("ok");
    assert_eq!(line, "+OK\r\n");
    let mut con = connect(&s);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut con).expect("select");
    let _: () = con.set("k", "v w").expect("set");
    let me: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut con)
        .expect("info");
    let addr = me
        .split(' ')
        .find_map(|w| w.strip_prefix("addr="))
        .expect("addr")
        .to_string();
    // (The redis crate sends CLIENT SETINFO on connect: skipped.)
    let mut lines = Vec::new();
    while lines.len() < 3 {
        let mut l = String::new();
        r.read_line(&mut l).expect("line");
        if !l.contains("\"SETINFO\"") {
            lines.push(l);
        }
    }
    // As Redis 7.0: the line is sent after the command ran, with the
    // database selected then.
    assert!(
        lines[0].ends_with(&format!(" [3 {addr}] \"SELECT\" \"3\"\r\n")),
        "{lines:?}"
    );
    assert!(
        lines[1].ends_with(&format!(" [3 {addr}] \"SET\" \"k\" \"v w\"\r\n")),
        "{lines:?}"
    );
    assert!(lines[2].contains("\"CLIENT\" \"INFO\""), "{lines:?}");
    let ts: f64 = lines[0][1..]
        .split(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("time stamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!((now - ts).abs() < 60.0);
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut con)
        .expect("list");
    assert!(list.lines().any(|l| l.contains("flags=O ")), "{list}");
}

#[test]
fn client_pause_holds_commands_until_the_deadline_or_unpause() {
    let s = common::herald();
    let mut admin = connect(&s);
    let mut con = connect(&s);
    // WRITE: reads run at once, writes wait for the deadline.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(300)
        .arg("WRITE")
        .query(&mut admin)
        .expect("pause");
    let t = Instant::now();
    let _: Option<String> = con.get("k").expect("get");
    assert!(t.elapsed() < Duration::from_millis(150), "a read was held");
    let blocked = {
        let i = info(&mut admin, "clients");
        num(&i, "blocked_clients")
    };
    assert_eq!(blocked, 0.0);
    let _: () = con.set("k", "v").expect("set");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "write ran after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "write held for {waited:?}");
    // UNPAUSE (not a write) releases a held write at once.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(100_000)
        .arg("WRITE")
        .query(&mut admin)
        .expect("pause");
    let addr = s.addr();
    let writer = std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
        let mut c = client.get_connection().expect("connect");
        let _: () = c.set("k", "w").expect("set");
        Instant::now()
    });
    common::wait_until(
        "the writer to be held by the pause (INFO blocked_clients >= 1)",
        TIMEOUT,
        || common::blocked_clients(&mut admin) >= 1,
    );
    assert!(!writer.is_finished(), "a write ran during PAUSE WRITE");
    let unpaused = Instant::now();
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query(&mut admin)
        .expect("unpause");
    let done = writer.join().expect("writer");
    assert!(done.duration_since(unpaused) < Duration::from_secs(1));
    let v: String = con.get("k").expect("get");
    assert_eq!(v, "w");
    // ALL: every command waits, reads included.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(300)
        .query(&mut admin)
        .expect("pause");
    let t = Instant::now();
    let _: String = redis::cmd("PING").query(&mut con).expect("ping");
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "PING ran during PAUSE ALL"
    );
}

#[test]
fn client_pause_write_holds_what_may_replicate_and_keeps_expired_keys() {
    let s = common::herald();
    let mut admin = connect(&s);
    let mut con = connect(&s);
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(100)
        .query(&mut con)
        .expect("set");
    let pause = |admin: &mut Connection| {
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(100_000)
            .arg("WRITE")
            .query(admin)
            .expect("pause");
    };
    pause(&mut admin);
    // Held: PFCOUNT and PUBLISH (may replicate), a script without a
    // shebang, and one whose shebang does not say no-writes.
    let held: Vec<Vec<&'static str>> = vec![
        vec!["PFCOUNT", "hll"],
        vec!["PUBLISH", "ch", "m"],
        vec!["EVAL", "return 1", "0"],
        vec!["EVAL", "#!lua\nreturn 1", "0"],
    ];
    let n = held.len();
    let addr = s.addr();
    let threads: Vec<_> = held
        .into_iter()
        .map(|args| {
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
                let mut c = client.get_connection().expect("connect");
                c.set_read_timeout(Some(TIMEOUT)).expect("timeout");
                let mut cmd = redis::cmd(args[0]);
                for a in &args[1..] {
                    cmd.arg(*a);
                }
                let _: redis::Value = cmd.query(&mut c).expect("held command");
            })
        })
        .collect();
    common::wait_until("every may-replicate command held", TIMEOUT, || {
        common::blocked_clients(&mut admin) == n
    });
    // Not held: read-only scripts, by flag or by command.
    let v: i64 = redis::cmd("EVAL")
        .arg("#!lua flags=no-writes\nreturn 2")
        .arg(0)
        .query(&mut con)
        .expect("no-writes eval");
    assert_eq!(v, 2);
    let v: i64 = redis::cmd("EVAL_RO")
        .arg("return 3")
        .arg(0)
        .query(&mut con)
        .expect("eval_ro");
    assert_eq!(v, 3);
    // A read-only script may not publish either.
    let err = redis::cmd("EVAL_RO")
        .arg("return redis.call('publish','ch','m')")
        .arg(0)
        .query::<redis::Value>(&mut con)
        .expect_err("publish from a read-only script");
    assert!(
        err.to_string()
            .contains("Write commands are not allowed from read-only scripts"),
        "{err}"
    );
    // The key expires for readers but is neither removed nor counted.
    let expired = |admin: &mut Connection| num(&info(admin, "stats"), "expired_keys");
    common::wait_until("short to read as missing", TIMEOUT, || {
        con.get::<_, Option<String>>("short")
            .expect("get")
            .is_none()
    });
    assert_eq!(expired(&mut admin), 0.0);
    let size: i64 = redis::cmd("DBSIZE").query(&mut admin).expect("dbsize");
    assert_eq!(size, 1);
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query(&mut admin)
        .expect("unpause");
    for t in threads {
        t.join().expect("held command ran");
    }
    let _: Option<String> = con.get("short").expect("get");
    assert_eq!(expired(&mut admin), 1.0);
}

/// The `calls=...,failed_calls=...` figures of one command, without the
/// times.
fn cmdstat(con: &mut Connection, name: &str) -> Option<(u64, u64, u64)> {
    let m = info(con, "commandstats");
    let line = m.get(&format!("cmdstat_{name}"))?;
    let field = |k: &str| -> u64 {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line}"))
    };
    Some((
        field("calls"),
        field("rejected_calls"),
        field("failed_calls"),
    ))
}

#[test]
fn commandstats_count_calls_rejections_and_failures_as_redis() {
    let s = common::herald();
    let mut con = connect(&s);
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    // Arity: rejected, not called.
    assert!(redis::cmd("SET").arg("k").query::<()>(&mut con).is_err());
    let _: () = con.set("k1", "v").unwrap();
    let _: () = con.set("k2", "v").unwrap();
    assert_eq!(cmdstat(&mut con, "set"), Some((2, 1, 0)));
    // Ran and replied with an error: failed.
    let _: () = con.set("str", "x").unwrap();
    assert!(con.lpush::<_, _, ()>("str", "a").is_err());
    assert_eq!(cmdstat(&mut con, "lpush"), Some((1, 0, 1)));
    // Subcommands are counted under their full name.
    let _: i64 = redis::cmd("CLIENT").arg("ID").query(&mut con).unwrap();
    assert_eq!(cmdstat(&mut con, "client|id"), Some((1, 0, 0)));
    // A script's failing command and the script that returns its error.
    let r: redis::RedisResult<()> = redis::cmd("EVAL")
        .arg("return redis.call('select', 99)")
        .arg(0)
        .query(&mut con);
    assert!(r.is_err());
    assert_eq!(cmdstat(&mut con, "select"), Some((1, 0, 1)));
    assert_eq!(cmdstat(&mut con, "eval"), Some((1, 0, 1)));
    // redis.pcall: the command fails, the script does not.
    let _: i64 = redis::cmd("EVAL")
        .arg("redis.pcall('select', 99) return 1")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(cmdstat(&mut con, "eval"), Some((2, 0, 1)));
    // A write refused to a read-only script is a rejection of the write.
    let r: redis::RedisResult<()> = redis::cmd("EVAL_RO")
        .arg("return redis.call('set', 'x', 'y')")
        .arg(1)
        .arg("x")
        .query(&mut con);
    assert!(r.is_err());
    assert_eq!(cmdstat(&mut con, "set"), Some((3, 2, 0)));
    // MULTI: a queued command's error fails it, not EXEC.
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let _: () = redis::cmd("INCR").arg("str").query(&mut con).unwrap();
    // (The redis crate turns the queued error into an Err.)
    let _: redis::RedisResult<redis::Value> = redis::cmd("EXEC").query(&mut con);
    assert_eq!(cmdstat(&mut con, "incr"), Some((1, 0, 1)));
    assert_eq!(cmdstat(&mut con, "exec"), Some((1, 0, 0)));
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    assert_eq!(cmdstat(&mut con, "set"), None);
}

#[test]
fn latency_tracking_follows_its_settings() {
    let s = common::herald();
    let mut con = connect(&s);
    let _: () = con.set("a", "b").unwrap();
    let _: Option<String> = con.get("a").unwrap();
    let m = info(&mut con, "latencystats");
    let line = m.get("latency_percentiles_usec_set").expect("set tracked");
    assert!(line.starts_with("p50=") && line.contains(",p99=") && line.contains(",p99.9="));
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("latency-tracking-info-percentiles")
        .arg("0 50 100")
        .query(&mut con)
        .unwrap();
    let m = info(&mut con, "latencystats");
    assert!(m["latency_percentiles_usec_get"].starts_with("p0="));
    // LATENCY HISTOGRAM: name -> calls, buckets.
    let h: Vec<redis::Value> = redis::cmd("LATENCY")
        .arg("HISTOGRAM")
        .arg("set")
        .arg("nosuchcommand")
        .query(&mut con)
        .unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0], redis::Value::BulkString(b"set".to_vec()));
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("latency-tracking")
        .arg("no")
        .query(&mut con)
        .unwrap();
    let _: () = con.set("a", "b").unwrap();
    let m = info(&mut con, "latencystats");
    assert!(!m.contains_key("latency_percentiles_usec_set"));
}

/// CLIENT UNBLOCK releases a client blocked in BLPOP: by default (and
/// with TIMEOUT) as if its timeout passed, with ERROR with Redis's
/// `-UNBLOCKED` error, counted as a failed call of BLPOP and in
/// errorstats. A client not blocked is not released (0).
#[test]
fn client_unblock_releases_a_blocked_client() {
    let s = common::herald();
    let mut con = connect(&s);
    let mut blocked = connect(&s);
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .expect("resetstat");
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query(&mut blocked)
        .expect("id");
    for (how, want_error) in [
        (None, false),
        (Some("TIMEOUT"), false),
        (Some("ERROR"), true),
    ] {
        blocked
            .send_packed_command(&redis::cmd("BLPOP").arg("l").arg(0).get_packed_command())
            .expect("send blpop");
        common::wait_until("the client blocks", TIMEOUT, || {
            num(&info(&mut con, "clients"), "blocked_clients") == 1.0
        });
        let mut unblock = redis::cmd("CLIENT");
        unblock.arg("UNBLOCK").arg(id);
        if let Some(h) = how {
            unblock.arg(h);
        }
        let released: i64 = unblock.query(&mut con).expect("unblock");
        assert_eq!(released, 1);
        let reply = blocked.recv_response();
        if want_error {
            // An error reply, however the client library surfaces it.
            let shown = format!("{reply:?}");
            assert!(
                shown.contains("UNBLOCKED")
                    && shown.contains("client unblocked via CLIENT UNBLOCK"),
                "{shown}"
            );
        } else {
            assert_eq!(reply.expect("a reply"), redis::Value::Nil);
        }
        assert_eq!(num(&info(&mut con, "clients"), "blocked_clients"), 0.0);
    }
    let again: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .query(&mut con)
        .expect("unblock");
    assert_eq!(again, 0);
    let stats = info(&mut con, "commandstats");
    assert!(
        stats["cmdstat_blpop"].ends_with("rejected_calls=0,failed_calls=1"),
        "{}",
        stats["cmdstat_blpop"]
    );
    assert_eq!(
        info(&mut con, "errorstats")["errorstat_UNBLOCKED"],
        "count=1"
    );
    // Still usable afterwards.
    let _: () = con.rpush("l", "x").expect("rpush");
    let got: (String, String) = redis::cmd("BLPOP")
        .arg("l")
        .arg(0)
        .query(&mut blocked)
        .expect("blpop");
    assert_eq!(got, ("l".into(), "x".into()));
}

/// Waits until the lazy-free thread has nothing pending and has freed
/// `n` objects since CONFIG RESETSTAT.
fn wait_lazyfreed(con: &mut Connection, n: u64) {
    common::wait_until(&format!("{n} objects freed lazily"), TIMEOUT, || {
        let m = info(con, "memory");
        num(&m, "lazyfree_pending_objects") == 0.0 && num(&m, "lazyfreed_objects") == n as f64
    });
}

/// UNLINK of a large value frees it in the background: INFO counts it in
/// `lazyfreed_objects` once freed; a small one is freed in place.
#[test]
fn unlink_frees_large_values_lazily() {
    let s = common::herald();
    let mut con = connect(&s);
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let _: () = con.sadd("big", &members).expect("sadd");
    let _: () = con.set("small", "v").expect("set");
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .expect("resetstat");
    let n: i64 = redis::cmd("UNLINK")
        .arg("big")
        .arg("small")
        .query(&mut con)
        .expect("unlink");
    assert_eq!(n, 2);
    wait_lazyfreed(&mut con, 1);
}

/// FLUSHALL ASYNC leaves the old keyspace to the background thread,
/// counted as its keys (as Redis's `emptyDbAsync`); FLUSHDB SYNC frees in
/// place; `lazyfree-lazy-user-flush` / `-user-del` make FLUSHDB and DEL lazy.
#[test]
fn flush_async_frees_the_old_keyspace_lazily() {
    let s = common::herald();
    let mut con = connect(&s);
    for i in 0..100 {
        let _: () = con.set(format!("k{i}"), i).expect("set");
    }
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .expect("resetstat");
    let _: () = redis::cmd("FLUSHALL")
        .arg("ASYNC")
        .query(&mut con)
        .expect("flushall");
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).expect("dbsize");
    assert_eq!(n, 0);
    wait_lazyfreed(&mut con, 100);
    let _: () = con.set("k", 1).expect("set");
    let _: () = redis::cmd("FLUSHDB")
        .arg("SYNC")
        .query(&mut con)
        .expect("flushdb");
    let m = info(&mut con, "memory");
    assert_eq!(num(&m, "lazyfreed_objects"), 100.0);
    // lazyfree-lazy-user-flush: no mode means ASYNC; lazyfree-lazy-user-del:
    // DEL frees as UNLINK.
    common::config_set(&mut con, "lazyfree-lazy-user-flush", "yes");
    common::config_set(&mut con, "lazyfree-lazy-user-del", "yes");
    let _: () = con.set("k", 1).expect("set");
    let _: () = redis::cmd("FLUSHDB").query(&mut con).expect("flushdb");
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let _: () = con.sadd("big", &members).expect("sadd");
    let n: i64 = con.del("big").expect("del");
    assert_eq!(n, 1);
    wait_lazyfreed(&mut con, 102);
}

/// `rdb_changes_since_last_save` counts changes, and only real ones (a
/// SETBIT that leaves the bit as it was changes nothing).
#[test]
fn changes_since_last_save_count_writes() {
    let s = common::herald();
    let mut con = connect(&s);
    let changes =
        |con: &mut Connection| num(&info(con, "persistence"), "rdb_changes_since_last_save");
    let before = changes(&mut con);
    let _: i64 = redis::cmd("SETBIT")
        .arg("b")
        .arg(0)
        .arg(1)
        .query(&mut con)
        .expect("setbit");
    assert_eq!(changes(&mut con), before + 1.0);
    let _: i64 = redis::cmd("SETBIT")
        .arg("b")
        .arg(0)
        .arg(1)
        .query(&mut con)
        .expect("setbit");
    assert_eq!(changes(&mut con), before + 1.0);
}

/// LATENCY DOCTOR: Redis's text with monitoring off, and a report naming
/// each recorded event once there are some.
#[test]
fn latency_doctor_reports() {
    let s = common::herald();
    let mut con = connect(&s);
    let off: String = redis::cmd("LATENCY")
        .arg("DOCTOR")
        .query(&mut con)
        .expect("doctor");
    assert!(
        off.starts_with("I'm sorry, Dave, I can't do that."),
        "{off}"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("latency-monitor-threshold")
        .arg(1)
        .query(&mut con)
        .expect("config set");
    let none: String = redis::cmd("LATENCY")
        .arg("DOCTOR")
        .query(&mut con)
        .expect("doctor");
    assert!(
        none.starts_with("Dave, no latency spike was observed"),
        "{none}"
    );
    // A slow enough command: KEYS over many keys, until one is recorded.
    many_keys(&mut con, 50_000);
    common::wait_until("a command latency event", TIMEOUT, || {
        let _: Vec<String> = con.keys("*x*").expect("keys");
        let latest: Vec<redis::Value> = redis::cmd("LATENCY")
            .arg("LATEST")
            .query(&mut con)
            .expect("latest");
        !latest.is_empty()
    });
    let report: String = redis::cmd("LATENCY")
        .arg("DOCTOR")
        .query(&mut con)
        .expect("doctor");
    assert!(
        report.starts_with("Dave, I have observed latency spikes"),
        "{report}"
    );
    assert!(report.contains("1. command: "), "{report}");
    assert!(report.contains("I have a few advices for you:"), "{report}");
}

/// CLIENT INFO shows the caller's own query buffer as Redis does while
/// the command runs: the bytes of the request (26 for CLIENT INFO) and
/// its arguments' size.
#[test]
fn client_info_shows_its_own_query_buffer() {
    let s = common::herald();
    let mut con = connect(&s);
    let line: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut con)
        .expect("client info");
    assert!(line.contains(" qbuf=26 "), "{line}");
    assert!(line.contains(" argv-mem=10 "), "{line}");
}

#[test]
fn slow_scripts_reach_the_slow_log_and_the_latency_monitor() {
    // A script runs on the scripting thread: its time is the script's, not
    // the moment it was handed over.
    let s = common::herald();
    let mut con = connect(&s);
    common::config_set(&mut con, "slowlog-log-slower-than", "10000");
    common::config_set(&mut con, "latency-monitor-threshold", "5");
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(&mut con)
        .expect("reset");
    let busy = "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] \
                while true do local n = redis.call('TIME') \
                if n[1] * 1000000 + n[2] - s > tonumber(ARGV[1]) then break end end return 1";
    let _: i64 = redis::cmd("EVAL")
        .arg(busy)
        .arg(0)
        .arg(20_000)
        .query(&mut con)
        .expect("eval");
    let log: Vec<(i64, i64, i64, Vec<String>)> = redis::cmd("SLOWLOG")
        .arg("GET")
        .query::<Vec<redis::Value>>(&mut con)
        .expect("slowlog")
        .into_iter()
        .map(|e| {
            let v: (i64, i64, i64, Vec<String>, String, String) =
                redis::from_redis_value(&e).expect("entry");
            (v.0, v.1, v.2, v.3)
        })
        .collect();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].2 >= 20_000, "{log:?}");
    assert_eq!(log[0].3[0], "EVAL");
    let latest: Vec<(String, i64, i64, i64)> = redis::cmd("LATENCY")
        .arg("LATEST")
        .query(&mut con)
        .expect("latest");
    assert!(
        latest
            .iter()
            .any(|(e, _, ms, _)| e == "command" && *ms >= 20),
        "{latest:?}"
    );
}

#[test]
fn a_blocked_command_reaches_the_slow_log_when_it_is_served() {
    let s = common::herald();
    let mut con = connect(&s);
    common::config_set(&mut con, "slowlog-log-slower-than", "0");
    let mut waiter = connect(&s);
    let h = std::thread::spawn(move || -> Option<(String, String)> {
        redis::cmd("BLPOP")
            .arg("l")
            .arg(0)
            .query(&mut waiter)
            .expect("blpop")
    });
    common::wait_for_value("blocked_clients", TIMEOUT, 1, || {
        common::blocked_clients(&mut con)
    });
    let _: () = redis::pipe()
        .atomic()
        .cmd("LPUSH")
        .arg("l")
        .arg("foo")
        .ignore()
        .cmd("SLOWLOG")
        .arg("RESET")
        .ignore()
        .query(&mut con)
        .expect("exec");
    assert_eq!(h.join().expect("waiter"), Some(("l".into(), "foo".into())));
    // The reply left after the entry was written.
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .query(&mut con)
        .expect("slowlog");
    let newest: (i64, i64, i64, Vec<String>, String, String) =
        redis::from_redis_value(&log[0]).expect("entry");
    assert_eq!(newest.3, ["BLPOP", "l", "0"]);
}
