//! The part of a client that other connections may touch: its outbox.
//!
//! A [`ClientHandle`] is shared (`Arc`) between the client's own connection
//! task, the pub/sub registries (one entry per subscription) and the client
//! list (CLIENT LIST / KILL). Anything that wants to send bytes to the
//! client, its own replies and published messages alike, appends shared
//! [`Bytes`] to the outbox. The client's connection task writes it to the
//! socket, except for published messages deferred while the worker was busy:
//! the worker writes those itself, when it is about to park or their wait
//! is over ([`ClientHandle::write_queued`], see `net::delivery`), through the
//! outbox's own share of the socket. A published message therefore costs each
//! subscriber one reference-count increment and one queue push, never a
//! copy, and no lock but the subscriber's own short one is taken to deliver
//! it.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::util::now_ms;

use bytes::{Bytes, BytesMut};
use nix::sys::socket::{sendmsg, MsgFlags};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::addr::ClientAddr;
use super::limits::{ClientClass, Limits, Verdict};
use super::transport::SharedSocket;
use crate::protocol::Protocol;

/// A client's outbox is *congested* when its task has not taken its bytes
/// for this long (and it holds more than [`CONGESTED_BYTES`]): a publisher
/// that adds to it then waits for the task to catch up before publishing
/// more (publisher back-pressure; see `Connection::let_subscribers_write`).
/// Below it publishers run freely and deliveries gather into large writes;
/// above it latency and memory stay bounded.
pub const CONGESTED_AFTER: std::time::Duration = std::time::Duration::from_micros(200);

/// Queues smaller than this are never congested (a few messages cost the
/// writer nothing to catch up with).
pub const CONGESTED_BYTES: usize = 4 * 1024;

/// What a push found in the subscriber's queue (for publisher back-pressure).
#[derive(Debug, Default, Clone, Copy)]
pub struct Pushed {
    /// The queue just became congested while its task can write.
    pub congested: bool,
    /// The queue is congested behind a full socket: the peer reads slower
    /// than it is sent to.
    pub backed_up: bool,
}

/// Most chunks handed to one vectored write.
pub(crate) const MAX_IOV: usize = 64;

/// Points `iov` at the first chunks of `chunks` (at most [`MAX_IOV`]);
/// returns how many slices it set and the bytes they hold.
pub(crate) fn fill_iov<'a>(
    chunks: &'a VecDeque<Bytes>,
    iov: &mut [IoSlice<'a>; MAX_IOV],
) -> (usize, usize) {
    let mut n = 0;
    let mut bytes = 0;
    for chunk in chunks.iter().take(MAX_IOV) {
        iov[n] = IoSlice::new(chunk);
        bytes += chunk.len();
        n += 1;
    }
    (n, bytes)
}

/// Drops the first `written` bytes of `chunks` (what a write took).
pub(crate) fn consume(chunks: &mut VecDeque<Bytes>, mut written: usize) {
    while written > 0 {
        let Some(front) = chunks.front_mut() else {
            break;
        };
        if written >= front.len() {
            written -= front.len();
            chunks.pop_front();
        } else {
            bytes::Buf::advance(front, written);
            written = 0;
        }
    }
}

/// The outbox's share of a client's socket: the descriptor the worker
/// writes deferred deliveries to, and the share of the socket that keeps
/// that descriptor open (it is closed only once the connection and this
/// share have both let go). The descriptor is read once, here, so that a
/// write is one system call on it, with no pass through the runtime's
/// readiness state (which this write neither needs nor should disturb: the
/// connection task owns the socket's readiness).
#[derive(Debug)]
struct SocketShare {
    fd: RawFd,
    _open: SharedSocket,
}

impl SocketShare {
    fn new(socket: SharedSocket) -> SocketShare {
        SocketShare {
            fd: socket.as_raw_fd(),
            _open: socket,
        }
    }

