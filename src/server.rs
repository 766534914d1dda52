//! Listening sockets, the accept loop, and start / stop of the server.
//!
//! [`run`] is what the `herald` binary calls: it builds the tokio runtime
//! (one worker thread per core unless `io-threads` says otherwise), binds
//! every `bind` address, serves until SIGINT / SIGTERM or SHUTDOWN, then
//! closes every client and returns. [`start`] does the same on a background
//! thread and returns at once with the bound address: tests use it with
//! port 0.
//!
//! With `tls-port` set, the same addresses are also bound on that port and
//! its clients speak TLS (rustls; see `net::transport`), beside the
//! plain port. With `unixsocket` set, clients may also connect on that Unix
//! socket (`net::listener::bind_unix`); its file is removed at shutdown.
//! Clients refused by protected mode get Redis's `-DENIED` text before the
//! socket closes (never Unix-socket clients, which are local).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::command::Client;
use crate::config::Config;
use crate::engine::expire::PERIOD as EXPIRE_PERIOD;
use crate::net::handle::ClientHandle;
use crate::net::listener::{bind_all, bind_tls, bind_unix, TlsListeners, UnixSocket};
use crate::net::transport::Transport;
use crate::net::{ClientAddr, Connection};
use crate::state::Shared;

/// Worker threads to run: `io-threads` if set, else one per core minus one
/// (at least one). The spare core is for the kernel, where pub/sub fan-out
/// spends most of its time (socket writes), and for co-located clients; on
/// the 2-core machines we measure on, a second worker only added run-queue
/// waits (see docs/benchmarks.md).
pub fn worker_threads(config: &Config) -> usize {
    if config.io_threads > 0 {
        return config.io_threads;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// Builds the runtime. One worker is a `current_thread` runtime: a single
/// FIFO run queue, so the subscribers a publish wakes run in order before the
/// publisher reads again, as in Redis's event loop. (tokio's multi-thread
/// scheduler puts the last woken task in a LIFO slot and spills large
/// wake-ups to a global queue it polls rarely, which stretched tail latency
/// for 1000-subscriber fan-outs.)
///
/// A worker about to park (no ready task left) first does what Redis's
/// `beforeSleep` does: with one worker, it writes the deliveries it
/// deferred to the subscribers' sockets (`net::delivery`); then it writes the
/// append-only file's buffer, which the replies of the round wait for
/// (see `persist::aof`).
fn build_runtime(shared: &Arc<Shared>) -> io::Result<tokio::runtime::Runtime> {
    let threads = worker_threads(&shared.config.read());
    let running = &shared.scripting.running;
    if threads == 1 {
        let weak = Arc::downgrade(shared);
        running.serve_while_busy(Box::new(move |caller| {
            if let Some(shared) = weak.upgrade() {
                serve_while_busy(&shared, caller);
            }
        }));
    } else {
        running
            .inline_allowed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let (aof, limits) = (shared.engine.aof.clone(), shared.limits.clone());
    // Only the current_thread runtime may wake tasks from its park hook
    // (see `Aof::before_park`).
    let wake_here = threads == 1;
    let mut b = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads).thread_name("herald-worker");
        b
    };
    b.on_thread_park(move || {
        if wake_here {
            // Deferred deliveries go out now (and the window follows
            // CONFIG SET).
            let window = limits
                .coalesce_us
                .load(std::sync::atomic::Ordering::Relaxed);
            crate::net::delivery::write_all();
            crate::net::delivery::configure(Duration::from_micros(window));
        }
        aof.before_park(wake_here)
    })
    .enable_all()
    .build()
}

/// Runs an accept loop on each plain (non-TLS) listener until shutdown;
/// when CONFIG SET port hands over new listeners ([`Shared::rebind`]),
/// closes the old ones and accepts on the new ones. Connections already
/// accepted stay, as in Redis.
async fn plain_listeners(mut listeners: Vec<std::net::TcpListener>, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    loop {
        let mut loops = Vec::new();
        *shared.accepting.lock() = listeners
            .iter()
            .filter_map(|l| l.try_clone().ok())
            .collect();
        for l in listeners.drain(..) {
            match TcpListener::from_std(l) {
                Ok(l) => loops.push(tokio::spawn(accept_loop(l, shared.clone(), false))),
                Err(e) => tracing::warn!("cannot accept on a new listener: {e}"),
            }
        }
        let stopping = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => true,
            _ = shared.rebound.notified() => false,
        };
        if stopping {
            shared.accepting.lock().clear();
            for t in loops {
                let _ = t.await;
            }
            return;
        }
        // Aborting an accept loop drops, and so closes, its listener.
        for t in &loops {
            t.abort();
        }
        listeners = shared.rebind.lock().take().unwrap_or_default();
    }
}

