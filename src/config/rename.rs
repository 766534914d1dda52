//! `rename-command old new`: the names commands answer to.
//!
//! As in redis-server, the lines are applied in order, at start-up only (a
//! config file or `--rename-command`; CONFIG SET knows no such option), to
//! the table of Redis 7.0's top-level commands: `old` must name a command
//! under its current name ("No such command in rename-command"), `new`
//! must not name one ("Target command name already exists"), an empty
//! `new` removes the command. Renames chain (`A B` then `B C`). Names are
//! case-insensitive. Checking against Redis's whole command set, not only
//! herald's, lets a hardened redis.conf (`rename-command DEBUG ""`) load.
//!
//! The result, [`CommandNames`], is built once and never changes: the
//! dispatcher asks it which command a typed name means (see
//! `command::run`). Without renames that is one branch; with renames, one
//! binary search over the renamed and hidden names only.

use std::collections::HashMap;

/// What a typed command name means once the renames are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// The command of that name (no rename touches it).
    Same(&'a [u8]),
    /// A renamed command: its original (lower-case) name.
    Renamed(&'static str),
    /// Not a command any more: renamed away or removed.
    Gone,
}

/// The renames in force: for each name whose meaning changed, its original
/// command, or none (an original name renamed or removed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandNames {
    /// Sorted by the lower-case name.
    changed: Vec<(Box<[u8]>, Option<&'static str>)>,
    /// Original names of the commands no name reaches, sorted.
    removed: Vec<&'static str>,
}

impl CommandNames {
    /// True when no rename is configured (the dispatcher's fast path).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
    }

    /// Which command the typed `name` calls (case-insensitive).
    #[inline]
    pub fn resolve<'a>(&self, name: &'a [u8]) -> Resolved<'a> {
        if self.changed.is_empty() {
            return Resolved::Same(name);
        }
        self.resolve_slow(name)
    }

    fn resolve_slow<'a>(&self, name: &'a [u8]) -> Resolved<'a> {
        let lower = name.to_ascii_lowercase();
        match self
            .changed
            .binary_search_by(|(k, _)| k.as_ref().cmp(lower.as_slice()))
        {
            Ok(i) => match self.changed[i].1 {
                Some(orig) => Resolved::Renamed(orig),
                None => Resolved::Gone,
            },
            Err(_) => Resolved::Same(name),
        }
    }

    /// The original names of removed commands (renamed to ""): they are
    /// gone from COMMAND COUNT / LIST / INFO as in Redis. A renamed command
    /// keeps its original name there.
    pub fn removed(&self) -> &[&'static str] {
        &self.removed
    }
}

/// Applies `rename-command` lines one by one while the configuration loads.
#[derive(Debug, Clone, Default)]
pub(super) struct Renamer {
    /// Current name (lower case) → original name; filled on the first
    /// rename (most configurations have none).
    table: Option<HashMap<Vec<u8>, &'static str>>,
}

impl Renamer {
    /// One `rename-command old new` line, with Redis's errors.
    pub(super) fn rename(&mut self, old: &[u8], new: &[u8]) -> Result<(), &'static str> {
        let table = self.table.get_or_insert_with(|| {
            crate::catalog::all_names()
                .into_iter()
                .filter(|n| !n.contains('|'))
                .map(|n| (n.as_bytes().to_vec(), n))
                .collect()
        });
        let Some(orig) = table.remove(&old.to_ascii_lowercase()) else {
            return Err("No such command in rename-command");
        };
        if !new.is_empty() {
            let new = new.to_ascii_lowercase();
            if table.contains_key(&new) {
                return Err("Target command name already exists");
            }
            table.insert(new, orig);
        }
        Ok(())
    }

    /// The names in force once every line is applied.
    pub(super) fn names(&self) -> CommandNames {
        let Some(table) = &self.table else {
            return CommandNames::default();
        };
        let mut changed: Vec<(Box<[u8]>, Option<&'static str>)> = table
            .iter()
            .filter(|(k, orig)| k.as_slice() != orig.as_bytes())
            .map(|(k, orig)| (k.clone().into_boxed_slice(), Some(*orig)))
            .collect();
        for name in crate::catalog::all_names() {
            if !name.contains('|') && !table.contains_key(name.as_bytes()) {
                changed.push((name.as_bytes().into(), None));
            }
        }
        changed.sort();
        let kept: Vec<&str> = table.values().copied().collect();
        let removed = crate::catalog::all_names()
            .into_iter()
            .filter(|n| !n.contains('|') && !kept.contains(n))
            .collect();
        CommandNames { changed, removed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_chain_remove_and_refuse_as_redis() {
        let mut r = Renamer::default();
        assert_eq!(r.names(), CommandNames::default());
        r.rename(b"FLUSHALL", b"nuke").unwrap();
        r.rename(b"config", b"").unwrap();
        r.rename(b"Set", b"s1").unwrap();
        r.rename(b"S1", b"s2").unwrap();
        assert_eq!(
            r.rename(b"flushall", b"x"),
            Err("No such command in rename-command")
        );
        assert_eq!(
            r.rename(b"nosuchcmd", b"x"),
            Err("No such command in rename-command")
        );
        let n = r.names();
        assert_eq!(n.resolve(b"NUKE"), Resolved::Renamed("flushall"));
        assert_eq!(n.resolve(b"s2"), Resolved::Renamed("set"));
        // An intermediate name is no command at all: unknown as any other.
        assert_eq!(n.resolve(b"s1"), Resolved::Same(b"s1"));
        assert_eq!(n.resolve(b"flushall"), Resolved::Gone);
        assert_eq!(n.resolve(b"config"), Resolved::Gone);
        assert_eq!(n.resolve(b"set"), Resolved::Gone);
        assert_eq!(n.resolve(b"GET"), Resolved::Same(b"GET"));
        assert_eq!(n.removed(), ["config"]);
    }

    #[test]
    fn a_taken_name_is_refused_and_renaming_to_itself_is_not() {
        let mut r = Renamer::default();
        r.rename(b"get", b"GET").unwrap();
        assert_eq!(
            r.rename(b"get", b"set"),
            Err("Target command name already exists")
        );
    }

    #[test]
    fn a_name_freed_by_a_rename_can_be_taken() {
        let mut r = Renamer::default();
        r.rename(b"get", b"").unwrap();
        r.rename(b"set", b"get").unwrap();
        let n = r.names();
        assert_eq!(n.resolve(b"get"), Resolved::Renamed("set"));
        assert_eq!(n.resolve(b"set"), Resolved::Gone);
        assert_eq!(n.removed(), ["get"]);
    }
}
