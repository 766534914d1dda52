//! The keyspace through the messaging patterns of the seed documents, over
//! TCP with the `redis` crate against an in-process herald (port 0):
//!
//! - two-level cache invalidated by keyspace notifications, including the
//!   `expired` event of a key nobody reads (active expiry);
//! - backup queue with LPUSH / RPOP and a TTL on the queue;
//! - scheduled messages in a sorted set (ZADD / ZRANGEBYSCORE / ZREM);
//! - retry queue with back-off and a dead-letter list;
//! - redis-py style batch publishing (MULTI / EXEC pipeline);
//! - BLPOP wake-up order with three blocked clients, and MULTI atomicity
//!   seen by a concurrent reader;
//! - a priority dispatcher: SORT of job ids by a hash field, fetching the
//!   payloads with GET and storing the dispatch order as a list workers pop.
//!
//! Waits are bounded polls or reads with timeouts, never sleep-then-check.

mod common;

use std::time::{Duration, Instant};

use redis::{Commands, Connection};

const TIMEOUT: Duration = Duration::from_secs(5);

fn connect(s: &herald::server::ServerHandle) -> Connection {
    common::connect_redis(s, TIMEOUT)
}

#[test]
fn cache_invalidation_and_expired_event_of_an_unread_key() {
    let s = common::herald();
    let mut con = connect(&s);
    common::config_set(&mut con, "notify-keyspace-events", "KEA");
    let mut sub_con = connect(&s);
    let mut ps = sub_con.as_pubsub();
    ps.psubscribe("__keyspace@0__:cache:*").expect("psubscribe");
    ps.set_read_timeout(Some(TIMEOUT)).expect("timeout");

    // The writer updates the cache entry: the local cache hears "set".
    let _: () = con.set("cache:user:1", "alice").expect("set");
    let msg = ps.get_message().expect("set event");
    assert_eq!(msg.get_channel_name(), "__keyspace@0__:cache:user:1");
    assert_eq!(msg.get_payload::<String>().expect("payload"), "set");

    // A short TTL on a key nobody reads: active expiry must remove it and
    // publish "expired" close to its deadline.
    let _: () = redis::cmd("SET")
        .arg("cache:user:2")
        .arg("bob")
        .arg("PX")
        .arg(200)
        .query(&mut con)
        .expect("set px");
    let set_at = Instant::now();
    let mut events = Vec::new();
    while events.last().map(String::as_str) != Some("expired") {
        let m = ps.get_message().expect("event before timeout");
        events.push(m.get_payload::<String>().expect("payload"));
    }
    let waited = set_at.elapsed();
    assert_eq!(events, ["set", "expire", "expired"]);
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_millis(1200), "{waited:?}");
    let n: usize = redis::cmd("DBSIZE").query(&mut con).expect("dbsize");
    assert_eq!(n, 1);

    // DEL invalidates too.
    let _: () = con.del("cache:user:1").expect("del");
    let msg = ps.get_message().expect("del event");
    assert_eq!(msg.get_payload::<String>().expect("payload"), "del");
    drop(ps);
    s.shutdown();
}

#[test]
fn backup_queue_lpush_rpop_with_ttl() {
    let s = common::herald();
    let mut con = connect(&s);
    for i in 0..5 {
        let _: () = con.lpush("queue:backup", format!("job{i}")).expect("lpush");
    }
    let _: () = con.expire("queue:backup", 3600).expect("expire");
    let ttl: i64 = con.ttl("queue:backup").expect("ttl");
    assert!((3590..=3600).contains(&ttl));
    let mut got = Vec::new();
    while let Some(j) = con
        .rpop::<_, Option<String>>("queue:backup", None)
        .expect("rpop")
    {
        got.push(j);
    }
    assert_eq!(got, ["job0", "job1", "job2", "job3", "job4"]);
    let exists: bool = con.exists("queue:backup").expect("exists");
    assert!(!exists, "an emptied list is deleted");
    s.shutdown();
}

