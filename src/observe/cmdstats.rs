//! Per-command counters, as Redis keeps them on each command: calls, time
//! spent, rejected and failed calls (INFO commandstats), and a latency
//! histogram per command while `latency-tracking` is on (INFO latencystats,
//! LATENCY HISTOGRAM).
//!
//! Commands are numbered by the dispatcher (`command::flags::id`); this
//! module knows only the numbers. A call costs one uncontended lock (its
//! command's histogram, allocated the first time the command is timed, as
//! Redis allocates it, with its call and time counts beside it), or two
//! atomic additions while `latency-tracking` is off.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// Lowest latency a histogram records, in ns (Redis's
/// `LATENCY_HISTOGRAM_MIN_VALUE`).
const MIN_NS: u64 = 1;
/// Highest latency a histogram records, in ns (1 s, as Redis); longer
/// calls count as 1 s.
const MAX_NS: u64 = 1_000_000_000;
/// Significant figures kept (Redis's `LATENCY_HISTOGRAM_PRECISION`).
const PRECISION: u8 = 2;

/// One command's counters. Its calls and their time are counted with
/// atomics while `latency-tracking` is off; while it is on, beside the
/// histogram under its lock, which a call takes anyway: two atomic
/// operations per call rather than four.
#[derive(Default)]
#[repr(align(64))]
pub struct Slot {
    calls: AtomicU64,
    nanos: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    timed: Mutex<Timed>,
}

/// A command's calls counted under its histogram's lock.
#[derive(Default)]
struct Timed {
    calls: u64,
    nanos: u64,
    /// Allocated the first time the command is timed, as Redis does.
    histogram: Option<Box<Histogram<u64>>>,
}

/// What INFO commandstats shows of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Calls that ran (rejected ones excluded).
    pub calls: u64,
    /// Time spent in them, in µs.
    pub usec: u64,
    /// Calls refused before they ran (arity, ACL, OOM, ...).
    pub rejected: u64,
    /// Calls that ran and replied with an error.
    pub failed: u64,
}

/// The counters of every command (see the module header).
pub struct CommandStats {
    slots: OnceLock<Box<[Slot]>>,
    /// `latency-tracking`.
    tracking: AtomicBool,
    /// `latency-tracking-info-percentiles`.
    percentiles: Mutex<Vec<f64>>,
}

impl Default for CommandStats {
    fn default() -> Self {
        CommandStats {
            slots: OnceLock::new(),
            tracking: AtomicBool::new(true),
            percentiles: Mutex::new(vec![50.0, 99.0, 99.9]),
        }
    }
}

impl CommandStats {
    /// Applies `latency-tracking` and `latency-tracking-info-percentiles`.
    pub fn configure(&self, tracking: bool, percentiles: Vec<f64>) {
        self.tracking.store(tracking, Relaxed);
        *self.percentiles.lock() = percentiles;
    }

    /// The slot of command `id` among `count` numbered commands (the
    /// table is sized on first use).
    fn slot(&self, id: usize, count: usize) -> Option<&Slot> {
        self.slots
            .get_or_init(|| (0..count).map(|_| Slot::default()).collect())
            .get(id)
    }

    /// A call of command `id` that ran for `took`, failed if it replied
    /// with an error.
    pub fn call(&self, id: usize, count: usize, took: Duration, failed: bool) {
        let Some(s) = self.slot(id, count) else {
            return;
        };
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        if failed {
            s.failed.fetch_add(1, Relaxed);
        }
        if !self.tracking.load(Relaxed) {
            s.calls.fetch_add(1, Relaxed);
            s.nanos.fetch_add(ns, Relaxed);
            return;
        }
        let mut t = s.timed.lock();
        t.calls += 1;
        t.nanos = t.nanos.saturating_add(ns);
        if t.histogram.is_none() {
            t.histogram = Histogram::new_with_bounds(MIN_NS, MAX_NS, PRECISION)
                .ok()
                .map(Box::new);
        }
        if let Some(h) = t.histogram.as_mut() {
            h.saturating_record(ns.clamp(MIN_NS, MAX_NS));
        }
    }

