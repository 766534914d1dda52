//! One client connection: read requests, hand them to the client's
//! [`Session`], write what its outbox holds.
//!
//! Each accepted socket gets one tokio task running [`Connection::run`]. The
//! task alone reads from its socket; everything bound for the client (its
//! replies, and messages pushed by publishers on other tasks) goes through
//! its [`ClientHandle`] outbox, which the task writes out (published
//! messages deferred while the worker was busy are written by the worker
//! itself: see [`super::delivery`]). The loop:
//!
//! 1. wait until the replies of the last batch may leave (their effects
//!    are durable), then write whatever is queued, with vectored writes,
//!    until done or the socket is full;
//! 2. while the session is suspended (blocked on keys, postponed by CLIENT
//!    PAUSE), wait for it to resume, still reading (only to notice a
//!    disconnect) and writing;
//! 3. otherwise wait for the socket to be readable, for the outbox to be
//!    fed (or CLIENT KILL, which is also how shutdown arrives), or for the
//!    socket to drain;
//! 4. on readable, read once and run every complete request in the buffer
//!    (a pipeline): replies of the batch are gathered by the session and
//!    queued with a single outbox push, so they leave in as few writes as
//!    possible.
//!
//! The socket is a [`Transport`]: plain TCP, a Unix socket, or TLS driven
//! sans-IO behind the same four readiness calls, so this loop is the same
//! for all of them.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::handle::{self, ClientHandle, MAX_IOV};
use super::transport::Transport;
use super::{delivery, Counters, Session};
use crate::protocol::RequestParser;

/// Read buffer size for a connection that is receiving data.
const READ_CHUNK: usize = 16 * 1024;
/// A kept read buffer larger than this is cut back to its recent peak
/// (Redis's `PROTO_RESIZE_THRESHOLD`).
const RESIZE_THRESHOLD: usize = 32 * 1024;
/// While suspended, stop reading once this much is buffered (requests are
/// not run until the session resumes).
const SUSPENDED_READ_LIMIT: usize = 1024 * 1024;

/// A client connection being served.
pub struct Connection<S: Session> {
    /// Plain TCP or TLS.
    stream: Transport,
    /// What requests mean to this client.
    session: S,
    /// The client's outbox (the session holds it too).
    handle: Arc<ClientHandle>,
    /// Server-wide traffic counters.
    counters: Arc<Counters>,
    parser: RequestParser,
    rbuf: BytesMut,
    /// The most bytes the read buffer held at a batch's start since the
    /// buffer was last sized.
    qbuf_peak: usize,
    /// Chunks taken from the outbox, being written.
    pending: VecDeque<Bytes>,
    /// Set when the peer closed (or shutdown began) while suspended.
    peer_gone: bool,
    /// Bytes to send once the TLS handshake is done, instead of serving
    /// (a refusal such as protected mode's); the connection then closes.
    refusal: Option<&'static [u8]>,
    /// Set once the refusal is queued: close when it is written.
    refused: bool,
    /// No pacing before this instant: the last wait found its reader
    /// stalled (see `let_subscribers_write`).
    unpaced_until: Option<tokio::time::Instant>,
    /// The last batch's replies were left to the worker (see
    /// `ClientHandle::defer_write`): the loop's top does not write them.
    replies_deferred: bool,
}

impl<S: Session> Drop for Connection<S> {
    /// Releases the outbox's share of the socket and what is queued even
    /// when the task is dropped without finishing `run` (runtime shutdown).
    fn drop(&mut self) {
        self.handle.close_outbox();
    }
}

impl<S: Session> Connection<S> {
    /// Wraps an accepted connection, plain or TLS. `max_bulk` is
    /// `proto-max-bulk-len`.
    pub fn new(
        stream: Transport,
        session: S,
        handle: Arc<ClientHandle>,
        counters: Arc<Counters>,
        max_bulk: usize,
    ) -> Connection<S> {
        // Shared from the start, so that a connection accepted while a
        // script holds the worker can be answered before its task runs.
        if let Some(socket) = stream.shared_socket() {
            handle.share_socket(socket);
            handle.set_busy_service(session.busy_service());
        }
        Connection {
            stream,
            session,
            handle,
            counters,
            parser: RequestParser::new(max_bulk),
            rbuf: BytesMut::new(),
            qbuf_peak: 0,
            pending: VecDeque::new(),
            peer_gone: false,
            refusal: None,
            refused: false,
            unpaced_until: None,
            replies_deferred: false,
        }
    }

