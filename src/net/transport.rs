//! The byte stream under a connection: plain TCP, a Unix socket, or TLS
//! over TCP.
//!
//! The connection loop (`net/connection.rs`) is readiness-based: it waits
//! with `readable()` / `writable()` and then moves bytes with
//! non-blocking `try_read_buf` / `try_write_vectored`. [`Transport`] offers
//! exactly those four calls for every kind of connection, so the loop does
//! not know which one it serves:
//!
//! - `Plain`: each call is the `TcpStream`'s own; the enum match is the
//!   only cost the plain path pays for the other kinds existing. The socket is shared
//!   (`Arc`) with the client's outbox, which writes deferred deliveries to it
//!   straight from the worker (`ClientHandle::write_queued`): the descriptor
//!   is closed only when both have let go of it.
//! - `Unix`: the same as `Plain` over a Unix stream socket (`unixsocket`):
//!   the same calls, and the same share of the socket with the outbox
//!   ([`SharedSocket`]).
//! - `Tls`: rustls is used sans-IO. Reading: `read_tls` pulls ciphertext
//!   from the socket (non-blocking), `process_new_packets` decrypts it (and
//!   queues handshake replies, flushed at once), and `reader()` hands the
//!   plaintext to the caller's buffer. Writing: queued TLS records are
//!   flushed first; only when none is left does `writer()` take more
//!   plaintext, which is encrypted and written at once. A socket that
//!   refuses bytes therefore leaves at most one batch of records in rustls,
//!   and the output-buffer limits keep counting the client's outbox as for
//!   plain connections. [`Transport::send_tls_records`] reports records still
//!   waiting, so the loop keeps waiting for `writable()` until they leave.
//!   Plaintext already decrypted but not yet taken makes `readable()`
//!   return at once.
//!
//! The handshake happens inside these calls on the first reads and writes;
//! a client that fails it (no or a wrong certificate when
//! `tls-auth-clients yes`) gets rustls' alert and is closed.
//! [`server_config`] builds the rustls configuration from `tls-cert-file`,
//! `tls-key-file`, `tls-ca-cert-file` and `tls-auth-clients`.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use bytes::BytesMut;
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

use crate::config::Config;

/// A client connection's byte stream (see the module header).
pub enum Transport {
    /// Plain TCP; the outbox may hold the socket too (see the module header).
    Plain(Arc<TcpStream>),
    /// A Unix stream socket; shared with the outbox as `Plain` is.
    Unix(Arc<UnixStream>),
    /// TLS over TCP (boxed: a rustls connection is large).
    Tls(Box<TlsStream>),
}

/// A TLS connection driven sans-IO over a non-blocking socket.
pub struct TlsStream {
    tcp: TcpStream,
    tls: rustls::ServerConnection,
    /// Decrypted bytes may be left in rustls (the caller's buffer was full):
    /// `readable()` must not wait for the socket.
    plaintext_pending: bool,
}

/// `std::io` over a tokio socket's non-blocking calls, for rustls.
struct SyncIo<'a>(&'a TcpStream);

impl Read for SyncIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for SyncIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A share of a client's socket that bytes may be written to directly,
/// bypassing its [`Transport`] (see `ClientHandle::write_queued`): it keeps
/// the descriptor open while it exists.
#[derive(Debug)]
pub enum SharedSocket {
    /// A plain TCP socket.
    Tcp(Arc<TcpStream>),
    /// A Unix stream socket.
    Unix(Arc<UnixStream>),
}

impl AsRawFd for SharedSocket {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            SharedSocket::Tcp(s) => s.as_raw_fd(),
            SharedSocket::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Transport {
    /// A plain TCP connection on an accepted socket.
    pub fn plain(tcp: TcpStream) -> Transport {
        Transport::Plain(Arc::new(tcp))
    }

    /// A connection on a socket accepted on the Unix socket.
    pub fn unix(stream: UnixStream) -> Transport {
        Transport::Unix(Arc::new(stream))
    }

    /// The socket, when bytes may be written to it directly, bypassing this
    /// transport (plain TCP and Unix sockets; see
    /// `ClientHandle::write_queued`).
    pub fn shared_socket(&self) -> Option<SharedSocket> {
        match self {
            Transport::Plain(s) => Some(SharedSocket::Tcp(s.clone())),
            Transport::Unix(s) => Some(SharedSocket::Unix(s.clone())),
            Transport::Tls(_) => None,
        }
    }

    /// A TLS connection on an accepted socket.
    pub fn tls(tcp: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<Transport> {
        let tls = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Transport::Tls(Box::new(TlsStream {
            tcp,
            tls,
            plaintext_pending: false,
        })))
    }

    /// Waits until reading may make progress.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.readable().await,
            Transport::Unix(s) => s.readable().await,
            Transport::Tls(t) => {
                if t.plaintext_pending {
                    return Ok(());
                }
                t.tcp.readable().await
            }
        }
    }

    /// Waits until the socket takes bytes.
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.writable().await,
            Transport::Unix(s) => s.writable().await,
            Transport::Tls(t) => t.tcp.writable().await,
        }
    }

    /// Reads what is available into `buf` (its spare capacity): `Ok(0)` at
    /// the end of the stream, `WouldBlock` when nothing is available.
    pub fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => read_noting_drained(&**s, buf),
            Transport::Unix(s) => read_noting_drained(&**s, buf),
            Transport::Tls(t) => t.read(buf),
        }
    }

    /// Writes some of `bufs`: how many bytes were taken, or `WouldBlock`.
    pub fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.try_write_vectored(bufs),
            Transport::Unix(s) => s.try_write_vectored(bufs),
            Transport::Tls(t) => t.write(bufs),
        }
    }

    /// True once a TLS handshake has completed (always without TLS).
    pub fn handshake_done(&self) -> bool {
        match self {
            Transport::Plain(_) | Transport::Unix(_) => true,
            Transport::Tls(t) => !t.tls.is_handshaking(),
        }
    }

    /// Writes what the transport itself still holds (TLS records): true
    /// when nothing is left.
    #[inline]
    pub fn send_tls_records(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(_) | Transport::Unix(_) => Ok(true),
            Transport::Tls(t) => t.send_records(),
        }
    }
}

