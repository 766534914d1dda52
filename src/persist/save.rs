//! RDB snapshots of the data set in `<dir>/<dbfilename>` (default
//! `dump.rdb`): SAVE, BGSAVE, the `save` points, the save at shutdown, and
//! loading the file at start-up when the AOF is off, as redis-server does.
//!
//! Background saves (BGSAVE, the save points, a disk-based full resync)
//! fork as redis-server does ([`fork`]): the databases are held only for
//! the fork itself, the child writes the RDB from its copy-on-write image
//! into a pipe, and a `herald-rdb-save` thread copies it to
//! `temp-<pid>.rdb` in `dir`, reaps the child, then fsyncs the file,
//! renames it over `dbfilename` and fsyncs the directory: a crash, or a
//! child that fails or is killed, leaves the previous file or the new one,
//! never a torn one. A foreground save (SAVE, the save at shutdown and
//! FLUSHALL's) stops clients anyway: it copies the data set one database
//! at a time ([`snapshot::take`]) and writes the file itself.
//!
//! BGSAVE and an AOF rewrite may run at the same time (two children, each
//! costing only the pages the server changes while it lives), so BGSAVE
//! never answers Redis's "Another child process is active" error; BGSAVE
//! SCHEDULE starts at once too.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::manifest::sync_dir;
use super::rdb::file::{self, Aux, LoadOptions, Sink};
use super::rdb::Encoding;
use super::snapshot::{self, Snapshot};
use super::{fork, Host};

/// Redis's `CONFIG_BGSAVE_RETRY_DELAY`: after a failed background save,
/// the save points wait this long before trying again.
const RETRY_DELAY_SECS: u64 = 5;

/// The RDB side of INFO persistence and of the save points.
#[derive(Debug)]
pub struct RdbState {
    /// A background save is running.
    pub in_progress: bool,
    /// When it started.
    pub started: Option<Instant>,
    /// Unix time of the last successful save, or of start-up (LASTSAVE).
    pub last_save_unix: u64,
    /// When the last background save was tried (the retry delay).
    last_try: Option<Instant>,
    /// Outcome of the last background save (`rdb_last_bgsave_status`).
    pub last_bgsave_ok: bool,
    /// Duration of the last background save, -1 if none.
    pub last_bgsave_secs: i64,
    /// Saves completed since start-up (`rdb_saves`).
    pub saves: u64,
    /// The change counters' sum at the cut of the last successful save.
    pub dirty_at_save: u64,
    /// Keys loaded and left out as expired by the last load.
    pub keys_loaded: u64,
    pub keys_expired: u64,
}

