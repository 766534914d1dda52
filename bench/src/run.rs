//! Orchestration: the load run (subscribe everyone, publish through warm-up
//! and the measured window, drain, account) and the connection-only mode
//! (establish connections and subscriptions, say READY, hold them).

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::conn::{self, Conn, Mode, Result};
use crate::publisher::{self, PubStats, PublishPlan};
use crate::report::{self, CpuUse, HoldOutcome, Latency, Outcome, SlowOutcome};
use crate::subscriber::{self, Shared};
use crate::Args;

/// Connections being set up at once (keeps the server's accept backlog
/// from overflowing when opening thousands).
const CONNECT_CONCURRENCY: usize = 64;

/// The drain ends early once no message has arrived for this long.
const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// Free space a subscriber keeps in its receive buffer before each read:
/// large for a few subscribers, smaller when there are thousands.
fn read_size(subscribers: usize) -> usize {
    match subscribers {
        0..=100 => 256 * 1024,
        101..=2000 => 64 * 1024,
        _ => 16 * 1024,
    }
}

/// How often the slow subscribers' presence is checked (CLIENT LIST).
const SLOW_POLL: Duration = Duration::from_millis(100);

/// The connection name of slow subscriber `i` (found again in CLIENT LIST).
fn slow_name(i: usize) -> String {
    format!("herald-bench-slow-{i}")
}

/// Opens a connection and makes a subscriber of it: HELLO 3 if asked,
/// CLIENT SETNAME if `name` is given, then the subscriptions of subscriber
/// `id` and its extra patterns. Returns the connection and the number of
/// subscriptions made.
async fn open_subscriber(
    a: &Args,
    id: usize,
    buf_size: usize,
    name: Option<&str>,
) -> Result<(Conn, usize)> {
    let mut c = Conn::connect(&a.addr(), a.timeout_duration(), buf_size).await?;
    if a.resp == 3 {
        c.hello3().await?;
    }
    if let Some(name) = name {
        c.command(&[b"CLIENT", b"SETNAME", name.as_bytes()]).await?;
    }
    let k = a.channels_per_sub;
    let mut names: Vec<String> = conn::subscriber_channels(id, k, a.channels)
        .map(|ch| match a.mode {
            Mode::Pattern => conn::channel_pattern(ch),
            Mode::Plain | Mode::Sharded => conn::channel_name(ch),
        })
        .collect();
    let extras: Vec<String> = (0..a.extra_patterns)
        .map(|j| conn::extra_pattern(id, j))
        .collect();
    let count = names.len() + extras.len();
    if a.mode == Mode::Pattern {
        names.extend(extras);
        c.subscribe(b"PSUBSCRIBE", &names).await?;
    } else {
        c.subscribe(a.mode.subscribe_command(), &names).await?;
        c.subscribe(b"PSUBSCRIBE", &extras).await?;
    }
    if k == 0 && count == 0 {
        // An idle connection: make sure the server has really taken it.
        let reply = c.command(&[b"PING"]).await?;
        if !matches!(reply, crate::resp::Frame::Simple(ref s) if s == "PONG") {
            return Err(bench_err!("unexpected reply to PING: {reply}"));
        }
    }
    Ok((c, count))
}

