//! Replication commands as redis-server 7.0 answers them: the primary's
//! side of the protocol (REPLCONF, SYNC, PSYNC: full resync with an RDB
//! snapshot or partial resync from the backlog), WAIT, ROLE, REPLICAOF /
//! SLAVEOF, and the `# Replication` section of INFO.
//!
//! The stream itself and the backlog are `repl`'s; the replica side's
//! link (connecting to a primary, loading its RDB, applying its stream)
//! runs in `replica`, started by REPLICAOF through `Repl::target`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{parse_i64, Client, ReplyMode, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::protocol::Frame;
use crate::repl::failover::State as FailoverState;
use crate::repl::{LinkState, Replica};

/// Redis's error for writes on a read-only replica.
pub const ERR_READONLY: &str = "READONLY You can't write against a read only replica.";

/// Redis's error for commands on a replica whose link is down while
/// `replica-serve-stale-data` is no.
pub const ERR_MASTERDOWN: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

/// True when a replica must refuse non-`stale` commands: its link to the
/// primary is not streaming and `replica-serve-stale-data` is no.
pub fn serves_no_stale_data(c: &Client) -> bool {
    let down = c
        .shared
        .engine
        .repl
        .master
        .lock()
        .as_ref()
        .is_some_and(|m| m.state != LinkState::Connected);
    down && c
        .shared
        .config
        .read()
        .value("replica-serve-stale-data")
        .as_deref()
        == Some("no")
}

/// A WAIT in progress: the connection is suspended until enough replicas
/// acknowledged `offset` or the deadline passes.
#[derive(Debug)]
pub struct Waiting {
    /// Stream offset the replicas must reach.
    pub offset: u64,
    /// Replicas asked for.
    pub replicas: usize,
    /// When to give up (`None`: never, WAIT with timeout 0).
    pub deadline: Option<tokio::time::Instant>,
    /// A SHUTDOWN waiting for the replicas instead, with the count of
    /// failed shutdown waits when it began (see `shutdown::settle`).
    pub shutdown_failures: Option<u64>,
}

/// Suspends the connection on `w` (WAIT, or a SHUTDOWN waiting for the
/// replicas): counted in INFO `blocked_clients`, as Redis counts them.
pub fn suspend(c: &mut Client, w: Waiting) {
    c.waiting = Some(w);
    c.shared.engine.repl.waiting_clients.fetch_add(1, Relaxed);
}

/// The connection's wait is over (settled, or the client is gone).
pub fn end_wait(c: &mut Client) {
    if c.waiting.take().is_some() {
        c.shared.engine.repl.waiting_clients.fetch_sub(1, Relaxed);
    }
}

/// REPLCONF option value ...
pub fn replconf(c: &mut Client, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        return c.error(ERR_SYNTAX);
    }
    for pair in args[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if opt.eq_ignore_ascii_case(b"listening-port") {
            let Some(port) = parse_i64(val) else {
                return c.error(ERR_NOT_INTEGER);
            };
            c.repl_port = port.clamp(0, 65535) as u16;
        } else if opt.eq_ignore_ascii_case(b"ip-address") {
            if val.len() >= 46 {
                let v = String::from_utf8_lossy(val);
                return c.error(format!(
                    "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    v.len()
                ));
            }
            c.repl_ip = Some(String::from_utf8_lossy(val).into_owned());
        } else if opt.eq_ignore_ascii_case(b"capa") {
            if val.eq_ignore_ascii_case(b"psync2") {
                c.repl_psync2 = true;
            } else if val.eq_ignore_ascii_case(b"eof") {
                c.repl_capa_eof = true;
            }
        } else if opt.eq_ignore_ascii_case(b"ack") {
            // An acknowledgement from a replica: no reply.
            let Some(link) = &c.replica else {
                return;
            };
            if let Some(off) = parse_i64(val) {
                let off = off.max(0) as u64;
                if off > link.ack_offset.load(Relaxed) {
                    link.ack_offset.store(off, Relaxed);
                }
                link.ack_ms.store(crate::util::now_ms(), Relaxed);
                c.shared.engine.repl.start_stream(link);
                c.shared.engine.repl.acked.notify_waiters();
                if !c.shared.replicas_short() {
                    return;
                }
                c.shared.refresh_good_replicas();
            }
            return;
        } else if opt.eq_ignore_ascii_case(b"getack") {
            // Answered by the replica link itself when the primary asks.
            return;
        } else if opt.eq_ignore_ascii_case(b"rdb-only") {
            if !(val.as_ref() == b"0" || val.as_ref() == b"1") {
                return c.error(ERR_SYNTAX);
            }
        } else {
            return c.error(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            ));
        }
    }
    c.reply(Frame::ok());
}

