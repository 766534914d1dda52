//! Authentication and access control lists, as redis-server 7.0 does them.
//!
//! # Data model
//!
//! - [`Acl`] (one per server, in [`crate::state::Shared`]) holds the users
//!   by name (a `BTreeMap`, so `ACL LIST` / `USERS` come in Redis's rax
//!   order), the `default` user (never removed: `ACL LOAD` copies the new
//!   rules into it, as Redis does), the ACL LOG and the denial counters.
//! - A [`User`] is shared (`Arc`) by the registry and by every connection
//!   authenticated as it. Its [`Rules`] sit behind a lock and are replaced
//!   in place by `ACL SETUSER`, so a change applies to the user's open
//!   connections at their next command, as in Redis. `User::full` caches
//!   "all commands, all keys, all channels" for the fast path.
//! - [`Rules`]: flags (`on`/`off`, `nopass`, payload sanitizing), password
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
//! [`crate::command`] calls, after the arity check and in Redis's
//! `processCommand` order: [`auth_required`] (a bool on the client, then an
//! atomic: nothing for an authenticated client) and [`check_command`],
//! whose first test is one relaxed atomic load of `User::full`: for the
//! `default` user (all commands, keys and channels) that is the whole
//! cost. Only restricted users take the slow path: one hash lookup of the
//! command id, a bit test, key extraction from the command's key specs and
//! glob matches against the patterns, exactly as Redis's `ACLCheckAllPerm`.
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

pub mod log;
pub mod table;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use crate::command::Client;
use crate::net::handle::ClientHandle;
use crate::state::Shared;
use table::{table, BITS, FUTURE_BIT};

/// A permission bitmap over command ids.
type Bits = [u64; BITS / 64];

/// `-NOAUTH Authentication required.` (Redis's `shared.noautherr`).
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// Redis's reply to bad credentials (AUTH, HELLO AUTH).
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Why a rule could not be applied (Redis's errno values in `ACLSetUser`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// EINVAL
    Syntax,
    /// ENOENT
    Unknown,
    /// EEXIST
    KeyAfterAll,
    /// EISDIR
    ChannelAfterAll,
    /// ENODEV
    NoSuchPassword,
    /// EBADMSG
    BadHash,
    /// ECHILD
    FirstArgOfSubcommand,
    /// EALREADY (config files)
    Duplicate,
}

impl RuleError {
    /// Redis's `ACLSetUserStringError` text.
    pub fn message(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::Duplicate => "Duplicate user found. A user can only be defined once in config files",
            RuleError::FirstArgOfSubcommand => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

use crate::util::c_str as cstr;

/// `strcasecmp(op, word) == 0`.
fn kw(op: &[u8], word: &str) -> bool {
    cstr(op).eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's `ACLStringHasSpaces`: whitespace (C `isspace`) or NUL.
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0))
}

/// SHA-256 of a password, as lowercase hex (Redis's `ACLHashPassword`).
pub fn hash_password(pass: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(pass);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        out.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    out
}

/// Compares two strings in time that depends only on their lengths (both
/// are 64-character hashes here), so a timing attack learns nothing about
/// how much of a stored hash a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Redis's `ACLCheckPasswordHash`: 64 lowercase hex digits.
fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64
        && h.iter()
            .all(|&c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// A key pattern and the accesses it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    /// The glob.
    pub pattern: Vec<u8>,
    /// `%R~` (or plain `~`).
    pub read: bool,
    /// `%W~` (or plain `~`).
    pub write: bool,
}

impl KeyPattern {
    /// `~pat`, `%R~pat` or `%W~pat` (Redis's `sdsCatPatternString`).
    fn describe(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match (self.read, self.write) {
            (true, false) => b"%R~",
            (false, true) => b"%W~",
            _ => b"~",
        });
        out.extend_from_slice(&self.pattern);
    }
}

/// One set of permissions (Redis's `aclSelector`): the root selector of a
/// user, or one of its `(...)` selectors.
#[derive(Debug, Clone)]
pub struct Selector {
    root: bool,
    allkeys: bool,
    allchannels: bool,
    allcommands: bool,
    bits: Bits,
    /// Command id → first arguments allowed although the command is not.
    firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    keys: Vec<KeyPattern>,
    channels: Vec<Vec<u8>>,
}

