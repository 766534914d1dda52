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

pub mod acl;
pub mod catalog;
pub mod command;
pub mod config;
pub mod engine;
pub mod net;
pub mod observe;
pub mod persist;
pub mod protocol;
pub mod pubsub;
pub mod server;
pub mod state;
pub mod store;
pub mod util;
