//! Streams through the messaging patterns of the seed documents, over TCP
//! with the `redis` crate against an in-process herald (port 0):
//!
//! - `publish_with_streams` / the hybrid pattern: every message is both
//!   PUBLISHed and XADDed; a subscriber that was disconnected recovers,
//!   from the stream, exactly the messages it missed;
//! - at-least-once delivery with a consumer group: a consumer dies with
//!   pending entries, another takes them over with XAUTOCLAIM and
//!   acknowledges them; nothing lost, nothing acknowledged twice;
//! - blocking XREAD / XREADGROUP: several blocked readers served in the
//!   order they blocked, timeouts, a reader that disconnects while blocked.
//!
//! Waits are bounded polls or reads with timeouts, never sleep-then-check.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use redis::{Connection, Value};

const TIMEOUT: Duration = Duration::from_secs(5);

fn connect(s: &herald::server::ServerHandle) -> Connection {
    common::connect_redis(s, TIMEOUT)
}

/// The entries of an XRANGE-shaped reply as (id, field/value texts).
fn entries(v: &Value) -> Vec<(String, Vec<String>)> {
    let Value::Array(items) = v else {
        return vec![];
    };
    items
        .iter()
        .filter_map(|e| match e {
            Value::Array(p) if p.len() == 2 => {
                let fields = match &p[1] {
                    Value::Array(f) => f.iter().map(common::text).collect(),
                    _ => vec![],
                };
                Some((common::text(&p[0]), fields))
            }
            _ => None,
        })
        .collect()
}

/// The entries of the first stream of an XREAD / XREADGROUP reply (RESP2).
fn xread_entries(v: &Value) -> Vec<(String, Vec<String>)> {
    match v {
        Value::Array(streams) => streams
            .iter()
            .flat_map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => entries(&kv[1]),
                _ => vec![],
            })
            .collect(),
        _ => vec![],
    }
}

/// The seed's `publish_with_streams`: XADD then PUBLISH.
fn publish_with_streams(con: &mut Connection, channel: &str, message: &str) -> String {
    let id: String = redis::cmd("XADD")
        .arg(format!("stream:{channel}"))
        .arg("*")
        .arg("message")
        .arg(message)
        .arg("timestamp")
        .arg("1700000000.5")
        .query(con)
        .expect("xadd");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(message)
        .query(con)
        .expect("publish");
    id
}

#[test]
fn hybrid_subscriber_recovers_exactly_what_it_missed() {
    let s = common::herald();
    let mut publisher = connect(&s);
    let client = redis::Client::open(format!("redis://{}/", s.addr())).expect("client");

    // Connected subscriber: receives live messages and remembers the last ID.
    let mut sub_con = client.get_connection().expect("connect");
    sub_con.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut last_seen = String::from("0-0");
    {
        let mut sub = sub_con.as_pubsub();
        sub.subscribe("orders").expect("subscribe");
        for i in 0..5 {
            let id = publish_with_streams(&mut publisher, "orders", &format!("m{i}"));
            let msg = sub.get_message().expect("message");
            let payload: String = msg.get_payload().expect("payload");
            assert_eq!(payload, format!("m{i}"));
            last_seen = id;
        }
    }
    drop(sub_con);

    // Published while the subscriber is away: lost for pub/sub.
    let mut missed = Vec::new();
    for i in 5..12 {
        publish_with_streams(&mut publisher, "orders", &format!("m{i}"));
        missed.push(format!("m{i}"));
    }

    // Reconnect: recover from the stream what came after the last seen ID.
    let mut back = connect(&s);
    let reply: Value = redis::cmd("XREAD")
        .arg("STREAMS")
        .arg("stream:orders")
        .arg(&last_seen)
        .query(&mut back)
        .expect("xread");
    let got: Vec<String> = xread_entries(&reply)
        .into_iter()
        .map(|(_, f)| f[1].clone())
        .collect();
    assert_eq!(got, missed);

    // XRANGE with an exclusive start gives the same.
    let reply: Value = redis::cmd("XRANGE")
        .arg("stream:orders")
        .arg(format!("({last_seen}"))
        .arg("+")
        .query(&mut back)
        .expect("xrange");
    assert_eq!(entries(&reply).len(), missed.len());
}

