//! Client-side caching commands (CLIENT TRACKING, CACHING, GETREDIR,
//! TRACKINGINFO, as Redis 7.0's `networking.c`) and the command layer's
//! side of tracking: remembering the keys a tracking client reads,
//! sending what waited for its reply, and CLIENT CACHING's one-command
//! lifetime. The tables and the messages are `tracking`'s.

use bytes::Bytes;

use super::client::Client;
use super::{flags, parse_i64, Spec, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::protocol::Frame;
use crate::tracking::Mode;

/// A client's own view of its tracking mode: the one branch every command
/// pays is a test of `mode.on`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Local {
    /// The mode set by CLIENT TRACKING (all off when not tracking).
    pub mode: Mode,
    /// CLIENT CACHING was given for the next command (Redis's
    /// `CLIENT_TRACKING_CACHING`).
    pub caching: bool,
    /// For a script's client: the id of the client that called the
    /// script, to whom its changes are attributed (NOLOOP, messages after
    /// the reply). 0 otherwise.
    pub caller: u64,
    /// For a script's client: the script called a read-only command, so
    /// the caller may cache the keys it declared.
    pub script_read: bool,
}

impl Local {
    /// The id a change made by client `id` is attributed to.
    #[inline]
    pub fn origin(&self, id: u64) -> u64 {
        if self.caller != 0 {
            self.caller
        } else {
            id
        }
    }
}