#[test]
fn scheduled_messages_with_a_sorted_set() {
    let s = common::herald();
    let mut con = connect(&s);
    let now = 1_700_000_000i64;
    for (i, delay) in [30, 10, 20, 5].iter().enumerate() {
        let _: () = con
            .zadd("scheduled", format!("msg{i}"), now + delay)
            .expect("zadd");
        let _: () = con
            .set_ex(format!("payload:msg{i}"), format!("body{i}"), 3600)
            .expect("setex");
    }
    // The scheduler's tick at now+20: due messages in time order.
    let due: Vec<String> = con
        .zrangebyscore("scheduled", "-inf", now + 20)
        .expect("zrangebyscore");
    assert_eq!(due, ["msg3", "msg1", "msg2"]);
    for m in &due {
        let removed: i64 = con.zrem("scheduled", m).expect("zrem");
        assert_eq!(removed, 1, "exactly one worker claims {m}");
        let _: () = con.del(format!("payload:{m}")).expect("del");
    }
    let left: Vec<(String, f64)> = con.zrange_withscores("scheduled", 0, -1).expect("zrange");
    assert_eq!(left, [("msg0".to_string(), (now + 30) as f64)]);
    s.shutdown();
}

#[test]
fn priority_dispatch_with_sort() {
    let s = common::herald();
    let mut con = connect(&s);
    // Jobs are ids in a set; each job's hash holds its priority and payload.
    for (id, prio, body) in [
        (1, 5, "low"),
        (2, 9, "urgent"),
        (3, 7, "normal"),
        (4, 1, "idle"),
    ] {
        let _: () = con.sadd("jobs", id).expect("sadd");
        let _: () = con
            .hset_multiple(
                format!("job:{id}"),
                &[("prio", prio.to_string()), ("body", body.into())],
            )
            .expect("hset");
    }
    // The two most urgent payloads, highest priority first.
    let top: Vec<String> = redis::cmd("SORT")
        .arg(&["jobs", "BY", "job:*->prio", "DESC", "LIMIT", "0", "2"])
        .arg(&["GET", "job:*->body", "GET", "#"])
        .query(&mut con)
        .expect("sort");
    assert_eq!(top, ["urgent", "2", "normal", "3"]);
    // The whole dispatch order stored as a list; workers pop from it.
    let n: i64 = redis::cmd("SORT")
        .arg(&["jobs", "BY", "job:*->prio", "DESC", "STORE", "dispatch"])
        .query(&mut con)
        .expect("sort store");
    assert_eq!(n, 4);
    let first: Option<String> = con.lpop("dispatch", None).expect("lpop");
    assert_eq!(first.as_deref(), Some("2"));
    let rest: Vec<String> = con.lrange("dispatch", 0, -1).expect("lrange");
    assert_eq!(rest, ["3", "1", "4"]);
    // SORT_RO reads the same way; STORE is a syntax error there.
    let ids: Vec<String> = redis::cmd("SORT_RO")
        .arg(&["jobs", "LIMIT", "1", "2"])
        .query(&mut con)
        .expect("sort_ro");
    assert_eq!(ids, ["2", "3"]);
    let err = redis::cmd("SORT_RO")
        .arg(&["jobs", "STORE", "x"])
        .query::<Vec<String>>(&mut con)
        .expect_err("SORT_RO STORE");
    assert!(err.to_string().contains("syntax error"), "{err}");
    // Non-numeric weights are an error, not a silent order.
    let _: () = con.hset("job:4", "prio", "soon").expect("hset");
    let err = redis::cmd("SORT")
        .arg(&["jobs", "BY", "job:*->prio"])
        .query::<Vec<String>>(&mut con)
        .expect_err("bad weight");
    assert!(
        err.to_string()
            .contains("One or more scores can't be converted into double"),
        "{err}"
    );
    s.shutdown();
}

#[test]
fn retry_queue_with_dead_letters() {
    let s = common::herald();
    let mut con = connect(&s);
    let _: () = con
        .rpush("jobs", &["ok", "flaky", "poison"])
        .expect("rpush");
    let max_attempts = 3;
    let mut done = Vec::new();
    let mut clock = 0i64;
    loop {
        // Due retries go back to the queue.
        let due: Vec<String> = con.zrangebyscore("retry", "-inf", clock).expect("due");
        for j in due {
            let _: () = con.zrem("retry", &j).expect("zrem");
            let _: () = con.rpush("jobs", &j).expect("requeue");
        }
        let Some(job) = con.lpop::<_, Option<String>>("jobs", None).expect("lpop") else {
            let pending: i64 = con.zcard("retry").expect("zcard");
            if pending == 0 {
                break;
            }
            clock += 1;
            continue;
        };
        let attempts: i64 = con.hincr("attempts", &job, 1).expect("hincrby");
        let fails = job == "poison" || (job == "flaky" && attempts < 2);
        if !fails {
            done.push(job);
        } else if attempts >= max_attempts {
            let _: () = con.lpush("dead", &job).expect("dead letter");
        } else {
            // Exponential back-off.
            let _: () = con
                .zadd("retry", &job, clock + (1 << attempts))
                .expect("zadd");
        }
    }
    assert_eq!(done, ["ok", "flaky"]);
    let dead: Vec<String> = con.lrange("dead", 0, -1).expect("lrange");
    assert_eq!(dead, ["poison"]);
    let attempts: i64 = con.hget("attempts", "poison").expect("hget");
    assert_eq!(attempts, 3);
    s.shutdown();
}

