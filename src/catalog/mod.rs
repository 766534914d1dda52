//! Redis 7.0.15's command catalog: every command's arity, flags, ACL
//! categories, key specs and documentation, and the replies built from it
//! (`COMMAND`, `COMMAND COUNT`, `COMMAND INFO`, `COMMAND DOCS`, `COMMAND
//! LIST`, `COMMAND GETKEYS`, `COMMAND GETKEYSANDFLAGS` and `COMMAND HELP`),
//! byte-for-byte as redis-server 7.0.15 sends them. The dispatcher
//! (`command`) and the ACL checks (`acl`) read the same data.
//!
//! Clients and tools (redis-cli hints, cluster-aware clients, RedisInsight)
//! read this metadata to learn arities, flags and where the keys are, so it
//! must match Redis exactly. Rather than re-typing it, herald embeds what a
//! real redis-server 7.0.15 answers: `scripts/gen-command-data.py` asks the
//! server for `COMMAND INFO` and `COMMAND DOCS` of every command in RESP3 (so
//! sets, maps and simple strings keep their types) and writes the raw replies
//! to `data/commands.resp`. This module reads that file with a small RESP3
//! reader when first needed and turns the entries into [`Frame`]s, which the
//! connection then encodes for RESP2 or RESP3 as usual.
//!
//! The data covers all of Redis's commands, while herald implements only some
//! of them: every function that lists or describes commands takes the names
//! herald implements (the dispatch table's names) and hides the rest, so
//! `COMMAND INFO` of a command herald lacks is a nil entry, as for any unknown
//! command. A subcommand is named `container|sub` (`client|kill`) and counts
//! as implemented when both it and its container are listed. Matching of
//! implemented names is case-insensitive; names without captured data (herald
//! extensions) are ignored.
//!
//! Key extraction (`COMMAND GETKEYS`) interprets the captured key specs
//! (`begin_search` index/keyword, `find_keys` range/keynum) as Redis's
//! `getKeysUsingKeySpecs` does, and falls back to ports of Redis's per-command
//! key functions (`sortGetKeys`, `migrateGetKeys`, ...) exactly where Redis
//! does: for specs Redis cannot interpret (`unknown`, `incomplete`) or whose
//! flags depend on the arguments (`variable_flags`).
//!
//! Ordering: redis-server lists commands (and a container's subcommands) in
//! the order of its hash tables, which is seeded randomly at every start, so
//! it is unspecified. herald uses alphabetical order everywhere, a container
//! directly followed by its subcommands.

use std::collections::HashSet;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::protocol::Frame;

/// The captured data; see `scripts/gen-command-data.py` for its layout.
static DATA: &[u8] = include_bytes!("data/commands.resp");

/// The redis-server version the embedded data was captured from.
pub const REDIS_VERSION: &str = "7.0.15";

/// `COMMAND` and all its subcommands: the reply to `COMMAND <args>`, where
/// `args` are the arguments after `COMMAND` (empty for plain `COMMAND`).
///
/// Routes to the functions below and produces Redis's errors for unknown
/// subcommands and wrong argument counts, so the dispatch table can hand the
/// whole command here. `implemented` is the list of commands herald serves.
#[cfg(test)]
pub fn command<A: AsRef<[u8]>>(args: &[A], implemented: &[&str]) -> Frame {
    let Some(sub) = args.first() else {
        return command_reply(implemented);
    };
    let sub = sub.as_ref();
    let Some(meta) = catalog().find(b"command").and_then(|c| c.subcommand(sub)) else {
        // Redis prints the name with "%.128s" (so up to a NUL byte) and
        // replaces CR and LF, which would break the protocol, with spaces.
        let shown = c_str(sub);
        let mut msg = b"ERR unknown subcommand '".to_vec();
        msg.extend(shown[..shown.len().min(128)].iter().map(|&b| match b {
            b'\r' | b'\n' => b' ',
            b => b,
        }));
        msg.extend_from_slice(b"'. Try COMMAND HELP.");
        return Frame::Error(Bytes::from(msg));
    };
    if !arity_ok(meta.arity, args.len() + 1) {
        return Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            meta.name
        ));
    }
    let rest = &args[1..];
    // Every subcommand of COMMAND is served here, whatever `implemented` says.
    let result = match meta.name {
        "command|count" => Ok(Frame::Integer(count(implemented))),
        "command|info" => Ok(info(rest, implemented)),
        "command|docs" => Ok(docs(rest, implemented)),
        "command|list" => list(rest, implemented),
        "command|getkeys" => getkeys_for(rest, implemented),
        "command|getkeysandflags" => getkeysandflags_for(rest, implemented),
        "command|help" => Ok(help()),
        _ => Err(Frame::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            &meta.name["command|".len()..]
        ))),
    };
    result.unwrap_or_else(|e| e)
}

/// `COMMAND` with no arguments (and `COMMAND INFO` with no names): the INFO
/// entries of every implemented command, in alphabetical order.
pub fn command_reply(implemented: &[&str]) -> Frame {
    let set = Implemented::new(implemented);
    Frame::Array(
        catalog()
            .commands
            .iter()
            .filter(|c| set.has(c.name))
            .map(|c| c.info_frame(&set))
            .collect(),
    )
}

/// `COMMAND COUNT`: how many top-level commands are implemented.
pub fn count(implemented: &[&str]) -> i64 {
    let set = Implemented::new(implemented);
    catalog()
        .commands
        .iter()
        .filter(|c| set.has(c.name))
        .count() as i64
}

/// `COMMAND INFO [name ...]`: one entry per name, in the order asked; a nil
/// entry for names that are unknown or not implemented. Names are
/// case-insensitive and may name subcommands (`client|kill`). With no names,
/// the same as [`command_reply`].
pub fn info<A: AsRef<[u8]>>(names: &[A], implemented: &[&str]) -> Frame {
    if names.is_empty() {
        return command_reply(implemented);
    }
    let set = Implemented::new(implemented);
    Frame::Array(
        names
            .iter()
            .map(|n| match lookup_by_fullname(n.as_ref(), &set) {
                Some(c) => c.info_frame(&set),
                None => Frame::Null,
            })
            .collect(),
    )
}

/// `COMMAND DOCS [name ...]`: a map from command name to its documentation
/// map (summary, since, group, complexity, history, arguments, ...). Unknown
/// and unimplemented names are left out, as Redis leaves out unknown ones;
/// with no names, every implemented command.
pub fn docs<A: AsRef<[u8]>>(names: &[A], implemented: &[&str]) -> Frame {
    let set = Implemented::new(implemented);
    let pair = |c: &Command| {
        (
            Frame::Bulk(Bytes::from_static(c.name.as_bytes())),
            c.docs_frame(&set),
        )
    };
    if names.is_empty() {
        return Frame::Map(
            catalog()
                .commands
                .iter()
                .filter(|c| set.has(c.name))
                .map(pair)
                .collect(),
        );
    }
    Frame::Map(
        names
            .iter()
            .filter_map(|n| lookup_by_fullname(n.as_ref(), &set))
            .map(pair)
            .collect(),
    )
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN glob]`:
/// the names of implemented commands and subcommands, optionally filtered.
///
/// `args` are the arguments after `LIST`. Categories are given without `@`
/// and matched case-insensitively; patterns use Redis's glob, also
/// case-insensitively. herald has no modules, so `MODULE` matches nothing.
/// Errors are Redis's `syntax error` replies.
pub fn list<A: AsRef<[u8]>>(args: &[A], implemented: &[&str]) -> Result<Frame, Frame> {
    enum Filter<'a> {
        All,
        Module,
        AclCat(&'a [u8]),
        Pattern(&'a [u8]),
    }
    let syntax = || Frame::error("ERR syntax error");
    let mut filter = Filter::All;
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if !args[i].as_ref().eq_ignore_ascii_case(b"filterby") || more != 2 {
            return Err(syntax());
        }
        let kind = args[i + 1].as_ref();
        let arg = args[i + 2].as_ref();
        filter = if kind.eq_ignore_ascii_case(b"module") {
            Filter::Module
        } else if kind.eq_ignore_ascii_case(b"aclcat") {
            Filter::AclCat(arg)
        } else if kind.eq_ignore_ascii_case(b"pattern") {
            Filter::Pattern(arg)
        } else {
            return Err(syntax());
        };
        i += 3;
    }
    let set = Implemented::new(implemented);
    let keep = |c: &Command| match filter {
        Filter::All => true,
        Filter::Module => false,
        Filter::AclCat(cat) => c.acl_categories.iter().any(|a| {
            a.strip_prefix('@')
                .is_some_and(|a| a.as_bytes().eq_ignore_ascii_case(c_str(cat)))
        }),
        Filter::Pattern(p) => string_match(p, c.name.as_bytes(), true),
    };
    let mut out = Vec::new();
    for c in catalog().commands.iter().filter(|c| set.has(c.name)) {
        if keep(c) {
            out.push(Frame::Bulk(Bytes::from_static(c.name.as_bytes())));
        }
        for s in c.subcommands.iter().filter(|s| set.has(s.name)) {
            if keep(s) {
                out.push(Frame::Bulk(Bytes::from_static(s.name.as_bytes())));
            }
        }
    }
    Ok(Frame::Array(out))
}

/// `COMMAND GETKEYS <command> [arg ...]`: the key arguments of a full command
/// line, found as Redis finds them (key specs, then key functions), for any
/// command Redis knows. [`getkeys_for`] limits it to herald's commands.
///
/// `args` is the command line to analyse (everything after `GETKEYS`).
/// Errors are Redis's: `Invalid command specified` (unknown command),
/// `The command has no key arguments`, `Invalid number of arguments specified
/// for command`, `Invalid arguments specified for command` (no keys found in a
/// command that needs some).
#[cfg(test)]
pub fn getkeys<A: AsRef<[u8]>>(args: &[A]) -> Result<Frame, Frame> {
    getkeys_impl(args, &Implemented::All, false)
}

