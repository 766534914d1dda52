//! Listening sockets: binding the configured addresses (plain and TLS
//! ports) and the Unix socket (`unixsocket`), and preparing each accepted
//! socket as redis-server does.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;

use crate::config::Config;

/// Binds the configured addresses. A `-` before an address (as in Redis's
/// default `bind 127.0.0.1 -::1`) means: skip it if it cannot be bound.
/// With port 0, the first address picks a free port and the others use it.
pub fn bind_all(config: &Config) -> io::Result<Vec<std::net::TcpListener>> {
    bind_port(config, config.port)
}

/// TLS listeners: `tls-port` on every `bind` address, with their rustls
/// configuration; `None` when `tls-port` is 0.
pub type TlsListeners = Option<(Vec<std::net::TcpListener>, Arc<rustls::ServerConfig>)>;

/// Binds `tls-port` if set (see [`TlsListeners`]).
pub fn bind_tls(config: &Config) -> io::Result<TlsListeners> {
    let Some(tls) = super::transport::server_config(config).map_err(io::Error::other)? else {
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

/// The listening Unix socket (`unixsocket`) and its path.
pub struct UnixSocket {
    /// The bound, listening socket (non-blocking).
    pub listener: std::os::unix::net::UnixListener,
    /// Its path, as configured; shown in clients' addresses and the log.
    pub path: Arc<str>,
    /// Where its file is: a relative `path` is taken in `dir`, where Redis
    /// has changed directory by the time it binds.
    pub file: std::path::PathBuf,
}

/// Binds `unixsocket` if set, as Redis's `initServer` and `anetUnixServer`
/// do: whatever file is at the path is removed first (a stale socket of an
/// earlier run), the socket listens with `tcp-backlog`, and its file takes
/// the permissions of `unixsocketperm` unless that is 0. A relative path
/// is taken in `dir` (see [`UnixSocket::file`]). Errors carry
/// Redis's text ("Failed opening Unix socket: bind: ...").
pub fn bind_unix(config: &Config) -> io::Result<Option<UnixSocket>> {
    let path = config.value("unixsocket").unwrap_or_default();
    if path.is_empty() {
        return Ok(None);
    }
    let perm = config
        .value("unixsocketperm")
        .and_then(|p| u32::from_str_radix(&p, 8).ok())
        .unwrap_or(0);
    let failed = |what: String| io::Error::other(format!("Failed opening Unix socket: {what}"));
    // sizeof(sockaddr_un.sun_path) on Linux, terminating NUL included.
    const SUN_PATH: usize = 108;
    if path.len() > SUN_PATH - 1 {
        return Err(failed(format!(
            "unix socket path too long ({}), must be under {SUN_PATH}",
            path.len()
        )));
    }
    let file = config.dir.join(&path);
    // Redis does not care whether this fails (nothing there).
    let _ = std::fs::remove_file(&file);
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)
        .map_err(|e| failed(format!("creating socket: {}", strerror(&e))))?;
    let addr =
        socket2::SockAddr::unix(&file).map_err(|e| failed(format!("bind: {}", strerror(&e))))?;
    socket
        .bind(&addr)
        .map_err(|e| failed(format!("bind: {}", strerror(&e))))?;
    socket
        .listen(config.tcp_backlog.min(i32::MAX as u32) as i32)
        .map_err(|e| failed(format!("listen: {}", strerror(&e))))?;
    if perm != 0 {
        // As Redis, a chmod that fails is not an error.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(perm));
    }
    socket.set_nonblocking(true)?;
    Ok(Some(UnixSocket {
        listener: socket.into(),
        path: path.into(),
        file,
    }))
}

/// Removes the Unix socket's file at shutdown, with Redis's log lines
/// (`closeListeningSockets`).
pub fn remove_unix_socket(file: &std::path::Path) {
    tracing::info!("Removing the unix socket file.");
    if let Err(e) = std::fs::remove_file(file) {
        tracing::warn!("Error removing the unix socket file: {}", strerror(&e));
    }
}

/// C's `strerror` text for an I/O error (without Rust's " (os error N)").
fn strerror(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// Sets up an accepted socket: no Nagle delay (replies and messages leave
/// at once), and TCP keepalive probes when `tcp-keepalive` is set.
pub fn prepare(stream: &TcpStream, keepalive_secs: u64) {
    let _ = stream.set_nodelay(true);
    if keepalive_secs > 0 {
        // As Redis's anetKeepAlive: probe after `keepalive` idle seconds,
        // then every third of it, give up after 3 unanswered probes.
        let ka = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(keepalive_secs))
            .with_interval(Duration::from_secs((keepalive_secs / 3).max(1)))
            .with_retries(3);
        let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&ka);
    }
}
