//! Persistence: Redis 7.0's multi-part append-only file.
//!
//! # Files
//!
//! `<dir>/<appenddirname>/` (default `appendonlydir`) holds, exactly as
//! redis-server 7.0 writes them:
//!
//! - `<appendfilename>.manifest` ([`manifest`]): which files make up the
//!   data, e.g. `file appendonly.aof.1.base.aof seq 1 type b` then
//!   `file appendonly.aof.1.incr.aof seq 1 type i`;
//! - a base file: the data set, written by a rewrite ([`rewrite`]) as an
//!   RDB file (`.base.rdb`, `aof-use-rdb-preamble yes`, Redis's default)
//!   or as commands (`.base.aof`); the first base of a new log is an empty
//!   `.base.aof`;
//! - incremental files: the effects of every write since, as RESP commands,
//!   with `SELECT` when the database changes ([`aof`]).
//!
//! redis-server 7 loads a directory herald wrote and herald loads one
//! redis-server wrote, with or without RDB preamble: `tests/persistence.rs`,
//! `tests/rdb.rs`.
//!
//! `dump.rdb` snapshots (SAVE, BGSAVE, save points) are [`save`]'s; both
//! writers work from a [`snapshot`] (the databases held at one cut),
//! written in the background by a child process ([`fork`]), and the RDB
//! codec is [`rdb`].
//!
//! # What is logged (propagation)
//!
//! Every data command runs with its database acquired from the engine
//! (`engine::Engine::acquire` / `release`); every change bumps `Db::dirty`.
//! A command that changed something is logged *as given* unless its
//! handler recorded a deterministic
//! rewrite instead with `Db::propagate` (SET EX → `SET k v PXAT t`, EXPIRE
//! → `PEXPIREAT`, INCRBYFLOAT → `SET k result KEEPTTL`, HINCRBYFLOAT →
//! `HSET`, SPOP → `SREM`, every list / sorted-set pop — LPOP, BLPOP,
//! LMOVE, BLMOVE, a served blocked client — as the pop `LPOP k [n]` /
//! `ZPOPMIN k [n]` plus `LPUSH`/`RPUSH` for moves). Keys removed by expiry
//! are logged as `DEL`.
//!
//! Streams (`command::streams`), as redis-server 7.0's `t_stream.c`
//! propagates them unless said otherwise: XADD with the ID it got, and an
//! approximate trim (`~`, LIMIT) of XADD or XTRIM as the exact trim it
//! amounted to (`MAXLEN = <length>` / `MINID = <first ID>`); XREADGROUP as
//! one `XCLAIM key group consumer 0 id TIME <ms> RETRYCOUNT <n> FORCE
//! JUSTID LASTID <id>` per delivered entry plus `XGROUP SETID ...
//! ENTRIESREAD` (with NOACK the latter only); XCLAIM and XAUTOCLAIM as the
//! same absolute XCLAIMs for what they claimed or dropped (pending entries
//! whose entry is gone), or `XGROUP SETID` if only LASTID moved, never as
//! given. Beyond Redis 7.0 (whose replicas and AOF lose these): history
//! re-reads (XREADGROUP with an ID) are logged as XCLAIMs with the new
//! delivery count and time, and a consumer a read creates without giving
//! it entries as `XGROUP CREATECONSUMER`. The loader, like Redis's AOF
//! client, ignores LIMIT in a trim it replays.
//!
//! The effects are buffered in `Db::prop` and handed by the engine to
//! [`aof::Aof::append`] when the command ends, still under the database
//! lock, so the file has each database's effects in execution order. EXEC
//! (an engine unit) collects the effects of its queue and appends them
//! once, as `MULTI ... EXEC`. Rejected and queued commands change nothing and are
//! not logged. With `appendonly no`, `Db::propagating` is false and nothing
//! is buffered.
//!
//! # Durability
//!
//! See [`aof`]. What herald acknowledges, it keeps: the reply to a logged
//! write leaves only once its effects are written to the file with
//! `write(2)` (`everysec`, `no`: a killed process loses nothing
//! acknowledged, an OS crash up to about a second under `everysec`) or
//! written and fsynced (`always`: nothing acknowledged is lost at all).
//! The command layer records the offset a reply waits for in
//! `Client::durable_at`; the connection loop keeps the batch's replies in
//! the outbox until [`aof::Aof::wait_durable`] says so. The write (and under `always`
//! the fsync) is made by the runtime worker about to park, once every
//! client of its round has run its commands, as Redis's `beforeSleep`
//! does: one write and one fsync per round (group commit). A writer thread
//! fsyncs `everysec` in the background, takes over `always` fsyncs while
//! the disk is slow, and backs the workers up.
//!
//! # Turning the log on and off at run time
//!
//! [`set_appendonly`] (CONFIG SET appendonly) never waits. On: a rewrite
//! (`rewrite::Purpose::Enable`) starts the log on a new incremental file
//! and writes the data set as its base; if another rewrite is still
//! running (one of a log turned off meanwhile, giving up), the enabling
//! rewrite is *scheduled* (`State::rewrite_scheduled`, INFO
//! `aof_rewrite_scheduled:1`, `aof_enabled:1` already), as Redis's
//! `startAppendOnly` does, and starts when that rewrite ends (or from the
//! once-a-second [`tick`]). Writes made until it starts are in its
//! snapshot, taken when it starts with every database locked. An enabling
//! rewrite that fails is scheduled again (Redis's `AOF_WAIT_REWRITE`),
//! backing off after three failures in a row. Off: the log is written,
//! fsynced and closed; a scheduled enable is cancelled.
//!
//! # Start-up and recovery
//!
//! [`open`] runs before the server accepts clients: it creates the
//! directory and an empty base + incremental file on first start, or
//! replays the manifest's files ([`load`]: torn tails truncated with a
//! warning, corruption stops start-up naming file and offset), then starts
//! the writer on the last incremental file.
//!
//! # Where the defaults come from
//!
//! `Config::default()` keeps Redis's `appendonly no` (tests and embedders
//! using `server::start` get no files unless they ask); the `herald` binary
//! (`Config::from_args`) turns on `appendonly yes` in `./herald-data`
//! unless the file or command line set `appendonly` / `dir`.

