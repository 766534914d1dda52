//! Publishers: pipelined PUBLISH / SPUBLISH with a bounded number of
//! requests in flight per connection and an optional target rate.
//!
//! Each connection has a writer task and a reader. The writer stamps every
//! batch with the current time (the payload's first 16 bytes, as hex
//! nanoseconds since the process epoch), tells the reader about the batch,
//! then writes it. The reader matches replies to batches in order, adds up
//! the PUBLISH replies of batches sent inside the measured window (the
//! expected deliveries) and gives the window's slots back to the writer.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, Semaphore};

use crate::conn::{self, Conn, Result};
use crate::resp::{self, Reply};
use crate::subscriber::Shared;

/// What every publisher sends, prepared once.
pub struct PublishPlan {
    /// Per channel: the command up to and including the payload's `$len\r\n`.
    pub prefixes: Vec<Vec<u8>>,
    /// The payload after its 16-byte timestamp, plus the final CRLF.
    pub suffix: Vec<u8>,
    /// Requests in flight per connection.
    pub window: usize,
    /// Bound on every wait for the server.
    pub timeout: Duration,
    /// Per channel: how many of the subscribers that keep reading listen on
    /// it (the deliveries a publish owes them, whatever PUBLISH replies when
    /// slow subscribers are present too).
    pub fast_subscribers: Vec<u64>,
    /// How publishers pick channels.
    pub spread: conn::Spread,
}

/// Prepares the parts of the commands for `channels` channels and
/// `payload`-byte payloads (at least 16): the per-channel prefixes and the
/// common suffix of a [`PublishPlan`].
pub fn command_parts(command: &[u8], channels: usize, payload: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let prefixes = (0..channels)
        .map(|i| {
            let mut p = Vec::new();
            let name = conn::channel_name(i);
            // Encode the command with an empty payload, then cut the
            // payload off and put its real length back.
            resp::encode_command(&mut p, &[command, name.as_bytes(), b""]);
            p.truncate(p.len() - b"$0\r\n\r\n".len());
            p.push(b'$');
            resp::push_decimal(&mut p, payload);
            p.extend_from_slice(b"\r\n");
            p
        })
        .collect();
    let mut suffix = vec![b'x'; payload.saturating_sub(16)];
    suffix.extend_from_slice(b"\r\n");
    (prefixes, suffix)
}

/// What one publisher did.
#[derive(Debug, Default, Clone, Copy)]
pub struct PubStats {
    /// Publishes sent inside the measured window whose reply came back.
    pub published: u64,
    /// Sum of their replies: the deliveries the server promised.
    pub expected: u64,
    /// Every publish that got a reply, warm-up included.
    pub replied_total: u64,
    /// Deliveries the window's publishes owe the subscribers that keep
    /// reading (see [`PublishPlan::fast_subscribers`]).
    pub fast_expected: u64,
}

/// A batch of publishes written together, as the reader needs to know it.
struct Batch {
    count: usize,
    in_window: bool,
    /// The publisher's channel walk as the batch began (replayed by the
    /// reader to know each publish's channel).
    channels: conn::ChannelWalk,
}