/// Runs the load: returns what was measured, or an error if the server
/// failed (refused, died, stalled) in a way that spoils the run.
pub async fn load(a: Arc<Args>, threads: usize) -> Result<Outcome> {
    let shards = a.subscribers.clamp(1, 4 * threads.max(1));
    let shared = Arc::new(Shared::new(shards)?);
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<()>>();
    let rsize = read_size(a.subscribers);
    let mut subscribers: Vec<JoinHandle<()>> = Vec::with_capacity(a.subscribers);
    for id in 0..a.subscribers {
        let (a, shared, gate, ready) = (a.clone(), shared.clone(), gate.clone(), ready_tx.clone());
        subscribers.push(tokio::spawn(async move {
            let opened = match gate.acquire().await {
                Ok(_permit) => open_subscriber(&a, id, rsize, None).await,
                Err(_) => Err(bench_err!("setup cancelled")),
            };
            match opened {
                Ok((c, _)) => {
                    let _ = ready.send(Ok(()));
                    subscriber::receive_loop(c, id, &shared, rsize).await;
                }
                Err(e) => {
                    let _ = ready.send(Err(bench_err!("subscriber {id}: {e}")));
                }
            }
        }));
    }
    // Slow subscribers take the ids after the others (same channel
    // assignment rule), and a name to be found in CLIENT LIST.
    for i in 0..a.slow_subscribers {
        let id = a.subscribers + i;
        let (a, shared, gate, ready) = (a.clone(), shared.clone(), gate.clone(), ready_tx.clone());
        subscribers.push(tokio::spawn(async move {
            let name = slow_name(i);
            let opened = match gate.acquire().await {
                Ok(_permit) => open_subscriber(&a, id, 4096, Some(name.as_str())).await,
                Err(_) => Err(bench_err!("setup cancelled")),
            };
            match opened {
                Ok((c, _)) => {
                    let _ = ready.send(Ok(()));
                    subscriber::slow_loop(c, &shared).await;
                }
                Err(e) => {
                    let _ = ready.send(Err(bench_err!("slow subscriber {i}: {e}")));
                }
            }
        }));
    }
    drop(ready_tx);
    let outcome = measure(&a, threads, &shared, &mut ready_rx).await;
    shared.stopping.store(true, Ordering::Relaxed);
    for s in &subscribers {
        s.abort();
    }
    outcome
}

/// Per channel, how many of the (fast) subscribers listen on it.
fn fast_per_channel(a: &Args) -> Vec<u64> {
    let mut counts = vec![0u64; a.channels];
    for id in 0..a.subscribers {
        for ch in conn::subscriber_channels(id, a.channels_per_sub, a.channels) {
            if let Some(n) = counts.get_mut(ch) {
                *n += 1;
            }
        }
    }
    counts
}

/// Watches the slow subscribers from a connection of its own: polls CLIENT
/// LIST every [`SLOW_POLL`] until the run stops, and returns, per slow
/// subscriber, when (ns since the epoch) it was first seen gone, or `None`
/// if it is still connected. An error if the server cannot be asked.
async fn watch_slow(a: Arc<Args>, shared: Arc<Shared>) -> Result<Vec<Option<u64>>> {
    let mut c = Conn::connect(&a.addr(), a.timeout_duration(), 64 * 1024).await?;
    let names: Vec<String> = (0..a.slow_subscribers).map(slow_name).collect();
    let mut gone: Vec<Option<u64>> = vec![None; names.len()];
    loop {
        // One last look after the run stopped.
        let last = shared.stopping.load(Ordering::Relaxed);
        let list = match c.command(&[b"CLIENT", b"LIST"]).await? {
            crate::resp::Frame::Bulk(b) => b,
            other => return Err(bench_err!("unexpected reply to CLIENT LIST: {other}")),
        };
        let now = shared.now_ns();
        let present = present_names(&list);
        for (i, name) in names.iter().enumerate() {
            if gone[i].is_none() && !present.contains(name.as_str()) {
                gone[i] = Some(now);
            }
        }
        if last || gone.iter().all(Option::is_some) {
            return Ok(gone);
        }
        tokio::time::sleep(SLOW_POLL).await;
    }
}

/// The `name=` values of a CLIENT LIST reply.
fn present_names(list: &[u8]) -> std::collections::HashSet<&str> {
    let text = std::str::from_utf8(list).unwrap_or("");
    text.lines()
        .filter_map(|line| {
            line.split(' ')
                .find_map(|field| field.strip_prefix("name="))
                .filter(|n| !n.is_empty())
        })
        .collect()
}