/// `COMMAND GETKEYSANDFLAGS <command> [arg ...]`: like [`getkeys`], each key
/// paired with the set of its access flags (`RO`, `RW`, `OW`, `access`, ...).
#[cfg(test)]
pub fn getkeysandflags<A: AsRef<[u8]>>(args: &[A]) -> Result<Frame, Frame> {
    getkeys_impl(args, &Implemented::All, true)
}

/// `COMMAND GETKEYS`, answering `Invalid command specified` for commands herald
/// does not implement, consistently with [`info`].
pub fn getkeys_for<A: AsRef<[u8]>>(args: &[A], implemented: &[&str]) -> Result<Frame, Frame> {
    getkeys_impl(args, &Implemented::new(implemented), false)
}

/// `COMMAND GETKEYSANDFLAGS` limited to the commands herald implements.
pub fn getkeysandflags_for<A: AsRef<[u8]>>(
    args: &[A],
    implemented: &[&str],
) -> Result<Frame, Frame> {
    getkeys_impl(args, &Implemented::new(implemented), true)
}

/// Redis's arity of a command or subcommand (`get`, `client|kill`): N means
/// exactly N arguments including the name(s), -N at least N. For checking the
/// dispatch table against Redis; `None` for names Redis does not know.
pub fn arity(name: &str) -> Option<i64> {
    lookup_by_fullname(name.as_bytes(), &Implemented::All).map(|c| c.arity)
}

/// Redis's command flags of a command or subcommand (`readonly`, `fast`,
/// `pubsub`, ...), in Redis's order; `None` for names Redis does not know.
pub fn flags(name: &str) -> Option<&'static [&'static str]> {
    lookup_by_fullname(name.as_bytes(), &Implemented::All).map(|c| c.flags.as_slice())
}

/// Redis's ACL categories of a command or subcommand (`@read`, `@pubsub`, ...).
pub fn acl_categories(name: &str) -> Option<&'static [&'static str]> {
    lookup_by_fullname(name.as_bytes(), &Implemented::All).map(|c| c.acl_categories.as_slice())
}

/// Every name the data describes: each top-level command followed by its
/// subcommands (`client`, `client|caching`, ...), alphabetically. Passing
/// this as `implemented` makes the replies those of a full redis-server.
pub fn all_names() -> Vec<&'static str> {
    let mut out = Vec::new();
    for c in &catalog().commands {
        out.push(c.name);
        out.extend(c.subcommands.iter().map(|s| s.name));
    }
    out
}

/// `COMMAND HELP`: the help text, exactly as Redis 7.0.15 prints it.
pub fn help() -> Frame {
    read_one(catalog().help).expect("embedded COMMAND HELP data is valid (checked by tests)")
}

// ---------------------------------------------------------------------------
// The catalog: the embedded data, indexed.

/// Everything read from the data file.
struct Catalog {
    /// Raw RESP3 reply of `COMMAND HELP`.
    help: &'static [u8],
    /// Top-level commands, sorted by name.
    commands: Vec<Command>,
}

/// One command or subcommand, with the fields herald needs parsed and the
/// replies kept as raw RESP3 (parsed into frames only when asked for, so the
/// catalog stays small).
struct Command {
    /// Full lowercase name, `get` or `client|kill`.
    name: &'static str,
    arity: i64,
    flags: Vec<&'static str>,
    /// As in `COMMAND INFO`, with the `@`.
    acl_categories: Vec<&'static str>,
    key_specs: Vec<KeySpec>,
    /// Raw `COMMAND INFO` entry (with all subcommands, sorted by name).
    info: &'static [u8],
    /// Raw `COMMAND DOCS` value (with all subcommands, sorted by name).
    docs: &'static [u8],
    /// Sorted by name.
    subcommands: Vec<Command>,
}

/// The catalog, read from [`DATA`] on first use.
fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        Catalog::load(DATA).unwrap_or_else(|e| {
            panic!("embedded COMMAND data is invalid ({e}); regenerate it with scripts/gen-command-data.py")
        })
    })
}

impl Catalog {
    fn load(data: &'static [u8]) -> Result<Catalog, DataError> {
        let top = children(data)?;
        let mut version = None;
        let mut help = None;
        let mut commands = Vec::new();
        for pair in top.chunks(2) {
            let [key, value] = pair else {
                return Err(DataError::new("odd map"));
            };
            match text(key)? {
                "version" => version = Some(text(value)?),
                "help" => help = Some(*value),
                "commands" => {
                    for entry in children(value)? {
                        let [info, docs] = children(entry)?[..] else {
                            return Err(DataError::new("command entry is not [info, docs]"));
                        };
                        commands.push(Command::load(info, docs)?);
                    }
                }
                other => return Err(DataError::new(format!("unknown key {other}"))),
            }
        }
        commands.sort_by(|a, b| a.name.cmp(b.name));
        if version != Some(REDIS_VERSION) {
            return Err(DataError::new(format!("data is from redis {version:?}")));
        }
        Ok(Catalog {
            help: help.ok_or_else(|| DataError::new("no help"))?,
            commands,
        })
    }

    /// The top-level command called `name` (case-insensitive).
    fn find(&self, name: &[u8]) -> Option<&Command> {
        find_in(&self.commands, name)
    }
}

fn find_in<'a>(list: &'a [Command], name: &[u8]) -> Option<&'a Command> {
    let lower = name.to_ascii_lowercase();
    list.binary_search_by(|c| c.name.as_bytes().cmp(&lower))
        .ok()
        .map(|i| &list[i])
}

impl Command {
    fn load(info: &'static [u8], docs: &'static [u8]) -> Result<Command, DataError> {
        let parts = children(info)?;
        let [name, arity, flags, _first, _last, _step, acl, _tips, specs, subs] = parts[..] else {
            return Err(DataError::new("INFO entry does not have 10 fields"));
        };
        let name = text(name)?;
        let Frame::Integer(arity) = read_one(arity)? else {
            return Err(DataError::new(format!("{name}: arity is not an integer")));
        };
        let key_specs = match read_one(specs)? {
            Frame::Set(v) | Frame::Array(v) => v
                .iter()
                .map(KeySpec::parse)
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(DataError::new(format!("{name}: key specs"))),
        };
        let mut subcommands = Vec::new();
        let sub_infos = children(subs)?;
        if !sub_infos.is_empty() {
            let sub_docs = map_get(docs, "subcommands")?
                .ok_or_else(|| DataError::new(format!("{name}: no subcommand docs")))?;
            let sub_docs = children(sub_docs)?;
            for sub_info in sub_infos {
                let sub_name = text(children(sub_info)?[0])?;
                let sub_doc = sub_docs
                    .chunks(2)
                    .find(|p| text(p[0]).ok() == Some(sub_name))
                    .and_then(|p| p.get(1))
                    .ok_or_else(|| DataError::new(format!("{sub_name}: no docs")))?;
                subcommands.push(Command::load(sub_info, sub_doc)?);
            }
            subcommands.sort_by(|a, b| a.name.cmp(b.name));
        }
        Ok(Command {
            name,
            arity,
            flags: text_list(flags)?,
            acl_categories: text_list(acl)?,
            key_specs,
            info,
            docs,
            subcommands,
        })
    }

