//! Connections to the server under test: connecting, the RESP3 handshake,
//! subscribing and waiting for the confirmations, all with bounded waits;
//! plus the channel / pattern naming shared by publishers and subscribers.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resp::{self, Frame, Incoming, PushKind};

/// Any failure of the benchmark: a short message naming what went wrong.
#[derive(Debug, Clone)]
pub struct BenchError(pub String);

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<resp::ProtocolError> for BenchError {
    fn from(e: resp::ProtocolError) -> Self {
        BenchError(e.to_string())
    }
}

/// Result type of the generator.
pub type Result<T> = std::result::Result<T, BenchError>;

/// How subscribers subscribe and publishers publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// SUBSCRIBE + PUBLISH.
    Plain,
    /// PSUBSCRIBE (one matching pattern per channel) + PUBLISH.
    Pattern,
    /// SSUBSCRIBE + SPUBLISH.
    Sharded,
}

impl Mode {
    /// The command a subscriber of this mode uses.
    pub fn subscribe_command(self) -> &'static [u8] {
        match self {
            Mode::Plain => b"SUBSCRIBE",
            Mode::Pattern => b"PSUBSCRIBE",
            Mode::Sharded => b"SSUBSCRIBE",
        }
    }

    /// The command a publisher of this mode uses.
    pub fn publish_command(self) -> &'static [u8] {
        match self {
            Mode::Sharded => b"SPUBLISH",
            Mode::Plain | Mode::Pattern => b"PUBLISH",
        }
    }

    /// Lower-case name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Pattern => "pattern",
            Mode::Sharded => "sharded",
        }
    }
}

/// How each publisher picks the channel of its next publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Spread {
    /// Uniformly at random (a fixed seed per publisher): publishers are
    /// independent, so how often one subscriber gets messages close
    /// together depends on the rate only.
    Random,
    /// Round-robin over all channels, publisher `i` starting at channel
    /// `i`: the publishers march nearly in step, so a subscriber gets one
    /// message from each of them at about the same time, or not, as their
    /// phases drift. Kept to reproduce earlier runs.
    RoundRobin,
}

impl Spread {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Spread::Random => "random",
            Spread::RoundRobin => "round-robin",
        }
    }
}

/// The sequence of channels one publisher publishes to. `Clone` so that
/// its reader can replay a batch's channels from the state the batch
/// started at.
#[derive(Debug, Clone)]
pub struct ChannelWalk {
    channels: usize,
    next: usize,
    /// `Spread::Random`: the generator.
    rng: Option<rand::rngs::StdRng>,
}

impl ChannelWalk {
    /// Publisher `id`'s walk over `channels` channels.
    pub fn new(spread: Spread, id: usize, channels: usize) -> ChannelWalk {
        use rand::SeedableRng;
        let channels = channels.max(1);
        ChannelWalk {
            channels,
            next: id % channels,
            rng: (spread == Spread::Random)
                .then(|| rand::rngs::StdRng::seed_from_u64(0x6865_7261_6c64 ^ id as u64)),
        }
    }
}

impl Iterator for ChannelWalk {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        use rand::Rng;
        Some(match &mut self.rng {
            Some(r) => r.gen_range(0..self.channels),
            None => {
                let c = self.next;
                self.next = (c + 1) % self.channels;
                c
            }
        })
    }
}

/// Name of channel `i`.
pub fn channel_name(i: usize) -> String {
    format!("ch:{i}:x")
}

/// The glob pattern that matches channel `i` and no other.
pub fn channel_pattern(i: usize) -> String {
    format!("ch:{i}:*")
}

/// The `j`-th extra pattern of subscriber `sub`: shares the channels' prefix
/// but never matches a channel name (they contain no `-`).
pub fn extra_pattern(sub: usize, j: usize) -> String {
    format!("ch:{sub}-{j}:*")
}

/// The channels subscriber `sub` listens on: `k` consecutive channels,
/// starting at `sub * k`, wrapping around `channels`.
pub fn subscriber_channels(sub: usize, k: usize, channels: usize) -> impl Iterator<Item = usize> {
    (0..k).map(move |j| (sub * k + j) % channels.max(1))
}

/// A connection with its receive buffer. `buf[start..]` holds bytes read but
/// not parsed yet.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// Receive buffer.
    pub buf: Vec<u8>,
    /// Start of the unparsed bytes in `buf`.
    pub start: usize,
    /// Bound on every wait for the server.
    pub timeout: Duration,
}