/// From the hook of a script that runs long on the only worker (see
/// `command::busy`): accepts the connections waiting on the plain TCP
/// listeners, so that they too get `-BUSY` or may send SHUTDOWN NOSAVE,
/// then answers every waiting client.
fn serve_while_busy(shared: &Arc<Shared>, caller: u64) {
    let accepting = shared.accepting.lock();
    for listener in accepting.iter() {
        // Non-blocking (bound so): this ends with WouldBlock once none
        // waits.
        while let Ok((stream, addr)) = listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if let Ok(stream) = TcpStream::from_std(stream) {
                accept_client(stream, addr, shared, None);
            }
        }
    }
    drop(accepting);
    crate::command::busy::serve(shared, caller);
}

/// Accepts connections on `listener` until shutdown.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: bool) {
    let l = &listener;
    accept_until_shutdown(
        &shared,
        move || l.accept(),
        |stream, addr| {
            // TLS: the configuration in force now (CONFIG SET may have loaded
            // new certificates).
            let cfg = if tls { shared.tls.read().clone() } else { None };
            if tls && cfg.is_none() {
                return;
            }
            accept_client(stream, addr, &shared, cfg.as_ref())
        },
    )
    .await
}

/// Accepts connections on the Unix socket until shutdown.
async fn accept_unix_loop(listener: UnixListener, path: Arc<str>, shared: Arc<Shared>) {
    let l = &listener;
    accept_until_shutdown(
        &shared,
        move || l.accept(),
        |stream, _| {
            tracing::debug!("Accepted connection to {path}");
            accept_unix(stream, &path, &shared);
        },
    )
    .await
}

/// The accept loop of every listener: hands each accepted connection to
/// `serve` until shutdown; after an accept error (EMFILE and friends) it
/// backs off instead of spinning.
async fn accept_until_shutdown<S, A, F>(
    shared: &Shared,
    mut accept: impl FnMut() -> F,
    mut serve: impl FnMut(S, A),
) where
    F: std::future::Future<Output = io::Result<(S, A)>>,
{
    let mut shutdown = shared.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            r = accept() => r,
        };
        match accepted {
            Ok((stream, addr)) => serve(stream, addr),
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// A client accepted on a TCP port (TLS when `tls` is set).
fn accept_client(
    stream: TcpStream,
    addr: SocketAddr,
    shared: &Arc<Shared>,
    tls: Option<&Arc<rustls::ServerConfig>>,
) {
    crate::net::listener::prepare(&stream, shared.config.read().tcp_keepalive);
    let laddr = stream.local_addr().unwrap_or(addr);
    // Protected mode. Over TLS the refusal is sent once the
    // handshake is done, as Redis does.
    let protected = shared.config.read().value("protected-mode").as_deref() == Some("yes");
    let denied = crate::acl::protected_mode_denies(&shared.acl, protected, addr.ip());
    let admitted = admit(
        shared,
        |bytes| {
            let _ = stream.try_write(bytes);
        },
        denied && tls.is_none(),
    );
    if !admitted {
        return;
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream) as i64;
    let transport = match tls {
        None => Transport::plain(stream),
        Some(cfg) => match Transport::tls(stream, cfg.clone()) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("TLS connection from {addr} refused: {e}");
                return;
            }
        },
    };
    serve_client(shared, transport, addr.into(), laddr.into(), fd, denied);
}

