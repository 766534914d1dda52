//! Full resyncs, served as Redis 7.0 serves them: one RDB production for
//! every replica waiting when it starts, on a `herald-repl-sync` thread.
//!
//! - `repl-diskless-sync yes` (the default) with replicas that all read the
//!   `$EOF:` form (`REPLCONF capa eof`): the RDB goes straight to their
//!   sockets, `$EOF:<40 random characters>`, the file, the same 40
//!   characters, as it is written. The production waits
//!   `repl-diskless-sync-delay` seconds from the first request so that
//!   replicas arriving together share it, or less once
//!   `repl-diskless-sync-max-replicas` are waiting.
//! - Otherwise the RDB is written to `<dir>/<dbfilename>` (it counts as a
//!   save, as Redis's BGSAVE for replication), then sent as `$<len>`; with
//!   `rdb-del-sync-files yes` and no persistence configured, the file is
//!   removed afterwards.
//!
//! Replicas arriving while a production runs wait for the next one (Redis
//! may attach a replica to a running disk-based BGSAVE by copying a
//! sibling's output buffer; here the next production starts as soon as the
//! running one ends). Either way the production counts as a background save
//! (INFO `rdb_bgsave_in_progress`; BGSAVE answers that one is in progress),
//! and waits for a client's BGSAVE to end first. Each replica's stream is
//! collected from the snapshot's cut and queued once its socket took the
//! RDB ([`Repl::go_online`]). Bytes are pushed to every replica's outbox
//! as shared `Bytes`; the writer waits while a replica has more than
//! [`IN_FLIGHT`] unsent, and cuts one that takes nothing for `repl-timeout`.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{random_id, Repl, Replica};
use crate::persist::rdb::file::Aux;
use crate::persist::rdb::Encoding;
use crate::persist::{save, Host};

/// Unsent RDB bytes a replica may have before the writer waits for it.
const IN_FLIGHT: usize = 4 << 20;

/// How often the serving thread looks at the queue while a delay runs.
const QUEUE_CHECK: Duration = Duration::from_millis(10);

/// `link` needs a full resync: queues it, and starts the thread that
/// serves the queue if none runs.
pub fn request<H: Host>(host: &Arc<H>, repl: &Arc<Repl>, link: Arc<Replica>) {
    if !repl.enqueue_full(link) {
        return;
    }
    let (host2, repl2) = (host.clone(), repl.clone());
    let spawned = std::thread::Builder::new()
        .name("herald-repl-sync".into())
        .spawn(move || {
            while let Some(batch) = next_batch(&*host2, &repl2) {
                serve(&*host2, &repl2, batch);
            }
        });
    if spawned.is_err() {
        for l in repl.take_pending_full() {
            l.handle.kill();
        }
        let _ = repl.pending_full();
    }
}

/// The settings a production reads when it starts.
struct Settings {
    diskless: bool,
    delay: Duration,
    max_replicas: usize,
    timeout: Duration,
    del_sync_files: bool,
}

fn settings<H: Host + ?Sized>(host: &H) -> Settings {
    let cfg = host.config();
    let num = |k: &str, d: u64| -> u64 { cfg.value(k).and_then(|v| v.parse().ok()).unwrap_or(d) };
    Settings {
        diskless: cfg.value("repl-diskless-sync").as_deref() != Some("no"),
        delay: Duration::from_secs(num("repl-diskless-sync-delay", 5)),
        max_replicas: num("repl-diskless-sync-max-replicas", 0) as usize,
        timeout: Duration::from_secs(num("repl-timeout", 60).max(1)),
        del_sync_files: cfg.value("rdb-del-sync-files").as_deref() == Some("yes"),
    }
}

/// Waits until a production may start (Redis's
/// `replicationStartPendingFork`): the delay passed or enough replicas
/// wait, and no other background save runs. Returns the replicas it
/// serves, marked as a running background save; `None` once no replica
/// waits (the thread ends).
fn next_batch<H: Host + ?Sized>(host: &H, repl: &Repl) -> Option<Vec<Arc<Replica>>> {
    loop {
        let (waiting, oldest) = repl.pending_full()?;
        let s = settings(host);
        let due =
            !s.diskless || oldest >= s.delay || (s.max_replicas > 0 && waiting >= s.max_replicas);
        if due && save::begin_background(host) {
            let batch: Vec<_> = repl
                .take_pending_full()
                .into_iter()
                .filter(|l| !l.handle.is_killed())
                .collect();
            if !batch.is_empty() {
                return Some(batch);
            }
            save::end_background(host, None, Instant::now());
            continue;
        }
        std::thread::sleep(QUEUE_CHECK);
    }
}

