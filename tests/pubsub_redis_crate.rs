//! Integration tests of classic and sharded Pub/Sub through the `redis`
//! crate (0.27, tokio), against a herald started in-process on a free port.
//!
//! Covers: PUBLISH's receiver counts (0, 1, 3 subscribers), SUBSCRIBE and
//! message receipt with the crate's async `PubSub`, PSUBSCRIBE and
//! `pmessage` (`get_pattern`), a client subscribed to a channel and a
//! matching pattern getting `message` then `pmessage`, ordering (1000
//! messages from one publisher arrive in order at 3 subscribers),
//! UNSUBSCRIBE / PUNSUBSCRIBE stopping delivery, a disconnected subscriber
//! being removed (PUBSUB NUMSUB / NUMPAT back to 0), PUBSUB CHANNELS with
//! and without a pattern, PUBSUB NUMPAT, and SPUBLISH / SSUBSCRIBE /
//! PUBSUB SHARDCHANNELS / SHARDNUMSUB through raw commands on a
//! synchronous connection (kept apart from classic channels).
//!
//! Nothing here sleeps to wait for an event: receives have timeouts, and
//! server-side clean-up is awaited with a bounded poll.

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use herald::server::ServerHandle;
use redis::aio::{MultiplexedConnection, PubSub};
use redis::{Client, Msg, Value};

const TIMEOUT: Duration = Duration::from_secs(10);

fn server() -> (ServerHandle, Client) {
    let handle = common::herald();
    let client = Client::open(format!("redis://{}/", handle.addr())).expect("client");
    (handle, client)
}

