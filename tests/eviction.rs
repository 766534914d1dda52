//! `maxmemory` and its eviction policies, over TCP with the
//! `redis` crate against an in-process herald: for each policy, fill well
//! past the limit and check that used memory stays near it, that the right
//! kind of key goes (`volatile-*` only keys with a TTL, `volatile-ttl` the
//! soonest to expire, LRU / LFU the cold ones), that every eviction is
//! announced by an `evicted` keyspace event and counted in INFO, and that
//! `noeviction` (or a volatile policy with nothing volatile left) refuses
//! writes with Redis's exact OOM error.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use redis::{Commands, Connection};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Limit used by the fill tests.
const LIMIT: u64 = 2 * 1024 * 1024;
/// Keys written by a fill: about 5.5 MiB of values and overhead.
const FILL: usize = 5000;
const VALUE: usize = 1000;

fn connect(s: &herald::server::ServerHandle) -> Connection {
    common::connect_redis(s, TIMEOUT)
}

/// A server limited to [`LIMIT`] under `policy`, with `evicted` events on,
/// and a connection subscribed to them.
fn limited(policy: &str) -> (herald::server::ServerHandle, Connection, Connection) {
    watched(policy, &LIMIT.to_string())
}

/// [`limited`] to `maxmemory` bytes (0: no limit).
fn watched(
    policy: &str,
    maxmemory: &str,
) -> (herald::server::ServerHandle, Connection, Connection) {
    let s = common::herald();
    let mut con = connect(&s);
    common::config_set(&mut con, "notify-keyspace-events", "Ee");
    let mut sub = connect(&s);
    let _: () = redis::cmd("SUBSCRIBE")
        .arg("__keyevent@0__:evicted")
        .query(&mut sub)
        .expect("subscribe");
    common::config_set(&mut con, "maxmemory-policy", policy);
    common::config_set(&mut con, "maxmemory", maxmemory);
    (s, con, sub)
}

/// Reads `n` evicted events; returns the keys.
fn evicted_events(sub: &mut Connection, n: u64) -> HashSet<String> {
    let mut keys = HashSet::new();
    for _ in 0..n {
        let msg = sub.recv_response().expect("an evicted event");
        let v: Vec<String> = redis::from_redis_value(&msg).expect("message");
        assert_eq!(v[0], "message");
        assert_eq!(v[1], "__keyevent@0__:evicted");
        keys.insert(v[2].clone());
    }
    keys
}

/// Writes [`FILL`] keys `k<i>` (with a TTL when `ttl(i)` says so), calling
/// `between(i)` every 50 keys.
fn fill(
    con: &mut Connection,
    ttl: impl Fn(usize) -> Option<u64>,
    mut between: impl FnMut(&mut Connection, usize),
) {
    let value = "v".repeat(VALUE);
    for i in 0..FILL {
        let key = format!("k{i}");
        let r: redis::RedisResult<()> = match ttl(i) {
            Some(t) => con.set_ex(&key, &value, t),
            None => con.set(&key, &value),
        };
        r.expect("write accepted while something can be evicted");
        if i % 50 == 49 {
            between(con, i);
        }
    }
}

/// Checks the limit held and returns (evicted count, keys left).
fn check_limit(con: &mut Connection) -> (u64, u64) {
    let used = common::info_u64(con, "memory", "used_memory");
    assert!(
        used <= LIMIT + LIMIT / 10,
        "used_memory {used} should stay near maxmemory {LIMIT}"
    );
    assert_eq!(common::info_u64(con, "memory", "maxmemory"), LIMIT);
    // Eviction runs before every command while memory is over the limit
    // (as in Redis, a bounded amount at a time), INFO and DBSIZE included:
    // read the pair again until no eviction happened between the readings.
    let mut pair = None;
    for _ in 0..100 {
        let before = common::info_u64(con, "stats", "evicted_keys");
        let left: u64 = redis::cmd("DBSIZE").query(con).expect("dbsize");
        if common::info_u64(con, "stats", "evicted_keys") == before {
            pair = Some((before, left));
            break;
        }
    }
    let (evicted, left) = pair.expect("eviction settles");
    assert!(evicted > 0, "nothing was evicted");
    assert_eq!(left + evicted, FILL as u64, "every key is there or evicted");
    (evicted, left)
}

