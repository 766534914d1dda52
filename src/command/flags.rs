//! The Redis command flags the dispatcher acts on, per [`Spec`], looked up
//! once.
//!
//! Redis decides from a command's flags whether it is refused at the
//! memory limit (`denyoom`), held back by CLIENT PAUSE WRITE (`write`, or
//! `may_replicate`, which Redis sets internally on PUBLISH, SPUBLISH,
//! PFCOUNT and the script commands, and COMMAND INFO does not show),
//! hidden from MONITOR (`admin`, `skip_monitor`), kept out of the slow log
//! (`skip_slowlog`), which latency event it feeds (`fast`), and whether a
//! MONITOR client may run it (not `readonly` nor `write`). The flags
//! come from the embedded COMMAND data ([`crate::catalog::flags`]); this
//! module turns them into bits once, in a table keyed by the address of
//! each `Spec` in [`super::TABLE`], so that the per-command question is a
//! hash lookup of a pointer. The same table numbers every command and
//! subcommand for the per-command counters (INFO commandstats), so that
//! one lookup after each command serves both.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{Spec, TABLE};

/// `denyoom`: refused with -OOM while over `maxmemory`.
pub const DENYOOM: u16 = 1;
/// `write`: held back by CLIENT PAUSE WRITE, refused in read-only scripts.
pub const WRITE: u16 = 1 << 1;
/// `admin` or `skip_monitor`: not shown to MONITOR.
pub const NO_MONITOR: u16 = 1 << 2;
/// `skip_slowlog`: never in the slow log.
pub const SKIP_SLOWLOG: u16 = 1 << 3;
/// `fast`: its latency goes to the `fast-command` event.
pub const FAST: u16 = 1 << 4;
/// `readonly`: with `write`, refused to a MONITOR client (which Redis
/// treats as a replica).
pub const READONLY: u16 = 1 << 5;

/// `noscript`: refused when a script calls it.
pub const NOSCRIPT: u16 = 1 << 6;
/// `allow_busy`: runs while a script is busy.
pub const ALLOW_BUSY: u16 = 1 << 7;

/// `no_multi`: refused inside MULTI.
pub const NO_MULTI: u16 = 1 << 9;

/// `may_replicate`: treated as a write by CLIENT PAUSE WRITE, read-only
/// scripts and MONITOR clients, but not by the checks that guard data
/// (MISCONF, min-replicas, SCRIPT KILL). The script commands have it too;
/// the script's declared flags decide for them (see
/// `command::scripting::held_by_write_pause`).
pub const MAY_REPLICATE: u16 = 1 << 10;

/// EVAL, FCALL and their variants: queued to the scripting thread without
/// entering the keyspace gate (see `command::scripting::run_script`).
pub const RUNS_SCRIPT: u16 = 1 << 8;

/// The commands that run a script.
const SCRIPT_RUNNERS: &[&str] = &[
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

/// Commands Redis 7.0 flags `may_replicate` (not shown by COMMAND INFO)
/// among those herald implements, but the script commands (EVAL,
/// EVALSHA, FCALL), whose scripts' flags decide.
const MAY_REPLICATE_NAMES: &[&str] = &["publish", "spublish", "pfcount"];

/// The bits for a command's full name (`set`, `client|pause`).
fn bits_for(fullname: &str) -> u16 {
    let mut bits = 0;
    for f in crate::catalog::flags(fullname).unwrap_or(&[]) {
        bits |= match *f {
            "denyoom" => DENYOOM,
            "write" => WRITE,
            "admin" | "skip_monitor" => NO_MONITOR,
            "skip_slowlog" => SKIP_SLOWLOG,
            "fast" => FAST,
            "readonly" => READONLY,
            "noscript" => NOSCRIPT,
            "allow_busy" => ALLOW_BUSY,
            "no_multi" => NO_MULTI,
            _ => 0,
        };
    }
    if MAY_REPLICATE_NAMES.contains(&fullname) {
        bits |= MAY_REPLICATE;
    }
    if SCRIPT_RUNNERS.contains(&fullname) {
        bits |= RUNS_SCRIPT;
    }
    bits
}

/// What is looked up once per command: its flag bits and its number.
struct Entry {
    bits: u16,
    id: u16,
}

/// Every command and subcommand, keyed by the address of its `Spec`,
/// and their full names in the order of their numbers.
struct Table {
    by_spec: HashMap<usize, Entry, ahash::RandomState>,
    names: Vec<String>,
}

fn table() -> &'static Table {
    static TABLE_: OnceLock<Table> = OnceLock::new();
    TABLE_.get_or_init(|| {
        let mut t = Table {
            by_spec: HashMap::default(),
            names: Vec::new(),
        };
        let mut add = |spec: &Spec, full: String| {
            let id = t.names.len() as u16;
            t.by_spec.insert(
                spec as *const Spec as usize,
                Entry {
                    bits: bits_for(&full),
                    id,
                },
            );
            t.names.push(full);
        };
        for s in TABLE {
            add(s, s.name.to_string());
            for sub in s.subcommands {
                add(sub, format!("{}|{}", s.name, sub.name));
            }
        }
        t
    })
}

/// The flag bits of `spec` (which must come from [`TABLE`]; 0 otherwise).
#[inline]
pub fn of(spec: &Spec) -> u16 {
    table()
        .by_spec
        .get(&(spec as *const Spec as usize))
        .map_or(0, |e| e.bits)
}

/// The number of `spec` (from [`TABLE`]) among [`names`]: where the
/// per-command counters (`observe::cmdstats`) keep its figures.
#[inline]
pub fn id(spec: &Spec) -> Option<usize> {
    table()
        .by_spec
        .get(&(spec as *const Spec as usize))
        .map(|e| usize::from(e.id))
}

/// The full names (`get`, `client|list`) of every command and
/// subcommand, indexed by [`id`].
pub fn names() -> &'static [String] {
    &table().names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_redis() {
        let get = |name: &str| super::super::find(TABLE, name.as_bytes()).map(of);
        assert_eq!(
            get("set").map(|f| f & (DENYOOM | WRITE)),
            Some(DENYOOM | WRITE)
        );
        assert_eq!(get("get").map(|f| f & (DENYOOM | WRITE)), Some(0));
        assert_eq!(
            get("publish").map(|f| f & (WRITE | MAY_REPLICATE)),
            Some(MAY_REPLICATE)
        );
        assert_eq!(
            get("pfcount").map(|f| f & (WRITE | MAY_REPLICATE | READONLY)),
            Some(MAY_REPLICATE | READONLY)
        );
        assert_eq!(get("exec").map(|f| f & SKIP_SLOWLOG), Some(SKIP_SLOWLOG));
        assert_eq!(get("ping").map(|f| f & FAST), Some(FAST));
        assert_eq!(get("shutdown").map(|f| f & NO_MONITOR), Some(NO_MONITOR));
    }
}
