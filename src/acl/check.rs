//! A user's verdict on a command: may it run, and if not, which argument
//! (the command itself, a key, a channel) it was refused for. The command
//! layer applies it to the client (`command::auth`), which also logs and
//! counts denials.

use bytes::Bytes;

use super::rules::Denied;
use super::table::table;
use super::users::User;
use crate::util::c_str as cstr;

/// The verdict of `user` on the command `fullname` (`get`, `client|kill`)
/// with `args`: None if allowed, else why and the command's id.
pub fn verdict(user: &User, fullname: &str, args: &[Bytes]) -> Option<(Denied, usize)> {
    // A command unknown to Redis's table (herald's extensions, e.g. CLIENT
    // SETINFO, which 7.0 lacks) is checked as its container.
    let t = table();
    let id = t
        .id(fullname)
        .or_else(|| t.id(fullname.split('|').next().unwrap_or(fullname)))?;
    let rules = user.rules();
    rules.check(id, args).err().map(|d| (d, id))
}

/// True if `user` may run `fullname` with `args` through a selector that
/// can read every key (see [`super::Rules::allows_with_all_keys_readable`]).
pub fn reads_all_keys(user: &User, fullname: &str, args: &[Bytes]) -> bool {
    table()
        .id(fullname)
        .is_some_and(|id| user.rules().allows_with_all_keys_readable(id, args))
}

/// The full lowercase name (`get`, `client|kill`) of the command `args`
/// runs, as Redis's `lookupCommand` finds it in its table.
pub fn fullname_of(args: &[Bytes]) -> Option<String> {
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
