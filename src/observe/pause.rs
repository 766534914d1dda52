//! CLIENT PAUSE / UNPAUSE, as Redis 7.0.
//!
//! `CLIENT PAUSE ms [WRITE|ALL]` postpones, until the deadline or CLIENT
//! UNPAUSE, every client command (ALL) or only those that could change
//! data or be propagated (WRITE: commands flagged `write`, PUBLISH,
//! SPUBLISH, and EXEC of a transaction holding one). A postponed command is not
//! lost: the connection keeps it ([`crate::command::Client::postponed`])
//! and waits, without polling, for [`Pause::changed`] or the deadline, then
//! runs it and the rest of its pipeline. A second PAUSE can lengthen the
//! pause or widen WRITE to ALL, never shorten or narrow it, as in Redis.
//!
//! Hot path: [`Pause::postpones`] is one relaxed atomic load while no pause is
//! on.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::util::now_ms;

/// No pause.
const OFF: u8 = 0;
/// CLIENT PAUSE ... WRITE.
pub const WRITE: u8 = 1;
/// CLIENT PAUSE ... ALL (the default).
pub const ALL: u8 = 2;

/// The server's pause state.
#[derive(Default)]
pub struct Pause {
    /// OFF, WRITE or ALL.
    kind: AtomicU8,
    /// Unix ms the pause ends at.
    end_ms: AtomicU64,
    /// Serialises PAUSE / UNPAUSE / expiry (readers use the atomics).
    change: Mutex<()>,
    /// Woken when the pause ends or changes.
    pub changed: Notify,
    /// Clients holding a command back (counted in INFO `blocked_clients`).
    pub waiting: AtomicUsize,
}

impl Pause {
    /// Starts or extends a pause until `end_ms` (unix ms).
    pub fn pause(&self, end_ms: u64, kind: u8) {
        let _g = self.change.lock();
        if kind > self.kind.load(Ordering::Relaxed) {
            self.kind.store(kind, Ordering::Relaxed);
        }
        if end_ms > self.end_ms.load(Ordering::Relaxed) {
            self.end_ms.store(end_ms, Ordering::Relaxed);
        }
        self.changed.notify_waiters();
    }

    /// Ends the pause (CLIENT UNPAUSE, or its deadline passed).
    pub fn unpause(&self) {
        let _g = self.change.lock();
        self.kind.store(OFF, Ordering::Relaxed);
        self.end_ms.store(0, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// True if a command must wait now: `writes` tells whether it is one
    /// that a WRITE pause postpones. Ends a pause whose deadline passed.
    #[inline]
    pub fn postpones(&self, writes: impl FnOnce() -> bool) -> bool {
        let kind = self.kind.load(Ordering::Relaxed);
        if kind == OFF {
            return false;
        }
        self.postpones_slow(kind, writes)
    }

    #[cold]
    fn postpones_slow(&self, kind: u8, writes: impl FnOnce() -> bool) -> bool {
        if now_ms() >= self.end_ms.load(Ordering::Relaxed) {
            self.unpause();
            return false;
        }
        kind == ALL || writes()
    }

    /// Milliseconds until the pause ends (0 if none).
    pub fn remaining_ms(&self) -> u64 {
        if self.kind.load(Ordering::Relaxed) == OFF {
            return 0;
        }
        self.end_ms.load(Ordering::Relaxed).saturating_sub(now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_widens_and_lengthens_only() {
        let p = Pause::default();
        assert!(!p.postpones(|| true));
        let end = now_ms() + 60_000;
        p.pause(end, WRITE);
        assert!(p.postpones(|| true));
        assert!(!p.postpones(|| false));
        p.pause(end - 30_000, ALL);
        assert!(p.postpones(|| false));
        assert!(p.remaining_ms() > 30_000);
        p.unpause();
        assert!(!p.postpones(|| true));
        p.pause(now_ms().saturating_sub(1), ALL);
        assert!(!p.postpones(|| true), "a pause past its deadline is over");
    }
}