    /// Sends `bytes` once the TLS handshake is done, then closes, running
    /// nothing the client sent (as Redis refuses TLS clients in protected
    /// mode).
    pub fn refuse_after_handshake(&mut self, bytes: &'static [u8]) {
        self.refusal = Some(bytes);
    }

    /// Serves the client until it leaves, is killed, or the server stops.
    pub async fn run(mut self) {
        if let Err(e) = self.serve().await {
            tracing::debug!(id = self.handle.id, "connection closed: {e}");
        }
        self.handle.close_outbox();
        if self.handle.overflowed() {
            self.counters
                .client_output_buffer_limit_disconnections
                .fetch_add(1, Relaxed);
        }
        self.session.closed();
    }

    /// The loop of the module header. Shutdown reaches it as a kill
    /// (the server kills every client), which wakes it like CLIENT KILL.
    async fn serve(&mut self) -> io::Result<()> {
        loop {
            self.handle.set_busy_service(0);
            // Replies to writes may wait for the AOF (see the session).
            if self.session.awaits_durability() && !self.session.durable().await {
                return Ok(());
            }
            let drained = if std::mem::take(&mut self.replies_deferred) {
                true
            } else {
                self.write_pending()?
            };
            let closing = self.refused || self.session.closing();
            if closing && drained {
                return Ok(());
            }
            if self.handle.is_killed() {
                return Ok(());
            }
            if self.session.is_suspended() {
                self.wait_suspended(drained).await?;
                let go_on = self.session.resume();
                if self.peer_gone {
                    return Ok(());
                }
                if go_on {
                    self.run_buffered();
                }
                continue;
            }
            let reading = !closing;
            // Waiting with nothing buffered: a script that runs long may
            // have this client's requests read and answered meanwhile.
            if reading && drained && self.rbuf.is_empty() && !self.parser.in_progress() {
                self.handle.set_busy_service(self.session.busy_service());
            }
            // Reading comes before the outbox wake-up so that a client that
            // receives a flood of messages is still heard; what a read
            // produces is written at the top of the loop either way.
            tokio::select! {
                biased;
                r = self.stream.readable(), if reading => {
                    r?;
                    if !self.read_and_run()? {
                        return Ok(());
                    }
                    let heavy = std::mem::take(&mut self.session.pressure().heavy);
                    if self.session.pressure().deliveries > 0 {
                        self.let_subscribers_write().await?;
                    } else {
                        self.replies_deferred = self.pending.is_empty()
                            && !self.session.awaits_durability()
                            && !self.session.closing()
                            && !self.session.is_suspended()
                            && self.handle.defer_write();
                        if heavy > 1 {
                            // The others' turn before this client's next
                            // read (as Redis's event loop serves one read
                            // per client).
                            tokio::task::yield_now().await;
                        }
                    }
                }
                _ = self.handle.woken() => {
                    if self.absorb_busy_input() {
                        self.run_buffered();
                        continue;
                    }
                    if self.handle.take_trim_request()
                        && self.rbuf.is_empty()
                        && !self.parser.in_progress()
                    {
                        self.rbuf = BytesMut::new();
                        self.session.end_batch(0, 0);
                    }
                }
                r = self.stream.writable(), if !drained => r?,
            }
        }
    }

