//! Output-buffer and query-buffer limits, checked where bytes are queued.
//!
//! Redis's `client-output-buffer-limit <class> <hard> <soft> <seconds>`:
//! a client whose queued output exceeds `hard` bytes is closed at once; one
//! that stays above `soft` bytes for more than `seconds` is closed too. The
//! check runs in [`super::handle::ClientHandle::push`], i.e. on the
//! publisher's side at the moment a message would be queued, so a slow
//! subscriber is cut off before it can hold more than the hard limit plus one
//! message, and the publisher never waits for it.
//!
//! The limits live in one [`Limits`] shared by every client handle as
//! atomics, refreshed from the configuration at start and after CONFIG SET,
//! so the check costs a few relaxed loads.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::config::{BufferLimit, Config};

/// Which `client-output-buffer-limit` class a client falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ClientClass {
    /// Ordinary clients (`normal`).
    Normal = 0,
    /// Clients with at least one subscription (`pubsub`).
    PubSub = 1,
    /// Replicas attached to this server (`replica`).
    Replica = 2,
}

/// One class's limits, in bytes and seconds (0 = no limit).
#[derive(Debug, Default)]
pub struct ClassLimits {
    hard: AtomicU64,
    soft: AtomicU64,
    soft_seconds: AtomicU64,
}

impl ClassLimits {
    fn store(&self, l: &BufferLimit) {
        self.hard.store(l.hard_bytes, Relaxed);
        self.soft.store(l.soft_bytes, Relaxed);
        self.soft_seconds.store(l.soft_seconds, Relaxed);
    }
}

/// The limits every connection obeys, kept in step with the configuration.
#[derive(Debug, Default)]
pub struct Limits {
    classes: [ClassLimits; 3],
    /// `client-query-buffer-limit`: most unparsed request bytes a client may
    /// have buffered.
    pub query_buffer: AtomicUsize,
    /// `pubsub-coalesce-us`: the longest a delivery waits while the
    /// worker is busy (read by the worker before it parks; see
    /// `net::delivery`).
    pub coalesce_us: AtomicU64,
}

/// What a queued-bytes check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within limits.
    Ok,
    /// Over the soft limit, but not for long enough yet: remember since when.
    SoftStarted,
    /// Back under the soft limit: forget when it was first exceeded.
    SoftCleared,
    /// Over the hard limit, or over the soft one for too long: close.
    Close,
}

impl Limits {
    /// Limits as `config` sets them.
    pub fn from_config(config: &Config) -> Limits {
        let l = Limits::default();
        l.update(config);
        l
    }

    /// Takes the current values of the configuration (after CONFIG SET).
    pub fn update(&self, config: &Config) {
        self.classes[ClientClass::Normal as usize].store(&config.client_output_buffer_limit.normal);
        self.classes[ClientClass::PubSub as usize].store(&config.client_output_buffer_limit.pubsub);
        self.classes[ClientClass::Replica as usize]
            .store(&config.client_output_buffer_limit.replica);
        self.query_buffer
            .store(config.client_query_buffer_limit, Relaxed);
        self.coalesce_us.store(config.pubsub_coalesce_us, Relaxed);
    }

    /// Judges `queued` bytes for a client of `class` whose soft limit was
    /// first exceeded at `soft_since_ms` (0 = not exceeded), at `now_ms`.
    /// Soft time is counted in whole seconds, as Redis does.
    #[inline]
    pub fn check(
        &self,
        class: ClientClass,
        queued: usize,
        soft_since_ms: u64,
        now_ms: u64,
    ) -> Verdict {
        let c = &self.classes[class as usize];
        let queued = queued as u64;
        let hard = c.hard.load(Relaxed);
        if hard > 0 && queued > hard {
            return Verdict::Close;
        }
        let soft = c.soft.load(Relaxed);
        if soft > 0 && queued > soft {
            if soft_since_ms == 0 {
                return Verdict::SoftStarted;
            }
            let elapsed = now_ms.saturating_sub(soft_since_ms) / 1000;
            if elapsed > c.soft_seconds.load(Relaxed) {
                return Verdict::Close;
            }
            return Verdict::Ok;
        }
        if soft_since_ms != 0 {
            Verdict::SoftCleared
        } else {
            Verdict::Ok
        }
    }

    /// The hard limit of `class` in bytes (0 = none): a reply being built
    /// is cut once the client's output would pass it.
    #[inline]
    pub fn hard(&self, class: ClientClass) -> u64 {
        self.classes[class as usize].hard.load(Relaxed)
    }

    /// The smallest queued size at which [`check`](Self::check) can say
    /// anything but `Ok` for `class` (usize::MAX when the class is unlimited):
    /// pushes below it skip the check entirely.
    #[inline]
    pub fn threshold(&self, class: ClientClass) -> u64 {
        let c = &self.classes[class as usize];
        match (c.hard.load(Relaxed), c.soft.load(Relaxed)) {
            (0, 0) => u64::MAX,
            (0, s) => s,
            (h, 0) => h,
            (h, s) => h.min(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(hard: u64, soft: u64, secs: u64) -> Limits {
        let mut cfg = Config::default();
        cfg.client_output_buffer_limit.pubsub = BufferLimit {
            hard_bytes: hard,
            soft_bytes: soft,
            soft_seconds: secs,
        };
        Limits::from_config(&cfg)
    }

    #[test]
    fn hard_and_soft_limits() {
        let l = limits(100, 50, 2);
        let p = ClientClass::PubSub;
        assert_eq!(l.check(p, 40, 0, 1000), Verdict::Ok);
        assert_eq!(l.check(p, 101, 0, 1000), Verdict::Close);
        assert_eq!(l.check(p, 60, 0, 1000), Verdict::SoftStarted);
        assert_eq!(l.check(p, 60, 1000, 3000), Verdict::Ok);
        assert_eq!(l.check(p, 60, 1000, 4000), Verdict::Close);
        assert_eq!(l.check(p, 10, 1000, 4000), Verdict::SoftCleared);
        assert_eq!(l.threshold(p), 50);
        assert_eq!(l.threshold(ClientClass::Normal), u64::MAX);
    }
}