/// A client accepted on the Unix socket at `path`: Redis names it after the
/// socket (`addr=` and `laddr=` are `<path>:0`), and protected mode does not
/// apply to it.
fn accept_unix(stream: UnixStream, path: &Arc<str>, shared: &Arc<Shared>) {
    let admitted = admit(
        shared,
        |bytes| {
            let _ = stream.try_write(bytes);
        },
        false,
    );
    if !admitted {
        return;
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream) as i64;
    let addr = ClientAddr::Unix(path.clone());
    serve_client(
        shared,
        Transport::unix(stream),
        addr.clone(),
        addr,
        fd,
        false,
    );
}

/// Counts an accepted connection and refuses it past `maxclients`, or when
/// protected mode denies it now (`deny`): `refuse` writes the refusal.
/// True when the client may be served.
fn admit(shared: &Shared, refuse: impl FnOnce(&[u8]), deny: bool) -> bool {
    let net = &shared.stats.net;
    net.total_connections_received.fetch_add(1, Relaxed);
    let maxclients = shared.config.read().maxclients;
    if shared.clients.len() >= maxclients {
        net.rejected_connections.fetch_add(1, Relaxed);
        refuse(b"-ERR max number of clients reached\r\n");
        return false;
    }
    if deny {
        net.rejected_connections.fetch_add(1, Relaxed);
        refuse(crate::acl::PROTECTED_MODE_DENIED.as_bytes());
        return false;
    }
    true
}

/// Registers an admitted client and spawns its connection task. `refuse`:
/// protected mode refuses it once its TLS handshake is done.
fn serve_client(
    shared: &Arc<Shared>,
    transport: Transport,
    addr: ClientAddr,
    laddr: ClientAddr,
    fd: i64,
    refuse: bool,
) {
    let id = shared.clients.next_id();
    let handle = Arc::new(ClientHandle::new(
        id,
        addr,
        laddr,
        fd,
        shared.limits.clone(),
    ));
    shared.clients.insert(handle.clone());
    let session = Client::new(shared.clone(), handle.clone());
    let max_bulk = shared.config.read().proto_max_bulk_len;
    let counters = shared.stats.net.clone();
    let mut conn = Connection::new(transport, session, handle, counters, max_bulk);
    if refuse {
        conn.refuse_after_handshake(crate::acl::PROTECTED_MODE_DENIED.as_bytes());
    }
    tokio::spawn(conn.run());
}

/// Ten times a second, as Redis's clientsCron at the default `hz`:
/// closes clients over the soft output limit for too long even if nothing
/// more is queued for them, frees the read buffers of clients idle for
/// more than 2 s, and closes clients idle for longer than `timeout`
/// seconds. As in Redis, subscribers and clients waiting in a blocking
/// command are exempt from the idle timeout (the former are expected to
/// be quiet, the latter have their own timeout).
async fn clients_cron(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut shutdown = shared.shutdown_signal();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tick.tick() => {}
        }
        let timeout = shared.config.read().timeout;
        for c in shared.clients.all() {
            use crate::net::limits::ClientClass;
            c.recheck_soft_limit();
            // Redis's clientsCronResizeQueryBuffer: an idle client's query
            // buffer is freed.
            if c.idle_secs() > 2 && c.query_buffer_size() > 0 {
                c.ask_trim_read_buffer();
            }
            if timeout != 0
                && c.class() == ClientClass::Normal
                && !c.is_blocked()
                && c.idle_secs() > timeout
            {
                tracing::debug!("closing idle client id={} addr={}", c.id, c.addr);
                c.kill();
            }
        }
    }
}