    /// The subcommand `sub` of this container (case-insensitive).
    fn subcommand(&self, sub: &[u8]) -> Option<&Command> {
        let mut full = self.name.as_bytes().to_vec();
        full.push(b'|');
        full.extend_from_slice(sub);
        find_in(&self.subcommands, &full)
    }

    /// This command's `COMMAND INFO` entry, listing only implemented subcommands.
    fn info_frame(&self, set: &Implemented) -> Frame {
        let mut frame =
            read_one(self.info).expect("embedded COMMAND INFO data is valid (checked by tests)");
        if !self.subcommands.iter().all(|s| set.has(s.name)) {
            if let Frame::Array(fields) = &mut frame {
                if let Some(Frame::Set(subs) | Frame::Array(subs)) = fields.get_mut(9) {
                    subs.retain(|s| match s {
                        Frame::Array(f) => {
                            matches!(f.first(), Some(Frame::Bulk(n)) if set.has_bytes(n))
                        }
                        _ => false,
                    });
                }
            }
        }
        frame
    }

    /// This command's `COMMAND DOCS` map, listing only implemented subcommands.
    fn docs_frame(&self, set: &Implemented) -> Frame {
        let mut frame =
            read_one(self.docs).expect("embedded COMMAND DOCS data is valid (checked by tests)");
        if !self.subcommands.iter().all(|s| set.has(s.name)) {
            if let Frame::Map(fields) = &mut frame {
                for (k, v) in fields.iter_mut() {
                    if let (Frame::Bulk(k), Frame::Map(subs)) = (k, v) {
                        if &k[..] == b"subcommands" {
                            subs.retain(|(n, _)| matches!(n, Frame::Bulk(n) if set.has_bytes(n)));
                        }
                    }
                }
            }
        }
        frame
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }
}

/// Finds a command by the name `COMMAND INFO`/`DOCS` accept: `name` or
/// `container|sub`, case-insensitive (Redis's `lookupCommandBySds`).
fn lookup_by_fullname(name: &[u8], set: &Implemented) -> Option<&'static Command> {
    let mut parts = name.split(|&b| b == b'|');
    let base = parts.next()?;
    let sub = parts.next();
    if parts.next().is_some() || name.is_empty() {
        return None;
    }
    let cmd = catalog().find(base).filter(|c| set.has(c.name))?;
    match sub {
        None => Some(cmd),
        Some(sub) => cmd.subcommand(sub).filter(|s| set.has(s.name)),
    }
}

/// Finds the command a command line runs (Redis's `lookupCommand`): the
/// container's subcommand when the first word names a container.
fn lookup_by_argv<A: AsRef<[u8]>>(argv: &[A], set: &Implemented) -> Option<&'static Command> {
    let cmd = catalog()
        .find(argv.first()?.as_ref())
        .filter(|c| set.has(c.name))?;
    if argv.len() == 1 || cmd.subcommands.is_empty() {
        return Some(cmd);
    }
    cmd.subcommand(argv[1].as_ref()).filter(|s| set.has(s.name))
}

/// Which commands to show: the names herald implements (lowercased for
/// lookups), or all of them for questions about Redis itself (`arity`).
enum Implemented {
    All,
    Some(HashSet<Vec<u8>>),
}

impl Implemented {
    fn new(names: &[&str]) -> Implemented {
        Implemented::Some(
            names
                .iter()
                .map(|n| n.as_bytes().to_ascii_lowercase())
                .collect(),
        )
    }

    /// Whether `name` (lowercase, as in the data) is implemented; a
    /// subcommand also needs its container.
    fn has(&self, name: &str) -> bool {
        self.has_bytes(name.as_bytes())
    }

    fn has_bytes(&self, name: &[u8]) -> bool {
        match self {
            Implemented::All => true,
            Implemented::Some(set) => {
                set.contains(name)
                    && match name.iter().position(|&b| b == b'|') {
                        Some(bar) => set.contains(&name[..bar]),
                        None => true,
                    }
            }
        }
    }
}

/// Redis's arity check: `n` arguments including the command name(s).
fn arity_ok(arity: i64, n: usize) -> bool {
    let n = n as i64;
    if arity >= 0 {
        arity == n
    } else {
        n >= -arity
    }
}

// ---------------------------------------------------------------------------
// Key extraction.

/// Key flags in Redis's order (`addReplyFlagsForKeyArgs`); bit i is name i.
const KEY_FLAG_NAMES: [&str; 11] = [
    "RO",
    "RW",
    "OW",
    "RM",
    "access",
    "update",
    "insert",
    "delete",
    "not_key",
    "incomplete",
    "variable_flags",
];

/// A set of key flags, bit i meaning [`KEY_FLAG_NAMES`]`[i]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct KeyFlags(u16);

impl KeyFlags {
    const RO: KeyFlags = KeyFlags(1 << 0);
    const RW: KeyFlags = KeyFlags(1 << 1);
    const OW: KeyFlags = KeyFlags(1 << 2);
    const ACCESS: KeyFlags = KeyFlags(1 << 4);
    const UPDATE: KeyFlags = KeyFlags(1 << 5);
    const INSERT: KeyFlags = KeyFlags(1 << 6);
    const DELETE: KeyFlags = KeyFlags(1 << 7);
    const NOT_KEY: KeyFlags = KeyFlags(1 << 8);
    const INCOMPLETE: KeyFlags = KeyFlags(1 << 9);
    const VARIABLE_FLAGS: KeyFlags = KeyFlags(1 << 10);

    const fn or(self, other: KeyFlags) -> KeyFlags {
        KeyFlags(self.0 | other.0)
    }

    fn has(self, other: KeyFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// The flags as Redis replies them: a set of status strings.
    fn to_frame(self) -> Frame {
        Frame::Set(
            KEY_FLAG_NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| self.0 & (1 << i) != 0)
                .map(|(_, n)| Frame::Simple(Bytes::from_static(n.as_bytes())))
                .collect(),
        )
    }
}

/// Where a key spec starts looking for keys.
#[derive(Debug)]
enum BeginSearch {
    /// At a fixed argument index.
    Index(i64),
    /// After the first `keyword` found, searching from `startfrom` (forwards
    /// if positive, backwards from the end if negative).
    Keyword { keyword: Bytes, startfrom: i64 },
    /// Not describable; Redis uses the command's key function.
    Unknown,
}

/// How a key spec finds keys from where the search began.
#[derive(Debug)]
enum FindKeys {
    /// Keys up to `lastkey` (relative to the start if >= 0, to the end if
    /// negative; with `limit`, the last 1/limit of the rest), every `keystep`.
    Range {
        lastkey: i64,
        keystep: i64,
        limit: i64,
    },
    /// An argument (at `keynumidx` from the start) giving the number of keys,
    /// which begin `firstkey` after the start, every `keystep`.
    Keynum {
        keynumidx: i64,
        firstkey: i64,
        keystep: i64,
    },
    Unknown,
}

/// One key spec from `COMMAND INFO`.
#[derive(Debug)]
struct KeySpec {
    flags: KeyFlags,
    begin: BeginSearch,
    find: FindKeys,
}

