//! Raw RESP over TCP (`std::net::TcpStream` with read timeouts) against a
//! herald started in-process on a free port, with replies compared byte
//! for byte with what redis-server 7.0 sends.
//!
//! Covers: pipelining (100 commands in one write give 100 replies in
//! order, multibulk and inline mixed), commands split over many writes,
//! inline commands (quoting, blank lines, LF-only line ends), protocol
//! errors (the exact `-ERR Protocol error: ...` line, replies to the
//! commands before it, then the connection closed), the 64 KiB inline
//! limit (and a NUL byte hiding a line end, as Redis's `strchr` does), the
//! RESP2 subscribed context, and RESP3 push frames after
//! `HELLO 3` (subscribe confirmations, `message` / `pmessage`, ordinary
//! commands answered while subscribed, CLIENT REPLY OFF not silencing
//! pushes).
//!
//! Nothing here sleeps: reads have timeouts, and every wait is a read.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use herald::server::ServerHandle;

/// A client connection with a read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// Bytes shown with escapes, for failure messages.
fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        let stream = common::connect_raw(addr);
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads more bytes into the buffer; false on EOF.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("timed out; received so far: {}", show(&self.buf))
            }
            Err(e) => panic!("read error {e}; received so far: {}", show(&self.buf)),
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(
                self.fill(),
                "EOF after {} of {n} bytes: {}",
                self.buf.len(),
                show(&self.buf)
            );
        }
        self.buf.drain(..n).collect()
    }

    /// The next `expected.len()` bytes must be exactly `expected`.
    fn expect(&mut self, expected: &[u8]) {
        let got = self.take(expected.len());
        assert_eq!(show(&got), show(expected));
    }

    fn line(&mut self) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return self.buf.drain(..i + 2).collect();
            }
            assert!(self.fill(), "EOF inside a line: {}", show(&self.buf));
        }
    }

    /// One whole RESP2/RESP3 reply, as the raw bytes.
    fn reply(&mut self) -> Vec<u8> {
        let mut out = self.line();
        let head = out[0];
        let num = || -> i64 {
            std::str::from_utf8(&out[1..out.len() - 2])
                .unwrap()
                .parse()
                .unwrap_or(-1)
        };
        match head {
            b'$' | b'=' | b'!' => {
                let n = num();
                if n >= 0 {
                    out.extend(self.take(n as usize + 2));
                }
            }
            b'*' | b'~' | b'>' => {
                for _ in 0..num().max(0) {
                    out.extend(self.reply());
                }
            }
            b'%' => {
                for _ in 0..num() * 2 {
                    out.extend(self.reply());
                }
            }
            b'|' => {
                for _ in 0..num() * 2 {
                    out.extend(self.reply());
                }
                out.extend(self.reply());
            }
            _ => {}
        }
        out
    }

    /// The server must close the connection with nothing more to read.
    fn expect_closed(&mut self) {
        assert!(self.buf.is_empty(), "unexpected bytes: {}", show(&self.buf));
        let mut b = [0u8; 64];
        match self.stream.read(&mut b) {
            Ok(0) => {}
            Ok(n) => panic!("expected EOF, got {}", show(&b[..n])),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected EOF, got error {e}"),
        }
    }
}

fn bulk(s: &[u8]) -> Vec<u8> {
    [format!("${}\r\n", s.len()).as_bytes(), s, b"\r\n"].concat()
}

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(bulk(a));
    }
    out
}

#[test]
fn pipelined_pings_in_one_write() {
    let srv = common::herald();
    let mut c = Conn::new(srv.addr());
    c.send(&b"*1\r\n$4\r\nPING\r\n".repeat(100));
    c.expect(&b"+PONG\r\n".repeat(100));
    // Inline, too.
    c.send(&b"PING\r\n".repeat(100));
    c.expect(&b"+PONG\r\n".repeat(100));
    // Numbered, to check the order.
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..100 {
        let s = i.to_string();
        req.extend(multibulk(&[b"ECHO", s.as_bytes()]));
        want.extend(bulk(s.as_bytes()));
    }
    c.send(&req);
    c.expect(&want);
}