/// Raises the open-files limit to what `maxclients` needs (plus 32 for the
/// server's own files), as redis-server does; where the system refuses,
/// lowers `maxclients` to fit and says so.
fn adjust_open_files_limit(config: &mut Config) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    const RESERVED: u64 = 32;
    let wanted = config.maxclients as u64 + RESERVED;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= wanted {
        return;
    }
    // Root may raise the hard limit too; others only up to it.
    if setrlimit(Resource::RLIMIT_NOFILE, wanted, hard.max(wanted)).is_err() {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, wanted.min(hard), hard);
    }
    let best = getrlimit(Resource::RLIMIT_NOFILE).map_or(soft, |(now, _)| now);
    if best < wanted {
        let max = best.saturating_sub(RESERVED).max(1) as usize;
        tracing::warn!(
            "You requested maxclients of {} requiring at least {} max file descriptors; the system allows {}, so maxclients is now {}.",
            config.maxclients,
            wanted,
            best,
            max
        );
        config.maxclients = max;
    } else {
        tracing::info!(
            "increased maximum number of open files to {best} (it was originally set to {soft})"
        );
    }
}

/// Runs `duty` every `period` until the server shuts down or is dropped:
/// the shape of the periodic duties Redis runs from `serverCron` (active
/// expiry, rate sampling, the AOF's rewrite checks). Between ticks the task
/// holds only a `Weak`, so a dropped server ends it; a tick that comes late
/// is not made up for.
async fn every(shared: Weak<Shared>, period: Duration, mut duty: impl FnMut(&Arc<Shared>)) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(sh) = shared.upgrade() else { return };
        if sh.is_shutting_down() {
            return;
        }
        duty(&sh);
    }
}