/// One production for `batch`: the snapshot and the stream offset taken
/// together, `+FULLRESYNC`, the RDB to every replica, then the stream.
fn serve<H: Host + ?Sized>(host: &H, repl: &Repl, batch: Vec<Arc<Replica>>) {
    let started = Instant::now();
    let s = settings(host);
    let to_sockets = s.diskless && batch.iter().all(|l| l.capa_eof);
    let enc = Encoding::from_config(&host.config());
    let aux = Aux {
        used_mem: 0,
        repl: None,
        aof_base: false,
        key_delay_us: save::key_delay(host),
    };
    let eager = aux.key_delay_us != 0;
    let mut cut = (String::new(), 0u64);
    // The data set and the offset the replicas' stream starts from are cut
    // with every database held: they agree. A child process writes the RDB
    // from there (`persist::fork`), slowed down key by key under
    // `rdb-key-save-delay`.
    let forked = save::fork_rdb(host, enc, aux, || {
        for l in &batch {
            cut = repl.attach_full(l);
        }
        Some((cut.0.clone(), cut.1 as i64, 0))
    });
    let (replid, offset) = cut;
    let mut out = Broadcast {
        links: batch,
        buf: Vec::with_capacity(1 << 16),
        timeout: s.timeout,
        eager,
    };
    let (mut child, dirty) = match forked {
        Ok(forked) => forked,
        Err(e) => {
            tracing::warn!("Can't save in background: fork: {e}");
            save::end_background(host, Some(false), started);
            for l in &out.links {
                l.handle.kill();
            }
            return;
        }
    };
    tracing::info!(
        "Starting BGSAVE for SYNC with target: {}",
        if to_sockets {
            "replicas sockets"
        } else {
            "disk"
        }
    );
    for l in &out.links {
        tracing::info!(
            "Replica {} asks for synchronization; full resync with replid {replid} offset {offset}",
            l.handle.addr
        );
        if l.psync {
            l.handle
                .push(Bytes::from(format!("+FULLRESYNC {replid} {offset}\r\n")));
        }
    }
    let sent = if to_sockets {
        let mark = random_id();
        out.send(Bytes::from(format!("$EOF:{mark}\r\n")));
        let written = child
            .copy_to(&mut out, || true)
            .and_then(|_| out.flush())
            .and_then(|()| child.wait());
        save::end_background(host, None, started);
        written.map(|()| out.send(Bytes::from(mark)))
    } else {
        let written = save::write_for_replicas(host, child, dirty);
        save::end_background(host, Some(written.is_ok()), started);
        match written {
            Ok(path) => {
                tracing::info!("Background saving terminated with success");
                let r = send_file(&mut out, &path);
                if s.del_sync_files && save::persistence_disabled(host) {
                    tracing::info!(
                        "Removing the RDB file used to feed replicas in a persistence-less instance"
                    );
                    let _ = std::fs::remove_file(&path);
                }
                r
            }
            Err(e) => Err(e),
        }
    };
    if let Err(e) = sent {
        tracing::warn!("Can't make or send the RDB for the full resync: {e}");
        for l in &out.links {
            l.handle.kill();
        }
        return;
    }
    for l in &out.links {
        if !out.drained(l) {
            continue;
        }
        l.sending.store(false, Relaxed);
        if repl.go_online(l, to_sockets) {
            tracing::info!("Synchronization with replica {} succeeded", l.handle.addr);
        }
    }
}

/// Sends the file at `path` as `$<len>` and its bytes.
fn send_file(out: &mut Broadcast, path: &std::path::Path) -> io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    for l in &out.links {
        l.sending.store(true, Relaxed);
    }
    out.send(Bytes::from(format!("${len}\r\n")));
    let mut left = len;
    let mut chunk = vec![0u8; 1 << 16];
    while left > 0 {
        let want = chunk.len().min(left as usize);
        f.read_exact(&mut chunk[..want])?;
        out.write_all(&chunk[..want])?;
        left -= want as u64;
    }
    out.flush()
}

/// Writes to every replica of a production at once.
struct Broadcast {
    links: Vec<Arc<Replica>>,
    buf: Vec<u8>,
    timeout: Duration,
    /// Send every write at once (a save slowed down key by key shows its
    /// progress).
    eager: bool,
}

impl Broadcast {
    /// Queues `bytes` to every replica still connected.
    fn send(&self, bytes: Bytes) {
        for l in &self.links {
            if !l.handle.is_killed() {
                l.handle.push(bytes.clone());
            }
        }
    }

    /// Waits until `l` has at most `left` bytes unsent; cuts it if it
    /// takes nothing for the timeout. False if it is gone.
    fn wait_for(&self, l: &Replica, left: usize) -> bool {
        let (mut last, mut moved) = (usize::MAX, Instant::now());
        loop {
            if l.handle.is_killed() {
                return false;
            }
            let pending = l.handle.pending_bytes();
            if pending <= left {
                return true;
            }
            if pending < last {
                (last, moved) = (pending, Instant::now());
            } else if moved.elapsed() > self.timeout {
                tracing::warn!(
                    "Disconnecting timedout replica (full sync): {}",
                    l.handle.addr
                );
                l.handle.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until `l`'s socket took everything; false if it is gone.
    fn drained(&self, l: &Replica) -> bool {
        self.wait_for(l, 0)
    }
}

impl Write for Broadcast {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.eager || self.buf.len() >= 1 << 16 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.send(chunk);
            self.buf.reserve(1 << 16);
        }
        let mut alive = false;
        for l in &self.links {
            alive |= self.wait_for(l, IN_FLIGHT);
        }
        if alive {
            Ok(())
        } else {
            Err(io::Error::other("no replica left to send the RDB to"))
        }
    }
}
