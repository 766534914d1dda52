//! The latency monitor (LATENCY LATEST / HISTORY / RESET), as Redis 7.0's
//! `latency.c`.
//!
//! When `latency-monitor-threshold` is above 0, an event that took at
//! least that many milliseconds is recorded under its name: herald records
//! `command` (a command not flagged `fast`) and `fast-command` (one that
//! is), measured around each command. Each event keeps the last
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
