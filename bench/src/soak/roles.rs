//! The soak's clients. Each runs a loop of connection cycles until its task
//! is dropped at the soak's deadline; every wait inside is bounded.
//!
//! - steady subscribers: a few channels (sometimes a pattern), reading and
//!   checking order, now and then trading one channel for another;
//! - churners: pipelined SUBSCRIBE / UNSUBSCRIBE / PSUBSCRIBE / PUNSUBSCRIBE
//!   (and the all-forms) every few tens of milliseconds over many channels
//!   and patterns, reading and checking order, reconnecting now and then;
//! - flood readers: subscribed to the flooded channel, checking order;
//! - half-frame clients: (maybe subscribe, then) write part of a command and
//!   close, with a FIN or a reset;
//! - garbage clients: pipelined random bytes and malformed RESP, reading
//!   what the server answers until it closes or goes quiet;
//! - slow readers: subscribe to the flooded channel with a tiny receive
//!   buffer and never read, then go away after a few seconds;
//! - publishers: paced PUBLISH round the channels; the flooder: pipelined
//!   PUBLISH to one channel, as fast as replies come back.
//!
//! Every message carries (publisher id, sequence number) in its first 20
//! bytes; every reading client checks that, per publisher, sequence numbers
//! never go down (equal is allowed: a message matching both a channel and a
//! pattern of the client arrives twice).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::conn::{self, Conn, Result};
use crate::resp::{self, Frame, Incoming, PushKind};

/// Most failure notes kept for the report.
const MAX_NOTES: usize = 10;

/// Pause before a client reconnects after an unexpected failure.
const RETRY: Duration = Duration::from_millis(200);

/// What the clients share: where the server is, the names, the counters.
pub struct Ctx {
    /// `host:port`.
    pub addr: String,
    /// The same, resolved (for sockets with a small receive buffer).
    pub sockaddr: SocketAddr,
    /// Bound on every wait for the server.
    pub timeout: Duration,
    /// Prefix of every channel and pattern name of this soak run.
    pub prefix: String,
    /// Channels publishers publish to.
    pub channels: usize,
    /// Channels nobody publishes to (subscription churn only).
    pub quiet: usize,
    /// Non-matching pattern names to churn over.
    pub xpatterns: usize,
    /// Message size in bytes (at least 20).
    pub payload: usize,
    /// Connections being opened at once.
    pub gate: Semaphore,
    /// Counters.
    pub stats: Stats,
}

impl Ctx {
    /// Published channel `i`.
    pub fn channel(&self, i: usize) -> String {
        format!("{}:c:{i}", self.prefix)
    }

    /// Quiet channel `i`.
    pub fn quiet_channel(&self, i: usize) -> String {
        format!("{}:q:{i}", self.prefix)
    }

    /// The flooded channel.
    pub fn flood_channel(&self) -> String {
        format!("{}:flood", self.prefix)
    }

    /// Every channel name a client may subscribe to.
    pub fn all_channels(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.channels).map(|i| self.channel(i)).collect();
        v.extend((0..self.quiet).map(|i| self.quiet_channel(i)));
        v.push(self.flood_channel());
        v
    }

    /// A random pattern: one of 20 that match published channels, or a
    /// non-matching one.
    fn pattern(&self, rng: &mut StdRng) -> String {
        let d = rng.gen_range(0..10);
        match rng.gen_range(0..4) {
            0 => format!("{}:c:{d}*", self.prefix),
            1 => format!("{}:c:*{d}", self.prefix),
            _ => format!(
                "{}:x:{}*",
                self.prefix,
                rng.gen_range(0..self.xpatterns.max(1))
            ),
        }
    }

    /// A random channel: published (1 in 3) or quiet.
    fn any_channel(&self, rng: &mut StdRng) -> String {
        if rng.gen_range(0..3) == 0 {
            self.channel(rng.gen_range(0..self.channels))
        } else {
            self.quiet_channel(rng.gen_range(0..self.quiet.max(1)))
        }
    }
}