#[test]
fn noeviction_refuses_denyoom_commands_with_redis_error() {
    let s = common::herald();
    let mut con = connect(&s);
    let _: () = con.set("before", "1").expect("set");
    common::config_set(&mut con, "maxmemory", "1");
    let err = con.set::<_, _, ()>("a", "b").expect_err("refused");
    assert_eq!(err.code(), Some("OOM"));
    assert_eq!(
        err.detail(),
        Some("command not allowed when used memory > 'maxmemory'.")
    );
    // Reads and deletions (not flagged denyoom) still run.
    let v: String = con.get("before").expect("get");
    assert_eq!(v, "1");
    let n: i64 = con.del("before").expect("del");
    assert_eq!(n, 1);
    // In MULTI, anything queued is refused and EXEC aborts.
    let _: () = redis::cmd("MULTI").query(&mut con).expect("multi");
    let e = redis::cmd("GET")
        .arg("x")
        .query::<()>(&mut con)
        .expect_err("oom");
    assert_eq!(e.code(), Some("OOM"));
    let e = redis::cmd("EXEC")
        .query::<()>(&mut con)
        .expect_err("aborted");
    assert_eq!(e.code(), Some("EXECABORT"));
    common::config_set(&mut con, "maxmemory", "0");
    let _: () = con.set("a", "b").expect("accepted again");
    assert_eq!(common::info_u64(&mut con, "stats", "evicted_keys"), 0);
    let policy: String = {
        let text: String = redis::cmd("INFO")
            .arg("memory")
            .query(&mut con)
            .expect("info");
        text.lines()
            .find_map(|l| l.strip_prefix("maxmemory_policy:"))
            .map(str::to_string)
            .expect("maxmemory_policy")
    };
    assert_eq!(policy, "noeviction");
}

#[test]
fn allkeys_lru_keeps_recently_used_keys() {
    let (_s, mut con, mut sub) = limited("allkeys-lru");
    let hot: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    fill(
        &mut con,
        |_| None,
        |con, i| {
            if i >= 50 {
                for k in &hot {
                    let _: Option<String> = con.get(k).expect("get");
                }
            }
        },
    );
    let (evicted, _) = check_limit(&mut con);
    let gone = evicted_events(&mut sub, evicted);
    let hot_gone = hot.iter().filter(|k| gone.contains(*k)).count();
    assert!(hot_gone <= 2, "{hot_gone} of 20 hot keys evicted under LRU");
    // The oldest untouched keys went first.
    let early_gone = (20..1000)
        .filter(|i| gone.contains(&format!("k{i}")))
        .count();
    assert!(
        early_gone > 900,
        "only {early_gone} of the oldest 980 keys evicted"
    );
}

#[test]
fn allkeys_lfu_keeps_frequently_used_keys() {
    let (_s, mut con, mut sub) = limited("allkeys-lfu");
    let value = "v".repeat(VALUE);
    let hot: Vec<String> = (0..20).map(|i| format!("hot{i}")).collect();
    for k in &hot {
        let _: () = con.set(k, &value).expect("set");
        for _ in 0..100 {
            let _: Option<String> = con.get(k).expect("get");
        }
    }
    fill(&mut con, |_| None, |_, _| {});
    let evicted = common::info_u64(&mut con, "stats", "evicted_keys");
    let gone = evicted_events(&mut sub, evicted);
    let hot_gone = hot.iter().filter(|k| gone.contains(*k)).count();
    assert!(
        hot_gone <= 2,
        "{hot_gone} of 20 frequently used keys evicted under LFU"
    );
    let used = common::info_u64(&mut con, "memory", "used_memory");
    assert!(used <= LIMIT + LIMIT / 10, "used_memory {used}");
}

#[test]
fn allkeys_random_stays_within_the_limit() {
    let (_s, mut con, mut sub) = limited("allkeys-random");
    fill(&mut con, |_| None, |_, _| {});
    let (evicted, _) = check_limit(&mut con);
    assert_eq!(evicted_events(&mut sub, evicted).len() as u64, evicted);
}