pub mod aof;
pub mod check;
pub mod check_rdb;
pub mod fork;
pub mod load;
pub mod manifest;
pub mod rdb;
pub mod rewrite;
pub mod save;
pub mod snapshot;

use std::fs::{self, OpenOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use manifest::{base_name, incr_name, manifest_name, Entry, Kind, Manifest};

use parking_lot::{Mutex, RwLockReadGuard};

use crate::config::Config;
use crate::store::Store;
use aof::Aof;
use load::Replay;

/// What persistence needs from the server it runs in (the server's shared
/// state implements it): the configuration it reads, the keyspace a
/// rewrite snapshots, the log writer and its state. Rewrites run on their
/// own thread, hence `'static` and the `Arc`s.
pub trait Host: Send + Sync + 'static {
    /// The configuration in force (`dir`, `appendfilename`, `appendfsync`,
    /// the automatic-rewrite thresholds).
    fn config(&self) -> RwLockReadGuard<'_, Config>;
    /// The databases.
    fn store(&self) -> &Store;
    /// The append-only file writer.
    fn aof(&self) -> &Arc<Aof>;
    /// The log's layout and rewrite status.
    fn state(&self) -> &Mutex<State>;
    /// Every function library's code: a rewrite writes them first, as
    /// `FUNCTION LOAD` commands. Asked while every database is held, so it
    /// must not wait for anything that holds a database.
    fn function_libraries(&self) -> Vec<bytes::Bytes>;
    /// Set while the last background save has failed (Redis's MISCONF
    /// state, see [`save::writes_refused`]).
    fn rdb_failed(&self) -> &std::sync::atomic::AtomicBool;
    /// The replication point the data stands at, recorded in a saved RDB
    /// (`repl-id`, `repl-offset`, `repl-stream-db`) so that after a restart
    /// partial resyncs go on from it, as Redis's `rdbPopulateSaveInfo`:
    /// `None` when the server takes part in no replication. Asked while
    /// every database is held, so that it matches the data.
    fn repl_point(&self) -> Option<(String, i64, usize)>;
}

/// Where the AOF lives and what its manifest says now.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `<dir>/<appenddirname>`.
    pub dir: PathBuf,
    /// `appendfilename` (prefix of every file name).
    pub prefix: String,
    /// The manifest as last stored.
    pub manifest: Manifest,
}

