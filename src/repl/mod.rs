//! Replication state below the engine: the server's replication identity
//! (role, `master_replid`, `master_replid2`), the replication stream the
//! engine feeds with every write's effects (encoded once, as Redis 7.0
//! sends them to replicas: RESP commands, `SELECT` when the database
//! changes, `MULTI` / `EXEC` around units), the backlog partial resyncs
//! are served from, and the replicas attached with what they acknowledged.
//!
//! The stream exists only while a backlog does (created when the first
//! replica attaches, as Redis does): until then the engine records
//! nothing for it. Every fed chunk is one `Bytes`, pushed to the backlog
//! and to each online replica's outbox (a reference count, no copy); a
//! replica still waiting for its RDB collects the chunks instead and gets
//! them right after it. Pushes go through the replica's outbox, so the
//! `client-output-buffer-limit replica` check cuts a replica that reads too
//! slowly.
//!
//! The replica side (connecting to a primary, loading its RDB, applying
//! its stream) lives above the command layer; what it shares with the
//! rest of the server (the link's state for INFO and ROLE, the primary
//! REPLICAOF asked for) is kept here.

pub mod backlog;
pub mod failover;
pub mod shutdown;
pub mod sync;

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::net::handle::ClientHandle;
use crate::net::limits::ClientClass;
use backlog::Backlog;

/// A replica attached to this server, as the primary sees it.
#[derive(Debug)]
pub struct Replica {
    /// Its connection's outbox.
    pub handle: Arc<ClientHandle>,
    /// `REPLCONF listening-port`.
    pub port: AtomicU16,
    /// `REPLCONF ip-address`, if given.
    pub ip: Mutex<Option<String>>,
    /// Stream offset it last acknowledged (`REPLCONF ACK`).
    pub ack_offset: AtomicU64,
    /// Unix ms of its last acknowledgement.
    pub ack_ms: AtomicU64,
    /// It has its RDB (or its partial resync) and receives the stream.
    pub online: AtomicBool,
    /// Its RDB file is being sent (INFO `send_bulk`, disk-based sync).
    pub sending: AtomicBool,
    /// It took a diskless RDB and its stream waits for its first
    /// `REPLCONF ACK` (see [`Repl::start_stream`]).
    pub stream_on_ack: AtomicBool,
    /// It announced `REPLCONF capa eof`: it reads the diskless `$EOF:` form.
    pub capa_eof: bool,
    /// It asked with PSYNC (answered `+FULLRESYNC`), not the old SYNC.
    pub psync: bool,
    /// When it began to wait for a full resync.
    pub since: std::time::Instant,
}

impl Replica {
    /// A replica on the connection `handle`, not yet synchronized.
    pub fn new(handle: Arc<ClientHandle>) -> Replica {
        Replica {
            handle,
            port: AtomicU16::new(0),
            ip: Mutex::new(None),
            ack_offset: AtomicU64::new(0),
            ack_ms: AtomicU64::new(crate::util::now_ms()),
            online: AtomicBool::new(false),
            sending: AtomicBool::new(false),
            stream_on_ack: AtomicBool::new(false),
            capa_eof: false,
            psync: false,
            since: std::time::Instant::now(),
        }
    }
}

struct Attached {
    link: Arc<Replica>,
    /// Stream chunks fed while its RDB is made and sent (`None` once
    /// online), and their size: bounded by the replica class's hard
    /// output-buffer limit, as Redis counts them in the replica's output
    /// buffer.
    waiting: Option<Vec<Bytes>>,
    waiting_bytes: usize,
}

impl Attached {
    /// Queues the stream collected while its RDB was made and sent.
    fn release_waiting(&mut self) {
        for chunk in self.waiting.take().unwrap_or_default() {
            self.link.handle.push(chunk);
        }
        self.waiting_bytes = 0;
    }
}

