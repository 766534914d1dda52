//! Bitmaps and the string commands of `command::bitops` / `command::lcs`
//! over TCP with the `redis` crate against an in-process herald (port 0):
//! a presence bitmap (SETBIT / GETBIT / BITCOUNT / BITPOS), daily
//! bitmaps combined with BITOP, counters packed with BITFIELD (overflow
//! policies, BITFIELD_RO), LCS and SUBSTR, INCRBYFLOAT's `long double`
//! digits, the keyspace events of bit writes, and offsets refused past
//! `proto-max-bulk-len`.

mod common;

use std::time::Duration;

use redis::{Connection, Value};

const TIMEOUT: Duration = Duration::from_secs(5);

fn q<T: redis::FromRedisValue>(con: &mut Connection, args: &[&str]) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

fn int(con: &mut Connection, args: &[&str]) -> i64 {
    q(con, args).expect("integer reply")
}

fn err(con: &mut Connection, args: &[&str]) -> String {
    match q::<Value>(con, args) {
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
        Ok(v) => panic!("expected an error from {args:?}, got {v:?}"),
    }
}

#[test]
fn presence_bitmap_and_daily_bitop() {
    let s = common::herald();
    let mut con = common::connect_redis(&s, TIMEOUT);
    for user in [3, 7, 1000] {
        assert_eq!(
            int(&mut con, &["SETBIT", "seen:mon", &user.to_string(), "1"]),
            0
        );
    }
    assert_eq!(int(&mut con, &["SETBIT", "seen:mon", "7", "1"]), 1);
    assert_eq!(int(&mut con, &["GETBIT", "seen:mon", "1000"]), 1);
    assert_eq!(int(&mut con, &["GETBIT", "seen:mon", "999999"]), 0);
    assert_eq!(int(&mut con, &["STRLEN", "seen:mon"]), 126);
    assert_eq!(int(&mut con, &["BITCOUNT", "seen:mon"]), 3);
    assert_eq!(int(&mut con, &["BITCOUNT", "seen:mon", "0", "7", "BIT"]), 2);
    assert_eq!(int(&mut con, &["BITPOS", "seen:mon", "1"]), 3);
    assert_eq!(
        int(&mut con, &["BITPOS", "seen:mon", "1", "8", "-1", "BIT"]),
        1000
    );
    assert_eq!(int(&mut con, &["BITPOS", "seen:mon", "0", "0", "0"]), 0);
    for user in [7, 12] {
        int(&mut con, &["SETBIT", "seen:tue", &user.to_string(), "1"]);
    }
    assert_eq!(
        int(&mut con, &["BITOP", "AND", "both", "seen:mon", "seen:tue"]),
        126
    );
    assert_eq!(int(&mut con, &["BITCOUNT", "both"]), 1);
    assert_eq!(
        int(&mut con, &["BITOP", "OR", "any", "seen:mon", "seen:tue"]),
        126
    );
    assert_eq!(int(&mut con, &["BITCOUNT", "any"]), 4);
    assert_eq!(int(&mut con, &["BITOP", "NOT", "none", "nokey"]), 0);
    assert_eq!(int(&mut con, &["EXISTS", "none"]), 0);
    assert_eq!(
        err(&mut con, &["BITOP", "NOT", "x", "seen:mon", "seen:tue"]),
        "ERR BITOP NOT must be called with a single source key."
    );
    assert_eq!(
        err(&mut con, &["SETBIT", "seen:mon", "4294967296", "1"]),
        "ERR bit offset is not an integer or out of range"
    );
    assert_eq!(
        err(&mut con, &["SETBIT", "seen:mon", "1", "2"]),
        "ERR bit is not an integer or out of range"
    );
    assert_eq!(
        err(&mut con, &["BITPOS", "seen:mon", "2"]),
        "ERR The bit argument must be 1 or 0."
    );
    // The limit follows proto-max-bulk-len, as Redis's does.
    common::config_set(&mut con, "proto-max-bulk-len", "1048576");
    assert_eq!(
        err(&mut con, &["SETBIT", "big", "8388608", "1"]),
        "ERR bit offset is not an integer or out of range"
    );
    assert_eq!(int(&mut con, &["SETBIT", "big", "8388607", "1"]), 0);
}

