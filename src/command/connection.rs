//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET and
//! the CLIENT family. They act on the calling connection's [`Client`]
//! state, and CLIENT LIST / KILL on the server's client list.

use bytes::Bytes;

use super::client::{Client, ReplyMode};
use super::{cmd, parse_i64, reply_help, Spec, ERR_INT_RANGE, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::net::handle::ClientHandle;
use crate::protocol::{Frame, Protocol};

/// Redis's version as herald reports it (clients enable features by it).
pub const REDIS_VERSION: &str = "7.0.15";

/// CLIENT subcommands (sorted by name).
pub static CLIENT_SUBCOMMANDS: &[Spec] = &[
    cmd("caching", 3, super::tracking::client_caching),
    cmd("getname", 2, client_getname),
    cmd("getredir", 2, super::tracking::client_getredir),
    cmd("help", 2, client_help),
    cmd("id", 2, client_id),
    cmd("info", 2, client_info),
    cmd("kill", -3, client_kill),
    cmd("list", -2, client_list),
    cmd("no-evict", 3, super::observe::client_no_evict),
    cmd("pause", -3, super::observe::client_pause),
    cmd("reply", 3, client_reply),
    cmd("setinfo", 4, client_setinfo),
    cmd("setname", 3, client_setname),
    cmd("tracking", -3, super::tracking::client_tracking),
    cmd("trackinginfo", 2, super::tracking::client_trackinginfo),
    cmd("unblock", -3, super::blocking::client_unblock),
    cmd("unpause", 2, super::observe::client_unpause),
];

/// PING [message]; in the RESP2 subscribed context it answers `["pong", msg]`.
pub fn ping(c: &mut Client, args: &[Bytes]) {
    if args.len() > 2 {
        return c.error("ERR wrong number of arguments for 'ping' command");
    }
    if c.in_resp2_pubsub() {
        let msg = args.get(1).cloned().unwrap_or_default();
        c.reply(Frame::Array(vec![
            Frame::bulk_from(b"pong"),
            Frame::Bulk(msg),
        ]));
    } else if let Some(msg) = args.get(1) {
        c.reply(Frame::Bulk(msg.clone()));
    } else {
        c.reply_raw(b"+PONG\r\n");
    }
}

/// ECHO message.
pub fn echo(c: &mut Client, args: &[Bytes]) {
    c.reply(Frame::Bulk(args[1].clone()));
}

/// QUIT: +OK, then the connection closes once it is written.
pub fn quit(c: &mut Client, _args: &[Bytes]) {
    c.reply(Frame::ok());
    c.close_after_reply = true;
}

/// AUTH [username] password: authenticates the connection as a user
/// (see [`crate::command::auth::authenticate`]).
pub fn auth(c: &mut Client, args: &[Bytes]) {
    if args.len() > 3 {
        return c.error(ERR_SYNTAX);
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
        if c.shared.acl.default_user().rules().nopass {
            return c.error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            );
        }
        (b"default", &args[1])
    } else {
        (&args[1], &args[2])
    };
    if crate::command::auth::authenticate(c, &args[0], user, pass) {
        c.reply(Frame::ok());
    } else {
        c.error(crate::acl::WRONGPASS);
    }
}