impl Default for RdbState {
    fn default() -> Self {
        RdbState {
            in_progress: false,
            started: None,
            last_save_unix: unix_now(),
            last_try: None,
            last_bgsave_ok: true,
            last_bgsave_secs: -1,
            saves: 0,
            dirty_at_save: 0,
            keys_loaded: 0,
            keys_expired: 0,
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `<dir>/<dbfilename>`.
pub fn path<H: Host + ?Sized>(host: &H) -> PathBuf {
    let c = host.config();
    c.dir
        .join(c.value("dbfilename").unwrap_or_else(|| "dump.rdb".into()))
}

/// The save points in force: (seconds, changes) pairs.
fn save_points<H: Host + ?Sized>(host: &H) -> Vec<(u64, u64)> {
    let text = host.config().value("save").unwrap_or_default();
    let nums: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    nums.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

/// True if `save` points are configured (a save at shutdown is due).
pub fn has_save_points<H: Host + ?Sized>(host: &H) -> bool {
    !save_points(host).is_empty()
}

/// Writes a file to `path` through a temporary file in the same
/// directory (`fill` writes its bytes), fsynced and renamed. Returns the
/// file's size.
fn write_file(
    path: &std::path::Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<u64> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let tmp = dir.join(format!("temp-{}.rdb", std::process::id()));
    let written = (|| {
        let f = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        fill(&mut w)?;
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
    fs::rename(&tmp, path)?;
    sync_dir(&dir)?;
    Ok(size)
}

/// Writes what `child` produces to `path` as [`write_file`] does, once the
/// child has exited successfully (a child that failed or was killed leaves
/// the previous file in place).
fn write_child_output(path: &std::path::Path, mut child: fork::Child) -> io::Result<u64> {
    write_file(path, |w| {
        child.copy_to(w, || true)?;
        child.wait()
    })
}

/// What a save writes besides the data, read before the cut.
fn settings<H: Host + ?Sized>(host: &H) -> (Encoding, Aux, PathBuf) {
    let aux = Aux {
        used_mem: 0,
        repl: None,
        aof_base: false,
        key_delay_us: key_delay(host),
    };
    (Encoding::from_config(&host.config()), aux, path(host))
}

/// A foreground save's copy of the data, and what to write it with.
fn prepare<H: Host + ?Sized>(host: &H) -> (Snapshot, Encoding, Aux, PathBuf) {
    let (enc, mut aux, path) = settings(host);
    let Ok(snap) = snapshot::take(host, true, || {
        aux.repl = host.repl_point();
        Ok::<(), std::convert::Infallible>(())
    });
    aux.used_mem = host.store().used_memory_total() as u64;
    (snap, enc, aux, path)
}

/// Forks a child writing the RDB of the data set as it is now (see
/// [`fork`]); `at_cut` runs while every database is held and returns the
/// replication point the file records. Returns the child and the change
/// counters' sum at the cut.
pub fn fork_rdb<H: Host + ?Sized>(
    host: &H,
    enc: Encoding,
    mut aux: Aux,
    at_cut: impl FnOnce() -> Option<(String, i64, usize)>,
) -> io::Result<(fork::Child, u64)> {
    let Ok(held) = snapshot::hold(host, true, || {
        aux.repl = at_cut();
        Ok::<(), std::convert::Infallible>(())
    });
    aux.used_mem = host.store().used_memory_total() as u64;
    let dirty = held.dirty;
    let child = fork::spawn(host, held, |data, out| {
        file::write(out, data, &enc, &aux).map(|_| ())
    })?;
    Ok((child, dirty))
}

/// `rdb-key-save-delay`, Redis's hidden setting that slows saves down.
pub fn key_delay<H: Host + ?Sized>(host: &H) -> i64 {
    host.config()
        .value("rdb-key-save-delay")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Marks a background save as running (INFO `rdb_bgsave_in_progress`),
/// for BGSAVE and for the RDB a full resync makes; false if one already
/// runs.
pub fn begin_background<H: Host + ?Sized>(host: &H) -> bool {
    let mut st = host.state().lock();
    if st.rdb.in_progress {
        return false;
    }
    st.rdb.in_progress = true;
    st.rdb.started = Some(Instant::now());
    st.rdb.last_try = Some(Instant::now());
    true
}

/// Marks the background save begun at `started` as over, with the outcome
/// of the file it wrote (`None`: it wrote none, as a diskless full resync,
/// whose failure is no failed save).
pub fn end_background<H: Host + ?Sized>(host: &H, saved_ok: Option<bool>, started: Instant) {
    let mut st = host.state().lock();
    st.rdb.in_progress = false;
    st.rdb.started = None;
    if let Some(ok) = saved_ok {
        host.rdb_failed().store(!ok, Ordering::Relaxed);
        st.rdb.last_bgsave_ok = ok;
        st.rdb.last_bgsave_secs = started.elapsed().as_secs() as i64;
    }
}

/// Writes the RDB of a disk-based full resync, which `child` produces, to
/// `<dir>/<dbfilename>`, as Redis's BGSAVE for replication does (the file
/// counts as a save of the data at the cut, whose change counters' sum
/// was `dirty`). Returns its path.
pub fn write_for_replicas<H: Host + ?Sized>(
    host: &H,
    child: fork::Child,
    dirty: u64,
) -> io::Result<PathBuf> {
    let path = path(host);
    write_child_output(&path, child)?;
    saved(host, dirty);
    Ok(path)
}

/// Stores the RDB a replica received from its primary as
/// `<dir>/<dbfilename>` (a temporary file, fsynced, renamed over it), as a
/// Redis replica with `repl-diskless-load disabled` does before loading it.
pub fn store_received<H: Host + ?Sized>(host: &H, data: &[u8]) -> io::Result<PathBuf> {
    let path = path(host);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    // Redis's name, with a random part: several servers of one process
    // (tests) may receive at the same second.
    let tmp = dir.join(format!(
        "temp-{}.{}.{}.rdb",
        unix_now(),
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = (|| {
        // herald's embedded default `dir` (./herald-data) exists only once
        // the AOF was opened there.
        fs::create_dir_all(&dir)?;
        let mut f = File::create(&tmp)?;
        io::Write::write_all(&mut f, data)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &path)?;
    sync_dir(&dir)?;
    Ok(path)
}

/// True when neither save points nor the AOF are configured: the RDB a
/// disk-based full resync wrote is removed afterwards under
/// `rdb-del-sync-files yes` (Redis's `allPersistenceDisabled`).
pub fn persistence_disabled<H: Host + ?Sized>(host: &H) -> bool {
    !has_save_points(host) && !host.config().appendonly
}

/// Records a finished save.
fn saved<H: Host + ?Sized>(host: &H, dirty: u64) {
    let mut st = host.state().lock();
    st.rdb.dirty_at_save = dirty;
    st.rdb.last_save_unix = unix_now();
    st.rdb.saves += 1;
}

/// SAVE (and the save at shutdown): writes the file before returning.
/// Refused while a background save runs, as Redis refuses it.
pub fn save<H: Host + ?Sized>(host: &H) -> Result<(), String> {
    if host.state().lock().rdb.in_progress {
        return Err("ERR Background save already in progress".into());
    }
    let (snap, enc, aux, path) = prepare(host);
    match write_file(&path, |w| file::write(w, &snap, &enc, &aux).map(|_| ())) {
        Ok(_) => {
            tracing::info!("DB saved on disk");
            saved(host, snap.dirty);
            Ok(())
        }
        Err(e) => {
            tracing::warn!("Failed saving the DB to {}: {e}", path.display());
            Err(format!("Failed saving the DB: {e}"))
        }
    }
}

/// SAVE once the running background save (if any) is over: a save that
/// must reflect the data as it is now (FLUSHALL, shutdown), where the
/// running one's snapshot is older.
pub fn save_after_bgsave<H: Host + ?Sized>(host: &H) -> Result<(), String> {
    loop {
        match save(host) {
            Err(e) if e.contains("already in progress") => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// BGSAVE (and the save points): forks a child that writes the data set
/// as it is now, and copies what it writes to the file on a thread of its
/// own. Errors are BGSAVE's reply texts.
pub fn bgsave<H: Host>(host: &Arc<H>) -> Result<(), String> {
    if !begin_background(host.as_ref()) {
        return Err("ERR Background save already in progress".into());
    }
    let started = Instant::now();
    let (enc, aux, path) = settings(host.as_ref());
    let (child, dirty) = match fork_rdb(host.as_ref(), enc, aux, || host.repl_point()) {
        Ok(forked) => forked,
        Err(e) => {
            tracing::warn!("Can't save in background: fork: {e}");
            end_background(host.as_ref(), Some(false), started);
            return Err(format!("ERR Can't start the background save: {e}"));
        }
    };
    tracing::info!("Background saving started");
    let host2 = host.clone();
    let spawned = std::thread::Builder::new()
        .name("herald-rdb-save".into())
        .spawn(move || {
            let ok = match write_child_output(&path, child) {
                Ok(_) => {
                    saved(host2.as_ref(), dirty);
                    tracing::info!("Background saving terminated with success");
                    true
                }
                Err(e) => {
                    tracing::warn!("Background saving error: {e} ({})", path.display());
                    false
                }
            };
            end_background(host2.as_ref(), Some(ok), started);
        });
    if let Err(e) = spawned {
        // The child was moved into the closure and dropped with it: killed
        // and reaped.
        end_background(host.as_ref(), Some(false), started);
        return Err(format!("ERR Can't start the background save: {e}"));
    }
    Ok(())
}

/// From the once-a-second tick: starts a background save when a `save`
/// point is reached (Redis's `serverCron`), at most every
/// [`RETRY_DELAY_SECS`] after a failure.
pub fn tick<H: Host>(host: &Arc<H>) {
    let points = save_points(host.as_ref());
    if points.is_empty() {
        return;
    }
    let dirty_now = dirty_sum(host.as_ref());
    let due = {
        let st = host.state().lock();
        let r = &st.rdb;
        if r.in_progress {
            return;
        }
        let changes = dirty_now.saturating_sub(r.dirty_at_save);
        let since = unix_now().saturating_sub(r.last_save_unix);
        let may_retry = r.last_bgsave_ok
            || r.last_try
                .is_none_or(|t| t.elapsed().as_secs() >= RETRY_DELAY_SECS);
        if !may_retry {
            return;
        }
        points
            .iter()
            .find(|&&(secs, min)| changes >= min && since >= secs)
            .copied()
    };
    if let Some((secs, min)) = due {
        tracing::info!("{min} changes in {secs} seconds. Saving...");
        let _ = bgsave(host);
    }
}

/// The sum of every database's change counter.
pub fn dirty_sum<H: Host + ?Sized>(host: &H) -> u64 {
    let store = host.store();
    (0..store.len()).map(|i| store.lock(i).dirty).sum()
}

/// True if writes must be refused because the last background save failed
/// (`stop-writes-on-bgsave-error` with save points configured): Redis's
/// MISCONF state.
pub fn writes_refused<H: Host + ?Sized>(host: &H) -> bool {
    if !host.rdb_failed().load(Ordering::Relaxed) {
        return false;
    }
    host.config()
        .value("stop-writes-on-bgsave-error")
        .as_deref()
        != Some("no")
        && has_save_points(host)
}

/// The replication point a `dump.rdb` loaded at start-up recorded, and
/// the keys it held that had expired (a primary propagates their
/// deletion to the replicas that continue from that point).
#[derive(Debug, Default)]
pub struct ReplPoint {
    /// `repl-id`.
    pub id: String,
    /// `repl-offset`.
    pub offset: u64,
    /// `repl-stream-db`.
    pub db: usize,
    /// Keys left out as expired, by database.
    pub expired: Vec<(usize, bytes::Bytes)>,
}

/// A sink that notes the keys left out as expired.
struct NotingExpired<'a> {
    inner: &'a mut dyn Sink,
    expired: Vec<(usize, bytes::Bytes)>,
}

impl Sink for NotingExpired<'_> {
    fn library(&mut self, code: bytes::Bytes) -> Result<(), String> {
        self.inner.library(code)
    }

    fn key(&mut self, db: usize, item: snapshot::Item) -> Result<(), String> {
        self.inner.key(db, item)
    }

    fn expired(&mut self, db: usize, key: bytes::Bytes) {
        self.expired.push((db, key));
    }
}

/// Loads `dump.rdb` into `sink` at start-up, when the AOF is off (with it
/// on, the AOF is the data, as in Redis). A missing file is an empty data
/// set; a bad one stops start-up with a message naming the offset. A
/// replica (`replica`) keeps the keys whose TTL has passed, for its
/// primary to delete, as Redis's replicas do. Returns the replication
/// point the file recorded (Redis 7.0 saves one with `repl-id`,
/// `repl-offset` and `repl-stream-db`), if any.
pub fn load_at_startup<H: Host + ?Sized>(
    host: &H,
    sink: &mut dyn Sink,
    replica: bool,
) -> Result<Option<ReplPoint>, String> {
    if host.config().appendonly {
        return Ok(None);
    }
    let path = path(host);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("Can't read the RDB file {}: {e}", path.display())),
    };
    let started = Instant::now();
    let verify = host.config().value("rdbchecksum").as_deref() != Some("no");
    let opts = LoadOptions {
        now_ms: crate::store::now_ms(),
        skip_expired: !replica,
        verify_checksum: verify,
    };
    let mut noting = NotingExpired {
        inner: sink,
        expired: Vec::new(),
    };
    let loaded = file::load(&data, opts, &mut noting)
        .map_err(|e| format!("Error loading the RDB file {}: {e}", path.display()))?;
    let expired = noting.expired;
    tracing::info!(
        "DB loaded from disk: {:.3} seconds ({} keys, {} expired keys left out)",
        started.elapsed().as_secs_f64(),
        loaded.keys_loaded,
        loaded.keys_expired
    );
    let mut st = host.state().lock();
    st.rdb.keys_loaded = loaded.keys_loaded;
    st.rdb.keys_expired = loaded.keys_expired;
    drop(st);
    let point = match (loaded.repl_id, loaded.repl_offset, loaded.repl_stream_db) {
        (Some(id), Some(offset), Some(db)) if offset >= 0 => Some(ReplPoint {
            id,
            offset: offset as u64,
            db,
            expired,
        }),
        _ => None,
    };
    Ok(point)
}

/// What a shutdown does about the RDB file (SHUTDOWN's options, or the
/// `shutdown-on-sigint` / `shutdown-on-sigterm` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownSave {
    /// SAVE: save even without save points.
    pub save: bool,
    /// NOSAVE: do not save even with save points.
    pub nosave: bool,
    /// FORCE: shut down even if the save fails.
    pub force: bool,
}

/// Redis's `prepareForShutdown` for the RDB: saves when save points are
/// set (or SAVE is given) unless NOSAVE. An error means the server must
/// keep running (the save failed and FORCE was not given).
pub fn at_shutdown<H: Host + ?Sized>(host: &H, how: ShutdownSave) -> Result<(), String> {
    if how.nosave || !(how.save || has_save_points(host)) {
        return Ok(());
    }
    tracing::info!("Saving the final RDB snapshot before exiting.");
    match save_after_bgsave(host) {
        Ok(()) => Ok(()),
        Err(e) if how.force => {
            tracing::warn!("Error trying to save the DB, exiting anyway (FORCE): {e}");
            Ok(())
        }
        Err(e) => {
            tracing::warn!("Error trying to save the DB, can't exit: {e}");
            Err(e)
        }
    }
}
