//! OBJECT, MEMORY, TOUCH and MOVE over TCP with the `redis` crate against
//! an in-process herald (port 0): the representations Redis 7.0 reports
//! after the same commands (one-way conversions under the configured
//! thresholds), the access clock (reads and TOUCH refresh it; TTL, TYPE,
//! EXISTS and OBJECT do not; FREQ under an LFU policy only), MEMORY USAGE
//! growing with the value, MEMORY STATS's fields, and MOVE between
//! databases with its errors.

mod common;

use std::time::Duration;

use redis::{Connection, RedisResult, Value};

const TIMEOUT: Duration = Duration::from_secs(5);

fn connect(s: &herald::server::ServerHandle) -> Connection {
    common::connect_redis(s, TIMEOUT)
}

fn encoding(con: &mut Connection, key: &str) -> Option<String> {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query(con)
        .expect("object encoding")
}

fn run(con: &mut Connection, args: &[&str]) -> RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

fn int(con: &mut Connection, args: &[&str]) -> i64 {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con).expect("integer reply")
}

fn err(con: &mut Connection, args: &[&str]) -> String {
    match run(con, args) {
        Ok(v) => panic!("{args:?}: expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn string_encodings_follow_the_writing_command() {
    let s = common::herald();
    let mut con = connect(&s);
    let long = "x".repeat(45);
    run(&mut con, &["SET", "i", "1234"]).expect("set");
    run(&mut con, &["SET", "e", "hello"]).expect("set");
    run(&mut con, &["SET", "r", &long]).expect("set");
    assert_eq!(encoding(&mut con, "i").as_deref(), Some("int"));
    assert_eq!(encoding(&mut con, "e").as_deref(), Some("embstr"));
    assert_eq!(encoding(&mut con, "r").as_deref(), Some("raw"));
    // Written in place: raw, even short or numeric.
    run(&mut con, &["SETRANGE", "i", "0", "2"]).expect("setrange");
    assert_eq!(encoding(&mut con, "i").as_deref(), Some("raw"));
    run(&mut con, &["APPEND", "e", "!"]).expect("append");
    assert_eq!(encoding(&mut con, "e").as_deref(), Some("raw"));
    // APPEND creating the key stores it as SET would.
    run(&mut con, &["APPEND", "n", "42"]).expect("append");
    assert_eq!(encoding(&mut con, "n").as_deref(), Some("int"));
    // INCRBYFLOAT never leaves an int, INCR always does.
    run(&mut con, &["INCRBYFLOAT", "f", "1.5"]).expect("incrbyfloat");
    run(&mut con, &["INCRBYFLOAT", "f", "1.5"]).expect("incrbyfloat");
    assert_eq!(encoding(&mut con, "f").as_deref(), Some("embstr"));
    run(&mut con, &["INCR", "i"]).expect("incr");
    assert_eq!(encoding(&mut con, "i").as_deref(), Some("int"));
    assert_eq!(encoding(&mut con, "missing"), None);
    // Shared integers report Redis's shared reference count.
    assert_eq!(int(&mut con, &["OBJECT", "REFCOUNT", "n"]), 2147483647);
    assert_eq!(int(&mut con, &["OBJECT", "REFCOUNT", "r"]), 1);
}

#[test]
fn collection_conversions_go_one_way() {
    let s = common::herald();
    let mut con = connect(&s);
    common::config_set(&mut con, "hash-max-listpack-entries", "4");
    common::config_set(&mut con, "set-max-intset-entries", "4");
    common::config_set(&mut con, "zset-max-listpack-value", "8");

    run(&mut con, &["HSET", "h", "a", "1", "b", "2"]).expect("hset");
    assert_eq!(encoding(&mut con, "h").as_deref(), Some("listpack"));
    run(&mut con, &["HSET", "h", "c", "3", "d", "4", "e", "5"]).expect("hset");
    assert_eq!(encoding(&mut con, "h").as_deref(), Some("hashtable"));
    run(&mut con, &["HDEL", "h", "c", "d", "e"]).expect("hdel");
    assert_eq!(encoding(&mut con, "h").as_deref(), Some("hashtable"));

    run(&mut con, &["SADD", "s", "1", "2", "3"]).expect("sadd");
    assert_eq!(encoding(&mut con, "s").as_deref(), Some("intset"));
    run(&mut con, &["SADD", "s", "x"]).expect("sadd");
    run(&mut con, &["SREM", "s", "x"]).expect("srem");
    assert_eq!(encoding(&mut con, "s").as_deref(), Some("hashtable"));
    run(&mut con, &["SADD", "t", "a"]).expect("sadd");
    assert_eq!(encoding(&mut con, "t").as_deref(), Some("hashtable"));

    run(&mut con, &["ZADD", "z", "1", "short"]).expect("zadd");
    assert_eq!(encoding(&mut con, "z").as_deref(), Some("listpack"));
    run(&mut con, &["ZADD", "z", "2", "much-longer-member"]).expect("zadd");
    assert_eq!(encoding(&mut con, "z").as_deref(), Some("skiplist"));

    run(&mut con, &["RPUSH", "l", "a"]).expect("rpush");
    assert_eq!(encoding(&mut con, "l").as_deref(), Some("quicklist"));
    run(&mut con, &["XADD", "x", "*", "f", "v"]).expect("xadd");
    assert_eq!(encoding(&mut con, "x").as_deref(), Some("stream"));

    // A copy and a renamed key keep the representation.
    run(&mut con, &["COPY", "h", "h2"]).expect("copy");
    assert_eq!(encoding(&mut con, "h2").as_deref(), Some("hashtable"));
    run(&mut con, &["RENAME", "s", "s2"]).expect("rename");
    assert_eq!(encoding(&mut con, "s2").as_deref(), Some("hashtable"));
}

#[test]
fn access_clock_idletime_touch_and_freq() {
    let s = common::herald();
    let mut con = connect(&s);
    run(&mut con, &["SET", "k", "v"]).expect("set");
    assert_eq!(int(&mut con, &["OBJECT", "IDLETIME", "k"]), 0);
    assert_eq!(int(&mut con, &["TOUCH", "k", "nope", "k"]), 2);
    let e = err(&mut con, &["OBJECT", "FREQ", "k"]);
    assert!(e.contains("An LFU maxmemory policy is not selected"), "{e}");

    common::config_set(&mut con, "maxmemory-policy", "allkeys-lfu");
    let e = err(&mut con, &["OBJECT", "IDLETIME", "k"]);
    assert!(e.contains("An LFU maxmemory policy is selected"), "{e}");
    run(&mut con, &["SET", "f", "v"]).expect("set");
    let before = int(&mut con, &["OBJECT", "FREQ", "f"]);
    assert_eq!(before, 5, "a new key starts at LFU_INIT_VAL");
    for _ in 0..200 {
        run(&mut con, &["GET", "f"]).expect("get");
    }
    assert!(int(&mut con, &["OBJECT", "FREQ", "f"]) > before);
    common::config_set(&mut con, "maxmemory-policy", "noeviction");
}

#[test]
fn memory_usage_grows_with_the_value_and_stats_has_redis_fields() {
    let s = common::herald();
    let mut con = connect(&s);
    run(&mut con, &["SET", "small", "x"]).expect("set");
    run(&mut con, &["SET", "big", &"x".repeat(10_000)]).expect("set");
    let small = int(&mut con, &["MEMORY", "USAGE", "small"]);
    let big = int(&mut con, &["MEMORY", "USAGE", "big"]);
    assert!(small > 0 && big > 10_000 && big < 20_000, "{small} {big}");
    for i in 0..1000 {
        run(&mut con, &["RPUSH", "l", &format!("element-{i}")]).expect("rpush");
    }
    let all = int(&mut con, &["MEMORY", "USAGE", "l", "SAMPLES", "0"]);
    assert!(all > 10_000, "{all}");
    let missing: Option<i64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("nope")
        .query(&mut con)
        .expect("usage");
    assert_eq!(missing, None);
    assert_eq!(
        err(&mut con, &["MEMORY", "USAGE", "l", "SAMPLES", "-1"]),
        "An error was signalled by the server - ResponseError: syntax error"
    );

    let stats: Vec<Value> = redis::cmd("MEMORY")
        .arg("STATS")
        .query(&mut con)
        .expect("stats");
    let names: Vec<String> = stats.iter().step_by(2).map(common::text).collect();
    for want in [
        "peak.allocated",
        "total.allocated",
        "db.0",
        "keys.count",
        "dataset.bytes",
        "fragmentation.bytes",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let doctor: String = redis::cmd("MEMORY")
        .arg("DOCTOR")
        .query(&mut con)
        .expect("doctor");
    assert!(doctor.starts_with("Hi Sam"), "{doctor}");
    assert_eq!(
        run(&mut con, &["MEMORY", "PURGE"]).expect("purge"),
        Value::Okay
    );
}

#[test]
fn move_between_databases() {
    let s = common::herald();
    let mut con = connect(&s);
    run(&mut con, &["SET", "k", "v", "EX", "100"]).expect("set");
    assert_eq!(int(&mut con, &["MOVE", "k", "1"]), 1);
    assert_eq!(int(&mut con, &["EXISTS", "k"]), 0);
    assert_eq!(int(&mut con, &["MOVE", "k", "1"]), 0);
    run(&mut con, &["SELECT", "1"]).expect("select");
    let v: String = redis::cmd("GET").arg("k").query(&mut con).expect("get");
    assert_eq!(v, "v");
    assert!(int(&mut con, &["TTL", "k"]) > 0);
    // A key of that name in the target stops the move.
    run(&mut con, &["SET", "dup", "1"]).expect("set");
    run(&mut con, &["SELECT", "0"]).expect("select");
    run(&mut con, &["SET", "dup", "0"]).expect("set");
    assert_eq!(int(&mut con, &["MOVE", "dup", "1"]), 0);
    assert!(err(&mut con, &["MOVE", "dup", "0"])
        .contains("source and destination objects are the same"));
    assert!(err(&mut con, &["MOVE", "dup", "16"]).contains("DB index is out of range"));
    assert!(err(&mut con, &["MOVE", "dup", "-1"]).contains("DB index is out of range"));
    assert!(err(&mut con, &["MOVE", "dup", "x"]).contains("value is not an integer"));
    assert!(err(&mut con, &["MOVE", "dup", "99999999999"]).contains("value is out of range"));
}
