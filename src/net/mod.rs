//! The network side of the server: sockets, the connection loop, and every
//! byte on its way to a client.
//!
//! - [`listener`]: binding the configured addresses (and the Unix socket)
//!   and preparing accepted sockets.
//! - [`addr`]: a client's address, TCP or the Unix socket.
//! - [`transport`]: plain TCP, a Unix socket or TLS behind the same
//!   readiness calls.
//! - [`connection`]: one task per client: read, hand each request to the
//!   client's [`Session`], write what its outbox holds.
//! - [`handle`]: a client as others see it ([`ClientHandle`]): the outbox
//!   everything bound for the client goes through, and CLIENT LIST's facts.
//! - [`delivery`]: the worker's queue of deferred deliveries, written out
//!   when it is about to park.
//! - [`pressure`]: what a batch's publishes found in their subscribers'
//!   queues (publisher back-pressure).
//! - [`limits`]: output- and query-buffer limits.
//! - [`clients`]: the connected clients, by id.
//!
//! This layer knows no command, keyspace or subscription: what a request
//! means is the [`Session`]'s business, a trait the command layer
//! implements. Everything above may push bytes into a [`ClientHandle`].

pub mod addr;
pub mod clients;
pub mod connection;
pub mod delivery;
pub mod handle;
pub mod limits;
pub mod listener;
pub mod pressure;
pub mod transport;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;

pub use addr::ClientAddr;
pub use clients::Clients;
pub use connection::Connection;
pub use pressure::Pressure;

/// What the connection loop asks of the client it serves: the command
/// layer's per-client state implements it. The loop owns the socket and
/// the read buffer; the session owns what requests mean and queues its
/// replies in the client's outbox.
pub trait Session: Send + 'static {
    /// Runs one request (a command and its arguments, slices of the read
    /// buffer); its reply is gathered until [`end_batch`](Self::end_batch).
    fn execute(&mut self, args: Vec<Bytes>);

    /// A read batch begins, with `buffered` bytes read and not yet run in
    /// a buffer of `capacity`: the session may run a request it postponed,
    /// and shows these as its own `qbuf` while the batch runs (as Redis,
    /// whose query buffer keeps a batch's bytes until all of it ran).
    fn start_batch(&mut self, buffered: usize, capacity: usize);

    /// A read batch ended: queue the batch's replies (one outbox push) and
    /// note the read buffer's size (`qbuf`, used memory).
    fn end_batch(&mut self, query_buffer: usize, capacity: usize);

    /// False while the session must not run requests: it is suspended
    /// (blocked on keys, postponed by CLIENT PAUSE) or closing.
    fn accepts_requests(&self) -> bool;

    /// True while the session is suspended (see [`resumed`](Self::resumed)).
    fn is_suspended(&self) -> bool;

    /// Resolves when a suspended session may go on (served, timed out, the
    /// pause changed); the loop then calls [`resume`](Self::resume).
    fn resumed(&mut self) -> impl Future<Output = ()> + Send + '_;

    /// After [`resumed`](Self::resumed) (or any other wake-up while
    /// suspended): settles the suspension (a deadline that passed gives
    /// the timeout reply). Returns true when buffered requests may run.
    fn resume(&mut self) -> bool;

    /// True when the connection must close once its replies are written
    /// (QUIT, a protocol error).
    fn closing(&self) -> bool;

    /// True while the client has not authenticated where a password is
    /// required: the parser then refuses large requests, as Redis does.
    fn unauthenticated(&self) -> bool;

    /// A request could not be parsed: reply with Redis's error `msg`
    /// (without its `ERR ` code) and close.
    fn protocol_error(&mut self, msg: &str);

    /// True when the replies queued by the last batch may leave only once
    /// the effects they acknowledge are durable (see
    /// [`durable`](Self::durable)).
    fn awaits_durability(&self) -> bool;

    /// Resolves once those effects are durable: true, or false if they can
    /// never be (the connection then closes without acknowledging).
    fn durable(&mut self) -> impl Future<Output = bool> + Send + '_;

    /// What the last batch's publishes found (publisher back-pressure).
    fn pressure(&mut self) -> &mut Pressure;

    /// The connection is over: release everything the session holds.
    fn closed(&mut self);

    /// What the worker may do for this client while a script runs long on
    /// it, with the task waiting for requests (bits of
    /// [`handle::busy_service`]; 0: nothing, its requests wait for the
    /// script's end).
    fn busy_service(&self) -> u8 {
        0
    }
}

/// Connection and traffic counters (INFO stats), shared by every
/// connection; relaxed atomics bumped once per system call, never per byte.
#[derive(Debug, Default)]
pub struct Counters {
    pub total_connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_net_input_bytes: AtomicU64,
    pub total_net_output_bytes: AtomicU64,
    /// Clients closed for exceeding `client-output-buffer-limit`.
    pub client_output_buffer_limit_disconnections: AtomicU64,
    /// Clients closed for exceeding `client-query-buffer-limit`.
    pub client_query_buffer_limit_disconnections: AtomicU64,
}

impl Counters {
    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in [
            &self.total_connections_received,
            &self.rejected_connections,
            &self.total_net_input_bytes,
            &self.total_net_output_bytes,
            &self.client_output_buffer_limit_disconnections,
            &self.client_query_buffer_limit_disconnections,
        ] {
            c.store(0, Relaxed);
        }
    }
}
