//! Active expiration: a background task that removes keys nobody reads.
//!
//! Lazy expiry ([`super::Db::expire_if_needed`]) removes a key when a
//! command touches it; this task makes a key that is never read disappear
//! close to its deadline too, and emit its `expired` event. It follows
//! Redis's `activeExpireCycle`: 10 times per second, for each database,
//! sample [`SAMPLE`] random keys among those with a TTL (the TTL table is an
//! `IndexMap`, so a random index is O(1)), remove the expired ones, and
//! repeat while more than a quarter of a sample was expired, within a time
//! budget of [`BUDGET`] per tick. The lock is taken per sample batch and
//! released in between, so clients never wait behind a long cycle.
//!
//! Events and blocked-client work queued by the removals are published by
//! `command::unlock`, like any write's.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::state::Shared;

/// Keys sampled per batch (Redis's `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const SAMPLE: usize = 20;
/// Time one tick may spend over all databases (25% of the 100 ms period).
pub const BUDGET: Duration = Duration::from_millis(25);
/// Period between ticks (hz 10).
pub const PERIOD: Duration = Duration::from_millis(100);

/// Runs the expiry cycle until the server shuts down or is dropped.
pub async fn run(shared: Weak<Shared>) {
    crate::state::every(shared, PERIOD, cycle).await
}

/// One tick over every database.
pub fn cycle(sh: &Arc<Shared>) {
    let start = Instant::now();
    for i in 0..sh.store.len() {
        loop {
            let mut db = crate::command::lock_db(sh, i);
            let (sampled, expired) = sample_once(&mut db);
            crate::command::unlock(sh, db);
            if sampled == 0 || expired * 4 <= sampled || start.elapsed() > BUDGET {
                break;
            }
        }
        if start.elapsed() > BUDGET {
            break;
        }
    }
}

/// Samples up to [`SAMPLE`] keys with a TTL and expires the dead ones.
/// Returns (sampled, expired).
pub fn sample_once(db: &mut super::Db) -> (usize, usize) {
    let n = db.expires_len();
    if n == 0 {
        return (0, 0);
    }
    let mut rng = rand::thread_rng();
    let mut sampled = 0;
    let mut expired = 0;
    for _ in 0..SAMPLE.min(n) {
        let len = db.expires_len();
        if len == 0 {
            break;
        }
        let i = rng.gen_range(0..len);
        let Some((k, at)) = db.expire_entry(i) else {
            break;
        };
        sampled += 1;
        if at <= db.now {
            let k = k.clone();
            db.expire_if_needed(&k);
            expired += 1;
        }
    }
    (sampled, expired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Db, Value};
    use bytes::Bytes;

    #[test]
    fn sampling_removes_dead_keys() {
        let mut db = Db::new(0);
        for i in 0..100 {
            let k = format!("k{i}");
            db.set(k.as_bytes(), Value::Str(Bytes::new()), false);
            db.set_deadline(k.as_bytes(), db.now - 1);
        }
        db.set(b"live", Value::Str(Bytes::new()), false);
        for _ in 0..100 {
            sample_once(&mut db);
        }
        assert_eq!(db.len(), 1);
        assert_eq!(db.expires_len(), 0);
    }
}