/// The soak's counters (all totals over the run).
#[derive(Default)]
pub struct Stats {
    /// Soak connections open now.
    pub open: AtomicI64,
    /// Most soak connections open at once.
    pub open_peak: AtomicI64,
    /// Connections opened.
    pub connects: AtomicU64,
    /// Connection attempts that failed.
    pub connect_errors: AtomicU64,
    /// Paced publishes acknowledged.
    pub published: AtomicU64,
    /// Flood publishes acknowledged.
    pub flooded: AtomicU64,
    /// Messages received by checking clients.
    pub received: AtomicU64,
    /// Messages whose payload was not the soak's (not checked).
    pub foreign: AtomicU64,
    /// Messages that came after a later one of the same publisher.
    pub reorders: AtomicU64,
    /// Steady subscribers and churners the server disconnected.
    pub disconnects: AtomicU64,
    /// Flood readers the server disconnected (they may fall behind a
    /// flood on a loaded machine: reported, not a failure).
    pub flood_reader_cutoffs: AtomicU64,
    /// Error replies to well-formed commands, and publisher failures.
    pub errors: AtomicU64,
    /// Subscription commands sent by churners and steady subscribers.
    pub churn_ops: AtomicU64,
    /// Connections closed in the middle of a command.
    pub half_frames: AtomicU64,
    /// Garbage pipelines sent.
    pub garbage: AtomicU64,
    /// `Protocol error` replies the garbage got.
    pub protocol_errors: AtomicU64,
    /// Garbage connections the server closed.
    pub garbage_closed: AtomicU64,
    /// Slow-reader connections made.
    pub slow_cycles: AtomicU64,
    /// The first failures, described.
    pub notes: Mutex<Vec<String>>,
}

impl Stats {
    /// Records a failure description (the first few are kept).
    pub fn note(&self, msg: String) {
        let mut n = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
        if n.len() < MAX_NOTES {
            n.push(msg);
        }
    }

    fn opened(&self) {
        self.connects.fetch_add(1, Relaxed);
        let now = self.open.fetch_add(1, Relaxed) + 1;
        self.open_peak.fetch_max(now, Relaxed);
    }
}

/// A soak connection, counted open while it lives.
struct Client<'a> {
    conn: Conn,
    stats: &'a Stats,
}

impl Drop for Client<'_> {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Relaxed);
    }
}

/// Opens a connection (at most [`Ctx::gate`] at once), with a small
/// receive buffer if `rcvbuf` is given.
async fn open(ctx: &Ctx, rcvbuf: Option<u32>) -> Result<Client<'_>> {
    let _permit = ctx
        .gate
        .acquire()
        .await
        .map_err(|_| bench_err!("soak stopped"))?;
    let conn = match rcvbuf {
        None => Conn::connect(&ctx.addr, ctx.timeout, 4096).await,
        Some(size) => connect_small(ctx, size).await,
    };
    match conn {
        Ok(conn) => {
            ctx.stats.opened();
            Ok(Client {
                conn,
                stats: &ctx.stats,
            })
        }
        Err(e) => {
            ctx.stats.connect_errors.fetch_add(1, Relaxed);
            ctx.stats.note(format!("connect: {e}"));
            Err(e)
        }
    }
}

/// Connects with a receive buffer of `size` bytes.
async fn connect_small(ctx: &Ctx, size: u32) -> Result<Conn> {
    let socket = match ctx.sockaddr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(|e| bench_err!("socket: {e}"))?;
    socket
        .set_recv_buffer_size(size)
        .map_err(|e| bench_err!("SO_RCVBUF: {e}"))?;
    let stream = match tokio::time::timeout(ctx.timeout, socket.connect(ctx.sockaddr)).await {
        Err(_) => return Err(bench_err!("connecting to {}: no answer", ctx.addr)),
        Ok(Err(e)) => return Err(bench_err!("connecting to {}: {e}", ctx.addr)),
        Ok(Ok(s)) => s,
    };
    Ok(Conn {
        stream,
        buf: Vec::with_capacity(4096),
        start: 0,
        timeout: ctx.timeout,
    })
}