/// The two non-blocking sockets a plain connection may read from.
trait ReadableSocket {
    /// `try_io` for reading: a `WouldBlock` from `f` clears the socket's
    /// read readiness.
    fn try_read_io(&self, f: impl FnOnce() -> io::Result<usize>) -> io::Result<usize>;
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
}

impl ReadableSocket for TcpStream {
    fn try_read_io(&self, f: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
        self.try_io(Interest::READABLE, f)
    }
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        TcpStream::try_read_buf(self, buf)
    }
}

impl ReadableSocket for UnixStream {
    fn try_read_io(&self, f: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
        self.try_io(Interest::READABLE, f)
    }
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        UnixStream::try_read_buf(self, buf)
    }
}

/// Reads into `buf`'s spare capacity; a read that did not fill it leaves
/// the socket marked not readable. The reactor is edge-triggered (epoll),
/// so a short read proves the socket drained: without this the loop's next
/// `readable()` would return at once and the read after it would only say
/// `EAGAIN`, one wasted system call per request on an unpipelined client
/// (tokio's own `AsyncRead` does the same; the readiness is cleared only
/// if no new event arrived since it was observed, so no wake-up is lost).
fn read_noting_drained<S: ReadableSocket>(s: &S, buf: &mut BytesMut) -> io::Result<usize> {
    let room = buf.capacity() - buf.len();
    let mut short = 0;
    let r = s.try_read_io(|| {
        let n = s.try_read_buf(buf)?;
        if n > 0 && n < room {
            short = n;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && short > 0 => Ok(short),
        r => r,
    }
}

impl TlsStream {
    fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.plaintext_pending = false;
        loop {
            // Decrypted bytes first.
            let start = buf.len();
            let room = buf.capacity() - start;
            if room == 0 {
                buf.reserve(16 * 1024);
            }
            let room = buf.capacity() - start;
            buf.resize(start + room, 0);
            let got = self.tls.reader().read(&mut buf[start..]);
            match got {
                Ok(n) => {
                    buf.truncate(start + n);
                    if n == room {
                        self.plaintext_pending = true;
                    }
                    // Ok(0): the peer's close_notify.
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => buf.truncate(start),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    buf.truncate(start);
                    return Ok(0);
                }
                Err(e) => {
                    buf.truncate(start);
                    return Err(e);
                }
            }
            // Then more ciphertext from the socket.
            match self.tls.read_tls(&mut SyncIo(&self.tcp)) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // Send the alert rustls queued (e.g. a bad certificate).
                let _ = self.send_records();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake replies leave now (or when the socket drains).
            self.send_records()?;
        }
    }

    fn write(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if !self.send_records()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.tls.writer().write_vectored(bufs)?;
        self.send_records()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Writes queued TLS records: true when none is left.
    fn send_records(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut SyncIo(&self.tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// Reads the certificates of a PEM file.
fn load_certs(path: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let certs = rustls_pemfile::certs(&mut io::BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path}: no certificate found"));
    }
    Ok(certs)
}

/// The rustls configuration for the `tls-port` listeners, or `None` when
/// `tls-port` is 0. Errors name the option and file at fault.
pub fn server_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    let opt = |name: &str| config.value(name).unwrap_or_default();
    if opt("tls-port") == "0" || opt("tls-port").is_empty() {
        return Ok(None);
    }
    let cert_file = opt("tls-cert-file");
    let key_file = opt("tls-key-file");
    if cert_file.is_empty() || key_file.is_empty() {
        return Err("Failed to configure TLS: tls-cert-file and tls-key-file must be set".into());
    }
    let certs = load_certs(&cert_file)?;
    let key = {
        let file = std::fs::File::open(&key_file).map_err(|e| format!("{key_file}: {e}"))?;
        rustls_pemfile::private_key(&mut io::BufReader::new(file))
            .map_err(|e| format!("{key_file}: {e}"))?
            .ok_or_else(|| format!("{key_file}: no private key found"))?
    };
    let auth = opt("tls-auth-clients");
    let verifier = if auth == "no" {
        rustls::server::WebPkiClientVerifier::no_client_auth()
    } else {
        let ca_file = opt("tls-ca-cert-file");
        if ca_file.is_empty() {
            return Err(
                "Failed to configure TLS: tls-ca-cert-file is needed to authenticate clients (or set tls-auth-clients no)".into(),
            );
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in load_certs(&ca_file)? {
            roots.add(cert).map_err(|e| format!("{ca_file}: {e}"))?;
        }
        let builder = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots));
        let builder = if auth == "optional" {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder.build().map_err(|e| format!("{ca_file}: {e}"))?
    };
    let server = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("{cert_file} / {key_file}: {e}"))?;
    Ok(Some(Arc::new(server)))
}
