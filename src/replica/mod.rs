//! The replica side of replication: while REPLICAOF names a primary, one
//! task keeps a link to it as a Redis 7.0 replica does. It connects, makes
//! the handshake (PING, AUTH with `masteruser` / `masterauth`, REPLCONF
//! listening-port, REPLCONF capa eof capa psync2, PSYNC with the
//! replication id and offset this server's data stands at), then either
//! loads the primary's RDB (`+FULLRESYNC`: `$<len>` or the diskless
//! `$EOF:<mark>` form) or goes on from where it was (`+CONTINUE`), and
//! applies the primary's stream through the normal command path as a
//! client of its own (`Client::is_master`: its writes pass
//! `replica-read-only`, its replies are dropped). Each applied command is
//! fed to this server's own backlog with the primary's offsets, so that
//! after a promotion its former siblings can continue from it (PSYNC2).
//! `REPLCONF GETACK` is answered with `REPLCONF ACK <offset>`, and the
//! offset is acknowledged every second. When the link breaks, the task
//! reconnects and asks for a partial resync.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::command::{execute, Client};
use crate::net::handle::ClientHandle;
use crate::protocol::parse::RequestParser;
use crate::repl::LinkState;
use crate::state::Shared;

/// How long a link may stay silent before it is dropped when
/// `repl-timeout` cannot be read.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Keeps the link to the primary REPLICAOF names, for as long as the
/// server runs.
pub async fn run(shared: Arc<Shared>) {
    let mut target = shared.engine.repl.target.subscribe();
    loop {
        let want = target.borrow_and_update().clone();
        let Some((host, port)) = want else {
            if target.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            changed = target.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = link_until_lost(&shared, &host, port) => {}
        }
        if shared.is_shutting_down() {
            return;
        }
    }
}

/// Connects, synchronizes and streams; after each lost link waits a
/// second and starts over (with a partial resync when possible).
async fn link_until_lost(shared: &Arc<Shared>, host: &str, port: u16) {
    loop {
        // A server shutting down does not reconnect (its data is saved
        // with the replication point it has now).
        if shared.is_shutting_down() {
            return;
        }
        shared.engine.repl.set_link(|m| {
            m.state = LinkState::Connecting;
        });
        match link(shared, host, port).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!("Replication link with {host}:{port}: {e}");
                // The target of a failover cannot be reached: stay primary.
                if crate::command::replication::failing_over(shared) {
                    crate::command::replication::abort_failover(
                        shared,
                        "Failover target could not be reached",
                    );
                    return;
                }
            }
        }
        shared.engine.repl.set_link(|m| {
            m.state = LinkState::Connect;
            if m.down_since_ms == 0 {
                m.down_since_ms = crate::util::now_ms();
            }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: BytesMut,
    timeout: Duration,
}

impl Conn {
    async fn fill(&mut self) -> Result<(), String> {
        let n = tokio::time::timeout(self.timeout, self.rd.read_buf(&mut self.buf))
            .await
            .map_err(|_| "Timeout connecting to the MASTER...".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("MASTER closed the connection".into());
        }
        Ok(())
    }

    /// One `\r\n`-terminated line (without it).
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut l = self.buf.split_to(i + 1);
                l.truncate(i);
                if l.last() == Some(&b'\r') {
                    l.truncate(i - 1);
                }
                return Ok(String::from_utf8_lossy(&l).into_owned());
            }
            if self.buf.len() > 64 * 1024 {
                return Err("protocol error: line too long".into());
            }
            self.fill().await?;
        }
    }

    async fn send(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let mut out = Vec::new();
        crate::persist::aof::encode_command(&mut out, args);
        self.wr.write_all(&out).await.map_err(|e| e.to_string())
    }

    /// Sends a command and reads its one-line reply.
    async fn call(&mut self, args: &[&[u8]]) -> Result<String, String> {
        self.send(args).await?;
        self.line().await
    }
}

fn config_value(shared: &Shared, name: &str) -> String {
    shared.config.read().value(name).unwrap_or_default()
}

