//! AOF rewrite (BGREWRITEAOF and the automatic one): a new base file from a
//! consistent snapshot, without blocking clients for long and without a
//! window where a crash loses acknowledged data.
//!
//! Steps (on a `herald-aof-rewrite` thread):
//!
//! 1. Create the next incremental file and store a manifest naming the old
//!    base, the old incremental files *and* the new one. A crash from here
//!    on loads everything.
//! 2. Lock every database (index order, as every multi-database command
//!    does), tell the writer to switch to the new incremental file
//!    ([`super::aof::Aof::switch`]): effects appended from now on go there.
//!    Then fork ([`super::fork`]) and release the databases: clients wait
//!    only for the fork, the child writes the base from its copy-on-write
//!    image of the data at the switch.
//! 3. Copy what the child writes to a temporary file, reap the child (a
//!    child that failed or was killed fails the rewrite), fsync the file,
//!    rename it to the next base name: an RDB file
//!    (`<prefix>.<seq>.base.rdb`) with `aof-use-rdb-preamble yes` (Redis's
//!    default), else commands (`<prefix>.<seq>.base.aof`: `FUNCTION LOAD`
//!    per library, `SELECT`, `SET` + `PEXPIREAT`, `RPUSH` / `SADD` /
//!    `ZADD` / `HMSET` in batches of 64 as Redis's
//!    `rewriteAppendOnlyFile`).
//! 4. Store a manifest naming the new base and the new incremental file
//!    only (fsync of the directory), then delete the old files.
//!
//! The same steps turn the log on at run time (CONFIG SET appendonly yes,
//! [`Purpose::Enable`]): the writer starts on the new incremental file at
//! step 2 instead of switching, and the manifest names the new files only
//! once the base is complete. A rewrite overtaken by CONFIG SET appendonly
//! (the log's `generation` changed) gives up, kills its child and removes
//! its files; that is not counted as a failure (Redis kills such a child
//! and leaves the status alone). When a rewrite ends, the enabling rewrite CONFIG SET
//! appendonly yes scheduled meanwhile starts (see `persist`); an enabling
//! rewrite that fails stops the writer it started and is scheduled again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::aof::encode_command;
use super::manifest::{base_name, incr_name, manifest_name, rdb_base_name, sync_dir, Entry, Kind};
use super::snapshot::Data;
use super::Host;
use crate::store::Value;

/// Redis's `AOF_REWRITE_ITEMS_PER_CMD`.
const ITEMS_PER_CMD: usize = 64;

/// Why a rewrite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// BGREWRITEAOF or the automatic rewrite: compact a running log.
    Compact,
    /// CONFIG SET appendonly yes (Redis's `startAppendOnly`): the log is
    /// off; start it on a new incremental file and write the data set as
    /// its base (the files of an earlier log in the directory are
    /// superseded and deleted once the new manifest is stored).
    Enable,
}

/// Starts a rewrite in the background. Errors are the texts BGREWRITEAOF
/// replies with. While the log is scheduled to go on (CONFIG SET
/// appendonly yes waiting, see `persist::set_appendonly`), this starts the
/// rewrite that turns it on, as Redis's BGREWRITEAOF does in that state.
pub fn start<H: Host>(host: &Arc<H>) -> Result<(), String> {
    let generation = {
        let mut st = host.state().lock();
        if st.rewrite_in_progress {
            return Err("ERR Background append only file rewriting already in progress".into());
        }
        if st.rewrite_scheduled {
            drop(st);
            return super::start_scheduled(host)
                .map_err(|e| format!("ERR can't start the AOF rewrite: {e}"));
        }
        if !host.aof().enabled() || st.layout.is_none() {
            return Err(
                "ERR herald writes the append-only file only while appendonly is yes".into(),
            );
        }
        st.rewrite_in_progress = true;
        st.rewrite_started = Some(Instant::now());
        st.generation
    };
    spawn(host, Purpose::Compact, generation)
}

