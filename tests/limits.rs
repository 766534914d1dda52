//! Bounds on what a client can make the server hold: the pubsub
//! output-buffer limit cuts off a subscriber that does not read while the
//! others keep receiving everything in order; the query-buffer limit cuts
//! off an endless request; idle `timeout` closes idle clients but not
//! subscribers. Every wait is bounded: reads have timeouts, and the
//! server's counters, which nothing announces, are polled until a deadline.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use herald::config::BufferLimit;

/// Reads until `want` bytes arrived.
fn read_exact_n(s: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut buf = vec![0u8; want];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// Sends one command and returns the reply line (simple replies only).
fn cmd(s: &mut TcpStream, line: &str) -> String {
    s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    common::read_line(s).trim_end().to_string()
}

/// True once the peer has closed the connection (EOF or reset).
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 65536];
    let end = Instant::now() + within;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
        if Instant::now() > end {
            return false;
        }
    }
}

#[test]
fn slow_subscriber_is_cut_off_and_the_fast_one_gets_everything() {
    let srv = common::herald_with(|c| {
        c.client_output_buffer_limit.pubsub = BufferLimit {
            hard_bytes: 1 << 20,
            soft_bytes: 0,
            soft_seconds: 0,
        };
    });
    let shared = srv.shared().clone();
    let mut slow = common::connect_raw(srv.addr());
    assert!(cmd(&mut slow, "SUBSCRIBE flood").starts_with("*3"));
    read_exact_n(&mut slow, "$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n".len());
    let mut fast = common::connect_raw(srv.addr());
    fast.write_all(b"SUBSCRIBE flood\r\n").unwrap();
    read_exact_n(
        &mut fast,
        "*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:2\r\n".len(),
    );

    // The fast reader drains in a thread and checks the order.
    let n_msgs = 400usize;
    let payload_len = 64 * 1024;
    let reader = std::thread::spawn(move || {
        let mut seen = 0usize;
        let header_len = |i: usize| {
            let p = format!("{i:08}");
            let body_len = payload_len;
            format!("*3\r\n$7\r\nmessage\r\n$5\r\nflood\r\n${body_len}\r\n{}", p).len()
        };
        while seen < n_msgs {
            let h = read_exact_n(&mut fast, header_len(seen));
            let text = String::from_utf8_lossy(&h).to_string();
            assert!(
                text.ends_with(&format!("{seen:08}")),
                "out of order at {seen}"
            );
            read_exact_n(&mut fast, payload_len - 8 + 2);
            seen += 1;
        }
        // Hand the connection back so it stays open (subscribed) meanwhile.
        (seen, fast)
    });

    let mut publisher = common::connect_raw(srv.addr());
    let mut received_counts = Vec::new();
    for i in 0..n_msgs {
        let mut body = format!("{i:08}").into_bytes();
        body.resize(payload_len, b'x');
        let mut req =
            format!("*3\r\n$7\r\nPUBLISH\r\n$5\r\nflood\r\n${}\r\n", body.len()).into_bytes();
        req.extend_from_slice(&body);
        req.extend_from_slice(b"\r\n");
        publisher.write_all(&req).unwrap();
        received_counts.push(common::read_line(&mut publisher).trim_end().to_string());
    }
    // Publishing never blocked on the slow reader, and the fast one got all.
    let (seen, _fast) = reader.join().unwrap();
    assert_eq!(seen, n_msgs);
    assert_eq!(received_counts.first().map(String::as_str), Some(":2"));
    assert_eq!(received_counts.last().map(String::as_str), Some(":1"));
    common::wait_for_value(
        "client_output_buffer_limit_disconnections",
        Duration::from_secs(5),
        1,
        || {
            shared
                .stats
                .net
                .client_output_buffer_limit_disconnections
                .load(std::sync::atomic::Ordering::Relaxed)
        },
    );
    common::wait_for_value("NUMSUB flood", Duration::from_secs(5), 1, || {
        shared.engine.pubsub.channels.numsub(b"flood")
    });
    assert!(closed_by_server(&mut slow, Duration::from_secs(10)));
}