/// Closes abruptly (a reset, no FIN) when `reset`, else normally.
fn close(c: Client<'_>, reset: bool) {
    if reset {
        let _ = socket2::SockRef::from(&c.conn.stream).set_linger(Some(Duration::ZERO));
    }
    drop(c);
}

async fn pause(rng: &mut StdRng, min_ms: u64, max_ms: u64) {
    tokio::time::sleep(Duration::from_millis(rng.gen_range(min_ms..=max_ms))).await;
}

/// Writes the soak's payload for (publisher, seq) in `size` bytes (at least
/// 20): 4 hex digits of publisher, 16 of sequence, then padding.
pub fn payload(publisher: u16, seq: u64, size: usize) -> Vec<u8> {
    let mut p = format!("{publisher:04x}").into_bytes();
    let at = p.len();
    p.resize(at + 16, 0);
    resp::put_hex16(&mut p[at..], seq);
    p.resize(size.max(20), b'.');
    p
}

/// Reads (publisher, seq) back from a payload.
pub fn parse_payload(p: &[u8]) -> Option<(u16, u64)> {
    let publisher = std::str::from_utf8(p.get(..4)?).ok()?;
    let publisher = u16::from_str_radix(publisher, 16).ok()?;
    Some((publisher, resp::parse_hex16(p.get(4..)?)?))
}

/// Per-publisher order of one connection's messages.
#[derive(Default)]
struct Order {
    last: Vec<Option<u64>>,
}

impl Order {
    /// False if `seq` comes after a later message of `publisher`.
    fn check(&mut self, publisher: u16, seq: u64) -> std::result::Result<(), u64> {
        let i = usize::from(publisher);
        if self.last.len() <= i {
            self.last.resize(i + 1, None);
        }
        match self.last[i] {
            Some(prev) if seq < prev => Err(prev),
            _ => {
                self.last[i] = Some(seq);
                Ok(())
            }
        }
    }
}

/// Parses and checks every complete frame in a reading client's buffer.
fn process(c: &mut Conn, order: &mut Order, stats: &Stats, who: &str) -> Result<()> {
    let (mut got, mut foreign) = (0u64, 0u64);
    while let Some((incoming, n)) = resp::parse_incoming(&c.buf[c.start..])? {
        c.start += n;
        match incoming {
            Incoming::Push {
                kind: PushKind::Message | PushKind::PMessage | PushKind::SMessage,
                last,
            } => {
                got += 1;
                match parse_payload(last) {
                    Some((p, seq)) => {
                        if let Err(prev) = order.check(p, seq) {
                            stats.reorders.fetch_add(1, Relaxed);
                            stats.note(format!(
                                "{who}: publisher {p}'s message {seq} arrived after its message {prev}"
                            ));
                        }
                    }
                    None => foreign += 1,
                }
            }
            Incoming::Frame(Frame::Error(e)) => {
                stats.errors.fetch_add(1, Relaxed);
                stats.note(format!("{who}: error reply -{e}"));
            }
            _ => {}
        }
    }
    stats.received.fetch_add(got, Relaxed);
    if foreign > 0 {
        stats.foreign.fetch_add(foreign, Relaxed);
    }
    Ok(())
}

/// Reads once, waiting at most `wait`: `Ok(true)` if bytes came,
/// `Ok(false)` if none did; an error if the connection closed or broke.
async fn read_for(c: &mut Conn, wait: Duration) -> Result<bool> {
    conn::compact(&mut c.buf, &mut c.start, 16 * 1024);
    match tokio::time::timeout(wait, c.stream.read_buf(&mut c.buf)).await {
        Err(_) => Ok(false),
        Ok(Ok(0)) => Err(bench_err!("server closed the connection")),
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) => Err(bench_err!("read error: {e}")),
    }
}

/// Encodes one command.
fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    resp::encode_command(&mut out, args);
    out
}

/// Encodes a command whose arguments are names.
fn named(cmd: &str, names: &[String]) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![cmd.as_bytes()];
    args.extend(names.iter().map(|n| n.as_bytes()));
    command(&args)
}

