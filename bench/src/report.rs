//! Results of a run and their two renderings: a human-readable summary and
//! a single JSON line; plus the generator's own CPU accounting.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::Args;

/// Share of its usable cores above which the generator calls itself
/// saturated (its numbers then measure the generator, not the server).
pub const SATURATION: f64 = 0.90;

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Number of messages measured.
    pub samples: u64,
    /// Percentiles 50, 90, 99, 99.9 and the maximum.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest latency seen.
    pub max: f64,
}

impl Latency {
    /// Summarises a histogram of nanoseconds; `None` if it is empty.
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            samples: h.len(),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

/// Thread ids of the runtime's threads, registered as each starts (see
/// [`register_thread`]).
static THREADS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Records the calling thread as one of the generator's runtime threads
/// (called from the runtime's `on_thread_start`), so that the saturation
/// check can look at the threads that do the work rather than at the whole
/// process (whose pacing thread, with `--rate`, wakes tens of thousands of
/// times a second without touching a socket).
pub fn register_thread() {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok());
    if let (Some(tid), Ok(mut t)) = (tid, THREADS.lock()) {
        t.push(tid);
    }
}

/// CPU time used so far by each registered runtime thread, from
/// `/proc/self/task/TID/stat` (utime + stime, in USER_HZ = 100 ticks a
/// second on Linux). Threads that ended are left out.
pub fn thread_cpu_times() -> Vec<(u32, Duration)> {
    let tids = THREADS.lock().map(|t| t.clone()).unwrap_or_default();
    tids.into_iter()
        .filter_map(|tid| Some((tid, stat_cpu_time(&format!("/proc/self/task/{tid}/stat"))?)))
        .collect()
}

/// utime + stime of a `/proc/.../stat` file (USER_HZ = 100 ticks a second
/// on Linux).
fn stat_cpu_time(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the command name, which ends with the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// CPU time a process has used so far (all its threads, user + system),
/// from `/proc/PID/stat` (USER_HZ = 100 ticks a second on Linux).
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    stat_cpu_time(&format!("/proc/{pid}/stat"))
}

/// The largest share of one core that a single registered thread used
/// between two [`thread_cpu_times`] samples `wall` seconds apart.
pub fn busiest_thread(
    before: &[(u32, Duration)],
    after: &[(u32, Duration)],
    wall: f64,
) -> Option<f64> {
    if wall <= 0.0 {
        return None;
    }
    after
        .iter()
        .filter_map(|(tid, t1)| {
            let t0 = before.iter().find(|(t, _)| t == tid)?.1;
            Some(t1.saturating_sub(t0).as_secs_f64() / wall)
        })
        .reduce(f64::max)
}

/// CPU time this process has used so far (user + system), from getrusage.
pub fn cpu_time() -> Option<Duration> {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    Some(tv(u.user_time()) + tv(u.system_time()))
}

/// The generator's CPU use over the measured window.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    /// CPU seconds used by the process.
    pub busy: f64,
    /// Wall-clock seconds.
    pub wall: f64,
    /// Cores the generator may use: min(--threads, cores available).
    pub cores: usize,
    /// Share of one core used by the busiest runtime thread (the threads
    /// that read and write the sockets), when it could be measured.
    pub busiest_thread: Option<f64>,
    /// CPU seconds the server used in the window (`--server-pid`).
    pub server_busy: Option<f64>,
}

impl CpuUse {
    /// Fraction of the usable cores that was busy (0..1, can exceed 1
    /// slightly from blocking threads).
    pub fn fraction(&self) -> f64 {
        if self.wall <= 0.0 || self.cores == 0 {
            return 0.0;
        }
        self.busy / (self.wall * self.cores as f64)
    }

    /// Whether the generator was probably the bottleneck: its busiest
    /// runtime thread (or, if that is unknown, the process as a whole) was
    /// busy more than [`SATURATION`] of the time.
    pub fn saturated(&self) -> bool {
        match self.busiest_thread {
            Some(b) => b > SATURATION,
            None => self.fraction() > SATURATION,
        }
    }
}

/// What became of the slow subscribers (`--slow-subscribers`).
#[derive(Debug, Clone, Default)]
pub struct SlowOutcome {
    /// Slow subscribers in the run.
    pub subscribers: usize,
    /// How many the server disconnected before the run ended.
    pub disconnected: usize,
    /// Seconds from the window's start (when they stopped reading) to each
    /// disconnection seen, in order (to within the 100 ms polling period).
    pub cut_off_s: Vec<f64>,
}