/// Validates a client name as Redis does (printable, no spaces).
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// Sets (or, with an empty name, clears) the connection's name.
fn set_name(c: &mut Client, name: &Bytes) -> bool {
    if !valid_name(name) {
        c.error("ERR Client names cannot contain spaces, newlines or special characters.");
        return false;
    }
    c.handle.meta.lock().name = if name.is_empty() {
        None
    } else {
        Some(name.clone())
    };
    true
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]].
pub fn hello(c: &mut Client, args: &[Bytes]) {
    let mut ver = None;
    let mut next = 1;
    if args.len() >= 2 {
        match parse_i64(&args[1]) {
            Some(v) if (2..=3).contains(&v) => ver = Some(v),
            Some(_) => return c.error("NOPROTO unsupported protocol version"),
            None => return c.error("ERR Protocol version is not an integer or out of range"),
        }
        next = 2;
    }
    let mut j = next;
    let (mut auth, mut setname) = (None, None);
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
            auth = Some(j + 1);
            j += 3;
        } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
            if !valid_name(&args[j + 1]) {
                return c.error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            setname = Some(j + 1);
            j += 2;
        } else {
            return c.error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(opt)
            ));
        }
    }
    // Redis authenticates after reading every option, then requires the
    // client to be authenticated, then sets the name.
    if let Some(i) = auth {
        if !crate::command::auth::authenticate(c, &args[0], &args[i], &args[i + 1]) {
            return c.error(crate::acl::WRONGPASS);
        }
    }
    if !c.authenticated {
        return c.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(i) = setname {
        let name = args[i].clone();
        set_name(c, &name);
    }
    if let Some(v) = ver {
        c.protocol = if v == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
        c.handle.set_protocol(c.protocol);
    }
    let b = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    c.reply(Frame::Map(vec![
        (b("server"), b("redis")),
        (b("version"), b(REDIS_VERSION)),
        (b("proto"), Frame::Integer(c.protocol.version())),
        (b("id"), Frame::Integer(c.handle.id as i64)),
        (b("mode"), b("standalone")),
        (b("role"), b("master")),
        (b("modules"), Frame::Array(vec![])),
    ]));
}

/// SELECT index.
pub fn select(c: &mut Client, args: &[Bytes]) {
    let Some(id) = parse_i64(&args[1]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    if i32::try_from(id).is_err() {
        return c.error(ERR_INT_RANGE);
    }
    if id < 0 || id as usize >= c.shared.engine.store.len() {
        return c.error("ERR DB index is out of range");
    }
    c.db = id as usize;
    c.reply(Frame::ok());
}

/// RESET: back to a fresh connection's state (RESP2, db 0, no
/// subscriptions, no name, replies on).
pub fn reset(c: &mut Client, _args: &[Bytes]) {
    crate::command::auth::set_default_auth(c);
    super::transactions::reset(c);
    super::observe::stop_monitor(c);
    c.drop_subscriptions();
    super::tracking::disable(c);
    c.db = 0;
    c.protocol = Protocol::Resp2;
    c.handle.set_protocol(Protocol::Resp2);
    // A RESET whose own reply is being skipped (CLIENT REPLY SKIP) stays silent.
    if c.reply_mode != ReplyMode::Skip {
        c.reply_mode = ReplyMode::On;
    }
    c.handle.meta.lock().name = None;
    c.reply(Frame::simple("RESET"));
}

fn client_id(c: &mut Client, _args: &[Bytes]) {
    c.reply(Frame::Integer(c.handle.id as i64));
}

fn client_getname(c: &mut Client, _args: &[Bytes]) {
    let name = c.handle.meta.lock().name.clone();
    c.reply(name.map_or(Frame::Null, Frame::Bulk));
}

fn client_setname(c: &mut Client, args: &[Bytes]) {
    if set_name(c, &args[2]) {
        c.reply(Frame::ok());
    }
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2; clients send it on connect).
fn client_setinfo(c: &mut Client, args: &[Bytes]) {
    let attr = &args[2];
    let val = &args[3];
    if !val.iter().all(|&b| (b'!'..=b'~').contains(&b)) {
        return c.error(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        ));
    }
    let v = if val.is_empty() {
        None
    } else {
        Some(val.clone())
    };
    if attr.eq_ignore_ascii_case(b"lib-name") {
        c.handle.meta.lock().lib_name = v;
    } else if attr.eq_ignore_ascii_case(b"lib-ver") {
        c.handle.meta.lock().lib_ver = v;
    } else {
        return c.error(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        ));
    }
    c.reply(Frame::ok());
}

fn client_reply(c: &mut Client, args: &[Bytes]) {
    let mode = &args[2];
    if mode.eq_ignore_ascii_case(b"on") {
        c.reply_mode = ReplyMode::On;
        c.reply(Frame::ok());
    } else if mode.eq_ignore_ascii_case(b"off") {
        c.reply_mode = ReplyMode::Off;
    } else if mode.eq_ignore_ascii_case(b"skip") {
        // Also while this very command is being skipped: SKIP twice in a
        // row skips the reply after the second, as in Redis.
        if c.reply_mode != ReplyMode::Off {
            c.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        c.error(ERR_SYNTAX);
    }
}

fn client_help(c: &mut Client, _args: &[Bytes]) {
    reply_help(
        c,
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
        ],
    );
}

