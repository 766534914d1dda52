//! `herald-bench soak`: a bounded soak test against a running server.
//!
//! For `--duration` seconds, N connections (10,000 by default; `--quick`:
//! 1,000 for 15 s) do at once what wears a pub/sub server down: steady
//! subscribers, subscription churn over many channels and patterns, clients
//! that close in the middle of a command, pipelined garbage, slow readers
//! that never read, paced publishers and a flooding one (see `roles.rs`).
//! Every reading client checks that each publisher's messages arrive in
//! order.
//!
//! Before and after, it snapshots the server (`probe.rs`): PUBSUB NUMSUB
//! over every channel the soak may use, NUMPAT, CHANNELS, INFO
//! `connected_clients` and, given `--pid`, the process's RSS. Once every
//! soak connection is closed it polls, for at most `--settle` seconds, until
//! the server is back to its baseline. The RSS baseline is taken after a
//! warm-up round of the same load (`--warmup`): allocators keep the heap
//! they grew to (glibc's malloc does not return it), so a leak shows as
//! growth from one round to the next, not as the distance to a cold start. It exits 0 if it is, no message was
//! reordered and no well-behaved client failed; 1 otherwise; 2 on bad
//! arguments or if the soak could not run (server down, refused, stalled).

mod probe;
mod roles;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::conn::Result;
use probe::Snapshot;
use roles::Ctx;

/// Connections opened at once.
const CONNECT_CONCURRENCY: usize = 64;

/// Slow readers keep at most this much queued at the server in total
/// (their number is capped by it and by the pubsub output-buffer limit).
const SLOW_BUDGET: u64 = 1 << 30;

/// The soak's command line.
#[derive(clap::Args, Debug, Clone)]
pub struct SoakArgs {
    /// Server host (loopback: the soak reads the server's /proc entry).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// The server's process id: its RSS is checked (without it, it is not).
    #[arg(long)]
    pub pid: Option<u32>,
    /// The short form: 1,000 connections, 15 s of warm-up and 15 s measured,
    /// 20 s to settle (each of these can still be set).
    #[arg(long)]
    pub quick: bool,
    /// Connections held at once, all roles together [default: 10000].
    #[arg(long)]
    pub connections: Option<usize>,
    /// Seconds of load [default: 60].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds of a warm-up round before the measured one, after which the
    /// RSS baseline is taken [default: as --duration: the server's heap then
    /// reaches the same high-water mark]; 0: none (RSS is then compared with
    /// the server's before the soak).
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Longest wait, in seconds, for the server to return to its baseline
    /// once every soak connection is closed [default: 30].
    #[arg(long)]
    pub settle: Option<f64>,
    /// Paced publishes per second, over 4 publishers [default: 4000; quick: 2000].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Publishes in flight for the flooding publisher.
    #[arg(long, default_value_t = 32)]
    pub flood_window: usize,
    /// Message size in bytes (at least 20: publisher id and sequence).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// RSS may end this many percent above its baseline ...
    #[arg(long, default_value_t = 10.0)]
    pub rss_tolerance_pct: f64,
    /// ... or this many MiB, whichever is larger.
    #[arg(long, default_value_t = 8.0)]
    pub rss_tolerance_mib: f64,
    /// Longest wait, in seconds, for any answer from the server.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Random seed (default: from the clock); names the soak's channels.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print one JSON line instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

/// The soak's settings, resolved from the arguments.
#[derive(Debug, Clone)]
pub struct Settings {
    connections: usize,
    duration: f64,
    warmup: f64,
    settle: f64,
    rate: f64,
    seed: u64,
}

impl SoakArgs {
    /// Resolves the defaults (which depend on `--quick`) and checks ranges.
    pub fn settings(&self) -> std::result::Result<Settings, String> {
        let q = self.quick;
        let duration = self.duration.unwrap_or(if q { 15.0 } else { 60.0 });
        let s = Settings {
            connections: self.connections.unwrap_or(if q { 1000 } else { 10_000 }),
            duration,
            warmup: self.warmup.unwrap_or(duration),
            settle: self.settle.unwrap_or(if q { 20.0 } else { 30.0 }),
            rate: self.rate.unwrap_or(if q { 2000.0 } else { 4000.0 }),
            seed: self.seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            }),
        };
        let secs = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v < 1e6 {
                Ok(())
            } else {
                Err(format!("--{name} must be a positive number of seconds"))
            }
        };
        secs("duration", s.duration)?;
        secs("settle", s.settle)?;
        if !(s.warmup.is_finite() && (0.0..1e6).contains(&s.warmup)) {
            return Err("--warmup must be a number of seconds >= 0".into());
        }
        secs("timeout", self.timeout)?;
        if s.connections < 20 {
            return Err("--connections must be at least 20".into());
        }
        if !(s.rate.is_finite() && s.rate > 0.0) {
            return Err("--rate must be > 0".into());
        }
        if self.payload < 20 || self.payload > 1 << 20 {
            return Err("--payload must be between 20 and 1048576 bytes".into());
        }
        if self.flood_window == 0 || self.flood_window > 10_000 {
            return Err("--flood-window must be between 1 and 10000".into());
        }
        for (name, v) in [
            ("rss-tolerance-pct", self.rss_tolerance_pct),
            ("rss-tolerance-mib", self.rss_tolerance_mib),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("--{name} must be >= 0"));
            }
        }
        Ok(s)
    }

    fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How many clients play each role.