impl Inner {
    /// Disconnects every replica, attached or waiting for a full resync:
    /// they reconnect and resync with this server's new history.
    fn disconnect_replicas(&mut self) {
        for a in self.replicas.drain(..) {
            a.link.handle.kill();
        }
        for l in self.pending.drain(..) {
            l.handle.kill();
        }
    }
}

/// How the replica side's link to its primary stands (INFO, ROLE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Must connect (`connect` in ROLE).
    Connect,
    /// Connecting (`connecting`).
    Connecting,
    /// Connected, in the handshake up to PSYNC's answer (`handshake`).
    Handshake,
    /// Receiving the RDB (`sync`).
    Sync,
    /// Streaming (`connected`).
    Connected,
}

/// The primary this server replicates from.
#[derive(Debug, Clone)]
pub struct Master {
    /// As given to REPLICAOF.
    pub host: String,
    /// As given to REPLICAOF.
    pub port: u16,
    /// Where the link is.
    pub state: LinkState,
    /// Unix ms of the last bytes from the primary.
    pub last_io_ms: u64,
    /// Unix ms the link went down (0 while up).
    pub down_since_ms: u64,
    /// Bytes of the RDB received so far / announced (full sync).
    pub sync_read: u64,
    pub sync_size: i64,
}

struct Inner {
    replid: String,
    replid2: String,
    /// Redis's `second_replid_offset`: the first offset (1-based) not
    /// covered by `replid2`; -1 with no `replid2`.
    second_offset: i64,
    /// Stream offset just past the last byte fed (`master_repl_offset`).
    offset: u64,
    /// Database the stream last selected (`None`: the next command selects).
    selected: Option<usize>,
    backlog: Option<Backlog>,
    backlog_size: usize,
    replicas: Vec<Attached>,
    /// Replicas waiting for a full resync to start (Redis's
    /// `WAIT_BGSAVE_START`), and whether a `herald-repl-sync` thread runs
    /// to serve them.
    pending: Vec<Arc<Replica>>,
    producing: bool,
    /// Unix ms since which no replica has been attached (backlog TTL).
    alone_since_ms: u64,
    /// The data stands at a point of some replication history
    /// (`replid`, `offset`): false only for a replica that started with
    /// no recorded point and has not synced yet, which asks `PSYNC ? -1`
    /// as Redis's replicas without a cached master do.
    history: bool,
}

/// The replication identity, stream, backlog and replicas of the server.
pub struct Repl {
    /// The engine feeds the stream (a backlog exists and this server is a
    /// primary): read without a lock for every write.
    feeding: AtomicBool,
    /// This server replicates from a primary.
    is_replica: AtomicBool,
    inner: Mutex<Inner>,
    /// Notified at every `REPLCONF ACK`, and when a shutdown wait ends
    /// without exiting (WAIT and a blocked SHUTDOWN wait on it).
    pub acked: tokio::sync::Notify,
    /// Connections suspended in WAIT or a SHUTDOWN waiting for the
    /// replicas (INFO `blocked_clients`).
    pub waiting_clients: std::sync::atomic::AtomicUsize,
    /// A shutdown waiting for the replicas to catch up.
    pub shutdown: Mutex<shutdown::ShutdownWait>,
    /// The primary, while this server is a replica.
    pub master: Mutex<Option<Master>>,
    /// The primary REPLICAOF asked for, watched by the replica link task
    /// (`None`: be a primary).
    pub target: tokio::sync::watch::Sender<Option<(String, u16)>>,
    /// Full resyncs served (INFO `sync_full`).
    pub sync_full: AtomicU64,
    /// Partial resyncs accepted / refused (`sync_partial_ok` / `_err`).
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    /// On a replica: the database the primary's stream last selected, so
    /// that a partial resync goes on in it.
    pub stream_db: std::sync::atomic::AtomicUsize,
    /// FAILOVER's state.
    pub failover: Mutex<failover::Failover>,
}

/// A random 40-hex-digit replication id, as Redis's `changeReplicationId`.
pub fn random_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