/// Runs a rewrite on its own thread. The caller has set
/// `rewrite_in_progress`; this clears it when done and then starts the
/// rewrite that turns the log on if CONFIG SET appendonly yes scheduled one
/// meanwhile.
pub(crate) fn spawn<H: Host>(
    host: &Arc<H>,
    purpose: Purpose,
    generation: u64,
) -> Result<(), String> {
    let host = host.clone();
    let t = std::thread::Builder::new()
        .name("herald-aof-rewrite".into())
        .spawn({
            let host = host.clone();
            move || {
                let started = Instant::now();
                let r = run(&host, purpose, generation);
                let mut st = host.state().lock();
                st.rewrite_in_progress = false;
                st.rewrite_started = None;
                st.last_rewrite_secs = started.elapsed().as_secs() as i64;
                let mut retry_later = false;
                match r {
                    Ok(()) => {
                        st.last_rewrite_ok = true;
                        st.rewrites += 1;
                        st.consecutive_failures = 0;
                        tracing::info!("Background AOF rewrite finished successfully");
                    }
                    Err(_) if st.generation != generation => {
                        // Overtaken by CONFIG SET appendonly: not a failure
                        // (Redis kills such a child and leaves the status).
                        tracing::info!("Background AOF rewrite abandoned: {}", superseded());
                    }
                    Err(e) => {
                        st.last_rewrite_ok = false;
                        st.consecutive_failures += 1;
                        tracing::warn!("Background AOF rewrite failed: {e}");
                        if purpose == Purpose::Enable && st.layout.is_some() {
                            // The log is still meant to go on: as Redis in
                            // AOF_WAIT_REWRITE, schedule another try (the cron
                            // makes it, backing off after repeated failures).
                            // The writer it may have started logs to a file no
                            // manifest names: stop it; the next try's snapshot
                            // has everything.
                            host.aof().stop();
                            st.layout = None;
                            st.rewrite_scheduled = true;
                            retry_later = true;
                        }
                    }
                }
                let scheduled = st.rewrite_scheduled && !retry_later;
                drop(st);
                if scheduled {
                    if let Err(e) = super::start_scheduled(&host) {
                        tracing::warn!("Can't start the AOF rewrite that turns the AOF on: {e}");
                    }
                }
            }
        });
    if let Err(e) = t {
        let mut st = host.state().lock();
        st.rewrite_in_progress = false;
        st.rewrite_started = None;
        return Err(format!("ERR can't start the AOF rewrite: {e}"));
    }
    Ok(())
}

/// Test hook (feature `fault-injection`): while `stall` is set, rewrites
/// (BGREWRITEAOF, automatic, enabling) stop after taking their snapshot and
/// wait, so that a test can act while one is certainly running, halfway.
#[cfg(any(test, feature = "fault-injection"))]
pub fn stall<H: Host>(host: &H, stall: bool) {
    host.state().lock().stall_rewrites = stall;
    STALL.notify_all();
}

/// Test hook: a rewrite is stalled by [`stall`] now.
#[cfg(any(test, feature = "fault-injection"))]
pub fn stalled<H: Host>(host: &H) -> bool {
    host.state().lock().rewrite_stalled
}

/// Wakes rewrites stalled by [`stall`] (shared by every server of the process:
/// each re-checks its own flag).
#[cfg(any(test, feature = "fault-injection"))]
static STALL: parking_lot::Condvar = parking_lot::Condvar::new();

/// Waits while `stall` stalls rewrites (nothing without the test hook).
fn wait_while_stalled<H: Host>(host: &H) {
    let _ = host;
    #[cfg(any(test, feature = "fault-injection"))]
    {
        let mut st = host.state().lock();
        while st.stall_rewrites {
            st.rewrite_stalled = true;
            STALL.wait(&mut st);
        }
        st.rewrite_stalled = false;
    }
}

/// The error of a rewrite overtaken by CONFIG SET appendonly.
fn superseded() -> io::Error {
    io::Error::other("the AOF was turned off or on again during the rewrite")
}