#[derive(Debug, Clone, Copy, Default)]
pub struct Roles {
    steady: usize,
    churners: usize,
    flood_readers: usize,
    half_frame: usize,
    garbage: usize,
    slow: usize,
    publishers: usize,
    flooders: usize,
}

impl Roles {
    /// Splits `n` connections; at most `max_slow` slow readers.
    fn split(n: usize, max_slow: usize) -> Roles {
        let mut r = Roles {
            churners: n / 10,
            flood_readers: 2,
            half_frame: n / 20,
            garbage: n / 20,
            slow: (n / 100).clamp(1, max_slow.max(1)).min(max_slow),
            publishers: 4,
            flooders: 1,
            steady: 0,
        };
        r.steady = n - r.total();
        r
    }

    fn total(&self) -> usize {
        self.steady
            + self.churners
            + self.flood_readers
            + self.half_frame
            + self.garbage
            + self.slow
            + self.publishers
            + self.flooders
    }
}

/// Everything the soak found.
#[derive(Debug, Clone)]
pub struct Outcome {
    target: String,
    settings: Settings,
    roles: Roles,
    /// Seconds the measured round actually ran.
    ran: f64,
    /// RSS after the warm-up round settled (the RSS baseline), KiB.
    warm_rss_kb: Option<u64>,
    baseline: Snapshot,
    after: Snapshot,
    /// RSS allowance over the baseline, KiB.
    allowance_kb: u64,
    /// Seconds it took to get back to the baseline (or the settle limit).
    settled_in: f64,
    peak_clients: i64,
    peak_rss_kb: Option<u64>,
    /// Counters (see `roles::Stats`).
    counts: serde_json::Value,
    reorders: u64,
    failures: u64,
    notes: Vec<String>,
    /// What is not back to baseline.
    differences: Vec<String>,
}

impl Outcome {
    /// True if the soak passed.
    pub fn passed(&self) -> bool {
        self.differences.is_empty() && self.reorders == 0 && self.failures == 0
    }
}

