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
//! are logged as `DEL`. The effects are buffered in `Db::prop` and handed
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
}

impl Default for State {
    fn default() -> Self {
        State {
            layout: None,
            rewrite_in_progress: false,
            rewrite_started: None,
            last_rewrite_ok: true,
            last_rewrite_secs: -1,
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

/// Opens (creating or loading) the AOF if `appendonly` is on, before the
/// server accepts clients. The error is the complete start-up message.
pub fn open(shared: &Arc<Shared>) -> Result<(), String> {
    let (on, dir, dirname, prefix, policy, load_truncated) = {
        let c = shared.config.read();
        (
            c.appendonly,
            c.dir.clone(),
            c.value("appenddirname")
                .unwrap_or_else(|| "appendonlydir".into()),
            c.value("appendfilename")
                .unwrap_or_else(|| "appendonly.aof".into()),
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
