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
//! its clients speak TLS (rustls; see `connection::transport`), beside the
//! plain port. Clients refused by protected mode (issue 8) get Redis's
//! `-DENIED` text before the socket closes.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

use crate::config::Config;
use crate::connection::handle::ClientHandle;
use crate::connection::Connection;
use crate::state::Shared;

/// Binds the configured addresses. A `-` before an address (as in Redis's
/// default `bind 127.0.0.1 -::1`) means: skip it if it cannot be bound.
/// With port 0, the first address picks a free port and the others use it.
fn bind_all(config: &Config) -> io::Result<Vec<std::net::TcpListener>> {
    bind_port(config, config.port)
}

/// TLS listeners: `tls-port` on every `bind` address, with their rustls
/// configuration (issue 8); `None` when `tls-port` is 0.
type TlsListeners = Option<(Vec<std::net::TcpListener>, Arc<rustls::ServerConfig>)>;

/// Binds `tls-port` if set (see [`TlsListeners`]).
fn bind_tls(config: &Config) -> io::Result<TlsListeners> {
    let Some(tls) =
        crate::connection::transport::server_config(config).map_err(io::Error::other)?
    else {
        return Ok(None);
    };
    let port: u16 = config
        .value("tls-port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    Ok(Some((bind_port(config, port)?, tls)))
}

/// Binds the configured addresses on `port` (see [`bind_all`]).
fn bind_port(config: &Config, port: u16) -> io::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::new();
    let mut port = port;
    let binds: Vec<String> = if config.bind.is_empty() {
        vec!["*".into(), "-::*".into()]
    } else {
        config.bind.clone()
    };
    for b in &binds {
        let (optional, host) = match b.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, b.as_str()),
        };
        let host = match host {
            "*" => "0.0.0.0",
            "::*" => "::",
            h => h,
        };
        let addr: SocketAddr = match format!("{host}:{port}").parse() {
            Ok(a) => a,
            Err(_) => match format!("[{host}]:{port}").parse() {
                Ok(a) => a,
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("invalid bind address '{b}'"),
                    ))
                }
            },
        };
        let bound = (|| -> io::Result<std::net::TcpListener> {
            let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            s.set_reuse_address(true)?;
            if addr.is_ipv6() {
                s.set_only_v6(true)?;
            }
            s.bind(&addr.into())?;
            s.listen(config.tcp_backlog.min(i32::MAX as u32) as i32)?;
            s.set_nonblocking(true)?;
            Ok(s.into())
        })();
        match bound {
            Ok(l) => {
                if port == 0 {
                    port = l.local_addr()?.port();
                }
                listeners.push(l);
            }
            Err(_) if optional => {
                tracing::warn!("could not bind optional address {addr}, skipping");
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("could not bind {addr}: {e}"),
                ))
            }
        }
    }
    if listeners.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no address could be bound",
        ));
    }
    Ok(listeners)
}

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
/// `beforeSleep` does: with one worker, it writes the deliveries it held
/// to the subscribers' sockets (`connection::hold`); then it writes the
/// append-only file's buffer, which the replies of the round wait for
/// (see `persist::aof`).
fn build_runtime(shared: &Shared) -> io::Result<tokio::runtime::Runtime> {
    let threads = worker_threads(&shared.config.read());
    let (aof, limits) = (shared.aof.clone(), shared.limits.clone());
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
            // Held deliveries go out now (and the window follows CONFIG SET).
            let window = limits
                .coalesce_us
                .load(std::sync::atomic::Ordering::Relaxed);
            crate::connection::hold::flush();
            crate::connection::hold::configure(Duration::from_micros(window));
        }
        aof.before_park(wake_here)
    })
    .enable_all()
    .build()
}

/// Accepts connections on `listener` until shutdown.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: bool) {
    let mut shutdown = shared.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, addr)) => {
                // TLS: the configuration in force now (CONFIG SET may
                // have loaded new certificates).
                let cfg = if tls { shared.tls.read().clone() } else { None };
                if tls && cfg.is_none() {
                    continue;
                }
                accept_client(stream, addr, &shared, cfg.as_ref())
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn accept_client(
    stream: TcpStream,
    addr: SocketAddr,
    shared: &Arc<Shared>,
    tls: Option<&Arc<rustls::ServerConfig>>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let _ = stream.set_nodelay(true);
    let keepalive = shared.config.read().tcp_keepalive;
    if keepalive > 0 {
        // As Redis's anetKeepAlive: probe after `keepalive` idle seconds,
        // then every third of it, give up after 3 unanswered probes.
        let ka = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(keepalive))
            .with_interval(Duration::from_secs((keepalive / 3).max(1)))
            .with_retries(3);
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
    }
    let laddr = stream.local_addr().unwrap_or(addr);
    shared
        .stats
        .total_connections_received
        .fetch_add(1, Relaxed);
    let maxclients = shared.config.read().maxclients;
    if shared.clients.len() >= maxclients {
        shared.stats.rejected_connections.fetch_add(1, Relaxed);
        let _ = stream.try_write(b"-ERR max number of clients reached\r\n");
        return;
    }
    // Protected mode (issue 8). Over TLS the refusal is sent once the
    // handshake is done, as Redis does.
    let denied = crate::acl::protected_mode_denies(shared, addr.ip());
    if denied && tls.is_none() {
        shared.stats.rejected_connections.fetch_add(1, Relaxed);
        let _ = stream.try_write(crate::acl::PROTECTED_MODE_DENIED.as_bytes());
        return;
    }
    let id = shared.clients.next_id();
    let fd = stream.as_raw_fd() as i64;
    let handle = Arc::new(ClientHandle::new(
        id,
        addr,
        laddr,
        fd,
        shared.limits.clone(),
    ));
    let transport = match tls {
        None => crate::connection::transport::Transport::Plain(stream),
        Some(cfg) => match crate::connection::transport::Transport::tls(stream, cfg.clone()) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("TLS connection from {addr} refused: {e}");
                return;
            }
        },
    };
    shared.clients.insert(handle.clone());
    let mut conn = Connection::with_transport(transport, shared.clone(), handle);
    if denied {
        conn.deny_after_handshake();
    }
    tokio::spawn(conn.run());
}

