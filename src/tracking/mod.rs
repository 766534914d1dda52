//! Client-side caching, as Redis 7.0's `tracking.c`: which clients may
//! hold which keys in a local cache, and the invalidation messages sent
//! when those keys change.
//!
//! A client in tracking mode (CLIENT TRACKING on) has the keys of its
//! read-only commands remembered in the *tracking table* (key → client
//! ids); the first change of such a key sends each of those clients an
//! `invalidate` message and forgets the entry. A client in BCAST mode is
//! instead subscribed to key prefixes (the *prefix table*): every changed
//! key matching one of them is gathered and sent once the command (or the
//! transaction, or the script) ends. The messages are RESP3 push frames
//! (`>2 invalidate [keys]`), or, for a client that redirects them to
//! another connection subscribed to `__redis__:invalidate` in RESP2, a
//! pub/sub `message` on that channel. FLUSHDB / FLUSHALL send a null
//! (every key) to every tracking client.
//!
//! The databases record the keys a command modifies only while tracking
//! has been enabled once ([`Tracking::switch`], one relaxed load in
//! `Db::modified`); the engine hands them here when it releases the
//! database. Messages to the client whose command caused them are kept
//! *pending* and sent after its reply (the client calls
//! [`Tracking::send_pending`] when its command, its EXEC or its script
//! ends), as Redis's `tracking_pending_keys`; others are pushed to their
//! outboxes at once.
//!
//! `tracking-table-max-keys` bounds the table: over it, random keys are
//! evicted from it (their clients get an invalidation, as if they
//! changed), with Redis's growing effort per attempt.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use parking_lot::Mutex;

use crate::net::clients::Clients;
use crate::net::handle::ClientHandle;
use crate::net::limits::ClientClass;
use crate::protocol::Protocol;

/// The channel RESP2 redirect clients subscribe to for invalidations.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// The options of CLIENT TRACKING on, once checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    /// Tracking is on (Redis's `CLIENT_TRACKING`).
    pub on: bool,
    /// Broadcasting by prefix instead of remembering keys read.
    pub bcast: bool,
    /// Keys are remembered only after CLIENT CACHING yes.
    pub optin: bool,
    /// Keys are remembered except after CLIENT CACHING no.
    pub optout: bool,
    /// No invalidation for keys the client changed itself.
    pub noloop: bool,
}

/// What CLIENT TRACKINGINFO and CLIENT GETREDIR show of a tracking client.
#[derive(Debug, Clone, Default)]
pub struct Info {
    /// Its mode.
    pub mode: Mode,
    /// The client id its messages go to (0: itself).
    pub redirect: u64,
    /// The redirect client went away (`broken_redirect`).
    pub broken: bool,
    /// Its BCAST prefixes, in byte order.
    pub prefixes: Vec<Bytes>,
}

/// A message waiting for its client's reply to be sent first.
enum Pending {
    /// One key.
    Key(Bytes),
    /// Every key (a flush): a null.
    Flush,
    /// A BCAST array of keys, encoded.
    Keys(Bytes),
}

/// A tracking client.
struct Tracker {
    handle: Arc<ClientHandle>,
    mode: Mode,
    redirect: u64,
    broken: bool,
    prefixes: BTreeSet<Bytes>,
    pending: Vec<Pending>,
}

/// The keys changed under one BCAST prefix since the last broadcast, and
/// the clients subscribed to it.
#[derive(Default)]
struct Prefix {
    /// Key → id of the client that changed it last (0: the server).
    keys: BTreeMap<Bytes, u64>,
    clients: BTreeSet<u64>,
}

#[derive(Default)]
struct Tables {
    /// Key → ids of the clients that may cache it. An `IndexMap` so that
    /// eviction can pick a random key.
    keys: IndexMap<Bytes, HashSet<u64, ahash::RandomState>, ahash::RandomState>,
    /// Ids over all keys (INFO `tracking_total_items`).
    items: u64,
    prefixes: BTreeMap<Bytes, Prefix>,
    trackers: HashMap<u64, Tracker, ahash::RandomState>,
    /// Times the table was found over its limit in a row (eviction effort).
    over_limit_runs: u32,
}

/// The tracking and prefix tables, and the tracking clients.
pub struct Tracking {
    /// Set once a client first enables tracking: from then on the
    /// databases record the keys they change (shared with the store).
    switch: Arc<AtomicBool>,
    /// The connected clients, to find redirect targets.
    clients: Arc<Clients>,
    /// `tracking-table-max-keys` (0: no limit).
    max_keys: AtomicU64,
    tables: Mutex<Tables>,
}

