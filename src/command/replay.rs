//! Loading persisted data: the append-only file's commands through the
//! command path ([`Replayer`]: the log's commands run as an internal
//! client's, so a replayed write is applied exactly as the client's was,
//! same handlers, same engine path), and an RDB file's keys and function
//! libraries straight into the databases ([`KeyLoader`]).

use std::sync::Arc;

use bytes::Bytes;

use super::Client;
use crate::persist::load::Replay;
use crate::persist::rdb::file::Sink;
use crate::persist::snapshot::{Access, Item};
use crate::state::Shared;
use crate::store::DbGuard;

/// Runs a log's commands with an internal client, a fresh one per file.
pub struct Replayer {
    shared: Arc<Shared>,
    client: Client,
}

impl Replayer {
    /// A replayer for the server `shared`.
    pub fn new(shared: Arc<Shared>) -> Replayer {
        let client = Client::internal(shared.clone());
        Replayer { shared, client }
    }
}

impl Replay for Replayer {
    fn command(&mut self, args: Vec<Bytes>) -> bool {
        if !super::is_known(&self.client, &args) {
            return false;
        }
        super::execute(&mut self.client, args);
        self.client.out.clear();
        if self.client.blocked.is_some() {
            super::transactions::client_gone(&mut self.client);
        }
        true
    }

    fn end_of_file(&mut self) {
        super::transactions::client_gone(&mut self.client);
        self.client = Client::internal(self.shared.clone());
    }

    fn rdb(&mut self, data: &[u8]) -> Result<usize, String> {
        let opts = crate::persist::rdb::file::LoadOptions {
            now_ms: crate::util::now_ms(),
            skip_expired: true,
            verify_checksum: self.shared.config.read().value("rdbchecksum").as_deref()
                != Some("no"),
        };
        let mut loader = KeyLoader::new(self.shared.clone(), false);
        crate::persist::rdb::file::load(data, opts, &mut loader)
            .map(|l| l.end)
            .map_err(|e| e.to_string())
    }
}

/// Puts an RDB file's contents into the databases, all of them held from
/// creation to drop: nobody sees a half-loaded data set (DEBUG RELOAD,
/// a replica's full resync).
pub struct KeyLoader {
    shared: Arc<Shared>,
    guards: Vec<DbGuard>,
}

impl KeyLoader {
    /// Locks every database of `shared`; with `flush`, empties them first.
    pub fn new(shared: Arc<Shared>, flush: bool) -> KeyLoader {
        let store = &shared.engine.store;
        let mut guards: Vec<DbGuard> = (0..store.len()).map(|i| store.lock(i)).collect();
        if flush {
            for g in &mut guards {
                drop(g.remove_all());
            }
            let mut engines = shared.scripting.engines();
            engines.functions.flush();
            shared.scripting.libraries_changed(&engines);
        }
        KeyLoader { shared, guards }
    }
}

impl Sink for KeyLoader {
    fn library(&mut self, code: Bytes) -> Result<(), String> {
        let mut engines = self.shared.scripting.engines();
        let r = engines.functions.load(&code, false);
        self.shared.scripting.libraries_changed(&engines);
        r.map(|_| ())
            .map_err(|e| format!("Failed loading a function library: {e}"))
    }

    fn key(&mut self, db: usize, item: Item) -> Result<(), String> {
        let n = self.guards.len();
        let Some(g) = self.guards.get_mut(db) else {
            return Err(format!(
                "FATAL: Data file was created with a Redis server configured to handle more than {n} databases. Exiting"
            ));
        };
        if g.contains(&item.key) {
            return Err(format!(
                "Duplicate key '{}' found in RDB file",
                String::from_utf8_lossy(&item.key)
            ));
        }
        g.set(&item.key, item.value, false);
        if let Some(at) = item.expire_at {
            g.set_deadline(&item.key, at);
        }
        match item.access {
            Access::None => {}
            Access::IdleSecs(s) => g.restore_clock(&item.key, Some(s.saturating_mul(1000)), None),
            Access::Freq(f) => g.restore_clock(&item.key, None, Some(f)),
        }
        Ok(())
    }
}
