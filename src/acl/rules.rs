//! ACL rules: the grammar of `ACL SETUSER` (and of `user` lines), applied
//! to a user's [`Rules`], and their descriptions for `ACL GETUSER` /
//! `ACL LIST`, as Redis 7.0's `ACLSetUser` / `ACLDescribeUser`.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::table::{self, table, BITS, FUTURE_BIT};

/// A permission bitmap over command ids.
type Bits = [u64; BITS / 64];

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
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
    /// `allchannels` (`&*`).
    pub allchannels: bool,
    allcommands: bool,
    bits: Bits,
    /// Command id → first arguments allowed although the command is not.
    firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    keys: Vec<KeyPattern>,
    /// Channel patterns (`&pattern`).
    pub channels: Vec<Vec<u8>>,
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

    /// Redis's `ACLSelectorHasUnrestrictedKeyAccess` for read access: the
    /// selector may read every key (`allkeys`, or the literal pattern `*`
    /// with read permission; a glob that merely matches everything does not
    /// count).
    fn reads_all_keys(&self) -> bool {
        self.allkeys || self.keys.iter().any(|p| p.read && p.pattern == b"*")
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
pub fn channel_allowed(list: &[Vec<u8>], channel: &[u8], literal: bool) -> bool {
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
    Always,
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
            self.sanitize = Sanitize::Always;
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
            Sanitize::Always => out.push("sanitize-payload"),
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
    pub fn unrestricted(&self) -> bool {
        let r = self.root();
        r.allcommands && r.allkeys && r.allchannels
    }

    /// Redis's `ACLCheckAllUserCommandPerm`.
    pub fn check(&self, id: usize, args: &[Bytes]) -> Result<(), Denied> {
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

    /// Redis's `ACLUserCheckCmdWithUnrestrictedKeyAccess` for read access:
    /// true if one selector both allows the command `id` with `args` and may
    /// read every key. SORT asks it before reading keys its BY and GET
    /// patterns name, which no key spec declares.
    pub fn allows_with_all_keys_readable(&self, id: usize, args: &[Bytes]) -> bool {
        let mut keys = KeyCache(None);
        self.selectors
            .iter()
            .any(|s| s.check_cmd(id, args, &mut keys).is_ok() && s.reads_all_keys())
    }

    /// Every channel pattern of every selector; `None` if one selector
    /// allows all channels.
    pub fn channel_patterns(&self) -> Option<Vec<&Vec<u8>>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::users::User;

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
