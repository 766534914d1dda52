//! What operators look at and steer a running server with: the slow log,
//! the latency monitor, MONITOR, CLIENT PAUSE, and the figures INFO
//! reports that must be sampled (instantaneous rates, client buffer memory,
//! peak memory, CPU time).
//!
//! # Hot path
//!
//! Nothing here may slow a command down while it is not used:
//!
//! - INFO commandstats, the slow log and the latency monitor need each
//!   command's duration: the connection reads the clock once at the start
//!   of a batch and once after each command (each command's duration is
//!   the difference with the previous reading); the counters are relaxed
//!   atomics per command ([`cmdstats`]), the log's mutex is taken only for
//!   a command that was slow;
//! - MONITOR costs one relaxed load per command while nobody monitors
//!   ([`monitor::Monitors::active`]);
//! - CLIENT PAUSE costs one relaxed load per command while no pause is on
//!   ([`pause::Pause::postpones`]);
//! - network byte counters are bumped once per read and once per write
//!   system call (relaxed atomics in `state::Stats`), never per byte;
//! - rates and client-buffer memory are computed by [`Observe::sample`], ten times a
//!   second, as Redis's `trackInstantaneousMetric` does in `serverCron`.
//!
//! # Memory (INFO `used_memory`, `maxmemory`)
//!
//! herald's used memory is the keyspace's estimate (exact running sums
//! kept by the store, see `store`'s module header) plus client buffers as
//! Redis counts them: for each client, the capacity of its query buffer,
//! the bytes queued in its outbox and not yet written (a message shared by
//! many subscribers counts once per subscriber, as Redis copies it into
//! each client's buffer), and a fixed [`CLIENT_OVERHEAD`] for the client's
//! own structures (CLIENT LIST's `tot-mem` is the same sum). The buffers
//! are summed by [`Observe::sample`] every 100 ms and the overhead follows the number
//! of connected clients, so the eviction check before each command reads
//! three atomics rather than walking the client list. No fixed
//! base is added for the process itself (`used_memory_rss` shows the real
//! footprint, and `mem_fragmentation_ratio` is their ratio).

pub mod cmdstats;
pub mod latency;
pub mod monitor;
pub mod pause;
pub mod slowlog;

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::Config;
use crate::net::{Clients, Counters};

/// Bytes counted per connected client for its own structures (client
/// state, outbox, task), besides its buffers.
pub const CLIENT_OVERHEAD: usize = 1024;

/// Samples averaged by the instantaneous rates (Redis's
/// `STATS_METRIC_SAMPLES`).
const RATE_SAMPLES: usize = 16;

/// How often [`Observe::sample`] runs.
pub const PERIOD: Duration = Duration::from_millis(100);

/// One instantaneous rate: the last [`RATE_SAMPLES`] per-second rates.
#[derive(Debug, Default, Clone)]
struct Rate {
    last_time: Option<Instant>,
    last_count: u64,
    samples: [u64; RATE_SAMPLES],
    idx: usize,
}

impl Rate {
    /// Redis's `trackInstantaneousMetric`.
    fn track(&mut self, now: Instant, count: u64) {
        let per_sec = self.last_time.map_or(0, |t| {
            let ms = now.duration_since(t).as_millis() as u64;
            (count.saturating_sub(self.last_count) * 1000)
                .checked_div(ms)
                .unwrap_or(0)
        });
        self.samples[self.idx] = per_sec;
        self.idx = (self.idx + 1) % RATE_SAMPLES;
        self.last_time = Some(now);
        self.last_count = count;
    }

    /// Redis's `getInstantaneousMetric`: the average of the samples.
    fn get(&self) -> u64 {
        self.samples.iter().sum::<u64>() / RATE_SAMPLES as u64
    }
}

/// The sampled figures INFO shows.
#[derive(Debug, Default)]
struct Rates {
    ops: Rate,
    net_in: Rate,
    net_out: Rate,
}

