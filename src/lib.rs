//! herald: a Redis-compatible pub/sub and messaging server.
//!
//! # Layout
//!
//! - [`protocol`]: RESP2/RESP3 reply values ([`protocol::Frame`]) and the
//!   request parser.
//! - [`connection`]: one task per client: reads requests, runs them, writes
//!   what its outbox holds ([`connection::handle::ClientHandle`]).
//! - [`command`]: the dispatch table and one file per command family.
//! - [`pubsub`]: channel, pattern and shard-channel registries, the glob
//!   matcher, encode-once messages.
//! - [`store`]: the keyspace.
//! - [`state`]: the server-wide state shared by all connections.
//! - [`config`]: redis.conf-style options, CONFIG GET / SET.
//! - [`acl`]: users, AUTH, ACL rules and their checks, ACL LOG.
//! - [`server`]: listeners, accept loop, start and shutdown.
//! - [`persist`]: the append-only file (Redis 7's multi-part AOF).
//! - [`observe`]: slow log, latency monitor, MONITOR, CLIENT PAUSE and
//!   the sampled figures of INFO.
//!
//! The path of a PUBLISH: [`connection::Connection`] reads and parses it,
//! [`command::execute`] dispatches to [`command::pubsub::publish`], which
//! calls [`pubsub::PubSub::publish`]; the registries push the encoded frame
//! into each subscriber's outbox, and each subscriber's own connection task
//! writes it out. See `docs/architecture.md`.

pub mod config;
pub mod persist;
pub mod protocol;
pub mod server;
pub mod util;

pub(crate) mod acl;
pub(crate) mod catalog;
pub(crate) mod command;
pub(crate) mod engine;
pub(crate) mod net;
pub(crate) mod observe;
pub(crate) mod pubsub;
pub(crate) mod state;
pub(crate) mod store;

/// Running commands in-process, without a connection (tests, fuzzing):
/// the server's state, an internal client and the command path it runs
/// through, the dispatch table, and the AOF loader's command runner.
pub use command::{execute, replay::Replayer, Client, TABLE};
/// Encode-once pub/sub messages (benchmarks measure their encoding).
pub use pubsub::message;
pub use state::Shared;