/// Persistence state shown by INFO and used by rewrites ([`Host::state`]).
#[derive(Debug)]
pub struct State {
    /// None while the AOF is off (or only scheduled to go on).
    pub layout: Option<Layout>,
    /// A rewrite is running.
    pub rewrite_in_progress: bool,
    /// CONFIG SET appendonly yes is waiting for the rewrite that turns the
    /// log on (Redis's `aof_rewrite_scheduled` in state
    /// `AOF_WAIT_REWRITE`): the log counts as on (INFO `aof_enabled:1`);
    /// the rewrite starts when the running one is over ([`start_scheduled`]).
    pub rewrite_scheduled: bool,
    /// When the running rewrite started.
    pub rewrite_started: Option<Instant>,
    /// Outcome of the last rewrite (INFO `aof_last_bgrewrite_status`).
    pub last_rewrite_ok: bool,
    /// Duration of the last rewrite, -1 if none (INFO).
    pub last_rewrite_secs: i64,
    /// Rewrites completed since start-up (INFO `aof_rewrites`).
    pub rewrites: u64,
    /// Rewrites failed in a row (INFO `aof_rewrites_consecutive_failures`);
    /// from three on, the automatic and scheduled ones back off.
    pub consecutive_failures: u32,
    /// The back-off of Redis's `aofRewriteLimited`: no automatic or
    /// scheduled rewrite before this time, and the delay after the next one.
    limited_until: Option<Instant>,
    limit_delay_minutes: u64,
    /// Bumped each time CONFIG SET turns the log off or on, so that a
    /// rewrite started for an earlier log gives up instead of naming its
    /// files in a manifest that has moved on.
    pub generation: u64,
    /// RDB saves (see [`save`]).
    pub rdb: save::RdbState,
    /// Child processes forked for background saves and rewrites (INFO
    /// `total_forks`, see [`fork`]).
    pub forks: u64,
    /// How long the last fork took, in µs (INFO `latest_fork_usec`).
    pub latest_fork_usec: u64,
    /// Test hook (`rewrite::stall`): rewrites wait after their snapshot
    /// while this is set.
    #[cfg(any(test, feature = "fault-injection"))]
    pub stall_rewrites: bool,
    /// Test hook: a rewrite waits there now.
    #[cfg(any(test, feature = "fault-injection"))]
    pub rewrite_stalled: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            layout: None,
            rewrite_in_progress: false,
            rewrite_scheduled: false,
            rewrite_started: None,
            last_rewrite_ok: true,
            last_rewrite_secs: -1,
            rewrites: 0,
            consecutive_failures: 0,
            limited_until: None,
            limit_delay_minutes: 0,
            generation: 0,
            rdb: save::RdbState::default(),
            forks: 0,
            latest_fork_usec: 0,
            #[cfg(any(test, feature = "fault-injection"))]
            stall_rewrites: false,
            #[cfg(any(test, feature = "fault-injection"))]
            rewrite_stalled: false,
        }
    }
}

impl State {
    /// Records the manifest now on disk.
    pub fn set_manifest(&mut self, m: Manifest) {
        if let Some(l) = &mut self.layout {
            l.manifest = m;
        }
    }

    /// True while the log is on or scheduled to go on (INFO `aof_enabled`).
    pub fn aof_on(&self) -> bool {
        self.layout.is_some() || self.rewrite_scheduled
    }

    /// Redis's `aofRewriteLimited`: after three failed rewrites in a row,
    /// automatic and scheduled rewrites wait 1 minute, then 2, 4, ... up
    /// to an hour between attempts (BGREWRITEAOF is never held back).
    fn rewrite_limited(&mut self) -> bool {
        const THRESHOLD: u32 = 3;
        const MAX_MINUTES: u64 = 60;
        if self.consecutive_failures < THRESHOLD {
            self.limited_until = None;
            self.limit_delay_minutes = 0;
            return false;
        }
        if let Some(t) = self.limited_until {
            if Instant::now() < t {
                return true;
            }
            self.limited_until = None;
            return false;
        }
        self.limit_delay_minutes = (self.limit_delay_minutes * 2).clamp(1, MAX_MINUTES);
        self.limited_until =
            Some(Instant::now() + Duration::from_secs(self.limit_delay_minutes * 60));
        tracing::warn!(
            "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {} minutes",
            self.limit_delay_minutes
        );
        true
    }
}

/// `dir`, `appenddirname` and `appendfilename` from the configuration.
fn configured_paths<H: Host>(host: &H) -> (PathBuf, String, String) {
    let c = host.config();
    (
        c.dir.clone(),
        c.value("appenddirname")
            .unwrap_or_else(|| "appendonlydir".into()),
        c.value("appendfilename")
            .unwrap_or_else(|| "appendonly.aof".into()),
    )
}

