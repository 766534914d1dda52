//! One client connection: read requests, run them, write what is queued.
//!
//! Each accepted socket gets one tokio task running [`Connection::run`]. The
//! task alone reads from its socket; everything bound for the client (its
//! replies, and messages pushed by publishers on other tasks) goes through
//! its [`ClientHandle`] outbox, which the task writes out (published
//! messages held while the worker was busy are written by the worker
//! itself: see [`hold`]). The loop:
//!
//! 1. write whatever is queued, with vectored writes, until done or the
//!    socket is full;
//! 2. wait for the socket to be readable, for the outbox to be fed (or
//!    CLIENT KILL, which is also how shutdown arrives), or for the socket
//!    to drain;
//! 3. on readable, read once and run every complete command in the buffer
//!    (a pipeline): replies of the batch are gathered in one buffer and
//!    queued with a single outbox push, so they leave in as few writes as
//!    possible.
//!
//! The socket is a [`transport::Transport`]: plain TCP, or TLS driven
//! sans-IO behind the same four readiness calls, so this loop is the same
//! for both.
//!
//! The state only the task touches (protocol, database, subscriptions, reply
//! mode) lives in [`Client`], which command handlers receive.

pub mod handle;
pub mod hold;
pub mod limits;
pub mod transport;

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use indexmap::IndexSet;
use tokio::net::TcpStream;

use crate::command;
use crate::protocol::{Frame, Protocol, RequestParser};
use crate::state::Shared;
use handle::{ClientHandle, MAX_IOV};

/// Read buffer size for a connection that is receiving data.
const READ_CHUNK: usize = 16 * 1024;
/// While blocked, stop reading once this much is buffered (requests are not
/// run until the client is unblocked).
const BLOCKED_READ_LIMIT: usize = 1024 * 1024;

/// CLIENT REPLY mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Replies are sent (default).
    On,
    /// No replies until CLIENT REPLY ON.
    Off,
    /// The next command's reply is dropped.
    Skip,
    /// Set by CLIENT REPLY SKIP: skip the command after this one.
    SkipNext,
}

/// Per-connection state owned by the connection task and given to command
/// handlers.
pub struct Client {
    /// Server-wide state.
    pub shared: Arc<Shared>,
    /// This client's shared half (outbox, CLIENT LIST details).
    pub handle: Arc<ClientHandle>,
    /// RESP2 or RESP3, set by HELLO.
    pub protocol: Protocol,
    /// Selected database (SELECT).
    pub db: usize,
    /// Classic channels, in subscription order.
    pub channels: IndexSet<Bytes, ahash::RandomState>,
    /// Patterns, in subscription order.
    pub patterns: IndexSet<Bytes, ahash::RandomState>,
    /// Shard channels, in subscription order.
    pub shard_channels: IndexSet<Bytes, ahash::RandomState>,
    /// CLIENT REPLY state.
    pub reply_mode: ReplyMode,
    /// Replies of the current batch, not yet queued.
    pub out: BytesMut,
    /// Set by QUIT or a protocol error: close once the replies are written.
    pub close_after_reply: bool,
    /// Name of the command being run, for CLIENT LIST `cmd=`.
    pub current_cmd: String,
    /// Subscribers whose queue the current batch's publishes found
    /// congested. Before reading more, the task lets them write (see
    /// `Connection::let_subscribers_write`).
    pub fanout: crate::pubsub::registry::Fanout,
    /// MULTI queue, WATCHed keys and the database locks EXEC holds
    /// (issue 4; see `command::transactions`).
    pub tx: crate::command::transactions::TxState,
    /// Set while the client is blocked in BLPOP & co.: the connection loop
    /// then waits for it to be served or to time out (see
    /// `store::blocking`) and runs no further command meanwhile.
    pub blocked: Option<crate::store::blocking::Blocked>,
    /// The AOF offset the effects of this batch's writes end at (0:
    /// nothing to wait for). The replies queued in the outbox may leave
    /// only once the log is written up to it (fsynced too under
    /// `appendfsync always`; issue 7, see `persist::aof`).
    pub durable_at: u64,
    /// In MONITOR mode (see `observe::monitor`).
    pub monitor: bool,
    /// A command held back by CLIENT PAUSE: the connection loop waits for
    /// the pause to end, runs it, then the rest of the pipeline.
    pub postponed: Option<Vec<Bytes>>,
    /// While commands are timed (slow log, latency monitor): when the
    /// previous command ended, or the batch began (see `observe`).
    pub clock: Option<std::time::Instant>,
    /// The ACL user this connection runs as; `None` for the server's own
    /// client (AOF replay), which may run anything (see `acl`).
    pub user: Option<Arc<crate::acl::User>>,
    /// Authenticated (AUTH / HELLO AUTH, or the default user is `nopass`
    /// and `on`): until then only `no-auth` commands run when a password
    /// is required (issue 8).
    pub authenticated: bool,
}

