//! The user registry: users by name, the `default` user, and the figures
//! INFO and ACL LOG keep about denials.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use super::log;
use super::rules::{constant_time_eq, hash_password, Rules};

/// A user: shared by the registry and the connections authenticated as it.
pub struct User {
    /// Unique for the life of the process (never 0): how a connection
    /// records who it runs as, so that ACL changes find its connections
    /// (as Redis compares `c->user` pointers).
    pub id: u64,
    /// The name (binary-safe).
    pub name: Bytes,
    rules: RwLock<Rules>,
    /// All commands, keys and channels (checked first on every command).
    full: AtomicBool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User({})", String::from_utf8_lossy(&self.name))
    }
}

impl User {
    /// A user with the given rules.
    pub fn new(name: Bytes, rules: Rules) -> User {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let full = rules.unrestricted();
        User {
            id: NEXT_ID.fetch_add(1, Relaxed),
            name,
            rules: RwLock::new(rules),
            full: AtomicBool::new(full),
        }
    }

    /// True when the user may run every command on every key and channel:
    /// the one check an unrestricted user's commands pay.
    #[inline]
    pub fn is_unrestricted(&self) -> bool {
        self.full.load(Relaxed)
    }

    /// The current rules.
    pub fn rules(&self) -> RwLockReadGuard<'_, Rules> {
        self.rules.read()
    }

    /// Replaces the rules (ACL SETUSER, ACL LOAD, requirepass).
    pub fn set_rules(&self, rules: Rules) {
        let mut r = self.rules.write();
        self.full.store(rules.unrestricted(), Relaxed);
        *r = rules;
    }

    /// The name for CLIENT LIST and logs.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// Redis's `ACLCheckUserCredentials`, once the user is found.
    pub fn credentials_ok(&self, pass: &[u8]) -> bool {
        let r = self.rules();
        if !r.enabled {
            return false;
        }
        if r.nopass {
            return true;
        }
        let hashed = hash_password(pass);
        // Compare with every stored hash (no early exit).
        let mut ok = false;
        for p in &r.passwords {
            ok |= constant_time_eq(hashed.as_bytes(), p.as_bytes());
        }
        ok
    }
}

/// Counters for INFO stats (the names redis-server 7.2 gives them).
#[derive(Debug, Default)]
pub struct DeniedStats {
    /// Failed AUTH / HELLO AUTH.
    pub auth: AtomicU64,
    /// Commands refused by ACL.
    pub cmd: AtomicU64,
    /// Keys refused by ACL.
    pub key: AtomicU64,
    /// Channels refused by ACL.
    pub channel: AtomicU64,
}

impl DeniedStats {
    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in [&self.auth, &self.cmd, &self.key, &self.channel] {
            c.store(0, Relaxed);
        }
    }
}

/// The server's users, ACL LOG and counters.
pub struct Acl {
    users: RwLock<BTreeMap<Bytes, Arc<User>>>,
    default: Arc<User>,
    /// The `default` user needs a password or is off: new connections
    /// start unauthenticated.
    auth_required: AtomicBool,
    /// `acl-pubsub-default allchannels`.
    pubsub_all: AtomicBool,
    /// The `requirepass` last applied to the default user.
    requirepass: Mutex<String>,
    /// ACL LOG.
    pub log: Mutex<log::Log>,
    /// INFO counters.
    pub denied: DeniedStats,
    /// Serializes ACL SETUSER / DELUSER / LOAD (read, modify, write).
    pub admin: Mutex<()>,
}

impl Acl {
    /// The initial users: `default`, with `requirepass` as its password
    /// (none: `nopass`); `pubsub_all` is `acl-pubsub-default allchannels`.
    /// Users from the config file and the ACL file are loaded by
    /// `file::load_at_startup`.
    pub fn new(requirepass: &str, pubsub_all: bool) -> Acl {
        let default = Arc::new(User::new(
            Bytes::from_static(b"default"),
            Rules::default_user(),
        ));
        let mut users = BTreeMap::new();
        users.insert(default.name.clone(), default.clone());
        let acl = Acl {
            users: RwLock::new(users),
            default,
            auth_required: AtomicBool::new(false),
            pubsub_all: AtomicBool::new(false),
            requirepass: Mutex::new(String::new()),
            log: Mutex::new(log::Log::default()),
            denied: DeniedStats::default(),
            admin: Mutex::new(()),
        };
        acl.configure(requirepass, pubsub_all);
        acl
    }

