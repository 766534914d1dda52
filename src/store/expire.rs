//! Expiry sampling: the part of Redis's `activeExpireCycle` that looks
//! at one database (`engine::expire` runs it over every database, ten
//! times a second). The TTL table is an `IndexMap`, so a random key with a
//! TTL is one O(1) lookup.

use rand::Rng;

/// Keys sampled per batch (Redis's `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const SAMPLE: usize = 20;

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
            let k = super::Key::from(k);
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

    #[test]
    fn sampling_removes_dead_keys() {
        let mut db = Db::new(0);
        for i in 0..100 {
            let k = format!("k{i}");
            db.set(k.as_bytes(), Value::Str(Default::default()), false);
            db.set_deadline(k.as_bytes(), db.now - 1);
        }
        db.set(b"live", Value::Str(Default::default()), false);
        for _ in 0..100 {
            sample_once(&mut db);
        }
        assert_eq!(db.len(), 1);
        assert_eq!(db.expires_len(), 0);
    }
}