/// Once a second: closes clients idle for longer than `timeout` seconds.
/// As in Redis, subscribers and clients waiting in a blocking command are
/// exempt (the former are expected to be quiet, the latter have their own
/// timeout).
async fn clients_cron(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut shutdown = shared.shutdown_signal();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tick.tick() => {}
        }
        let timeout = shared.config.read().timeout;
        if timeout == 0 {
            continue;
        }
        for c in shared.clients.all() {
            use crate::connection::limits::ClientClass;
            if c.class() == ClientClass::Normal && !c.is_blocked() && c.idle_secs() > timeout {
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

/// Serves on already-bound listeners until shutdown, then waits (bounded)
/// for the connections to close.
async fn serve(
    listeners: Vec<std::net::TcpListener>,
    tls: TlsListeners,
    shared: Arc<Shared>,
) -> io::Result<()> {
    // Active expiry of keys nobody reads (see store::expire).
    tokio::spawn(crate::store::expire::run(Arc::downgrade(&shared)));
    // INFO's sampled figures: rates, client buffer memory (see observe).
    tokio::spawn(crate::observe::cron(Arc::downgrade(&shared)));
    let mut tasks = Vec::new();
    for l in listeners {
        let l = TcpListener::from_std(l)?;
        tasks.push(tokio::spawn(accept_loop(l, shared.clone(), false)));
    }
    if let Some((tls_listeners, cfg)) = tls {
        *shared.tls.write() = Some(cfg);
        for l in tls_listeners {
            let l = TcpListener::from_std(l)?;
            tasks.push(tokio::spawn(accept_loop(l, shared.clone(), true)));
        }
    }
    tokio::spawn(clients_cron(shared.clone()));
    // Automatic AOF rewrite (see persist).
    tokio::spawn(crate::persist::cron(Arc::downgrade(&shared)));
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
    crate::persist::close(&shared);
    Ok(())
}

/// Runs the server in the foreground until SIGINT, SIGTERM or SHUTDOWN.
pub fn run(mut config: Config) -> io::Result<()> {
    adjust_open_files_limit(&mut config);
    let listeners = bind_all(&config)?;
    let tls = bind_tls(&config)?;
    let shared = Shared::new(config);
    let rt = build_runtime(&shared)?;
    let addrs: Vec<String> = listeners
        .iter()
        .chain(tls.iter().flat_map(|(l, _)| l.iter()))
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    // Users from the config file and the ACL file (issue 8).
    crate::acl::load_at_startup(&shared).map_err(io::Error::other)?;
    // Load (or create) the append-only file before serving anyone.
    crate::persist::open(&shared).map_err(io::Error::other)?;
    if let Some(p) = listeners.first().and_then(|l| l.local_addr().ok()) {
        shared
            .port
            .store(p.port(), std::sync::atomic::Ordering::Relaxed);
    }
    rt.block_on(async {
        let sig = shared.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("received shutdown signal, closing clients");
            sig.shutdown();
        });
        tracing::info!("herald ready to accept connections on {}", addrs.join(", "));
        serve(listeners, tls, shared.clone()).await
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    tracing::info!("herald is now ready to exit, bye bye...");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => {}
                _ = t.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
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
    let listeners = bind_all(&config)?;
    let addr = listeners[0].local_addr()?;
    let tls = bind_tls(&config)?;
    let tls_addr = match &tls {
        Some((l, _)) => l.first().map(|l| l.local_addr()).transpose()?,
        None => None,
    };
    let shared = Shared::new(config);
    let rt = build_runtime(&shared)?;
    // Users from the config file and the ACL file (issue 8).
    crate::acl::load_at_startup(&shared).map_err(io::Error::other)?;
    crate::persist::open(&shared).map_err(io::Error::other)?;
    shared
        .port
        .store(addr.port(), std::sync::atomic::Ordering::Relaxed);
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name("herald-server".into())
        .spawn(move || {
            if let Err(e) = rt.block_on(serve(listeners, tls, s)) {
                tracing::error!("server stopped: {e}");
            }
            rt.shutdown_timeout(Duration::from_secs(1));
        })?;
    Ok(ServerHandle {
        addr,
        tls_addr,
        shared,
        thread: Some(thread),
    })
}