    /// One non-blocking gathered write: the bytes the socket took, 0 if it
    /// took none (full, interrupted or failed: the task retries and sees
    /// the error itself). MSG_NOSIGNAL: a closed peer gives EPIPE, not
    /// SIGPIPE.
    fn send(&self, iov: &[IoSlice<'_>]) -> usize {
        sendmsg::<()>(
            self.fd,
            iov,
            &[],
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            None,
        )
        .unwrap_or(0)
    }

    /// One non-blocking read into `into`, at most `max` bytes: how many
    /// it took, 0 at the end of the stream; an error when nothing was
    /// waiting (EAGAIN) or the socket failed.
    fn recv(&self, into: &mut BytesMut, max: usize) -> io::Result<usize> {
        let mut chunk = [0u8; 4096];
        let max = max.min(chunk.len());
        let n = nix::sys::socket::recv(self.fd, &mut chunk[..max], MsgFlags::MSG_DONTWAIT)
            .map_err(io::Error::from)?;
        into.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

/// What a client's task lets the worker do with its socket while a script
/// runs past `busy-reply-threshold` on that worker (see
/// `command::busy`): bits of [`ClientHandle::busy_service`].
pub mod busy_service {
    /// The task waits for requests with nothing buffered, nothing to write
    /// and no transaction open: requests read from its socket now may be
    /// answered by others, or left for it in order.
    pub const READY: u8 = 1;
    /// The client is authenticated as a user without restrictions: it may
    /// stop the server with SHUTDOWN NOSAVE then.
    pub const TRUSTED: u8 = 2;
}

/// Requests read from a client's socket, while its task could not run,
/// and not answered: the task runs them before it reads again.
#[derive(Debug, Default)]
pub struct BusyInput {
    /// Bytes read and not yet answered, from a request's start.
    pub bytes: BytesMut,
    /// The first of them is a request only the task may run: nothing more
    /// is read or answered for this client until it does.
    pub held: bool,
}

/// What a push did to the queue.
#[derive(Debug, Default, Clone, Copy)]
struct Queued {
    /// The queue was empty: the task must be woken (now or soon).
    first: bool,
    /// The queue just reached [`CONGESTED_BYTES`].
    filled: bool,
}

/// The queue of encoded bytes waiting to be written to one client.
#[derive(Debug, Default)]
struct Outbox {
    /// Chunks in the order they must reach the socket.
    chunks: VecDeque<Bytes>,
    /// Sum of the chunks' lengths, for output-buffer accounting.
    bytes: usize,
    /// Set once the connection is closing: later pushes are dropped.
    closed: bool,
    /// When the queue, holding more than [`CONGESTED_BYTES`], was first seen.
    since: Option<Instant>,
    /// Congestion was already reported for the bytes now queued.
    congested: bool,
    /// The client's task took chunks and has not finished writing them: it
    /// takes whatever is queued meanwhile before it sleeps, so nobody else
    /// may write to the socket (the order of bytes would break).
    writing: bool,
    /// The outbox's share of the socket, for [`ClientHandle::write_queued`]
    /// (plain TCP and Unix sockets, not TLS). Set by the connection task when it starts serving,
    /// dropped by `close_outbox`; the descriptor stays open while any share
    /// exists, so a write through it never reaches a closed (or reused)
    /// descriptor.
    socket: Option<SocketShare>,
}

/// Facts about a client shown by CLIENT LIST / CLIENT INFO, kept current by
/// its connection task. Behind a mutex: read rarely, written once per batch.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    /// CLIENT SETNAME / HELLO SETNAME.
    pub name: Option<Bytes>,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: Option<Bytes>,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: Option<Bytes>,
    /// Selected database.
    pub db: usize,
    /// Subscribed channels, patterns and shard channels.
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// Last command run (`client|list` style), for `cmd=`.
    pub last_cmd: String,
    /// Bytes waiting in the query buffer / its capacity.
    pub qbuf: usize,
    pub qbuf_cap: usize,
    /// Authenticated user name.
    pub user: String,
    /// The user's unique id (`acl::User::id`), to find its connections when
    /// ACLs change (as Redis compares `c->user` pointers); 0 for none.
    pub user_id: u64,
    /// CLIENT NO-EVICT ON (flag `e`). Stored and shown only: it matters
    /// with `maxmemory-clients`, which herald does not implement.
    pub no_evict: bool,
    /// In MONITOR mode (flag `O`).
    pub monitor: bool,
    /// The link to this server's primary (flag `M`, CLIENT KILL TYPE
    /// master).
    pub master: bool,
}

/// A client as seen from outside its own connection task.
#[derive(Debug)]
pub struct ClientHandle {
    /// Unique, increasing client id (CLIENT ID).
    pub id: u64,
    /// Peer address (`addr=`).
    pub addr: ClientAddr,
    /// Local address the client connected to (`laddr=`).
    pub laddr: ClientAddr,
    /// Socket file descriptor (`fd=`).
    pub fd: i64,
    /// When the connection was accepted (`age=`).
    pub created: Instant,
    /// Milliseconds since the epoch of the last command (`idle=`).
    last_active_ms: AtomicU64,
    /// The protocol pushes must be encoded in; changes with HELLO.
    resp3: AtomicBool,
    /// Set by CLIENT KILL or shutdown: the task closes the connection.
    killed: AtomicBool,
    /// Set by the clients cron for a client idle for more than 2 s: its
    /// connection task drops its read buffer (Redis frees the query buffer
    /// of such a client).
    trim_read_buffer: AtomicBool,
    /// Bytes queued but not yet written (outbox plus what the task holds).
    pending_bytes: AtomicUsize,
    /// Capacity of the query buffer, as of the last batch (used memory).
    query_buffer: AtomicUsize,
    /// The server's output-buffer limits (shared by all clients).
    limits: Arc<Limits>,
    /// [`ClientClass`] as a number: which limits apply.
    class: AtomicU8,
    /// When the soft output limit was first exceeded (ms), 0 = it is not.
    soft_since_ms: AtomicU64,
    /// Set when the output-buffer limit closed the client.
    overflowed: AtomicBool,
    /// Set while the socket refuses bytes (the peer reads slowly).
    socket_full: AtomicBool,
    /// Notified when the socket, once full, has taken everything queued.
    drained: Notify,
    /// Set while the client waits in a blocking command (BLPOP & co.):
    /// the idle `timeout` does not apply then, as in Redis.
    blocked: AtomicBool,
    /// Wakes the connection task when bytes arrive or it must close.
    wake: Notify,
    outbox: Mutex<Outbox>,
    /// Bits of [`busy_service`], as last set by the task.
    busy_service: AtomicU8,
    /// Set while [`busy_input`](Self::busy_input) holds bytes: the task's
    /// check costs one load.
    has_busy_input: AtomicBool,
    busy_input: Mutex<BusyInput>,
    /// Details for CLIENT LIST.
    pub meta: Mutex<ClientMeta>,
}

impl ClientHandle {
    /// A handle for a newly accepted connection.
    pub fn new(
        id: u64,
        addr: ClientAddr,
        laddr: ClientAddr,
        fd: i64,
        limits: Arc<Limits>,
    ) -> ClientHandle {
        ClientHandle {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(now_ms()),
            resp3: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            trim_read_buffer: AtomicBool::new(false),
            pending_bytes: AtomicUsize::new(0),
            query_buffer: AtomicUsize::new(0),
            limits,
            class: AtomicU8::new(ClientClass::Normal as u8),
            soft_since_ms: AtomicU64::new(0),
            overflowed: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            socket_full: AtomicBool::new(false),
            drained: Notify::new(),
            wake: Notify::new(),
            outbox: Mutex::new(Outbox::default()),
            busy_service: AtomicU8::new(0),
            has_busy_input: AtomicBool::new(false),
            busy_input: Mutex::new(BusyInput::default()),
            meta: Mutex::new(ClientMeta {
                user: "default".into(),
                ..ClientMeta::default()
            }),
        }
    }

    /// The protocol the client speaks now.
    #[inline]
    pub fn protocol(&self) -> Protocol {
        if self.resp3.load(Ordering::Relaxed) {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        }
    }

    /// Records a protocol switch (HELLO, RESET).
    pub fn set_protocol(&self, p: Protocol) {
        self.resp3.store(p == Protocol::Resp3, Ordering::Relaxed);
    }

    /// Appends bytes for the client, waking its task if it was idle.
    /// Says whether this push found the queue newly congested (see
    /// [`CONGESTED_AFTER`]: the publisher should let this client's task write
    /// before it publishes more) or backed up behind a full socket. Dropped
    /// silently once the client is closing.
    #[inline]
    pub fn push(&self, bytes: Bytes) -> Pushed {
        let (pushed, queued) = self.enqueue(bytes);
        if queued.first {
            self.wake();
        }
        pushed
    }

    /// Queues the replies of a read batch from the client's own task,
    /// without waking it: the task writes them itself when its loop comes
    /// round, or leaves them to the worker ([`defer_write`](Self::defer_write)).
    #[inline]
    pub fn push_own(&self, bytes: Bytes) {
        self.enqueue(bytes);
    }

    /// Leaves what is queued to the worker, which writes it when it is
    /// about to park or once a round of read batches has passed (see
    /// `net::delivery::defer_reply`), so that the replies to the clients
    /// of one round of reads leave together, as Redis writes every client's output
    /// before it waits for events again. False when this thread does not
    /// defer (the multi-thread runtime, a zero window), or when the socket
    /// is not shared (TLS), or nothing is queued: the task writes itself.
    pub(crate) fn defer_write(self: &Arc<Self>) -> bool {
        {
            let o = self.outbox.lock();
            if o.chunks.is_empty() || o.socket.is_none() || o.writing || o.closed {
                return false;
            }
        }
        super::delivery::defer_reply(self)
    }

    /// A published message for this subscriber: as [`push`](Self::push),
    /// but while the worker is busy the task's wake-up may be deferred so
    /// that several messages leave in one write (see `net::delivery`); a
    /// queue of [`CONGESTED_BYTES`] or more wakes it at once.
    #[inline]
    pub fn deliver(self: &Arc<Self>, bytes: Bytes) -> Pushed {
        let (pushed, queued) = self.enqueue(bytes);
        if queued.first {
            if !super::delivery::defer(self) {
                self.wake();
            }
        } else if queued.filled {
            self.wake();
        }
        pushed
    }

    /// Queues `bytes`; says what the push found, and what it did to the
    /// queue (which tells whether the task must be woken).
    #[inline]
    fn enqueue(&self, bytes: Bytes) -> (Pushed, Queued) {
        if bytes.is_empty() {
            return Default::default();
        }
        let len = bytes.len();
        let mut o = self.outbox.lock();
        if o.closed {
            return Default::default();
        }
        let queued = Queued {
            first: o.chunks.is_empty(),
            filled: o.bytes < CONGESTED_BYTES && o.bytes + len >= CONGESTED_BYTES,
        };
        o.bytes += len;
        let mut congested = false;
        if o.bytes > CONGESTED_BYTES && !o.congested {
            // The clock is read only once a queue holds a few KiB.
            let now = Instant::now();
            let since = *o.since.get_or_insert(now);
            if now.duration_since(since) > CONGESTED_AFTER {
                o.congested = true;
                congested = true;
            }
        }
        let o_congested = o.congested;
        o.chunks.push_back(bytes);
        // Counted under the lock: the writer can only subtract bytes it took.
        let total = self.pending_bytes.fetch_add(len, Ordering::Relaxed) + len;
        drop(o);
        let class = self.class();
        if total as u64 > self.limits.threshold(class)
            || self.soft_since_ms.load(Ordering::Relaxed) != 0
        {
            self.check_limits(class, total);
        }
        let pushed = Pushed {
            congested,
            backed_up: o_congested && self.socket_full.load(Ordering::Relaxed),
        };
        (pushed, queued)
    }

    /// Writes what is queued for this client straight to its socket, from
    /// the calling task (the worker writing out its deferred deliveries,
    /// see `net::delivery`): one vectored write for everything queued, and
    /// no task wake-up when the socket takes it all, which it does unless
    /// the peer reads slowly. What is left (socket full, TLS, an error) is
    /// the client's task's to write: it is woken. Returns the bytes written.
    pub(crate) fn write_queued(&self) -> usize {
        let mut guard = self.outbox.lock();
        let o = &mut *guard;
        if o.closed || o.writing || o.chunks.is_empty() {
            // Closing, or its task is writing and will take these bytes
            // before it sleeps, or nothing to do.
            return 0;
        }
        let mut total = 0;
        if let Some(socket) = &o.socket {
            loop {
                let mut iov: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
                let (n, want) = fill_iov(&o.chunks, &mut iov);
                let sent = socket.send(&iov[..n]);
                if sent == 0 {
                    // Full (EAGAIN), interrupted or failed: the task retries
                    // and sees the error itself.
                    break;
                }
                total += sent;
                o.bytes -= sent;
                consume(&mut o.chunks, sent);
                if o.chunks.is_empty() || sent < want {
                    break;
                }
            }
            if o.chunks.is_empty() {
                o.since = None;
                o.congested = false;
            }
        }
        let rest = !o.chunks.is_empty();
        drop(guard);
        if total > 0 {
            self.pending_bytes.fetch_sub(total, Ordering::Relaxed);
        }
        if rest {
            self.wake();
        }
        total
    }

    /// Lets [`write_queued`](Self::write_queued) write to this socket
    /// (called by the connection task, before it serves).
    pub(crate) fn share_socket(&self, socket: SharedSocket) {
        let mut o = self.outbox.lock();
        if !o.closed {
            o.socket = Some(SocketShare::new(socket));
        }
    }

    /// Wakes the connection task (bytes to write, or a kill to notice).
    #[inline]
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when this client's task, having found its socket full, has
    /// written everything it held (see [`Pushed::backed_up`]).
    pub async fn drained(&self) {
        self.drained.notified().await
    }

    /// True while the congestion a publisher saw lasts: the bytes still
    /// wait for this client's task, and that task is able to write (its
    /// socket is not full).
    pub fn awaiting_writer(&self) -> bool {
        !self.socket_full.load(Ordering::Relaxed)
            && !self.is_killed()
            && self.outbox.lock().congested
    }

    /// Set by the client's task when its socket stops taking bytes, cleared
    /// when everything queued was written (which releases a publisher pacing
    /// itself on this client, see [`drained`](Self::drained)).
    pub(crate) fn set_socket_full(&self, full: bool) {
        let was = self.socket_full.swap(full, Ordering::Relaxed);
        if was && !full {
            self.drained.notify_one();
        }
    }

    /// The slow path of [`push`](Self::push): applies the output-buffer limits.
    #[cold]
    fn check_limits(&self, class: ClientClass, queued: usize) {
        let since = self.soft_since_ms.load(Ordering::Relaxed);
        match self.limits.check(class, queued, since, now_ms()) {
            Verdict::Ok => {}
            Verdict::SoftStarted => self.soft_since_ms.store(now_ms(), Ordering::Relaxed),
            Verdict::SoftCleared => self.soft_since_ms.store(0, Ordering::Relaxed),
            Verdict::Close => self.overflow(),
        }
    }

    /// Closes the client for going over its output-buffer limit (Redis's
    /// CLOSE_ASAP): what is queued is freed now, later bytes are dropped,
    /// and its task closes the connection without writing more. Called
    /// by a push that passed the limit, or by the client's own task when
    /// the reply it is building would.
    pub fn overflow(&self) {
        if !self.overflowed.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                self.id,
                self.addr
            );
        }
        self.close_outbox();
        self.kill();
    }

