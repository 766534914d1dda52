//! Server-wide state shared by every connection task.
//!
//! One [`Shared`] lives behind an `Arc`; each connection holds a clone.
//! Nothing in it is a global lock: the pub/sub registries lock per shard,
//! the client list is touched only on connect, disconnect and CLIENT
//! LIST / KILL, statistics are atomics, and the configuration is read
//! behind a read-mostly lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use bytes::Bytes;

use crate::config::Config;
use crate::engine::Engine;
use crate::net::limits::Limits;
use crate::net::{Clients, Counters};

/// Counters shown by INFO stats (reset by CONFIG RESETSTAT where Redis does).
#[derive(Debug, Default)]
pub struct Stats {
    pub total_commands_processed: AtomicU64,
    pub total_error_replies: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    /// Connections and traffic, counted by the network layer.
    pub net: Arc<Counters>,
    /// Error replies per error code (INFO errorstats), at most
    /// [`ERROR_CODES`] codes.
    pub errors: parking_lot::Mutex<std::collections::BTreeMap<Bytes, u64>>,
}

/// Distinct error codes INFO errorstats keeps (Redis 7.2's
/// `ERROR_STATS_NUMBER`): replies of further codes count in
/// `total_error_replies` only, so that clients cannot grow the table
/// without bound with made-up codes (scripts' `redis.error_reply`).
pub const ERROR_CODES: usize = 128;

impl Stats {
    /// Counts an error reply (`msg` starts with its code: `ERR ...`,
    /// `WRONGTYPE ...`) as Redis's `afterErrorReply` does: the code is the
    /// first word when a space comes within 32 bytes, else `ERR`.
    pub fn count_error(&self, msg: &[u8]) {
        let head = &msg[..msg.len().min(32)];
        let code = match memchr::memchr(b' ', head) {
            Some(at) if at > 0 => &msg[..at],
            _ => b"ERR".as_slice(),
        };
        self.count_code(code);
    }

    /// [`count_error`](Self::count_error) for the texts Redis passes
    /// to `afterErrorReply` itself: a code only after a leading `-`.
    pub fn count_error_text(&self, text: &[u8]) {
        match text.strip_prefix(b"-") {
            Some(msg) => self.count_error(msg),
            None => self.count_code(b"ERR"),
        }
    }