impl KeySpec {
    fn parse(frame: &Frame) -> Result<KeySpec, DataError> {
        let err = || DataError::new(format!("bad key spec {frame:?}"));
        let mut flags = KeyFlags::default();
        let (Some(Frame::Set(names)) | Some(Frame::Array(names))) = frame_get(frame, "flags")
        else {
            return Err(err());
        };
        for f in names {
            let f = frame_bytes(f).ok_or_else(err)?;
            let bit = KEY_FLAG_NAMES
                .iter()
                .position(|n| n.as_bytes() == f)
                .ok_or_else(err)?;
            flags = flags.or(KeyFlags(1 << bit));
        }
        let bs = frame_get(frame, "begin_search").ok_or_else(err)?;
        let bs_spec = frame_get(bs, "spec").ok_or_else(err)?;
        let int = |f: &Frame, k: &str| match frame_get(f, k) {
            Some(Frame::Integer(n)) => Ok(*n),
            _ => Err(err()),
        };
        let begin = match frame_get(bs, "type").and_then(frame_bytes) {
            Some(b"index") => BeginSearch::Index(int(bs_spec, "index")?),
            Some(b"keyword") => BeginSearch::Keyword {
                keyword: match frame_get(bs_spec, "keyword") {
                    Some(Frame::Bulk(b)) => b.clone(),
                    _ => return Err(err()),
                },
                startfrom: int(bs_spec, "startfrom")?,
            },
            Some(b"unknown") => BeginSearch::Unknown,
            _ => return Err(err()),
        };
        let fk = frame_get(frame, "find_keys").ok_or_else(err)?;
        let fk_spec = frame_get(fk, "spec").ok_or_else(err)?;
        let find = match frame_get(fk, "type").and_then(frame_bytes) {
            Some(b"range") => FindKeys::Range {
                lastkey: int(fk_spec, "lastkey")?,
                keystep: int(fk_spec, "keystep")?,
                limit: int(fk_spec, "limit")?,
            },
            Some(b"keynum") => FindKeys::Keynum {
                keynumidx: int(fk_spec, "keynumidx")?,
                firstkey: int(fk_spec, "firstkey")?,
                keystep: int(fk_spec, "keystep")?,
            },
            Some(b"unknown") => FindKeys::Unknown,
            _ => return Err(err()),
        };
        Ok(KeySpec { flags, begin, find })
    }
}