/// Runs the soak. An error means it could not run (or the server died or
/// stalled); a failed check is an [`Outcome`] that did not pass.
pub async fn run(a: Arc<SoakArgs>, s: Settings) -> Result<Outcome> {
    let timeout = Duration::from_secs_f64(a.timeout);
    let addr = a.addr();
    let sockaddr = tokio::net::lookup_host(&addr)
        .await
        .map_err(|e| bench_err!("resolving {addr}: {e}"))?
        .next()
        .ok_or_else(|| bench_err!("resolving {addr}: no address"))?;
    if !sockaddr.ip().is_loopback() {
        return Err(bench_err!(
            "the soak runs against a loopback server only ({sockaddr} is not)"
        ));
    }
    if let Some(pid) = a.pid {
        if !probe::alive(pid) {
            return Err(bench_err!("no process {pid} (--pid)"));
        }
    }
    check_fd_limit(s.connections)?;
    let mut p = probe::connect(&addr, timeout).await?;
    let maxclients: Option<usize> = probe::config_get(&mut p, "maxclients")
        .await?
        .and_then(|v| v.parse().ok());
    if let Some(m) = maxclients {
        if s.connections + 16 > m {
            return Err(bench_err!(
                "the server's maxclients is {m}: too low for {} soak connections (start it with --maxclients {})",
                s.connections,
                s.connections + 100
            ));
        }
    }
    let max_slow = slow_cap(&mut p).await?;
    let roles = Roles::split(s.connections, max_slow);
    let make_ctx = || {
        Arc::new(Ctx {
            addr: addr.clone(),
            sockaddr,
            timeout,
            prefix: format!("soak:{:x}", s.seed % (1 << 48)),
            channels: (s.connections / 5).max(50),
            quiet: s.connections,
            xpatterns: (s.connections / 20).max(10),
            payload: a.payload,
            gate: Semaphore::new(CONNECT_CONCURRENCY),
            stats: roles::Stats::default(),
        })
    };
    let ctx = make_ctx();
    let names = ctx.all_channels();
    let baseline = probe::snapshot(&mut p, a.pid, &names, &ctx.prefix).await?;
    let settle_limit = Duration::from_secs_f64(s.settle);

    // The warm-up round: the same load, shorter. The RSS baseline is taken
    // after it, once the server has settled: the allocator keeps the heap it
    // grew to (glibc's malloc does not give freed memory back), so only the
    // growth from one round to the next tells a leak.
    let mut warm = None;
    if s.warmup > 0.0 {
        let w = make_ctx();
        round(&mut p, &a, &w, &roles, &s, s.warmup).await?;
        let (snap, _) =
            settle(&mut p, &a, &names, &w.prefix, &baseline, None, settle_limit).await?;
        warm = Some((w, snap));
    }
    let rss_base = warm.as_ref().map_or(baseline.rss_kb, |(_, w)| w.rss_kb);
    let allowance_kb = rss_base.map_or(0, |b| {
        probe::rss_allowance_kb(b, a.rss_tolerance_pct, a.rss_tolerance_mib)
    });

    // The measured round, then the settle.
    let (ran, peak_clients, peak_rss_kb) = round(&mut p, &a, &ctx, &roles, &s, s.duration).await?;
    let rss_check = rss_base.map(|b| (b, allowance_kb));
    let (after, settled_in) = settle(
        &mut p,
        &a,
        &names,
        &ctx.prefix,
        &baseline,
        rss_check,
        settle_limit,
    )
    .await?;
    let differences = check(&baseline, rss_check, &after);

    let st = &ctx.stats;
    let mut notes = st
        .notes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let failures_of = |st: &roles::Stats| {
        st.disconnects.load(Relaxed) + st.errors.load(Relaxed) + st.connect_errors.load(Relaxed)
    };
    let (mut reorders, mut failures) = (st.reorders.load(Relaxed), failures_of(st));
    if let Some((w, _)) = &warm {
        reorders += w.stats.reorders.load(Relaxed);
        failures += failures_of(&w.stats);
        let wn = w
            .stats
            .notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        notes.extend(wn.iter().map(|n| format!("(warm-up) {n}")));
    }
    let cut_offs = match (baseline.obl_disconnections, after.obl_disconnections) {
        (Some(b), Some(a)) => json!(a.saturating_sub(b)),
        _ => json!(null),
    };
    let counts = json!({
        "connects": st.connects.load(Relaxed),
        "connect_errors": st.connect_errors.load(Relaxed),
        "open_peak": st.open_peak.load(Relaxed),
        "published": st.published.load(Relaxed),
        "flooded": st.flooded.load(Relaxed),
        "received": st.received.load(Relaxed),
        "foreign": st.foreign.load(Relaxed),
        "reorders": st.reorders.load(Relaxed),
        "disconnects": st.disconnects.load(Relaxed),
        "flood_reader_cutoffs": st.flood_reader_cutoffs.load(Relaxed),
        "errors": st.errors.load(Relaxed),
        "churn_ops": st.churn_ops.load(Relaxed),
        "half_frames": st.half_frames.load(Relaxed),
        "garbage": st.garbage.load(Relaxed),
        "protocol_errors": st.protocol_errors.load(Relaxed),
        "garbage_closed": st.garbage_closed.load(Relaxed),
        "slow_cycles": st.slow_cycles.load(Relaxed),
        "output_limit_disconnections": cut_offs,
    });
    Ok(Outcome {
        target: addr,
        settings: s,
        roles,
        ran,
        warm_rss_kb: warm.as_ref().and_then(|(_, w)| w.rss_kb),
        baseline,
        after,
        allowance_kb,
        settled_in,
        peak_clients,
        peak_rss_kb,
        counts,
        reorders,
        failures,
        notes,
        differences,
    })
}