/// SYNC: a full resync without the `+FULLRESYNC` line (the old protocol).
pub fn sync(c: &mut Client, _args: &[Bytes]) {
    start_sync(c, None);
}

/// PSYNC replid offset
pub fn psync(c: &mut Client, args: &[Bytes]) {
    let id = String::from_utf8_lossy(&args[1]).into_owned();
    let offset = parse_i64(&args[2]).unwrap_or(-1);
    if args.len() > 3 && args[3].eq_ignore_ascii_case(b"failover") {
        // A primary failing over to this replica: take over, then serve
        // its partial resync from the history we share.
        tracing::warn!("Failover request received for replid {id}.");
        let repl = c.shared.engine.repl.clone();
        if !repl.is_replica() {
            return c.error("ERR PSYNC FAILOVER can't be sent to a master.");
        }
        if !repl.id_and_offset().0.eq_ignore_ascii_case(&id) {
            return c.error("ERR PSYNC FAILOVER replid must match my replid.");
        }
        repl.promote();
        let _ = repl.target.send_replace(None);
        tracing::info!(
            "MASTER MODE enabled (failover request from '{}')",
            c.handle.addr
        );
    }
    start_sync(c, Some((id, offset)));
}

fn start_sync(c: &mut Client, psync: Option<(String, i64)>) {
    if c.replica.is_some() {
        return;
    }
    let repl = c.shared.engine.repl.clone();
    if repl.failover.lock().state != FailoverState::None {
        return c.error("NOMASTERLINK Can't SYNC while failing over");
    }
    if repl.is_replica() {
        let connected = repl
            .master
            .lock()
            .as_ref()
            .is_some_and(|m| m.state == LinkState::Connected);
        if !connected {
            return c.error("NOMASTERLINK Can't SYNC while not connected with my master");
        }
    }
    if c.handle.pending_bytes() > 0 {
        return c.error("ERR SYNC and PSYNC are invalid with pending output");
    }
    // Replies queued so far go first; from here the stream owns the outbox.
    c.queue_replies();
    let mut replica = Replica::new(c.handle.clone());
    replica.capa_eof = c.repl_capa_eof;
    replica.psync = psync.is_some();
    let link = Arc::new(replica);
    link.port.store(c.repl_port, Relaxed);
    *link.ip.lock() = c.repl_ip.clone();
    c.replica = Some(link.clone());
    c.reply_mode = ReplyMode::Off;
    if let Some((id, offset)) = &psync {
        if repl.try_partial(id, *offset, &link, c.repl_psync2) {
            repl.sync_partial_ok.fetch_add(1, Relaxed);
            tracing::info!(
                "Partial resynchronization request from {} accepted, sending {} bytes of backlog",
                c.handle.addr,
                repl.offset().saturating_sub((*offset - 1).max(0) as u64)
            );
            return;
        }
        if id != "?" {
            repl.sync_partial_err.fetch_add(1, Relaxed);
        }
    }
    repl.sync_full.fetch_add(1, Relaxed);
    crate::repl::sync::request(&c.shared, &repl, link);
}

