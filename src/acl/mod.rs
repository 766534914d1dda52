//! Authentication and access control lists, as redis-server 7.0 does them.
//!
//! # Data model
//!
//! - [`Acl`] ([`users`], one per server) holds the users
//!   by name (a `BTreeMap`, so `ACL LIST` / `USERS` come in Redis's rax
//!   order), the `default` user (never removed: `ACL LOAD` copies the new
//!   rules into it, as Redis does), the ACL LOG and the denial counters.
//! - A [`User`] is shared (`Arc`) by the registry and by every connection
//!   authenticated as it. Its [`Rules`] sit behind a lock and are replaced
//!   in place by `ACL SETUSER`, so a change applies to the user's open
//!   connections at their next command, as in Redis. `User::full` caches
//!   "all commands, all keys, all channels" for the fast path.
//! - [`Rules`] ([`rules`]): flags (`on`/`off`, `nopass`, payload sanitizing), password
//!   hashes (SHA-256, lowercase hex, as `ACL GETUSER` shows them; compared
//!   in constant time), and selectors. The first selector is the root one
//!   (the permissions written outside parentheses); Redis 7.0's extra
//!   selectors `(...)` are supported too.
//! - A [`Selector`]: a bitmap of allowed commands over Redis's whole
//!   command table ([`mod@table`]; bit 1023 means "future commands", set only
//!   by `+@all`), allowed first arguments (`+select|0`), key patterns with
//!   read/write permissions (`~`, `%R~`, `%W~`) and channel patterns (`&`).
//!
//! # The check path and its cost
//!
//! The command layer (`command::auth`) calls, after the arity check and in
//! Redis's `processCommand` order: `auth_required` (a bool on the client,
//! then an atomic: nothing for an authenticated client) and
//! `check_command`, whose first test is one relaxed atomic load of
//! [`User::is_unrestricted`]: for the `default` user (all commands, keys
//! and channels) that is the whole cost. Only restricted users take the
//! slow path ([`check`]): one hash lookup of the command id, a bit test,
//! key extraction from the command's key specs and glob matches against
//! the patterns, exactly as Redis's `ACLCheckAllPerm`.
//!
//! # Layout
//!
//! - [`rules`]: rule text in, permissions out (`ACL SETUSER`'s grammar,
//!   `ACL GETUSER` / `LIST`'s descriptions);
//! - [`users`]: the user registry;
//! - [`check`]: a user's verdict on a command;
//! - [`file`]: `user` lines of the config file and the `aclfile`;
//! - [`log`]: ACL LOG;
//! - [`table`]: the command ids the permission bitmaps index.
//!
//! This module knows no client or connection: the command layer applies
//! its verdicts to clients, logs denials with their client's details, and
//! closes the connections of users whose rules change.
//!
//! # Killing clients
//!
//! As 7.0: `ACL DELUSER` and `ACL LOAD` close every connection
//! authenticated as a deleted (or replaced) user; `ACL SETUSER` closes the
//! user's subscribers whose subscriptions its new channel permissions no
//! longer allow (`ACLKillPubsubClientsIfNeeded`). A closed client's queued
//! output is dropped and its subscriptions leave the registries before the
//! command that closed it replies, so nothing more reaches it. (Turning a
//! user `off` keeps its open connections, as in Redis.)

pub mod check;
pub mod file;
pub mod log;
pub mod rules;
pub mod table;
pub mod users;

pub use rules::{Denied, Rules, Selector};
pub use users::{Acl, User};

/// `-NOAUTH Authentication required.` (Redis's `shared.noautherr`).
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// Redis's reply to bad credentials (AUTH, HELLO AUTH).
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Redis 7.0's reply to a client refused by protected mode (sent, then
/// the connection is closed).
pub const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode (Redis 7.0's `clientAcceptHandler`): with
/// `protected-mode yes` (`protected_mode`) and no password for the default user, only local
/// clients are served. As Redis's `islocalClient`, "local" is the peer
/// address 127.0.0.1 or ::1 exactly (not the rest of 127.0.0.0/8).
pub fn protected_mode_denies(acl: &Acl, protected_mode: bool, peer: std::net::IpAddr) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr};
    if peer == Ipv4Addr::LOCALHOST || peer == Ipv6Addr::LOCALHOST {
        return false;
    }
    if !acl.default_user().rules().nopass {
        return false;
    }
    protected_mode
}
