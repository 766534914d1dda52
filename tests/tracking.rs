//! Integration tests of client-side caching (CLIENT TRACKING) against a
//! herald started in-process on a free port.
//!
//! RESP3 through the `redis` crate (push frames collected by its push
//! sender): a key read then changed by another client is invalidated
//! once; BCAST with a prefix; NOLOOP; OPTIN with CLIENT CACHING yes;
//! FLUSHALL's null; an invalidation caused by the client's own EXEC comes
//! after the EXEC reply; INFO's tracking fields. RESP2 in raw RESP: the
//! redirect mode, where the invalidation is a `message` on
//! `__redis__:invalidate` to the subscribed redirect client, and the
//! broken redirect once that client has gone; the error replies.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use redis::{PushInfo, PushKind, Value};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A RESP3 connection whose push frames go to the returned receiver (the
/// crate hands them over while it reads a reply).
fn resp3(s: &herald::server::ServerHandle) -> (redis::Connection, Receiver<PushInfo>) {
    let client =
        redis::Client::open(format!("redis://{}/?protocol=resp3", s.addr())).expect("client");
    let mut con = client.get_connection().expect("connect");
    con.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let (tx, rx) = channel();
    con.set_push_sender(tx);
    (con, rx)
}

fn cmd(con: &mut redis::Connection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).expect("command")
}

/// The `invalidate` pushes received so far (after a PING, so that the crate
/// reads what the server sent before it), as lists of keys (None: all).
fn invalidations(con: &mut redis::Connection, rx: &Receiver<PushInfo>) -> Vec<Option<Vec<String>>> {
    cmd(con, &["PING"]);
    rx.try_iter()
        .filter(|p| p.kind == PushKind::Invalidate)
        .map(|p| match p.data.first() {
            Some(Value::Array(keys)) => Some(keys.iter().map(common::text).collect()),
            _ => None,
        })
        .collect()
}

#[test]
fn resp3_read_key_is_invalidated_once_when_another_client_changes_it() {
    let s = common::herald();
    let (mut t, rx) = resp3(&s);
    let mut w = common::connect_redis(&s, TIMEOUT);
    cmd(&mut t, &["CLIENT", "TRACKING", "on"]);
    cmd(&mut t, &["SET", "k", "1"]);
    cmd(&mut t, &["GET", "k"]);
    cmd(&mut t, &["GET", "other"]);
    assert_eq!(common::info_u64(&mut w, "clients", "tracking_clients"), 1);
    assert_eq!(common::info_u64(&mut w, "stats", "tracking_total_keys"), 2);
    assert_eq!(common::info_u64(&mut w, "stats", "tracking_total_items"), 2);
    cmd(&mut w, &["SET", "k", "2"]);
    cmd(&mut w, &["SET", "k", "3"]);
    assert_eq!(
        invalidations(&mut t, &rx),
        vec![Some(vec!["k".to_string()])]
    );
    assert_eq!(common::info_u64(&mut w, "stats", "tracking_total_keys"), 1);
    cmd(&mut t, &["CLIENT", "TRACKING", "off"]);
    assert_eq!(common::info_u64(&mut w, "clients", "tracking_clients"), 0);
}

#[test]
fn resp3_bcast_prefix_noloop_optin_and_flush() {
    let s = common::herald();
    let mut w = common::connect_redis(&s, TIMEOUT);

    let (mut b, brx) = resp3(&s);
    cmd(
        &mut b,
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:", "NOLOOP",
        ],
    );
    assert_eq!(
        common::info_u64(&mut w, "stats", "tracking_total_prefixes"),
        1
    );
    cmd(&mut w, &["MSET", "user:1", "a", "item:1", "b"]);
    cmd(&mut b, &["SET", "user:2", "mine"]);
    assert_eq!(
        invalidations(&mut b, &brx),
        vec![Some(vec!["user:1".to_string()])]
    );

    let (mut o, orx) = resp3(&s);
    cmd(&mut o, &["CLIENT", "TRACKING", "on", "OPTIN"]);
    cmd(&mut o, &["GET", "x"]);
    cmd(&mut o, &["CLIENT", "CACHING", "yes"]);
    cmd(&mut o, &["GET", "y"]);
    cmd(&mut w, &["MSET", "x", "1", "y", "2"]);
    assert_eq!(
        invalidations(&mut o, &orx),
        vec![Some(vec!["y".to_string()])]
    );

    cmd(&mut w, &["FLUSHALL"]);
    assert_eq!(invalidations(&mut o, &orx), vec![None]);
    assert_eq!(invalidations(&mut b, &brx), vec![None]);
}