/// Opens (creating or loading) the AOF if `appendonly` is on, before the
/// server accepts clients; `replay` runs the logged commands. The error is the complete start-up message.
pub fn open<H: Host>(host: &Arc<H>, replay: &mut dyn Replay) -> Result<(), String> {
    let (dir, dirname, prefix) = configured_paths(host.as_ref());
    let (on, policy, load_truncated) = {
        let c = host.config();
        (
            c.appendonly,
            c.appendfsync,
            c.value("aof-load-truncated").as_deref() != Some("no"),
        )
    };
    if !on {
        return Ok(());
    }
    let aofdir = dir.join(&dirname);
    fs::create_dir_all(&aofdir)
        .map_err(|e| format!("Can't create the AOF directory {}: {e}", aofdir.display()))?;
    let mname = manifest_name(&prefix);
    let mpath = aofdir.join(&mname);
    let started = Instant::now();
    let mut m = match fs::read(&mpath) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("Invalid AOF manifest file format in {}", mpath.display()))?;
            Manifest::parse(&text).map_err(|e| format!("{e} in {}", mpath.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join(&prefix).exists() {
                return Err(format!(
                    "{} is a single-file AOF of Redis < 7: herald loads the multi-part format only (let redis-server 7 upgrade it first)",
                    dir.join(&prefix).display()
                ));
            }
            let base = Entry {
                name: base_name(&prefix, 1),
                seq: 1,
                kind: Kind::Base,
            };
            fs::File::create(aofdir.join(&base.name))
                .and_then(|f| f.sync_all())
                .map_err(|e| format!("Can't create {}: {e}", base.name))?;
            Manifest {
                base: Some(base),
                incrs: Vec::new(),
                history: Vec::new(),
            }
        }
        Err(e) => return Err(format!("Can't read {}: {e}", mpath.display())),
    };
    let loaded = load::replay(replay, &aofdir, &m, load_truncated)?;
    if loaded.commands > 0 || m.incrs.iter().any(|_| true) {
        tracing::info!(
            "DB loaded from append only file: {:.3} seconds ({} commands)",
            started.elapsed().as_secs_f64(),
            loaded.commands
        );
    }
    for h in std::mem::take(&mut m.history) {
        let _ = fs::remove_file(aofdir.join(&h.name));
    }
    if m.incrs.is_empty() {
        let seq = 1;
        m.incrs.push(Entry {
            name: incr_name(&prefix, seq),
            seq,
            kind: Kind::Incr,
        });
    }
    let Some(last) = m.incrs.last().cloned() else {
        return Err("no incremental AOF file".into());
    };
    let incr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(aofdir.join(&last.name))
        .map_err(|e| format!("Can't open the append-only file {}: {e}", last.name))?;
    m.store(&aofdir, &mname)
        .map_err(|e| format!("Can't write the AOF manifest {}: {e}", mpath.display()))?;
    let size_of = |e: &Entry| fs::metadata(aofdir.join(&e.name)).map_or(0, |m| m.len());
    let base_size = m.base.as_ref().map_or(0, size_of);
    let others: u64 = base_size
        + m.incrs[..m.incrs.len() - 1]
            .iter()
            .map(size_of)
            .sum::<u64>();
    host.aof()
        .base_size
        .store(base_size, std::sync::atomic::Ordering::Relaxed);
    host.state().lock().layout = Some(Layout {
        dir: aofdir,
        prefix,
        manifest: m,
    });
    host.aof().start(incr, others, policy);
    Ok(())
}

/// Turns the log on or off at run time (CONFIG SET appendonly), as Redis's
/// `startAppendOnly` / `stopAppendOnly`. Never waits.
///
/// On: a rewrite starts the log on a new incremental file and writes the
/// data set as its base in the background (INFO shows
/// `aof_rewrite_in_progress:1` meanwhile); files of an earlier log in the
/// directory are deleted once the manifest names the new ones. If a rewrite
/// is still running (one of a log turned off meanwhile, which is giving
/// up), the enabling rewrite is *scheduled* instead, as Redis does: the log
/// counts as on at once (`aof_enabled:1`, `aof_rewrite_scheduled:1`) and
/// the rewrite starts as soon as the other one is over. Writes made until
/// it starts are in its snapshot (taken when it starts, with every
/// database locked), writes after in its incremental file.
///
/// Off: what is buffered is written and fsynced, the file closed; the files
/// stay. A scheduled enable is cancelled.
///
/// The error (turning on at once) says why, for the log.
pub fn set_appendonly<H: Host>(host: &Arc<H>, on: bool) -> Result<(), String> {
    if !on {
        let mut st = host.state().lock();
        if std::mem::take(&mut st.rewrite_scheduled) {
            st.generation += 1;
            tracing::info!("AOF turned off by CONFIG SET: the scheduled rewrite is cancelled");
        }
        if st.layout.take().is_some() {
            st.generation += 1;
            // Under the lock: a concurrent CONFIG SET appendonly yes must
            // not start its writer before this one is stopped.
            host.aof().stop();
            tracing::info!("AOF turned off by CONFIG SET");
        }
        return Ok(());
    }
    let generation = {
        let mut st = host.state().lock();
        if st.aof_on() {
            return Ok(());
        }
        st.generation += 1;
        st.rewrite_scheduled = true;
        if st.rewrite_in_progress {
            tracing::warn!(
                "AOF was enabled but an AOF rewrite is still running: the rewrite that turns it on is scheduled to start when it is over"
            );
            return Ok(());
        }
        st.generation
    };
    // Nothing runs: start now, and report a failure to the caller (Redis's
    // CONFIG SET fails when startAppendOnly cannot start its rewrite).
    start_scheduled(host).inspect_err(|_| {
        let mut st = host.state().lock();
        if st.generation == generation && st.layout.is_none() {
            st.rewrite_scheduled = false;
        }
    })
}