/// One link: handshake, sync, stream until it breaks.
async fn link(shared: &Arc<Shared>, host: &str, port: u16) -> Result<(), String> {
    let repl = shared.engine.repl.clone();
    let timeout = config_value(shared, "repl-timeout")
        .parse()
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    tracing::info!("Connecting to MASTER {host}:{port}");
    let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| "Timeout connecting to the MASTER...".to_string())?
        .map_err(|e| format!("Error condition on socket for SYNC: {e}"))?;
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    let (rd, wr) = stream.into_split();
    let mut conn = Conn {
        rd,
        wr,
        buf: BytesMut::with_capacity(16 * 1024),
        timeout,
    };
    tracing::info!("MASTER <-> REPLICA sync started");
    repl.set_link(|m| m.state = LinkState::Handshake);
    let pong = conn.call(&[b"PING"]).await?;
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    let auth = config_value(shared, "masterauth");
    if !auth.is_empty() {
        let user = config_value(shared, "masteruser");
        let reply = if user.is_empty() {
            conn.call(&[b"AUTH", auth.as_bytes()]).await?
        } else {
            conn.call(&[b"AUTH", user.as_bytes(), auth.as_bytes()])
                .await?
        };
        if reply.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {reply}"));
        }
    }
    let announce_port = match config_value(shared, "replica-announce-port").parse::<u16>() {
        Ok(p) if p != 0 => p,
        _ => shared.port.load(std::sync::atomic::Ordering::Relaxed),
    }
    .to_string();
    let r = conn
        .call(&[b"REPLCONF", b"listening-port", announce_port.as_bytes()])
        .await?;
    if r.starts_with('-') {
        tracing::info!("(Non critical) Master does not understand REPLCONF listening-port: {r}");
    }
    let announce_ip = config_value(shared, "replica-announce-ip");
    if !announce_ip.is_empty() {
        let r = conn
            .call(&[b"REPLCONF", b"ip-address", announce_ip.as_bytes()])
            .await?;
        if r.starts_with('-') {
            tracing::info!("(Non critical) Master does not understand REPLCONF ip-address: {r}");
        }
    }
    let r = conn
        .call(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])
        .await?;
    if r.starts_with('-') {
        tracing::info!("(Non critical) Master does not understand REPLCONF capa: {r}");
    }
    // The history this server's data stands at: its replication id and
    // offset (the next byte it needs is offset + 1).
    let (replid, next) = repl.psync_request();
    tracing::info!("Trying a partial resynchronization (request {replid}:{next}).");
    // A primary handing its role over asks its target to take over.
    let failing_over = crate::command::replication::failing_over(shared);
    if failing_over {
        conn.send(&[b"PSYNC", replid.as_bytes(), next.as_bytes(), b"FAILOVER"])
            .await?;
    } else {
        conn.send(&[b"PSYNC", replid.as_bytes(), next.as_bytes()])
            .await?;
    }
    // A primary preparing the RDB sends newlines meanwhile.
    let reply = loop {
        let l = conn.line().await?;
        if !l.is_empty() {
            break l;
        }
    };
    if failing_over {
        let accepted = reply.starts_with("+FULLRESYNC") || reply.starts_with("+CONTINUE");
        crate::command::replication::failover_psync_answered(shared, accepted);
        if !accepted {
            return Err(format!("PSYNC FAILOVER answered: {reply}"));
        }
    }
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut parts = rest.split(' ');
        let id = parts.next().unwrap_or_default().to_string();
        let off: u64 = parts
            .next()
            .and_then(|o| o.parse().ok())
            .ok_or_else(|| format!("Unexpected reply to PSYNC from master: {reply}"))?;
        tracing::info!("Full resync from master: {id}:{off}");
        full_sync(shared, &mut conn, &id, off).await?;
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let id = rest.trim();
        tracing::info!("Successful partial resynchronization with master.");
        if !id.is_empty() {
            repl.switch_id(id);
        }
    } else {
        return Err(format!("Unexpected reply to PSYNC from master: {reply}"));
    }
    streaming(shared, conn, local, peer).await
}