/// Three keys in four have a TTL (the others fit within the limit): a
/// volatile policy evicts only those. The TTL shrinks as `i` grows, so
/// the newest keys are the soonest to expire. Returns the evicted keys.
fn volatile_only_touches_keys_with_a_ttl(policy: &str) -> HashSet<String> {
    let (_s, mut con, mut sub) = limited(policy);
    fill(
        &mut con,
        |i| (i % 4 != 0).then_some(100_000 - i as u64),
        |_, _| {},
    );
    let (evicted, _) = check_limit(&mut con);
    let gone = evicted_events(&mut sub, evicted);
    for k in &gone {
        let i: usize = k[1..].parse().expect("k<i>");
        assert_ne!(i % 4, 0, "{policy} evicted {k}, which has no TTL");
    }
    for i in (0..FILL).step_by(4) {
        let e: bool = con.exists(format!("k{i}")).expect("exists");
        assert!(e, "{policy}: k{i} (no TTL) is gone");
    }
    gone
}

#[test]
fn volatile_lru_evicts_only_keys_with_a_ttl() {
    volatile_only_touches_keys_with_a_ttl("volatile-lru");
}

#[test]
fn volatile_lfu_evicts_only_keys_with_a_ttl() {
    volatile_only_touches_keys_with_a_ttl("volatile-lfu");
}

#[test]
fn volatile_random_evicts_only_keys_with_a_ttl() {
    volatile_only_touches_keys_with_a_ttl("volatile-random");
}

#[test]
fn volatile_ttl_evicts_the_soonest_to_expire() {
    // k<i> expires after 100000 - i seconds: the newest keys go first, so
    // the keys with a TTL that survive are mostly the oldest (which any
    // other policy would have evicted first).
    let gone = volatile_only_touches_keys_with_a_ttl("volatile-ttl");
    let left: Vec<usize> = (0..FILL)
        .filter(|i| i % 4 != 0 && !gone.contains(&format!("k{i}")))
        .collect();
    assert!(!left.is_empty());
    let old = left.iter().filter(|&&i| i < FILL / 2).count();
    assert!(
        old * 10 >= left.len() * 8,
        "only {old} of the {} keys with a TTL left are among the latest to expire",
        left.len()
    );
}

#[test]
fn volatile_policy_with_nothing_volatile_refuses_writes() {
    let (_s, mut con, _sub) = limited("volatile-lru");
    let value = "v".repeat(VALUE);
    let mut refused = None;
    for i in 0..FILL {
        if let Err(e) = con.set::<_, _, ()>(format!("k{i}"), &value) {
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("writes are refused once nothing can be evicted");
    assert_eq!(e.code(), Some("OOM"));
    assert_eq!(common::info_u64(&mut con, "stats", "evicted_keys"), 0);
}

#[test]
fn lowering_the_limit_evicts_on_the_next_command() {
    let s = common::herald();
    let mut con = connect(&s);
    let value = "v".repeat(VALUE);
    for i in 0..3000 {
        let _: () = con.set(format!("k{i}"), &value).expect("set");
    }
    common::config_set(&mut con, "maxmemory-policy", "allkeys-random");
    common::config_set(&mut con, "maxmemory", &LIMIT.to_string());
    // Eviction is bounded per command (500 µs); a few commands finish it.
    for _ in 0..200 {
        let _: () = redis::cmd("PING").query(&mut con).expect("ping");
        if common::info_u64(&mut con, "memory", "used_memory") <= LIMIT + LIMIT / 20 {
            break;
        }
    }
    let used = common::info_u64(&mut con, "memory", "used_memory");
    assert!(
        used <= LIMIT + LIMIT / 10,
        "used_memory {used} after lowering maxmemory"
    );
}

#[test]
fn lowering_maxmemory_evicts_at_once() {
    // Redis evicts when CONFIG SET lowers the limit, not only when the next
    // command comes: the event arrives with no further command sent.
    let (_s, mut con, mut sub) = watched("allkeys-lru", "0");
    let _: () = con.set("foo", "bar").expect("set");
    common::config_set(&mut con, "maxmemory", "1");
    assert_eq!(
        evicted_events(&mut sub, 1),
        HashSet::from(["foo".to_string()])
    );
    common::config_set(&mut con, "maxmemory", "0");
}