    /// Publisher back-pressure (Redis's event loop gets it by construction:
    /// it writes every subscriber's output before reading more requests).
    /// After a batch that delivered messages, this publisher writes its own
    /// replies (so its client can send the next batch meanwhile) and yields
    /// once, so that the subscribers it woke run before it reads again; if
    /// the batch found some subscribers' queues congested (bytes waiting
    /// longer than [`handle::CONGESTED_AFTER`]), it keeps yielding until
    /// those subscribers' tasks have taken their bytes. Otherwise it runs freely
    /// and messages that arrive while a subscriber waits for its turn join
    /// the same write, so deliveries leave in large batches exactly when the
    /// load is high; and a fast publisher cannot pile messages up faster
    /// than they are written, which bounds latency and memory.
    /// Subscribers whose socket is full (slow readers) are not waited for:
    /// the output-buffer limits deal with them. The wait is bounded.
    async fn let_subscribers_write(&mut self) -> io::Result<()> {
        const MAX_ROUNDS: usize = 64;
        /// Longest a publisher waits for backed-up readers per batch.
        const PACE_WAIT: std::time::Duration = std::time::Duration::from_millis(5);
        // (Replies waiting for the AOF leave at the loop's top.)
        if !self.session.awaits_durability() {
            self.write_pending()?;
        }
        for _ in 0..MAX_ROUNDS {
            tokio::task::yield_now().await;
            let p = self.session.pressure();
            p.congested.retain(|h| h.awaiting_writer());
            if p.congested.is_empty() {
                break;
            }
        }
        // Most of this batch's messages queued behind full sockets: the
        // readers as a whole are slower than we publish (one stuck reader
        // among many never gets here). Let one of them drain, bounded, so
        // the publisher is paced by its readers instead of filling every
        // queue up to its output limit.
        // A reader that takes nothing for PACE_WAIT is stalled, not slow:
        // waiting for it only slows the publisher (to one batch per
        // PACE_WAIT) while its queue fills up to the output limit that
        // will drop it, as Redis lets it fill at full speed. The publisher
        // then goes unpaced for a while.
        const STALLED_FOR: std::time::Duration = std::time::Duration::from_millis(100);
        let paced = self
            .unpaced_until
            .is_none_or(|t| tokio::time::Instant::now() >= t);
        let p = self.session.pressure();
        if paced && p.backed_up * 2 > p.deliveries {
            if let Some(h) = p.backed_up_sample.take() {
                if tokio::time::timeout(PACE_WAIT, h.drained()).await.is_err() {
                    self.unpaced_until = Some(tokio::time::Instant::now() + STALLED_FOR);
                }
            }
        }
        self.session.pressure().clear();
        Ok(())
    }

    /// While suspended: waits for the session to be able to resume, for
    /// the peer to close (requests it sends meanwhile are buffered, not
    /// run), or for outbox traffic (or a kill).
    async fn wait_suspended(&mut self, drained: bool) -> io::Result<()> {
        // Keep hearing the socket (to notice a disconnect) unless the client
        // floods us meanwhile.
        let reading = self.rbuf.len() < SUSPENDED_READ_LIMIT;
        tokio::select! {
            biased;
            _ = self.session.resumed() => {}
            r = self.stream.readable(), if reading => {
                r?;
                if !read_some(&mut self.stream, &mut self.rbuf, &self.handle, &self.counters)? {
                    self.peer_gone = true;
                }
            }
            _ = self.handle.woken() => {}
            r = self.stream.writable(), if !drained => r?,
        }
        Ok(())
    }

    /// Reads what is available and runs every complete request.
    /// Returns false when the peer closed the connection.
    fn read_and_run(&mut self) -> io::Result<bool> {
        self.handle.set_busy_service(0);
        self.absorb_busy_input();
        if !read_some(
            &mut self.stream,
            &mut self.rbuf,
            &self.handle,
            &self.counters,
        )? {
            return Ok(false);
        }
        let written = delivery::on_batch();
        if written > 0 {
            self.counters
                .total_net_output_bytes
                .fetch_add(written as u64, Relaxed);
        }
        if self.refusal.is_some() {
            return Ok(self.refuse());
        }
        self.run_buffered();
        Ok(true)
    }

    /// Takes the requests read from the socket while a script held the
    /// worker (see `ClientHandle::serve_busy_input`): they came before
    /// anything still in the socket. True if there were some.
    fn absorb_busy_input(&mut self) -> bool {
        match self.handle.take_busy_input() {
            Some(input) if !input.is_empty() => {
                self.rbuf.extend_from_slice(&input);
                true
            }
            _ => false,
        }
    }