impl Client {
    /// A client with no connection, for the server's own use (replaying
    /// the append-only file at start-up): commands run through the normal
    /// path and its replies are discarded by the caller.
    pub fn internal(shared: Arc<Shared>) -> Client {
        let any: std::net::SocketAddr = ([0, 0, 0, 0], 0).into();
        let limits = shared.limits.clone();
        let handle = Arc::new(ClientHandle::new(u64::MAX, any, any, -1, limits));
        let mut c = Client::new(shared, handle);
        c.user = None;
        c.authenticated = true;
        c
    }

    /// A fresh client: RESP2, database 0, no subscriptions, replies on.
    pub fn new(shared: Arc<Shared>, handle: Arc<ClientHandle>) -> Client {
        let mut c = Client {
            shared,
            handle,
            protocol: Protocol::Resp2,
            db: 0,
            channels: IndexSet::default(),
            patterns: IndexSet::default(),
            shard_channels: IndexSet::default(),
            reply_mode: ReplyMode::On,
            out: BytesMut::new(),
            close_after_reply: false,
            current_cmd: String::new(),
            fanout: Default::default(),
            tx: Default::default(),
            blocked: None,
            durable_at: 0,
            monitor: false,
            postponed: None,
            clock: None,
            user: None,
            authenticated: true,
        };
        crate::acl::set_default_auth(&mut c);
        c
    }

    /// Total subscriptions, the count shown in (un)subscribe confirmations.
    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    /// True in the RESP2 subscribed context, where only pub/sub commands run.
    pub fn in_resp2_pubsub(&self) -> bool {
        self.protocol == Protocol::Resp2 && self.subscription_count() > 0
    }

    /// Queues a reply, honouring CLIENT REPLY OFF / SKIP.
    pub fn reply(&mut self, frame: Frame) {
        if self.reply_mode == ReplyMode::On {
            frame.encode(self.protocol, &mut self.out);
        }
    }

    /// Queues an error reply (`msg` includes its code, e.g. `ERR ...`).
    pub fn error(&mut self, msg: impl Into<String>) {
        self.reply(Frame::error(msg));
    }

    /// Queues pre-encoded reply bytes, honouring CLIENT REPLY.
    pub fn reply_raw(&mut self, bytes: &[u8]) {
        if self.reply_mode == ReplyMode::On {
            self.out.extend_from_slice(bytes);
        }
    }

    /// Moves the batch's replies to the outbox, so that what comes next
    /// (a subscription confirmation, a message to this very client) is
    /// ordered after them.
    pub fn flush_replies(&mut self) {
        if !self.out.is_empty() {
            let bytes = self.out.split().freeze();
            self.handle.push(bytes);
        }
    }

    /// Updates what CLIENT LIST shows about this client.
    fn publish_meta(&self, qbuf: usize, qbuf_cap: usize) {
        let mut m = self.handle.meta.lock();
        m.db = self.db;
        m.sub = self.channels.len();
        m.psub = self.patterns.len();
        m.ssub = self.shard_channels.len();
        m.qbuf = qbuf;
        m.qbuf_cap = qbuf_cap;
        self.handle.set_query_buffer_size(qbuf_cap);
        if !self.current_cmd.is_empty() && m.last_cmd != self.current_cmd {
            m.last_cmd.clone_from(&self.current_cmd);
        }
    }

    /// Puts the client in the output-limit class its subscriptions call for
    /// (after any (un)subscription).
    pub fn sync_class(&self) {
        let class = if self.subscription_count() > 0 {
            limits::ClientClass::PubSub
        } else {
            limits::ClientClass::Normal
        };
        self.handle.set_class(class);
    }