impl Conn {
    /// Connects to `addr` within `timeout`, with TCP_NODELAY set.
    pub async fn connect(addr: &str, timeout: Duration, buf_size: usize) -> Result<Conn> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(bench_err!(
                    "connecting to {addr}: no answer within {timeout:?}"
                ))
            }
            Ok(Err(e)) => return Err(bench_err!("connecting to {addr}: {e}")),
            Ok(Ok(s)) => s,
        };
        stream
            .set_nodelay(true)
            .map_err(|e| bench_err!("setting TCP_NODELAY: {e}"))?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(buf_size),
            start: 0,
            timeout,
        })
    }

    /// Writes all of `bytes` within the timeout.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        match tokio::time::timeout(self.timeout, self.stream.write_all(bytes)).await {
            Err(_) => Err(bench_err!(
                "server stalled: could not write for {:?}",
                self.timeout
            )),
            Ok(Err(e)) => Err(bench_err!("writing to server: {e}")),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads more bytes into the buffer (compacting it first), within the
    /// timeout. A closed connection is an error.
    pub async fn fill(&mut self) -> Result<usize> {
        compact(&mut self.buf, &mut self.start, 4096);
        match tokio::time::timeout(self.timeout, self.stream.read_buf(&mut self.buf)).await {
            Err(_) => Err(bench_err!(
                "server stalled: no reply for {:?}",
                self.timeout
            )),
            Ok(Err(e)) => Err(bench_err!("reading from server: {e}")),
            Ok(Ok(0)) => Err(bench_err!("server closed the connection")),
            Ok(Ok(n)) => Ok(n),
        }
    }

    /// Reads one complete frame.
    pub async fn read_frame(&mut self) -> Result<Frame> {
        loop {
            if let Some((f, n)) = resp::parse_frame(&self.buf[self.start..])? {
                self.start += n;
                return Ok(f);
            }
            self.fill().await?;
        }
    }

    /// Sends one command and reads its reply; an error reply is an error.
    pub async fn command(&mut self, args: &[&[u8]]) -> Result<Frame> {
        let mut out = Vec::new();
        resp::encode_command(&mut out, args);
        self.send(&out).await?;
        match self.read_frame().await? {
            Frame::Error(e) => Err(bench_err!(
                "server refused {}: {e}",
                String::from_utf8_lossy(args.first().copied().unwrap_or_default())
            )),
            f => Ok(f),
        }
    }

    /// Switches the connection to RESP3 with `HELLO 3`.
    pub async fn hello3(&mut self) -> Result<()> {
        self.command(&[b"HELLO", b"3"]).await.map(|_| ())
    }

    /// Sends `command` with `names` as arguments (all at once) and waits for
    /// one confirmation per name.
    pub async fn subscribe(&mut self, command: &[u8], names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut args: Vec<&[u8]> = Vec::with_capacity(names.len() + 1);
        args.push(command);
        args.extend(names.iter().map(|n| n.as_bytes()));
        let mut out = Vec::new();
        resp::encode_command(&mut out, &args);
        self.send(&out).await?;
        let mut confirmed = 0;
        while confirmed < names.len() {
            let parsed = resp::parse_incoming(&self.buf[self.start..])?;
            let Some((incoming, n)) = parsed else {
                self.fill().await?;
                continue;
            };
            match incoming {
                Incoming::Push {
                    kind: PushKind::Subscribed,
                    ..
                } => confirmed += 1,
                Incoming::Frame(Frame::Error(e)) => {
                    return Err(bench_err!(
                        "server refused {}: {e}",
                        String::from_utf8_lossy(command)
                    ))
                }
                _ => {}
            }
            self.start += n;
        }
        Ok(())
    }
}

/// Makes room in a receive buffer before a read: drops the parsed prefix
/// when it is all parsed or when fewer than `min_free` bytes are free, and
/// grows the buffer if a partial frame fills it.
pub fn compact(buf: &mut Vec<u8>, start: &mut usize, min_free: usize) {
    if *start == buf.len() {
        buf.clear();
        *start = 0;
    } else if buf.capacity() - buf.len() < min_free && *start > 0 {
        buf.drain(..*start);
        *start = 0;
    }
    if buf.capacity() - buf.len() < min_free {
        buf.reserve(min_free.max(buf.capacity()));
    }
}