impl Tracking {
    /// Tracking for the databases that record changes while `switch` is
    /// on, with redirect targets looked up in `clients`.
    pub fn new(switch: Arc<AtomicBool>, clients: Arc<Clients>) -> Tracking {
        Tracking {
            switch,
            clients,
            max_keys: AtomicU64::new(1_000_000),
            tables: Mutex::default(),
        }
    }

    /// The connected clients (the server's list, shared).
    pub fn clients(&self) -> &Arc<Clients> {
        &self.clients
    }

    /// Takes `tracking-table-max-keys`.
    pub fn set_max_keys(&self, n: u64) {
        self.max_keys.store(n, Relaxed);
    }

    /// Redis's `checkPrefixCollisionsOrReply`: the error when one of
    /// `prefixes` overlaps one client `id` has, or another of them.
    pub fn check_prefixes(&self, id: u64, prefixes: &[Bytes]) -> Result<(), String> {
        let t = self.tables.lock();
        let mine = t.trackers.get(&id).map(|tr| &tr.prefixes);
        let overlap = |a: &[u8], b: &[u8]| {
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        };
        let s = |b: &[u8]| String::from_utf8_lossy(crate::util::c_str(b)).into_owned();
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(existing) = mine.and_then(|m| m.iter().find(|e| overlap(e, p))) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    s(p),
                    s(existing)
                ));
            }
            if let Some(other) = prefixes[i + 1..].iter().find(|o| overlap(p, o)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    s(p),
                    s(other)
                ));
            }
        }
        Ok(())
    }

    /// Redis's `enableTracking`: client `handle` tracks in `mode`, its
    /// messages going to client `redirect` (0: itself); a BCAST client
    /// subscribes to `prefixes` (none: the empty prefix) on top of those
    /// it has.
    pub fn enable(
        &self,
        handle: &Arc<ClientHandle>,
        redirect: u64,
        mode: Mode,
        prefixes: &[Bytes],
    ) {
        self.switch.store(true, Relaxed);
        let mut t = self.tables.lock();
        let t = &mut *t;
        let tr = t.trackers.entry(handle.id).or_insert_with(|| Tracker {
            handle: handle.clone(),
            mode: Mode::default(),
            redirect: 0,
            broken: false,
            prefixes: BTreeSet::new(),
            pending: Vec::new(),
        });
        tr.mode = Mode { on: true, ..mode };
        tr.redirect = redirect;
        tr.broken = false;
        if mode.bcast {
            let empty = [Bytes::new()];
            let list = if prefixes.is_empty() {
                &empty[..]
            } else {
                prefixes
            };
            for p in list {
                let p = Bytes::copy_from_slice(p);
                let entry = t.prefixes.entry(p.clone()).or_default();
                if entry.clients.insert(handle.id) {
                    tr.prefixes.insert(p);
                }
            }
        }
    }

    /// Redis's `disableTracking`: client `id` stops tracking and leaves its
    /// prefixes; the keys it read stay in the table until they change
    /// (skipped then), as in Redis.
    pub fn disable(&self, id: u64) {
        let mut t = self.tables.lock();
        let Some(tr) = t.trackers.remove(&id) else {
            return;
        };
        for p in &tr.prefixes {
            if let Some(state) = t.prefixes.get_mut(p) {
                state.clients.remove(&id);
                if state.clients.is_empty() {
                    t.prefixes.remove(p);
                }
            }
        }
    }

    /// What CLIENT TRACKINGINFO shows of client `id` (None: not tracking).
    pub fn info(&self, id: u64) -> Option<Info> {
        let t = self.tables.lock();
        let tr = t.trackers.get(&id)?;
        Some(Info {
            mode: tr.mode,
            redirect: tr.redirect,
            broken: tr.broken,
            prefixes: tr.prefixes.iter().cloned().collect(),
        })
    }

    /// Redis's `trackingRememberKeys`: client `id` may now cache `keys`.
    /// The table is then brought back under its limit.
    pub fn remember<'a>(&self, id: u64, keys: impl Iterator<Item = &'a [u8]>) {
        let mut t = self.tables.lock();
        for k in keys {
            let ids = match t.keys.get_mut(k) {
                Some(ids) => ids,
                None => t.keys.entry(Bytes::copy_from_slice(k)).or_default(),
            };
            if ids.insert(id) {
                t.items += 1;
            }
        }
    }

    /// Redis's `trackingInvalidateKey` for each of `keys`, changed by
    /// client `origin` (0: the server: expiry, eviction): queues them for
    /// the BCAST prefixes they match, and sends an invalidation to the
    /// clients that may cache them.
    pub fn invalidate(&self, keys: &[Bytes], origin: u64) {
        let mut t = self.tables.lock();
        for k in keys {
            self.invalidate_key(&mut t, k, origin, true);
        }
    }

    fn invalidate_key(&self, t: &mut Tables, key: &Bytes, origin: u64, bcast: bool) {
        if bcast && !t.prefixes.is_empty() {
            for (p, state) in t.prefixes.iter_mut() {
                if key.starts_with(p) {
                    state.keys.insert(key.clone(), origin);
                }
            }
        }
        let Some(ids) = t.keys.swap_remove(&key[..]) else {
            return;
        };
        t.items = t.items.saturating_sub(ids.len() as u64);
        for id in ids {
            let Some(tr) = t.trackers.get_mut(&id) else {
                continue;
            };
            if tr.mode.bcast || (tr.mode.noloop && id == origin) {
                continue;
            }
            if id == origin {
                tr.pending.push(Pending::Key(key.clone()));
            } else {
                self.send(tr, Payload::Key(key));
            }
        }
    }

    /// Redis's `trackingBroadcastInvalidationMessages`: sends each BCAST
    /// prefix's changed keys to its clients (without, for a NOLOOP client,
    /// those it changed itself). Messages for client `current` (whose
    /// command just ended) wait for its reply.
    pub fn broadcast(&self, current: u64) {
        let mut t = self.tables.lock();
        if t.prefixes.is_empty() {
            return;
        }
        let t = &mut *t;
        for state in t.prefixes.values_mut() {
            if state.keys.is_empty() {
                continue;
            }
            let keys = std::mem::take(&mut state.keys);
            let all = encode_keys(&keys, None);
            for id in &state.clients {
                let Some(tr) = t.trackers.get_mut(id) else {
                    continue;
                };
                let proto = if tr.mode.noloop {
                    match encode_keys(&keys, Some(*id)) {
                        Some(p) => p,
                        None => continue,
                    }
                } else {
                    all.clone().unwrap_or_default()
                };
                if *id == current {
                    tr.pending.push(Pending::Keys(proto));
                } else {
                    self.send(tr, Payload::Raw(&proto));
                }
            }
        }
    }

    /// Redis's `trackingInvalidateKeysOnFlush`: every tracking client is
    /// told that every key is invalid (client `current`'s message waits
    /// for its reply), and the table is emptied.
    pub fn flushed(&self, current: u64) {
        let mut t = self.tables.lock();
        let t = &mut *t;
        for (id, tr) in t.trackers.iter_mut() {
            if *id == current {
                tr.pending.push(Pending::Flush);
            } else {
                let null = null_of(tr.handle.protocol());
                self.send(tr, Payload::Raw(null));
            }
        }
        t.keys = IndexMap::default();
        t.items = 0;
    }

    /// Sends what waited for client `id`'s reply (the client queued its
    /// replies first).
    pub fn send_pending(&self, id: u64) {
        let mut t = self.tables.lock();
        let Some(tr) = t.trackers.get_mut(&id) else {
            return;
        };
        for p in std::mem::take(&mut tr.pending) {
            match p {
                Pending::Key(k) => self.send(tr, Payload::Key(&k)),
                Pending::Keys(b) => self.send(tr, Payload::Raw(&b)),
                Pending::Flush => {
                    let null = null_of(tr.handle.protocol());
                    self.send(tr, Payload::Raw(null));
                }
            }
        }
    }

    /// True if client `id` has messages waiting for its reply.
    pub fn has_pending(&self, id: u64) -> bool {
        self.tables
            .lock()
            .trackers
            .get(&id)
            .is_some_and(|tr| !tr.pending.is_empty())
    }

    /// Redis's `trackingLimitUsedSlots`: while the table holds more keys
    /// than `tracking-table-max-keys`, evicts random ones (their clients
    /// are told, as if they changed), at most 100 × the number of runs in
    /// a row that found the table over the limit.
    pub fn limit(&self) {
        let max = self.max_keys.load(Relaxed) as usize;
        if max == 0 || !self.switch.load(Relaxed) {
            return;
        }
        let mut t = self.tables.lock();
        if t.keys.len() <= max {
            t.over_limit_runs = 0;
            return;
        }
        let mut effort = 100 * (t.over_limit_runs as usize + 1);
        let mut rng = rand::thread_rng();
        while effort > 0 && !t.keys.is_empty() {
            effort -= 1;
            use rand::Rng;
            let i = rng.gen_range(0..t.keys.len());
            let Some(key) = t.keys.get_index(i).map(|(k, _)| k.clone()) else {
                break;
            };
            self.invalidate_key(&mut t, &key, 0, false);
            if t.keys.len() <= max {
                t.over_limit_runs = 0;
                return;
            }
        }
        t.over_limit_runs += 1;
    }

    /// INFO's `tracking_clients`, `tracking_total_keys`,
    /// `tracking_total_items`, `tracking_total_prefixes`.
    pub fn stats(&self) -> (usize, usize, u64, usize) {
        let t = self.tables.lock();
        (t.trackers.len(), t.keys.len(), t.items, t.prefixes.len())
    }

    /// Redis's `sendTrackingMessage`: to the tracking client itself in
    /// RESP3, or to its redirect client (RESP3, or RESP2 subscribed to
    /// something: a `message` on [`CHANNEL`]). A redirect client gone
    /// marks the redirection broken and tells a RESP3 client so.
    fn send(&self, tr: &mut Tracker, payload: Payload) {
        let mut redirected = false;
        let target = if tr.redirect != 0 {
            match self.clients.get(tr.redirect) {
                Some(h) => {
                    redirected = true;
                    h
                }
                None => {
                    tr.broken = true;
                    if tr.handle.protocol() == Protocol::Resp3 {
                        let mut b = BytesMut::with_capacity(48);
                        b.put_slice(b">2\r\n$21\r\ntracking-redir-broken\r\n:");
                        b.put_slice(itoa::Buffer::new().format(tr.redirect).as_bytes());
                        b.put_slice(b"\r\n");
                        tr.handle.deliver(b.freeze());
                    }
                    return;
                }
            }
        } else {
            tr.handle.clone()
        };
        let mut b = BytesMut::with_capacity(64);
        if target.protocol() == Protocol::Resp3 {
            b.put_slice(b">2\r\n$10\r\ninvalidate\r\n");
        } else if redirected && target.class() == ClientClass::PubSub {
            b.put_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n");
            b.put_slice(CHANNEL);
            b.put_slice(b"\r\n");
        } else {
            return;
        }
        match payload {
            Payload::Key(k) => {
                b.put_slice(b"*1\r\n");
                put_bulk(&mut b, k);
            }
            Payload::Raw(r) => b.put_slice(r),
        }
        target.deliver(b.freeze());
    }
}