/// CLIENT TRACKING on|off [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN]
/// [OPTOUT] [NOLOOP].
pub fn client_tracking(c: &mut Client, args: &[Bytes]) {
    let mut redirect: i64 = 0;
    let mut mode = Mode::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"redirect") && more > 0 {
            j += 1;
            if redirect != 0 {
                return c.error("ERR A client can only redirect to a single other client");
            }
            let Some(id) = parse_i64(&args[j]) else {
                return c.error(ERR_NOT_INTEGER);
            };
            redirect = id;
            if id <= 0 || c.shared.clients.get(id as u64).is_none() {
                return c.error("ERR The client ID you want redirect to does not exist");
            }
        } else if opt.eq_ignore_ascii_case(b"bcast") {
            mode.bcast = true;
        } else if opt.eq_ignore_ascii_case(b"optin") {
            mode.optin = true;
        } else if opt.eq_ignore_ascii_case(b"optout") {
            mode.optout = true;
        } else if opt.eq_ignore_ascii_case(b"noloop") {
            mode.noloop = true;
        } else if opt.eq_ignore_ascii_case(b"prefix") && more > 0 {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return c.error(ERR_SYNTAX);
        }
        j += 1;
    }
    let tracking = &c.shared.engine.tracking;
    let id = c.handle.id;
    if args[2].eq_ignore_ascii_case(b"on") {
        let old = c.tracking.mode;
        if !mode.bcast && !prefixes.is_empty() {
            return c.error("ERR PREFIX option requires BCAST mode to be enabled");
        }
        if old.on && old.bcast != mode.bcast {
            return c.error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if mode.bcast && (mode.optin || mode.optout) {
            return c.error("ERR OPTIN and OPTOUT are not compatible with BCAST");
        }
        if mode.optin && mode.optout {
            return c.error("ERR You can't specify both OPTIN mode and OPTOUT mode");
        }
        if (mode.optin && old.optout) || (mode.optout && old.optin) {
            return c.error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if mode.bcast {
            if let Err(e) = tracking.check_prefixes(id, &prefixes) {
                return c.error(e);
            }
        }
        tracking.enable(&c.handle, redirect as u64, mode, &prefixes);
        c.tracking.mode = Mode { on: true, ..mode };
    } else if args[2].eq_ignore_ascii_case(b"off") {
        disable(c);
    } else {
        return c.error(ERR_SYNTAX);
    }
    c.reply(Frame::ok());
}

/// Redis's `disableTracking` for `c` (CLIENT TRACKING off, RESET, a
/// disconnection).
pub fn disable(c: &mut Client) {
    if c.tracking.mode.on {
        c.shared.engine.tracking.disable(c.handle.id);
    }
    c.tracking = Local::default();
}

/// CLIENT CACHING yes|no.
pub fn client_caching(c: &mut Client, args: &[Bytes]) {
    let mode = c.tracking.mode;
    if !mode.on {
        return c.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    }
    let opt = &args[2];
    if opt.eq_ignore_ascii_case(b"yes") {
        if !mode.optin {
            return c.error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if opt.eq_ignore_ascii_case(b"no") {
        if !mode.optout {
            return c.error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return c.error(ERR_SYNTAX);
    }
    c.tracking.caching = true;
    c.reply(Frame::ok());
}

/// CLIENT GETREDIR: the redirect id (0: none), -1 when not tracking.
pub fn client_getredir(c: &mut Client, _args: &[Bytes]) {
    let redirect = match c.shared.engine.tracking.info(c.handle.id) {
        Some(info) => info.redirect as i64,
        None => -1,
    };
    c.reply(Frame::Integer(redirect));
}

/// CLIENT TRACKINGINFO: flags, redirect, prefixes.
pub fn client_trackinginfo(c: &mut Client, _args: &[Bytes]) {
    let info = c.shared.engine.tracking.info(c.handle.id);
    let b = |s: &'static str| Frame::Bulk(Bytes::from_static(s.as_bytes()));
    let mut flags = Vec::new();
    let (redirect, prefixes) = match info {
        None => {
            flags.push(b("off"));
            (-1, Vec::new())
        }
        Some(info) => {
            let m = info.mode;
            flags.push(b("on"));
            if m.bcast {
                flags.push(b("bcast"));
            }
            if m.optin {
                flags.push(b("optin"));
                if c.tracking.caching {
                    flags.push(b("caching-yes"));
                }
            }
            if m.optout {
                flags.push(b("optout"));
                if c.tracking.caching {
                    flags.push(b("caching-no"));
                }
            }
            if m.noloop {
                flags.push(b("noloop"));
            }
            if info.broken {
                flags.push(b("broken_redirect"));
            }
            let prefixes = info.prefixes.into_iter().map(Frame::Bulk).collect();
            (info.redirect as i64, prefixes)
        }
    };
    c.reply(Frame::Map(vec![
        (b("flags"), Frame::Set(flags)),
        (b("redirect"), Frame::Integer(redirect)),
        (b("prefixes"), Frame::Array(prefixes)),
    ]));
}

/// After a command ran for a tracking client (not in BCAST mode): if it is
/// flagged read-only, the keys it named may now be cached by the client
/// (Redis's `trackingRememberKeys`, with CLIENT CACHING's OPTIN / OPTOUT
/// rules). Script commands are left to the commands their script calls.
pub fn after_command(c: &mut Client, spec: &Spec, args: &[Bytes]) {
    let bits = flags::of(spec);
    if bits & flags::READONLY == 0 || bits & flags::RUNS_SCRIPT != 0 {
        return;
    }
    if c.in_script {
        c.tracking.script_read = true;
        return;
    }
    remember(c, args);
}

/// Remembers the keys of the command line `args` for client `c`.
fn remember(c: &Client, args: &[Bytes]) {
    let keys = crate::catalog::acl_key_access(args);
    if keys.is_empty() {
        return;
    }
    remember_keys(
        c,
        keys.iter()
            .filter_map(|&(pos, _, _)| args.get(pos).map(|a| &a[..])),
    );
}

/// Client `c` may now cache `keys`, if it tracks them (not in BCAST mode),
/// unless OPTIN without CLIENT CACHING yes, or OPTOUT with CLIENT CACHING
/// no.
pub fn remember_keys<'a>(c: &Client, keys: impl Iterator<Item = &'a [u8]>) {
    let Local { mode, caching, .. } = c.tracking;
    if !mode.on || mode.bcast || (mode.optin && !caching) || (mode.optout && caching) {
        return;
    }
    c.shared.engine.tracking.remember(c.handle.id, keys);
}

/// The tracking state a script's client runs with for caller `c`: its
/// changes are the caller's, and it notes whether it read anything the
/// caller may cache.
pub fn for_script(c: &Client) -> Local {
    Local {
        caller: c.tracking.origin(c.handle.id),
        script_read: false,
        ..c.tracking
    }
}

/// At the end of a tracking client's command: sends the invalidations
/// that waited for its reply (queued first), and ends a CLIENT CACHING
/// given for this command (not inside MULTI, not for CLIENT itself, as
/// Redis's `resetClient`).
pub fn command_ended(c: &mut Client, name: &[u8]) {
    let tracking = &c.shared.engine.tracking;
    if tracking.has_pending(c.handle.id) {
        c.queue_replies();
        c.shared.engine.tracking.send_pending(c.handle.id);
    }
    if c.tracking.caching && c.tx.multi.is_none() && !name.eq_ignore_ascii_case(b"client") {
        c.tracking.caching = false;
    }
}