#[test]
fn endless_request_is_cut_off_at_the_query_buffer_limit() {
    let srv = common::herald_with(|c| c.client_query_buffer_limit = 1 << 20);
    let mut s = common::connect_raw(srv.addr());
    // A bulk announced at 100 MiB (allowed by proto-max-bulk-len) that never ends.
    s.write_all(b"*2\r\n$4\r\nECHO\r\n$104857600\r\n").unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < 8 << 20 {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert!(closed_by_server(&mut s, Duration::from_secs(10)));
    let stats = &srv.shared().stats.net;
    assert_eq!(
        stats
            .client_query_buffer_limit_disconnections
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // Everyone else is still served.
    let mut other = common::connect_raw(srv.addr());
    assert_eq!(cmd(&mut other, "PING"), "+PONG");
}

#[test]
fn idle_timeout_closes_idle_clients_but_not_subscribers() {
    let srv = common::herald_with(|c| c.timeout = 1);
    let mut idle = common::connect_raw(srv.addr());
    assert_eq!(cmd(&mut idle, "PING"), "+PONG");
    let mut sub = common::connect_raw(srv.addr());
    sub.write_all(b"SUBSCRIBE quiet\r\n").unwrap();
    read_exact_n(
        &mut sub,
        "*3\r\n$9\r\nsubscribe\r\n$5\r\nquiet\r\n:1\r\n".len(),
    );
    assert!(closed_by_server(&mut idle, Duration::from_secs(6)));
    // The subscriber, idle just as long, is still there.
    assert_eq!(srv.shared().engine.pubsub.channels.numsub(b"quiet"), 1);
    let mut p = common::connect_raw(srv.addr());
    assert_eq!(cmd(&mut p, "PUBLISH quiet hi"), ":1");
}

/// Reads until the server closes the connection; returns how many bytes
/// came first, or None if it stayed open for `within`.
fn bytes_until_closed(s: &mut TcpStream, within: Duration) -> Option<usize> {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 65536];
    let end = Instant::now() + within;
    let mut got = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
            Err(_) => return None,
        }
        if Instant::now() > end {
            return None;
        }
    }
}