#[test]
fn pipeline_mixes_multibulk_and_inline() {
    let srv = common::herald();
    let mut c = Conn::new(srv.addr());
    c.send(b"PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nECHO \"a b\"\n*0\r\n\r\nPING x\r\n");
    c.expect(b"+PONG\r\n$2\r\nhi\r\n$3\r\na b\r\n$1\r\nx\r\n");
}

#[test]
fn command_split_over_many_writes() {
    let srv = common::herald();
    let mut c = Conn::new(srv.addr());
    let req = multibulk(&[b"ECHO", b"split\r\nacross writes"]);
    for byte in &req {
        c.send(std::slice::from_ref(byte));
    }
    c.expect(&bulk(b"split\r\nacross writes"));
    for byte in b"ECHO inline\r\n" {
        c.send(std::slice::from_ref(byte));
    }
    c.expect(&bulk(b"inline"));
}

#[test]
fn inline_commands() {
    let srv = common::herald();
    let mut c = Conn::new(srv.addr());
    c.send(b"PING\r\n");
    c.expect(b"+PONG\r\n");
    c.send(b"PING\n");
    c.expect(b"+PONG\r\n");
    c.send(b"ping hello\r\n");
    c.expect(b"$5\r\nhello\r\n");
    // Blank lines are skipped; blanks around arguments are ignored.
    c.send(b"\r\n\n   \r\n \t ECHO   x  \r\n");
    c.expect(b"$1\r\nx\r\n");
    // Quoting, as sdssplitargs.
    c.send(b"ECHO \"a\\x41\\n\\\"b\"\r\n");
    c.expect(b"$5\r\naA\n\"b\r\n");
    c.send(b"ECHO 'it\\'s'\r\n");
    c.expect(b"$4\r\nit's\r\n");
    c.send(b"ECHO \"\"\r\n");
    c.expect(b"$0\r\n\r\n");
    c.send(b"NOSUCH arg1 arg2\r\n");
    c.expect(b"-ERR unknown command 'NOSUCH', with args beginning with: 'arg1' 'arg2' \r\n");
    c.send(b"ECHO\r\n");
    c.expect(b"-ERR wrong number of arguments for 'echo' command\r\n");
}

/// Sends `input` on a new connection: `replies` must come first, then the
/// protocol error `error`, then the connection is closed.
fn protocol_error(srv: &ServerHandle, input: &[u8], replies: &[u8], error: &str) {
    let mut c = Conn::new(srv.addr());
    c.send(input);
    c.expect(replies);
    c.expect(format!("-ERR Protocol error: {error}\r\n").as_bytes());
    c.expect_closed();
}

#[test]
fn protocol_errors_close_the_connection() {
    let srv = common::herald();
    for (input, error) in [
        (&b"*x\r\n"[..], "invalid multibulk length"),
        (b"*-\r\n", "invalid multibulk length"),
        (b"*01\r\n", "invalid multibulk length"),
        (b"*2147483648\r\n", "invalid multibulk length"),
        (b"*1\r\n!3\r\n", "expected '$', got '!'"),
        // A line end in the message is sent as a space.
        (b"*1\r\n\r\n", "expected '$', got ' '"),
        (b"*2\r\n$4\r\nECHO\r\n\n\r\n", "expected '$', got ' '"),
        (b"*2\r\n$4\r\nECHO\r\n*1\r\n", "expected '$', got '*'"),
        (b"*1\r\n$-3\r\n", "invalid bulk length"),
        (b"*1\r\n$x\r\n", "invalid bulk length"),
        (b"*1\r\n$536870913\r\n", "invalid bulk length"),
        (b"ECHO \"a\r\n", "unbalanced quotes in request"),
        (b"ECHO \"a\"b\r\n", "unbalanced quotes in request"),
        (b"ECHO 'a\r\n", "unbalanced quotes in request"),
    ] {
        protocol_error(&srv, input, b"", error);
    }
}

