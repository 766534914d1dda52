//! Authentication and ACLs applied to clients: AUTH, the checks
//! `command::run` makes after arity (NOAUTH, NOPERM), ACL LOG entries with
//! the client's details, and closing the connections of users whose rules
//! changed (as Redis 7.0: `ACL DELUSER` and `ACL LOAD` close every
//! connection authenticated as a deleted or replaced user; `ACL SETUSER`
//! closes the user's subscribers whose subscriptions its new channel
//! permissions no longer allow, `ACLKillPubsubClientsIfNeeded`). A closed
//! client's queued output is dropped and its subscriptions leave the
//! registries before the command that closed it replies, so nothing more
//! reaches it. (Turning a user `off` keeps its open connections, as in
//! Redis.) The rules and users themselves are `acl`'s.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;

use super::Client;
use crate::acl::check::{fullname_of, verdict};
use crate::acl::rules::channel_allowed;
use crate::acl::{log, Denied, Rules, User};
use crate::net::handle::ClientHandle;
use crate::pubsub::SubscriptionKind as SubKind;
use crate::state::Shared;

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
    let r = shared.acl.default_user().rules();
    r.nopass && r.enabled
}

/// Binds the client to the default user (new connection, RESET).
pub fn set_default_auth(c: &mut Client) {
    let user = c.shared.acl.default_user().clone();
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
    if c.in_script {
        log::Context::Lua
    } else if c.tx.multi.is_some() || c.tx.in_exec {
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
        Some(u) if u.is_unrestricted() => None,
        Some(_) => check_slow(c, fullname, args),
    }
}

/// Whether the client's user may read any key with this command (Redis's
/// `ACLUserCheckCmdWithUnrestrictedKeyAccess`): SORT's BY and GET patterns
/// read keys that no key spec declares, so Redis allows them only then.
/// The server's own clients (no user) and unrestricted users always may.
pub fn reads_all_keys(c: &Client, fullname: &str, args: &[Bytes]) -> bool {
    match &c.user {
        None => true,
        Some(u) if u.is_unrestricted() => true,
        Some(u) => crate::acl::check::reads_all_keys(u, fullname, args),
    }
}

#[cold]
fn check_slow(c: &Client, fullname: &str, args: &[Bytes]) -> Option<String> {
    let (denied, _) = verdict(c.user.as_ref()?, fullname, args)?;
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
        Some(u) if u.is_unrestricted() => return None,
        Some(_) => {}
    }
    let fullname = &fullname_of(args)?;
    let (denied, _) = verdict(c.user.as_ref()?, fullname, args)?;
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

/// The connections authenticated as `user`.
fn clients_of(shared: &Shared, user: &Arc<User>) -> Vec<Arc<ClientHandle>> {
    shared
        .clients
        .all()
        .into_iter()
        .filter(|h| h.meta.lock().user_id == user.id)
        .collect()
}

/// Closes other clients at once, as Redis's `freeClient`: their queued
/// output is dropped, their subscriptions (`subs`, from
/// `PubSub::subscriptions_of`) leave the registries now (so a PUBLISH after
/// this counts and reaches them no more), and their tasks close the
/// sockets.
fn evict(shared: &Shared, victims: &[Arc<ClientHandle>], subs: &[(u64, SubKind, Bytes)]) {
    let ps = &shared.engine.pubsub;
    for h in victims {
        h.close_outbox();
        for (_, kind, name) in subs.iter().filter(|(id, _, _)| *id == h.id) {
            ps.unsubscribe(*kind, name, h, None);
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
    let subs = c.shared.engine.pubsub.subscriptions_of(&ids);
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
        let bad = c
            .subs
            .patterns
            .iter()
            .any(|p| violates(SubKind::Pattern, p))
            || c.subs
                .channels
                .iter()
                .any(|ch| violates(SubKind::Channel, ch))
            || c.subs
                .shard_channels
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
    let subs = c.shared.engine.pubsub.subscriptions_of(&ids);
    let victims: Vec<Arc<ClientHandle>> = candidates
        .into_iter()
        .filter(|h| {
            subs.iter()
                .any(|(id, kind, name)| *id == h.id && violates(*kind, name))
        })
        .collect();
    evict(&c.shared, &victims, &subs);
}