/// Serves on already-bound listeners until shutdown, then waits (bounded)
/// for the connections to close.
async fn serve(
    listeners: Vec<std::net::TcpListener>,
    tls: TlsListeners,
    unix: Option<UnixSocket>,
    shared: Arc<Shared>,
) -> io::Result<()> {
    // The periodic duties of Redis's serverCron.
    let weak = Arc::downgrade(&shared);
    // Active expiry of keys nobody reads (see engine::expire), and the
    // tracking table kept within tracking-table-max-keys (see tracking).
    tokio::spawn(every(weak.clone(), EXPIRE_PERIOD, |sh| {
        let took = sh.engine.expire_cycle();
        sh.observe.latency_sample("expire-cycle", took);
        sh.engine.tracking.limit();
    }));
    // INFO's sampled figures: rates, client buffer memory (see observe).
    tokio::spawn(every(weak.clone(), crate::observe::PERIOD, |sh| {
        let commands = sh.stats.total_commands_processed.load(Relaxed);
        let keyspace = sh.engine.store.used_memory_total();
        sh.observe
            .sample(commands, &sh.stats.net, &sh.clients, keyspace)
    }));
    // The AOF's scheduled and automatic rewrites (see persist).
    tokio::spawn(every(
        weak.clone(),
        Duration::from_secs(1),
        crate::persist::tick,
    ));
    // Replication: PING to the replicas every repl-ping-replica-period
    // seconds, the backlog freed after repl-backlog-ttl without replicas.
    let mut ticks = 0u64;
    tokio::spawn(every(weak, Duration::from_secs(1), move |sh| {
        ticks += 1;
        let (period, ttl) = {
            let cfg = sh.config.read();
            let num = |k: &str| cfg.value(k).and_then(|v| v.parse::<u64>().ok());
            (
                num("repl-ping-replica-period").unwrap_or(10).max(1),
                num("repl-backlog-ttl").unwrap_or(3600),
            )
        };
        let repl = &sh.engine.repl;
        // No PING while a failover waits for a replica to reach the offset.
        let failing_over = repl.failover.lock().state != crate::repl::failover::State::None;
        if ticks.is_multiple_of(period) && !repl.is_replica() && !failing_over {
            repl.feed_ping();
        }
        repl.expire_backlog(ttl);
        sh.refresh_good_replicas();
    }));
    // The link to a primary, while REPLICAOF (or replicaof) names one.
    let primary = shared.config.read().replica_of();
    if let Some((host, port)) = primary {
        shared.engine.repl.become_replica(host.clone(), port);
        let _ = shared.engine.repl.target.send_replace(Some((host, port)));
    }
    tokio::spawn(crate::replica::run(shared.clone()));
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(plain_listeners(listeners, shared.clone())));
    if let Some((tls_listeners, cfg)) = tls {
        *shared.tls.write() = Some(cfg);
        for l in tls_listeners {
            let l = TcpListener::from_std(l)?;
            tasks.push(tokio::spawn(accept_loop(l, shared.clone(), true)));
        }
    }
    let unix_file = match unix {
        Some(UnixSocket {
            listener,
            path,
            file,
        }) => {
            let l = UnixListener::from_std(listener)?;
            tasks.push(tokio::spawn(accept_unix_loop(l, path, shared.clone())));
            Some(file)
        }
        None => None,
    };
    tokio::spawn(clients_cron(shared.clone()));
    // Wakes the clients whose script ended (see scripting::Scripting::wake).
    tokio::spawn(shared.scripting.wake_callers());
    let mut shutdown = shared.shutdown_signal();
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    for c in shared.clients.all() {
        c.kill();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !shared.clients.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Last AOF write and fsync (SIGTERM, SHUTDOWN, tests' shutdown).
    crate::persist::close(shared.as_ref());
    // Then, as Redis's finishShutdown, the listeners' files: the Unix
    // socket's (its listener closed when its accept loop ended).
    if let Some(file) = unix_file {
        crate::net::listener::remove_unix_socket(&file);
    }
    Ok(())
}

/// A server ready to serve: its addresses bound, its state built (users
/// loaded, the append-only file replayed), its runtime made. [`run`] and
/// [`start`] both begin here.
struct Booted {
    listeners: Vec<std::net::TcpListener>,
    tls: TlsListeners,
    unix: Option<UnixSocket>,
    shared: Arc<Shared>,
    rt: tokio::runtime::Runtime,
}

impl Booted {
    /// The boot sequence: bind (so that a port conflict fails first), build
    /// the state and the runtime, load the users of the config file and the
    /// ACL file, then load (or create) the append-only file, or `dump.rdb`
    /// when the AOF is off, before anyone is served.
    fn new(config: Config) -> io::Result<Booted> {
        let listeners = bind_all(&config)?;
        let tls = bind_tls(&config)?;
        let unix = bind_unix(&config)?;
        let shared = Shared::new(config);
        let rt = build_runtime(&shared)?;
        let (users, aclfile) = {
            let cfg = shared.config.read();
            (cfg.user_lines().to_vec(), cfg.acl_file())
        };
        crate::acl::file::load_at_startup(&shared.acl, &users, aclfile)
            .map_err(io::Error::other)?;
        let mut replay = crate::command::replay::Replayer::new(shared.clone());
        crate::persist::open(&shared, &mut replay).map_err(io::Error::other)?;
        {
            let replica = shared.config.read().replica_of().is_some();
            let mut loader = crate::command::replay::KeyLoader::new(shared.clone(), false);
            let point =
                crate::persist::save::load_at_startup(shared.as_ref(), &mut loader, replica)
                    .map_err(io::Error::other)?;
            drop(loader);
            shared.engine.repl.restore(point, replica);
        }
        if let Some(p) = listeners.first().and_then(|l| l.local_addr().ok()) {
            shared.port.store(p.port(), Relaxed);
        }
        Ok(Booted {
            listeners,
            tls,
            unix,
            shared,
            rt,
        })
    }

    /// Every bound address, plain then TLS.
    fn addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .chain(self.tls.iter().flat_map(|(l, _)| l.iter()))
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves on the calling thread until shutdown, after running `first`
    /// on the runtime; then stops the runtime (bounded).
    fn serve_until_shutdown(self, first: impl std::future::Future<Output = ()>) -> io::Result<()> {
        let Booted {
            listeners,
            tls,
            unix,
            shared,
            rt,
        } = self;
        let served = rt.block_on(async {
            first.await;
            serve(listeners, tls, unix, shared).await
        });
        rt.shutdown_timeout(Duration::from_secs(1));
        served
    }
}

/// Runs the server in the foreground until SIGINT, SIGTERM or SHUTDOWN.
pub fn run(mut config: Config) -> io::Result<()> {
    adjust_open_files_limit(&mut config);
    let booted = Booted::new(config)?;
    let addrs: Vec<String> = booted.addrs().iter().map(|a| a.to_string()).collect();
    let shared = booted.shared.clone();
    let unix_path = booted.unix.as_ref().map(|u| u.path.clone());
    log_banner(&shared, &addrs);
    booted.serve_until_shutdown(async move {
        tokio::spawn(async move {
            loop {
                let option = wait_for_signal().await;
                let name = if option == "shutdown-on-sigint" {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                tracing::warn!("Received {name} scheduling shutdown...");
                let (how, now) = signal_shutdown_save(&shared, option);
                let sh = shared.clone();
                let begun = tokio::task::spawn_blocking(move || {
                    crate::command::shutdown::begin(&sh, how, now)
                })
                .await;
                // Exiting, waiting for the replicas first (the wait exits
                // unless SHUTDOWN ABORT cancels it), or refused (logged):
                // the next signal tries again.
                if begun.is_err() {
                    tracing::warn!("Errors trying to shut down the server.");
                }
            }
        });
        tracing::info!("Ready to accept connections");
        if let Some(path) = unix_path {
            tracing::info!("The server is now ready to accept connections at {path}");
        }
    })?;
    tracing::info!("herald is now ready to exit, bye bye...");
    Ok(())
}

/// What redis-server logs once listening: its logo with the port and the
/// process id when `always-show-logo` is yes or the log is a terminal (as
/// Redis; tools such as Redis's test suite find the PID there), else one
/// line.
fn log_banner(shared: &crate::state::Shared, addrs: &[String]) {
    let config = shared.config.read();
    let port = addrs
        .first()
        .and_then(|a| a.rsplit(':').next())
        .unwrap_or("0");
    let to_terminal =
        config.logfile.is_empty() && std::io::IsTerminal::is_terminal(&std::io::stdout());
    if config.value("always-show-logo").as_deref() == Some("yes") || to_terminal {
        tracing::info!(
            "\n    herald {} (Redis 7.0 compatible) 64 bit\n    Running mode: standalone\n    Listening on: {}\n    Port: {port}\n    PID: {}\n",
            env!("CARGO_PKG_VERSION"),
            addrs.join(", "),
            std::process::id()
        );
    } else {
        tracing::info!("Running mode=standalone, port={port}.");
    }
}

/// Waits for SIGINT or SIGTERM; the option that says what a shutdown on
/// it does (`shutdown-on-sigint` / `shutdown-on-sigterm`).
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => "shutdown-on-sigint",
                _ = t.recv() => "shutdown-on-sigterm",
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "shutdown-on-sigint"
        }
    }
}