/// Instantaneous rates for INFO stats.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstantRates {
    /// Commands per second.
    pub ops_per_sec: u64,
    /// Bytes read per second.
    pub input_bytes_per_sec: u64,
    /// Bytes written per second.
    pub output_bytes_per_sec: u64,
}

/// Client buffers, as last summed by [`Observe::sample`] (or INFO).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientsMemory {
    /// Sum over clients of query buffer + outbox + [`CLIENT_OVERHEAD`].
    pub total: usize,
    /// Largest query buffer (`client_recent_max_input_buffer`).
    pub max_input: usize,
    /// Largest outbox (`client_recent_max_output_buffer`).
    pub max_output: usize,
}

/// Operator facilities, shared by every connection (see the module header).
#[derive(Default)]
pub struct Observe {
    /// `slowlog-log-slower-than` in µs (negative: off).
    slowlog_slower_than: AtomicI64,
    /// `slowlog-max-len`.
    slowlog_max_len: AtomicUsize,
    /// `latency-monitor-threshold` in ms (0: off).
    latency_threshold: AtomicU64,
    /// SLOWLOG's entries.
    pub slowlog: Mutex<slowlog::SlowLog>,
    /// LATENCY's events.
    pub latency: Mutex<latency::Latency>,
    /// Per-command counters and latency histograms.
    pub cmdstats: cmdstats::CommandStats,
    /// Clients in MONITOR mode.
    pub monitors: monitor::Monitors,
    /// CLIENT PAUSE state.
    pub pause: pause::Pause,
    /// Client buffers (query buffers and outboxes), as last summed.
    clients_buffers: AtomicUsize,
    /// Largest query buffer / outbox seen by the last sum.
    clients_max_in: AtomicUsize,
    clients_max_out: AtomicUsize,
    /// Highest used memory seen (INFO `used_memory_peak`).
    peak: AtomicUsize,
    rates: Mutex<Rates>,
}

impl Observe {
    /// Reads the options this module acts on (at start and after CONFIG SET).
    pub fn configure(&self, cfg: &Config) {
        let num = |name: &str, default: i64| {
            cfg.value(name)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(default)
        };
        let slower = num("slowlog-log-slower-than", 10_000);
        let latency = num("latency-monitor-threshold", 0).max(0) as u64;
        self.slowlog_slower_than.store(slower, Relaxed);
        self.slowlog_max_len
            .store(num("slowlog-max-len", 128).max(0) as usize, Relaxed);
        self.latency_threshold.store(latency, Relaxed);
        let percentiles = cfg
            .value("latency-tracking-info-percentiles")
            .map(|v| {
                v.split_ascii_whitespace()
                    .filter_map(|p| p.parse::<f64>().ok())
                    .collect()
            })
            .unwrap_or_default();
        let tracking = cfg.value("latency-tracking").is_none_or(|v| v == "yes");
        self.cmdstats.configure(tracking, percentiles);
    }

    /// Whether a command that ran `dur` goes to the slow log.
    pub fn is_slow(&self, dur: Duration) -> bool {
        let t = self.slowlog_slower_than.load(Relaxed);
        t >= 0 && dur.as_micros() as i64 >= t
    }

    /// Adds an entry to the slow log (its id is assigned here).
    pub fn log_slow(&self, e: slowlog::Entry) {
        let max = self.slowlog_max_len.load(Relaxed);
        self.slowlog.lock().push(e, max);
    }

    /// Whether `dur` reaches `latency-monitor-threshold` (when it is on).
    pub fn is_late(&self, dur: Duration) -> bool {
        let t = self.latency_threshold.load(Relaxed);
        t > 0 && dur.as_millis() as u64 >= t
    }

    /// `latency-monitor-threshold` in ms (0: off).
    pub fn latency_threshold(&self) -> u64 {
        self.latency_threshold.load(Relaxed)
    }

    /// `slowlog-log-slower-than` in µs (negative: off).
    pub fn slowlog_slower_than(&self) -> i64 {
        self.slowlog_slower_than.load(Relaxed)
    }

