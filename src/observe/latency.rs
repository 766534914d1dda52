//! The latency monitor (LATENCY LATEST / HISTORY / RESET / DOCTOR), as
//! Redis 7.0's `latency.c`.
//!
//! When `latency-monitor-threshold` is above 0, an event that took at
//! least that many milliseconds is recorded under its name: herald records
//! `command` (a command not flagged `fast`) and `fast-command` (one that
//! is), measured around each command, and `expire-cycle` (a tick of active
//! expiry). Each event keeps the last
//! [`SAMPLES`] samples, one per second at most (a second's sample keeps the
//! largest latency seen in it), and the largest latency ever seen.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::protocol::Frame;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const SAMPLES: usize = 160;

/// One event's history: a ring of (unix second, latency ms).
#[derive(Debug, Clone)]
struct Series {
    /// Next slot to write.
    idx: usize,
    /// Largest latency ever recorded.
    max: u64,
    samples: [(u64, u64); SAMPLES],
}

/// Every event's history. Events are few (herald records two kinds), and
/// Redis lists them in its hash table's order; herald lists them by name.
#[derive(Debug, Default)]
pub struct Latency {
    events: BTreeMap<&'static str, Series>,
}

impl Latency {
    /// Records `latency_ms` for `event` at unix second `now`.
    pub fn add(&mut self, event: &'static str, now: u64, latency_ms: u64) {
        let ts = self.events.entry(event).or_insert(Series {
            idx: 0,
            max: 0,
            samples: [(0, 0); SAMPLES],
        });
        ts.max = ts.max.max(latency_ms);
        let prev = (ts.idx + SAMPLES - 1) % SAMPLES;
        if ts.samples[prev].0 == now {
            ts.samples[prev].1 = ts.samples[prev].1.max(latency_ms);
            return;
        }
        ts.samples[ts.idx] = (now, latency_ms);
        ts.idx = (ts.idx + 1) % SAMPLES;
    }

    /// LATENCY RESET: forgets the named events (all with `None`); returns
    /// how many existed.
    pub fn reset(&mut self, events: Option<&[Bytes]>) -> usize {
        match events {
            None => {
                let n = self.events.len();
                self.events.clear();
                n
            }
            Some(names) => names
                .iter()
                .filter(|n| {
                    let key = self.events.keys().find(|k| k.as_bytes() == &n[..]).copied();
                    key.is_some_and(|k| self.events.remove(k).is_some())
                })
                .count(),
        }
    }

    /// LATENCY LATEST: `[event, time, latest, max]` per event.
    pub fn latest(&self) -> Frame {
        Frame::Array(
            self.events
                .iter()
                .map(|(name, ts)| {
                    let (time, lat) = ts.samples[(ts.idx + SAMPLES - 1) % SAMPLES];
                    Frame::Array(vec![
                        Frame::Bulk(Bytes::from_static(name.as_bytes())),
                        Frame::Integer(time as i64),
                        Frame::Integer(lat as i64),
                        Frame::Integer(ts.max as i64),
                    ])
                })
                .collect(),
        )
    }

    /// LATENCY GRAPH event: Redis's text graph of the event's samples
    /// (`latencyCommandGenSparkeline`), or None for an unknown event.
    pub fn graph(&self, event: &[u8], now: u64) -> Option<String> {
        let (name, ts) = self.events.iter().find(|(k, _)| k.as_bytes() == event)?;
        let mut samples = Vec::new();
        for j in 0..SAMPLES {
            let (time, lat) = ts.samples[(ts.idx + j) % SAMPLES];
            if time == 0 {
                continue;
            }
            let elapsed = now.saturating_sub(time);
            let label = if elapsed < 60 {
                format!("{elapsed}s")
            } else if elapsed < 3600 {
                format!("{}m", elapsed / 60)
            } else if elapsed < 3600 * 24 {
                format!("{}h", elapsed / 3600)
            } else {
                format!("{}d", elapsed / (3600 * 24))
            };
            samples.push((lat as f64, label));
        }
        let lats = samples.iter().map(|(v, _)| *v as u64);
        let (low, high) = (lats.clone().min().unwrap_or(0), lats.max().unwrap_or(0));
        let mut out = format!(
            "{name} - high {high} ms, low {low} ms (all time high {} ms)\n",
            ts.max
        );
        out.push_str(&"-".repeat(GRAPH_COLS));
        out.push('\n');
        sparkline(&mut out, &samples, GRAPH_COLS, 4);
        Some(out)
    }

