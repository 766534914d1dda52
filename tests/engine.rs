//! One path for every write: the same commands run by a client over TCP
//! and by a caller without a connection (the server's internal client,
//! through which the AOF loader runs, and scripts and a primary's stream
//! will) produce the same keyspace events, in the same order, and the same
//! records in the append-only file, because both go through the engine's
//! acquire / release and its effects record.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

/// Writes of every kind, several of which are logged as a rewrite of
/// themselves (INCRBYFLOAT as SET, EXPIREAT as PEXPIREAT, LPOP as its
/// count form), plus a transaction. `{}` is replaced by a suffix that
/// tells whose command it was.
const COMMANDS: &[&str] = &[
    "SET str{} hello",
    "INCRBYFLOAT num{} 1.5",
    "LPUSH list{} a b c",
    "LPOP list{}",
    "HSET hash{} f v",
    "EXPIREAT str{} 4000000000",
    "SADD set{} m",
    "XADD stream{} 1-1 f v",
    "ZADD zset{} 1 m",
    "DEL hash{}",
    "MULTI",
    "INCR n{}",
    "RPUSH list{} z",
    "EXEC",
];

fn args(line: &str, suffix: &str) -> Vec<String> {
    line.replace("{}", suffix)
        .split(' ')
        .map(str::to_string)
        .collect()
}

/// The RESP arrays of an AOF file, each as its words.
fn records(data: &[u8]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut lines = data
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    while let Some(head) = lines.next() {
        let Some(n) = head.strip_prefix(b"*") else {
            continue;
        };
        let n: usize = String::from_utf8_lossy(n).parse().expect("array length");
        let mut words = Vec::with_capacity(n);
        for _ in 0..n {
            let _len = lines.next();
            words.push(String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned());
        }
        out.push(words);
    }
    out
}

/// The records that are about keys ending in `suffix` (or the MULTI /
/// EXEC around them), with the suffix taken out.
fn records_of(all: &[Vec<String>], suffix: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut in_multi = false;
    let mut multi_mine = false;
    let mut pending: Vec<Vec<String>> = Vec::new();
    for r in all {
        match r[0].as_str() {
            "SELECT" => continue,
            "MULTI" => {
                in_multi = true;
                multi_mine = false;
                pending = vec![r.clone()];
                continue;
            }
            "EXEC" => {
                in_multi = false;
                pending.push(r.clone());
                if multi_mine {
                    out.append(&mut pending);
                }
                pending.clear();
                continue;
            }
            _ => {}
        }
        let mine = r.get(1).is_some_and(|k| k.ends_with(suffix));
        let r: Vec<String> = r
            .iter()
            .map(|w| w.strip_suffix(suffix).unwrap_or(w).to_string())
            .collect();
        if in_multi {
            multi_mine |= mine;
            pending.push(r);
        } else if mine {
            out.push(r);
        }
    }
    out
}

/// Keyspace events received until the fence message, with `suffix` taken
/// out of channel and payload.
fn events_until_fence(sub: &mut redis::PubSub<'_>, suffix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let m = sub.get_message().expect("a message before the timeout");
        let channel = m.get_channel_name().to_string();
        let payload: String = m.get_payload().expect("text payload");
        if channel == "fence" {
            assert_eq!(payload, suffix, "fences arrive in order");
            return out;
        }
        let strip = |s: &str| s.replace(suffix, "");
        out.push((strip(&channel), strip(&payload)));
    }
}

#[test]
fn a_command_without_a_connection_has_a_clients_effects() {
    let dir = common::temp_dir("engine-one-path");
    let srv = common::herald_with(|c| {
        c.appendonly = true;
        c.appendfsync = herald::config::AppendFsync::Always;
        c.dir = dir.clone();
        c.notify_keyspace_events = "KEA".into();
    });
    let client = redis::Client::open(format!("redis://{}/", srv.addr())).expect("client");
    let mut watcher = client.get_connection().expect("subscriber");
    watcher
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut sub = watcher.as_pubsub();
    sub.psubscribe("__key*@0__:*").expect("psubscribe");
    sub.subscribe("fence").expect("subscribe");

    // A client over TCP.
    let mut con = client.get_connection().expect("connection");
    for line in COMMANDS {
        let a = args(line, "-tcp");
        let mut cmd = redis::cmd(&a[0]);
        for x in &a[1..] {
            cmd.arg(x);
        }
        let _: redis::Value = cmd.query(&mut con).expect("command");
    }
    let _: i64 = redis::cmd("PUBLISH")
        .arg("fence")
        .arg("-tcp")
        .query(&mut con)
        .expect("publish");
    let from_client = events_until_fence(&mut sub, "-tcp");

    // The same commands through the engine by a caller with no connection.
    let mut internal = herald::Client::internal(srv.shared().clone());
    for line in COMMANDS {
        let a = args(line, "-int");
        herald::execute(&mut internal, a.into_iter().map(Bytes::from).collect());
        assert!(
            !internal.out.starts_with(b"-"),
            "{line}: {}",
            String::from_utf8_lossy(&internal.out)
        );
        internal.out.clear();
    }
    herald::execute(
        &mut internal,
        vec!["PUBLISH".into(), "fence".into(), "-int".into()],
    );
    let from_internal = events_until_fence(&mut sub, "-int");

    assert!(from_client.len() >= COMMANDS.len(), "{from_client:?}");
    assert_eq!(from_internal, from_client, "keyspace events");

    // The log: the internal caller's records reach the file too (its
    // effects are appended like anyone's; nobody waits on its reply).
    let incr = dir.join("appendonlydir").join("appendonly.aof.1.incr.aof");
    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    let mut by_client = Vec::new();
    let mut by_internal = Vec::new();
    common::wait_until(
        "the internal caller's records in the AOF",
        common::WAIT,
        || {
            let all = records(&read(&incr));
            by_client = records_of(&all, "-tcp");
            by_internal = records_of(&all, "-int");
            by_internal.len() >= by_client.len()
        },
    );
    assert!(
        by_client.iter().any(|r| r[0] == "PEXPIREAT"),
        "EXPIREAT is logged as its rewrite: {by_client:?}"
    );
    assert!(by_client.iter().any(|r| r[0] == "MULTI"), "{by_client:?}");
    assert_eq!(by_internal, by_client, "AOF records");
    srv.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