/// A connection closed: its wait ends; a replica is detached.
pub fn client_gone(c: &mut Client) {
    end_wait(c);
    if let Some(link) = c.replica.take() {
        c.shared.engine.repl.detach(link.handle.id);
        c.shared.refresh_good_replicas();
        tracing::info!("Connection with replica {} lost.", c.handle.addr);
    }
}

/// WAIT numreplicas timeout
pub fn wait(c: &mut Client, args: &[Bytes]) {
    let repl = c.shared.engine.repl.clone();
    if repl.is_replica() {
        return c.error(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
        );
    }
    let Some(n) = parse_i64(&args[1]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let Some(timeout) = parse_i64(&args[2]) else {
        return c.error("ERR timeout is not an integer or out of range");
    };
    if timeout < 0 {
        return c.error("ERR timeout is negative");
    }
    let offset = repl.offset();
    let acked = repl.acked_at_least(offset);
    if acked as i64 >= n || c.tx.in_exec || c.in_script {
        return c.reply(Frame::Integer(acked as i64));
    }
    repl.request_acks();
    suspend(
        c,
        Waiting {
            offset,
            replicas: n.max(0) as usize,
            deadline: (timeout > 0)
                .then(|| tokio::time::Instant::now() + Duration::from_millis(timeout as u64)),
            shutdown_failures: None,
        },
    );
}

/// Settles a WAIT (the connection calls it when woken): the reply once
/// enough replicas acknowledged or the deadline passed; false while it
/// must go on waiting.
pub fn settle_wait(c: &mut Client) -> bool {
    let Some(w) = &c.waiting else {
        return true;
    };
    if let Some(failures) = w.shutdown_failures {
        return super::shutdown::settle(c, failures);
    }
    let acked = c.shared.engine.repl.acked_at_least(w.offset);
    let expired = w.deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
    if acked < w.replicas && !expired && !c.handle.is_killed() {
        return false;
    }
    end_wait(c);
    c.reply(Frame::Integer(acked as i64));
    c.queue_replies();
    true
}

/// Resolves when a WAIT may have something to say: an acknowledgement
/// arrived or its deadline passed.
pub async fn wait_changed(repl: &crate::repl::Repl, deadline: Option<tokio::time::Instant>) {
    let acked = repl.acked.notified();
    tokio::pin!(acked);
    acked.as_mut().enable();
    match deadline {
        Some(d) => {
            tokio::select! {
                _ = acked => {}
                _ = tokio::time::sleep_until(d) => {}
            }
        }
        None => acked.await,
    }
}

fn state_name(s: LinkState) -> &'static str {
    match s {
        LinkState::Connect => "connect",
        LinkState::Connecting => "connecting",
        LinkState::Handshake => "handshake",
        LinkState::Sync => "sync",
        LinkState::Connected => "connected",
    }
}

pub fn replica_ip(r: &Replica) -> String {
    r.ip.lock().clone().unwrap_or_else(|| r.handle.addr.host())
}

/// ROLE
pub fn role(c: &mut Client, _args: &[Bytes]) {
    let repl = c.shared.engine.repl.clone();
    let master = repl.master.lock().clone();
    if let Some(m) = master {
        let offset = if m.state == LinkState::Connected {
            repl.offset() as i64
        } else {
            -1
        };
        return c.reply(Frame::Array(vec![
            Frame::bulk_from(b"slave"),
            Frame::bulk(m.host.clone()),
            Frame::Integer(i64::from(m.port)),
            Frame::bulk_from(state_name(m.state).as_bytes()),
            Frame::Integer(offset),
        ]));
    }
    let replicas = repl
        .replicas()
        .iter()
        .filter(|r| r.online.load(Relaxed))
        .map(|r| {
            Frame::Array(vec![
                Frame::bulk(replica_ip(r)),
                Frame::bulk(r.port.load(Relaxed).to_string()),
                Frame::bulk(r.ack_offset.load(Relaxed).to_string()),
            ])
        })
        .collect();
    c.reply(Frame::Array(vec![
        Frame::bulk_from(b"master"),
        Frame::Integer(repl.offset() as i64),
        Frame::Array(replicas),
    ]));
}