impl SlowOutcome {
    /// Summarises, per slow subscriber, when it was seen gone (ns since the
    /// epoch) relative to the window's start (ns).
    pub fn new(gone: &[Option<u64>], window_start: u64) -> SlowOutcome {
        let mut cut_off_s: Vec<f64> = gone
            .iter()
            .flatten()
            .map(|&t| t.saturating_sub(window_start) as f64 / 1e9)
            .collect();
        cut_off_s.sort_by(f64::total_cmp);
        SlowOutcome {
            subscribers: gone.len(),
            disconnected: cut_off_s.len(),
            cut_off_s,
        }
    }
}

/// Everything a load run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// `host:port` of the server.
    pub target: String,
    /// Worker threads of the generator.
    pub threads: usize,
    /// Publishes sent in the measured window whose replies came back.
    pub published: u64,
    /// Sum of their PUBLISH replies.
    pub expected: u64,
    /// The part of `expected` owed to the subscribers that keep reading.
    pub fast_expected: u64,
    /// The slow subscribers' fate, when there were some.
    pub slow: Option<SlowOutcome>,
    /// Messages received (by the subscribers that keep reading) that were
    /// sent in the window.
    pub received: u64,
    /// Messages received in all, warm-up included.
    pub received_total: u64,
    /// Connections lost while the run was going on.
    pub disconnects: u64,
    /// Length of the measured window, seconds.
    pub window: f64,
    /// Time spent waiting for the last deliveries, seconds.
    pub drain: f64,
    /// End-to-end latency of the window's messages.
    pub latency: Option<Latency>,
    /// CPU use of the generator in the window.
    pub cpu: Option<CpuUse>,
    /// The first unexpected event, if any.
    pub note: Option<String>,
}

impl Outcome {
    /// The server's CPU use in the window, in cores (`--server-pid`).
    pub fn server_cpu(&self) -> Option<f64> {
        let c = self.cpu?;
        (c.wall > 0.0).then(|| c.server_busy.map(|b| b / c.wall))?
    }

    /// Deliveries (publishes when nobody subscribes) per second of server
    /// CPU: how much work the server does per message, whoever was the
    /// bottleneck.
    pub fn per_server_cpu_s(&self) -> Option<f64> {
        let busy = self.cpu?.server_busy?;
        let n = if self.received > 0 {
            self.received
        } else {
            self.published
        };
        (busy > 0.0).then(|| n as f64 / busy)
    }

    /// Deliveries promised by the server but not received (with slow
    /// subscribers: those owed to the others).
    pub fn lost(&self) -> u64 {
        let owed = if self.slow.is_some() {
            self.fast_expected
        } else {
            self.expected
        };
        owed.saturating_sub(self.received)
    }

    fn per_sec(&self, n: u64) -> f64 {
        if self.window > 0.0 {
            n as f64 / self.window
        } else {
            0.0
        }
    }

    /// Publishes per second.
    pub fn published_rate(&self) -> f64 {
        self.per_sec(self.published)
    }

    /// Deliveries per second.
    pub fn delivered_rate(&self) -> f64 {
        self.per_sec(self.received)
    }

    /// Delivered payload, in MB (10^6 bytes) per second.
    pub fn delivered_mb(&self, payload: usize) -> f64 {
        self.delivered_rate() * payload as f64 / 1e6
    }
}

