//! The keyspace: numbered databases of keys.
//!
//! For now it holds only what the connection and server commands need
//! (SELECT, DBSIZE, FLUSHDB, FLUSHALL); the data types arrive with issue 4.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::Mutex;

/// A stored value (data types come later).
#[derive(Debug, Clone)]
pub enum Value {
    /// A string value.
    Str(Bytes),
}

/// One database.
#[derive(Debug, Default)]
pub struct Db {
    /// Key → value.
    pub map: HashMap<Bytes, Value>,
}

/// All databases. Each has its own lock so that traffic on one database
/// never waits for another.
pub struct Store {
    dbs: Vec<Mutex<Db>>,
}

impl Store {
    /// `n` empty databases.
    pub fn new(n: usize) -> Store {
        Store {
            dbs: (0..n.max(1)).map(|_| Mutex::new(Db::default())).collect(),
        }
    }

    /// Number of databases.
    pub fn len(&self) -> usize {
        self.dbs.len()
    }

    /// Always false: there is at least one database.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of keys in database `db`.
    pub fn dbsize(&self, db: usize) -> usize {
        self.dbs.get(db).map_or(0, |d| d.lock().map.len())
    }

    /// Removes every key of database `db`.
    pub fn flush(&self, db: usize) {
        if let Some(d) = self.dbs.get(db) {
            d.lock().map.clear();
        }
    }

    /// Removes every key of every database.
    pub fn flush_all(&self) {
        for d in &self.dbs {
            d.lock().map.clear();
        }
    }
}