/// This server becomes a replica of `host:port`: the replica link goes
/// there, and the clients blocked on keys are released with Redis's
/// `-UNBLOCKED ... (master -> replica?)` error and disconnected
/// (`disconnectAllBlockedClients`): a write of the new primary's stream
/// must not serve them.
fn become_replica(shared: &crate::state::Shared, host: String, port: u16) {
    let repl = &shared.engine.repl;
    repl.become_replica(host.clone(), port);
    shared
        .engine
        .request_unblock_all(crate::engine::blocking::UNBLOCK_ROLE_CHANGE);
    let _ = repl.target.send_replace(Some((host, port)));
}

/// REPLICAOF host port | NO ONE (and SLAVEOF)
pub fn replicaof(c: &mut Client, args: &[Bytes]) {
    let repl = c.shared.engine.repl.clone();
    if args[1].eq_ignore_ascii_case(b"no") && args[2].eq_ignore_ascii_case(b"one") {
        if repl.is_replica() {
            repl.promote();
            let _ = repl.target.send_replace(None);
            tracing::info!(
                "MASTER MODE enabled (user request from '{}')",
                c.handle.addr
            );
        }
        return c.reply(Frame::ok());
    }
    if c.replica.is_some() {
        return c.error("ERR Command is not valid when client is a replica.");
    }
    let Some(port) = parse_i64(&args[2]) else {
        return c.error(ERR_NOT_INTEGER);
    };
    if !(0..=65535).contains(&port) {
        return c.error("ERR Invalid master port");
    }
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let port = port as u16;
    let same = repl
        .master
        .lock()
        .as_ref()
        .is_some_and(|m| m.host.eq_ignore_ascii_case(&host) && m.port == port);
    if same {
        tracing::info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
        return c.reply(Frame::simple("OK Already connected to specified master"));
    }
    become_replica(&c.shared, host.clone(), port);
    tracing::info!(
        "REPLICAOF {host}:{port} enabled (user request from '{}')",
        c.handle.addr
    );
    c.reply(Frame::ok());
}

/// The `# Replication` section of INFO.
pub fn info(c: &Client, s: &mut String) {
    let repl = &c.shared.engine.repl;
    let st = repl.status();
    s.push_str("# Replication\r\n");
    let master = repl.master.lock().clone();
    let now = crate::util::now_ms();
    match &master {
        Some(m) => {
            let up = m.state == LinkState::Connected;
            let _ = write!(
                s,
                "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
                m.host,
                m.port,
                if up { "up" } else { "down" },
                if m.last_io_ms == 0 {
                    -1
                } else {
                    (now.saturating_sub(m.last_io_ms) / 1000) as i64
                },
                u8::from(m.state == LinkState::Sync),
                st.offset,
                st.offset,
            );
            if m.state == LinkState::Sync {
                let left = (m.sync_size - m.sync_read as i64).max(0);
                let perc = if m.sync_size > 0 {
                    m.sync_read as f64 * 100.0 / m.sync_size as f64
                } else {
                    0.0
                };
                let _ = write!(
                    s,
                    "master_sync_total_bytes:{}\r\nmaster_sync_read_bytes:{}\r\nmaster_sync_left_bytes:{left}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                    m.sync_size,
                    m.sync_read,
                    now.saturating_sub(m.last_io_ms) / 1000,
                );
            }
            if !up {
                let since = if m.down_since_ms == 0 {
                    -1
                } else {
                    (now.saturating_sub(m.down_since_ms) / 1000) as i64
                };
                let _ = write!(s, "master_link_down_since_seconds:{since}\r\n");
            }
            let cfg = c.shared.config.read();
            let get = |k: &str| cfg.value(k).unwrap_or_default();
            let _ = write!(
                s,
                "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
                get("replica-priority"),
                u8::from(get("replica-read-only") == "yes"),
                u8::from(get("replica-announced") == "yes"),
            );
        }
        None => s.push_str("role:master\r\n"),
    }
    let replicas = repl.replicas();
    let _ = write!(s, "connected_slaves:{}\r\n", replicas.len());
    for (i, r) in replicas.iter().enumerate() {
        let state = if r.online.load(Relaxed) {
            "online"
        } else if r.sending.load(Relaxed) {
            "send_bulk"
        } else {
            "wait_bgsave"
        };
        let _ = write!(
            s,
            "slave{i}:ip={},port={},state={state},offset={},lag={}\r\n",
            replica_ip(r),
            r.port.load(Relaxed),
            r.ack_offset.load(Relaxed),
            now.saturating_sub(r.ack_ms.load(Relaxed)) / 1000,
        );
    }
    let _ = write!(
        s,
        "master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
        repl.failover.lock().state.name(),
        st.replid,
        st.replid2,
        st.offset,
        st.second_offset,
        u8::from(st.backlog_active),
        st.backlog_size,
        st.backlog_first_byte,
        st.backlog_histlen,
    );
}