/// A steady subscriber (`churny`: a churner). Runs until dropped.
pub async fn subscriber(ctx: &Ctx, id: usize, seed: u64, churny: bool) {
    let mut rng = StdRng::seed_from_u64(seed);
    let who = if churny { "churner" } else { "subscriber" };
    loop {
        let Ok(mut c) = open(ctx, None).await else {
            tokio::time::sleep(RETRY).await;
            continue;
        };
        match subscriber_cycle(ctx, &mut c.conn, &mut rng, churny).await {
            Ok(()) => {}
            Err(e) => {
                ctx.stats.disconnects.fetch_add(1, Relaxed);
                ctx.stats.note(format!("{who} {id}: {e}"));
                drop(c);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        }
        // A churner's planned reconnection.
        close(c, rng.gen_bool(0.5));
        pause(&mut rng, 10, 100).await;
    }
}

/// One connection of a subscriber: returns to reconnect (churners only),
/// or with an error if the server failed it.
async fn subscriber_cycle(ctx: &Ctx, c: &mut Conn, rng: &mut StdRng, churny: bool) -> Result<()> {
    if rng.gen_range(0..4) == 0 {
        c.hello3().await?;
    }
    let mut channels: Vec<String> = (0..rng.gen_range(1..=4))
        .map(|_| ctx.channel(rng.gen_range(0..ctx.channels)))
        .collect();
    channels.sort();
    channels.dedup();
    c.subscribe(b"SUBSCRIBE", &channels).await?;
    let mut patterns = Vec::new();
    if rng.gen_bool(0.2) {
        patterns.push(ctx.pattern(rng));
        c.subscribe(b"PSUBSCRIBE", &patterns).await?;
    }
    let mut order = Order::default();
    let who = if churny { "churner" } else { "subscriber" };
    let every = |rng: &mut StdRng| {
        if churny {
            Duration::from_millis(rng.gen_range(20..=200))
        } else {
            Duration::from_millis(rng.gen_range(2000..=10_000))
        }
    };
    let mut next = tokio::time::Instant::now() + every(rng);
    loop {
        let wait = next.saturating_duration_since(tokio::time::Instant::now());
        if read_for(c, wait).await? {
            process(c, &mut order, &ctx.stats, who)?;
            continue;
        }
        next = tokio::time::Instant::now() + every(rng);
        ctx.stats.churn_ops.fetch_add(1, Relaxed);
        let out = if churny {
            if rng.gen_bool(0.02) {
                return Ok(()); // reconnect
            }
            churn_op(ctx, rng, &mut channels, &mut patterns)
        } else {
            // Trade one channel for another.
            let new = ctx.channel(rng.gen_range(0..ctx.channels));
            let old = std::mem::replace(&mut channels[0], new.clone());
            let mut out = named("UNSUBSCRIBE", &[old]);
            out.extend(named("SUBSCRIBE", &[new]));
            out
        };
        c.send(&out).await?;
    }
}

/// One pipelined batch of subscription churn, keeping `channels` and
/// `patterns` (what the client believes it has) up to date.
fn churn_op(
    ctx: &Ctx,
    rng: &mut StdRng,
    channels: &mut Vec<String>,
    patterns: &mut Vec<String>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.gen_range(1..=3) {
        match rng.gen_range(0..100) {
            0..=34 => {
                let new: Vec<String> = (0..rng.gen_range(1..=3))
                    .map(|_| ctx.any_channel(rng))
                    .collect();
                out.extend(named("SUBSCRIBE", &new));
                channels.extend(new);
            }
            35..=59 if !channels.is_empty() => {
                let i = rng.gen_range(0..channels.len());
                let old = channels.swap_remove(i);
                out.extend(named("UNSUBSCRIBE", &[old]));
            }
            60..=74 => {
                let p = ctx.pattern(rng);
                out.extend(named("PSUBSCRIBE", std::slice::from_ref(&p)));
                patterns.push(p);
            }
            75..=84 if !patterns.is_empty() => {
                let i = rng.gen_range(0..patterns.len());
                let old = patterns.swap_remove(i);
                out.extend(named("PUNSUBSCRIBE", &[old]));
            }
            85..=89 => {
                out.extend(command(&[b"UNSUBSCRIBE"]));
                channels.clear();
            }
            90..=94 => {
                out.extend(command(&[b"PUNSUBSCRIBE"]));
                patterns.clear();
            }
            _ => out.extend(command(&[b"PING"])),
        }
    }
    out
}

/// A flood reader: subscribed to the flooded channel, checking order.
pub async fn flood_reader(ctx: &Ctx, id: usize) {
    loop {
        let Ok(mut c) = open(ctx, None).await else {
            tokio::time::sleep(RETRY).await;
            continue;
        };
        if let Err(e) = flood_cycle(ctx, &mut c.conn).await {
            ctx.stats.flood_reader_cutoffs.fetch_add(1, Relaxed);
            ctx.stats
                .note(format!("flood reader {id} (not a failure): {e}"));
        }
        drop(c);
        tokio::time::sleep(RETRY).await;
    }
}

/// One connection of a flood reader; returns only with an error.
async fn flood_cycle(ctx: &Ctx, c: &mut Conn) -> Result<()> {
    c.subscribe(b"SUBSCRIBE", &[ctx.flood_channel()]).await?;
    let mut order = Order::default();
    loop {
        if read_for(c, ctx.timeout).await? {
            process(c, &mut order, &ctx.stats, "flood reader")?;
        }
    }
}

/// A client that writes part of a command and closes.
pub async fn half_frame(ctx: &Ctx, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let Ok(mut c) = open(ctx, None).await else {
            tokio::time::sleep(RETRY).await;
            continue;
        };
        if let Err(e) = half_frame_cycle(ctx, &mut c.conn, &mut rng).await {
            ctx.stats.errors.fetch_add(1, Relaxed);
            ctx.stats.note(format!("half-frame client: {e}"));
        } else {
            ctx.stats.half_frames.fetch_add(1, Relaxed);
        }
        close(c, rng.gen_bool(0.5));
        pause(&mut rng, 20, 300).await;
    }
}