/// One round of load for `secs` seconds: returns how long it ran and the
/// peaks of connected_clients and RSS.
async fn round(
    p: &mut crate::conn::Conn,
    a: &SoakArgs,
    ctx: &Arc<Ctx>,
    roles: &Roles,
    s: &Settings,
    secs: f64,
) -> Result<(f64, i64, Option<u64>)> {
    let began = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    let mut set = JoinSet::new();
    spawn_roles(&mut set, ctx, roles, s, a.flood_window, deadline);
    let watched = watch(p, a, ctx, deadline).await;
    if watched.is_err() {
        set.abort_all();
    }
    // Tasks end at the deadline (their futures are dropped): bounded join.
    let joined = tokio::time::timeout(Duration::from_secs(10), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    if joined.is_err() {
        set.abort_all();
    }
    let (peak_clients, peak_rss) = watched?;
    Ok((began.elapsed().as_secs_f64(), peak_clients, peak_rss))
}

/// What is not back: the pub/sub and client figures against the pre-soak
/// `baseline`, and RSS against `rss` = (its baseline, allowance) if given.
fn check(baseline: &Snapshot, rss: Option<(u64, u64)>, now: &Snapshot) -> Vec<String> {
    let mut base = baseline.clone();
    base.rss_kb = rss.map(|(b, _)| b);
    let allowance = rss.map_or(0, |(_, a)| a);
    probe::differences(&base, now, allowance)
}

/// Polls every 250 ms, for at most `limit`, until [`check`] finds nothing;
/// returns the last snapshot and how long it took.
async fn settle(
    p: &mut crate::conn::Conn,
    a: &SoakArgs,
    names: &[String],
    prefix: &str,
    baseline: &Snapshot,
    rss: Option<(u64, u64)>,
    limit: Duration,
) -> Result<(Snapshot, f64)> {
    let start = Instant::now();
    loop {
        if let Some(pid) = a.pid {
            if !probe::alive(pid) {
                return Err(bench_err!("the server (pid {pid}) died"));
            }
        }
        let now = probe::snapshot(p, a.pid, names, prefix).await?;
        if check(baseline, rss, &now).is_empty() || start.elapsed() >= limit {
            return Ok((now, start.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Refuses a soak the open-files limit cannot hold.
fn check_fd_limit(connections: usize) -> Result<()> {
    use nix::sys::resource::{getrlimit, Resource};
    if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if (connections as u64) + 64 > soft {
            return Err(bench_err!(
                "the open-files limit is {soft}: too low for {connections} connections (raise it with ulimit -n)"
            ));
        }
    }
    Ok(())
}

/// The most slow readers the server's pubsub output-buffer limit allows
/// within [`SLOW_BUDGET`] (0 if it has no limit: they would grow forever).
async fn slow_cap(p: &mut crate::conn::Conn) -> Result<usize> {
    let limits = probe::config_get(p, "client-output-buffer-limit")
        .await?
        .unwrap_or_default();
    // "normal 0 0 0 replica 256mb 64mb 60 pubsub 32mb 8mb 60" (bytes in
    // redis-server's and herald's CONFIG GET).
    let words: Vec<&str> = limits.split_whitespace().collect();
    let per_client = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("pubsub"))
        .and_then(|i| {
            let hard: u64 = parse_size(words.get(i + 1)?)?;
            let soft: u64 = parse_size(words.get(i + 2)?)?;
            Some(if hard > 0 { hard } else { soft })
        });
    Ok(match per_client {
        Some(0) | None => 0,
        Some(b) => usize::try_from(SLOW_BUDGET / b).unwrap_or(usize::MAX),
    })
}

/// `123`, `8mb`, `1gb`, `64kb` (as redis.conf) in bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.to_ascii_lowercase();
    let (num, mul) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suffix, m)| s.strip_suffix(suffix).map(|n| (n.to_string(), *m)))
    .unwrap_or((s.clone(), 1));
    num.parse::<u64>().ok().map(|n| n.saturating_mul(mul))
}

/// Starts every client, each dropped at `deadline`.
fn spawn_roles(
    set: &mut JoinSet<()>,
    ctx: &Arc<Ctx>,
    r: &Roles,
    s: &Settings,
    flood_window: usize,
    deadline: tokio::time::Instant,
) {
    let seed = s.seed;
    let mut n = 0u64;
    let mut next_seed = || {
        n += 1;
        seed.wrapping_mul(6364136223846793005).wrapping_add(n)
    };
    // `spawn!(c => body)`: runs `body` (with `c: &Ctx`) until the deadline.
    macro_rules! spawn {
        ($c:ident => $body:expr) => {{
            let arc = ctx.clone();
            set.spawn(async move {
                let $c: &Ctx = &arc;
                let _ = tokio::time::timeout_at(deadline, $body).await;
            });
        }};
    }
    // Subscribers first, so that the publishers find them.
    for i in 0..r.steady {
        let sd = next_seed();
        spawn!(c => roles::subscriber(c, i, sd, false));
    }
    for i in 0..r.churners {
        let sd = next_seed();
        spawn!(c => roles::subscriber(c, i, sd, true));
    }
    for i in 0..r.flood_readers {
        spawn!(c => roles::flood_reader(c, i));
    }
    for _ in 0..r.half_frame {
        let sd = next_seed();
        spawn!(c => roles::half_frame(c, sd));
    }
    for _ in 0..r.garbage {
        let sd = next_seed();
        spawn!(c => roles::garbage(c, sd));
    }
    for _ in 0..r.slow {
        let sd = next_seed();
        spawn!(c => roles::slow_reader(c, sd));
    }
    let per = s.rate / r.publishers.max(1) as f64;
    for i in 0..r.publishers {
        let id = u16::try_from(i).unwrap_or(u16::MAX);
        spawn!(c => roles::publisher(c, id, per, 1));
    }
    for i in 0..r.flooders {
        let id = u16::try_from(r.publishers + i).unwrap_or(u16::MAX);
        spawn!(c => roles::publisher(c, id, 0.0, flood_window));
    }
}

/// Watches the server during the load, once a second: is the process
/// alive, does it answer (within the probe's timeout), how many clients and
/// how much memory. Returns the peaks of connected_clients and RSS; an
/// error if the server died or stalled.
async fn watch(
    p: &mut crate::conn::Conn,
    a: &SoakArgs,
    ctx: &Ctx,
    deadline: tokio::time::Instant,
) -> Result<(i64, Option<u64>)> {
    let mut peak_clients = 0i64;
    let mut peak_rss: Option<u64> = None;
    while tokio::time::Instant::now() < deadline {
        let next = tokio::time::Instant::now() + Duration::from_secs(1);
        tokio::time::sleep_until(deadline.min(next)).await;
        if let Some(pid) = a.pid {
            if !probe::alive(pid) {
                return Err(bench_err!("the server (pid {pid}) died during the soak"));
            }
            if let Some(kb) = probe::rss_kb(pid) {
                peak_rss = Some(peak_rss.map_or(kb, |p| p.max(kb)));
            }
        }
        match probe::info_field(p, "clients", "connected_clients").await {
            Ok(n) => {
                let n = n.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX));
                peak_clients = peak_clients.max(n);
            }
            Err(e) => {
                return Err(bench_err!(
                    "the server stopped answering during the soak ({e}; {} soak connections open)",
                    ctx.stats.open.load(Relaxed)
                ))
            }
        }
    }
    Ok((peak_clients, peak_rss))
}

