//! Users from files: the `user` lines of the configuration file and the
//! `aclfile` (ACL LOAD / ACL SAVE), with Redis 7.0's validation and error
//! texts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;

use super::rules::{has_spaces, merge_selector_args, RuleError, Rules};
use super::users::Acl;
use crate::util::c_str as cstr;

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
pub fn acl_file_text(acl: &Acl) -> Vec<u8> {
    let mut out = Vec::new();
    for u in acl.users() {
        out.extend_from_slice(b"user ");
        out.extend_from_slice(&u.name);
        out.push(b' ');
        out.extend(u.rules().describe());
        out.push(b'\n');
    }
    out
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
///
/// `lines` are the config file's `user` lines (`user name rule ...`),
/// `file` the `aclfile` (its path, and its name as configured).
pub fn load_at_startup(
    acl: &Acl,
    lines: &[Vec<Vec<u8>>],
    file: Option<(PathBuf, String)>,
) -> Result<(), String> {
    if file.is_some() && !lines.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    let pubsub_all = acl.pubsub_all();
    let mut seen: Vec<&[u8]> = Vec::new();
    for argv in lines {
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
        let base = match acl.user(name) {
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
        acl.set_user(name, rules);
    }
    if let Some((path, shown)) = file {
        let users = parse_acl_file(&path, &shown, pubsub_all)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        acl.replace_all(users);
    }
    Ok(())
}