/// Maybe subscribes, then writes part of a command.
async fn half_frame_cycle(ctx: &Ctx, c: &mut Conn, rng: &mut StdRng) -> Result<()> {
    if rng.gen_bool(0.5) {
        let names: Vec<String> = (0..rng.gen_range(1..=3))
            .map(|_| ctx.any_channel(rng))
            .collect();
        c.subscribe(b"SUBSCRIBE", &names).await?;
    }
    if rng.gen_bool(0.3) {
        c.subscribe(b"PSUBSCRIBE", &[ctx.pattern(rng)]).await?;
    }
    let whole = some_command(ctx, rng);
    let cut = rng.gen_range(1..whole.len());
    c.send(&whole[..cut]).await?;
    if rng.gen_bool(0.5) {
        pause(rng, 0, 20).await;
    }
    Ok(())
}

/// A well-formed command, multibulk or inline, that is harmless when run.
fn some_command(ctx: &Ctx, rng: &mut StdRng) -> Vec<u8> {
    let ch = ctx.any_channel(rng);
    let (multibulk, inline) = match rng.gen_range(0..4) {
        0 => (
            named("SUBSCRIBE", &[ch.clone(), ctx.any_channel(rng)]),
            format!("SUBSCRIBE {ch}\r\n"),
        ),
        1 => {
            let p = ctx.pattern(rng);
            (
                named("PSUBSCRIBE", std::slice::from_ref(&p)),
                format!("PSUBSCRIBE {p}\r\n"),
            )
        }
        // Never completed, so never delivered; a quiet channel anyway.
        2 => (
            command(&[b"PUBLISH", ctx.quiet_channel(0).as_bytes(), b"half"]),
            format!("PUBLISH {} half\r\n", ctx.quiet_channel(0)),
        ),
        _ => (
            command(&[b"ECHO", b"a somewhat longer argument"]),
            "ECHO abc\r\n".to_string(),
        ),
    };
    if rng.gen_bool(0.7) {
        multibulk
    } else {
        inline.into_bytes()
    }
}