const NO_ID: &str = "0000000000000000000000000000000000000000";

/// The stream's `SELECT n`.
fn encode_select(out: &mut Vec<u8>, db: usize) {
    let n = db.to_string();
    crate::persist::aof::encode_command(out, &[b"SELECT".as_slice(), n.as_bytes()]);
}

impl Default for Repl {
    fn default() -> Repl {
        Repl {
            feeding: AtomicBool::new(false),
            is_replica: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                replid: random_id(),
                replid2: NO_ID.into(),
                second_offset: -1,
                offset: 0,
                selected: None,
                backlog: None,
                backlog_size: 1 << 20,
                replicas: Vec::new(),
                pending: Vec::new(),
                producing: false,
                alone_since_ms: 0,
                history: true,
            }),
            acked: tokio::sync::Notify::new(),
            waiting_clients: std::sync::atomic::AtomicUsize::new(0),
            shutdown: Mutex::new(shutdown::ShutdownWait::default()),
            master: Mutex::new(None),
            target: tokio::sync::watch::channel(None).0,
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            stream_db: std::sync::atomic::AtomicUsize::new(0),
            failover: Mutex::new(failover::Failover::default()),
        }
    }
}

/// A snapshot of the identity and backlog for INFO replication.
#[derive(Debug, Clone)]
pub struct Status {
    pub replid: String,
    pub replid2: String,
    pub offset: u64,
    pub second_offset: i64,
    pub backlog_active: bool,
    pub backlog_size: usize,
    pub backlog_first_byte: u64,
    pub backlog_histlen: u64,
}

impl Repl {
    /// `repl-backlog-size` (at start and after CONFIG SET).
    pub fn set_backlog_size(&self, size: usize) {
        let mut g = self.inner.lock();
        g.backlog_size = size;
        if let Some(b) = &mut g.backlog {
            b.resize(size);
        }
    }

    /// True while the engine must record effects for the stream.
    #[inline]
    pub fn feeding(&self) -> bool {
        self.feeding.load(Relaxed)
    }

    /// True while this server replicates from a primary.
    #[inline]
    pub fn is_replica(&self) -> bool {
        self.is_replica.load(Relaxed)
    }

    /// `master_repl_offset`.
    pub fn offset(&self) -> u64 {
        self.inner.lock().offset
    }

    /// The replication id and offset (ROLE, PSYNC).
    pub fn id_and_offset(&self) -> (String, u64) {
        let g = self.inner.lock();
        (g.replid.clone(), g.offset)
    }

    /// Identity and backlog figures (INFO replication).
    pub fn status(&self) -> Status {
        let g = self.inner.lock();
        Status {
            replid: g.replid.clone(),
            replid2: g.replid2.clone(),
            offset: g.offset,
            second_offset: g.second_offset,
            backlog_active: g.backlog.is_some(),
            backlog_size: g.backlog_size,
            backlog_first_byte: g.backlog.as_ref().map_or(0, |b| b.start() + 1),
            backlog_histlen: g.backlog.as_ref().map_or(0, Backlog::histlen),
        }
    }

