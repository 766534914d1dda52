//! Subscribers: each one subscribes, reports itself ready, then reads pushes
//! out of a large receive buffer, counting the messages sent inside the
//! measured window and recording their end-to-end latency.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::io::AsyncReadExt;

use crate::conn::{self, Conn, Result};
use crate::resp::{self, Incoming, PushKind};

/// Largest latency the histograms hold (longer ones are clamped): 60 s.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// State shared by every task of a run.
pub struct Shared {
    /// Origin of all the timestamps carried in payloads.
    pub epoch: Instant,
    /// Start of the measured window, in ns since `epoch` (u64::MAX until set).
    pub window_start: AtomicU64,
    /// End of the measured window, in ns since `epoch`.
    pub window_end: AtomicU64,
    /// Messages received whose send time is inside the window.
    pub received: AtomicU64,
    /// Messages received in all (including warm-up and foreign ones).
    pub received_total: AtomicU64,
    /// Connections the server closed or broke while the run was going on.
    pub disconnects: AtomicU64,
    /// The first unexpected event seen by a subscriber, for the report.
    pub first_error: Mutex<Option<String>>,
    /// Set when the run is over: closed connections no longer count.
    pub stopping: AtomicBool,
    /// Latency histograms (ns), shared by subscribers in shards to bound
    /// memory with many subscribers.
    pub histograms: Vec<Mutex<Histogram<u64>>>,
}

impl Shared {
    /// Creates the shared state with `shards` latency histograms.
    pub fn new(shards: usize) -> Result<Shared> {
        let mut histograms = Vec::with_capacity(shards);
        for _ in 0..shards.max(1) {
            let h = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .map_err(|e| bench_err!("creating a histogram: {e}"))?;
            histograms.push(Mutex::new(h));
        }
        Ok(Shared {
            epoch: Instant::now(),
            window_start: AtomicU64::new(u64::MAX),
            window_end: AtomicU64::new(u64::MAX),
            received: AtomicU64::new(0),
            received_total: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            first_error: Mutex::new(None),
            stopping: AtomicBool::new(false),
            histograms,
        })
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records an unexpected event (only the first one is kept).
    pub fn note_error(&self, msg: String) {
        let mut slot = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(msg);
        }
    }

    /// All latency shards merged into one histogram.
    pub fn merged_histogram(&self) -> Result<Histogram<u64>> {
        let mut all = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .map_err(|e| bench_err!("creating a histogram: {e}"))?;
        for h in &self.histograms {
            let h = h.lock().unwrap_or_else(PoisonError::into_inner);
            all.add(&*h)
                .map_err(|e| bench_err!("merging histograms: {e}"))?;
        }
        Ok(all)
    }
}

/// Receives messages on an already subscribed connection until the server
/// closes it or the task is aborted.
pub async fn receive_loop(mut conn: Conn, id: usize, shared: &Shared, read_size: usize) {
    let shard = &shared.histograms[id % shared.histograms.len()];
    // Parse whatever arrived together with the subscription confirmations.
    let mut fresh = conn.buf.len() > conn.start;
    loop {
        if !fresh {
            conn::compact(&mut conn.buf, &mut conn.start, read_size);
            match conn.stream.read_buf(&mut conn.buf).await {
                Ok(0) => {
                    disconnected(shared, id, "server closed the connection".into());
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    disconnected(shared, id, format!("read error: {e}"));
                    return;
                }
            }
        }
        fresh = false;
        if let Err(e) = process(&mut conn, shared, shard) {
            disconnected(shared, id, e.to_string());
            return;
        }
    }
}

/// Parses every complete frame in the buffer.
fn process(conn: &mut Conn, shared: &Shared, shard: &Mutex<Histogram<u64>>) -> Result<()> {
    let now = shared.now_ns();
    let start = shared.window_start.load(Ordering::Relaxed);
    let end = shared.window_end.load(Ordering::Relaxed);
    let mut in_window = 0u64;
    let mut total = 0u64;
    let mut hist = shard.lock().unwrap_or_else(PoisonError::into_inner);
    while let Some((incoming, n)) = resp::parse_incoming(&conn.buf[conn.start..])? {
        conn.start += n;
        match incoming {
            Incoming::Push {
                kind: PushKind::Message | PushKind::PMessage | PushKind::SMessage,
                last,
            } => {
                total += 1;
                if let Some(sent) = resp::parse_hex16(last) {
                    if sent >= start && sent < end {
                        in_window += 1;
                        hist.saturating_record(now.saturating_sub(sent).max(1));
                    }
                }
            }
            Incoming::Frame(resp::Frame::Error(e)) => {
                shared.note_error(format!("a subscriber got an error reply: {e}"));
            }
            _ => {}
        }
    }
    drop(hist);
    if total > 0 {
        shared.received_total.fetch_add(total, Ordering::Relaxed);
    }
    if in_window > 0 {
        shared.received.fetch_add(in_window, Ordering::Relaxed);
    }
    Ok(())
}

fn disconnected(shared: &Shared, id: usize, why: String) {
    if shared.stopping.load(Ordering::Relaxed) {
        return;
    }
    shared.disconnects.fetch_add(1, Ordering::Relaxed);
    shared.note_error(format!("subscriber {id}: {why}"));
}

/// A slow subscriber: reads (and discards) what arrives until the measured
/// window starts, then stops reading for good and holds the connection, so
/// that its socket buffers fill and the server's output-buffer limit
/// applies. Returns when the run is over (the task is aborted) or the
/// connection fails before the window.
pub async fn slow_loop(mut conn: Conn, shared: &Shared) {
    let mut scratch = vec![0u8; 64 * 1024];
    loop {
        let start = shared.window_start.load(Ordering::Relaxed);
        if shared.now_ns() >= start || shared.stopping.load(Ordering::Relaxed) {
            break;
        }
        // Short reads, so that the window's start is noticed within 5 ms.
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(5),
            conn.stream.read(&mut scratch),
        )
        .await;
        match read {
            Err(_) | Ok(Ok(1..)) => {}
            Ok(Ok(0)) | Ok(Err(_)) => return,
        }
    }
    // Hold the socket without reading until the run ends.
    std::future::pending::<()>().await;
    drop(conn);
}