/// One CLIENT LIST line, exactly redis-server 7.0's fields and order
/// (7.0 has no lib-name / lib-ver fields; CLIENT SETINFO values are kept in
/// [`crate::net::handle::ClientMeta`]).
pub(crate) fn client_line(h: &ClientHandle, own: Option<&Client>) -> String {
    let m = h.meta.lock().clone();
    let (sub, psub, ssub, db, cmd) = match own {
        Some(c) => (
            c.subs.channels.len(),
            c.subs.patterns.len(),
            c.subs.shard_channels.len(),
            c.db,
            c.current_cmd.clone(),
        ),
        None => (m.sub, m.psub, m.ssub, m.db, m.last_cmd.clone()),
    };
    let pubsub = sub + psub + ssub > 0;
    // Redis's flag letters, in its order (those herald can have).
    let mut flags = String::new();
    if m.monitor {
        flags.push('O');
    }
    if h.class() == crate::net::limits::ClientClass::Replica {
        flags.push('S');
    }
    if m.master {
        flags.push('M');
    }
    if pubsub {
        flags.push('P');
    }
    if own.is_some_and(|c| c.tx.in_exec || c.tx.multi.is_some()) {
        flags.push('x');
    }
    if h.is_blocked() {
        flags.push('b');
    }
    if h.addr.is_unix() {
        flags.push('U');
    }
    if m.no_evict {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let name = m
        .name
        .as_ref()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_default();
    let omem = h.pending_bytes();
    // This client's own figures are those of the batch running the
    // command that reports them, as Redis shows its query buffer before
    // it is trimmed.
    let ((qbuf, qbuf_cap), argv_mem) = match own {
        Some(c) => (c.batch_qbuf, c.argv_mem),
        None => ((m.qbuf, m.qbuf_cap), 0),
    };
    let resp = own.map_or(h.protocol().version(), |c| c.protocol.version());
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi=-1 qbuf={} qbuf-free={} argv-mem={} multi-mem=0 rbs={} rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user={} redir=-1 resp={}",
        h.id,
        h.addr,
        h.laddr,
        h.fd,
        name,
        h.created.elapsed().as_secs(),
        if own.is_some() { 0 } else { h.idle_secs() },
        flags,
        db,
        sub,
        psub,
        ssub,
        qbuf,
        qbuf_cap.saturating_sub(qbuf),
        argv_mem,
        qbuf_cap,
        omem,
        omem + m.qbuf_cap + 1024,
        if cmd.is_empty() { "NULL" } else { cmd.as_str() },
        m.user,
        resp,
    )
}

fn client_info(c: &mut Client, _args: &[Bytes]) {
    let line = client_line(&c.handle, Some(c));
    c.reply(Frame::Verbatim("txt", Bytes::from(line + "\n")));
}

/// Client type for TYPE filters.
fn client_type_matches(h: &ClientHandle, ty: &[u8]) -> Option<bool> {
    let m = h.meta.lock();
    let pubsub = m.sub + m.psub + m.ssub > 0;
    let replica = h.class() == crate::net::limits::ClientClass::Replica;
    if ty.eq_ignore_ascii_case(b"normal") {
        Some(!pubsub && !replica && !m.master)
    } else if ty.eq_ignore_ascii_case(b"pubsub") {
        Some(pubsub)
    } else if ty.eq_ignore_ascii_case(b"master") {
        Some(m.master)
    } else if ty.eq_ignore_ascii_case(b"replica") || ty.eq_ignore_ascii_case(b"slave") {
        Some(replica)
    } else {
        None
    }
}

