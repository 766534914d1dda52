//! The command table ACL rules are written against: every command and
//! subcommand redis-server 7.0 knows (not only the ones herald serves), each
//! with an id for the permission bitmaps and its ACL categories.
//!
//! Redis bases its ACLs on its whole original command table, so `+xadd`,
//! `-@geo` and `ACL CAT geo` mean the same on herald as on redis-server even
//! for commands herald does not implement. The table is built once from the
//! embedded `COMMAND INFO` data ([`crate::catalog`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::catalog;

/// Redis's ACL categories, in Redis's order (`ACL CAT`, and the order the
/// best-fit description of a user's commands tries them in).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Bits in a permission bitmap (Redis's `USER_COMMAND_BITS_COUNT`).
pub const BITS: usize = 1024;

/// The reserved bit set only by `+@all` / `allcommands`: "future commands
/// are allowed too", which decides whether a description starts with
/// `+@all` or `-@all`.
pub const FUTURE_BIT: usize = BITS - 1;

/// One command or subcommand.
#[derive(Debug)]
pub struct Cmd {
    /// Lowercase full name (`get`, `client|kill`).
    pub name: &'static str,
    /// Category bits (bit i = [`CATEGORIES`]`[i]`).
    pub categories: u32,
    /// The container of a subcommand.
    pub parent: Option<usize>,
    /// The subcommands of a container (ids), alphabetically.
    pub subs: Vec<usize>,
    /// Flagged `no_auth` (AUTH, HELLO, ...): runs before authentication and
    /// needs no command permission.
    pub no_auth: bool,
}

/// The whole table: `cmds[id]`, top-level commands in `top`.
#[derive(Debug)]
pub struct Table {
    /// Every command and subcommand, by id.
    pub cmds: Vec<Cmd>,
    /// Ids of the top-level commands, alphabetically.
    pub top: Vec<usize>,
    by_name: HashMap<&'static str, usize>,
}

/// The table, built on first use.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(build)
}

fn build() -> Table {
    let mut cmds: Vec<Cmd> = Vec::new();
    let mut top = Vec::new();
    let mut by_name = HashMap::new();
    for name in catalog::all_names() {
        let mut categories = 0;
        for c in catalog::acl_categories(name).unwrap_or(&[]) {
            let c = c.strip_prefix('@').unwrap_or(c);
            if let Some(i) = CATEGORIES.iter().position(|k| *k == c) {
                categories |= 1 << i;
            }
        }
        let no_auth = catalog::flags(name).is_some_and(|f| f.contains(&"no_auth"));
        let id = cmds.len();
        let parent = match name.split_once('|') {
            Some((base, _)) => by_name.get(base).copied(),
            None => None,
        };
        match parent {
            Some(p) => {
                let parent: &mut Cmd = &mut cmds[p];
                parent.subs.push(id);
            }
            None => top.push(id),
        }
        cmds.push(Cmd {
            name,
            categories,
            parent,
            subs: Vec::new(),
            no_auth,
        });
        by_name.insert(name, id);
    }
    Table { cmds, top, by_name }
}

impl Table {
    /// The id of a full lowercase name as herald's dispatcher builds it
    /// (`get`, `client|kill`).
    pub fn id(&self, fullname: &str) -> Option<usize> {
        self.by_name.get(fullname).copied()
    }

    /// Redis's `ACLLookupCommand` (`lookupCommandBySdsLogic`, strict): a
    /// name, or `container|sub`, case-insensitive; a `|` after a command
    /// without subcommands, or more than one `|`, names nothing.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        let lower = String::from_utf8(name.to_ascii_lowercase()).ok()?;
        let mut parts = lower.split('|');
        let base = parts.next()?;
        let sub = parts.next();
        if parts.next().is_some() || base.is_empty() {
            return None;
        }
        let id = self.id(base)?;
        match sub {
            None => Some(id),
            Some(_) if self.cmds[id].subs.is_empty() => None,
            Some(_) => self.id(&lower),
        }
    }
}

/// The bit of a category name (case-insensitive), as Redis's
/// `ACLGetCommandCategoryFlagByName`.
pub fn category(name: &[u8]) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_redis_commands_and_fits_the_bitmap() {
        let t = table();
        assert!(t.cmds.len() > 300 && t.cmds.len() < FUTURE_BIT);
        let get = t.lookup(b"GET").unwrap();
        assert_eq!(t.cmds[get].name, "get");
        assert!(t.cmds[get].categories & category(b"read").unwrap() != 0);
        let kill = t.lookup(b"client|KILL").unwrap();
        assert_eq!(t.cmds[kill].parent, t.lookup(b"client"));
        assert!(t.lookup(b"select|0").is_none());
        assert!(t.lookup(b"client|kill|x").is_none());
        assert!(t.cmds[t.lookup(b"auth").unwrap()].no_auth);
    }
}