#[test]
fn replies_before_a_protocol_error_are_sent() {
    let srv = common::herald();
    protocol_error(
        &srv,
        b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n",
        b"+PONG\r\n+PONG\r\n",
        "invalid multibulk length",
    );
    // The exact request from the brief.
    let mut c = Conn::new(srv.addr());
    c.send(b"*x\r\n");
    c.expect(b"-ERR Protocol error: invalid multibulk length\r\n");
    c.expect_closed();
}

#[test]
fn too_big_inline_request() {
    let srv = common::herald();
    // 64 KiB + 1 with no newline: the server reads all of it, then gives up.
    let mut input = b"ECHO ".to_vec();
    input.resize(64 * 1024 + 1, b'a');
    protocol_error(&srv, &input, b"", "too big inline request");
    // Redis finds line ends with strchr: a NUL hides the newline, and the
    // line runs on until the limit (no PONG here).
    // (`consumed`: the bytes parsed before the unfinished line.)
    for (head, consumed, error) in [
        (&b"PING\0\r\nPING\r\n"[..], 0, "too big inline request"),
        (b"*1\0\r\n$4\r\nPING\r\n", 0, "too big mbulk count string"),
        (b"*1\r\n$4\0\r\nPING\r\n", 4, "too big bulk count string"),
    ] {
        let mut input = head.to_vec();
        input.resize(consumed + 64 * 1024 + 1, b'a');
        protocol_error(&srv, &input, b"", error);
    }
    // A long multibulk argument is fine: the limit is on lines.
    let big = vec![b'b'; 200 * 1024];
    let mut c = Conn::new(srv.addr());
    c.send(&multibulk(&[b"ECHO", &big]));
    c.expect(&bulk(&big));
}