fn getkeys_impl<A: AsRef<[u8]>>(
    args: &[A],
    set: &Implemented,
    with_flags: bool,
) -> Result<Frame, Frame> {
    if args.len() < 2 {
        let sub = if with_flags {
            "getkeysandflags"
        } else {
            "getkeys"
        };
        return Err(Frame::error(format!(
            "ERR wrong number of arguments for 'command|{sub}' command"
        )));
    }
    let Some(cmd) = lookup_by_argv(args, set) else {
        return Err(Frame::error("ERR Invalid command specified"));
    };
    if !has_keys(cmd) {
        return Err(Frame::error("ERR The command has no key arguments"));
    }
    if !arity_ok(cmd.arity, args.len()) {
        return Err(Frame::error(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
    let keys = key_positions(cmd, &argv);
    if keys.is_empty() {
        return if cmd.has_flag("no_mandatory_keys") {
            Ok(Frame::Array(Vec::new()))
        } else {
            Err(Frame::error("ERR Invalid arguments specified for command"))
        };
    }
    Ok(Frame::Array(
        keys.into_iter()
            .map(|(pos, flags)| {
                let key = Frame::Bulk(Bytes::copy_from_slice(argv[pos]));
                if with_flags {
                    Frame::Array(vec![key, flags.to_frame()])
                } else {
                    key
                }
            })
            .collect(),
    ))
}

/// For ACL key checks (Redis's `ACLSelectorCheckKey`): the position of
/// each key of the command line `argv` (a container's subcommand resolved
/// as Redis's `lookupCommand` does), whether it is read (`access`) and
/// whether it is written (`insert`, `delete` or `update`). Empty for
/// commands without keys and for unknown ones.
pub fn acl_key_access<A: AsRef<[u8]>>(argv: &[A]) -> Vec<(usize, bool, bool)> {
    let Some(cmd) = lookup_by_argv(argv, &Implemented::All) else {
        return Vec::new();
    };
    if !has_keys(cmd) {
        return Vec::new();
    }
    let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_ref()).collect();
    key_positions(cmd, &argv)
        .into_iter()
        .filter(|&(pos, _)| pos < argv.len())
        .map(|(pos, f)| {
            let write =
                f.has(KeyFlags::INSERT) || f.has(KeyFlags::DELETE) || f.has(KeyFlags::UPDATE);
            (pos, f.has(KeyFlags::ACCESS), write)
        })
        .collect()
}

/// Redis's `doesCommandHaveKeys`: a key function, or a spec that is a key.
fn has_keys(cmd: &Command) -> bool {
    key_function(cmd.name).is_some()
        || cmd
            .key_specs
            .iter()
            .any(|s| !s.flags.has(KeyFlags::NOT_KEY))
}

/// Redis's `getKeysFromCommandWithSpecs`: the positions of the keys in `argv`
/// (argv[0] is the command name) with their flags, in Redis's order.
fn key_positions(cmd: &Command, argv: &[&[u8]]) -> Vec<(usize, KeyFlags)> {
    let has_keyspec = cmd
        .key_specs
        .iter()
        .any(|s| !s.flags.has(KeyFlags::NOT_KEY));
    let has_varflags = cmd
        .key_specs
        .iter()
        .any(|s| s.flags.has(KeyFlags::VARIABLE_FLAGS));
    if has_keyspec && !has_varflags {
        if let Some(keys) = keys_from_specs(&cmd.key_specs, argv) {
            return keys;
        }
    }
    match key_function(cmd.name) {
        Some(f) => f.keys(argv),
        None => Vec::new(),
    }
}

/// Redis's `getKeysUsingKeySpecs`: `None` when a spec cannot be applied (an
/// unknown or incomplete spec, or arguments that do not fit it).
fn keys_from_specs(specs: &[KeySpec], argv: &[&[u8]]) -> Option<Vec<(usize, KeyFlags)>> {
    let argc = argv.len() as i64;
    let mut keys = Vec::new();
    for spec in specs {
        if spec.flags.has(KeyFlags::NOT_KEY) {
            continue;
        }
        let mut first = match &spec.begin {
            BeginSearch::Index(pos) => *pos,
            BeginSearch::Keyword { keyword, startfrom } => {
                let startfrom = *startfrom;
                let (start, end) = if startfrom > 0 {
                    (startfrom, argc - 1)
                } else {
                    (argc + startfrom, 1)
                };
                let mut found = 0;
                let mut i = start;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if c_str(argv[i as usize]).eq_ignore_ascii_case(keyword) {
                        found = i + 1;
                        break;
                    }
                    i += if start <= end { 1 } else { -1 };
                }
                if found == 0 {
                    continue; // keyword absent: this spec has no keys
                }
                found
            }
            BeginSearch::Unknown => return None,
        };
        let (last, step) = match spec.find {
            FindKeys::Range {
                lastkey,
                keystep,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, keystep)
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => {
                let at = first + keynumidx;
                if keynumidx >= argc || at < 0 || at >= argc {
                    return None;
                }
                let numkeys = string2ll(argv[at as usize]).filter(|n| *n >= 0)?;
                first += firstkey;
                // Redis casts the count to a C int.
                (first + i64::from(numkeys as i32) - 1, keystep)
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc || step < 1 {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push((i as usize, spec.flags));
            i += step;
        }
        if spec.flags.has(KeyFlags::INCOMPLETE) {
            return None;
        }
    }
    Some(keys)
}

/// Ports of Redis 7.0's per-command key functions (`getkeys_proc`), used
/// where key specs cannot describe the keys.
#[derive(Clone, Copy, Debug)]
enum KeyFunction {
    /// `genericGetKeys(storeKeyOfs, keyCountOfs, firstKeyOfs, keyStep)`.
    Generic {
        store: usize,
        count: usize,
        first: usize,
        step: usize,
    },
    Sort,
    SortRo,
    Migrate,
    Georadius,
    Xread,
    Set,
    Bitfield,
}

/// The key function Redis 7.0 registers for a command, if any.
fn key_function(name: &str) -> Option<KeyFunction> {
    use KeyFunction::*;
    const fn generic(store: usize, count: usize, first: usize) -> KeyFunction {
        Generic {
            store,
            count,
            first,
            step: 1,
        }
    }
    Some(match name {
        "zunionstore" | "zinterstore" | "zdiffstore" => generic(1, 2, 3),
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => {
            generic(0, 1, 2)
        }
        "blmpop" | "bzmpop" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall"
        | "fcall_ro" => generic(0, 2, 3),
        "sort" => Sort,
        "sort_ro" => SortRo,
        "migrate" => Migrate,
        "georadius" | "georadiusbymember" => Georadius,
        "xread" | "xreadgroup" => Xread,
        "set" => Set,
        "bitfield" => Bitfield,
        _ => return None,
    })
}

impl KeyFunction {
    fn keys(self, argv: &[&[u8]]) -> Vec<(usize, KeyFlags)> {
        let argc = argv.len();
        let is = |i: usize, word: &str| c_str(argv[i]).eq_ignore_ascii_case(word.as_bytes());
        let none = KeyFlags::default();
        match self {
            KeyFunction::Generic {
                store,
                count,
                first,
                step,
            } => {
                let Some(num) = argv.get(count).map(|a| atoi(a)) else {
                    return Vec::new();
                };
                if num < 1 || i64::from(num) > (argc as i64 - first as i64) / step as i64 {
                    return Vec::new();
                }
                let mut keys: Vec<_> = (0..num as usize)
                    .map(|i| (first + i * step, none))
                    .collect();
                if store != 0 {
                    keys.push((store, none));
                }
                keys
            }
            KeyFunction::SortRo => vec![(1, KeyFlags::RO.or(KeyFlags::ACCESS))],
            KeyFunction::Sort => {
                let mut keys = vec![(1, KeyFlags::RO.or(KeyFlags::ACCESS))];
                let mut store = None;
                const SKIP: [(&str, usize); 3] = [("limit", 2), ("get", 1), ("by", 1)];
                let mut i = 2;
                while i < argc {
                    for (name, skip) in SKIP {
                        if is(i, name) {
                            i += skip;
                            break;
                        } else if is(i, "store") && i + 1 < argc {
                            // The last STORE wins, as in SORT itself.
                            store = Some(i + 1);
                            break;
                        }
                    }
                    i += 1;
                }
                keys.extend(store.map(|s| (s, KeyFlags::OW.or(KeyFlags::UPDATE))));
                keys
            }
            KeyFunction::Migrate => {
                // MIGRATE host port key|"" db timeout [COPY] [REPLACE]
                //   [AUTH pw | AUTH2 user pw] [KEYS key ...]
                const SKIP: [(&str, usize); 4] =
                    [("copy", 0), ("replace", 0), ("auth", 1), ("auth2", 2)];
                let (mut first, mut num) = (3, 1);
                let mut i = 6;
                while i < argc {
                    if is(i, "keys") {
                        if !argv[3].is_empty() {
                            return Vec::new(); // KEYS needs the key argument empty
                        }
                        first = i + 1;
                        num = argc - first;
                        break;
                    }
                    if let Some((_, skip)) = SKIP.iter().find(|(name, _)| is(i, name)) {
                        i += skip;
                    }
                    i += 1;
                }
                let flags = KeyFlags::RW.or(KeyFlags::ACCESS).or(KeyFlags::DELETE);
                (first..first + num).map(|p| (p, flags)).collect()
            }
            KeyFunction::Georadius => {
                let mut stored = None;
                let mut i = 5;
                while i < argc {
                    if (is(i, "store") || is(i, "storedist")) && i + 1 < argc {
                        stored = Some(i + 1);
                        i += 1;
                    }
                    i += 1;
                }
                let mut keys = vec![(1, none)];
                keys.extend(stored.map(|s| (s, none)));
                keys
            }
            KeyFunction::Xread => {
                let mut streams = None;
                let mut i = 1;
                while i < argc {
                    if is(i, "block") || is(i, "count") {
                        i += 1;
                    } else if is(i, "group") {
                        i += 2;
                    } else if is(i, "noack") {
                    } else if is(i, "streams") {
                        streams = Some(i);
                        break;
                    } else {
                        break;
                    }
                    i += 1;
                }
                let Some(pos) = streams else {
                    return Vec::new();
                };
                let num = argc - pos - 1;
                if num == 0 || !num.is_multiple_of(2) {
                    return Vec::new();
                }
                (pos + 1..pos + 1 + num / 2).map(|p| (p, none)).collect()
            }
            KeyFunction::Set => {
                let flags = if (3..argc).any(|i| is(i, "get")) {
                    KeyFlags::RW.or(KeyFlags::ACCESS).or(KeyFlags::UPDATE)
                } else {
                    KeyFlags::OW.or(KeyFlags::UPDATE)
                };
                vec![(1, flags)]
            }
            KeyFunction::Bitfield => {
                // Read-only unless a SET/INCRBY (or anything unparsable) appears.
                let mut read_only = true;
                let mut i = 2;
                while i < argc {
                    let remaining = argc - i - 1;
                    if is(i, "get") && remaining >= 2 {
                        i += 2;
                    } else if is(i, "overflow") && remaining >= 1 {
                        i += 1;
                    } else {
                        // SET/INCRBY write; a syntax error is safer treated as a write.
                        read_only = false;
                        break;
                    }
                    i += 1;
                }
                let flags = if read_only {
                    KeyFlags::RO.or(KeyFlags::ACCESS)
                } else {
                    KeyFlags::RW.or(KeyFlags::ACCESS).or(KeyFlags::UPDATE)
                };
                vec![(1, flags)]
            }
        }
    }
}

use crate::util::c_str;

/// C's `atoi` as glibc implements it (`(int)strtol(s, NULL, 10)`): leading
/// whitespace, a sign, then digits up to the first non-digit; saturating at
/// the `long` range, then truncated to `int`.
fn atoi(s: &[u8]) -> i32 {
    let s = c_str(s);
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while let Some(d) = s.get(i).filter(|d| d.is_ascii_digit()) {
        let d = i64::from(d - b'0');
        v = if negative {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        };
        i += 1;
    }
    v as i32
}

/// Redis's strict `string2ll`: an optional `-`, no leading zeros or spaces,
/// no `+`, within `i64`.
fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if !matches!(digits.first(), Some(b'1'..=b'9')) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Only ASCII digits and '-' are left; parse() also rejects overflow.
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Redis's glob in its `nocase` mode, as `COMMAND LIST FILTERBY PATTERN` uses.
fn string_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let p = if nocase {
        crate::util::glob::Pattern::new_nocase(pattern)
    } else {
        crate::util::glob::Pattern::new(pattern)
    };
    p.matches(string)
}

// ---------------------------------------------------------------------------
// A RESP3 reader for the embedded data: frames borrow the static bytes.

/// The embedded data is malformed (it was edited by hand, or the generator
/// and this reader disagree). Tests load the data, so this never ships.
#[derive(Debug)]
struct DataError(String);

impl DataError {
    fn new(msg: impl Into<String>) -> DataError {
        DataError(msg.into())
    }
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The type byte, the rest of the first line, and the offset after its CRLF.
fn header(buf: &'static [u8], pos: usize) -> Result<(u8, &'static [u8], usize), DataError> {
    let kind = *buf.get(pos).ok_or_else(|| DataError::new("truncated"))?;
    let rest = &buf[pos + 1..];
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| DataError::new("no CRLF"))?;
    Ok((kind, &rest[..end], pos + 1 + end + 2))
}

fn number(line: &[u8]) -> Result<i64, DataError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| DataError::new(format!("bad number {:?}", String::from_utf8_lossy(line))))
}

