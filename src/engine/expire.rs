//! Active expiration: removes keys nobody reads.
//!
//! Lazy expiry (`Db::expire_if_needed`) removes a key when a command
//! touches it; [`Engine::expire_cycle`] makes a key that is never read
//! disappear close to its deadline too, and emit its `expired` event. It
//! follows Redis's `activeExpireCycle`: run 10 times per second (the
//! server schedules it), for each database, sample `store::expire::SAMPLE`
//! random keys among those with a TTL, remove the expired ones, and repeat
//! while more than a quarter of a sample was expired, within a time budget
//! of [`BUDGET`] per tick. The lock is taken per sample batch and released
//! in between, so clients never wait behind a long cycle; each batch enters
//! the keyspace gate, so a tick never waits for a running script. Each removal's
//! effects (`DEL` in the log, the event, blocked clients) leave through
//! [`Engine::unlock`] like any write's.

use std::time::{Duration, Instant};

use super::Engine;
use crate::store::expire::sample_once;

/// Time one tick may spend over all databases (25% of the 100 ms period).
pub const BUDGET: Duration = Duration::from_millis(25);
/// Period between ticks (hz 10).
pub const PERIOD: Duration = Duration::from_millis(100);

impl Engine {
    /// One tick of active expiry over every database; returns how long it
    /// took (the latency monitor's `expire-cycle` event).
    pub fn expire_cycle(&self) -> Duration {
        let start = Instant::now();
        self.expire_tick(start);
        start.elapsed()
    }

    fn expire_tick(&self, start: Instant) {
        if !self
            .active_expire
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        for i in 0..self.store.len() {
            loop {
                // A running script has the keyspace to itself (and may
                // hold this database): the tick ends, the next one retries.
                let Some(entry) = self.gate.enter() else {
                    return;
                };
                let mut db = self.lock(i);
                // A writable replica expires only the TTLs its own clients
                // set; once a primary, it drops that list (cheap when empty).
                let paused = self.expiry_paused(db.now);
                if !paused {
                    db.expire_replica_ttl_keys();
                }
                if db.expiry_held {
                    self.unlock(db);
                    if paused {
                        // Clients are paused: nothing expires meanwhile.
                        return;
                    }
                    break;
                }
                let (sampled, expired) = sample_once(&mut db);
                self.unlock(db);
                drop(entry);
                if sampled == 0 || expired * 4 <= sampled || start.elapsed() > BUDGET {
                    break;
                }
            }
            if start.elapsed() > BUDGET {
                break;
            }
        }
    }
}