#[test]
fn batch_publish_in_a_transaction() {
    let s = common::herald();
    let mut con = connect(&s);
    let mut sub_con = connect(&s);
    let mut ps = sub_con.as_pubsub();
    ps.subscribe("events").expect("subscribe");
    ps.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    // redis-py's pipeline(transaction=True): MULTI ... EXEC.
    let (n1, n2, count): (i64, i64, i64) = redis::pipe()
        .atomic()
        .publish("events", "one")
        .publish("events", "two")
        .incr("published", 2)
        .query(&mut con)
        .expect("exec");
    assert_eq!((n1, n2, count), (1, 1, 2));
    let a: String = ps.get_message().expect("one").get_payload().expect("p");
    let b: String = ps.get_message().expect("two").get_payload().expect("p");
    assert_eq!((a.as_str(), b.as_str()), ("one", "two"));
    drop(ps);
    s.shutdown();
}

#[test]
fn blpop_serves_three_blocked_clients_in_blocking_order() {
    let s = common::herald();
    let mut con = connect(&s);
    let mut handles = Vec::new();
    for i in 0..3 {
        let mut c = connect(&s);
        handles.push(std::thread::spawn(move || {
            let r: (String, String) = redis::cmd("BLPOP")
                .arg("work")
                .arg(0)
                .query(&mut c)
                .expect("blpop");
            (i, r.1)
        }));
        // The next client blocks only once this one is in the queue.
        common::wait_for_value("blocked_clients", TIMEOUT, i + 1, || {
            common::blocked_clients(&mut con)
        });
    }
    let _: () = con.rpush("work", &["a", "b", "c"]).expect("rpush");
    let mut got: Vec<(usize, String)> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (0, "a".to_string()),
            (1, "b".to_string()),
            (2, "c".to_string())
        ]
    );
    // Timeouts and a disconnect while blocked.
    let started = Instant::now();
    let r: Option<(String, String)> = redis::cmd("BLPOP")
        .arg("nothing")
        .arg(0.1)
        .query(&mut con)
        .expect("blpop timeout");
    assert!(r.is_none());
    assert!(started.elapsed() >= Duration::from_millis(100));
    {
        let mut gone = connect(&s);
        redis::cmd("BLPOP")
            .arg("work")
            .arg(0)
            .query::<()>(&mut gone)
            .ok();
    }
    s.shutdown();
}

#[test]
fn multi_exec_is_atomic_for_other_clients() {
    let s = common::herald();
    let mut writer = connect(&s);
    let mut reader = connect(&s);
    let _: () = writer.set("a", 0).expect("set");
    let _: () = writer.set("b", 0).expect("set");
    let w = std::thread::spawn(move || {
        for i in 1..=300 {
            let _: () = redis::pipe()
                .atomic()
                .set("a", i)
                .set("b", i)
                .query(&mut writer)
                .expect("exec");
        }
    });
    for _ in 0..300 {
        let (a, b): (i64, i64) = redis::cmd("MGET")
            .arg("a")
            .arg("b")
            .query(&mut reader)
            .expect("mget");
        assert_eq!(a, b, "a transaction was observed half done");
    }
    w.join().expect("writer");
    s.shutdown();
}

fn used_memory(con: &mut Connection) -> u64 {
    common::info_u64(con, "memory", "used_memory")
}

#[test]
fn many_unread_keys_expire_with_events_and_memory_returns() {
    const N: usize = 20_000;
    let s = common::herald();
    let mut con = connect(&s);
    common::config_set(&mut con, "notify-keyspace-events", "Ex");
    let mut sub_con = connect(&s);
    let mut ps = sub_con.as_pubsub();
    ps.subscribe("__keyevent@0__:expired").expect("subscribe");
    ps.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let before = used_memory(&mut con);
    let mut pipe = redis::pipe();
    for i in 0..N {
        pipe.cmd("SET")
            .arg(format!("session:{i}"))
            .arg("x".repeat(32))
            .arg("PX")
            .arg(300)
            .ignore();
    }
    let _: () = pipe.query(&mut con).expect("pipeline");
    let full = used_memory(&mut con);
    assert!(full > before + (N as u64) * 32, "{before} -> {full}");
    let mut seen = std::collections::HashSet::new();
    while seen.len() < N {
        let m = ps.get_message().expect("expired event before the timeout");
        seen.insert(m.get_payload::<String>().expect("payload"));
    }
    let n: usize = redis::cmd("DBSIZE").query(&mut con).expect("dbsize");
    assert_eq!(n, 0);
    // Client buffers count too (as in Redis), sampled every 100 ms: the
    // keyspace's share returns exactly, the read buffers within one
    // kept 16 KiB buffer once the pipeline's big one has been cut back.
    common::wait_until("memory returns", TIMEOUT, || {
        used_memory(&mut con) <= before + 16 * 1024
    });
    drop(ps);
    s.shutdown();
}