#[test]
fn resp3_invalidation_of_own_exec_follows_its_reply() {
    let s = common::herald();
    let mut raw = common::connect_raw(s.addr());
    raw.write_all(b"HELLO 3\r\n").expect("write");
    // HELLO's map: skip it by reading up to the next reply we send.
    raw.write_all(b"PING\r\n").expect("write");
    let mut seen = Vec::new();
    let mut b = [0u8; 1];
    while !seen.ends_with(b"+PONG\r\n") {
        raw.read_exact(&mut b).expect("read");
        seen.push(b[0]);
    }
    raw.write_all(b"CLIENT TRACKING on\r\nGET k\r\nMULTI\r\nSET k v\r\nEXEC\r\n")
        .expect("write");
    let want: &[u8] =
        b"+OK\r\n_\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n";
    let mut got = vec![0u8; want.len()];
    raw.read_exact(&mut got).expect("read");
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

/// Sends `cmd` inline and reads exactly `want.len()` bytes, which must be `want`.
fn exchange(s: &mut TcpStream, cmd: &str, want: &str) {
    if !cmd.is_empty() {
        s.write_all(format!("{cmd}\r\n").as_bytes()).expect("write");
    }
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).expect("read");
    assert_eq!(String::from_utf8_lossy(&got), want, "after {cmd:?}");
}

#[test]
fn resp2_redirect_sends_messages_on_the_invalidate_channel() {
    let s = common::herald();
    let mut r = common::connect_raw(s.addr());
    exchange(&mut r, "CLIENT ID", ":");
    let id = common::read_line(&mut r).trim().to_string();
    exchange(
        &mut r,
        "SUBSCRIBE __redis__:invalidate",
        "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n",
    );
    let mut t = common::connect_raw(s.addr());
    exchange(
        &mut t,
        &format!("CLIENT TRACKING on REDIRECT {id}"),
        "+OK\r\n",
    );
    exchange(&mut t, "CLIENT GETREDIR", &format!(":{id}\r\n"));
    exchange(&mut t, "GET a", "$-1\r\n");
    exchange(&mut t, "SET a 1", "+OK\r\n");
    exchange(
        &mut r,
        "",
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\na\r\n",
    );
    exchange(&mut t, "FLUSHDB", "+OK\r\n");
    exchange(
        &mut r,
        "",
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n",
    );

    drop(r);
    common::wait_until("the redirect client to go", TIMEOUT, || {
        let mut w = common::connect_redis(&s, TIMEOUT);
        common::info_u64(&mut w, "clients", "connected_clients") == 2
    });
    exchange(&mut t, "GET b", "$-1\r\n");
    exchange(&mut t, "SET b 1", "+OK\r\n");
    exchange(
        &mut t,
        "CLIENT TRACKINGINFO",
        &format!(
            "*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n\
             $8\r\nredirect\r\n:{id}\r\n$8\r\nprefixes\r\n*0\r\n"
        ),
    );
}

#[test]
fn tracking_errors_have_redis_texts() {
    let s = common::herald();
    let mut t = common::connect_raw(s.addr());
    let cases = [
        ("CLIENT TRACKING maybe", "-ERR syntax error\r\n"),
        ("CLIENT TRACKING on PREFIX a", "-ERR PREFIX option requires BCAST mode to be enabled\r\n"),
        ("CLIENT TRACKING on REDIRECT x", "-ERR value is not an integer or out of range\r\n"),
        ("CLIENT TRACKING on REDIRECT 999999", "-ERR The client ID you want redirect to does not exist\r\n"),
        ("CLIENT TRACKING on BCAST OPTIN", "-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n"),
        ("CLIENT TRACKING on OPTIN OPTOUT", "-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n"),
        (
            "CLIENT TRACKING on BCAST PREFIX ab PREFIX a",
            "-ERR Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a single client must not overlap.\r\n",
        ),
        (
            "CLIENT CACHING yes",
            "-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled\r\n",
        ),
        ("CLIENT GETREDIR", ":-1\r\n"),
        ("CLIENT TRACKING on OPTIN", "+OK\r\n"),
        (
            "CLIENT CACHING no",
            "-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n",
        ),
        ("CLIENT TRACKING on BCAST", "-ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.\r\n"),
        ("CLIENT TRACKING on OPTOUT", "-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.\r\n"),
        ("CLIENT GETREDIR", ":0\r\n"),
    ];
    for (cmd, want) in cases {
        exchange(&mut t, cmd, want);
    }
}