    /// Queues the refusal once the TLS handshake is over (nothing the
    /// client sent is run), and closes after it. Returns false if the
    /// connection must close at once.
    #[cold]
    fn refuse(&mut self) -> bool {
        if !self.stream.handshake_done() {
            return true;
        }
        let Some(bytes) = self.refusal.take() else {
            return true;
        };
        self.rbuf.clear();
        self.counters.rejected_connections.fetch_add(1, Relaxed);
        self.handle.push(Bytes::from_static(bytes));
        self.refused = true;
        true
    }

    /// Runs every complete request in the read buffer, stopping early if
    /// the session stops accepting them (blocked, postponed, closing).
    fn run_buffered(&mut self) {
        let started_with = self.rbuf.len();
        self.qbuf_peak = self.qbuf_peak.max(started_with);
        self.session
            .start_batch(self.rbuf.len(), self.rbuf.capacity());
        while self.session.accepts_requests() {
            // Redis's limits on what an unauthenticated client may send.
            self.parser.unauthenticated = self.session.unauthenticated();
            match self.parser.next(&mut self.rbuf) {
                Ok(Some(args)) => self.session.execute(args),
                Ok(None) => break,
                Err(e) => {
                    self.session.protocol_error(&e.0);
                    break;
                }
            }
        }
        // Between batches the read buffer is kept for the next one, sized
        // as Redis sizes its query buffer: at least one read's worth, room
        // for a request as big as the last (a client that sent a big value
        // is likely to send another: no regrowing it from 16 KiB), and cut
        // back once requests get small again (a buffer over 32 KiB, more
        // than twice the recent peak). An idle client's is freed by the
        // clients cron (see `ClientHandle::ask_trim_read_buffer`).
        // (A wake-up that read nothing changes nothing.)
        if started_with > 0 && self.rbuf.is_empty() && !self.parser.in_progress() {
            let cap = self.rbuf.capacity();
            let peak = std::mem::take(&mut self.qbuf_peak);
            let want = if peak > RESIZE_THRESHOLD {
                peak
            } else {
                READ_CHUNK
            };
            if cap > RESIZE_THRESHOLD && cap / 2 > peak {
                self.rbuf = BytesMut::with_capacity(want);
            } else if cap < want {
                // Reclaims the buffer in place once the batch's arguments
                // are gone, else allocates.
                self.rbuf.reserve(want);
            }
        }
        self.session
            .end_batch(self.rbuf.len(), self.rbuf.capacity());
    }

    /// Writes queued bytes until all are written (true) or the socket is
    /// full (false).
    fn write_pending(&mut self) -> io::Result<bool> {
        loop {
            if self.pending.is_empty() {
                self.handle.take(&mut self.pending);
                if self.pending.is_empty() {
                    // TLS records may still wait for the socket.
                    if !self.stream.send_tls_records()? {
                        self.handle.set_socket_full(true);
                        return Ok(false);
                    }
                    self.handle.set_socket_full(false);
                    return Ok(true);
                }
            }
            let mut iov: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
            let (n, _) = handle::fill_iov(&self.pending, &mut iov);
            match self.stream.try_write_vectored(&iov[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    self.handle.written(written);
                    self.counters
                        .total_net_output_bytes
                        .fetch_add(written as u64, Relaxed);
                    handle::consume(&mut self.pending, written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.handle.set_socket_full(true);
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads what is available into the read buffer. Returns false when the
/// peer closed the connection or its unparsed input passed
/// `client-query-buffer-limit` (closed without a reply, as Redis does).
fn read_some(
    stream: &mut Transport,
    rbuf: &mut BytesMut,
    handle: &ClientHandle,
    counters: &Counters,
) -> io::Result<bool> {
    if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
        rbuf.reserve(READ_CHUNK);
    }
    match stream.try_read_buf(rbuf) {
        Ok(0) => Ok(false),
        Ok(n) => {
            counters.total_net_input_bytes.fetch_add(n as u64, Relaxed);
            handle.touch();
            let limit = handle.limits().query_buffer.load(Relaxed);
            if limit > 0 && rbuf.len() > limit {
                tracing::warn!(
                    "closing client id={} addr={} that reached max query buffer length ({} bytes)",
                    handle.id,
                    handle.addr,
                    rbuf.len()
                );
                counters
                    .client_query_buffer_limit_disconnections
                    .fetch_add(1, Relaxed);
                return Ok(false);
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(e) => Err(e),
    }
}