/// Malformed requests (none of them names a command that changes state).
const MALFORMED: &[&[u8]] = &[
    b"*abc\r\n",
    b"*-5\r\n",
    b"*2\r\n$4\r\nECHO\r\n:1\r\n",
    b"*1\r\n$999999999999\r\n",
    b"*1\r\n$-7\r\n",
    b"*3\r\n$4\r\nECHO\r\n$2\r\nab",
    b"*2\r\n$4\r\nECHO\r\n$3\r\nabcdefg\r\n",
    b"\"unbalanced quote\r\n",
    b"ECHO 'x\r\n",
    b"\x00\x01\x02\xff\r\n",
    b"*1\r\n$4\r\nPING\r\n",
    b"PING\r\n",
    b"*2\r\n$9\r\nSUBSCRIBE\r\n",
    b"$5\r\nhello\r\n",
    b"*1\r\n*1\r\n$4\r\nPING\r\n",
    b"*1048577\r\n",
    b"*0\r\n",
    b"\r\n\r\n\n",
];

/// Garbage: pipelined random bytes and malformed RESP, then read what the
/// server says until it closes or is quiet.
pub async fn garbage(ctx: &Ctx, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let Ok(mut c) = open(ctx, None).await else {
            tokio::time::sleep(RETRY).await;
            continue;
        };
        if let Err(e) = garbage_cycle(ctx, &mut c.conn, &mut rng).await {
            // Sending may fail once the server closed on a protocol error.
            if e.0.contains("writing to server") {
                ctx.stats.garbage_closed.fetch_add(1, Relaxed);
            } else {
                ctx.stats.errors.fetch_add(1, Relaxed);
                ctx.stats.note(format!("garbage client: {e}"));
            }
        }
        close(c, rng.gen_bool(0.5));
        pause(&mut rng, 20, 300).await;
    }
}

/// One garbage pipeline and what the server answers to it.
async fn garbage_cycle(ctx: &Ctx, c: &mut Conn, rng: &mut StdRng) -> Result<()> {
    if rng.gen_bool(0.3) {
        c.subscribe(b"SUBSCRIBE", &[ctx.any_channel(rng)]).await?;
    }
    let mut out = Vec::new();
    for _ in 0..rng.gen_range(1..=8) {
        match rng.gen_range(0..10) {
            0..=3 => {
                let n = rng.gen_range(1..=300);
                out.extend((0..n).map(|_| rng.gen::<u8>()));
            }
            4..=8 => out.extend_from_slice(MALFORMED[rng.gen_range(0..MALFORMED.len())]),
            // An inline request over the 64 KiB limit.
            _ => out.extend(std::iter::repeat_n(b'a', 70_000)),
        }
    }
    ctx.stats.garbage.fetch_add(1, Relaxed);
    c.send(&out).await?;
    // Read answers until closed, quiet for 300 ms, or 2 s.
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut seen = Vec::new();
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let wait = left.min(Duration::from_millis(300));
        if wait.is_zero() {
            break;
        }
        match read_for(c, wait).await {
            Ok(true) => {
                seen.extend_from_slice(&c.buf[c.start..]);
                c.start = c.buf.len();
            }
            Ok(false) => break,
            Err(_) => {
                ctx.stats.garbage_closed.fetch_add(1, Relaxed);
                break;
            }
        }
    }
    let errors = memchr_count(&seen, b"Protocol error");
    ctx.stats.protocol_errors.fetch_add(errors, Relaxed);
    Ok(())
}

/// Occurrences of `needle` in `hay`.
fn memchr_count(hay: &[u8], needle: &[u8]) -> u64 {
    hay.windows(needle.len()).filter(|w| *w == needle).count() as u64
}