#[test]
fn debug_runs_when_enabled_and_stops_active_expiry() {
    let s = common::herald_with(|c| {
        let mut enabled =
            herald::config::Config::from_config_text("enable-debug-command yes\n").expect("config");
        enabled.port = 0;
        *c = enabled;
    });
    let mut con = connect(&s);
    let mut ask = |args: &[&str]| -> redis::RedisResult<redis::Value> {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut con)
    };
    assert!(ask(&["DEBUG", "HELP"]).is_ok());
    assert!(ask(&["DEBUG", "LOG", "hello"]).is_ok());
    assert!(ask(&["DEBUG", "SLEEP", "0"]).is_ok());
    let err = ask(&["DEBUG", "ERROR", "MYCODE my text"]).expect_err("error");
    assert_eq!(err.code(), Some("MYCODE"));
    let err = ask(&["DEBUG", "JMAP"]).expect_err("unsupported");
    assert!(err.to_string().contains("not supported by herald"), "{err}");
    // Without active expiry a key nobody reads stays until it is read.
    assert!(ask(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]).is_ok());
    let _: () = con.pset_ex("k", "v", 1).expect("psetex");
    let expired = |con: &mut Connection| common::info_u64(con, "stats", "expired_keys");
    // Absence cannot be awaited: watch INFO (which expires nothing) over
    // three periods of the expiry cycle (100 ms), then read the key.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(350) {
        assert_eq!(expired(&mut con), 0);
        std::thread::yield_now();
    }
    let v: Option<String> = con.get("k").expect("get");
    assert_eq!(v, None);
    assert_eq!(expired(&mut con), 1);
}

#[test]
fn migrate_moves_keys_to_another_server_with_their_ttl() {
    let (src, dst) = (common::herald(), common::herald());
    let (mut a, mut b) = (connect(&src), connect(&dst));
    let _: () = a.set("plain", "1").expect("set");
    let _: () = a.pset_ex("ttl", "v", 100_000).expect("psetex");
    let _: () = a.rpush("list", &["x", "y"]).expect("rpush");
    let port = dst.addr().port().to_string();
    let migrate = |con: &mut Connection, tail: &[&str]| -> redis::RedisResult<String> {
        let mut cmd = redis::cmd("MIGRATE");
        cmd.arg("127.0.0.1").arg(&port);
        for t in tail {
            cmd.arg(*t);
        }
        cmd.query(con)
    };
    assert_eq!(migrate(&mut a, &["plain", "0", "1000"]).expect("one"), "OK");
    assert_eq!(
        migrate(
            &mut a,
            &["", "0", "1000", "COPY", "KEYS", "ttl", "list", "gone"]
        )
        .expect("copy"),
        "OK"
    );
    assert_eq!(
        migrate(&mut a, &["gone", "0", "1000"]).expect("none"),
        "NOKEY"
    );
    let err = migrate(&mut a, &["", "0", "1000", "KEYS", "list"]).expect_err("busy");
    assert!(err.to_string().contains("BUSYKEY"), "{err}");
    assert_eq!(
        migrate(&mut a, &["", "0", "1000", "REPLACE", "KEYS", "list"]).expect("replace"),
        "OK"
    );
    let src_keys: Vec<String> = a.keys("*").expect("keys");
    assert_eq!(src_keys, vec!["ttl".to_string()]);
    let mut dst_keys: Vec<String> = b.keys("*").expect("keys");
    dst_keys.sort();
    assert_eq!(dst_keys, ["list", "plain", "ttl"]);
    let ttl: i64 = b.pttl("ttl").expect("pttl");
    assert!(ttl > 0 && ttl <= 100_000, "{ttl}");
    let list: Vec<String> = b.lrange("list", 0, -1).expect("lrange");
    assert_eq!(list, ["x", "y"]);
}