/// FAILOVER [TO host port [FORCE]] [TIMEOUT ms] | FAILOVER ABORT, as Redis
/// 7.0's `failoverCommand`: pauses writes, then (see [`drive_failover`])
/// hands the primary role to the first replica (or the one named) that
/// acknowledges the whole stream.
pub fn failover(c: &mut Client, args: &[Bytes]) {
    let shared = c.shared.clone();
    let repl = shared.engine.repl.clone();
    if args.len() == 2 && args[1].eq_ignore_ascii_case(b"abort") {
        if repl.failover.lock().state == FailoverState::None {
            return c.error("ERR No failover in progress.");
        }
        abort_failover(&shared, "Failover manually aborted");
        return c.reply(Frame::ok());
    }
    let (mut timeout_ms, mut force, mut host, mut port) = (0i64, false, None, 0i64);
    let mut j = 1;
    while j < args.len() {
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"timeout") && j + 1 < args.len() && timeout_ms == 0 {
            let Some(t) = parse_i64(&args[j + 1]) else {
                return c.error(ERR_NOT_INTEGER);
            };
            if t <= 0 {
                return c.error("ERR FAILOVER timeout must be greater than 0");
            }
            timeout_ms = t;
            j += 1;
        } else if a.eq_ignore_ascii_case(b"to") && j + 2 < args.len() && host.is_none() {
            let Some(p) = parse_i64(&args[j + 2]) else {
                return c.error(ERR_NOT_INTEGER);
            };
            port = p;
            host = Some(String::from_utf8_lossy(&args[j + 1]).into_owned());
            j += 2;
        } else if a.eq_ignore_ascii_case(b"force") && !force {
            force = true;
        } else {
            return c.error(super::ERR_SYNTAX);
        }
        j += 1;
    }
    if repl.failover.lock().state != FailoverState::None {
        return c.error("ERR FAILOVER already in progress.");
    }
    if repl.is_replica() {
        return c.error("ERR FAILOVER is not valid when server is a replica.");
    }
    let replicas = repl.replicas();
    if replicas.is_empty() {
        return c.error("ERR FAILOVER requires connected replicas.");
    }
    if force && (timeout_ms == 0 || host.is_none()) {
        return c.error(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        );
    }
    let target = match host {
        Some(h) => {
            let found = replicas.iter().find(|r| {
                replica_ip(r).eq_ignore_ascii_case(&h) && i64::from(r.port.load(Relaxed)) == port
            });
            let Some(r) = found else {
                return c.error("ERR FAILOVER target HOST and PORT is not a replica.");
            };
            if !r.online.load(Relaxed) {
                return c.error("ERR FAILOVER target replica is not online.");
            }
            tracing::info!("FAILOVER requested to {h}:{port}.");
            Some((h, port as u16))
        }
        None => {
            tracing::info!("FAILOVER requested to any replica.");
            None
        }
    };
    *repl.failover.lock() = crate::repl::failover::Failover {
        state: FailoverState::WaitingForSync,
        target,
        force,
        end_ms: (timeout_ms > 0).then(|| crate::util::now_ms() + timeout_ms as u64),
    };
    shared
        .observe
        .pause
        .pause(u64::MAX, crate::observe::pause::WRITE);
    tokio::spawn(drive_failover(shared));
    c.reply(Frame::ok());
}