async fn conn(client: &Client) -> MultiplexedConnection {
    client
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn pubsub(client: &Client) -> PubSub {
    client.get_async_pubsub().await.expect("pubsub connect")
}

async fn publish(con: &mut MultiplexedConnection, channel: &str, msg: &str) -> i64 {
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(msg)
        .query_async(con)
        .await
        .expect("PUBLISH")
}

async fn numsub(con: &mut MultiplexedConnection, channel: &str) -> i64 {
    let (name, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(con)
        .await
        .expect("PUBSUB NUMSUB");
    assert_eq!(name, channel);
    n
}

async fn numpat(con: &mut MultiplexedConnection) -> i64 {
    redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query_async(con)
        .await
        .expect("PUBSUB NUMPAT")
}

async fn channels(con: &mut MultiplexedConnection, pattern: Option<&str>) -> Vec<String> {
    let mut cmd = redis::cmd("PUBSUB");
    cmd.arg("CHANNELS");
    if let Some(p) = pattern {
        cmd.arg(p);
    }
    let mut v: Vec<String> = cmd.query_async(con).await.expect("PUBSUB CHANNELS");
    v.sort();
    v
}

/// The next message on `ps`, failing the test after [`TIMEOUT`].
async fn next_msg(ps: &mut PubSub) -> Msg {
    tokio::time::timeout(TIMEOUT, ps.on_message().next())
        .await
        .expect("timed out waiting for a message")
        .expect("pubsub stream closed")
}

fn payload(m: &Msg) -> String {
    m.get_payload().expect("string payload")
}

#[tokio::test]
async fn publish_counts_receivers() {
    let (_srv, client) = server();
    let mut con = conn(&client).await;
    assert_eq!(publish(&mut con, "news", "nobody").await, 0);

    let mut a = pubsub(&client).await;
    a.subscribe("news").await.unwrap();
    assert_eq!(publish(&mut con, "news", "one").await, 1);

    let mut b = pubsub(&client).await;
    b.subscribe("news").await.unwrap();
    let mut c = pubsub(&client).await;
    c.subscribe("news").await.unwrap();
    assert_eq!(publish(&mut con, "news", "three").await, 3);
    assert_eq!(numsub(&mut con, "news").await, 3);

    // Another channel is not counted.
    assert_eq!(publish(&mut con, "other", "x").await, 0);

    assert_eq!(payload(&next_msg(&mut a).await), "one");
    for ps in [&mut a, &mut b, &mut c] {
        assert_eq!(payload(&next_msg(ps).await), "three");
    }
}

#[tokio::test]
async fn subscribe_receives_messages() {
    let (_srv, client) = server();
    let mut con = conn(&client).await;
    let mut ps = pubsub(&client).await;
    ps.subscribe("chat").await.unwrap();

    assert_eq!(publish(&mut con, "chat", "hello").await, 1);
    let m = next_msg(&mut ps).await;
    assert_eq!(m.get_channel_name(), "chat");
    assert_eq!(payload(&m), "hello");
    assert!(!m.from_pattern());

    // Binary payloads arrive unchanged.
    let bin: Vec<u8> = (0..=255u8).collect();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("chat")
        .arg(&bin[..])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let m = next_msg(&mut ps).await;
    assert_eq!(m.get_payload_bytes(), &bin[..]);
}

#[tokio::test]
async fn psubscribe_receives_pattern_messages() {
    let (_srv, client) = server();
    let mut con = conn(&client).await;
    let mut ps = pubsub(&client).await;
    ps.psubscribe("news.*").await.unwrap();

    assert_eq!(publish(&mut con, "weather", "not for you").await, 0);
    assert_eq!(publish(&mut con, "news.tech", "rust 2.0").await, 1);
    let m = next_msg(&mut ps).await;
    assert!(m.from_pattern());
    assert_eq!(m.get_pattern::<String>().unwrap(), "news.*");
    assert_eq!(m.get_channel_name(), "news.tech");
    assert_eq!(payload(&m), "rust 2.0");

    // Redis glob rules: `?`, classes, escapes.
    ps.psubscribe("h[ae]llo?").await.unwrap();
    ps.psubscribe("lit\\*").await.unwrap();
    assert_eq!(publish(&mut con, "hallo!", "a").await, 1);
    assert_eq!(publish(&mut con, "hillo!", "b").await, 0);
    assert_eq!(publish(&mut con, "litX", "c").await, 0);
    assert_eq!(publish(&mut con, "lit*", "d").await, 1);
    let m = next_msg(&mut ps).await;
    assert_eq!(
        (m.get_pattern::<String>().unwrap(), payload(&m)),
        ("h[ae]llo?".to_string(), "a".to_string())
    );
    let m = next_msg(&mut ps).await;
    assert_eq!(
        (m.get_pattern::<String>().unwrap(), payload(&m)),
        ("lit\\*".to_string(), "d".to_string())
    );
    assert_eq!(numpat(&mut con).await, 3);
}

#[tokio::test]
async fn channel_and_pattern_give_message_then_pmessage() {
    let (_srv, client) = server();
    let mut con = conn(&client).await;
    let mut ps = pubsub(&client).await;
    ps.subscribe("news.tech").await.unwrap();
    ps.psubscribe("news.*").await.unwrap();
    ps.psubscribe("*tech").await.unwrap();

    // One delivery per subscription.
    assert_eq!(publish(&mut con, "news.tech", "both").await, 3);
    let first = next_msg(&mut ps).await;
    assert!(!first.from_pattern(), "the channel's message comes first");
    assert_eq!(first.get_channel_name(), "news.tech");
    assert_eq!(payload(&first), "both");
    let mut patterns = Vec::new();
    for _ in 0..2 {
        let m = next_msg(&mut ps).await;
        assert!(m.from_pattern());
        assert_eq!(m.get_channel_name(), "news.tech");
        assert_eq!(payload(&m), "both");
        patterns.push(m.get_pattern::<String>().unwrap());
    }
    patterns.sort();
    assert_eq!(patterns, ["*tech", "news.*"]);
}

#[tokio::test]
async fn one_publisher_order_is_kept_for_every_subscriber() {
    const N: usize = 1000;
    let (_srv, client) = server();
    let mut con = conn(&client).await;
    let mut subs = Vec::new();
    for _ in 0..3 {
        let mut ps = pubsub(&client).await;
        ps.subscribe("seq").await.unwrap();
        subs.push(ps);
    }

    let mut pipe = redis::pipe();
    for i in 0..N {
        pipe.cmd("PUBLISH").arg("seq").arg(i.to_string());
    }
    let counts: Vec<i64> = pipe.query_async(&mut con).await.unwrap();
    assert_eq!(counts.len(), N);
    assert!(counts.iter().all(|&c| c == 3), "every PUBLISH reaches 3");

    for ps in &mut subs {
        for i in 0..N {
            let m = next_msg(ps).await;
            assert_eq!(m.get_channel_name(), "seq");
            assert_eq!(payload(&m), i.to_string());
        }
    }
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let (_srv, client) = server();
    let mut con = conn(&client).await;
    let mut ps = pubsub(&client).await;
    ps.subscribe("a").await.unwrap();
    ps.subscribe("b").await.unwrap();
    ps.psubscribe("p.*").await.unwrap();
    assert_eq!(publish(&mut con, "a", "1").await, 1);
    assert_eq!(payload(&next_msg(&mut ps).await), "1");

    ps.unsubscribe("a").await.unwrap();
    ps.punsubscribe("p.*").await.unwrap();
    assert_eq!(publish(&mut con, "a", "lost").await, 0);
    assert_eq!(publish(&mut con, "p.x", "lost").await, 0);
    assert_eq!(numsub(&mut con, "a").await, 0);
    assert_eq!(numpat(&mut con).await, 0);
    // The next message to arrive is b's: the others were not delivered.
    assert_eq!(publish(&mut con, "b", "2").await, 1);
    let m = next_msg(&mut ps).await;
    assert_eq!((m.get_channel_name(), payload(&m).as_str()), ("b", "2"));
}

#[tokio::test]
async fn disconnected_subscriber_is_removed() {
    let (_srv, client) = server();
    let mut con = conn(&client).await;
    let mut ps = pubsub(&client).await;
    ps.subscribe("gone").await.unwrap();
    ps.subscribe("also-gone").await.unwrap();
    ps.psubscribe("gone.*").await.unwrap();
    let mut stays = pubsub(&client).await;
    stays.subscribe("also-gone").await.unwrap();
    assert_eq!(numsub(&mut con, "gone").await, 1);
    assert_eq!(numsub(&mut con, "also-gone").await, 2);
    assert_eq!(numpat(&mut con).await, 1);

    drop(ps); // closes the socket

    common::wait_for_value_async("NUMSUB gone", TIMEOUT, 0, || {
        let mut con = con.clone();
        async move { numsub(&mut con, "gone").await }
    })
    .await;
    common::wait_for_value_async("NUMPAT", TIMEOUT, 0, || {
        let mut con = con.clone();
        async move { numpat(&mut con).await }
    })
    .await;
    assert_eq!(numsub(&mut con, "also-gone").await, 1);
    assert_eq!(channels(&mut con, None).await, ["also-gone"]);
    assert_eq!(publish(&mut con, "gone", "x").await, 0);
    assert_eq!(publish(&mut con, "gone.x", "x").await, 0);
    assert_eq!(publish(&mut con, "also-gone", "y").await, 1);
    assert_eq!(payload(&next_msg(&mut stays).await), "y");
}

#[tokio::test]
async fn pubsub_channels_with_pattern() {
    let (_srv, client) = server();
    let mut con = conn(&client).await;
    assert!(channels(&mut con, None).await.is_empty());

    let mut ps = pubsub(&client).await;
    for ch in ["news.tech", "news.sport", "weather", "w*ird"] {
        ps.subscribe(ch).await.unwrap();
    }
    // A pattern subscription is not a channel.
    ps.psubscribe("news.*").await.unwrap();

    assert_eq!(
        channels(&mut con, None).await,
        ["news.sport", "news.tech", "w*ird", "weather"]
    );
    assert_eq!(
        channels(&mut con, Some("news.*")).await,
        ["news.sport", "news.tech"]
    );
    assert_eq!(channels(&mut con, Some("w?ather")).await, ["weather"]);
    assert_eq!(channels(&mut con, Some("w\\*ird")).await, ["w*ird"]);
    assert_eq!(
        channels(&mut con, Some("*[dt]")).await,
        ["news.sport", "w*ird"]
    );
    assert!(channels(&mut con, Some("nothing*")).await.is_empty());

    ps.unsubscribe("news.sport").await.unwrap();
    assert_eq!(channels(&mut con, Some("news.*")).await, ["news.tech"]);
}

#[tokio::test]
async fn numpat_counts_distinct_patterns() {
    let (_srv, client) = server();
    let mut con = conn(&client).await;
    assert_eq!(numpat(&mut con).await, 0);

    let mut a = pubsub(&client).await;
    a.psubscribe("x.*").await.unwrap();
    a.psubscribe("y.*").await.unwrap();
    let mut b = pubsub(&client).await;
    b.psubscribe("x.*").await.unwrap();
    assert_eq!(numpat(&mut con).await, 2);
    // Channel subscriptions are not patterns.
    b.subscribe("x.*").await.unwrap();
    assert_eq!(numpat(&mut con).await, 2);
    assert_eq!(publish(&mut con, "x.1", "m").await, 2);

    a.punsubscribe("x.*").await.unwrap();
    a.punsubscribe("y.*").await.unwrap();
    assert_eq!(numpat(&mut con).await, 1);
    b.punsubscribe("x.*").await.unwrap();
    assert_eq!(numpat(&mut con).await, 0);
}

fn value_strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Push { data: items, .. } => items
            .iter()
            .map(|i| match i {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                Value::Int(n) => n.to_string(),
                Value::Nil => "(nil)".into(),
                other => format!("{other:?}"),
            })
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

#[test]
fn sharded_pubsub_with_raw_commands() {
    let (_srv, client) = server();
    let mut sub = client.get_connection().unwrap();
    sub.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut con = client.get_connection().unwrap();

    sub.send_packed_command(&redis::cmd("SSUBSCRIBE").arg("orders").get_packed_command())
        .unwrap();
    assert_eq!(
        value_strings(&sub.recv_response().unwrap()),
        ["ssubscribe", "orders", "1"]
    );
    sub.send_packed_command(&redis::cmd("SSUBSCRIBE").arg("stock").get_packed_command())
        .unwrap();
    assert_eq!(
        value_strings(&sub.recv_response().unwrap()),
        ["ssubscribe", "stock", "2"]
    );

    // Kept apart from classic Pub/Sub.
    let n: i64 = redis::cmd("PUBLISH")
        .arg("orders")
        .arg("classic")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 0);
    let chans: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query(&mut con)
        .unwrap();
    assert!(chans.is_empty());
    let mut shard: Vec<String> = redis::cmd("PUBSUB")
        .arg("SHARDCHANNELS")
        .query(&mut con)
        .unwrap();
    shard.sort();
    assert_eq!(shard, ["orders", "stock"]);
    let shard: Vec<String> = redis::cmd("PUBSUB")
        .arg("SHARDCHANNELS")
        .arg("o*")
        .query(&mut con)
        .unwrap();
    assert_eq!(shard, ["orders"]);
    let numsub: (String, i64, String, i64) = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg("orders")
        .arg("nope")
        .query(&mut con)
        .unwrap();
    assert_eq!(numsub, ("orders".into(), 1, "nope".into(), 0));

    let n: i64 = redis::cmd("SPUBLISH")
        .arg("orders")
        .arg("o-1")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        value_strings(&sub.recv_response().unwrap()),
        ["smessage", "orders", "o-1"]
    );
    let n: i64 = redis::cmd("SPUBLISH")
        .arg("unheard")
        .arg("x")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 0);

    sub.send_packed_command(
        &redis::cmd("SUNSUBSCRIBE")
            .arg("orders")
            .get_packed_command(),
    )
    .unwrap();
    assert_eq!(
        value_strings(&sub.recv_response().unwrap()),
        ["sunsubscribe", "orders", "1"]
    );
    let n: i64 = redis::cmd("SPUBLISH")
        .arg("orders")
        .arg("o-2")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = redis::cmd("SPUBLISH")
        .arg("stock")
        .arg("s-1")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    // o-2 was not delivered: the next frame is stock's.
    assert_eq!(
        value_strings(&sub.recv_response().unwrap()),
        ["smessage", "stock", "s-1"]
    );
}