async fn measure(
    a: &Args,
    threads: usize,
    shared: &Arc<Shared>,
    ready_rx: &mut mpsc::UnboundedReceiver<Result<()>>,
) -> Result<Outcome> {
    let timeout = a.timeout_duration();
    // Every subscriber must be ready; a stall of `timeout` without progress
    // fails the run.
    for _ in 0..a.subscribers + a.slow_subscribers {
        match tokio::time::timeout(timeout, ready_rx.recv()).await {
            Err(_) => {
                return Err(bench_err!(
                    "server stalled: no subscriber became ready for {timeout:?}"
                ))
            }
            Ok(None) => return Err(bench_err!("subscriber setup ended early")),
            Ok(Some(r)) => r?,
        }
    }

    let mut pubs = Vec::with_capacity(a.publishers);
    for id in 0..a.publishers {
        let mut c = Conn::connect(&a.addr(), timeout, 0)
            .await
            .map_err(|e| bench_err!("publisher {id}: {e}"))?;
        // A round trip first, so that a refused connection (e.g. too many
        // clients) is reported as such.
        let ready = if a.resp == 3 {
            c.hello3().await
        } else {
            c.command(&[b"PING"]).await.map(|_| ())
        };
        ready.map_err(|e| bench_err!("publisher {id}: {e}"))?;
        pubs.push(c);
    }

    let (prefixes, suffix) =
        publisher::command_parts(a.mode.publish_command(), a.channels, a.payload);
    let t0 = shared.now_ns();
    let start = t0 + secs_ns(a.warmup);
    let end = start + secs_ns(a.duration);
    shared.window_start.store(start, Ordering::Relaxed);
    shared.window_end.store(end, Ordering::Relaxed);
    let plan = Arc::new(PublishPlan {
        prefixes,
        suffix,
        window: a.pipeline,
        timeout,
        fast_subscribers: fast_per_channel(a),
        spread: a.spread,
    });
    let watcher = (a.slow_subscribers > 0).then(|| {
        let (a, shared) = (Arc::new(a.clone()), shared.clone());
        tokio::spawn(async move {
            // Start looking when the slow subscribers stop reading.
            let start = shared.window_start.load(Ordering::Relaxed);
            let at = shared.epoch + Duration::from_nanos(start);
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            watch_slow(a, shared).await
        })
    });
    let tickets: Vec<Arc<Semaphore>> = if a.rate > 0.0 {
        (0..a.publishers)
            .map(|_| Arc::new(Semaphore::new(0)))
            .collect()
    } else {
        Vec::new()
    };
    if a.rate > 0.0 {
        let rate = a.rate / a.publishers as f64;
        publisher::spawn_pacer(shared.clone(), tickets.clone(), rate, t0, end)
            .map_err(|e| bench_err!("cannot start the pacing thread: {e}"))?;
    }

    let cpu_task = {
        let shared = shared.clone();
        let server = a.server_pid;
        tokio::spawn(async move { sample_cpu(&shared, start, end, threads, server).await })
    };
    let mut set = JoinSet::new();
    for (id, c) in pubs.into_iter().enumerate() {
        let (plan, shared) = (plan.clone(), shared.clone());
        let tickets = tickets.get(id).cloned();
        set.spawn(async move {
            publisher::run(c, id, plan, shared, tickets)
                .await
                .map_err(|e| bench_err!("publisher {id}: {e}"))
        });
    }
    let mut totals = PubStats::default();
    while let Some(joined) = set.join_next().await {
        let stats = joined.map_err(|e| bench_err!("publisher task failed: {e}"))??;
        totals.published += stats.published;
        totals.expected += stats.expected;
        totals.replied_total += stats.replied_total;
        totals.fast_expected += stats.fast_expected;
    }
    let cpu = cpu_task.await.ok().flatten();

    // Drain: wait for the promised deliveries, within bounds.
    let drain_start = Instant::now();
    let drain_limit = Duration::from_secs_f64(a.drain);
    let mut last = shared.received.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    loop {
        let got = shared.received.load(Ordering::Relaxed);
        if got >= totals.expected || drain_start.elapsed() >= drain_limit {
            break;
        }
        if got != last {
            last = got;
            last_change = Instant::now();
        } else if last_change.elapsed() >= DRAIN_IDLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain = drain_start.elapsed().as_secs_f64();
    shared.stopping.store(true, Ordering::Relaxed);
    let slow = match watcher {
        None => None,
        Some(w) => {
            // The watcher's last look is one command away.
            let gone = match tokio::time::timeout(timeout + SLOW_POLL, w).await {
                Err(_) => Err(bench_err!(
                    "server stalled: no reply to CLIENT LIST for {timeout:?}"
                )),
                Ok(Err(e)) => Err(bench_err!("slow-subscriber watcher failed: {e}")),
                Ok(Ok(r)) => r,
            }?;
            Some(SlowOutcome::new(&gone, start))
        }
    };

    let histogram = shared.merged_histogram()?;
    let note = shared
        .first_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(Outcome {
        target: a.addr(),
        threads,
        published: totals.published,
        expected: totals.expected,
        fast_expected: totals.fast_expected,
        slow,
        received: shared.received.load(Ordering::Relaxed),
        received_total: shared.received_total.load(Ordering::Relaxed),
        disconnects: shared.disconnects.load(Ordering::Relaxed),
        window: a.duration,
        drain,
        latency: Latency::from_histogram(&histogram),
        cpu,
        note,
    })
}

fn secs_ns(s: f64) -> u64 {
    (s * 1e9) as u64
}

/// Samples the process's CPU time, and each runtime thread's (and the
/// server's, given its pid), at the window's start and end.
async fn sample_cpu(
    shared: &Shared,
    start: u64,
    end: u64,
    threads: usize,
    server: Option<u32>,
) -> Option<CpuUse> {
    let at = |ns: u64| tokio::time::Instant::from_std(shared.epoch + Duration::from_nanos(ns));
    let server_cpu = || server.and_then(report::process_cpu_time);
    tokio::time::sleep_until(at(start)).await;
    let (c0, t0, s0, w0) = (
        report::cpu_time()?,
        report::thread_cpu_times(),
        server_cpu(),
        Instant::now(),
    );
    tokio::time::sleep_until(at(end)).await;
    let (c1, t1, s1, w1) = (
        report::cpu_time()?,
        report::thread_cpu_times(),
        server_cpu(),
        Instant::now(),
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wall = w1.duration_since(w0).as_secs_f64();
    Some(CpuUse {
        busy: c1.saturating_sub(c0).as_secs_f64(),
        wall,
        cores: threads.min(cores).max(1),
        busiest_thread: report::busiest_thread(&t0, &t1, wall),
        server_busy: s0
            .zip(s1)
            .map(|(s0, s1)| s1.saturating_sub(s0).as_secs_f64()),
    })
}

/// The connection-only mode: opens `--subscribers` connections, each with
/// `--channels-per-sub` subscriptions (0: idle connections, checked with a
/// PING), prints `READY` once all are established, and holds them for
/// `--hold` seconds.
pub async fn hold(a: Arc<Args>, hold_for: Duration) -> Result<HoldOutcome> {
    let began = Instant::now();
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut set = JoinSet::new();
    for id in 0..a.subscribers {
        let (a, gate) = (a.clone(), gate.clone());
        set.spawn(async move {
            let _permit = gate
                .acquire()
                .await
                .map_err(|_| bench_err!("setup cancelled"))?;
            open_subscriber(&a, id, 4096, None)
                .await
                .map_err(|e| bench_err!("connection {id}: {e}"))
        });
    }
    let timeout = a.timeout_duration();
    let mut conns = Vec::with_capacity(a.subscribers);
    let mut subscriptions = 0;
    loop {
        match tokio::time::timeout(timeout, set.join_next()).await {
            Err(_) => {
                return Err(bench_err!(
                "server stalled: no connection was established for {timeout:?} ({} of {} so far)",
                conns.len(),
                a.subscribers
            ))
            }
            Ok(None) => break,
            Ok(Some(joined)) => {
                let (c, n) = joined.map_err(|e| bench_err!("connection task failed: {e}"))??;
                subscriptions += n;
                conns.push(c);
            }
        }
    }
    let established = began.elapsed().as_secs_f64();
    println!(
        "READY connections={} subscriptions={subscriptions}",
        conns.len()
    );
    let _ = std::io::stdout().flush();
    tokio::time::sleep(hold_for).await;
    // A connection the server closed reads as end-of-file right away.
    let mut closed = 0;
    let mut probe = [0u8; 1];
    for c in &conns {
        if matches!(c.stream.try_read(&mut probe), Ok(0)) {
            closed += 1;
        }
    }
    Ok(HoldOutcome {
        target: a.addr(),
        connections: conns.len(),
        subscriptions,
        established,
        held: hold_for.as_secs_f64(),
        closed,
    })
}