    /// A call of command `id` refused before it ran.
    pub fn rejected(&self, id: usize, count: usize) {
        if let Some(s) = self.slot(id, count) {
            s.rejected.fetch_add(1, Relaxed);
        }
    }

    /// A call of command `id` that failed after it was counted (a blocked
    /// command unblocked with an error).
    pub fn failed(&self, id: usize, count: usize) {
        if let Some(s) = self.slot(id, count) {
            s.failed.fetch_add(1, Relaxed);
        }
    }

    /// The counters of command `id`, if it has any.
    pub fn counts(&self, id: usize) -> Option<Counts> {
        let s = self.slots.get()?.get(id)?;
        let (calls, nanos) = {
            let t = s.timed.lock();
            (t.calls, t.nanos)
        };
        let c = Counts {
            calls: s.calls.load(Relaxed) + calls,
            usec: (s.nanos.load(Relaxed).saturating_add(nanos)) / 1000,
            rejected: s.rejected.load(Relaxed),
            failed: s.failed.load(Relaxed),
        };
        (c.calls != 0 || c.rejected != 0 || c.failed != 0).then_some(c)
    }

    /// INFO latencystats' figures of command `id` (`p50=1.003,p99=...`),
    /// if it has a histogram.
    pub fn percentiles_line(&self, id: usize) -> Option<String> {
        let s = self.slots.get()?.get(id)?;
        let t = s.timed.lock();
        let h = t.histogram.as_ref()?;
        let wanted = self.percentiles.lock().clone();
        let parts: Vec<String> = wanted
            .iter()
            .map(|p| {
                let ns = h.value_at_quantile(p / 100.0);
                format!("p{}={:.3}", trim_float(*p), ns as f64 / 1000.0)
            })
            .collect();
        Some(parts.join(","))
    }

    /// LATENCY HISTOGRAM's figures of command `id`, if it has a
    /// histogram: its calls, and (µs bucket, calls up to it) pairs along
    /// powers of two, as Redis's `fillCommandCDF` lists them.
    pub fn cdf(&self, id: usize) -> Option<(u64, Vec<(u64, u64)>)> {
        let s = self.slots.get()?.get(id)?;
        let t = s.timed.lock();
        let h = t.histogram.as_ref()?;
        let mut out = Vec::new();
        let mut cumulative = 0u64;
        for v in h.iter_log(1024, 2.0) {
            let before = cumulative;
            cumulative += v.count_since_last_iteration();
            if cumulative > before {
                out.push((
                    h.highest_equivalent(v.value_iterated_to()) / 1000,
                    cumulative,
                ));
            }
        }
        Some((h.len(), out))
    }

    /// Forgets every counter and histogram (CONFIG RESETSTAT).
    pub fn reset(&self) {
        let Some(slots) = self.slots.get() else {
            return;
        };
        for s in slots.iter() {
            s.calls.store(0, Relaxed);
            s.nanos.store(0, Relaxed);
            s.rejected.store(0, Relaxed);
            s.failed.store(0, Relaxed);
            *s.timed.lock() = Timed::default();
        }
    }
}

/// A percentile as Redis prints it (`%f` without trailing zeros: `50`,
/// `99.9`).
pub fn trim_float(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_rejections_and_failures_are_counted_apart() {
        let st = CommandStats::default();
        st.call(1, 4, Duration::from_micros(3), false);
        st.call(1, 4, Duration::from_micros(5), true);
        st.rejected(1, 4);
        assert_eq!(
            st.counts(1),
            Some(Counts {
                calls: 2,
                usec: 8,
                rejected: 1,
                failed: 1
            })
        );
        assert_eq!(st.counts(0), None);
        assert!(st
            .percentiles_line(1)
            .is_some_and(|l| l.starts_with("p50=")));
        st.reset();
        assert_eq!(st.counts(1), None);
        assert_eq!(st.percentiles_line(1), None);
    }

    #[test]
    fn percentiles_print_as_redis() {
        assert_eq!(trim_float(50.0), "50");
        assert_eq!(trim_float(99.9), "99.9");
        assert_eq!(trim_float(0.0), "0");
    }
}