    /// Drops every subscription (disconnect, RESET); no confirmations.
    pub fn drop_subscriptions(&mut self) {
        let ps = &self.shared.pubsub;
        for ch in std::mem::take(&mut self.channels) {
            ps.channels.unsubscribe(&ch, &self.handle, None);
        }
        for p in std::mem::take(&mut self.patterns) {
            ps.patterns.unsubscribe(&p, &self.handle, None);
        }
        for ch in std::mem::take(&mut self.shard_channels) {
            ps.shard_channels.unsubscribe(&ch, &self.handle, None);
        }
        self.sync_class();
    }
}

/// A client connection being served.
pub struct Connection {
    /// Plain TCP or TLS (see `transport`).
    stream: transport::Transport,
    client: Client,
    parser: RequestParser,
    rbuf: BytesMut,
    /// Chunks taken from the outbox, being written.
    pending: VecDeque<Bytes>,
    /// Set when the peer closed (or shutdown began) while blocked.
    peer_gone: bool,
    /// Refused by protected mode once its TLS handshake is done (issue 8).
    denied_after_handshake: bool,
}

impl Drop for Connection {
    /// The worker writes to this socket directly while the outbox is open
    /// (`ClientHandle::flush`): close the outbox before the socket is
    /// closed, even when the task is dropped without finishing `run`
    /// (runtime shutdown).
    fn drop(&mut self) {
        self.client.handle.close_outbox();
    }
}

