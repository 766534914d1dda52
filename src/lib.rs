//! herald: a Redis-compatible pub/sub and messaging server.
//!
//! # Layout
//!
//! Modules form layers; each depends only on layers below it (checked by
//! `scripts/test.sh`). From the bottom:
//!
//! ```text
//!  server      wiring: one boot, the runtime, accept loop, periodic duties
//!  command     parse requests, check them, run them, build replies; Client
//!  state       Shared: what every connection shares (engine, clients, acl, ...)
//!  observe     slow log, latency monitor, MONITOR, CLIENT PAUSE, INFO samples
//!  scripting   Lua 5.1 (mlua) as Redis 7.0 sets it up: sandbox, redis.*,
//!              cjson / cmsgpack / bit / struct, the script cache, FUNCTION
//!              libraries, the running script; the scripting thread
//!  engine      run a command's work against the keyspace; publish, serve,
//!              log its effects; blocked clients; active expiry; eviction
//!  persist     the append-only file (Redis 7's multi-part AOF)
//!  pubsub      channel / pattern / shard registries, encode-once messages
//!  tracking    client-side caching: tracked keys, BCAST prefixes,
//!              invalidation messages
//!  store       pure data: databases, values, expiry and eviction sampling
//!  net         sockets, TLS, the connection loop, outboxes, deliveries;
//!              knows commands only as the `Session` trait
//!  config      redis.conf options, flags, CONFIG GET / SET
//!  acl         ACL rules, users, checks, ACL file and log
//!  catalog     Redis 7.0.15's command metadata (arity, flags, key specs)
//!  logging     redis-server's log line format
//!  protocol    RESP2/RESP3 frames and the request parser
//!  util        clocks, C-string helpers, the glob matcher, compact map keys
//! ```
//!
//! - `util`, `protocol`, `catalog`: leaves.
//! - `acl` knows rules and users, no client; `config` uses its grammar to
//!   check `user` lines as it reads them (as Redis does).
//! - `net` owns every socket and every byte on its way out: the
//!   `Session` trait is how it hands a request to the
//!   command layer.
//! - `store` knows no client, command or frame: a command's effects are
//!   recorded on its database as data (events, propagation record, keys
//!   made ready), and `engine` turns them into deliveries, AOF records and
//!   served blocked clients.
//! - `command` holds the per-client state ([`Client`]) and the handlers.
//! - `server` is the only module that names them all.
//!
//! The path of a PUBLISH: `net::connection` reads and parses it and hands
//! it to the client's session; `command::execute` checks it and calls
//! `command::pubsub::publish`; `pubsub::PubSub::publish_from` encodes the
//! message once and the registries push it into each subscriber's outbox
//! (`net::handle::ClientHandle::deliver`); the worker writes the outboxes
//! out before it parks (`net::delivery`). See `docs/architecture.md`.
//!
//! # Embedding
//!
//! [`server::start`] runs a server on a background thread (tests use it
//! with port 0); [`server::run`] is the binary's foreground server. To run
//! commands without a connection: [`Shared::new`], [`Client::internal`] and
//! [`execute`].

pub mod config;
pub mod logging;
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
pub(crate) mod repl;
pub(crate) mod replica;
pub(crate) mod scripting;
pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod tracking;

/// Running commands in-process, without a connection (tests, fuzzing):
/// the server's state, an internal client and the command path it runs
/// through, the dispatch table, and the AOF loader's command runner.
pub use command::{execute, replay::Replayer, Client, TABLE};
/// Encode-once pub/sub messages (benchmarks measure their encoding).
pub use pubsub::message;
pub use state::Shared;