    /// LATENCY HISTORY event: `[time, latency]` per sample, oldest first.
    pub fn history(&self, event: &[u8]) -> Frame {
        let Some(ts) = self
            .events
            .iter()
            .find(|(k, _)| k.as_bytes() == event)
            .map(|(_, v)| v)
        else {
            return Frame::Array(Vec::new());
        };
        Frame::Array(
            (0..SAMPLES)
                .map(|j| ts.samples[(ts.idx + j) % SAMPLES])
                .filter(|&(time, _)| time != 0)
                .map(|(time, lat)| {
                    Frame::Array(vec![
                        Frame::Integer(time as i64),
                        Frame::Integer(lat as i64),
                    ])
                })
                .collect(),
        )
    }
}

/// Width of LATENCY GRAPH (Redis's `LATENCY_GRAPH_COLS`).
const GRAPH_COLS: usize = 80;

/// Redis's `sparklineRender` with `SPARKLINE_FILL`: `samples` (value,
/// label) drawn `rows` rows high in `_o#` and `|`, `columns` samples per
/// block, each sample's label written downwards under it.
fn sparkline(out: &mut String, samples: &[(f64, String)], columns: usize, rows: usize) {
    const FILL: &[u8] = b"_o#";
    let steps = (FILL.len() * rows) as i64;
    let min = samples.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let max = samples
        .iter()
        .map(|s| s.0)
        .fold(f64::NEG_INFINITY, f64::max);
    let relmax = if max - min == 0.0 { 1.0 } else { max - min };
    let labelled = samples.iter().any(|s| !s.1.is_empty());
    for (block, part) in samples.chunks(columns).enumerate() {
        if block != 0 {
            out.push('\n');
        }
        let mut row = 0usize;
        loop {
            let mut go_on = false;
            let mut chars = vec![b' '; part.len()];
            for (j, (value, label)) in part.iter().enumerate() {
                // C's `(int)(relval * steps) / relmax`, truncated again.
                let step = (((value - min) * steps as f64).trunc() / relmax) as i64;
                let step = step.clamp(0, steps - 1);
                if row < rows {
                    go_on = true;
                    let idx = step - ((rows - row - 1) * FILL.len()) as i64;
                    if (0..FILL.len() as i64).contains(&idx) {
                        chars[j] = FILL[idx as usize];
                    } else if idx >= FILL.len() as i64 {
                        chars[j] = b'|';
                    }
                } else {
                    // One blank row between the graph and the labels.
                    if labelled && row - rows < 1 {
                        go_on = true;
                        break;
                    }
                    if let Some(&ch) = label.as_bytes().get(row - rows - 1) {
                        go_on = true;
                        chars[j] = ch;
                    }
                }
            }
            if !go_on {
                break;
            }
            row += 1;
            out.push_str(&String::from_utf8_lossy(&chars));
            out.push('\n');
        }
    }
}

/// What LATENCY DOCTOR's advice depends on besides the samples.
#[derive(Debug, Clone, Copy)]
pub struct DoctorContext {
    /// `latency-monitor-threshold` in ms.
    pub threshold_ms: u64,
    /// `slowlog-log-slower-than` in µs (negative: off).
    pub slowlog_slower_than: i64,
    /// `hz`.
    pub hz: u64,
    /// The process has transparent huge pages (Redis advises against).
    pub huge_pages: bool,
}

/// One event's figures over its samples (Redis's `latencyStats`).
struct EventStats {
    samples: u64,
    avg: u64,
    mad: u64,
    /// Seconds from the oldest sample to `now` (at least 1).
    period: u64,
}