impl Selector {
    /// An empty selector (Redis's `ACLCreateSelector`): no commands, keys
    /// or channels, except all channels under `acl-pubsub-default
    /// allchannels`.
    fn new(root: bool, pubsub_all: bool) -> Selector {
        Selector {
            root,
            allkeys: false,
            allchannels: pubsub_all,
            allcommands: false,
            bits: [0; BITS / 64],
            firstargs: BTreeMap::new(),
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    fn bit(&self, id: usize) -> bool {
        id < BITS && self.bits[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if id >= BITS {
            return;
        }
        if on {
            self.bits[id / 64] |= 1 << (id % 64);
        } else {
            self.bits[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    /// Redis's `ACLChangeSelectorPerm`: a command and all its subcommands.
    fn change_perm(&mut self, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.remove(&id);
        for &sub in &table().cmds[id].subs {
            self.set_bit(sub, allow);
        }
    }

    fn set_category(&mut self, cflag: u32, allow: bool) {
        for (id, cmd) in table().cmds.iter().enumerate() {
            if cmd.categories & cflag != 0 {
                self.change_perm(id, allow);
            }
        }
    }

    /// Commands of a category allowed / not allowed.
    fn count_category(&self, cflag: u32) -> (u64, u64) {
        let (mut on, mut off) = (0, 0);
        for (id, cmd) in table().cmds.iter().enumerate() {
            if cmd.categories & cflag != 0 {
                if self.bit(id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    /// Redis's `ACLSetSelector`: applies one selector rule.
    fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let t = table();
        let first = op.first().copied().unwrap_or(0);
        let second = op.get(1).copied().unwrap_or(0);
        if kw(op, "allkeys") || kw(op, "~*") {
            self.allkeys = true;
            self.keys.clear();
        } else if kw(op, "resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if kw(op, "allchannels") || kw(op, "&*") {
            self.allchannels = true;
            self.channels.clear();
        } else if kw(op, "resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if kw(op, "allcommands") || kw(op, "+@all") {
            self.bits = [u64::MAX; BITS / 64];
            self.allcommands = true;
            self.firstargs.clear();
        } else if kw(op, "nocommands") || kw(op, "-@all") {
            self.bits = [0; BITS / 64];
            self.allcommands = false;
            self.firstargs.clear();
        } else if first == b'~' || first == b'%' {
            if self.allkeys {
                return Err(RuleError::KeyAfterAll);
            }
            let (mut read, mut write) = (false, false);
            let mut offset = 1;
            if first == b'%' {
                while offset < op.len() {
                    let ch = op[offset];
                    if ch.eq_ignore_ascii_case(&b'R') && !read {
                        read = true;
                    } else if ch.eq_ignore_ascii_case(&b'W') && !write {
                        write = true;
                    } else if ch == b'~' {
                        offset += 1;
                        break;
                    } else {
                        return Err(RuleError::Syntax);
                    }
                    offset += 1;
                }
                // `%~pat` has no permission at all (redis-server 7.0
                // accepts it and then panics describing it).
                if !read && !write {
                    return Err(RuleError::Syntax);
                }
            } else {
                read = true;
                write = true;
            }
            let pattern = &op[offset.min(op.len())..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            match self.keys.iter_mut().find(|k| k.pattern == pattern) {
                Some(k) => {
                    k.read |= read;
                    k.write |= write;
                }
                None => self.keys.push(KeyPattern {
                    pattern: pattern.to_vec(),
                    read,
                    write,
                }),
            }
            self.allkeys = false;
        } else if first == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelAfterAll);
            }
            let pattern = &op[1..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pattern) {
                self.channels.push(pattern.to_vec());
            }
            self.allchannels = false;
        } else if first == b'+' && second != b'@' {
            let name = &cstr(op)[1..];
            match name.iter().rposition(|&b| b == b'|') {
                None => {
                    let id = t.lookup(name).ok_or(RuleError::Unknown)?;
                    self.change_perm(id, true);
                }
                Some(bar) => {
                    let (base, sub) = (&name[..bar], &name[bar + 1..]);
                    let id = t.lookup(base).ok_or(RuleError::Unknown)?;
                    if t.cmds[id].parent.is_some() {
                        return Err(RuleError::FirstArgOfSubcommand);
                    }
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if !t.cmds[id].subs.is_empty() {
                        let sid = t.lookup(name).ok_or(RuleError::Unknown)?;
                        self.change_perm(sid, true);
                    } else {
                        tracing::warn!(
                            "Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{})",
                            String::from_utf8_lossy(name)
                        );
                        let list = self.firstargs.entry(id).or_default();
                        if !list.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                            list.push(sub.to_vec());
                        }
                    }
                }
            }
        } else if first == b'-' && second != b'@' {
            let id = t.lookup(&cstr(op)[1..]).ok_or(RuleError::Unknown)?;
            self.change_perm(id, false);
        } else if (first == b'+' || first == b'-') && second == b'@' {
            let cflag = table::category(&cstr(op)[2..]).ok_or(RuleError::Unknown)?;
            self.set_category(cflag, first == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// Redis's `ACLDescribeSelectorCommandRules` (7.0): `+@all` or `-@all`,
    /// then the categories that best fit the bitmap, then single commands.
    fn describe_commands(&self) -> Vec<u8> {
        let t = table();
        let mut rules = Vec::new();
        let mut fake = Selector::new(false, false);
        let additive = !self.bit(FUTURE_BIT);
        if additive {
            rules.extend_from_slice(b"-@all ");
            let _ = fake.apply(b"-@all");
        } else {
            rules.extend_from_slice(b"+@all ");
            let _ = fake.apply(b"+@all");
        }
        let mut temp = Selector::new(false, false);
        temp.bits = self.bits;
        let mut applied = [false; table::CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (i32::MAX as u64, 0);
            for (j, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_category(1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            fake.set_category(1 << j, additive);
            temp.set_category(1 << j, !additive);
            rules.extend_from_slice(if additive { b"+@" } else { b"-@" });
            rules.extend_from_slice(table::CATEGORIES[j].as_bytes());
            rules.push(b' ');
            applied[j] = true;
        }
        self.describe_single(&mut fake, &mut rules, &t.top);
        rules.pop();
        if fake.bits != self.bits {
            tracing::warn!(
                "ACL description does not reproduce the bitmap: '{}'",
                String::from_utf8_lossy(&rules)
            );
        }
        rules
    }

    fn describe_single(&self, fake: &mut Selector, rules: &mut Vec<u8>, ids: &[usize]) {
        let t = table();
        for &id in ids {
            let cmd = &t.cmds[id];
            let userbit = self.bit(id);
            if userbit != fake.bit(id) {
                rules.push(if userbit { b'+' } else { b'-' });
                rules.extend_from_slice(cmd.name.as_bytes());
                rules.push(b' ');
                fake.change_perm(id, userbit);
            }
            if !cmd.subs.is_empty() {
                self.describe_single(fake, rules, &cmd.subs);
            }
            if !userbit {
                for a in self.firstargs.get(&id).into_iter().flatten() {
                    rules.push(b'+');
                    rules.extend_from_slice(cmd.name.as_bytes());
                    rules.push(b'|');
                    rules.extend_from_slice(a);
                    rules.push(b' ');
                }
            }
        }
    }

    /// Redis's `ACLDescribeSelector`: keys, channels, commands.
    fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.allkeys {
            out.extend_from_slice(b"~* ");
        } else {
            for k in &self.keys {
                k.describe(&mut out);
                out.push(b' ');
            }
        }
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for ch in &self.channels {
                out.push(b'&');
                out.extend_from_slice(ch);
                out.push(b' ');
            }
        }
        out.extend(self.describe_commands());
        out
    }

    /// The `keys` field of ACL GETUSER.
    pub fn keys_field(&self) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            k.describe(&mut out);
        }
        out
    }

    /// The `channels` field of ACL GETUSER.
    pub fn channels_field(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, ch) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(ch);
        }
        out
    }

    /// The `commands` field of ACL GETUSER.
    pub fn commands_field(&self) -> Vec<u8> {
        self.describe_commands()
    }

    /// Redis's `ACLSelectorCheckKey`.
    fn check_key(&self, key: &[u8], read: bool, write: bool) -> bool {
        if self.allkeys {
            return true;
        }
        self.keys.iter().any(|p| {
            (!read || p.read) && (!write || p.write) && crate::util::glob::matches(&p.pattern, key)
        })
    }

    /// Redis's `ACLSelectorCheckCmd`.
    fn check_cmd(&self, id: usize, args: &[Bytes], keys: &mut KeyCache) -> Result<(), Denied> {
        let t = table();
        let cmd = &t.cmds[id];
        if !self.allcommands && !cmd.no_auth && !self.bit(id) {
            let idx = if cmd.parent.is_some() { 2 } else { 1 };
            let allowed = args.len() >= 2
                && self.firstargs.get(&id).is_some_and(|list| {
                    args.get(idx)
                        .is_some_and(|a| list.iter().any(|x| cstr(a).eq_ignore_ascii_case(x)))
                });
            if !allowed {
                return Err(Denied::Command);
            }
        }
        if !self.allkeys {
            for &(pos, read, write) in keys.get(args) {
                if !self.check_key(&args[pos], read, write) {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.allchannels {
            let (range, literal) = match cmd.name {
                "publish" | "spublish" => (1..2.min(args.len()), false),
                "subscribe" | "ssubscribe" => (1..args.len(), false),
                "psubscribe" => (1..args.len(), true),
                _ => (0..0, false),
            };
            for j in range {
                if !channel_allowed(&self.channels, &args[j], literal) {
                    return Err(Denied::Channel(j));
                }
            }
        }
        Ok(())
    }
}

/// Redis's `ACLCheckChannelAgainstList`: a channel is allowed if a pattern
/// matches it; a pattern subscription (`literal`) only if it is literally
/// one of the allowed patterns.
fn channel_allowed(list: &[Vec<u8>], channel: &[u8], literal: bool) -> bool {
    list.iter().any(|p| {
        if literal {
            cstr(p) == cstr(channel)
        } else {
            crate::util::glob::matches(p, channel)
        }
    })
}

/// The keys of a command, found once for all selectors.
struct KeyCache(Option<Vec<(usize, bool, bool)>>);

impl KeyCache {
    fn get(&mut self, args: &[Bytes]) -> &[(usize, bool, bool)] {
        self.0
            .get_or_insert_with(|| crate::catalog::acl_key_access(args))
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The command (or subcommand) is not allowed.
    Command,
    /// The key at this argument index is not allowed.
    Key(usize),
    /// The channel at this argument index is not allowed.
    Channel(usize),
}

impl Denied {
    /// Redis's order when selectors disagree (`ACL_DENIED_*` values).
    fn rank(self) -> u8 {
        match self {
            Denied::Command => 1,
            Denied::Key(_) => 2,
            Denied::Channel(_) => 4,
        }
    }

    fn pos(self) -> usize {
        match self {
            Denied::Command => 0,
            Denied::Key(p) | Denied::Channel(p) => p,
        }
    }
}

/// Payload sanitizing flag of a user (kept and shown; herald has no
/// RESTORE to apply it to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sanitize {
    /// Neither flag set.
    Unset,
    /// `skip-sanitize-payload`.
    Skip,
    /// `sanitize-payload`.
    Sanitize,
}

/// Everything ACL SETUSER sets on a user.
#[derive(Debug, Clone)]
pub struct Rules {
    /// `on` (else `off`).
    pub enabled: bool,
    /// `nopass`: any password works.
    pub nopass: bool,
    /// `skip-sanitize-payload` / `sanitize-payload`.
    pub sanitize: Sanitize,
    /// SHA-256 hashes (lowercase hex), in the order added.
    pub passwords: Vec<String>,
    /// The root selector first, then `(...)` selectors.
    pub selectors: Vec<Selector>,
}

impl Rules {
    /// A new user's rules: `off`, no password, nothing allowed.
    pub fn new(pubsub_all: bool) -> Rules {
        Rules {
            enabled: false,
            nopass: false,
            sanitize: Sanitize::Unset,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true, pubsub_all)],
        }
    }

    /// The `default` user's initial rules: `on nopass ~* &* +@all`.
    pub fn default_user() -> Rules {
        let mut r = Rules::new(false);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = r.apply(op.as_bytes(), false);
        }
        r
    }

    /// The root selector.
    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    fn root_mut(&mut self) -> &mut Selector {
        &mut self.selectors[0]
    }

    /// Redis's `ACLSetUser`: applies one rule. `pubsub_all` is
    /// `acl-pubsub-default allchannels`.
    pub fn apply(&mut self, op: &[u8], pubsub_all: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let first = op[0];
        if kw(op, "on") {
            self.enabled = true;
        } else if kw(op, "off") {
            self.enabled = false;
        } else if kw(op, "skip-sanitize-payload") {
            self.sanitize = Sanitize::Skip;
        } else if kw(op, "sanitize-payload") {
            self.sanitize = Sanitize::Sanitize;
        } else if kw(op, "nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if kw(op, "resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if first == b'>' || first == b'#' {
            let hash = if first == b'>' {
                hash_password(&op[1..])
            } else {
                if !valid_hash(&op[1..]) {
                    return Err(RuleError::BadHash);
                }
                String::from_utf8_lossy(&op[1..]).into_owned()
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if first == b'<' || first == b'!' {
            let hash = if first == b'<' {
                hash_password(&op[1..])
            } else {
                if !valid_hash(&op[1..]) {
                    return Err(RuleError::BadHash);
                }
                String::from_utf8_lossy(&op[1..]).into_owned()
            };
            match self.passwords.iter().position(|p| *p == hash) {
                Some(i) => {
                    self.passwords.remove(i);
                }
                None => return Err(RuleError::NoSuchPassword),
            }
        } else if first == b'(' && op.last() == Some(&b')') {
            let mut s = Selector::new(false, pubsub_all);
            let inner = &op[1..op.len() - 1];
            // Redis's sdssplitargs: unbalanced quotes give no arguments.
            for arg in crate::protocol::parse::split_args(inner).unwrap_or_default() {
                s.apply(&arg)?;
            }
            self.selectors.push(s);
        } else if kw(op, "clearselectors") {
            self.selectors.truncate(1);
        } else if kw(op, "reset") {
            for op in ["resetpass", "resetkeys", "resetchannels"] {
                let _ = self.apply(op.as_bytes(), pubsub_all);
            }
            if pubsub_all {
                let _ = self.apply(b"allchannels", pubsub_all);
            }
            for op in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                let _ = self.apply(op.as_bytes(), pubsub_all);
            }
        } else {
            self.root_mut().apply(op)?;
        }
        Ok(())
    }

    /// The flag names set, in Redis's order (`ACLUserFlags`).
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut out = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            out.push("nopass");
        }
        match self.sanitize {
            Sanitize::Skip => out.push("skip-sanitize-payload"),
            Sanitize::Sanitize => out.push("sanitize-payload"),
            Sanitize::Unset => {}
        }
        out
    }

    /// Redis's `ACLDescribeUser`: the rules in ACL LIST / ACL file form.
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.flag_names() {
            out.extend_from_slice(f.as_bytes());
            out.push(b' ');
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p.as_bytes());
            out.push(b' ');
        }
        for s in &self.selectors {
            let d = s.describe();
            if s.root {
                out.extend(d);
            } else {
                out.extend_from_slice(b" (");
                out.extend(d);
                out.push(b')');
            }
        }
        out
    }

    /// True when the root selector allows every command, key and channel.
    fn unrestricted(&self) -> bool {
        let r = self.root();
        r.allcommands && r.allkeys && r.allchannels
    }

    /// Redis's `ACLCheckAllUserCommandPerm`.
    fn check(&self, id: usize, args: &[Bytes]) -> Result<(), Denied> {
        let mut keys = KeyCache(None);
        let mut relevant = Denied::Command;
        let mut last_pos = 0;
        for s in &self.selectors {
            match s.check_cmd(id, args, &mut keys) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if d.rank() > relevant.rank()
                        || (d.rank() == relevant.rank() && d.pos() > last_pos)
                    {
                        relevant = d;
                        last_pos = d.pos();
                    }
                }
            }
        }
        Err(relevant)
    }

    /// Every channel pattern of every selector; `None` if one selector
    /// allows all channels.
    fn channel_patterns(&self) -> Option<Vec<&Vec<u8>>> {
        let mut out = Vec::new();
        for s in &self.selectors {
            if s.allchannels {
                return None;
            }
            out.extend(s.channels.iter());
        }
        Some(out)
    }
}

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
    fn credentials_ok(&self, pass: &[u8]) -> bool {
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
    /// The initial users for `config`: `default` with `requirepass` (users
    /// from the config file and the ACL file are loaded by
    /// [`load_at_startup`]).
    pub fn new(config: &crate::config::Config) -> Acl {
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
        acl.config_changed(config);
        acl
    }

    /// Applies what the configuration says (after CONFIG SET): a changed
    /// `requirepass` resets the default user's passwords to it, as Redis's
    /// `ACLUpdateDefaultUserPassword`.
    pub fn config_changed(&self, config: &crate::config::Config) {
        let all = config.value("acl-pubsub-default").as_deref() == Some("allchannels");
        self.pubsub_all.store(all, Relaxed);
        let changed = *self.requirepass.lock() != config.requirepass;
        if changed {
            self.set_requirepass(&config.requirepass);
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

/// True when the client must authenticate before running `cmd` (Redis's
/// `authRequired`): a bool on the client first, so it costs nothing once
/// authenticated.
#[inline]
pub fn auth_required(c: &Client) -> bool {
    !c.authenticated && c.shared.acl.auth_required()
}

/// Whether a new connection (or one after RESET) starts authenticated:
/// the default user is `nopass` and `on` (Redis's `clientSetDefaultAuth`).
pub fn default_authenticated(shared: &Shared) -> bool {
    let r = shared.acl.default.rules();
    r.nopass && r.enabled
}

/// Binds the client to the default user (new connection, RESET).
pub fn set_default_auth(c: &mut Client) {
    let user = c.shared.acl.default.clone();
    c.authenticated = default_authenticated(&c.shared);
    bind_user(c, user);
}

fn bind_user(c: &mut Client, user: Arc<User>) {
    let mut m = c.handle.meta.lock();
    m.user = user.display_name();
    m.user_id = user.id;
    drop(m);
    c.user = Some(user);
}

/// Where a denial happened, for ACL LOG.
fn context(c: &Client) -> log::Context {
    if c.tx.multi.is_some() || c.tx.in_exec {
        log::Context::Multi
    } else {
        log::Context::Toplevel
    }
}

/// Adds an ACL LOG entry for `c`.
/// `cmd` names the refused command: Redis's client info then shows it
/// as the client's current command (herald records a command only once
/// its checks pass).
fn log_denial(c: &Client, reason: log::Reason, object: Bytes, username: Bytes, cmd: Option<&str>) {
    let mut cinfo = crate::command::connection::client_line(&c.handle, Some(c));
    if let Some(cmd) = cmd {
        if let (Some(start), Some(end)) = (cinfo.find(" cmd="), cinfo.find(" user=")) {
            if start < end {
                cinfo.replace_range(start + 5..end, cmd);
            }
        }
    }
    let max = c
        .shared
        .config
        .read()
        .value("acllog-max-len")
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    c.shared.acl.log.lock().add(
        log::Entry::new(reason, context(c), object, username, cinfo),
        max,
    );
}

/// AUTH / HELLO AUTH: checks the credentials; on success the client is
/// authenticated as that user. A failure is counted and logged (the
/// object is the command name as typed, as in Redis).
pub fn authenticate(c: &mut Client, cmd_name: &Bytes, user: &[u8], pass: &[u8]) -> bool {
    if let Some(u) = c.shared.acl.user(user) {
        if u.credentials_ok(pass) {
            c.authenticated = true;
            bind_user(c, u);
            return true;
        }
    }
    c.shared.acl.denied.auth.fetch_add(1, Relaxed);
    log_denial(
        c,
        log::Reason::Auth,
        cmd_name.clone(),
        Bytes::copy_from_slice(user),
        None,
    );
    false
}

/// The ACL check of a command whose arity was checked (Redis's
/// `ACLCheckAllPerm` in `processCommand`): `None` if allowed, else the
/// NOPERM error text (the denial is logged and counted).
#[inline]
pub fn check_command(c: &Client, fullname: &str, args: &[Bytes]) -> Option<String> {
    match &c.user {
        None => None,
        Some(u) if u.full.load(Relaxed) => None,
        Some(_) => check_slow(c, fullname, args),
    }
}

/// The command's id and the user's verdict (None: allowed).
fn verdict(c: &Client, fullname: &str, args: &[Bytes]) -> Option<(Denied, usize)> {
    let user = c.user.as_ref()?;
    // A command unknown to Redis's table (herald's extensions, e.g. CLIENT
    // SETINFO, which 7.0 lacks) is checked as its container.
    let t = table();
    let id = t
        .id(fullname)
        .or_else(|| t.id(fullname.split('|').next().unwrap_or(fullname)))?;
    let rules = user.rules();
    rules.check(id, args).err().map(|d| (d, id))
}

#[cold]
fn check_slow(c: &Client, fullname: &str, args: &[Bytes]) -> Option<String> {
    let (denied, _) = verdict(c, fullname, args)?;
    let username = c.user.as_ref().map(|u| u.name.clone()).unwrap_or_default();
    let st = &c.shared.acl.denied;
    let (reason, object, msg) = match denied {
        Denied::Command => {
            st.cmd.fetch_add(1, Relaxed);
            (
                log::Reason::Command,
                Bytes::copy_from_slice(fullname.as_bytes()),
                format!("NOPERM this user has no permissions to run the '{fullname}' command"),
            )
        }
        Denied::Key(p) => {
            st.key.fetch_add(1, Relaxed);
            (
                log::Reason::Key,
                args[p].clone(),
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .to_string(),
            )
        }
        Denied::Channel(p) => {
            st.channel.fetch_add(1, Relaxed);
            (
                log::Reason::Channel,
                args[p].clone(),
                "NOPERM this user has no permissions to access one of the channels used as arguments"
                    .to_string(),
            )
        }
    };
    log_denial(c, reason, object, username, Some(fullname));
    Some(msg)
}

/// EXEC's re-check of a queued command (permissions may have changed since
/// it was queued): `None` if allowed, else Redis's error text.
pub fn check_queued(c: &Client, args: &[Bytes]) -> Option<String> {
    match &c.user {
        None => return None,
        Some(u) if u.full.load(Relaxed) => return None,
        Some(_) => {}
    }
    let fullname = &fullname_of(args)?;
    let (denied, _) = verdict(c, fullname, args)?;
    let username = c.user.as_ref().map(|u| u.name.clone()).unwrap_or_default();
    let (reason, object, why) = match denied {
        Denied::Command => (
            log::Reason::Command,
            Bytes::copy_from_slice(fullname.as_bytes()),
            "no permission to execute the command or subcommand",
        ),
        Denied::Key(p) => (
            log::Reason::Key,
            args[p].clone(),
            "no permission to touch the specified keys",
        ),
        Denied::Channel(p) => (
            log::Reason::Channel,
            args[p].clone(),
            "no permission to access one of the channels used as arguments",
        ),
    };
    log_denial(c, reason, object, username, Some(fullname));
    Some(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {why}"
    ))
}

/// The full lowercase name (`get`, `client|kill`) of the command `args`
/// runs, as Redis's `lookupCommand` finds it in its table.
fn fullname_of(args: &[Bytes]) -> Option<String> {
    let t = table();
    let base = t
        .lookup(cstr(args.first()?))
        .filter(|&id| t.cmds[id].parent.is_none())?;
    let cmd = &t.cmds[base];
    if args.len() >= 2 && !cmd.subs.is_empty() {
        let sub = String::from_utf8(args[1].to_ascii_lowercase()).ok()?;
        return Some(format!("{}|{sub}", cmd.name));
    }
    Some(cmd.name.to_string())
}

/// ACL DRYRUN's check of `args` for `user` (no logging).
pub fn dry_run(user: &User, id: usize, args: &[Bytes]) -> Result<(), Denied> {
    user.rules().check(id, args)
}

/// The connections authenticated as `user`.
fn clients_of(shared: &Shared, user: &Arc<User>) -> Vec<Arc<ClientHandle>> {
    shared
        .clients
        .all()
        .into_iter()
        .filter(|h| h.meta.lock().user_id == user.id)
        .collect()
}

/// The subscriptions of other clients: (client id, kind, name), found by
/// scanning the registries (administrative paths only).
fn subscriptions_of(shared: &Shared, ids: &[u64]) -> Vec<(u64, SubKind, Bytes)> {
    let ps = &shared.engine.pubsub;
    let mut out: Vec<(u64, SubKind, Bytes)> = Vec::new();
    out.extend(
        ps.channels
            .subscriptions_of(ids)
            .into_iter()
            .map(|(id, n)| (id, SubKind::Channel, n)),
    );
    out.extend(
        ps.patterns
            .subscriptions_of(ids)
            .into_iter()
            .map(|(id, n)| (id, SubKind::Pattern, n)),
    );
    out.extend(
        ps.shard_channels
            .subscriptions_of(ids)
            .into_iter()
            .map(|(id, n)| (id, SubKind::Shard, n)),
    );
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubKind {
    Channel,
    Pattern,
    Shard,
}

/// Closes other clients at once, as Redis's `freeClient`: their queued
/// output is dropped, their subscriptions leave the registries now (so a
/// PUBLISH after this counts and reaches them no more), and their tasks
/// close the sockets.
fn evict(shared: &Shared, victims: &[Arc<ClientHandle>], subs: &[(u64, SubKind, Bytes)]) {
    let ps = &shared.engine.pubsub;
    for h in victims {
        h.close_outbox();
        for (id, kind, name) in subs {
            if *id != h.id {
                continue;
            }
            match kind {
                SubKind::Channel => ps.channels.unsubscribe(name, h, None),
                SubKind::Pattern => ps.patterns.unsubscribe(name, h, None),
                SubKind::Shard => ps.shard_channels.unsubscribe(name, h, None),
            }
        }
        h.kill();
    }
}

/// Closes every connection authenticated as `user` (ACL DELUSER, ACL
/// LOAD): the caller's own after its reply, as Redis's
/// `ACLFreeUserAndKillClients`.
pub fn kill_clients_of(c: &mut Client, user: &Arc<User>) {
    let mut victims = clients_of(&c.shared, user);
    if let Some(i) = victims.iter().position(|h| h.id == c.handle.id) {
        victims.swap_remove(i);
        c.close_after_reply = true;
        // Redis puts it back to the default user, unauthenticated.
        c.authenticated = false;
    }
    if victims.is_empty() {
        return;
    }
    let ids: Vec<u64> = victims.iter().map(|h| h.id).collect();
    let subs = subscriptions_of(&c.shared, &ids);
    evict(&c.shared, &victims, &subs);
}

/// Redis 7.0's `ACLKillPubsubClientsIfNeeded`, after `user`'s rules went
/// from `old` to its current ones: if the new channel patterns are not a
/// superset of the old ones, closes the user's subscribers with a
/// subscription the new patterns do not allow.
pub fn kill_pubsub_clients_if_needed(c: &mut Client, user: &Arc<User>, old: &Rules) {
    let new = user.rules().clone();
    let Some(upcoming) = new.channel_patterns() else {
        return;
    };
    // A superset of the old patterns changes nothing; an old selector with
    // all channels (now gone) always does (7.0.15's check).
    let had_all = old.selectors.iter().any(|s| s.allchannels);
    let original: Vec<&Vec<u8>> = old
        .selectors
        .iter()
        .flat_map(|s| s.channels.iter())
        .collect();
    if !had_all && original.iter().all(|p| upcoming.contains(p)) {
        return;
    }
    let upcoming: Vec<Vec<u8>> = upcoming.into_iter().cloned().collect();
    let violates = |kind: SubKind, name: &[u8]| match kind {
        SubKind::Pattern => !channel_allowed(&upcoming, name, true),
        _ => !channel_allowed(&upcoming, name, false),
    };
    // The caller itself: its subscriptions are at hand.
    let own_user = c.user.as_ref().is_some_and(|u| Arc::ptr_eq(u, user));
    if own_user && c.subscription_count() > 0 {
        let bad = c.patterns.iter().any(|p| violates(SubKind::Pattern, p))
            || c.channels.iter().any(|ch| violates(SubKind::Channel, ch))
            || c.shard_channels
                .iter()
                .any(|ch| violates(SubKind::Shard, ch));
        if bad {
            // Redis frees the client at once: not even this reply leaves.
            c.handle.close_outbox();
            c.out.clear();
            c.drop_subscriptions();
            c.close_after_reply = true;
        }
    }
    let candidates: Vec<Arc<ClientHandle>> = clients_of(&c.shared, user)
        .into_iter()
        .filter(|h| h.id != c.handle.id && h.class() == crate::net::limits::ClientClass::PubSub)
        .collect();
    if candidates.is_empty() {
        return;
    }
    let ids: Vec<u64> = candidates.iter().map(|h| h.id).collect();
    let subs = subscriptions_of(&c.shared, &ids);
    let victims: Vec<Arc<ClientHandle>> = candidates
        .into_iter()
        .filter(|h| {
            subs.iter()
                .any(|(id, kind, name)| *id == h.id && violates(*kind, name))
        })
        .collect();
    evict(&c.shared, &victims, &subs);
}

/// Redis's `ACLMergeSelectorArguments`: joins a `(` ... `)` selector split
/// over several arguments. On an unmatched `(`, `Err` holds the index of
/// the argument that opened it.
pub fn merge_selector_args(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in args.iter().enumerate() {
        if open.is_none() && op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((j, op.to_vec()));
            continue;
        }
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                if let Some((_, sel)) = open.take() {
                    out.push(sel);
                }
            }
            continue;
        }
        out.push(op.to_vec());
    }
    match open {
        Some((j, _)) => Err(j),
        None => Ok(out),
    }
}

/// Builds the rules of a `user` line (config file or ACL file) on top of
/// `base`.
fn rules_from_line(
    base: Rules,
    ops: &[&[u8]],
    pubsub_all: bool,
) -> Result<Rules, (Vec<u8>, RuleError)> {
    let merged = merge_selector_args(ops).map_err(|_| (Vec::new(), RuleError::Syntax))?;
    let mut rules = base;
    for op in merged {
        rules.apply(&op, pubsub_all).map_err(|e| (op.clone(), e))?;
    }
    Ok(rules)
}

/// Redis's `ACLLoadFromFile`: parses an ACL file into users, or returns
/// the error text (all errors of the file, in one line).
pub fn parse_acl_file(
    path: &std::path::Path,
    shown: &str,
    pubsub_all: bool,
) -> Result<BTreeMap<Bytes, Rules>, String> {
    let text = std::fs::read(path).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" (os error").next().unwrap_or(&msg).to_string();
        format!("Error loading ACLs, opening file '{shown}': {msg}")
    })?;
    let mut errors = String::new();
    let mut users: BTreeMap<Bytes, Rules> = BTreeMap::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let linenum = i + 1;
        let line = trim(raw, b" \t\r\n");
        if line.is_empty() {
            continue;
        }
        let argv: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        if argv[0] != b"user" || argv.len() < 2 {
            errors.push_str(&format!(
                "{shown}:{linenum} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = argv[1];
        if has_spaces(name) {
            errors.push_str(&format!(
                "'{shown}:{linenum}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        if users.contains_key(name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {linenum}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        let mut rules = Rules::new(pubsub_all);
        match merge_selector_args(&argv[2..]) {
            Err(_) => errors.push_str(&format!(
                "{shown}:{linenum}: Unmatched parenthesis in selector definition."
            )),
            Ok(ops) => {
                for op in ops {
                    let op = trim(&op, b"\t\r\n");
                    if let Err(e) = rules.apply(op, pubsub_all) {
                        errors.push_str(&format!("{shown}:{linenum}: {}. ", e.message()));
                    }
                }
            }
        }
        users.insert(Bytes::copy_from_slice(name), rules);
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        Err(errors)
    }
}

/// Redis's `sdstrim`.
fn trim<'a>(mut s: &'a [u8], set: &[u8]) -> &'a [u8] {
    while let [first, rest @ ..] = s {
        if !set.contains(first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !set.contains(last) {
            break;
        }
        s = rest;
    }
    s
}

/// The ACL file's text for the current users (ACL SAVE).
pub fn acl_file_text(shared: &Shared) -> Vec<u8> {
    let mut out = Vec::new();
    for u in shared.acl.users() {
        out.extend_from_slice(b"user ");
        out.extend_from_slice(&u.name);
        out.push(b' ');
        out.extend(u.rules().describe());
        out.push(b'\n');
    }
    out
}

/// The configured `aclfile`, resolved against `dir` (Redis has chdir'ed
/// there by the time it reads it); `None` when not set.
pub fn acl_file_path(shared: &Shared) -> Option<(std::path::PathBuf, String)> {
    let cfg = shared.config.read();
    let name = cfg.value("aclfile").unwrap_or_default();
    if name.is_empty() {
        return None;
    }
    Some((cfg.dir.join(&name), name))
}

/// Redis 7.0's reply to a client refused by protected mode (sent, then
/// the connection is closed).
pub const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode (Redis 7.0's `clientAcceptHandler`): with
/// `protected-mode yes` and no password for the default user, only local
/// clients are served. As Redis's `islocalClient`, "local" is the peer
/// address 127.0.0.1 or ::1 exactly (not the rest of 127.0.0.0/8).
pub fn protected_mode_denies(shared: &Shared, peer: std::net::IpAddr) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr};
    if peer == Ipv4Addr::LOCALHOST || peer == Ipv6Addr::LOCALHOST {
        return false;
    }
    if !shared.acl.default.rules().nopass {
        return false;
    }
    shared.config.read().value("protected-mode").as_deref() == Some("yes")
}

/// Redis's `ACLAppendUserForLoading`, run while the config file is read:
/// rejects a `user` line whose rules cannot apply (an unknown command is
/// only found at start-up, as in Redis) or a user declared twice. The
/// text is Redis's (which names `argv[index]` of the line, index counted
/// among the rules).
pub fn validate_user_line(argv: &[Vec<u8>], earlier: &[Vec<Vec<u8>>]) -> Result<(), String> {
    let err = |idx: usize, e: RuleError| {
        let word = argv.get(idx).map(|w| cstr(w)).unwrap_or_default();
        format!(
            "Error in user declaration '{}': {}",
            String::from_utf8_lossy(word),
            e.message()
        )
    };
    if earlier.iter().any(|l| l.get(1) == argv.get(1)) {
        return Err(err(1, RuleError::Duplicate));
    }
    let ops: Vec<&[u8]> = argv[2..].iter().map(Vec::as_slice).collect();
    let merged = merge_selector_args(&ops).map_err(|j| err(j, RuleError::Syntax))?;
    let mut rules = Rules::new(false);
    for (j, op) in merged.iter().enumerate() {
        match rules.apply(op, false) {
            Ok(()) | Err(RuleError::Unknown) => {}
            Err(e) => return Err(err(j, e)),
        }
    }
    Ok(())
}

/// Loads the users of the config file's `user` lines, then the ACL file
/// (Redis's `ACLLoadUsersAtStartup`). Errors stop start-up.
pub fn load_at_startup(shared: &Shared) -> Result<(), String> {
    let lines = shared.config.read().user_lines().to_vec();
    let file = acl_file_path(shared);
    if file.is_some() && !lines.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    let pubsub_all = shared.acl.pubsub_all();
    let mut seen: Vec<&[u8]> = Vec::new();
    for argv in &lines {
        let Some(name) = argv.get(1) else { continue };
        if has_spaces(name) {
            return Err("Spaces not allowed in ACL usernames".into());
        }
        if seen.contains(&name.as_slice()) {
            return Err(format!(
                "Error in user declaration '{}': {}",
                String::from_utf8_lossy(name),
                RuleError::Duplicate.message()
            ));
        }
        seen.push(name);
        let base = match shared.acl.user(name) {
            // Only `default` exists already: it is reset first.
            Some(u) => {
                let mut r = u.rules().clone();
                let _ = r.apply(b"reset", pubsub_all);
                r
            }
            None => Rules::new(pubsub_all),
        };
        let ops: Vec<&[u8]> = argv[2..].iter().map(Vec::as_slice).collect();
        let rules = rules_from_line(base, &ops, pubsub_all).map_err(|(op, e)| {
            format!(
                "Error loading ACL rule '{}' for the user named '{}': {}",
                String::from_utf8_lossy(&op),
                String::from_utf8_lossy(name),
                e.message()
            )
        })?;
        if !rules.enabled {
            tracing::info!(
                "The user '{}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error.",
                String::from_utf8_lossy(name)
            );
        }
        shared.acl.set_user(name, rules);
    }
    if let Some((path, shown)) = file {
        let users = parse_acl_file(&path, &shown, pubsub_all)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        shared.acl.replace_all(users);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(ops: &[&str]) -> Rules {
        let mut r = Rules::new(false);
        for op in ops {
            r.apply(op.as_bytes(), false).unwrap();
        }
        r
    }

    fn describe(r: &Rules) -> String {
        String::from_utf8(r.describe()).unwrap()
    }

    #[test]
    fn default_user_description() {
        assert_eq!(describe(&Rules::default_user()), "on nopass ~* &* +@all");
    }

    #[test]
    fn new_user_description() {
        assert_eq!(describe(&Rules::new(false)), "off resetchannels -@all");
        assert_eq!(describe(&Rules::new(true)), "off &* -@all");
        let mut r = Rules::new(false);
        r.apply(b"reset", false).unwrap();
        assert_eq!(describe(&r), "off sanitize-payload resetchannels -@all");
    }

    #[test]
    fn single_commands_and_categories() {
        assert_eq!(
            describe(&rules(&["on", "+get", "~k*", "&ch:*"])),
            "on ~k* resetchannels &ch:* -@all +get"
        );
        assert_eq!(
            describe(&rules(&["+@all", "-get"])),
            "off resetchannels +@all -get"
        );
        let r = rules(&["+@read"]);
        assert!(describe(&r).starts_with("off resetchannels -@all +@read"));
        let r = rules(&["+@all", "-@dangerous"]);
        assert_eq!(describe(&r), "off resetchannels +@all -@dangerous");
    }

    #[test]
    fn passwords_are_hashed_and_checked() {
        let r = rules(&["on", ">secret"]);
        assert_eq!(r.passwords[0], hash_password(b"secret"));
        assert_eq!(r.passwords[0].len(), 64);
        let u = User::new(Bytes::from_static(b"u"), r);
        assert!(u.credentials_ok(b"secret"));
        assert!(!u.credentials_ok(b"Secret"));
        let mut r = Rules::new(false);
        assert_eq!(r.apply(b"<nope", false), Err(RuleError::NoSuchPassword));
        assert_eq!(r.apply(b"#abc", false), Err(RuleError::BadHash));
    }

    #[test]
    fn rule_errors() {
        let mut r = Rules::new(false);
        assert_eq!(r.apply(b"+nosuchcommand", false), Err(RuleError::Unknown));
        assert_eq!(r.apply(b"+@nosuch", false), Err(RuleError::Unknown));
        assert_eq!(r.apply(b"bogus", false), Err(RuleError::Syntax));
        assert_eq!(
            r.apply(b"+config|get|x", false),
            Err(RuleError::FirstArgOfSubcommand)
        );
        r.apply(b"allkeys", false).unwrap();
        assert_eq!(r.apply(b"~x", false), Err(RuleError::KeyAfterAll));
        r.apply(b"allchannels", false).unwrap();
        assert_eq!(r.apply(b"&x", false), Err(RuleError::ChannelAfterAll));
        assert_eq!(r.apply(b"~a b", false), Err(RuleError::KeyAfterAll));
    }

    #[test]
    fn channel_checks_follow_redis() {
        let list = vec![b"notifications:*".to_vec()];
        assert!(channel_allowed(&list, b"notifications:x", false));
        assert!(!channel_allowed(&list, b"other", false));
        assert!(channel_allowed(&list, b"notifications:*", true));
        assert!(!channel_allowed(&list, b"notifications:x*", true));
    }

    #[test]
    fn command_check() {
        let r = rules(&["on", "+get", "~k*"]);
        let t = table();
        let get = t.id("get").unwrap();
        let set = t.id("set").unwrap();
        let args = |v: &[&str]| {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect::<Vec<_>>()
        };
        assert_eq!(r.check(get, &args(&["get", "k1"])), Ok(()));
        assert_eq!(r.check(get, &args(&["get", "x"])), Err(Denied::Key(1)));
        assert_eq!(
            r.check(set, &args(&["set", "k1", "v"])),
            Err(Denied::Command)
        );
        let r = rules(&["on", "+@all", "resetchannels", "&a*"]);
        let sub = t.id("subscribe").unwrap();
        assert_eq!(
            r.check(sub, &args(&["subscribe", "ab", "b"])),
            Err(Denied::Channel(2))
        );
    }

    #[test]
    fn merges_selectors() {
        let a: Vec<&[u8]> = vec![b"on", b"(+get", b"~x)", b"off"];
        assert_eq!(
            merge_selector_args(&a).unwrap(),
            vec![b"on".to_vec(), b"(+get ~x)".to_vec(), b"off".to_vec()]
        );
        let b: Vec<&[u8]> = vec![b"on", b"(+get"];
        assert_eq!(merge_selector_args(&b), Err(1));
    }
}