/// Parses the frame at `pos`; returns it and the offset after it.
fn parse(buf: &'static [u8], pos: usize) -> Result<(Frame, usize), DataError> {
    let (kind, line, mut p) = header(buf, pos)?;
    let aggregate = |n: i64, p: &mut usize| -> Result<Vec<Frame>, DataError> {
        let mut items = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n {
            let (f, next) = parse(buf, *p)?;
            items.push(f);
            *p = next;
        }
        Ok(items)
    };
    let frame = match kind {
        b'+' => Frame::Simple(Bytes::from_static(line)),
        b'-' => Frame::Error(Bytes::from_static(line)),
        b':' => Frame::Integer(number(line)?),
        b'_' => Frame::Null,
        b'#' => Frame::Boolean(line == b"t"),
        b',' => Frame::Double(match line {
            b"inf" => f64::INFINITY,
            b"-inf" => f64::NEG_INFINITY,
            _ => std::str::from_utf8(line)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| DataError::new("bad double"))?,
        }),
        b'$' | b'=' => {
            let n = number(line)?;
            if n < 0 {
                return Ok((Frame::Null, p));
            }
            let end = p + n as usize;
            if buf.get(end..end + 2) != Some(b"\r\n") {
                return Err(DataError::new("bad bulk string"));
            }
            let body = &buf[p..end];
            p = end + 2;
            if kind == b'$' {
                Frame::Bulk(Bytes::from_static(body))
            } else {
                let format = body
                    .get(..3)
                    .and_then(|f| std::str::from_utf8(f).ok())
                    .ok_or_else(|| DataError::new("bad verbatim string"))?;
                Frame::Verbatim(
                    format,
                    Bytes::from_static(body.get(4..).unwrap_or_default()),
                )
            }
        }
        b'*' => {
            let n = number(line)?;
            if n < 0 {
                Frame::NullArray
            } else {
                Frame::Array(aggregate(n, &mut p)?)
            }
        }
        b'~' => Frame::Set(aggregate(number(line)?, &mut p)?),
        b'>' => Frame::Push(aggregate(number(line)?, &mut p)?),
        b'%' => {
            let flat = aggregate(2 * number(line)?, &mut p)?;
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Frame::Map(pairs)
        }
        other => {
            return Err(DataError::new(format!(
                "unknown RESP3 type {:?}",
                other as char
            )))
        }
    };
    Ok((frame, p))
}

/// The offset just after the frame at `pos`, without building it.
fn skip(buf: &'static [u8], pos: usize) -> Result<usize, DataError> {
    let (kind, line, mut p) = header(buf, pos)?;
    let n = match kind {
        b'$' | b'=' => {
            let n = number(line)?;
            return Ok(if n < 0 { p } else { p + n as usize + 2 });
        }
        b'*' | b'~' | b'>' => number(line)?,
        b'%' => 2 * number(line)?,
        _ => return Ok(p),
    };
    for _ in 0..n {
        p = skip(buf, p)?;
    }
    Ok(p)
}

/// Parses `raw`, which must hold exactly one frame.
fn read_one(raw: &'static [u8]) -> Result<Frame, DataError> {
    let (frame, end) = parse(raw, 0)?;
    if end != raw.len() {
        return Err(DataError::new("trailing bytes after frame"));
    }
    Ok(frame)
}

/// The raw bytes of each element of the aggregate `raw` (keys and values
/// alternating for a map).
fn children(raw: &'static [u8]) -> Result<Vec<&'static [u8]>, DataError> {
    let (kind, line, mut p) = header(raw, 0)?;
    let n = match kind {
        b'*' | b'~' | b'>' => number(line)?,
        b'%' => 2 * number(line)?,
        _ => return Err(DataError::new("not an aggregate")),
    };
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let end = skip(raw, p)?;
        out.push(&raw[p..end]);
        p = end;
    }
    Ok(out)
}

/// The raw value under `key` in the raw map `raw`.
fn map_get(raw: &'static [u8], key: &str) -> Result<Option<&'static [u8]>, DataError> {
    let items = children(raw)?;
    for pair in items.chunks(2) {
        if let [k, v] = pair {
            if let Frame::Bulk(k) = read_one(k)? {
                if &k[..] == key.as_bytes() {
                    return Ok(Some(v));
                }
            }
        }
    }
    Ok(None)
}

/// The value under the bulk-string `key` in a parsed map.
fn frame_get<'a>(frame: &'a Frame, key: &str) -> Option<&'a Frame> {
    match frame {
        Frame::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| matches!(k, Frame::Bulk(b) if &b[..] == key.as_bytes()))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// The text of the string frame (bulk or simple) in `raw`, borrowed from