/// The RDB save a signal's shutdown makes, and whether it skips waiting
/// for the replicas, from its option's flags (`default`, or any of `save`,
/// `nosave`, `now`, `force`).
fn signal_shutdown_save(
    shared: &Shared,
    option: &str,
) -> (crate::persist::save::ShutdownSave, bool) {
    let flags = shared.config.read().value(option).unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    let how = crate::persist::save::ShutdownSave {
        save: has("save"),
        nosave: has("nosave"),
        force: has("force"),
    };
    (how, has("now"))
}

/// A server running on a background thread (see [`start`]).
pub struct ServerHandle {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The first bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The first TLS address (`tls-port`), if TLS is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The server's shared state (tests inspect it).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a server on a background thread and returns once it is listening.
/// With `port: 0` it picks a free port; [`ServerHandle::addr`] tells which.
pub fn start(config: Config) -> io::Result<ServerHandle> {
    let booted = Booted::new(config)?;
    let addr = booted.listeners[0].local_addr()?;
    let tls_addr = match &booted.tls {
        Some((l, _)) => l.first().map(|l| l.local_addr()).transpose()?,
        None => None,
    };
    let shared = booted.shared.clone();
    let thread = std::thread::Builder::new()
        .name("herald-server".into())
        .spawn(move || {
            if let Err(e) = booted.serve_until_shutdown(async {}) {
                tracing::error!("server stopped: {e}");
            }
        })?;
    Ok(ServerHandle {
        addr,
        tls_addr,
        shared,
        thread: Some(thread),
    })
}