    /// Applies the soft output limit again to a client over it: one that
    /// receives nothing more must still be closed once its time is up, as
    /// Redis's clientsCron closes it (pushes alone would never notice).
    pub fn recheck_soft_limit(&self) {
        if self.soft_since_ms.load(Ordering::Relaxed) != 0 {
            self.check_limits(self.class(), self.pending_bytes());
        }
    }

    /// The limit class in force.
    #[inline]
    pub fn class(&self) -> ClientClass {
        match self.class.load(Ordering::Relaxed) {
            c if c == ClientClass::PubSub as u8 => ClientClass::PubSub,
            c if c == ClientClass::Replica as u8 => ClientClass::Replica,
            _ => ClientClass::Normal,
        }
    }

    /// Records whether the client has subscriptions (pubsub limit class).
    #[inline]
    pub fn set_class(&self, class: ClientClass) {
        self.class.store(class as u8, Ordering::Relaxed);
    }

    /// True when the output-buffer limit closed this client.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Marks the client as waiting in a blocking command, or not.
    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::Relaxed);
    }

    /// True while the client waits in a blocking command.
    pub fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::Relaxed)
    }

    /// The server-wide limits this client obeys.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Moves every queued chunk to `into` (the task's write list).
    pub(crate) fn take(&self, into: &mut VecDeque<Bytes>) {
        let mut o = self.outbox.lock();
        if into.is_empty() {
            std::mem::swap(into, &mut o.chunks);
        } else {
            into.extend(o.chunks.drain(..));
        }
        o.bytes = 0;
        o.since = None;
        o.congested = false;
        // Until the task finds nothing left to take, it is the writer.
        o.writing = !into.is_empty();
    }

    /// Records that `n` queued bytes reached the socket.
    pub(crate) fn written(&self, n: usize) {
        self.pending_bytes.fetch_sub(n, Ordering::Relaxed);
    }

    /// Bytes queued for this client and not yet written (`omem`).
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes.load(Ordering::Relaxed)
    }

    /// Records the query buffer's capacity (once per batch).
    pub(crate) fn set_query_buffer_size(&self, n: usize) {
        self.query_buffer.store(n, Ordering::Relaxed);
    }

    /// Capacity of the query buffer as of the last batch (used memory).
    pub fn query_buffer_size(&self) -> usize {
        self.query_buffer.load(Ordering::Relaxed)
    }

    /// Stops accepting pushes (the connection is going away).
    pub(crate) fn close_outbox(&self) {
        let mut o = self.outbox.lock();
        o.closed = true;
        o.socket = None;
        let dropped = std::mem::take(&mut o.chunks);
        let bytes = std::mem::take(&mut o.bytes);
        drop(o);
        self.pending_bytes.fetch_sub(bytes, Ordering::Relaxed);
        drop(dropped);
    }

    /// Asks the connection task to close the connection (CLIENT KILL, shutdown).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// True once [`kill`](Self::kill) was called.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Asks the connection task to drop its read buffer, if it is idle
    /// then (see `trim_read_buffer`).
    pub fn ask_trim_read_buffer(&self) {
        self.trim_read_buffer.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Takes a pending [`ask_trim_read_buffer`](Self::ask_trim_read_buffer).
    pub(crate) fn take_trim_request(&self) -> bool {
        // Checked on every wake-up (each delivered message): a plain load
        // first, the write only when a request is there.
        self.trim_read_buffer.load(Ordering::Relaxed)
            && self.trim_read_buffer.swap(false, Ordering::AcqRel)
    }

    /// Resolves when bytes were pushed or the client was killed.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }

    /// Set by the task before it waits (bits of [`busy_service`]), cleared
    /// when it runs again.
    pub(crate) fn set_busy_service(&self, bits: u8) {
        self.busy_service.store(bits, Ordering::Relaxed);
    }

    /// See [`set_busy_service`](Self::set_busy_service).
    pub fn busy_service(&self) -> u8 {
        self.busy_service.load(Ordering::Relaxed)
    }

    /// Reads what the socket has (up to `limit` bytes buffered in all)
    /// into [`BusyInput`], then lets `f` answer from it. Only while the
    /// task cannot run and said [`busy_service::READY`]. The task is woken
    /// to run what `f` leaves. False when the peer closed or the socket
    /// failed (the task finds out itself).
    pub fn serve_busy_input(&self, limit: usize, f: impl FnOnce(&mut BusyInput)) -> bool {
        let mut input = self.busy_input.lock();
        let mut open = true;
        if !input.held {
            let outbox = self.outbox.lock();
            if let Some(socket) = &outbox.socket {
                while input.bytes.len() < limit {
                    let room = limit - input.bytes.len();
                    match socket.recv(&mut input.bytes, room) {
                        Ok(0) => {
                            open = false;
                            break;
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            open = false;
                            break;
                        }
                    }
                }
            }
        }
        if !input.bytes.is_empty() {
            f(&mut input);
        }
        if !input.bytes.is_empty() && !self.has_busy_input.swap(true, Ordering::Relaxed) {
            self.wake();
        }
        open
    }

    /// What [`serve_busy_input`](Self::serve_busy_input) left for the
    /// task, in order before anything it reads next.
    pub(crate) fn take_busy_input(&self) -> Option<BytesMut> {
        if !self.has_busy_input.load(Ordering::Relaxed) {
            return None;
        }
        self.has_busy_input.store(false, Ordering::Relaxed);
        let input = std::mem::take(&mut *self.busy_input.lock());
        Some(input.bytes)
    }

    /// Marks the client active now (for `idle=`).
    pub(crate) fn touch(&self) {
        self.last_active_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Seconds since the last command.
    pub fn idle_secs(&self) -> u64 {
        now_ms().saturating_sub(self.last_active_ms.load(Ordering::Relaxed)) / 1000
    }
}