/// the static data.
fn text(raw: &'static [u8]) -> Result<&'static str, DataError> {
    let (kind, line, p) = header(raw, 0)?;
    let body = match kind {
        b'+' => line,
        b'$' => raw
            .get(p..p + number(line)?.max(0) as usize)
            .ok_or_else(|| DataError::new("truncated bulk string"))?,
        _ => return Err(DataError::new("not a string")),
    };
    std::str::from_utf8(body).map_err(|_| DataError::new("not UTF-8"))
}

/// The texts of the set or array of strings in `raw`.
fn text_list(raw: &'static [u8]) -> Result<Vec<&'static str>, DataError> {
    children(raw)?.into_iter().map(text).collect()
}

/// The bytes of a string frame.
fn frame_bytes(frame: &Frame) -> Option<&[u8]> {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => Some(b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    /// Replies of redis-server 7.0.15, captured by scripts/gen-command-data.py.
    static FIXTURES: &[u8] = include_bytes!("../../tests/fixtures/command-replies.resp");

    /// What herald implements today, to test the filtering.
    const HERALD: &[&str] = &[
        "ping",
        "echo",
        "hello",
        "quit",
        "reset",
        "select",
        "auth",
        "client",
        "client|id",
        "client|setname",
        "client|getname",
        "client|setinfo",
        "client|list",
        "client|info",
        "client|kill",
        "client|reply",
        "client|help",
        "command",
        "command|count",
        "command|info",
        "command|docs",
        "command|list",
        "command|getkeys",
        "command|getkeysandflags",
        "command|help",
        "info",
        "config",
        "config|get",
        "config|set",
        "config|resetstat",
        "config|help",
        "time",
        "dbsize",
        "flushdb",
        "flushall",
        "shutdown",
        "publish",
        "subscribe",
        "unsubscribe",
        "psubscribe",
        "punsubscribe",
        "pubsub",
        "pubsub|channels",
        "pubsub|numsub",
        "pubsub|numpat",
        "pubsub|shardchannels",
        "pubsub|shardnumsub",
        "pubsub|help",
        "spublish",
        "ssubscribe",
        "sunsubscribe",
        "herald-only-command",
    ];

    struct Case {
        unordered: bool,
        argv: Vec<Bytes>,
        resp2: &'static [u8],
        resp3: &'static [u8],
    }

    fn fixture_cases() -> Vec<Case> {
        let string = |raw| match read_one(raw) {
            Ok(Frame::Bulk(b)) | Ok(Frame::Simple(b)) => b,
            other => panic!("bad fixture field {other:?}"),
        };
        let bulk_body = |raw: &'static [u8]| {
            let (_, _, start) = header(raw, 0).expect("fixture bulk");
            &raw[start..raw.len() - 2]
        };
        children(FIXTURES)
            .expect("fixture file is an array")
            .into_iter()
            .map(|case| {
                let [mode, argv, resp2, resp3] = children(case).expect("fixture case")[..] else {
                    panic!("fixture case is not [mode, argv, resp2, resp3]");
                };
                Case {
                    unordered: &string(mode)[..] == b"unordered",
                    argv: children(argv)
                        .expect("argv")
                        .into_iter()
                        .map(string)
                        .collect(),
                    resp2: bulk_body(resp2),
                    resp3: bulk_body(resp3),
                }
            })
            .collect()
    }

    /// The elements of an encoded aggregate reply, sorted (errors as they are).
    fn sorted_elements(raw: &'static [u8]) -> Vec<&'static [u8]> {
        match children(raw) {
            Ok(mut items) => {
                items.sort();
                items
            }
            Err(_) => vec![raw],
        }
    }

    fn leak(b: Bytes) -> &'static [u8] {
        Box::leak(b.to_vec().into_boxed_slice())
    }

    #[test]
    fn replies_match_redis_byte_for_byte() {
        let all = all_names();
        let cases = fixture_cases();
        assert!(cases.len() > 50);
        for case in &cases {
            let reply = command(&case.argv[1..], &all);
            for (proto, want) in [(Protocol::Resp2, case.resp2), (Protocol::Resp3, case.resp3)] {
                let got = leak(reply.to_bytes(proto));
                if case.unordered {
                    assert_eq!(header(got, 0).ok(), header(want, 0).ok(), "{:?}", case.argv);
                    assert_eq!(
                        sorted_elements(got),
                        sorted_elements(want),
                        "{:?} {proto:?}",
                        case.argv
                    );
                } else {
                    assert_eq!(
                        String::from_utf8_lossy(got),
                        String::from_utf8_lossy(want),
                        "{:?} {proto:?}",
                        case.argv
                    );
                }
            }
        }
    }

    #[test]
    fn sample_info_and_docs_match_redis() {
        let all = all_names();
        let samples = [
            "get",
            "set",
            "publish",
            "subscribe",
            "xreadgroup",
            "client|kill",
            "config|get",
            "zadd",
            "blpop",
            "eval",
            "migrate",
            "georadius",
        ];
        let cases = fixture_cases();
        for name in samples {
            for sub in ["INFO", "DOCS"] {
                let case = cases
                    .iter()
                    .find(|c| {
                        c.argv.len() == 3
                            && &c.argv[1][..] == sub.as_bytes()
                            && &c.argv[2][..] == name.as_bytes()
                    })
                    .unwrap_or_else(|| panic!("no fixture for COMMAND {sub} {name}"));
                let reply = if sub == "INFO" {
                    info(&[name], &all)
                } else {
                    docs(&[name], &all)
                };
                assert_eq!(
                    &reply.to_bytes(Protocol::Resp2)[..],
                    case.resp2,
                    "{sub} {name}"
                );
                assert_eq!(
                    &reply.to_bytes(Protocol::Resp3)[..],
                    case.resp3,
                    "{sub} {name}"
                );
            }
        }
    }

    #[test]
    fn embedded_data_reencodes_byte_for_byte() {
        fn check(c: &Command) {
            let info = read_one(c.info).expect("info parses");
            assert_eq!(&info.to_bytes(Protocol::Resp3)[..], c.info, "{}", c.name);
            let docs = read_one(c.docs).expect("docs parses");
            assert_eq!(&docs.to_bytes(Protocol::Resp3)[..], c.docs, "{}", c.name);
            assert!(
                matches!(docs, Frame::Map(ref m) if !m.is_empty()),
                "{}",
                c.name
            );
            c.subcommands.iter().for_each(check);
        }
        catalog().commands.iter().for_each(check);
        assert_eq!(help().to_bytes(Protocol::Resp3)[..], *catalog().help);
    }

    #[test]
    fn catalog_covers_redis_7_0() {
        let c = catalog();
        assert_eq!(c.commands.len(), 240);
        assert_eq!(all_names().len(), 366);
        assert!(c.commands.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(count(&all_names()), 240);
        let Frame::Array(lines) = help() else {
            panic!("help is an array")
        };
        assert_eq!(lines.len(), 21);
        assert_eq!(
            lines[0],
            Frame::simple("COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        );
    }

    #[test]
    fn arity_and_flags_come_from_redis() {
        assert_eq!(arity("get"), Some(2));
        assert_eq!(arity("SET"), Some(-3));
        assert_eq!(arity("client|kill"), Some(-3));
        assert_eq!(arity("Config|Get"), Some(-3));
        assert_eq!(arity("client"), Some(-2));
        assert_eq!(arity("nope"), None);
        assert_eq!(arity("get|x"), None);
        assert_eq!(flags("get"), Some(&["readonly", "fast"][..]));
        assert_eq!(
            flags("publish"),
            Some(&["pubsub", "loading", "stale", "fast"][..])
        );
        assert_eq!(acl_categories("subscribe"), Some(&["@pubsub", "@slow"][..]));
    }

    #[test]
    fn unimplemented_commands_are_hidden() {
        // COMMAND INFO: unknown to herald means nil, like unknown to Redis.
        let reply = info(&["get", "publish", "client|kill", "client|pause"], HERALD);
        let Frame::Array(items) = reply else {
            panic!("array")
        };
        assert_eq!(items[0], Frame::Null);
        assert_ne!(items[1], Frame::Null);
        assert_ne!(items[2], Frame::Null);
        assert_eq!(items[3], Frame::Null);
        // A container lists only its implemented subcommands.
        let Frame::Array(client) = info(&["client"], HERALD) else {
            panic!("array")
        };
        let Frame::Array(fields) = &client[0] else {
            panic!("entry")
        };
        // Redis sends a container's subcommands as an array (a leaf's as an empty set).
        let Frame::Array(subs) = &fields[9] else {
            panic!("subcommands")
        };
        let names: Vec<_> = subs
            .iter()
            .map(|s| match s {
                Frame::Array(f) => f[0].clone(),
                _ => panic!("subcommand entry"),
            })
            .collect();
        let expected = [
            "client|getname",
            "client|help",
            "client|id",
            "client|info",
            "client|kill",
            "client|list",
            "client|reply",
            "client|setinfo",
            "client|setname",
        ];
        // client|setinfo is Redis 7.2; 7.0.15 does not have it.
        let expected: Vec<_> = expected
            .iter()
            .filter(|n| **n != "client|setinfo")
            .map(|n| Frame::bulk(*n))
            .collect();
        assert_eq!(names, expected);
        let Frame::Map(d) = docs(&["client", "get", "nope"], HERALD) else {
            panic!("map")
        };
        assert_eq!(d.len(), 1);
        let Frame::Map(client_docs) = &d[0].1 else {
            panic!("docs map")
        };
        let subs = client_docs
            .iter()
            .find(|(k, _)| *k == Frame::bulk("subcommands"))
            .map(|(_, v)| v);
        assert!(matches!(subs, Some(Frame::Map(m)) if m.len() == expected.len()));
        // COMMAND, COUNT and LIST.
        let implemented_top = 25; // HERALD's top-level names known to Redis 7.0
        assert_eq!(count(HERALD), implemented_top);
        let Frame::Array(all) = command_reply(HERALD) else {
            panic!("array")
        };
        assert_eq!(all.len(), implemented_top as usize);
        let Ok(Frame::Array(names)) = list(&[] as &[&[u8]], HERALD) else {
            panic!("list")
        };
        assert_eq!(names.len(), HERALD.len() - 2); // minus client|setinfo and herald-only-command
        assert_eq!(names[0], Frame::bulk("auth"));
        assert_eq!(names[1], Frame::bulk("client"));
        assert_eq!(names[2], Frame::bulk("client|getname"));
        let pubsub = list(&["FILTERBY", "ACLCAT", "pubsub"], HERALD);
        let Ok(Frame::Array(pubsub)) = pubsub else {
            panic!("list")
        };
        assert_eq!(pubsub.len(), 13);
        // GETKEYS of a command herald lacks is an unknown command.
        assert_eq!(
            getkeys_for(&["get", "k"], HERALD),
            Err(Frame::error("ERR Invalid command specified"))
        );
        assert_eq!(
            getkeys(&["get", "k"]),
            Ok(Frame::Array(vec![Frame::bulk("k")]))
        );
        assert_eq!(
            getkeys_for(&["publish", "ch", "msg"], HERALD),
            Err(Frame::error("ERR The command has no key arguments"))
        );
    }

    /// The keys `COMMAND GETKEYS` finds in `line`, or its error text.
    fn keys(line: &[&str]) -> Result<Vec<String>, String> {
        let text = |f: &Frame| match f {
            Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Frame::Error(e) => String::from_utf8_lossy(e).into_owned(),
            other => panic!("unexpected {other:?}"),
        };
        match getkeys(line) {
            Ok(Frame::Array(keys)) => Ok(keys.iter().map(text).collect()),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => Err(text(&e)),
        }
    }

    /// The flags `COMMAND GETKEYSANDFLAGS` gives each key in `line`.
    fn key_flags(line: &[&str]) -> Vec<Vec<String>> {
        let Ok(Frame::Array(keys)) = getkeysandflags(line) else {
            panic!("no keys in {line:?}");
        };
        keys.iter()
            .map(|k| match k {
                Frame::Array(pair) => match &pair[1] {
                    Frame::Set(flags) => flags
                        .iter()
                        .map(|f| match f {
                            Frame::Simple(s) => String::from_utf8_lossy(s).into_owned(),
                            other => panic!("flag {other:?}"),
                        })
                        .collect(),
                    other => panic!("flags {other:?}"),
                },
                other => panic!("pair {other:?}"),
            })
            .collect()
    }

    #[test]
    fn getkeys_tricky_cases() {
        let ok = |v: &[&str]| Ok(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let err = |s: &str| Err::<Vec<String>, _>(s.to_string());
        // SET: one key; its flags depend on GET (a key function, variable_flags).
        assert_eq!(keys(&["SET", "k", "v", "EX", "10"]), ok(&["k"]));
        assert_eq!(key_flags(&["set", "k", "v"]), [["OW", "update"]]);
        assert_eq!(
            key_flags(&["set", "k", "v", "get"]),
            [["RW", "access", "update"]]
        );
        // MSET: every other argument.
        assert_eq!(keys(&["mset", "a", "1", "b", "2"]), ok(&["a", "b"]));
        assert_eq!(keys(&["mset", "a", "1", "b"]), ok(&["a", "b"]));
        assert_eq!(
            keys(&["mset", "a"]),
            err("ERR Invalid number of arguments specified for command")
        );
        // XREADGROUP: the first half after STREAMS (a keyword spec with limit 2).
        let xrg = [
            "xreadgroup",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "1",
            "STREAMS",
            "s1",
            "s2",
            ">",
            ">",
        ];
        assert_eq!(keys(&xrg), ok(&["s1", "s2"]));
        let xrg = [
            "xreadgroup",
            "GROUP",
            "g",
            "c",
            "STREAMS",
            "streams",
            "s2",
            ">",
            ">",
        ];
        assert_eq!(keys(&xrg), ok(&["streams", "s2"]));
        // The last argument is never taken for the keyword, as in Redis.
        let xrg = ["xreadgroup", "GROUP", "g", "c", "COUNT", "1", "STREAMS"];
        assert_eq!(
            keys(&xrg),
            err("ERR Invalid arguments specified for command")
        );
        // ZUNIONSTORE: destination, then numkeys sources (a keynum spec)...
        assert_eq!(
            keys(&["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"]),
            ok(&["d", "a", "b"])
        );
        assert_eq!(
            keys(&["zunionstore", "d", "3", "a", "b"]),
            err("ERR Invalid arguments specified for command")
        );
        // ...and when numkeys is not strictly numeric, Redis's key function
        // (atoi, destination last, no flags) answers instead.
        assert_eq!(
            keys(&["zunionstore", "d", "02", "a", "b"]),
            ok(&["a", "b", "d"])
        );
        assert_eq!(
            key_flags(&["zunionstore", "d", "02", "a", "b"]),
            [[""; 0]; 3]
        );
        // EVAL: numkeys keys; none is fine (no_mandatory_keys).
        assert_eq!(
            keys(&["eval", "return 1", "2", "k1", "k2", "a1"]),
            ok(&["k1", "k2"])
        );
        assert_eq!(keys(&["eval", "return 1", "0"]), ok(&[]));
        assert_eq!(keys(&["eval", "return 1", "5", "k1"]), ok(&[]));
        // MIGRATE: the key argument, or with "" the keys after KEYS.
        assert_eq!(keys(&["migrate", "h", "1", "k", "0", "5000"]), ok(&["k"]));
        let m = [
            "migrate", "h", "1", "", "0", "5000", "COPY", "AUTH", "keys", "KEYS", "k1", "k2",
        ];
        assert_eq!(keys(&m), ok(&["k1", "k2"]));
        assert_eq!(key_flags(&m)[0], ["RW", "access", "delete"]);
        let m = ["migrate", "h", "1", "k", "0", "5000", "KEYS", "k1"];
        assert_eq!(keys(&m), err("ERR Invalid arguments specified for command"));
        // SORT: the key and the last STORE destination.
        let s = [
            "sort", "s", "BY", "w_*", "GET", "store", "STORE", "d1", "STORE", "d2", "LIMIT", "0",
            "1",
        ];
        assert_eq!(keys(&s), ok(&["s", "d2"]));
        assert_eq!(key_flags(&s), [vec!["RO", "access"], vec!["OW", "update"]]);
        assert_eq!(keys(&["sort", "s", "STORE"]), ok(&["s"]));
        // Errors, in Redis's order of checks.
        assert_eq!(keys(&["nope", "x"]), err("ERR Invalid command specified"));
        assert_eq!(
            keys(&["ping", "x"]),
            err("ERR The command has no key arguments")
        );
        assert_eq!(
            keys(&["client", "kill", "x"]),
            err("ERR The command has no key arguments")
        );
        assert_eq!(
            keys(&["client", "nope"]),
            err("ERR Invalid command specified")
        );
        assert_eq!(
            keys(&["get", "a", "b"]),
            err("ERR Invalid number of arguments specified for command")
        );
        assert_eq!(
            keys(&["get"]),
            err("ERR wrong number of arguments for 'command|getkeys' command")
        );
        // Subcommands with keys.
        assert_eq!(keys(&["OBJECT", "encoding", "k"]), ok(&["k"]));
    }

    #[test]
    fn list_filters() {
        let all = all_names();
        let names = |args: &[&str]| match list(args, &all) {
            Ok(Frame::Array(v)) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            names(&["FILTERBY", "PATTERN", "CLIENT|K*"]),
            [Frame::bulk("client|kill")]
        );
        assert_eq!(names(&["filterby", "aclcat", "PubSub"]).len(), 13);
        assert_eq!(names(&["FILTERBY", "ACLCAT", "@pubsub"]).len(), 0);
        assert_eq!(names(&["FILTERBY", "MODULE", "x"]).len(), 0);
        assert_eq!(names(&[]).len(), 366);
        let syntax = Err(Frame::error("ERR syntax error"));
        assert_eq!(list(&["FILTERBY", "PATTERN"], &all), syntax);
        assert_eq!(list(&["FILTERBY", "NAME", "x"], &all), syntax);
        assert_eq!(list(&["FILTERBY", "PATTERN", "a", "b"], &all), syntax);
    }

    #[test]
    fn glob_is_redis_stringmatchlen() {
        let m = |p: &str, s: &str| string_match(p.as_bytes(), s.as_bytes(), true);
        assert!(m("*", "get"));
        assert!(m("G?T", "get"));
        assert!(m("client|*", "client|kill"));
        assert!(m("[a-h]et", "get"));
        assert!(!m("[^a-h]et", "get"));
        assert!(m("\\get", "get"));
        assert!(!m("ge", "get"));
        assert!(m("*e*t", "get"));
        // Redis's quirks: escaped class members compare case-sensitively, and
        // ranges are ordered before lowercasing.
        assert!(!m("[\\G]et", "get"));
        assert!(!m("[Z-a]et", "get"));
        assert!(m("[z-A]et", "get"));
        assert!(!string_match(b"GET", b"get", false));
    }

    #[test]
    fn numeric_parsers_match_c() {
        assert_eq!(atoi(b" +12x"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b"4294967298"), 2);
        assert_eq!(atoi(b"99999999999999999999"), -1);
        assert_eq!(string2ll(b"12"), Some(12));
        assert_eq!(string2ll(b"-12"), Some(-12));
        assert_eq!(string2ll(b"0"), Some(0));
        for bad in [
            &b"012"[..],
            b"+1",
            b" 1",
            b"-0",
            b"",
            b"-",
            b"1x",
            b"99999999999999999999",
        ] {
            assert_eq!(string2ll(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn command_routes_and_rejects_like_redis() {
        let all = all_names();
        assert_eq!(command(&["COUNT"], &all), Frame::Integer(240));
        assert_eq!(
            command(&["nope"], &all),
            Frame::error("ERR unknown subcommand 'nope'. Try COMMAND HELP.")
        );
        assert_eq!(
            command(&["a\r\nb"], &all),
            Frame::error("ERR unknown subcommand 'a  b'. Try COMMAND HELP.")
        );
        assert_eq!(
            command(&["count", "x"], &all),
            Frame::error("ERR wrong number of arguments for 'command|count' command")
        );
        assert_eq!(command(&[] as &[&str], &all), command_reply(&all));
        assert_eq!(info(&[] as &[&str], &all), command_reply(&all));
    }
}