/// The value part of an invalidation message.
enum Payload<'a> {
    /// One key: sent as an array of one.
    Key(&'a [u8]),
    /// Already encoded (an array of keys, or a null).
    Raw(&'a [u8]),
}

/// The null a flush sends, in the tracking client's protocol (Redis's
/// `shared.null[c->resp]`, even when a RESP2 client redirects to a RESP3
/// one or the other way round).
fn null_of(p: Protocol) -> &'static [u8] {
    match p {
        Protocol::Resp3 => b"_\r\n",
        Protocol::Resp2 => b"$-1\r\n",
    }
}

fn put_bulk(b: &mut BytesMut, k: &[u8]) {
    b.put_u8(b'$');
    b.put_slice(itoa::Buffer::new().format(k.len()).as_bytes());
    b.put_slice(b"\r\n");
    b.put_slice(k);
    b.put_slice(b"\r\n");
}

/// Redis's `trackingBuildBroadcastReply`: the keys as a RESP array,
/// without those last changed by client `skip`; None if that leaves none.
fn encode_keys(keys: &BTreeMap<Bytes, u64>, skip: Option<u64>) -> Option<Bytes> {
    let kept = || keys.iter().filter(move |(_, by)| Some(**by) != skip);
    let n = kept().count();
    if n == 0 && skip.is_some() {
        return None;
    }
    let mut b = BytesMut::with_capacity(16 + n * 16);
    b.put_u8(b'*');
    b.put_slice(itoa::Buffer::new().format(n).as_bytes());
    b.put_slice(b"\r\n");
    for (k, _) in kept() {
        put_bulk(&mut b, k);
    }
    Some(b.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_arrays_skip_the_noloop_clients_own_keys() {
        let mut keys = BTreeMap::new();
        keys.insert(Bytes::from_static(b"a"), 1);
        keys.insert(Bytes::from_static(b"bc"), 2);
        assert_eq!(
            encode_keys(&keys, None).as_deref(),
            Some(&b"*2\r\n$1\r\na\r\n$2\r\nbc\r\n"[..])
        );
        assert_eq!(
            encode_keys(&keys, Some(2)).as_deref(),
            Some(&b"*1\r\n$1\r\na\r\n"[..])
        );
        keys.remove(&b"a"[..]);
        assert_eq!(encode_keys(&keys, Some(2)), None);
    }

    #[test]
    fn prefix_collisions_are_refused_with_redis_texts() {
        let t = Tracking::new(Arc::default(), Arc::default());
        let p = |v: &[&str]| {
            v.iter()
                .map(|s| Bytes::from(s.to_string()))
                .collect::<Vec<_>>()
        };
        let e = t.check_prefixes(1, &p(&["FOOBAR", "FOO"])).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'"));
        assert!(t.check_prefixes(1, &p(&["FOO", "BAR"])).is_ok());
    }
}