/// Runs one publisher until the end of the measured window and until every
/// reply is back. With a target rate, `tickets` holds one permit per
/// publish due (see [`spawn_pacer`]).
pub async fn run(
    conn: Conn,
    id: usize,
    plan: Arc<PublishPlan>,
    shared: Arc<Shared>,
    tickets: Option<Arc<Semaphore>>,
) -> Result<PubStats> {
    let Conn {
        stream, timeout, ..
    } = conn;
    let (rd, wr) = stream.into_split();
    let slots = Arc::new(Semaphore::new(plan.window));
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(
        wr,
        id,
        plan.clone(),
        shared,
        slots.clone(),
        tickets,
        tx,
    ));
    let read = read_loop(rd, timeout, slots, rx, &plan.fast_subscribers).await;
    if read.is_err() {
        writer.abort();
    }
    let written = writer
        .await
        .unwrap_or_else(|e| Err(bench_err!("publisher task failed: {e}")));
    let stats = read?;
    written?;
    Ok(stats)
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    id: usize,
    plan: Arc<PublishPlan>,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    tickets: Option<Arc<Semaphore>>,
    tx: mpsc::UnboundedSender<Batch>,
) -> Result<()> {
    let mut walk = conn::ChannelWalk::new(plan.spread, id, plan.prefixes.len());
    let cmd_len = plan.prefixes.first().map_or(0, Vec::len) + 16 + plan.suffix.len();
    let mut out = Vec::with_capacity(plan.window * (cmd_len + 16));
    let start = shared.window_start.load(Ordering::Relaxed);
    let end = shared.window_end.load(Ordering::Relaxed);
    loop {
        // With a target rate, wait for a publish to be due first.
        let mut allowed = plan.window;
        if let Some(t) = &tickets {
            let Ok(ticket) = t.acquire().await else {
                return Ok(());
            };
            ticket.forget();
            allowed = 1 + t.available_permits().min(plan.window - 1);
        }
        let Ok(first) = slots.acquire().await else {
            return Ok(());
        };
        first.forget();
        let mut count = 1;
        let extra = slots.available_permits().min(allowed - 1);
        if extra > 0 {
            if let Ok(more) = slots.try_acquire_many(u32::try_from(extra).unwrap_or(1)) {
                more.forget();
                count += extra;
            }
        }
        if let (Some(t), true) = (&tickets, count > 1) {
            // Take the tickets of the extra publishes (they were seen
            // available, and only this task takes them).
            match t.try_acquire_many(u32::try_from(count - 1).unwrap_or(0)) {
                Ok(p) => p.forget(),
                Err(_) => {
                    slots.add_permits(count - 1);
                    count = 1;
                }
            }
        }
        let now = shared.now_ns();
        if now >= end {
            return Ok(());
        }
        out.clear();
        let first = walk.clone();
        for channel in walk.by_ref().take(count) {
            out.extend_from_slice(&plan.prefixes[channel]);
            let at = out.len();
            out.resize(at + 16, 0);
            resp::put_hex16(&mut out[at..], now);
            out.extend_from_slice(&plan.suffix);
        }
        let batch = Batch {
            count,
            in_window: now >= start,
            channels: first,
        };
        if tx.send(batch).is_err() {
            return Ok(()); // the reader has stopped; it reports why
        }
        match tokio::time::timeout(plan.timeout, wr.write_all(&out)).await {
            Err(_) => {
                return Err(bench_err!(
                    "server stalled: a publish could not be written for {:?}",
                    plan.timeout
                ))
            }
            Ok(Err(e)) => return Err(bench_err!("writing to server: {e}")),
            Ok(Ok(())) => {}
        }
    }
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    timeout: Duration,
    slots: Arc<Semaphore>,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    fast_subscribers: &[u64],
) -> Result<PubStats> {
    let mut stats = PubStats::default();
    let mut queue: VecDeque<Batch> = VecDeque::new();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut start = 0;
    loop {
        if queue.is_empty() {
            // Nothing in flight: wait for the writer (it may be pacing).
            match rx.recv().await {
                Some(b) => queue.push_back(b),
                None => break,
            }
        }
        conn::compact(&mut buf, &mut start, 16 * 1024);
        match tokio::time::timeout(timeout, rd.read_buf(&mut buf)).await {
            Err(_) => {
                return Err(bench_err!(
                    "server stalled: no reply to PUBLISH for {timeout:?}"
                ))
            }
            Ok(Err(e)) => return Err(bench_err!("reading from server: {e}")),
            Ok(Ok(0)) => return Err(bench_err!("server closed the connection")),
            Ok(Ok(_)) => {}
        }
        let mut released = 0;
        while let Some((reply, n)) = resp::parse_reply(&buf[start..])? {
            start += n;
            if queue.is_empty() {
                while let Ok(b) = rx.try_recv() {
                    queue.push_back(b);
                }
            }
            let Some(front) = queue.front_mut() else {
                return Err(bench_err!("server sent a reply to no request"));
            };
            let channel = front.channels.next().unwrap_or(0);
            match reply {
                Reply::Integer(v) => {
                    stats.replied_total += 1;
                    if front.in_window {
                        stats.published += 1;
                        stats.expected += u64::try_from(v).unwrap_or(0);
                        stats.fast_expected += fast_subscribers.get(channel).copied().unwrap_or(0);
                    }
                }
                Reply::Error(e) => return Err(bench_err!("server refused the publish: {e}")),
                Reply::Other(f) => return Err(bench_err!("unexpected reply to a publish: {f}")),
            }
            front.count -= 1;
            if front.count == 0 {
                queue.pop_front();
            }
            released += 1;
        }
        slots.add_permits(released);
    }
    Ok(stats)
}

/// Starts the pacing thread for a target rate: it adds one permit to each
/// publisher's `tickets` for every publish that is due at `rate_per_publisher`
/// per second from `t0` (ns since the epoch), until `end`, when it closes
/// them. A thread with a
/// fine sleep paces far more evenly than the runtime's 1 ms timer.
pub fn spawn_pacer(
    shared: Arc<Shared>,
    tickets: Vec<Arc<Semaphore>>,
    rate_per_publisher: f64,
    t0: u64,
    end: u64,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // Tick at the publish interval, between 20 us and 1 ms.
    let total_rate = rate_per_publisher * tickets.len() as f64;
    let tick = Duration::from_secs_f64((1.0 / total_rate).clamp(20e-6, 1e-3));
    std::thread::Builder::new()
        .name("herald-bench-pacer".into())
        .spawn(move || {
            let mut issued: u64 = 0;
            loop {
                let now = shared.now_ns();
                if now >= end || shared.stopping.load(Ordering::Relaxed) {
                    // Wakes the writers waiting for a ticket: they stop.
                    for t in &tickets {
                        t.close();
                    }
                    return;
                }
                let elapsed = now.saturating_sub(t0) as f64 / 1e9;
                let due = (elapsed * rate_per_publisher) as u64 + 1;
                if due > issued {
                    let add = usize::try_from(due - issued).unwrap_or(usize::MAX);
                    for t in &tickets {
                        t.add_permits(add);
                    }
                    issued = due;
                }
                std::thread::sleep(tick);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_parts_make_a_valid_command() {
        let (prefixes, suffix) = command_parts(b"SPUBLISH", 3, 20);
        assert_eq!(prefixes.len(), 3);
        let mut cmd = prefixes[2].clone();
        let mut stamp = [0u8; 16];
        resp::put_hex16(&mut stamp, 42);
        cmd.extend_from_slice(&stamp);
        cmd.extend_from_slice(&suffix);
        let mut payload = stamp.to_vec();
        payload.extend_from_slice(b"xxxx");
        let mut expected = Vec::new();
        resp::encode_command(&mut expected, &[b"SPUBLISH", b"ch:2:x", &payload]);
        assert_eq!(cmd, expected);
    }
}