/// The outcome as one JSON line.
pub fn json_line(o: &Outcome) -> String {
    let snap = |s: &Snapshot| {
        json!({
            "numsub": s.numsub, "numpat": s.numpat, "channels": s.channels,
            "soak_channels": s.soak_channels, "connected_clients": s.connected_clients,
            "rss_kb": s.rss_kb,
        })
    };
    json!({
        "server": o.target,
        "mode": "soak",
        "connections": o.settings.connections,
        "duration_s": o.settings.duration,
        "ran_s": (o.ran * 10.0).round() / 10.0,
        "seed": o.settings.seed,
        "rate": o.settings.rate,
        "roles": {
            "steady": o.roles.steady, "churners": o.roles.churners,
            "flood_readers": o.roles.flood_readers, "half_frame": o.roles.half_frame,
            "garbage": o.roles.garbage, "slow": o.roles.slow,
            "publishers": o.roles.publishers, "flooders": o.roles.flooders,
        },
        "counts": o.counts,
        "peak_connected_clients": o.peak_clients,
        "peak_rss_kb": o.peak_rss_kb,
        "baseline": snap(&o.baseline),
        "after": snap(&o.after),
        "warmup_s": o.settings.warmup,
        "rss_after_warmup_kb": o.warm_rss_kb,
        "rss_allowance_kb": o.allowance_kb,
        "settled_s": (o.settled_in * 100.0).round() / 100.0,
        "differences": o.differences,
        "notes": o.notes,
        "passed": o.passed(),
    })
    .to_string()
}