/// Reads the RDB that follows `+FULLRESYNC` and loads it in place of the
/// whole keyspace.
async fn full_sync(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    replid: &str,
    offset: u64,
) -> Result<(), String> {
    let repl = &shared.engine.repl;
    repl.set_link(|m| {
        m.state = LinkState::Sync;
        m.sync_read = 0;
        m.sync_size = -1;
    });
    // The primary may send newlines while it prepares the RDB.
    let header = loop {
        let l = conn.line().await?;
        if !l.is_empty() {
            break l;
        }
    };
    let Some(spec) = header.strip_prefix('$') else {
        return Err(format!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{header}'), are you sure the host and port are right?"
        ));
    };
    let to_disk = config_value(shared, "repl-diskless-load") == "disabled";
    let target = if to_disk { "disk" } else { "parser" };
    let rdb = if let Some(mark) = spec.strip_prefix("EOF:") {
        tracing::info!(
            "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to {target}"
        );
        let mark = mark.as_bytes().to_vec();
        if mark.len() != 40 {
            return Err("Bad EOF mark from MASTER".into());
        }
        loop {
            if conn.buf.len() >= 40 && conn.buf.ends_with(&mark) {
                let n = conn.buf.len() - 40;
                let body = conn.buf.split_to(n);
                conn.buf.advance(40);
                break body;
            }
            let n = conn.buf.len() as u64;
            repl.set_link(|m| {
                m.sync_read = n;
                m.last_io_ms = crate::util::now_ms();
            });
            conn.fill().await?;
        }
    } else {
        let len: usize = spec
            .parse()
            .map_err(|_| format!("Bad RDB length from MASTER: {header}"))?;
        tracing::info!("MASTER <-> REPLICA sync: receiving {len} bytes from master to {target}");
        repl.set_link(|m| m.sync_size = len as i64);
        while conn.buf.len() < len {
            let n = conn.buf.len() as u64;
            repl.set_link(|m| {
                m.sync_read = n;
                m.last_io_ms = crate::util::now_ms();
            });
            conn.buf.reserve(len - conn.buf.len());
            conn.fill().await?;
        }
        conn.buf.split_to(len)
    };
    tracing::info!(
        "MASTER <-> REPLICA sync: received {} bytes of RDB",
        rdb.len()
    );
    // `repl-diskless-load disabled`: the file is kept on disk, as Redis's
    // replica writes it there and loads it from there.
    let stored = if to_disk {
        match crate::persist::save::store_received(shared.as_ref(), &rdb) {
            Ok(path) => Some(path),
            Err(e) => {
                return Err(format!(
                    "Failed trying to store the MASTER synchronization DB on disk: {e}"
                ))
            }
        }
    } else {
        None
    };
    tracing::info!("MASTER <-> REPLICA sync: Flushing old data");
    tracing::info!("MASTER <-> REPLICA sync: Loading DB in memory");
    // A running script may hold databases: load once none runs.
    let gate = loop {
        if let Some(entry) = shared.engine.gate.enter() {
            break entry;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let installed = install(shared, &rdb);
    drop(gate);
    if let Err(e) = installed {
        // The data is gone: no partial resync may build on it.
        repl.synced_from(&crate::repl::random_id(), 0);
        return Err(e);
    }
    drop(rdb);
    if let Some(path) = stored {
        if config_value(shared, "rdb-del-sync-files") == "yes"
            && crate::persist::save::persistence_disabled(shared.as_ref())
        {
            tracing::info!(
                "Removing the RDB file obtained from the master. This replica has persistence disabled"
            );
            let _ = std::fs::remove_file(path);
        }
    }
    repl.synced_from(replid, offset);
    // The AOF must hold the new data: rewrite it, as Redis restarts its
    // AOF after a full sync.
    if shared.engine.aof.enabled() {
        if let Err(e) = crate::persist::rewrite::start(shared) {
            tracing::warn!("Can't rewrite the AOF after the full sync: {e}");
        }
    }
    tracing::info!("MASTER <-> REPLICA sync: Finished with success");
    Ok(())
}

/// Replaces the keyspace and the function libraries with the RDB `rdb`,
/// every database held meanwhile (the caller holds the keyspace gate, so
/// no script holds one). A refused file leaves the databases empty (as
/// Redis, which flushed them first) and breaks the link, so that the sync
/// starts over.
fn install(shared: &Arc<Shared>, rdb: &[u8]) -> Result<(), String> {
    let opts = crate::persist::rdb::file::LoadOptions {
        now_ms: crate::util::now_ms(),
        // A replica keeps expired keys until its primary deletes them.
        skip_expired: false,
        verify_checksum: true,
    };
    let mut loader = crate::command::replay::KeyLoader::new(shared.clone(), true);
    let loaded = crate::persist::rdb::file::load(rdb, opts, &mut loader);
    drop(loader);
    let loaded = loaded.map_err(|e| {
        format!("Failed trying to load the MASTER synchronization DB from socket: {e}")
    })?;
    tracing::info!(
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        loaded.keys_loaded,
        loaded.keys_expired
    );
    Ok(())
}

/// Applies the primary's stream until the link breaks (or the master
/// client is killed).
async fn streaming(
    shared: &Arc<Shared>,
    mut conn: Conn,
    local: std::net::SocketAddr,
    peer: std::net::SocketAddr,
) -> Result<(), String> {
    let repl = shared.engine.repl.clone();
    let id = shared.clients.next_id();
    let handle = Arc::new(ClientHandle::new(
        id,
        peer.into(),
        local.into(),
        -1,
        shared.limits.clone(),
    ));
    shared.clients.insert(handle.clone());
    let mut client = Client::new(shared.clone(), handle.clone());
    client.user = None;
    client.authenticated = true;
    client.is_master = true;
    client.db = repl.stream_db.load(std::sync::atomic::Ordering::Relaxed);
    handle.meta.lock().master = true;
    repl.set_link(|m| {
        m.state = LinkState::Connected;
        m.down_since_ms = 0;
        m.last_io_ms = crate::util::now_ms();
    });
    tracing::info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization or finished a full one: streaming");
    let r = apply(shared, &mut conn, &mut client).await;
    client.release();
    r
}

async fn apply(shared: &Arc<Shared>, conn: &mut Conn, client: &mut Client) -> Result<(), String> {
    let repl = shared.engine.repl.clone();
    let max_bulk = shared.config.read().proto_max_bulk_len;
    let mut parser = RequestParser::new(max_bulk);
    let mut ack = tokio::time::interval(Duration::from_secs(1));
    ack.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_io = tokio::time::Instant::now();
    loop {
        // What is buffered first (bytes that came with the sync reply).
        loop {
            let args = match parser.next(&mut conn.buf) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(e) => return Err(format!("protocol error from MASTER: {}", e.0)),
            };
            let is_getack = args.len() >= 2
                && args[0].eq_ignore_ascii_case(b"replconf")
                && args[1].eq_ignore_ascii_case(b"getack");
            let mut raw = Vec::new();
            crate::persist::aof::encode_command(&mut raw, &args);
            if is_getack {
                send_ack(conn, repl.offset()).await?;
            } else {
                run_command(client, args).await;
                repl.stream_db
                    .store(client.db, std::sync::atomic::Ordering::Relaxed);
                if client.handle.is_killed() {
                    return Err("the master client was killed".into());
                }
            }
            repl.feed_raw(Bytes::from(raw));
        }
        tokio::select! {
            r = conn.rd.read_buf(&mut conn.buf) => {
                let n = r.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("MASTER closed the connection".into());
                }
                last_io = tokio::time::Instant::now();
                repl.set_link(|m| m.last_io_ms = crate::util::now_ms());
            }
            _ = ack.tick() => {
                if client.handle.is_killed() {
                    return Err("the master client was killed".into());
                }
                if last_io.elapsed() > conn.timeout {
                    return Err("MASTER timeout: no data nor PING received...".into());
                }
                send_ack(conn, repl.offset()).await?;
            }
            _ = client.handle.woken() => {
                if client.handle.is_killed() {
                    return Err("the master client was killed".into());
                }
            }
        }
    }
}

/// Runs one command of the primary's, waiting while a script or CLIENT
/// PAUSE holds it back; its reply is dropped.
async fn run_command(client: &mut Client, args: Vec<Bytes>) {
    execute(client, args);
    drop_pushed(client);
    while let Some(args) = client.postponed.take() {
        client
            .shared
            .observe
            .pause
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        client.gate = None;
        tokio::time::sleep(Duration::from_millis(1)).await;
        execute(client, args);
    }
    client.gate = None;
    client.out.clear();
    drop_pushed(client);
}

/// Drops what commands pushed to the master client's outbox (nobody
/// reads it: its replies go nowhere).
fn drop_pushed(client: &Client) {
    let mut q = std::collections::VecDeque::new();
    client.handle.take(&mut q);
    let n: usize = q.iter().map(Bytes::len).sum();
    if n > 0 {
        client.handle.written(n);
    }
}

async fn send_ack(conn: &mut Conn, offset: u64) -> Result<(), String> {
    let off = offset.to_string();
    conn.send(&[b"REPLCONF", b"ACK", off.as_bytes()]).await
}