fn client_list(c: &mut Client, args: &[Bytes]) {
    let clients = c.shared.clients.all();
    // A killed client's connection closes on its own task, a moment later;
    // Redis frees it at once (CLIENT KILL, ACL changes), so it is not shown.
    let mut selected: Vec<&std::sync::Arc<ClientHandle>> = clients
        .iter()
        .filter(|h| !h.is_killed() || h.id == c.handle.id)
        .collect();
    if args.len() == 4 && args[2].eq_ignore_ascii_case(b"type") {
        if client_type_matches(&c.handle, &args[3]).is_none() {
            return c.error(format!(
                "ERR Unknown client type '{}'",
                String::from_utf8_lossy(&args[3])
            ));
        }
        selected.retain(|h| client_type_matches(h, &args[3]) == Some(true));
    } else if args.len() > 3 && args[2].eq_ignore_ascii_case(b"id") {
        let mut ids = Vec::new();
        for a in &args[3..] {
            match parse_i64(a) {
                Some(id) if id > 0 => ids.push(id as u64),
                _ => return c.error("ERR Invalid client ID"),
            }
        }
        selected.retain(|h| ids.contains(&h.id));
    } else if args.len() != 2 {
        return c.error(ERR_SYNTAX);
    }
    let mut text = String::new();
    for h in selected {
        let own = (h.id == c.handle.id).then_some(&*c);
        text.push_str(&client_line(h, own));
        text.push('\n');
    }
    c.reply(Frame::Verbatim("txt", Bytes::from(text)));
}

/// CLIENT KILL ip:port | CLIENT KILL <filter> <value> ...
fn client_kill(c: &mut Client, args: &[Bytes]) {
    let clients = c.shared.clients.all();
    if args.len() == 3 {
        // Old form: one address; the caller itself can be killed.
        let addr = String::from_utf8_lossy(&args[2]);
        match clients.iter().find(|h| h.addr.to_string() == addr) {
            Some(h) => {
                kill(c, h);
                c.reply(Frame::ok());
            }
            None => c.error("ERR No such client"),
        }
        return;
    }
    if !args.len().is_multiple_of(2) {
        return c.error(ERR_SYNTAX);
    }
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut user = None;
    let mut ty: Option<Bytes> = None;
    let mut skipme = true;
    for pair in args[2..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if opt.eq_ignore_ascii_case(b"id") {
            match parse_i64(val) {
                Some(v) if v > 0 => id = Some(v as u64),
                _ => return c.error("ERR client-id should be greater than 0"),
            }
        } else if opt.eq_ignore_ascii_case(b"addr") {
            addr = Some(String::from_utf8_lossy(val).into_owned());
        } else if opt.eq_ignore_ascii_case(b"laddr") {
            laddr = Some(String::from_utf8_lossy(val).into_owned());
        } else if opt.eq_ignore_ascii_case(b"user") {
            if c.shared.acl.user(val).is_none() {
                return c.error(format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(val)
                ));
            }
            user = Some(val.clone());
        } else if opt.eq_ignore_ascii_case(b"type") {
            if client_type_matches(&c.handle, val).is_none() {
                return c.error(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(val)
                ));
            }
            ty = Some(val.clone());
        } else if opt.eq_ignore_ascii_case(b"skipme") {
            if val.eq_ignore_ascii_case(b"yes") {
                skipme = true;
            } else if val.eq_ignore_ascii_case(b"no") {
                skipme = false;
            } else {
                return c.error(ERR_SYNTAX);
            }
        } else {
            return c.error(ERR_SYNTAX);
        }
    }
    let mut killed = 0;
    for h in &clients {
        if id.is_some_and(|i| h.id != i)
            || addr.as_ref().is_some_and(|a| h.addr.to_string() != *a)
            || laddr.as_ref().is_some_and(|a| h.laddr.to_string() != *a)
            || user
                .as_ref()
                .is_some_and(|u| h.meta.lock().user.as_bytes() != u.as_ref())
            || ty
                .as_ref()
                .is_some_and(|t| client_type_matches(h, t) != Some(true))
            || (skipme && h.id == c.handle.id)
        {
            continue;
        }
        kill(c, h);
        killed += 1;
    }
    c.reply(Frame::Integer(killed));
}

/// Kills `h`; the caller itself closes after this reply is written.
fn kill(c: &mut Client, h: &ClientHandle) {
    if h.id == c.handle.id {
        c.close_after_reply = true;
    } else {
        h.kill();
    }
}