/// The test process's peak resident memory in KiB (the server runs in it).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn reply_outgrowing_the_normal_hard_limit_is_cut_mid_run() {
    let srv = common::herald_with(|c| {
        c.client_output_buffer_limit.normal = BufferLimit {
            hard_bytes: 1_000_000,
            soft_bytes: 0,
            soft_seconds: 0,
        };
    });
    let mut other = common::connect_raw(srv.addr());
    assert_eq!(cmd(&mut other, "HSET myhash a b"), ":1");
    assert_eq!(cmd(&mut other, "SADD myset a"), ":1");
    assert_eq!(cmd(&mut other, "ZADD myzset 1 a"), ":1");
    let before = peak_rss_kib();
    // Each would be gigabytes if built whole: a billion picks of one member.
    let huge = [
        "HRANDFIELD myhash -999999999",
        "HRANDFIELD myhash -999999999 WITHVALUES",
        "SRANDMEMBER myset -999999999",
        "ZRANDMEMBER myzset -999999999 WITHSCORES",
    ];
    for (i, line) in huge.iter().enumerate() {
        for resp3 in [false, true] {
            let mut s = common::connect_raw(srv.addr());
            if resp3 {
                // HELLO's map, read up to the reply of the PING after it.
                s.write_all(b"HELLO 3\r\nPING\r\n").unwrap();
                while common::read_line(&mut s) != "+PONG\r\n" {}
            }
            // The command after it in the same write never runs: a client
            // closed for its output runs nothing more.
            s.write_all(format!("{line}\r\nSET after-{i}-{resp3} 1\r\n").as_bytes())
                .unwrap();
            assert_eq!(
                bytes_until_closed(&mut s, Duration::from_secs(20)),
                Some(0),
                "{line} (resp3: {resp3}): closed with nothing sent"
            );
            assert_eq!(cmd(&mut other, &format!("EXISTS after-{i}-{resp3}")), ":0");
        }
    }
    let stats = &srv.shared().stats.net;
    common::wait_until("8 output-limit disconnections", common::WAIT, || {
        stats
            .client_output_buffer_limit_disconnections
            .load(std::sync::atomic::Ordering::Relaxed)
            == 8
    });
    // Memory stayed near the limit's scale, far from the gigabytes a
    // whole reply takes (other tests of this binary share the process).
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 300, "peak memory grew by {grown_mib} MiB");
    assert_eq!(cmd(&mut other, "PING"), "+PONG");

    // KEYS over a keyspace whose names outgrow a 100 kB limit.
    assert_eq!(
        cmd(
            &mut other,
            "CONFIG SET client-output-buffer-limit \"normal 100000 0 0\""
        ),
        "+OK"
    );
    let prefix = "k".repeat(100);
    let mut mset = String::from("MSET");
    for i in 0..1000 {
        mset.push_str(&format!(" {prefix}{i} v"));
    }
    assert_eq!(cmd(&mut other, &mset), "+OK");
    let mut s = common::connect_raw(srv.addr());
    s.write_all(b"KEYS *\r\n").unwrap();
    assert_eq!(bytes_until_closed(&mut s, Duration::from_secs(20)), Some(0));

    // Under the limit, the same commands reply in full.
    let mut s = common::connect_raw(srv.addr());
    assert_eq!(cmd(&mut s, "HRANDFIELD myhash -3 WITHVALUES"), "*6");
    // Each bulk is two lines: its length, then its text.
    for _ in 0..12 {
        common::read_line(&mut s);
    }
    assert_eq!(cmd(&mut s, "SRANDMEMBER myset -2"), "*2");
    for _ in 0..4 {
        common::read_line(&mut s);
    }
    assert_eq!(cmd(&mut s, "PING"), "+PONG");
}

#[test]
fn subscriber_over_the_soft_limit_is_closed_when_its_time_is_up_without_more_traffic() {
    let srv = common::herald_with(|c| {
        c.client_output_buffer_limit.pubsub = BufferLimit {
            hard_bytes: 0,
            soft_bytes: 100_000,
            soft_seconds: 1,
        };
    });
    // A small receive window, so that the kernel holds little of what is
    // queued for the subscriber.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&srv.addr().into()).unwrap();
    let mut sub: TcpStream = socket.into();
    sub.set_read_timeout(Some(common::WAIT)).unwrap();
    assert!(cmd(&mut sub, "SUBSCRIBE quiet").starts_with("*3"));
    read_exact_n(&mut sub, "$9\r\nsubscribe\r\n$5\r\nquiet\r\n:1\r\n".len());
    // Enough to stay over the soft limit in the subscriber's queue (it
    // never reads) whatever the server's send buffer takes (at most 4 MiB
    // by default); then nothing more is published.
    let mut publisher = common::connect_raw(srv.addr());
    let payload = "x".repeat(64 * 1024);
    let subscriber = srv
        .shared()
        .clients
        .all()
        .into_iter()
        // It connected first.
        .min_by_key(|h| h.id)
        .expect("the subscriber's handle");
    let start = Instant::now();
    while subscriber.pending_bytes() <= 8 << 20 {
        assert!(
            start.elapsed() < common::WAIT,
            "queue never passed the soft limit"
        );
        assert_eq!(
            cmd(&mut publisher, &format!("PUBLISH quiet {payload}")),
            ":1"
        );
    }
    // Not read from: reading would drain the queue below the limit.
    common::wait_until("the quiet subscriber to be closed", common::WAIT, || {
        subscriber.overflowed()
    });
    assert_eq!(cmd(&mut publisher, "PING"), "+PONG");
}