#[test]
fn packed_counters_with_bitfield() {
    let s = common::herald();
    let mut con = common::connect_redis(&s, TIMEOUT);
    let v: Vec<Option<i64>> = q(
        &mut con,
        &[
            "BITFIELD", "c", "SET", "u8", "#0", "250", "INCRBY", "u8", "#0", "10", "OVERFLOW",
            "SAT", "INCRBY", "u8", "#1", "300", "OVERFLOW", "FAIL", "INCRBY", "i4", "#4", "8",
            "GET", "u8", "#1",
        ],
    )
    .expect("bitfield");
    assert_eq!(v, vec![Some(0), Some(4), Some(255), None, Some(255)]);
    let v: Vec<i64> = q(
        &mut con,
        &["BITFIELD_RO", "c", "GET", "u8", "0", "GET", "i8", "8"],
    )
    .expect("ro");
    assert_eq!(v, vec![4, -1]);
    assert_eq!(
        err(&mut con, &["BITFIELD_RO", "c", "SET", "u8", "0", "1"]),
        "ERR BITFIELD_RO only supports the GET subcommand"
    );
    assert_eq!(
        err(&mut con, &["BITFIELD", "c", "GET", "u64", "0"]),
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
    );
    assert_eq!(
        err(&mut con, &["BITFIELD", "c", "OVERFLOW", "MAYBE"]),
        "ERR Invalid OVERFLOW type specified"
    );
    let _: () = q(&mut con, &["LPUSH", "l", "x"]).expect("lpush");
    assert!(err(&mut con, &["BITFIELD", "l", "GET", "u8", "0"]).starts_with("WRONGTYPE"));
}

#[test]
fn lcs_substr_and_incrbyfloat() {
    let s = common::herald();
    let mut con = common::connect_redis(&s, TIMEOUT);
    let _: () = q(&mut con, &["MSET", "a", "ohmytext", "b", "mynewtext"]).expect("mset");
    let lcs: String = q(&mut con, &["LCS", "a", "b"]).expect("lcs");
    assert_eq!(lcs, "mytext");
    assert_eq!(int(&mut con, &["LCS", "a", "b", "LEN"]), 6);
    let idx: Value = q(
        &mut con,
        &["LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"],
    )
    .expect("idx");
    let text = format!("{idx:?}");
    assert!(text.contains("matches") && text.contains("len"), "{text}");
    assert_eq!(
        err(&mut con, &["LCS", "a", "b", "LEN", "IDX"]),
        "ERR If you want both the length and indexes, please just use IDX."
    );
    let sub: String = q(&mut con, &["SUBSTR", "a", "2", "3"]).expect("substr");
    assert_eq!(sub, "my");
    let f: String = q(&mut con, &["INCRBYFLOAT", "f", "0.1"]).expect("incrbyfloat");
    assert_eq!(f, "0.1");
    let f: String = q(&mut con, &["INCRBYFLOAT", "f", "0.2"]).expect("incrbyfloat");
    assert_eq!(f, "0.3");
    let big: String = q(&mut con, &["INCRBYFLOAT", "g", "1e400"]).expect("1e400");
    assert_eq!(big.len(), 401);
    assert!(big.starts_with("10000000000000000000281880683947586514"));
    assert_eq!(
        err(&mut con, &["INCRBYFLOAT", "g", "1e5000"]),
        "ERR value is not a valid float"
    );
}

#[test]
fn bit_writes_publish_setbit_events() {
    let s = common::herald();
    let mut con = common::connect_redis(&s, TIMEOUT);
    common::config_set(&mut con, "notify-keyspace-events", "KA");
    let mut sub_con = common::connect_redis(&s, TIMEOUT);
    let mut ps = sub_con.as_pubsub();
    ps.psubscribe("__keyspace@0__:*").expect("psubscribe");
    ps.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    int(&mut con, &["SETBIT", "k", "1", "1"]);
    int(&mut con, &["SETBIT", "k", "1", "1"]); // no change: no event
    let _: Value = q(&mut con, &["BITFIELD", "k", "SET", "u4", "0", "15"]).expect("bitfield");
    int(&mut con, &["BITOP", "NOT", "d", "k"]);
    int(&mut con, &["BITOP", "AND", "d", "nokey"]);
    let mut events = Vec::new();
    for _ in 0..4 {
        let m = ps.get_message().expect("event");
        events.push(format!(
            "{} {}",
            m.get_channel_name(),
            m.get_payload::<String>().expect("payload")
        ));
    }
    assert_eq!(
        events,
        [
            "__keyspace@0__:k setbit",
            "__keyspace@0__:k setbit",
            "__keyspace@0__:d set",
            "__keyspace@0__:d del"
        ]
    );
}