/// Starts the scheduled rewrite that turns the log on, unless it was
/// cancelled, has started already, or a rewrite still runs (whose end calls
/// this again, see `rewrite::spawn`; the once-a-second [`tick`] retries
/// too). On error the enable stays scheduled.
pub(crate) fn start_scheduled<H: Host>(host: &Arc<H>) -> Result<(), String> {
    {
        let st = host.state().lock();
        if !st.rewrite_scheduled || st.rewrite_in_progress {
            return Ok(());
        }
    }
    // No rewrite can start meanwhile (BGREWRITEAOF and the automatic one
    // need the log open, or come here), so the manifest read below is the
    // one the rewrite will supersede.
    let (dir, dirname, prefix) = configured_paths(host.as_ref());
    let aofdir = dir.join(&dirname);
    fs::create_dir_all(&aofdir)
        .map_err(|e| format!("Can't create the AOF directory {}: {e}", aofdir.display()))?;
    let mpath = aofdir.join(manifest_name(&prefix));
    // The files of an earlier log (to number the new ones after, and to
    // delete once superseded).
    let old = match fs::read_to_string(&mpath) {
        Ok(text) => Manifest::parse(&text).map_err(|e| format!("{e} in {}", mpath.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => return Err(format!("Can't read {}: {e}", mpath.display())),
    };
    let generation = {
        let mut st = host.state().lock();
        if !st.rewrite_scheduled || st.rewrite_in_progress {
            return Ok(());
        }
        st.rewrite_scheduled = false;
        st.layout = Some(Layout {
            dir: aofdir,
            prefix,
            manifest: old,
        });
        st.rewrite_in_progress = true;
        st.rewrite_started = Some(Instant::now());
        st.generation
    };
    tracing::info!("Turning the AOF on: writing the base in the background");
    rewrite::spawn(host, rewrite::Purpose::Enable, generation).inspect_err(|_| {
        let mut st = host.state().lock();
        if st.generation == generation {
            st.layout = None;
            st.rewrite_scheduled = true;
        }
    })
}

/// Background duties, run once a second (the server schedules them): the
/// scheduled rewrite that turns the log on (if the end of the rewrite it
/// waited for did not start it, or it failed), and the automatic rewrite;
/// both back off after repeated failures, as Redis's `serverCron`.
pub fn tick<H: Host>(host: &Arc<H>) {
    save::tick(host);
    let scheduled = {
        let mut st = host.state().lock();
        if st.rewrite_in_progress {
            return;
        }
        if st.rewrite_scheduled {
            Some(!st.rewrite_limited())
        } else {
            None
        }
    };
    match scheduled {
        Some(true) => {
            if let Err(e) = start_scheduled(host) {
                tracing::warn!("Can't start the AOF rewrite that turns the AOF on: {e}");
                let mut st = host.state().lock();
                st.last_rewrite_ok = false;
                st.consecutive_failures += 1;
            }
        }
        Some(false) => {}
        None => {
            if rewrite::auto_due(host.as_ref()) && !host.state().lock().rewrite_limited() {
                tracing::info!("Starting automatic rewriting of AOF on growth");
                let _ = rewrite::start(host);
            }
        }
    }
}

/// Closes the AOF at shutdown: last write and fsync, writer stopped.
pub fn close<H: Host>(host: &H) {
    host.aof().shutdown();
}