    /// Takes the configured `requirepass` and `acl-pubsub-default
    /// allchannels` (at start and after CONFIG SET): a changed
    /// `requirepass` resets the default user's passwords to it, as Redis's
    /// `ACLUpdateDefaultUserPassword`.
    pub fn configure(&self, requirepass: &str, pubsub_all: bool) {
        self.pubsub_all.store(pubsub_all, Relaxed);
        let changed = *self.requirepass.lock() != requirepass;
        if changed {
            self.set_requirepass(requirepass);
        }
    }

    /// Redis's `ACLUpdateDefaultUserPassword`: the default user's
    /// passwords become `pass` (none: `nopass`). As in Redis, CONFIG SET
    /// calls it only when the value changes.
    fn set_requirepass(&self, pass: &str) {
        *self.requirepass.lock() = pass.to_string();
        let mut rules = self.default.rules().clone();
        let _ = rules.apply(b"resetpass", false);
        if pass.is_empty() {
            let _ = rules.apply(b"nopass", false);
        } else {
            let mut op = b">".to_vec();
            op.extend_from_slice(pass.as_bytes());
            let _ = rules.apply(&op, false);
        }
        self.default.set_rules(rules);
        self.refresh();
    }

    /// Recomputes what depends on the default user.
    fn refresh(&self) {
        let r = self.default.rules();
        self.auth_required.store(!r.nopass || !r.enabled, Relaxed);
    }

    /// `acl-pubsub-default allchannels`.
    pub fn pubsub_all(&self) -> bool {
        self.pubsub_all.load(Relaxed)
    }

    /// True when new connections must authenticate (Redis's `authRequired`
    /// without the client part).
    #[inline]
    pub fn auth_required(&self) -> bool {
        self.auth_required.load(Relaxed)
    }

    /// The `default` user.
    pub fn default_user(&self) -> &Arc<User> {
        &self.default
    }

    /// A user by name.
    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// Every user, in name order.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// Creates or replaces the rules of `name`; returns the user and its
    /// previous rules (None if it was created).
    pub fn set_user(&self, name: &[u8], rules: Rules) -> (Arc<User>, Option<Rules>) {
        let mut users = self.users.write();
        let result = match users.get(name) {
            Some(u) => {
                let old = u.rules().clone();
                u.set_rules(rules);
                (u.clone(), Some(old))
            }
            None => {
                let u = Arc::new(User::new(Bytes::copy_from_slice(name), rules));
                users.insert(u.name.clone(), u.clone());
                (u, None)
            }
        };
        drop(users);
        self.refresh();
        result
    }

    /// Removes a user (not `default`); returns it if it existed.
    pub fn remove_user(&self, name: &[u8]) -> Option<Arc<User>> {
        if name == b"default" {
            return None;
        }
        self.users.write().remove(name)
    }

    /// Replaces every user (ACL LOAD): the default user's rules are copied
    /// into the existing default user. Returns the users that were replaced.
    pub fn replace_all(&self, mut new: BTreeMap<Bytes, Rules>) -> Vec<Arc<User>> {
        let default_rules = new
            .remove(&b"default"[..])
            .unwrap_or_else(Rules::default_user);
        self.default.set_rules(default_rules);
        let mut map = BTreeMap::new();
        map.insert(self.default.name.clone(), self.default.clone());
        for (name, rules) in new {
            map.insert(name.clone(), Arc::new(User::new(name, rules)));
        }
        let old = std::mem::replace(&mut *self.users.write(), map);
        self.refresh();
        old.into_values()
            .filter(|u| !Arc::ptr_eq(u, &self.default))
            .collect()
    }
}