/// The outcome for a person.
pub fn human(o: &Outcome) -> String {
    let c = &o.counts;
    let n = |k: &str| c.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let g = |k: &str| crate::report::grouped(n(k));
    let r = &o.roles;
    let per_s = |k: &str| crate::report::grouped((n(k) as f64 / o.ran.max(0.001)) as u64);
    let mut s = format!(
        "herald-bench soak -> {}  {} connections for {:.0} s (ran {:.1} s), seed {}\n",
        o.target, o.settings.connections, o.settings.duration, o.ran, o.settings.seed
    );
    s += &format!(
        "  roles: {} steady, {} churning, {} flood readers, {} half-frame, {} garbage, {} slow readers, {} publishers ({}/s), {} flooder\n",
        r.steady, r.churners, r.flood_readers, r.half_frame, r.garbage, r.slow, r.publishers,
        o.settings.rate, r.flooders
    );
    s += &format!(
        "connections  {} opened (peak {} open at once, server peak connected_clients {}), {} connect errors\n",
        g("connects"), g("open_peak"), o.peak_clients, g("connect_errors")
    );
    s += &format!(
        "published    {} paced ({}/s), {} flood ({}/s)\n",
        g("published"),
        per_s("published"),
        g("flooded"),
        per_s("flooded")
    );
    s += &format!(
        "received     {} messages checked ({}/s): {} reordered, {} foreign\n",
        g("received"),
        per_s("received"),
        g("reorders"),
        g("foreign")
    );
    let cut = c
        .get("output_limit_disconnections")
        .and_then(serde_json::Value::as_u64)
        .map_or("not reported".to_string(), |v| v.to_string());
    s += &format!(
        "abuse        {} churn batches, {} mid-command closes, {} garbage pipelines ({} protocol errors, {} closed), {} slow-reader connections (output-limit cut-offs over both rounds: {cut})\n",
        g("churn_ops"), g("half_frames"), g("garbage"), g("protocol_errors"), g("garbage_closed"), g("slow_cycles")
    );
    s += &format!(
        "failures     {} well-behaved clients disconnected, {} errors; {} flood-reader cut-offs (not counted)\n",
        g("disconnects"),
        g("errors"),
        g("flood_reader_cutoffs")
    );
    let rss = |v: Option<u64>| v.map_or("?".to_string(), |kb| format!("{kb} KiB"));
    s += &format!(
        "server       before -> after ({:.2} s to settle): NUMSUB {} -> {}, NUMPAT {} -> {}, CHANNELS {} -> {}, connected_clients {} -> {}\n",
        o.settled_in,
        o.baseline.numsub, o.after.numsub,
        o.baseline.numpat, o.after.numpat,
        o.baseline.channels, o.after.channels,
        o.baseline.connected_clients, o.after.connected_clients,
    );
    s += &format!(
        "memory       RSS {} before, {} after the {:.0} s warm-up round (the baseline), {} after (peak {}, allowed +{} KiB)\n",
        rss(o.baseline.rss_kb), rss(o.warm_rss_kb), o.settings.warmup, rss(o.after.rss_kb), rss(o.peak_rss_kb), o.allowance_kb
    );
    for d in &o.differences {
        s += &format!("NOT BACK     {d}\n");
    }
    for note in &o.notes {
        s += &format!("note         {note}\n");
    }
    s += if o.passed() { "PASS\n" } else { "FAIL\n" };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("33554432"), Some(32 << 20));
        assert_eq!(parse_size("8mb"), Some(8 << 20));
        assert_eq!(parse_size("1gb"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn roles_add_up() {
        for n in [20, 1000, 10_000] {
            let r = Roles::split(n, 100);
            assert_eq!(r.total(), n);
            assert!(r.slow >= 1 && r.steady > 0);
        }
        assert_eq!(Roles::split(10_000, 0).slow, 0);
        assert_eq!(Roles::split(10_000, 32).slow, 32);
    }
}