impl Series {
    fn stats(&self, now: u64) -> EventStats {
        let live: Vec<u64> = self
            .samples
            .iter()
            .filter(|s| s.0 != 0)
            .map(|s| s.1)
            .collect();
        let oldest = self
            .samples
            .iter()
            .filter(|s| s.0 != 0)
            .map(|s| s.0)
            .min()
            .unwrap_or(0);
        let n = live.len() as u64;
        if n == 0 {
            return EventStats {
                samples: 0,
                avg: 0,
                mad: 0,
                period: 0,
            };
        }
        let avg = live.iter().sum::<u64>() / n;
        let mad = live.iter().map(|&l| avg.abs_diff(l)).sum::<u64>() / n;
        EventStats {
            samples: n,
            avg,
            mad,
            period: now.saturating_sub(oldest).max(1),
        }
    }
}

/// LATENCY DOCTOR's advice, in the order Redis prints it.
#[derive(Default)]
struct Advice {
    slowlog_enabled: bool,
    slowlog_tuning: bool,
    slowlog_inspect: bool,
    scheduler: bool,
    relax_fsync: bool,
    hz: bool,
    large_objects: bool,
    mass_eviction: bool,
    disable_thp: bool,
    /// Redis counts advice given per event, even advice it then prints once
    /// (or not at all): only zero versus not matters.
    count: usize,
}