#[test]
fn at_least_once_with_xautoclaim_takeover() {
    let s = common::herald();
    let mut producer = connect(&s);
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("jobs")
        .arg("workers")
        .arg("$")
        .arg("MKSTREAM")
        .query(&mut producer)
        .expect("create");
    let mut all = BTreeSet::new();
    for i in 0..50 {
        let id: String = redis::cmd("XADD")
            .arg("jobs")
            .arg("*")
            .arg("job")
            .arg(i)
            .query(&mut producer)
            .expect("xadd");
        all.insert(id);
    }

    // Worker 1 reads 20 jobs, acknowledges 5, and dies.
    let mut w1 = connect(&s);
    let reply: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg("w1")
        .arg("COUNT")
        .arg(20)
        .arg("STREAMS")
        .arg("jobs")
        .arg(">")
        .query(&mut w1)
        .expect("xreadgroup");
    let got = xread_entries(&reply);
    assert_eq!(got.len(), 20);
    let mut acked = BTreeSet::new();
    for (id, _) in &got[..5] {
        let n: i64 = redis::cmd("XACK")
            .arg("jobs")
            .arg("workers")
            .arg(id)
            .query(&mut w1)
            .expect("xack");
        assert_eq!(n, 1);
        acked.insert(id.clone());
    }
    drop(w1);

    // Worker 2 takes the rest of the stream, then the dead worker's
    // pending entries with XAUTOCLAIM, page by page.
    let mut w2 = connect(&s);
    let reply: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg("w2")
        .arg("STREAMS")
        .arg("jobs")
        .arg(">")
        .query(&mut w2)
        .expect("xreadgroup");
    let mut mine: Vec<String> = xread_entries(&reply).into_iter().map(|e| e.0).collect();
    assert_eq!(mine.len(), 30);
    let mut cursor = String::from("0-0");
    loop {
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg("jobs")
            .arg("workers")
            .arg("w2")
            .arg(0)
            .arg(&cursor)
            .arg("COUNT")
            .arg(4)
            .query(&mut w2)
            .expect("xautoclaim");
        let Value::Array(parts) = reply else {
            panic!("xautoclaim reply {reply:?}");
        };
        cursor = common::text(&parts[0]);
        mine.extend(entries(&parts[1]).into_iter().map(|e| e.0));
        if cursor == "0-0" {
            break;
        }
    }
    // Everything pending now belongs to w2 (claimed ones appear twice in
    // `mine`: once read, once claimed, for w2's own entries).
    let pending: Value = redis::cmd("XPENDING")
        .arg("jobs")
        .arg("workers")
        .query(&mut w2)
        .expect("xpending");
    let Value::Array(summary) = pending else {
        panic!("xpending");
    };
    assert_eq!(summary[0], Value::Int(45));
    for id in mine.iter().collect::<BTreeSet<_>>() {
        let n: i64 = redis::cmd("XACK")
            .arg("jobs")
            .arg("workers")
            .arg(id)
            .query(&mut w2)
            .expect("xack");
        assert_eq!(n, 1, "{id} acknowledged once");
        assert!(acked.insert(id.clone()), "{id} acknowledged twice");
    }
    assert_eq!(acked, all, "nothing lost");
    let n: i64 = redis::cmd("XACK")
        .arg("jobs")
        .arg("workers")
        .arg(all.iter().next().expect("id"))
        .query(&mut w2)
        .expect("xack");
    assert_eq!(n, 0);
}