/// Redis's `updateFailoverStatus`, run until the failover leaves
/// `waiting-for-sync`: on each replica acknowledgement (or every 100 ms),
/// fail over once the target, or any replica when none was named, has
/// acknowledged the primary's whole stream; at the timeout, fail over
/// anyway with FORCE, else give up.
async fn drive_failover(shared: Arc<crate::state::Shared>) {
    let repl = shared.engine.repl.clone();
    loop {
        let acked = repl.acked.notified();
        let (target, force, end_ms) = {
            let f = repl.failover.lock();
            if f.state != FailoverState::WaitingForSync {
                return;
            }
            (f.target.clone(), f.force, f.end_ms)
        };
        if end_ms.is_some_and(|t| t <= crate::util::now_ms()) {
            match target {
                Some((host, port)) if force => {
                    tracing::info!("FAILOVER to {host}:{port} time out exceeded, failing over.");
                    return hand_over(&shared, host, port);
                }
                _ => return abort_failover(&shared, "Replica never caught up before timeout"),
            }
        }
        let offset = repl.offset();
        let synced = repl.replicas().into_iter().find(|r| {
            r.online.load(Relaxed)
                && r.ack_offset.load(Relaxed) == offset
                && target.as_ref().is_none_or(|(h, p)| {
                    replica_ip(r).eq_ignore_ascii_case(h) && r.port.load(Relaxed) == *p
                })
        });
        if let Some(r) = synced {
            let (host, port) = (replica_ip(&r), r.port.load(Relaxed));
            tracing::info!("Failover target {host}:{port} is synced, failing over.");
            return hand_over(&shared, host, port);
        }
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), acked).await;
    }
}

/// The primary becomes a replica of `host:port`; the replica link sends it
/// `PSYNC ... FAILOVER` (see [`failover_psync_answered`]).
fn hand_over(shared: &crate::state::Shared, host: String, port: u16) {
    let repl = &shared.engine.repl;
    {
        let mut f = repl.failover.lock();
        f.state = FailoverState::InProgress;
        f.target = Some((host.clone(), port));
    }
    become_replica(shared, host, port);
}

/// Redis's `abortFailover`: a failover that already made this server a
/// replica makes it a primary again; writes resume.
pub fn abort_failover(shared: &crate::state::Shared, why: &str) {
    let repl = &shared.engine.repl;
    let mut f = repl.failover.lock();
    if f.state == FailoverState::None {
        return;
    }
    match &f.target {
        Some((h, p)) => tracing::info!("FAILOVER to {h}:{p} aborted: {why}"),
        None => tracing::info!("FAILOVER to any replica aborted: {why}"),
    }
    if f.state == FailoverState::InProgress {
        repl.promote();
        let _ = repl.target.send_replace(None);
    }
    *f = crate::repl::failover::Failover::default();
    drop(f);
    shared.observe.pause.unpause();
}

/// The replica link's `PSYNC ... FAILOVER` got its answer: accepted (the
/// target took over; this server is its replica and writes resume) or not
/// (the failover is aborted).
pub fn failover_psync_answered(shared: &crate::state::Shared, accepted: bool) {
    if !accepted {
        return abort_failover(shared, "Failover target rejected psync request");
    }
    let repl = &shared.engine.repl;
    *repl.failover.lock() = crate::repl::failover::Failover::default();
    shared.observe.pause.unpause();
}

/// True while the replica link must send `PSYNC ... FAILOVER`.
pub fn failing_over(shared: &crate::state::Shared) -> bool {
    shared.engine.repl.failover.lock().state == FailoverState::InProgress
}