impl Latency {
    /// LATENCY DOCTOR: Redis's human-readable report (its texts, for the
    /// events herald records) at unix second `now`.
    pub fn doctor(&self, now: u64, ctx: DoctorContext) -> String {
        use std::fmt::Write as _;
        if self.events.is_empty() && ctx.threshold_ms == 0 {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
        }
        let mut out = String::new();
        let mut a = Advice::default();
        for (n, (name, ts)) in self.events.iter().enumerate() {
            if n == 0 {
                out.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
            }
            let st = ts.stats(now);
            let _ = write!(
                out,
                "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
                n + 1,
                name,
                st.samples,
                st.avg,
                st.mad,
                st.period as f64 / st.samples.max(1) as f64,
                ts.max
            );
            match *name {
                "command" => {
                    if ctx.slowlog_slower_than < 0 {
                        a.slowlog_enabled = true;
                        a.count += 1;
                    } else if (ctx.slowlog_slower_than / 1000) as u64 > ctx.threshold_ms {
                        a.slowlog_tuning = true;
                        a.count += 1;
                    }
                    a.slowlog_inspect = true;
                    a.large_objects = true;
                    a.count += 2;
                }
                "fast-command" => {
                    a.scheduler = true;
                    a.count += 1;
                }
                "aof-fsync-always" => {
                    a.relax_fsync = true;
                    a.count += 1;
                }
                "expire-cycle" => {
                    a.hz = true;
                    a.large_objects = true;
                    a.count += 2;
                }
                "eviction-del" => {
                    a.large_objects = true;
                    a.count += 1;
                }
                "eviction-cycle" => {
                    a.mass_eviction = true;
                    a.count += 1;
                }
                _ => {}
            }
            out.push('\n');
        }
        if ctx.huge_pages {
            a.disable_thp = true;
            a.count += 1;
        }
        let events = self.events.len();
        if events == 0 && a.count == 0 {
            out.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
            return out;
        }
        if a.count == 0 {
            out.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
            return out;
        }
        out.push_str("\nI have a few advices for you:\n\n");
        let slower = ctx.threshold_ms * 1000;
        if a.slowlog_enabled {
            let _ = writeln!(out, "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {slower}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.");
        }
        if a.slowlog_tuning {
            let _ = writeln!(out, "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {slower}'.");
        }
        if a.slowlog_inspect {
            out.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if a.scheduler {
            out.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
        }
        if a.relax_fsync {
            out.push_str("- Your fsync policy is set to 'always'. It is very hard to get good performances with such a setup, if possible try to relax the fsync policy to 'onesec'.\n");
        }
        if a.hz && ctx.hz < 100 {
            out.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
        }
        if a.large_objects {
            out.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
        }
        if a.mass_eviction {
            out.push_str("- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations (RESTORE command), may create sudden memory pressure forcing the server to block trying to evict keys. \n");
        }
        if a.disable_thp {
            out.push_str("- I detected a non zero amount of anonymous huge pages used by your process. This creates very serious latency events in different conditions, especially when Redis is persisting on disk. To disable THP support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into /etc/rc.local so that the command will be executed again after a reboot. Note that even if you have already disabled THP, you still need to restart the Redis process to get rid of the huge pages already created.\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_keeping_the_max() {
        let mut l = Latency::default();
        l.add("command", 100, 5);
        l.add("command", 100, 9);
        l.add("command", 100, 3);
        l.add("command", 101, 2);
        let Frame::Array(h) = l.history(b"command") else {
            panic!("array")
        };
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[0],
            Frame::Array(vec![Frame::Integer(100), Frame::Integer(9)])
        );
        let Frame::Array(latest) = l.latest() else {
            panic!("array")
        };
        assert_eq!(
            latest[0],
            Frame::Array(vec![
                Frame::bulk_from(b"command"),
                Frame::Integer(101),
                Frame::Integer(2),
                Frame::Integer(9)
            ])
        );
        assert_eq!(l.reset(Some(&[Bytes::from_static(b"nope")])), 0);
        assert_eq!(l.reset(None), 1);
        assert_eq!(l.latest(), Frame::Array(vec![]));
    }

    fn ctx(threshold_ms: u64) -> DoctorContext {
        DoctorContext {
            threshold_ms,
            slowlog_slower_than: 10_000,
            hz: 10,
            huge_pages: false,
        }
    }

    #[test]
    fn doctor_without_data_says_so_as_redis() {
        let l = Latency::default();
        assert!(l
            .doctor(1, ctx(0))
            .starts_with("I'm sorry, Dave, I can't do that."));
        assert!(l
            .doctor(1, ctx(100))
            .starts_with("Dave, no latency spike was observed"));
    }

    #[test]
    fn doctor_reports_each_event_and_its_advice() {
        let mut l = Latency::default();
        l.add("command", 100, 300);
        l.add("command", 110, 500);
        l.add("expire-cycle", 105, 30);
        let r = l.doctor(120, ctx(20));
        assert!(r.starts_with("Dave, I have observed latency spikes"));
        assert!(r.contains("1. command: 2 latency spikes (average 400ms, mean deviation 100ms, period 10.00 sec). Worst all time event 500ms.\n"));
        assert!(r.contains("2. expire-cycle: 1 latency spikes (average 30ms, mean deviation 0ms, period 15.00 sec). Worst all time event 30ms.\n"));
        assert!(r.contains("\nI have a few advices for you:\n\n- Check your Slow Log"));
        assert!(r.contains("'CONFIG SET hz 100'"));
        assert!(r.ends_with("multiple smaller objects.\n"));
    }

    #[test]
    fn graph_draws_redis_s_sparkline() {
        // The same samples drawn by redis-server 7.0.15 (DEBUG SLEEP 0.02,
        // 0.06, 0.01, 0.03 a second apart, then LATENCY GRAPH command).
        let mut l = Latency::default();
        for (t, ms) in [(96, 20), (97, 60), (98, 10), (99, 30)] {
            l.add("command", t, ms);
        }
        let g = l.graph(b"command", 100).expect("graph");
        let want = format!(
            "command - high 60 ms, low 10 ms (all time high 60 ms)\n{}\n #  \n |  \n | o\n#|_|\n    \n4321\nssss\n",
            "-".repeat(80)
        );
        assert_eq!(g, want);
        assert!(l.graph(b"nope", 100).is_none());
    }

    #[test]
    fn ring_keeps_the_last_samples() {
        let mut l = Latency::default();
        for s in 1..=(SAMPLES as u64 + 10) {
            l.add("command", s, s);
        }
        let Frame::Array(h) = l.history(b"command") else {
            panic!("array")
        };
        assert_eq!(h.len(), SAMPLES);
        assert_eq!(
            h[0],
            Frame::Array(vec![Frame::Integer(11), Frame::Integer(11)])
        );
    }
}