    /// Appends the effects of one command or unit to the stream: `(database,
    /// command)` pairs, in `MULTI` / `EXEC` if `multi` and there are more
    /// than one (Redis 7.0 does not wrap a single command).
    pub fn feed<'a, I>(&self, items: I, multi: bool)
    where
        I: IntoIterator<Item = (usize, &'a [Bytes])>,
    {
        let items: Vec<_> = items.into_iter().collect();
        let multi = multi && items.len() > 1;
        let mut g = self.inner.lock();
        if g.backlog.is_none() {
            return;
        }
        let mut out = Vec::new();
        let mut first = true;
        for (db, cmd) in items {
            if g.selected != Some(db) {
                encode_select(&mut out, db);
                g.selected = Some(db);
            }
            if first && multi {
                crate::persist::aof::encode_command(&mut out, &[b"MULTI".as_slice()]);
            }
            first = false;
            crate::persist::aof::encode_command(&mut out, cmd);
        }
        if first {
            return;
        }
        if multi {
            crate::persist::aof::encode_command(&mut out, &[b"EXEC".as_slice()]);
        }
        Self::push(&mut g, Bytes::from(out));
    }

    /// Feeds a `PING` (no database), as Redis every
    /// `repl-ping-replica-period` while replicas are attached.
    pub fn feed_ping(&self) {
        let mut g = self.inner.lock();
        if g.backlog.is_none() || g.replicas.is_empty() {
            return;
        }
        Self::push(&mut g, Bytes::from_static(b"*1\r\n$4\r\nPING\r\n"));
    }

    /// Feeds one command to the replicas as it is, under no database
    /// (DEBUG REPLICATE: Redis's tests make replicas diverge with it).
    pub fn feed_unselected(&self, cmd: &[Bytes]) {
        let mut g = self.inner.lock();
        if g.backlog.is_none() {
            return;
        }
        let mut out = Vec::new();
        crate::persist::aof::encode_command(&mut out, cmd);
        Self::push(&mut g, Bytes::from(out));
    }

    /// Feeds bytes of the primary's stream as received (a replica keeps
    /// its own backlog with the primary's offsets, for PSYNC2 after a
    /// promotion, and passes them to its own replicas).
    pub fn feed_raw(&self, bytes: Bytes) {
        let mut g = self.inner.lock();
        if g.backlog.is_none() {
            let size = g.backlog_size;
            let end = g.offset;
            g.backlog = Some(Backlog::new(size, end));
        }
        Self::push(&mut g, bytes);
    }

    fn push(g: &mut Inner, bytes: Bytes) {
        g.offset += bytes.len() as u64;
        if let Some(b) = &mut g.backlog {
            b.push(bytes.clone());
        }
        g.replicas.retain_mut(|a| {
            if a.link.handle.is_killed() {
                return false;
            }
            match &mut a.waiting {
                Some(w) => {
                    a.waiting_bytes += bytes.len();
                    let hard = a.link.handle.limits().hard(ClientClass::Replica);
                    if hard > 0 && a.waiting_bytes as u64 > hard {
                        tracing::warn!(
                            "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                            a.link.handle.id,
                            a.link.handle.addr
                        );
                        a.link.handle.kill();
                        return false;
                    }
                    w.push(bytes.clone());
                }
                None => {
                    a.link.handle.push(bytes.clone());
                }
            }
            true
        });
    }

    /// PSYNC's partial resync: if `replid` is this server's (or its former
    /// one, up to where it was left) and the backlog holds every byte from
    /// `psync_offset` (1-based, as replicas send it), queues `+CONTINUE
    /// <replid>` and the missing bytes to `link` and attaches it online.
    pub fn try_partial(
        &self,
        replid: &str,
        psync_offset: i64,
        link: &Arc<Replica>,
        psync2: bool,
    ) -> bool {
        let mut g = self.inner.lock();
        let id_ok = replid == g.replid
            || (replid == g.replid2 && replid != NO_ID && psync_offset <= g.second_offset);
        if !id_ok || psync_offset < 1 {
            return false;
        }
        let from = (psync_offset - 1) as u64;
        let Some(missing) = g.backlog.as_ref().and_then(|b| b.since(from)) else {
            return false;
        };
        let line = if psync2 {
            format!("+CONTINUE {}\r\n", g.replid)
        } else {
            "+CONTINUE\r\n".to_string()
        };
        link.handle.push(Bytes::from(line));
        for chunk in missing {
            link.handle.push(chunk);
        }
        link.online.store(true, Relaxed);
        link.handle.set_class(ClientClass::Replica);
        g.replicas.push(Attached {
            link: link.clone(),
            waiting: None,
            waiting_bytes: 0,
        });
        true
    }

    /// A full resync begins for `link`: the caller holds every database
    /// locked (its snapshot and this offset agree). Creates the backlog if
    /// there is none (with a new replication id, as Redis), attaches the
    /// replica so that it collects the stream from here, and returns the
    /// id and offset for `+FULLRESYNC`.
    pub fn attach_full(&self, link: &Arc<Replica>) -> (String, u64) {
        let mut g = self.inner.lock();
        if g.backlog.is_none() {
            if g.replicas.is_empty() && !self.is_replica() {
                g.replid = random_id();
                g.replid2 = NO_ID.into();
                g.second_offset = -1;
            }
            let size = g.backlog_size;
            let end = g.offset;
            g.backlog = Some(Backlog::new(size, end));
            g.selected = None;
            if !self.is_replica() {
                self.feeding.store(true, Relaxed);
            }
        }
        // The replica starts from a snapshot with no database selected.
        g.selected = None;
        g.replicas.push(Attached {
            link: link.clone(),
            waiting: Some(Vec::new()),
            waiting_bytes: 0,
        });
        (g.replid.clone(), g.offset)
    }

    /// The RDB of `link`'s full resync has been written to its socket:
    /// queues the stream collected meanwhile and puts the replica online
    /// (from here its output counts against the `replica` class limits).
    /// After a diskless RDB (`on_ack`) the stream waits for the replica's
    /// first `REPLCONF ACK`, as Redis 7.0 does: a replica finds the end of
    /// an `$EOF:` payload by its last bytes, so nothing may follow the mark
    /// before it has read it. False if the replica is gone meanwhile.
    pub fn go_online(&self, link: &Arc<Replica>, on_ack: bool) -> bool {
        let mut g = self.inner.lock();
        let Some(a) = g.replicas.iter_mut().find(|a| Arc::ptr_eq(&a.link, link)) else {
            return false;
        };
        link.handle.set_class(ClientClass::Replica);
        link.online.store(true, Relaxed);
        if on_ack {
            link.stream_on_ack.store(true, Relaxed);
            return true;
        }
        a.release_waiting();
        true
    }

    /// `REPLCONF ACK` from `link`: the stream held after its diskless RDB
    /// starts (see [`go_online`](Self::go_online)).
    pub fn start_stream(&self, link: &Arc<Replica>) {
        if !link.stream_on_ack.swap(false, Relaxed) {
            return;
        }
        let mut g = self.inner.lock();
        if let Some(a) = g.replicas.iter_mut().find(|a| Arc::ptr_eq(&a.link, link)) {
            a.release_waiting();
        }
    }

    /// Queues `link` for the next full resync; true if no thread serves
    /// the queue and the caller must start one.
    pub fn enqueue_full(&self, link: Arc<Replica>) -> bool {
        let mut g = self.inner.lock();
        g.pending.push(link);
        !std::mem::replace(&mut g.producing, true)
    }

    /// The replicas waiting for a full resync (gone ones dropped), and how
    /// long the oldest has waited; with none left, the serving thread
    /// stops (it returns `None` and must exit).
    pub fn pending_full(&self) -> Option<(usize, std::time::Duration)> {
        let mut g = self.inner.lock();
        g.pending.retain(|l| !l.handle.is_killed());
        match g.pending.first() {
            Some(first) => Some((g.pending.len(), first.since.elapsed())),
            None => {
                g.producing = false;
                None
            }
        }
    }

    /// Takes the replicas waiting for a full resync: the next one serves
    /// them all.
    pub fn take_pending_full(&self) -> Vec<Arc<Replica>> {
        std::mem::take(&mut self.inner.lock().pending)
    }

    /// The replica on connection `id` is gone.
    pub fn detach(&self, id: u64) {
        let mut g = self.inner.lock();
        g.pending.retain(|l| l.handle.id != id);
        g.replicas.retain(|a| a.link.handle.id != id);
        if g.replicas.is_empty() {
            g.alone_since_ms = crate::util::now_ms();
        }
    }

    /// Memory of the replication stream kept: the backlog's bytes, and
    /// with what the replicas have still to send (their outboxes share the
    /// backlog's chunks, the slowest one's tail reaching furthest back),
    /// as Redis 7.0's shared replication buffer (INFO
    /// `mem_replication_backlog`, `mem_total_replication_buffers`).
    pub fn buffer_memory(&self) -> (u64, u64) {
        let g = self.inner.lock();
        let backlog = g.backlog.as_ref().map_or(0, Backlog::histlen);
        let pending = g
            .replicas
            .iter()
            .filter(|a| a.link.online.load(Relaxed))
            .map(|a| a.link.handle.pending_bytes() as u64)
            .max()
            .unwrap_or(0);
        (backlog, backlog.max(pending))
    }

    /// The replicas attached, oldest first, then those waiting for a full
    /// resync to start.
    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        let g = self.inner.lock();
        g.replicas
            .iter()
            .map(|a| &a.link)
            .chain(&g.pending)
            .filter(|l| !l.handle.is_killed())
            .cloned()
            .collect()
    }