#[test]
fn resp2_subscribed_context() {
    let srv = common::herald();
    let mut c = Conn::new(srv.addr());
    c.send(&multibulk(&[b"SUBSCRIBE", b"news", b"sport"]));
    c.expect(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    c.expect(b"*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n");
    c.send(b"PING\r\n");
    c.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    c.send(b"PING hi\r\n");
    c.expect(b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    c.send(b"ECHO x\r\n");
    c.expect(
        b"-ERR Can't execute 'echo': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );

    let mut p = Conn::new(srv.addr());
    p.send(&multibulk(&[b"PUBLISH", b"news", b"hello"]));
    p.expect(b":1\r\n");
    c.expect(b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");

    // Without arguments: every channel, in the registry's order (Redis's
    // is its dict's), the count going down.
    c.send(b"UNSUBSCRIBE\r\n");
    let first = c.reply();
    let second = c.reply();
    let (a, b) = (
        b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n".as_slice(),
        b"*3\r\n$11\r\nunsubscribe\r\n$5\r\nsport\r\n".as_slice(),
    );
    let (x, y) = if first.starts_with(a) { (a, b) } else { (b, a) };
    assert_eq!(show(&first), show(&[x, b":1\r\n"].concat()));
    assert_eq!(show(&second), show(&[y, b":0\r\n"].concat()));
    // Out of the subscribed context again.
    c.send(b"PING\r\n");
    c.expect(b"+PONG\r\n");
}

#[test]
fn resp3_push_frames_after_hello_3() {
    let srv = common::herald();
    let mut c = Conn::new(srv.addr());
    c.send(b"HELLO 3\r\n");
    let hello = c.reply();
    assert!(
        hello.starts_with(b"%"),
        "HELLO 3 replies a map: {}",
        show(&hello)
    );
    let proto3 = b"$5\r\nproto\r\n:3\r\n";
    assert!(
        hello.windows(proto3.len()).any(|w| w == proto3),
        "proto 3 in {}",
        show(&hello)
    );

    c.send(&multibulk(&[b"SUBSCRIBE", b"news"]));
    c.expect(b">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    c.send(&multibulk(&[b"PSUBSCRIBE", b"n*"]));
    c.expect(b">3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n");

    // Any command is allowed while subscribed in RESP3, with its normal reply.
    c.send(b"PING\r\n");
    c.expect(b"+PONG\r\n");
    c.send(b"ECHO x\r\n");
    c.expect(b"$1\r\nx\r\n");

    let mut p = Conn::new(srv.addr());
    p.send(&multibulk(&[b"PUBLISH", b"news", b"hi"]));
    p.expect(b":2\r\n");
    c.expect(b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    c.expect(b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");

    // CLIENT REPLY OFF silences replies, not pushes.
    c.send(b"CLIENT REPLY OFF\r\nPING\r\n");
    p.send(&multibulk(&[b"PUBLISH", b"nx", b"still"]));
    p.expect(b":1\r\n");
    c.expect(b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$2\r\nnx\r\n$5\r\nstill\r\n");
    c.send(b"CLIENT REPLY ON\r\n");
    c.expect(b"+OK\r\n");

    c.send(&multibulk(&[b"UNSUBSCRIBE", b"news"]));
    c.expect(b">3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    c.send(&multibulk(&[b"PUNSUBSCRIBE"]));
    c.expect(b">3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n");
    // Sharded messages are pushes too.
    c.send(&multibulk(&[b"SSUBSCRIBE", b"s"]));
    c.expect(b">3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n");
    p.send(&multibulk(&[b"SPUBLISH", b"s", b"m"]));
    p.expect(b":1\r\n");
    c.expect(b">3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nm\r\n");
}

/// A publisher's messages are written to subscribers at the end of its
/// batch (by the publisher's task): a batch cut short by the publisher
/// closing, one that ends in QUIT, and one that ends in a blocking command
/// all still deliver every message, in order; and a subscriber that
/// publishes to its own channel gets the message before the reply, as from
/// redis-server 7.0 (checked by hand against it).
#[test]
fn messages_of_a_batch_are_delivered_however_it_ends() {
    let srv = common::herald();
    let mut s = Conn::new(srv.addr());
    s.send(&multibulk(&[b"SUBSCRIBE", b"ch"]));
    s.expect(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    let message = |i: usize| {
        let payload = format!("m{i}");
        [
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n".as_slice(),
            &bulk(payload.as_bytes()),
        ]
        .concat()
    };
    let batch = |from: usize, n: usize| {
        (from..from + n)
            .flat_map(|i| multibulk(&[b"PUBLISH", b"ch", format!("m{i}").as_bytes()]))
            .collect::<Vec<u8>>()
    };
    // Closed right after the batch, without reading a reply.
    {
        let mut p = Conn::new(srv.addr());
        p.send(&batch(0, 100));
        p.stream.shutdown(std::net::Shutdown::Both).unwrap();
    }
    for i in 0..100 {
        s.expect(&message(i));
    }
    // Ends in QUIT.
    let mut p = Conn::new(srv.addr());
    p.send(&[batch(100, 10), b"QUIT\r\n".to_vec()].concat());
    for _ in 0..10 {
        p.expect(b":1\r\n");
    }
    p.expect(b"+OK\r\n");
    p.expect_closed();
    for i in 100..110 {
        s.expect(&message(i));
    }
    // Ends in a blocking command that blocks.
    let mut p = Conn::new(srv.addr());
    p.send(&[batch(110, 10), multibulk(&[b"BLPOP", b"nothing", b"0"])].concat());
    for _ in 0..10 {
        p.expect(b":1\r\n");
    }
    for i in 110..120 {
        s.expect(&message(i));
    }
    // A RESP3 subscriber publishing to itself: the push, then the reply.
    let mut c = Conn::new(srv.addr());
    c.send(b"HELLO 3\r\n");
    c.reply();
    c.send(
        &[
            multibulk(&[b"SUBSCRIBE", b"me"]),
            multibulk(&[b"PUBLISH", b"me", b"hi"]),
        ]
        .concat(),
    );
    c.expect(b">3\r\n$9\r\nsubscribe\r\n$2\r\nme\r\n:1\r\n");
    c.expect(b">3\r\n$7\r\nmessage\r\n$2\r\nme\r\n$2\r\nhi\r\n");
    c.expect(b":1\r\n");
}

/// `pubsub-coalesce-us` (herald's own, hidden from CONFIG GET * so that the
/// listing stays Redis's): readable by name, settable, range-checked; with
/// holding off (0) and on, a subscriber gets every message, in order.
#[test]
fn coalesce_option_reads_sets_and_delivers_either_way() {
    let srv = common::herald();
    let mut c = Conn::new(srv.addr());
    let get = multibulk(&[b"CONFIG", b"GET", b"pubsub-coalesce-us"]);
    c.send(&get);
    c.expect(b"*2\r\n$18\r\npubsub-coalesce-us\r\n$3\r\n200\r\n");
    c.send(&multibulk(&[b"CONFIG", b"GET", b"*"]));
    let all = c.reply();
    assert!(
        !all.windows(18).any(|w| w == b"pubsub-coalesce-us"),
        "CONFIG GET * lists herald's own option"
    );
    c.send(&multibulk(&[
        b"CONFIG",
        b"SET",
        b"pubsub-coalesce-us",
        b"10001",
    ]));
    let err = c.line();
    assert!(
        err.starts_with(
            b"-ERR CONFIG SET failed (possibly related to argument 'pubsub-coalesce-us')"
        ),
        "{}",
        show(&err)
    );
    let mut s = Conn::new(srv.addr());
    s.send(&multibulk(&[b"SUBSCRIBE", b"ch"]));
    s.expect(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    for (round, window) in [b"0".as_slice(), b"1000", b"200"].into_iter().enumerate() {
        c.send(&multibulk(&[
            b"CONFIG",
            b"SET",
            b"pubsub-coalesce-us",
            window,
        ]));
        c.expect(b"+OK\r\n");
        let pubs: Vec<u8> = (0..200)
            .flat_map(|i| multibulk(&[b"PUBLISH", b"ch", format!("{round}-{i}").as_bytes()]))
            .collect();
        c.send(&pubs);
        for _ in 0..200 {
            c.expect(b":1\r\n");
        }
        for i in 0..200 {
            let payload = format!("{round}-{i}");
            s.expect(
                &[
                    b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n".as_slice(),
                    &bulk(payload.as_bytes()),
                ]
                .concat(),
            );
        }
    }
}

/// Held deliveries and a subscriber's own replies share one stream: while
/// publishers keep the server busy (their messages held and written by the
/// worker), the subscriber's PINGs are answered by its own task, and every
/// message and every reply arrives, each publisher's messages in order.
#[test]
fn held_deliveries_and_own_replies_stay_in_order() {
    let srv = common::herald();
    let addr = srv.addr();
    let mut s = Conn::new(addr);
    s.send(&multibulk(&[b"SUBSCRIBE", b"a", b"b"]));
    s.expect(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    s.expect(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
    const N: usize = 3000;
    let publishers: Vec<_> = [b"a", b"b"]
        .into_iter()
        .map(|ch| {
            std::thread::spawn(move || {
                let mut p = Conn::new(addr);
                for chunk in 0..N / 100 {
                    let batch: Vec<u8> = (chunk * 100..chunk * 100 + 100)
                        .flat_map(|i| multibulk(&[b"PUBLISH", ch, i.to_string().as_bytes()]))
                        .collect();
                    p.send(&batch);
                    for _ in 0..100 {
                        p.expect(b":1\r\n");
                    }
                }
            })
        })
        .collect();
    let mut next = [0usize; 2];
    let mut pongs_sent = 0;
    let mut pongs = 0;
    while next != [N, N] || pongs < pongs_sent {
        if pongs_sent < 50 && (next[0] + next[1]) / 100 >= pongs_sent {
            s.send(&multibulk(&[b"PING", b"x"]));
            pongs_sent += 1;
        }
        let r = s.reply();
        if r == b"*2\r\n$4\r\npong\r\n$1\r\nx\r\n" {
            pongs += 1;
            continue;
        }
        let text = String::from_utf8_lossy(&r).into_owned();
        let parts: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(parts.get(2), Some(&"message"), "unexpected: {}", show(&r));
        let which = if parts[4] == "a" { 0 } else { 1 };
        assert_eq!(parts[6], next[which].to_string(), "order on {}", parts[4]);
        next[which] += 1;
    }
    for p in publishers {
        p.join().unwrap();
    }
    assert_eq!(pongs, pongs_sent);
}