#[test]
fn blocked_readers_are_served_in_order_and_time_out() {
    let s = common::herald();
    let mut admin = connect(&s);
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("q")
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query(&mut admin)
        .expect("create");
    let mut handles = Vec::new();
    for i in 0..3 {
        let mut con = connect(&s);
        let before = common::blocked_clients(&mut admin);
        handles.push(std::thread::spawn(move || {
            let v: Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg(format!("c{i}"))
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(0)
                .arg("STREAMS")
                .arg("q")
                .arg(">")
                .query(&mut con)
                .expect("xreadgroup");
            xread_entries(&v)
        }));
        common::wait_for_value("blocked_clients", TIMEOUT, before + 1, || {
            common::blocked_clients(&mut admin)
        });
    }
    for i in 0..3 {
        let _: String = redis::cmd("XADD")
            .arg("q")
            .arg(format!("{}-0", i + 1))
            .arg("n")
            .arg(i)
            .query(&mut admin)
            .expect("xadd");
    }
    for (i, h) in handles.into_iter().enumerate() {
        let got = h.join().expect("reader");
        assert_eq!(
            got,
            vec![(format!("{}-0", i + 1), vec!["n".into(), i.to_string()])]
        );
    }

    // A timeout replies nil.
    let start = Instant::now();
    let v: Value = redis::cmd("XREAD")
        .arg("BLOCK")
        .arg(50)
        .arg("STREAMS")
        .arg("q")
        .arg("$")
        .query(&mut admin)
        .expect("xread");
    assert_eq!(v, Value::Nil);
    assert!(start.elapsed() >= Duration::from_millis(50));

    // A reader that disconnects while blocked is forgotten, and the next
    // one is served.
    let mut gone = connect(&s);
    redis::cmd("XREAD")
        .arg("BLOCK")
        .arg(0)
        .arg("STREAMS")
        .arg("q")
        .arg("$")
        .send_packed_command_for_test(&mut gone);
    common::wait_for_value("blocked_clients", TIMEOUT, 1, || {
        common::blocked_clients(&mut admin)
    });
    drop(gone);
    common::wait_for_value("blocked_clients", TIMEOUT, 0, || {
        common::blocked_clients(&mut admin)
    });
    let mut next = connect(&s);
    let h = std::thread::spawn(move || {
        let v: Value = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(0)
            .arg("STREAMS")
            .arg("q")
            .arg("$")
            .query(&mut next)
            .expect("xread");
        xread_entries(&v)
    });
    common::wait_for_value("blocked_clients", TIMEOUT, 1, || {
        common::blocked_clients(&mut admin)
    });
    let _: String = redis::cmd("XADD")
        .arg("q")
        .arg("9-0")
        .arg("k")
        .arg("v")
        .query(&mut admin)
        .expect("xadd");
    assert_eq!(h.join().expect("reader").len(), 1);
}

/// Sends a command without reading its reply (the client blocks).
trait SendOnly {
    fn send_packed_command_for_test(&self, con: &mut Connection);
}

impl SendOnly for redis::Cmd {
    fn send_packed_command_for_test(&self, con: &mut Connection) {
        con.send_packed_command(&self.get_packed_command())
            .expect("send");
    }
}

/// A client blocked in XREADGROUP is released by FLUSHALL / FLUSHDB with
/// Redis's error (its stream is gone), as `Blocking XREADGROUP: flushed DB`
/// in Redis's suite expects.
/// A client blocked in `XREADGROUP GROUP g alice BLOCK 0 STREAMS s >` on
/// its own thread (returned once INFO counts it blocked), which ends with
/// the reply or the error text.
fn blocked_group_reader(
    s: &herald::server::ServerHandle,
    admin: &mut Connection,
) -> std::thread::JoinHandle<Result<Value, String>> {
    let mut reader = connect(s);
    let h = std::thread::spawn(move || {
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("alice")
            .arg("BLOCK")
            .arg(0)
            .arg("STREAMS")
            .arg("s")
            .arg(">")
            .query::<Value>(&mut reader)
            .map_err(|e| e.to_string())
    });
    common::wait_for_value("blocked_clients", TIMEOUT, 1, || {
        common::blocked_clients(admin)
    });
    h
}