    /// Replicas online whose acknowledged offset reaches `offset` (WAIT).
    pub fn acked_at_least(&self, offset: u64) -> usize {
        self.replicas()
            .iter()
            .filter(|r| r.online.load(Relaxed) && r.ack_offset.load(Relaxed) >= offset)
            .count()
    }

    /// Sends `REPLCONF GETACK *` to every replica online (WAIT asks the
    /// replicas where they are, as Redis in `beforeSleep`).
    pub fn request_acks(&self) {
        let mut g = self.inner.lock();
        if g.backlog.is_none() || g.replicas.is_empty() {
            return;
        }
        Self::push(
            &mut g,
            Bytes::from_static(b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n"),
        );
    }

    /// Frees the backlog once no replica has been attached for `ttl`
    /// seconds (`repl-backlog-ttl`; 0: never), as Redis's replication
    /// cron on a primary.
    pub fn expire_backlog(&self, ttl: u64) {
        if ttl == 0 || self.is_replica() {
            return;
        }
        let mut g = self.inner.lock();
        if g.backlog.is_some()
            && g.replicas.is_empty()
            && crate::util::now_ms().saturating_sub(g.alone_since_ms) > ttl * 1000
        {
            g.backlog = None;
            self.feeding.store(false, Relaxed);
            // As Redis: a new id, so no replica can continue from a
            // history this server no longer has.
            g.replid = random_id();
            g.replid2 = NO_ID.into();
            g.second_offset = -1;
        }
    }

    /// This server becomes a replica (REPLICAOF host port): the engine
    /// stops feeding the stream (the primary's bytes feed it instead) and
    /// the replicas attached are dropped, as Redis disconnects them so
    /// that they resync with the new history.
    pub fn become_replica(&self, host: String, port: u16) {
        self.is_replica.store(true, Relaxed);
        crate::logging::set_replica(true);
        self.feeding.store(false, Relaxed);
        let mut g = self.inner.lock();
        g.disconnect_replicas();
        g.selected = None;
        *self.master.lock() = Some(Master {
            host,
            port,
            state: LinkState::Connect,
            last_io_ms: 0,
            down_since_ms: crate::util::now_ms(),
            sync_read: 0,
            sync_size: -1,
        });
    }

    /// What a replica asks PSYNC for: its replication id and the next
    /// offset it needs, or `?` and -1 with no history to continue.
    pub fn psync_request(&self) -> (String, String) {
        let g = self.inner.lock();
        if g.history {
            (g.replid.clone(), (g.offset + 1).to_string())
        } else {
            ("?".into(), "-1".into())
        }
    }

    /// The replication point a saved RDB records (Redis's
    /// `rdbPopulateSaveInfo`): a primary's while it keeps a backlog, a
    /// replica's while it has a history; `None` otherwise.
    pub fn save_point(&self) -> Option<(String, i64, usize)> {
        let g = self.inner.lock();
        if self.is_replica() {
            g.history.then(|| {
                (
                    g.replid.clone(),
                    g.offset as i64,
                    self.stream_db.load(Relaxed),
                )
            })
        } else {
            g.backlog
                .as_ref()
                .map(|_| (g.replid.clone(), g.offset as i64, g.selected.unwrap_or(0)))
        }
    }

    /// Start-up, with the replication point `dump.rdb` recorded, or
    /// `None`, as Redis 7.0's `loadDataFromDisk`. A replica takes the point
    /// as its own, so that it asks its primary to continue from it. A
    /// primary keeps it as `replid2` with a backlog starting there, so that
    /// its replicas continue after its restart; the deletions of the keys
    /// that expired meanwhile go into that backlog.
    pub fn restore(&self, point: Option<crate::persist::save::ReplPoint>, replica: bool) {
        let Some(p) = point else {
            if replica {
                self.inner.lock().history = false;
            }
            return;
        };
        {
            let mut g = self.inner.lock();
            g.offset = p.offset;
            if replica {
                g.replid = p.id;
                self.stream_db.store(p.db, Relaxed);
                return;
            }
            g.replid2 = p.id;
            g.second_offset = p.offset as i64 + 1;
            let size = g.backlog_size;
            g.backlog = Some(Backlog::new(size, p.offset));
            g.selected = None;
            g.alone_since_ms = crate::util::now_ms();
        }
        self.feeding.store(true, Relaxed);
        for (db, key) in p.expired {
            let cmd = [Bytes::from_static(b"DEL"), key];
            self.feed([(db, cmd.as_slice())], false);
        }
    }

    /// A full sync from the primary completed with `replid` at `offset`:
    /// this server's history is now the primary's. Its own replicas are
    /// disconnected, to resync with the new data (Redis's
    /// `replicationAttachToNewMaster`).
    pub fn synced_from(&self, replid: &str, offset: u64) {
        let mut g = self.inner.lock();
        g.disconnect_replicas();
        self.stream_db.store(0, Relaxed);
        g.replid = replid.to_string();
        g.history = true;
        g.replid2 = NO_ID.into();
        g.second_offset = -1;
        g.offset = offset;
        let size = g.backlog_size;
        g.backlog = Some(Backlog::new(size, offset));
        g.selected = None;
    }

    /// The primary continued the history under a new id (`+CONTINUE
    /// <newid>` after its own promotion or restart): keep the old one as
    /// `replid2`, and disconnect this server's own replicas so that they
    /// reconnect and learn the new id (Redis's `disconnectSlaves`; they
    /// continue with a partial resync).
    pub fn switch_id(&self, new_id: &str) {
        let mut g = self.inner.lock();
        if g.replid != new_id {
            tracing::warn!("Master replication ID changed to {new_id}");
            g.replid2 = std::mem::replace(&mut g.replid, new_id.to_string());
            g.second_offset = g.offset as i64 + 1;
            g.disconnect_replicas();
        }
    }

    /// REPLICAOF NO ONE: this server becomes a primary, keeping its
    /// history under `replid2` so that its former siblings can continue
    /// from it (PSYNC2).
    pub fn promote(&self) {
        self.is_replica.store(false, Relaxed);
        crate::logging::set_replica(false);
        *self.master.lock() = None;
        let mut g = self.inner.lock();
        g.replid2 = std::mem::replace(&mut g.replid, random_id());
        g.second_offset = g.offset as i64 + 1;
        if g.backlog.is_none() {
            let size = g.backlog_size;
            let end = g.offset;
            g.backlog = Some(Backlog::new(size, end));
        }
        g.selected = None;
        self.feeding.store(true, Relaxed);
        g.alone_since_ms = crate::util::now_ms();
    }

    /// Updates the primary link's state (the replica link task).
    pub fn set_link(&self, f: impl FnOnce(&mut Master)) {
        if let Some(m) = self.master.lock().as_mut() {
            f(m);
        }
    }
}
