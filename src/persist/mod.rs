//! Persistence: Redis 7.0's multi-part append-only file (issue 7).
//!
//! # Files
//!
//! `<dir>/<appenddirname>/` (default `appendonlydir`) holds, exactly as
//! redis-server 7.0 with `aof-use-rdb-preamble no` writes them:
//!
//! - `<appendfilename>.manifest` ([`manifest`]): which files make up the
//!   data, e.g. `file appendonly.aof.1.base.aof seq 1 type b` then
//!   `file appendonly.aof.1.incr.aof seq 1 type i`;
//! - a base file: the data set as commands (written by a rewrite, [`rewrite`]);
//! - incremental files: the effects of every write since, as RESP commands,
//!   with `SELECT` when the database changes ([`aof`]).
//!
//! redis-server 7 loads a directory herald wrote and herald loads one
//! redis-server wrote (without RDB preamble): `tests/persistence.rs`.
//!
//! # What is logged (propagation)
//!
//! The command layer (`command::run_spec`) runs each data command with its
//! database locked; every change bumps `Db::dirty`. A command that changed
//! something is logged *as given* unless its handler logged a deterministic
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
//! The effects are buffered in `Db::prop` and handed
//! to [`aof::Aof::append`] when the command ends, still under the database
//! lock, so the file has each database's effects in execution order. EXEC
//! collects the effects of its queue and appends them once, as
//! `MULTI ... EXEC`. Rejected and queued commands change nothing and are
//! not logged. With `appendonly no`, `Db::propagating` is false and nothing
//! is buffered.
//!
//! # Durability
//!
//! See [`aof`]: a writer thread, `always` with group commit (replies wait
//! for the fsync covering them: `Client::durable_at` and
//! `Connection::serve`), `everysec`, `no`.
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
pub mod load;
pub mod manifest;
pub mod rewrite;

use std::fs::{self, OpenOptions};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use manifest::{base_name, incr_name, manifest_name, Entry, Kind, Manifest};

use crate::state::Shared;

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

/// Persistence state shown by INFO and used by rewrites (`Shared::persist`).
#[derive(Debug)]
pub struct State {
    /// None while the AOF is off.
    pub layout: Option<Layout>,
    /// A rewrite is running.
    pub rewrite_in_progress: bool,
    /// When the running rewrite started.
    pub rewrite_started: Option<Instant>,
    /// Outcome of the last rewrite (INFO `aof_last_bgrewrite_status`).
    pub last_rewrite_ok: bool,
    /// Duration of the last rewrite, -1 if none (INFO).
    pub last_rewrite_secs: i64,
    /// Rewrites completed since start-up (INFO `aof_rewrites`).
    pub rewrites: u64,
    /// Bumped each time CONFIG SET turns the log off or on, so that a
    /// rewrite started for an earlier log gives up instead of naming its
    /// files in a manifest that has moved on.
    pub generation: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            layout: None,
            rewrite_in_progress: false,
            rewrite_started: None,
            last_rewrite_ok: true,
            last_rewrite_secs: -1,
            rewrites: 0,
            generation: 0,
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
}

/// `dir`, `appenddirname` and `appendfilename` from the configuration.
fn configured_paths(shared: &Shared) -> (PathBuf, String, String) {
    let c = shared.config.read();
    (
        c.dir.clone(),
        c.value("appenddirname")
            .unwrap_or_else(|| "appendonlydir".into()),
        c.value("appendfilename")
            .unwrap_or_else(|| "appendonly.aof".into()),
    )
}

/// Opens (creating or loading) the AOF if `appendonly` is on, before the
/// server accepts clients. The error is the complete start-up message.
pub fn open(shared: &Arc<Shared>) -> Result<(), String> {
    let (dir, dirname, prefix) = configured_paths(shared);
    let (on, policy, load_truncated) = {
        let c = shared.config.read();
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
    let loaded = load::replay(shared, &aofdir, &m, load_truncated)?;
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
    shared
        .aof
        .base_size
        .store(base_size, std::sync::atomic::Ordering::Relaxed);
    shared.persist.lock().layout = Some(Layout {
        dir: aofdir,
        prefix,
        manifest: m,
    });
    shared.aof.start(incr, others, policy);
    Ok(())
}

/// Turns the log on or off at run time (CONFIG SET appendonly), as Redis's
/// `startAppendOnly` / `stopAppendOnly`.
///
/// On: the log starts on a new incremental file at once and a rewrite
/// writes the data set as its base in the background (INFO shows
/// `aof_rewrite_in_progress:1` meanwhile); files of an earlier log in the
/// directory are deleted once the manifest names the new ones. Off: what
/// is buffered is written and fsynced, the file closed; the files stay.
/// The error (turning on) says why, for the log.
pub fn set_appendonly(shared: &Arc<Shared>, on: bool) -> Result<(), String> {
    if !on {
        let mut st = shared.persist.lock();
        if st.layout.take().is_some() {
            st.generation += 1;
            // Under the lock: a concurrent CONFIG SET appendonly yes must
            // not start its writer before this one is stopped.
            shared.aof.stop();
            tracing::info!("AOF turned off by CONFIG SET");
        }
        return Ok(());
    }
    // A rewrite of a log turned off meanwhile is giving up: let it finish.
    // This blocks the calling worker (the handler is synchronous), so the
    // wait is short; past it the command fails and can be retried.
    // TODO(issue 7): schedule the enable instead, as Redis's
    // startAppendOnly does (`aof_rewrite_scheduled`), and never wait here.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        {
            let st = shared.persist.lock();
            if st.layout.is_some() {
                return Ok(());
            }
            if !st.rewrite_in_progress {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err("a previous AOF rewrite is still running".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (dir, dirname, prefix) = configured_paths(shared);
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
        let mut st = shared.persist.lock();
        if st.layout.is_some() || st.rewrite_in_progress {
            return Err("the AOF is being turned on by another client".into());
        }
        st.generation += 1;
        st.layout = Some(Layout {
            dir: aofdir,
            prefix,
            manifest: old,
        });
        st.rewrite_in_progress = true;
        st.rewrite_started = Some(Instant::now());
        st.generation
    };
    tracing::info!("AOF turned on by CONFIG SET: writing the base in the background");
    rewrite::spawn(shared, rewrite::Purpose::Enable, generation).inspect_err(|_| {
        shared.persist.lock().layout = None;
    })
}

/// Background duties, once a second: the automatic rewrite.
pub async fn cron(shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(sh) = shared.upgrade() else { return };
        if sh.is_shutting_down() {
            return;
        }
        if !sh.persist.lock().rewrite_in_progress && rewrite::auto_due(&sh) {
            tracing::info!("Starting automatic rewriting of AOF on growth");
            let _ = rewrite::start(&sh);
        }
    }
}

/// Closes the AOF at shutdown: last write and fsync, writer stopped.
pub fn close(shared: &Shared) {
    shared.aof.shutdown();
}