    /// Records `dur` under `event` if it reaches `latency-monitor-threshold`.
    pub fn latency_sample(&self, event: &'static str, dur: Duration) {
        if self.is_late(dur) {
            let ms = dur.as_millis() as u64;
            self.latency.lock().add(event, crate::util::unix_secs(), ms);
        }
    }

    /// Client buffers (query buffers and outboxes) as last summed.
    #[inline]
    pub fn clients_buffers(&self) -> usize {
        self.clients_buffers.load(Relaxed)
    }

    /// Sums client buffers now (INFO, and [`sample`](Self::sample)) and
    /// remembers it.
    pub fn sum_clients_memory(&self, clients: &Clients) -> ClientsMemory {
        let mut m = ClientsMemory::default();
        let mut buffers = 0;
        clients.for_each(|h| {
            let q = h.query_buffer_size();
            let o = h.pending_bytes();
            buffers += q + o;
            m.total += q + o + CLIENT_OVERHEAD;
            m.max_input = m.max_input.max(q);
            m.max_output = m.max_output.max(o);
        });
        self.clients_buffers.store(buffers, Relaxed);
        self.clients_max_in.store(m.max_input, Relaxed);
        self.clients_max_out.store(m.max_output, Relaxed);
        m
    }

    /// Records `used` as a candidate for the peak; returns the peak.
    pub fn note_used(&self, used: usize) -> usize {
        self.peak.fetch_max(used, Relaxed).max(used)
    }

    /// The instantaneous rates (INFO stats).
    pub fn rates(&self) -> InstantRates {
        let r = self.rates.lock();
        InstantRates {
            ops_per_sec: r.ops.get(),
            input_bytes_per_sec: r.net_in.get(),
            output_bytes_per_sec: r.net_out.get(),
        }
    }

    /// CONFIG RESETSTAT: the rates and the peak start again.
    pub fn reset_stats(&self) {
        *self.rates.lock() = Rates::default();
        self.peak.store(0, Relaxed);
    }

    /// One sampling round, every [`PERIOD`] (as Redis's
    /// `trackInstantaneousMetric` in `serverCron`): the rates from the
    /// command and traffic counters, client buffers, and the peak of used
    /// memory (`keyspace` is the keyspace's part of it).
    pub fn sample(&self, commands: u64, net: &Counters, clients: &Clients, keyspace: usize) {
        let now = Instant::now();
        {
            let mut r = self.rates.lock();
            r.ops.track(now, commands);
            r.net_in.track(now, net.total_net_input_bytes.load(Relaxed));
            r.net_out
                .track(now, net.total_net_output_bytes.load(Relaxed));
        }
        let clients = self.sum_clients_memory(clients);
        self.note_used(keyspace + clients.total);
    }
}

/// CPU time used, in seconds: (system, user) of the process, of its
/// waited-for children, and of the calling thread (INFO cpu).
pub fn cpu_times() -> [(f64, f64); 3] {
    use nix::sys::resource::{getrusage, UsageWho};
    let secs = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    let get =
        |who| getrusage(who).map_or((0.0, 0.0), |u| (secs(u.system_time()), secs(u.user_time())));
    [
        get(UsageWho::RUSAGE_SELF),
        get(UsageWho::RUSAGE_CHILDREN),
        get(UsageWho::RUSAGE_THREAD),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_averages_sixteen_samples() {
        let mut r = Rate::default();
        let t0 = Instant::now();
        r.track(t0, 0);
        r.track(t0 + Duration::from_millis(100), 1600);
        assert_eq!(r.get(), 16_000 / 16);
    }

    #[test]
    fn configure_reads_thresholds() {
        let o = Observe::default();
        let mut cfg = Config::default();
        o.configure(&cfg);
        assert!(!o.is_slow(Duration::from_millis(9)));
        assert!(o.is_slow(Duration::from_millis(10)));
        cfg.set(&[(b"slowlog-log-slower-than", b"-1")])
            .expect("valid");
        o.configure(&cfg);
        assert!(!o.is_slow(Duration::from_secs(10)));
    }
}
