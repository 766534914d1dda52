//! The connected clients, by id: what CLIENT LIST / KILL, the idle
//! timeout, shutdown and the sampled client-memory figures walk.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::handle::ClientHandle;

/// The connected clients, by id (ids increase, so this is also age order).
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    /// Number of connected clients, readable without the lock (used
    /// memory counts a fixed overhead per client, see `observe`).
    count: AtomicUsize,
    map: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
}

impl Clients {
    /// A fresh client id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a connected client.
    pub fn insert(&self, c: Arc<ClientHandle>) {
        let mut m = self.map.lock();
        m.insert(c.id, c);
        self.count.store(m.len(), Ordering::Relaxed);
    }

    /// The connected client `id`, if any (Redis's `lookupClientByID`).
    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.map.lock().get(&id).cloned()
    }

    /// Forgets a disconnected client.
    pub fn remove(&self, id: u64) {
        let mut m = self.map.lock();
        m.remove(&id);
        self.count.store(m.len(), Ordering::Relaxed);
    }

    /// Runs `f` on every connected client, under the list's lock (for
    /// quick reads only: it blocks connects and disconnects meanwhile).
    pub fn for_each(&self, mut f: impl FnMut(&ClientHandle)) {
        for c in self.map.lock().values() {
            f(c);
        }
    }

    /// A snapshot of the connected clients, in id order.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.map.lock().values().cloned().collect()
    }

    /// Number of connected clients, without taking the lock.
    #[inline]
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