#[test]
fn flushing_the_database_releases_a_blocked_group_reader() {
    let s = common::herald();
    let mut admin = connect(&s);
    for flush in ["FLUSHALL", "FLUSHDB"] {
        let _: String = redis::cmd("XADD")
            .arg("s")
            .arg("666-0")
            .arg("f")
            .arg("v")
            .query(&mut admin)
            .expect("xadd");
        let _: String = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg("s")
            .arg("g")
            .arg("$")
            .query(&mut admin)
            .expect("xgroup");
        let h = blocked_group_reader(&s, &mut admin);
        let _: String = redis::cmd(flush).query(&mut admin).expect("flush");
        let got = h.join().expect("reader");
        assert!(
            got.as_ref().is_err_and(|e| e.contains("no longer exists")),
            "{flush}: {got:?}"
        );
    }
}

#[test]
fn destroying_a_group_fails_its_blocked_reader_in_the_stats() {
    let s = common::herald();
    let mut admin = connect(&s);
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut admin)
        .expect("resetstat");
    let _: String = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("s")
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query(&mut admin)
        .expect("xgroup");
    let h = blocked_group_reader(&s, &mut admin);
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg("s")
        .arg("g")
        .query(&mut admin)
        .expect("destroy");
    let got = h.join().expect("reader");
    assert!(
        got.as_ref().is_err_and(|e| e.contains("NOGROUP")),
        "{got:?}"
    );
    // The reader's connection counts the failure once it has replied.
    common::wait_until("errorstat_NOGROUP", TIMEOUT, || {
        common::info_field(&mut admin, "errorstats", "errorstat_NOGROUP").as_deref()
            == Some("count=1")
    });
    let stat =
        common::info_field(&mut admin, "commandstats", "cmdstat_xreadgroup").expect("cmdstat");
    assert!(stat.starts_with("calls=1,"), "{stat}");
    assert!(stat.ends_with("rejected_calls=0,failed_calls=1"), "{stat}");
    assert_eq!(
        common::info_field(&mut admin, "stats", "total_error_replies").as_deref(),
        Some("1")
    );
}

#[test]
fn approximate_trims_remove_whole_nodes_of_the_configured_size() {
    let s = common::herald();
    let mut con = connect(&s);
    common::config_set(&mut con, "stream-node-max-entries", "10");
    for _ in 0..100 {
        let _: String = redis::cmd("XADD")
            .arg("s")
            .arg("*")
            .arg("f")
            .arg("v")
            .query(&mut con)
            .expect("xadd");
    }
    let xadd_trim = |con: &mut Connection| -> i64 {
        let _: String = redis::cmd("XADD")
            .arg("s")
            .arg("MAXLEN")
            .arg("~")
            .arg(55)
            .arg("LIMIT")
            .arg(30)
            .arg("*")
            .arg("f")
            .arg("v")
            .query(con)
            .expect("xadd");
        redis::cmd("XLEN").arg("s").query(con).expect("xlen")
    };
    // 101 entries in nodes of 10: three whole nodes fit under LIMIT 30.
    assert_eq!(xadd_trim(&mut con), 71);
    assert_eq!(xadd_trim(&mut con), 62);
    // A node larger than LIMIT is never cut.
    common::config_set(&mut con, "stream-node-max-entries", "2");
    let _: i64 = redis::cmd("DEL").arg("t").query(&mut con).expect("del");
    for _ in 0..3 {
        let _: String = redis::cmd("XADD")
            .arg("t")
            .arg("*")
            .arg("f")
            .arg("v")
            .query(&mut con)
            .expect("xadd");
    }
    let trim = |con: &mut Connection, limit: i64| -> i64 {
        redis::cmd("XTRIM")
            .arg("t")
            .arg("MAXLEN")
            .arg("~")
            .arg(0)
            .arg("LIMIT")
            .arg(limit)
            .query(con)
            .expect("xtrim")
    };
    assert_eq!(trim(&mut con, 1), 0);
    assert_eq!(trim(&mut con, 2), 2);
}