/// A slow reader: subscribes to the flooded channel (and one published
/// channel) with a 4 KiB receive buffer, never reads, leaves after 3 to 8 s.
pub async fn slow_reader(ctx: &Ctx, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let Ok(mut c) = open(ctx, Some(4096)).await else {
            tokio::time::sleep(RETRY).await;
            continue;
        };
        ctx.stats.slow_cycles.fetch_add(1, Relaxed);
        let names = [
            ctx.flood_channel(),
            ctx.channel(rng.gen_range(0..ctx.channels)),
        ];
        if let Err(e) = c.conn.subscribe(b"SUBSCRIBE", &names).await {
            ctx.stats.errors.fetch_add(1, Relaxed);
            ctx.stats.note(format!("slow reader subscribing: {e}"));
        } else {
            pause(&mut rng, 3000, 8000).await;
        }
        close(c, rng.gen_bool(0.5));
        pause(&mut rng, 100, 500).await;
    }
}

/// A publisher: `rate` publishes per second round the published channels,
/// or (`rate` = 0) the flooder: `window` pipelined publishes at a time to
/// the flooded channel, as fast as the replies come back.
pub async fn publisher(ctx: &Ctx, id: u16, rate: f64, window: usize) {
    let mut seq: u64 = 0;
    loop {
        let Ok(mut c) = open(ctx, None).await else {
            tokio::time::sleep(RETRY).await;
            continue;
        };
        let r = publish_loop(ctx, &mut c.conn, id, rate, window, &mut seq).await;
        if let Err(e) = r {
            ctx.stats.errors.fetch_add(1, Relaxed);
            ctx.stats.note(format!("publisher {id}: {e}"));
        }
        drop(c);
        tokio::time::sleep(RETRY).await;
    }
}

async fn publish_loop(
    ctx: &Ctx,
    c: &mut Conn,
    id: u16,
    rate: f64,
    window: usize,
    seq: &mut u64,
) -> Result<()> {
    const TICK: Duration = Duration::from_millis(10);
    let flood = ctx.flood_channel();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Paced by the clock, not by the ticks (late ticks catch up, in
    // batches of at most one second's worth).
    let began = tokio::time::Instant::now();
    let mut sent: u64 = 0;
    let mut out = Vec::new();
    loop {
        let n = if rate > 0.0 {
            tick.tick().await;
            let due = (began.elapsed().as_secs_f64() * rate) as u64;
            let n = due.saturating_sub(sent).min(rate.ceil() as u64);
            sent += n;
            n as usize
        } else {
            window
        };
        if n == 0 {
            continue;
        }
        out.clear();
        for _ in 0..n {
            let ch = if rate > 0.0 {
                // Spread over the channels.
                ctx.channel((*seq as usize).wrapping_mul(7919) % ctx.channels)
            } else {
                flood.clone()
            };
            let p = payload(id, *seq, ctx.payload);
            resp::encode_command(&mut out, &[b"PUBLISH", ch.as_bytes(), &p]);
            *seq += 1;
        }
        c.send(&out).await?;
        for _ in 0..n {
            match c.read_frame().await? {
                Frame::Integer(_) => {
                    let counter = if rate > 0.0 {
                        &ctx.stats.published
                    } else {
                        &ctx.stats.flooded
                    };
                    counter.fetch_add(1, Relaxed);
                }
                other => return Err(bench_err!("unexpected reply to PUBLISH: {other}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let p = payload(3, 0x1234_5678_9abc, 64);
        assert_eq!(p.len(), 64);
        assert_eq!(parse_payload(&p), Some((3, 0x1234_5678_9abc)));
        assert_eq!(parse_payload(b"xyz"), None);
        assert_eq!(parse_payload(b"zzzz0000000000000001"), None);
    }

    #[test]
    fn order_allows_repeats_not_going_back() {
        let mut o = Order::default();
        assert!(o.check(1, 5).is_ok());
        assert!(o.check(1, 5).is_ok());
        assert!(o.check(0, 1).is_ok());
        assert!(o.check(1, 7).is_ok());
        assert_eq!(o.check(1, 6), Err(7));
    }

    #[test]
    fn counts_occurrences() {
        assert_eq!(
            memchr_count(
                b"-ERR Protocol error: x\r\n-ERR Protocol error",
                b"Protocol error"
            ),
            2
        );
        assert_eq!(memchr_count(b"", b"Protocol error"), 0);
    }
}