fn config_json(a: &Args, threads: usize) -> Value {
    json!({
        "mode": a.mode.name(),
        "resp": a.resp,
        "publishers": a.publishers,
        "subscribers": a.subscribers,
        "slow_subscribers": a.slow_subscribers,
        "channels": a.channels,
        "spread": a.spread.name(),
        "channels_per_sub": a.channels_per_sub,
        "extra_patterns": a.extra_patterns,
        "payload": a.payload,
        "pipeline": a.pipeline,
        "rate": a.rate,
        "warmup_s": a.warmup,
        "duration_s": a.duration,
        "threads": threads,
    })
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The outcome as one line of JSON.
pub fn json_line(a: &Args, o: &Outcome) -> String {
    let latency = o.latency.map(|l| {
        json!({
            "samples": l.samples,
            "p50": round(l.p50, 3), "p90": round(l.p90, 3), "p99": round(l.p99, 3),
            "p999": round(l.p999, 3), "max": round(l.max, 3),
        })
    });
    let v = json!({
        "server": o.target,
        "config": config_json(a, o.threads),
        "window_s": round(o.window, 4),
        "drain_s": round(o.drain, 4),
        "published": o.published,
        "published_per_s": round(o.published_rate(), 1),
        "expected": o.expected,
        "received": o.received,
        "received_total": o.received_total,
        "lost": o.lost(),
        "delivered_per_s": round(o.delivered_rate(), 1),
        "delivered_mb_per_s": round(o.delivered_mb(a.payload), 3),
        "disconnects": o.disconnects,
        "slow": o.slow.as_ref().map(|sl| json!({
            "subscribers": sl.subscribers,
            "disconnected": sl.disconnected,
            "expected_fast": o.fast_expected,
            "cut_off_s": sl.cut_off_s.iter().map(|&t| round(t, 3)).collect::<Vec<_>>(),
        })),
        "latency_us": latency,
        "cpu_percent": o.cpu.map(|c| round(c.fraction() * 100.0, 1)),
        "cpu_cores": o.cpu.map(|c| c.cores),
        "busiest_thread_cpu_percent": o.cpu.and_then(|c| c.busiest_thread).map(|b| round(b * 100.0, 1)),
        "saturated": o.cpu.is_some_and(|c| c.saturated()),
        "server_cpu_percent": o.server_cpu().map(|f| round(f * 100.0, 1)),
        "delivered_per_server_cpu_s": o.per_server_cpu_s().map(|r| round(r, 1)),
        "note": o.note,
    });
    v.to_string()
}

/// Formats an integer with thousands separators.
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The outcome as a few lines for a person.
pub fn human(a: &Args, o: &Outcome) -> String {
    let mut s = String::new();
    let rate = if a.rate > 0.0 {
        format!("target {} publishes/s", grouped(a.rate as u64))
    } else {
        "unthrottled".to_string()
    };
    s += &format!(
        "herald-bench -> {}  {} mode, RESP{}, {}\n",
        o.target,
        a.mode.name(),
        a.resp,
        plural(o.threads, "thread")
    );
    let extra = if a.extra_patterns > 0 {
        format!(" + {} extra patterns", a.extra_patterns)
    } else {
        String::new()
    };
    s += &format!(
        "  {} (pipeline {}, {rate}), {} on {} ({} spread; {} each{extra}), {}-byte payload\n",
        plural(a.publishers, "publisher"),
        a.pipeline,
        plural(a.subscribers, "subscriber"),
        plural(a.channels, "channel"),
        a.spread.name(),
        a.channels_per_sub,
        a.payload
    );
    if a.slow_subscribers > 0 {
        s += &format!(
            "  + {} that stop reading when the window starts (counted apart)\n",
            plural(a.slow_subscribers, "slow subscriber")
        );
    }
    s += &format!(
        "  measured {:.2} s after {:.2} s of warm-up; last deliveries drained in {:.2} s\n",
        o.window, a.warmup, o.drain
    );
    s += &format!(
        "published    {:>14}  {:>12}/s\n",
        grouped(o.published),
        grouped(o.published_rate() as u64)
    );
    s += &format!(
        "delivered    {:>14}  {:>12}/s  {:.1} MB/s\n",
        grouped(o.received),
        grouped(o.delivered_rate() as u64),
        o.delivered_mb(a.payload)
    );
    s += &format!(
        "expected     {:>14}  lost {}  disconnects {}\n",
        grouped(if o.slow.is_some() {
            o.fast_expected
        } else {
            o.expected
        }),
        grouped(o.lost()),
        o.disconnects
    );
    if let Some(sl) = &o.slow {
        let when = match (sl.cut_off_s.first(), sl.cut_off_s.last()) {
            (Some(first), Some(last)) => {
                format!(", {first:.2} to {last:.2} s after they stopped reading")
            }
            _ => String::new(),
        };
        s += &format!(
            "slow         {} of {} disconnected by the server{when}; figures above are the other subscribers'\n",
            sl.disconnected, sl.subscribers
        );
    }
    match o.latency {
        Some(l) => {
            s += &format!(
            "latency us   p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  ({} samples)\n",
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            grouped(l.samples)
        )
        }
        None => s += "latency      (no messages measured)\n",
    }
    match o.cpu {
        Some(c) => {
            s += &format!(
                "generator    CPU {:.0}% of {}{}{}\n",
                c.fraction() * 100.0,
                plural(c.cores, "core"),
                c.busiest_thread
                    .map(|b| format!(" (busiest runtime thread {:.0}%)", b * 100.0))
                    .unwrap_or_default(),
                if c.saturated() {
                    "  SATURATED: the generator, not the server, may be the bottleneck"
                } else {
                    ""
                }
            )
        }
        None => s += "generator    CPU use unknown\n",
    }
    if let (Some(f), Some(r)) = (o.server_cpu(), o.per_server_cpu_s()) {
        s += &format!(
            "server       CPU {:.0}% of one core; {} deliveries per CPU-second\n",
            f * 100.0,
            grouped(r as u64)
        );
    }
    if let Some(n) = &o.note {
        s += &format!("note         {n}\n");
    }
    s
}

/// What the connection-only mode established.
#[derive(Debug, Clone, Default)]
pub struct HoldOutcome {
    /// `host:port` of the server.
    pub target: String,
    /// Connections opened.
    pub connections: usize,
    /// Subscriptions made (channels and patterns, over all connections).
    pub subscriptions: usize,
    /// Seconds it took to establish everything.
    pub established: f64,
    /// Seconds the connections were held.
    pub held: f64,
    /// Connections found closed by the server at the end of the hold.
    pub closed: usize,
}

/// The connection-only outcome as one JSON line.
pub fn hold_json(o: &HoldOutcome) -> String {
    json!({
        "server": o.target,
        "mode": "hold",
        "connections": o.connections,
        "subscriptions": o.subscriptions,
        "established_s": round(o.established, 3),
        "held_s": round(o.held, 3),
        "closed": o.closed,
    })
    .to_string()
}

/// The connection-only outcome for a person.
pub fn hold_human(o: &HoldOutcome) -> String {
    format!(
        "herald-bench -> {}  held {} with {} for {:.1} s (established in {:.2} s); {} closed by the server\n",
        o.target,
        plural(o.connections, "connection"),
        plural(o.subscriptions, "subscription"),
        o.held,
        o.established,
        o.closed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }

    #[test]
    fn server_cpu_per_message() {
        let o = Outcome {
            target: String::new(),
            threads: 1,
            published: 1000,
            expected: 50_000,
            fast_expected: 50_000,
            slow: None,
            received: 50_000,
            received_total: 50_000,
            disconnects: 0,
            window: 2.0,
            drain: 0.0,
            latency: None,
            cpu: Some(CpuUse {
                busy: 1.0,
                wall: 2.0,
                cores: 1,
                busiest_thread: None,
                server_busy: Some(0.5),
            }),
            note: None,
        };
        assert_eq!(o.server_cpu(), Some(0.25));
        assert_eq!(o.per_server_cpu_s(), Some(100_000.0));
        // Publish-only: publishes per CPU-second.
        let o = Outcome { received: 0, ..o };
        assert_eq!(o.per_server_cpu_s(), Some(2_000.0));
        let o = Outcome { cpu: None, ..o };
        assert_eq!(o.server_cpu(), None);
    }

    #[test]
    fn cpu_saturation() {
        let c = CpuUse {
            busy: 0.95,
            wall: 1.0,
            cores: 1,
            busiest_thread: None,
            server_busy: None,
        };
        assert!(c.saturated());
        let c = CpuUse { cores: 2, ..c };
        assert!(!c.saturated());
        // The busiest runtime thread decides when it is known: a process
        // busy 95% of a core whose worker thread was busy 80% (the rest is
        // the pacer) is not saturated, and one worker of two at 95% is.
        let c = CpuUse {
            cores: 1,
            busiest_thread: Some(0.80),
            ..c
        };
        assert!(!c.saturated());
        let c = CpuUse {
            cores: 2,
            busiest_thread: Some(0.95),
            ..c
        };
        assert!(c.saturated());
        let before = [
            (1, Duration::from_millis(100)),
            (2, Duration::from_millis(0)),
        ];
        let after = [
            (1, Duration::from_millis(600)),
            (2, Duration::from_millis(900)),
        ];
        assert_eq!(busiest_thread(&before, &after, 1.0), Some(0.9));
    }
}