impl Connection {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream, shared: Arc<Shared>, handle: Arc<ClientHandle>) -> Connection {
        Connection::with_transport(transport::Transport::Plain(stream), shared, handle)
    }

    /// Wraps an accepted connection, plain or TLS.
    pub fn with_transport(
        stream: transport::Transport,
        shared: Arc<Shared>,
        handle: Arc<ClientHandle>,
    ) -> Connection {
        let max_bulk = shared.config.read().proto_max_bulk_len;
        Connection {
            stream,
            client: Client::new(shared, handle),
            parser: RequestParser::new(max_bulk),
            rbuf: BytesMut::new(),
            pending: VecDeque::new(),
            peer_gone: false,
            denied_after_handshake: false,
        }
    }

    /// Serves the client until it leaves, is killed, or the server stops.
    pub async fn run(mut self) {
        if let Some(fd) = self.stream.raw_fd() {
            self.client.handle.set_fd(fd);
        }
        let result = self.serve().await;
        if let Err(e) = result {
            tracing::debug!(id = self.client.handle.id, "connection closed: {e}");
        }
        self.client.handle.close_outbox();
        if self.client.handle.overflowed() {
            self.client
                .shared
                .stats
                .client_output_buffer_limit_disconnections
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        command::transactions::client_gone(&mut self.client);
        if self.client.monitor {
            self.client
                .shared
                .observe
                .monitors
                .remove(self.client.handle.id);
        }
        if self.client.postponed.take().is_some() {
            self.client
                .shared
                .observe
                .pause
                .waiting
                .fetch_sub(1, Relaxed);
        }
        self.client.drop_subscriptions();
        self.client.shared.clients.remove(self.client.handle.id);
    }

    /// The loop of the module header. Shutdown reaches it as a kill
    /// (the server kills every client), which wakes it like CLIENT KILL.
    async fn serve(&mut self) -> io::Result<()> {
        loop {
            // Replies to writes are held in the outbox until the AOF is
            // written (under appendfsync always: fsynced) past their
            // effects, which the worker does once its round of clients is
            // served (group commit: one write and fsync releases them all).
            // If the log can never get there, close without acknowledging.
            if self.client.durable_at > 0 {
                let off = std::mem::take(&mut self.client.durable_at);
                if !self.client.shared.aof.wait_durable(off).await {
                    return Ok(());
                }
            }
            let drained = self.write_pending()?;
            if self.client.close_after_reply && drained {
                return Ok(());
            }
            if self.client.handle.is_killed() {
                return Ok(());
            }
            if self.client.blocked.is_some() {
                // Blocked in BLPOP & co.: no command runs until it is over.
                self.client.handle.set_blocked(true);
                self.wait_blocked(drained).await?;
                self.client
                    .handle
                    .set_blocked(self.client.blocked.is_some());
                if self.peer_gone {
                    return Ok(());
                }
                if self.client.blocked.is_none() {
                    // Served or timed out: go on with the rest of the pipeline.
                    self.run_buffered();
                }
                continue;
            }
            if self.client.postponed.is_some() {
                // Held back by CLIENT PAUSE: wait for it to end, then run.
                self.wait_unpaused(drained).await?;
                if self.peer_gone {
                    return Ok(());
                }
                self.run_buffered();
                continue;
            }
            let reading = !self.client.close_after_reply;
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
                    if self.client.fanout.deliveries > 0 {
                        self.let_subscribers_write().await?;
                    }
                }
                _ = self.client.handle.woken() => {}
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
        if self.client.durable_at == 0 {
            self.write_pending()?;
        }
        for _ in 0..MAX_ROUNDS {
            tokio::task::yield_now().await;
            self.client.fanout.congested.retain(|h| h.awaiting_writer());
            if self.client.fanout.congested.is_empty() {
                break;
            }
        }
        // Most of this batch's messages queued behind full sockets: the
        // readers as a whole are slower than we publish (one stuck reader
        // among many never gets here). Let one of them drain, bounded, so
        // the publisher is paced by its readers instead of filling every
        // queue up to its output limit.
        let f = &mut self.client.fanout;
        if f.backed_up * 2 > f.deliveries {
            if let Some(h) = f.backed_up_sample.take() {
                let _ = tokio::time::timeout(PACE_WAIT, h.drained()).await;
            }
        }
        self.client.fanout.clear();
        Ok(())
    }

    /// While blocked (BLPOP & co.): waits for the waiter to be served (its
    /// reply is already in the outbox), for its deadline (then replies with
    /// the timeout value), for the peer to close (requests it sends meanwhile
    /// are buffered, not run), or for outbox traffic (or a kill).
    async fn wait_blocked(&mut self, drained: bool) -> io::Result<()> {
        let Some(b) = &self.client.blocked else {
            return Ok(());
        };
        let slot = b.slot.clone();
        let deadline = b.deadline;
        // Keep hearing the socket (to notice a disconnect) unless the client
        // floods us while blocked.
        let reading = self.rbuf.len() < BLOCKED_READ_LIMIT;
        tokio::select! {
            biased;
            _ = slot.notify.notified() => {}
            _ = crate::store::blocking::sleep_until(deadline) => {
                command::lists::block_timeout(&mut self.client);
            }
            r = self.stream.readable(), if reading => {
                r?;
                if !self.read_some()? {
                    self.peer_gone = true;
                }
            }
            _ = self.client.handle.woken() => {}
            r = self.stream.writable(), if !drained => r?,
        }
        if slot.served.load(std::sync::atomic::Ordering::Acquire) {
            self.client.blocked = None;
        }
        Ok(())
    }

    /// While a command is held back by CLIENT PAUSE: waits for the pause
    /// to end or change (or its deadline), for the peer to close, for
    /// outbox traffic (or a kill); no polling. The held command runs
    /// again through `run_buffered` (which may hold it again).
    async fn wait_unpaused(&mut self, drained: bool) -> io::Result<()> {
        let shared = self.client.shared.clone();
        let pause = &shared.observe.pause;
        let changed = pause.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let left = pause.remaining_ms();
        if left == 0 {
            return Ok(());
        }
        let reading = self.rbuf.len() < BLOCKED_READ_LIMIT;
        tokio::select! {
            biased;
            _ = changed => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(left)) => {}
            r = self.stream.readable(), if reading => {
                r?;
                if !self.read_some()? {
                    self.peer_gone = true;
                }
            }
            _ = self.client.handle.woken() => {}
            r = self.stream.writable(), if !drained => r?,
        }
        Ok(())
    }

    /// Reads what is available into the read buffer.
    /// Returns false when the peer closed the connection.
    fn read_some(&mut self) -> io::Result<bool> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        match self.stream.try_read_buf(&mut self.rbuf) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.client
                    .shared
                    .stats
                    .total_net_input_bytes
                    .fetch_add(n as u64, Relaxed);
                self.client.handle.touch();
                let limit = self.client.handle.limits().query_buffer.load(Relaxed);
                if limit > 0 && self.rbuf.len() > limit {
                    // As Redis: log and close, without a reply.
                    tracing::warn!(
                        "closing client id={} addr={} that reached max query buffer length ({} bytes)",
                        self.client.handle.id,
                        self.client.handle.addr,
                        self.rbuf.len()
                    );
                    self.client
                        .shared
                        .stats
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

    /// Reads what is available and runs every complete command.
    /// Returns false when the peer closed the connection.
    fn read_and_run(&mut self) -> io::Result<bool> {
        if !self.read_some()? {
            return Ok(false);
        }
        let flushed = hold::on_batch();
        if flushed > 0 {
            self.client
                .shared
                .stats
                .total_net_output_bytes
                .fetch_add(flushed as u64, Relaxed);
        }
        if self.denied_after_handshake {
            return Ok(self.refuse_after_handshake());
        }
        self.run_buffered();
        Ok(true)
    }

    /// Marks a TLS client refused by protected mode: as Redis, it gets the
    /// `-DENIED` text once the handshake is done, then is closed.
    pub fn deny_after_handshake(&mut self) {
        self.denied_after_handshake = true;
    }

    /// Queues the protected-mode refusal once the TLS handshake is over
    /// (nothing the client sent is run). Returns false if the connection
    /// must close at once.
    #[cold]
    fn refuse_after_handshake(&mut self) -> bool {
        if !self.stream.handshake_done() {
            return true;
        }
        self.denied_after_handshake = false;
        self.rbuf.clear();
        self.client
            .shared
            .stats
            .rejected_connections
            .fetch_add(1, Relaxed);
        self.client.handle.push(Bytes::from_static(
            crate::acl::PROTECTED_MODE_DENIED.as_bytes(),
        ));
        self.client.close_after_reply = true;
        true
    }

    /// Runs every complete command in the read buffer, stopping early if one
    /// blocks the client (the rest waits until it is unblocked) or closes it.
    fn run_buffered(&mut self) {
        // Commands are timed from here while the slow log or the latency
        // monitor is on (one clock reading per batch, one per command).
        self.client.clock = self
            .client
            .shared
            .observe
            .timing()
            .then(std::time::Instant::now);
        if let Some(args) = self.client.postponed.take() {
            self.client
                .shared
                .observe
                .pause
                .waiting
                .fetch_sub(1, Relaxed);
            command::execute(&mut self.client, args);
        }
        while self.client.blocked.is_none() && self.client.postponed.is_none() {
            if self.client.close_after_reply {
                break;
            }
            // Redis's limits on what an unauthenticated client may send.
            self.parser.unauthenticated = crate::acl::auth_required(&self.client);
            match self.parser.next(&mut self.rbuf) {
                Ok(Some(args)) => {
                    command::execute(&mut self.client, args);
                    if self.client.close_after_reply
                        || self.client.blocked.is_some()
                        || self.client.postponed.is_some()
                    {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.client.reply_mode = ReplyMode::On;
                    self.client.error(format!("ERR {}", e.0));
                    self.client.close_after_reply = true;
                    break;
                }
            }
        }
        self.client.flush_replies();
        // An idle client keeps no read buffer.
        if self.rbuf.is_empty() && !self.parser.in_progress() {
            self.rbuf = BytesMut::new();
        }
        self.client
            .publish_meta(self.rbuf.len(), self.rbuf.capacity());
    }

    /// Writes queued bytes until all are written (true) or the socket is
    /// full (false).
    fn write_pending(&mut self) -> io::Result<bool> {
        loop {
            if self.pending.is_empty() {
                self.client.handle.take(&mut self.pending);
                if self.pending.is_empty() {
                    // TLS records may still wait for the socket.
                    if !self.stream.flush_pending()? {
                        self.client.handle.set_socket_full(true);
                        return Ok(false);
                    }
                    self.client.handle.set_socket_full(false);
                    return Ok(true);
                }
            }
            let mut iov: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
            let (n, _) = handle::fill_iov(&self.pending, &mut iov);
            match self.stream.try_write_vectored(&iov[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    self.client.handle.written(written);
                    self.client
                        .shared
                        .stats
                        .total_net_output_bytes
                        .fetch_add(written as u64, Relaxed);
                    handle::consume(&mut self.pending, written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.client.handle.set_socket_full(true);
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
