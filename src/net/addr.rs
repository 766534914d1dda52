//! A client's address: a TCP peer, or the server's Unix socket.
//!
//! Redis names a Unix-socket client after the socket it came in on, not
//! after its (unnamed) peer: `addr=` and `laddr=` are both `<path>:0`
//! (`genClientAddrString`), the bare host is `/unixsocket`
//! (`anetFdToString`), MONITOR shows `unix:<path>`, and such a client is
//! always local (`islocalClient`). [`ClientAddr`] carries those rules, so
//! that CLIENT LIST, CLIENT KILL, protected mode and the `local` options
//! ask it rather than a socket address.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Where a client is connected from (`addr=`) or to (`laddr=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAddr {
    /// A TCP endpoint.
    Tcp(SocketAddr),
    /// The server's Unix socket, by its path (`unixsocket`); shared by all
    /// the clients of that socket.
    Unix(Arc<str>),
}

impl ClientAddr {
    /// The IP address of a TCP endpoint; `None` for the Unix socket.
    #[inline]
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            ClientAddr::Tcp(a) => Some(a.ip()),
            ClientAddr::Unix(_) => None,
        }
    }

    /// True for a Unix-socket client (CLIENT LIST flag `U`).
    #[inline]
    pub fn is_unix(&self) -> bool {
        matches!(self, ClientAddr::Unix(_))
    }

    /// True for a client on this machine, for the `local` value of
    /// `enable-debug-command` and `enable-protected-configs`: a loopback
    /// peer, or any Unix-socket client (Redis's `islocalClient`).
    #[inline]
    pub fn is_local(&self) -> bool {
        match self {
            ClientAddr::Tcp(a) => a.ip().is_loopback(),
            ClientAddr::Unix(_) => true,
        }
    }

    /// The host part alone, as Redis's `connPeerToString` gives it: the IP,
    /// or `/unixsocket` for a Unix-socket client.
    pub fn host(&self) -> String {
        match self {
            ClientAddr::Tcp(a) => a.ip().to_string(),
            ClientAddr::Unix(_) => "/unixsocket".into(),
        }
    }

    /// How MONITOR names the client that ran a command: the address, or
    /// `unix:<path>` for a Unix-socket client (Redis's
    /// `replicationFeedMonitors`).
    pub fn monitor_form(&self) -> MonitorForm<'_> {
        MonitorForm(self)
    }
}

impl fmt::Display for ClientAddr {
    /// `ip:port` (as `SocketAddr` shows it), or `<path>:0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAddr::Tcp(a) => a.fmt(f),
            ClientAddr::Unix(path) => write!(f, "{path}:0"),
        }
    }
}

impl From<SocketAddr> for ClientAddr {
    fn from(a: SocketAddr) -> ClientAddr {
        ClientAddr::Tcp(a)
    }
}

/// [`ClientAddr::monitor_form`].
pub struct MonitorForm<'a>(&'a ClientAddr);

impl fmt::Display for MonitorForm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ClientAddr::Tcp(a) => a.fmt(f),
            ClientAddr::Unix(path) => write!(f, "unix:{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_as_redis_shows_them() {
        let unix = ClientAddr::Unix("/tmp/r.sock".into());
        assert_eq!(unix.to_string(), "/tmp/r.sock:0");
        assert_eq!(unix.host(), "/unixsocket");
        assert_eq!(unix.monitor_form().to_string(), "unix:/tmp/r.sock");
        assert!(unix.is_local() && unix.is_unix() && unix.ip().is_none());
        let tcp = ClientAddr::from(SocketAddr::from(([127, 0, 0, 1], 5000)));
        assert_eq!(tcp.to_string(), "127.0.0.1:5000");
        assert_eq!(tcp.monitor_form().to_string(), "127.0.0.1:5000");
        assert_eq!(tcp.host(), "127.0.0.1");
        assert!(tcp.is_local() && !tcp.is_unix());
        let remote = ClientAddr::from(SocketAddr::from(([10, 0, 0, 1], 5000)));
        assert!(!remote.is_local());
    }
}