    fn count_code(&self, code: &[u8]) {
        self.total_error_replies.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock();
        if let Some(n) = errors.get_mut(code) {
            *n += 1;
        } else if errors.len() < ERROR_CODES {
            errors.insert(Bytes::copy_from_slice(code), 1);
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in [
            &self.total_commands_processed,
            &self.total_error_replies,
            &self.unexpected_error_replies,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.errors.lock().clear();
        self.net.reset();
    }
}

/// Everything the connections share.
pub struct Shared {
    /// The names commands answer to (`rename-command`), fixed at start-up
    /// and read by the dispatcher for every command, so kept out of the
    /// configuration's lock.
    pub command_names: crate::config::rename::CommandNames,
    /// Current configuration (CONFIG SET changes it; call
    /// [`Shared::config_changed`] after).
    pub config: RwLock<Config>,
    /// Buffer limits derived from the configuration, read on hot paths.
    pub limits: Arc<Limits>,
    /// The keyspace, pub/sub, and where changes go (see `engine`).
    pub engine: Engine,
    /// Connected clients (shared with tracking, which looks up redirect
    /// targets).
    pub clients: Arc<Clients>,
    /// INFO stats counters.
    pub stats: Stats,
    /// Process start, for uptime.
    pub started: Instant,
    /// Random 40-hex-digit run id (INFO server `run_id`).
    pub run_id: String,
    /// The port actually bound (INFO `tcp_port`, useful with port 0).
    pub port: std::sync::atomic::AtomicU16,
    /// AOF layout and rewrite status, RDB save status (see `persist`).
    pub persist: Mutex<crate::persist::State>,
    /// The last background RDB save failed (read by every write command
    /// for Redis's MISCONF refusal, hence outside `persist`'s lock).
    pub rdb_failed: std::sync::atomic::AtomicBool,
    /// Users, ACL rules, ACL LOG (see `acl`).
    pub acl: crate::acl::Acl,
    /// The TLS configuration new `tls-port` connections get (replaced when
    /// CONFIG SET changes a certificate or `tls-auth-clients`).
    pub tls: RwLock<Option<Arc<rustls::ServerConfig>>>,
    /// Listeners CONFIG SET port bound, waiting for the server to accept
    /// on them instead of the old ones (which it then closes).
    pub rebind: parking_lot::Mutex<Option<Vec<std::net::TcpListener>>>,
    /// Signalled when [`rebind`](Self::rebind) holds new listeners.
    pub rebound: tokio::sync::Notify,
    /// Second handles (`dup`) of the plain TCP listeners the server
    /// accepts on now: a script that holds the only worker long accepts on
    /// them (see `server::serve_while_busy`).
    pub accepting: parking_lot::Mutex<Vec<std::net::TcpListener>>,
    /// Slow log, latency monitor, MONITOR, CLIENT PAUSE, sampled INFO
    /// figures (see `observe`).
    pub observe: crate::observe::Observe,
    /// The Lua states, the script cache, the running script (see
    /// `scripting`).
    pub scripting: crate::scripting::Scripting,
    /// Flipped to true to stop the server.
    shutdown_tx: watch::Sender<bool>,
    /// `min-replicas-to-write` asks for more good replicas than are
    /// connected (see [`Shared::replicas_short`]).
    replicas_short: std::sync::atomic::AtomicBool,
}

/// Redis's `checkGoodReplicasStatus`: writes are refused while
/// `min-replicas-to-write` (with a non-zero `min-replicas-max-lag`)
/// exceeds the replicas online whose last acknowledgement is at most
/// `min-replicas-max-lag` seconds old.
fn replicas_short(cfg: &Config, repl: &crate::repl::Repl) -> bool {
    let number = |name: &str| {
        cfg.value(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (wanted, max_lag) = (
        number("min-replicas-to-write"),
        number("min-replicas-max-lag"),
    );
    if wanted == 0 || max_lag == 0 || repl.is_replica() {
        return false;
    }
    let now = crate::util::now_ms();
    let good = repl
        .replicas()
        .iter()
        .filter(|r| {
            r.online.load(Ordering::Relaxed)
                && now.saturating_sub(r.ack_ms.load(Ordering::Relaxed)) / 1000 <= max_lag
        })
        .count() as u64;
    good < wanted
}

impl Shared {
    /// Fresh state for `config`.
    pub fn new(config: Config) -> Arc<Shared> {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        let run_id: String = (0..40)
            .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
            .collect();
        let port = config.port;
        let limits = Arc::new(Limits::from_config(&config));
        let acl = crate::acl::Acl::new(&config.requirepass, acl_pubsub_all(&config));
        let observe = crate::observe::Observe::default();
        observe.configure(&config);
        let engine = Engine::new(&config);
        let clients = engine.tracking.clients().clone();
        let scripting = crate::scripting::Scripting::new(engine.gate.clone());
        scripting.configure(&config);
        let short = replicas_short(&config, &engine.repl);
        Arc::new(Shared {
            replicas_short: std::sync::atomic::AtomicBool::new(short),
            command_names: config.command_names.clone(),
            config: RwLock::new(config),
            limits,
            engine,
            clients,
            stats: Stats::default(),
            started: Instant::now(),
            run_id,
            port: std::sync::atomic::AtomicU16::new(port),
            persist: Mutex::default(),
            rdb_failed: std::sync::atomic::AtomicBool::new(false),
            acl,
            tls: RwLock::new(None),
            rebind: parking_lot::Mutex::new(None),
            rebound: tokio::sync::Notify::new(),
            accepting: parking_lot::Mutex::new(Vec::new()),
            observe,
            scripting,
            shutdown_tx: watch::channel(false).0,
        })
    }

    /// Refreshes what is derived from the configuration (after CONFIG SET).
    pub fn config_changed(&self) {
        let cfg = self.config.read();
        self.limits.update(&cfg);
        self.engine.configure(&cfg);
        self.acl.configure(&cfg.requirepass, acl_pubsub_all(&cfg));
        self.observe.configure(&cfg);
        self.scripting.configure(&cfg);
        self.replicas_short
            .store(replicas_short(&cfg, &self.engine.repl), Ordering::Relaxed);
    }

    /// Recounts the good replicas for `min-replicas-to-write` (every
    /// second, as Redis's replication cron, and when replicas come and go).
    pub fn refresh_good_replicas(&self) {
        let short = replicas_short(&self.config.read(), &self.engine.repl);
        self.replicas_short.store(short, Ordering::Relaxed);
    }

    /// Writes are refused with `-NOREPLICAS` (see [`replicas_short`]).
    #[inline]
    pub fn replicas_short(&self) -> bool {
        self.replicas_short.load(Ordering::Relaxed)
    }

    /// What clients hold: a fixed overhead per connected client plus their
    /// buffers as last sampled (see `observe`).
    #[inline]
    pub fn clients_memory(&self) -> usize {
        self.clients.count() * crate::observe::CLIENT_OVERHEAD + self.observe.clients_buffers()
    }

    /// A receiver that changes when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }

    /// Begins shutdown: listeners stop accepting, connections close.
    pub fn shutdown(&self) {
        self.shutdown_tx.send_replace(true);
    }

    /// True once shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown_tx.borrow()
    }
}

/// `acl-pubsub-default allchannels`: new users may use every channel.
fn acl_pubsub_all(cfg: &Config) -> bool {
    cfg.value("acl-pubsub-default").as_deref() == Some("allchannels")
}

impl crate::persist::Host for Shared {
    fn config(&self) -> parking_lot::RwLockReadGuard<'_, Config> {
        self.config.read()
    }

    fn store(&self) -> &crate::store::Store {
        &self.engine.store
    }

    fn aof(&self) -> &Arc<crate::persist::aof::Aof> {
        &self.engine.aof
    }

    fn state(&self) -> &Mutex<crate::persist::State> {
        &self.persist
    }

    fn function_libraries(&self) -> Vec<bytes::Bytes> {
        self.scripting.libraries()
    }

    fn rdb_failed(&self) -> &std::sync::atomic::AtomicBool {
        &self.rdb_failed
    }

    fn repl_point(&self) -> Option<(String, i64, usize)> {
        self.engine.repl.save_point()
    }
}