/// The rewrite itself (see the module header).
fn run<H: Host>(host: &Arc<H>, purpose: Purpose, generation: u64) -> io::Result<()> {
    let (dir, prefix, old) = {
        let st = host.state().lock();
        let Some(l) = &st.layout else {
            return Err(io::Error::other("the AOF is not open"));
        };
        (l.dir.clone(), l.prefix.clone(), l.manifest.clone())
    };
    // 1. New incremental file; when compacting, announced at once in a
    //    manifest with the old files (when enabling, the old files are
    //    not the data any more: the new ones are named only once the base
    //    is complete, as Redis names its temporary incremental file).
    let incr_seq = old.incrs.last().map_or(1, |e| e.seq + 1);
    let base_seq = old.base.as_ref().map_or(1, |e| e.seq + 1);
    let incr = Entry {
        name: incr_name(&prefix, incr_seq),
        seq: incr_seq,
        kind: Kind::Incr,
    };
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(dir.join(&incr.name))?;
    file.sync_all()?;
    if purpose == Purpose::Compact {
        let mut during = old.clone();
        during.incrs.push(incr.clone());
        during.store(&dir, &manifest_name(&prefix))?;
        host.state().lock().set_manifest(during);
    } else {
        sync_dir(&dir)?;
    }

    // The new base's form: an RDB file (`aof-use-rdb-preamble yes`,
    // Redis's default) or commands.
    let preamble = {
        let c = host.config();
        (c.value("aof-use-rdb-preamble").as_deref() != Some("no"))
            .then(|| super::rdb::Encoding::from_config(&c))
    };
    let key_delay_us = super::save::key_delay(host.as_ref());

    // 2. Switch (or start) point, with every database locked (and the
    //    persistence state, so that CONFIG SET appendonly waits), and a
    //    child forked there to write the base.
    let held = super::snapshot::hold(host.as_ref(), false, || {
        let st = host.state().lock();
        if st.generation != generation || st.layout.is_none() {
            if purpose == Purpose::Enable {
                let _ = fs::remove_file(dir.join(&incr.name));
            }
            return Err(superseded());
        }
        match purpose {
            Purpose::Compact => {
                if !host.aof().switch(file) {
                    return Err(superseded());
                }
            }
            Purpose::Enable => {
                let policy = host.config().appendfsync;
                host.aof().start(file, 0, policy);
            }
        }
        Ok(())
    })?;
    let mut child = super::fork::spawn(host.as_ref(), held, |data, out| match &preamble {
        Some(enc) => {
            let aux = super::rdb::file::Aux {
                aof_base: true,
                key_delay_us,
                ..Default::default()
            };
            super::rdb::file::write(out, data, enc, &aux).map(|_| ())
        }
        None => write_commands(out, data, key_delay_us),
    })?;

    wait_while_stalled(host.as_ref());

    // 3. The new base, copied from the child to a temporary file, fsynced,
    //    and kept only if the child succeeded. A rewrite overtaken by
    //    CONFIG SET appendonly gives up at once (a scheduled enable waits
    //    for it) rather than after writing and fsyncing a base nobody will
    //    use.
    let tmp = dir.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    let wanted = || host.state().lock().generation == generation;
    let written = (|| {
        let f = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        child
            .copy_to(&mut w, wanted)
            .map_err(|e| if wanted() { e } else { superseded() })?;
        child.wait()?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        f.metadata().map(|m| m.len())
    })();
    let size = match written {
        Ok(size) => size,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let base = Entry {
        name: if preamble.is_some() {
            rdb_base_name(&prefix, base_seq)
        } else {
            base_name(&prefix, base_seq)
        },
        seq: base_seq,
        kind: Kind::Base,
    };

    // 4. Manifest with the new files only, then delete the old ones. The
    //    persistence lock is held throughout so that CONFIG SET appendonly
    //    cannot turn the log off (or on again) in between.
    let mut st = host.state().lock();
    let now = match &st.layout {
        Some(l) if st.generation == generation => l.manifest.clone(),
        _ => {
            drop(st);
            let _ = fs::remove_file(&tmp);
            return Err(superseded());
        }
    };
    fs::rename(&tmp, dir.join(&base.name))?;
    sync_dir(&dir)?;
    let mut fresh = now.clone();
    fresh.base = Some(base);
    fresh.incrs.retain(|e| e.seq >= incr_seq);
    if purpose == Purpose::Enable {
        fresh.incrs = vec![incr];
    }
    fresh.history.clear();
    fresh.store(&dir, &manifest_name(&prefix))?;
    st.set_manifest(fresh.clone());
    drop(st);
    host.aof().rewritten(size);
    let keep = fresh.load_order();
    for e in now.load_order().into_iter().chain(now.history.iter()) {
        if !keep.iter().any(|f| f.name == e.name) {
            tracing::info!("Removing the history file {} in the background", e.name);
            let _ = fs::remove_file(dir.join(&e.name));
        }
    }
    Ok(())
}

/// Writes `data` as commands (Redis's `rewriteAppendOnlyFileRio`):
/// `FUNCTION LOAD` per library, then each non-empty database's keys after
/// a `SELECT`; with `key_delay_us` (`rdb-key-save-delay`), each key goes
/// out before a pause, as Redis's rewrite pauses.
pub fn write_commands(
    out: &mut impl Write,
    data: &(impl Data + ?Sized),
    key_delay_us: i64,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    for code in data.libraries() {
        encode_command(&mut buf, &[b"FUNCTION".as_slice(), b"LOAD", code]);
    }
    for i in 0..data.db_count() {
        let mut selected = false;
        for item in data.keys(i) {
            if !selected {
                encode_command(&mut buf, &[b"SELECT".as_slice(), i.to_string().as_bytes()]);
                selected = true;
            }
            write_key(&mut buf, item.key, item.value, item.expire_at);
            if key_delay_us != 0 {
                out.write_all(&buf)?;
                out.flush()?;
                buf.clear();
                super::rdb::file::debug_delay(key_delay_us);
            } else if buf.len() >= 1 << 16 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    out.write_all(&buf)
}

/// The commands that recreate one key (Redis's `rewriteAppendOnlyFileRio`).
pub fn write_key(buf: &mut Vec<u8>, key: &[u8], v: &Value, at: Option<u64>) {
    let k = &Bytes::copy_from_slice(key);
    match v {
        Value::Str(s) => encode_command(buf, &[b"SET".as_slice(), k, s]),
        Value::List(l) => batches(
            buf,
            b"RPUSH",
            k,
            l.iter().map(|e| vec![Bytes::copy_from_slice(e)]),
        ),
        Value::Set(s) => batches(
            buf,
            b"SADD",
            k,
            s.members().iter().map(|m| vec![m.to_bytes()]),
        ),
        Value::Hash(h) => batches(buf, b"HMSET", k, h.iter_bytes().map(|(f, v)| vec![f, v])),
        Value::ZSet(z) => {
            let mut items = Vec::with_capacity(z.len());
            let mut c = z.first();
            while let Some(cur) = c {
                let (m, s) = z.entry(cur);
                items.push(vec![
                    Bytes::from(crate::protocol::frame::format_double(s)),
                    Bytes::copy_from_slice(m),
                ]);
                c = z.next(cur);
            }
            batches(buf, b"ZADD", k, items.into_iter())
        }
        Value::Stream(s) => write_stream(buf, k, s),
    }
    if let Some(at) = at {
        encode_command(
            buf,
            &[b"PEXPIREAT".as_slice(), k, at.to_string().as_bytes()],
        );
    }
}

/// A stream as Redis's `rewriteStreamObject` writes it: its entries with
/// their IDs, each consumer group (`XGROUP CREATE ... ENTRIESREAD`), its
/// pending entries (`XCLAIM ... TIME RETRYCOUNT FORCE JUSTID`) and idle
/// consumers, then `XSETID` for the counters.
///
/// One thing Redis's rewrite loses is kept: pending entries whose stream
/// entry is gone (trimmed, or deleted while pending), which XCLAIM cannot
/// recreate. They are added as placeholder entries (`XADD key id ~ ~`) in
/// ID order, claimed like the others, then removed again: those before
/// the first live entry with an exact `XTRIM MINID`, which leaves the
/// max deleted ID alone as the trim that removed them did, the others with
/// `XDEL` (which was what removed them, so the max deleted ID already
/// covers them). The closing `XSETID` restores the last ID, entries-added
/// and max deleted ID exactly. redis-server loads the result unchanged.
fn write_stream(buf: &mut Vec<u8>, k: &Bytes, s: &crate::store::Stream) {
    use crate::store::stream::StreamId;
    use std::collections::BTreeSet;
    let b = |s: &'static str| Bytes::from_static(s.as_bytes());
    let n = |v: u64| Bytes::from(v.to_string());
    let all = s.range(StreamId::MIN, StreamId::MAX, usize::MAX, false);
    let ghosts: BTreeSet<StreamId> = s
        .groups
        .values()
        .flat_map(|g| g.pel.keys().copied())
        .filter(|id| !s.contains(*id))
        .collect();
    if all.is_empty() && ghosts.is_empty() {
        // Redis's trick for an empty stream: add an entry and trim it.
        encode_command(
            buf,
            &[
                b("XADD"),
                k.clone(),
                b("MAXLEN"),
                b("0"),
                b("0-1"),
                b("x"),
                b("y"),
            ],
        );
    }
    let mut ghost_iter = ghosts.iter().peekable();
    let mut add_ghosts_below = |buf: &mut Vec<u8>, limit: StreamId| {
        while let Some(g) = ghost_iter.next_if(|g| **g < limit) {
            encode_command(buf, &[b("XADD"), k.clone(), g.to_bytes(), b("~"), b("~")]);
        }
    };
    let first_live = all.first().map(|(id, _)| *id);
    for (id, fields) in all {
        add_ghosts_below(buf, id);
        let mut cmd = vec![b("XADD"), k.clone(), id.to_bytes()];
        for (f, v) in fields {
            cmd.push(f);
            cmd.push(v);
        }
        encode_command(buf, &cmd);
    }
    add_ghosts_below(buf, StreamId::MAX);
    for (name, g) in &s.groups {
        let read = g.entries_read.map_or_else(|| Bytes::from_static(b"-1"), n);
        encode_command(
            buf,
            &[
                b("XGROUP"),
                b("CREATE"),
                k.clone(),
                name.clone(),
                g.last_id.to_bytes(),
                b("ENTRIESREAD"),
                read,
            ],
        );
        for (id, p) in &g.pel {
            encode_command(
                buf,
                &[
                    b("XCLAIM"),
                    k.clone(),
                    name.clone(),
                    p.consumer.clone(),
                    b("0"),
                    id.to_bytes(),
                    b("TIME"),
                    n(p.delivery_time),
                    b("RETRYCOUNT"),
                    n(p.delivery_count),
                    b("JUSTID"),
                    b("FORCE"),
                ],
            );
        }
        for (cname, c) in &g.consumers {
            if c.pel.is_empty() {
                encode_command(
                    buf,
                    &[
                        b("XGROUP"),
                        b("CREATECONSUMER"),
                        k.clone(),
                        name.clone(),
                        cname.clone(),
                    ],
                );
            }
        }
    }
    if !ghosts.is_empty() {
        let (low, mid): (Vec<StreamId>, Vec<StreamId>) = ghosts
            .iter()
            .partition(|g| first_live.is_none_or(|f| **g < f));
        if !low.is_empty() {
            let trim = match first_live {
                Some(f) => [b("XTRIM"), k.clone(), b("MINID"), b("="), f.to_bytes()],
                None => [b("XTRIM"), k.clone(), b("MAXLEN"), b("="), b("0")],
            };
            encode_command(buf, &trim);
        }
        for chunk in mid.chunks(ITEMS_PER_CMD) {
            let mut cmd = vec![b("XDEL"), k.clone()];
            cmd.extend(chunk.iter().map(|id| id.to_bytes()));
            encode_command(buf, &cmd);
        }
    }
    encode_command(
        buf,
        &[
            b("XSETID"),
            k.clone(),
            s.last_id.to_bytes(),
            b("ENTRIESADDED"),
            n(s.entries_added),
            b("MAXDELETEDID"),
            s.max_deleted_id.to_bytes(),
        ],
    );
}

/// `NAME key item...` commands of at most [`ITEMS_PER_CMD`] items each.
fn batches(
    buf: &mut Vec<u8>,
    name: &'static [u8],
    k: &Bytes,
    items: impl Iterator<Item = Vec<Bytes>>,
) {
    let mut cmd: Vec<Bytes> = Vec::new();
    let mut count = 0;
    for item in items {
        if count == 0 {
            cmd.clear();
            cmd.push(Bytes::from_static(name));
            cmd.push(k.clone());
        }
        cmd.extend(item);
        count += 1;
        if count == ITEMS_PER_CMD {
            encode_command(buf, &cmd);
            count = 0;
        }
    }
    if count > 0 {
        encode_command(buf, &cmd);
    }
}

/// Whether the automatic rewrite is due (auto-aof-rewrite-percentage and
/// auto-aof-rewrite-min-size, as Redis's `serverCron`).
pub fn auto_due<H: Host>(host: &H) -> bool {
    let (pct, min) = {
        let cfg = host.config();
        let num = |n: &str| {
            cfg.value(n)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (
            num("auto-aof-rewrite-percentage"),
            num("auto-aof-rewrite-min-size"),
        )
    };
    if pct == 0 || !host.aof().enabled() {
        return false;
    }
    let cur = host.aof().current_size();
    let base = host.aof().rewrite_base_size.load(Ordering::Relaxed).max(1);
    cur > min && cur > base && (cur - base) * 100 / base >= pct
}
