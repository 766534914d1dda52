//! The append-only file writer: encoding, flushing, fsync policies and
//! group commit.
//!
//! # Appending
//!
//! [`Aof::append`] is called by the engine while it still holds the
//! lock of the database the effects belong to, so effects on one database
//! reach the file in the order they were made. It encodes them as RESP
//! arrays (with a `SELECT` first when the database differs from the last
//! one written, and `MULTI` / `EXEC` around a transaction's effects) into
//! an in-memory buffer under a short mutex, and returns the logical offset
//! (total bytes ever appended) at which they end. Nothing touches the disk
//! on the caller's thread while the command runs.
//!
//! # What a reply waits for
//!
//! A client whose command was logged does not see its reply before its
//! effects are in the file as far as `appendfsync` promises: handed to the
//! kernel with `write(2)` under `everysec` and `no`, written *and*
//! fsynced (`fdatasync`) under `always`. The command layer records the
//! offset in `Client::durable_at`, and the connection loop has the
//! session await [`Aof::wait_durable`] before it writes the outbox (the replies of the
//! batch stay queued meanwhile). This is Redis's promise: its `beforeSleep`
//! writes (and under `always` fsyncs) the AOF buffer before it sends any
//! reply of the event-loop iteration. So killing the process (SIGKILL, a
//! crash) loses no acknowledged write under any policy; only an OS crash
//! or power loss can lose the last second under `everysec` (and whatever
//! the kernel had not flushed under `no`).
//!
//! # Who writes: the worker about to park
//!
//! [`Aof::before_park`] is tokio's `on_thread_park` hook
//! (`server::build_runtime`): a worker thread calls it when it has no ready
//! task left, i.e. when every client served in this round has run its
//! commands and is waiting, as Redis's `beforeSleep`. It writes everything
//! appended so far with one `write(2)` and publishes the new offsets,
//! which wakes the waiting tasks on that same thread: one write for every
//! client served in the round, no thread hand-off. Under `always` it also
//! fsyncs, inline, as Redis's event loop does: that is the group commit,
//! one fsync for the whole round, and requests that arrive during the fsync
//! pile up for the next one. (The earlier design, a writer thread woken by
//! the first append, started each fsync with a few commands and cost
//! cross-thread wake-ups per fsync: 7 to 9 SETs per fsync where Redis
//! groups about 25; measurements in `docs/architecture.md`.)
//!
//! An fsync that took [`SLOW_FSYNC`] or more (a slow or busy disk) makes
//! the next rounds hand their fsync to the writer thread instead: the
//! worker only writes and goes on serving (pub/sub, reads, the next
//! requests) while the disk works, and the writer fsyncs again at once
//! with whatever was written meanwhile. The first fast fsync (measured by
//! whoever made it) brings the fsync back inline.
//!
//! A worker never waits for the file lock: if another thread is flushing,
//! or a rewrite switch comes next, it leaves the rest to that thread. On
//! the multi-thread runtime a worker's hook writes (and fsyncs) but has the
//! writer thread wake the waiting tasks (see [`Aof::before_park`] for why).
//!
//! # The writer thread
//!
//! `herald-aof` does what must not block a worker, or what no worker may
//! get to:
//!
//! - `everysec`: the fsync once a second, in the background (on a clone of
//!   the file handle, without the file lock: workers go on writing);
//! - `always` while fsyncs are slow (above);
//! - rewrite switches ([`Aof::switch`]), which fsync the old file;
//! - retries after an error, once a second;
//! - SAVE and shutdown: write and fsync now ([`Aof::fsync_now`],
//!   [`Aof::stop`]);
//! - a backstop: data that waited [`BACKSTOP`] while no flush happened at
//!   all (a runtime whose workers never run out of ready tasks, e.g. under a
//!   flood of pipelined reads, never parks), it writes itself, so that a
//!   reply waiting for it is never stuck.
//!
//! While appends keep coming it looks once per [`BACKSTOP`] (and finds the
//! workers have flushed); once nothing new was appended between two looks
//! it sleeps, and only then does an append wake it (a futex call).
//!
//! # Errors
//!
//! A failed write or fsync keeps the unwritten bytes, marks the status
//! failed (write commands then get `-MISCONF`, see [`Aof::write_error`]);
//! workers stop trying and the writer thread retries every second; the
//! first success clears it. Offsets never move past what was really
//! written (or fsynced), so replies waiting for them keep waiting
//! (unacknowledged) rather than being told a lie, under every policy
//! (Redis replies under `everysec` to writes it could not write yet; herald
//! keeps its promise and makes them wait). At shutdown, a writer
//! that still fails releases its waiters with "not durable", and their
//! connections close without a reply.
//!
//! Disk errors cannot be produced on demand without root, so the tests
//! inject them: with the `fault-injection` feature (on in test builds
//! only), `Aof::inject_fault` makes every write and fsync fail with a
//! chosen errno. The check compiles to nothing without the feature.
//!
//! # Turning the log off and on
//!
//! [`Aof::stop`] (CONFIG SET appendonly no, shutdown) closes the buffer
//! under its mutex: an append that comes later (a command that saw the log
//! on as it started, on another thread) is dropped, which is the same as
//! that command having run after the log was turned off; the writer then
//! writes and fsyncs what it has and exits. [`Aof::start`] opens it again.
//!
//! # Rewrite hand-over
//!
//! [`Aof::switch`] puts a marker in the buffer: bytes appended before it go
//! to the old incremental file, bytes after it to the new one (see
//! `rewrite`). The next append after a switch starts with `SELECT`. A
//! worker's flush stops at the marker; the writer thread fsyncs the old
//! file (the manifest may drop it only once it is complete on disk) and
//! goes on in the new one.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::config::AppendFsync;

/// A chunk of the buffer: bytes for the current file, or a file change.
enum Segment {
    Data(Vec<u8>),
    Switch(File),
}

/// How often the writer thread looks while appends keep coming; data that
/// waited that long with no flush at all happening meanwhile, it writes
/// itself (the backstop, see the module header).
pub const BACKSTOP: Duration = Duration::from_millis(2);

/// Under `always`, a worker fsyncs inline only while fsyncs take less than
/// this; after a slower one it hands the fsync to the writer thread (see
/// the module header).
const SLOW_FSYNC: Duration = Duration::from_millis(1);

/// How long the writer thread waits before trying again after an error.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What appenders share with the flushers (behind [`Aof::pending`]).
#[derive(Default)]
struct Pending {
    /// The log takes appends (a writer runs); false before [`Aof::start`]
    /// and after [`Aof::stop`].
    open: bool,
    /// The writer thread sleeps with nothing pending: the next append
    /// wakes it.
    writer_waiting: bool,
    /// The writer thread sleeps (for any reason): a worker that wrote
    /// under `always` wakes it to fsync.
    writer_sleeping: bool,
    /// Older bytes and file switches, in order.
    queue: VecDeque<Segment>,
    /// The newest bytes (appended to in place).
    tail: Vec<u8>,
    /// Logical offset after the last appended byte.
    appended: u64,
    /// The database the log is positioned on (None: next append SELECTs).
    selected: Option<usize>,
    /// Ask the writer to write and fsync now (SAVE, shutdown).
    fsync_requested: bool,
    /// Ask the writer to finish and exit.
    stop: bool,
    /// Ask the writer to wake the replies waiting for the offsets a worker
    /// published (see [`Aof::before_park`]).
    wake_waiters: bool,
}

/// The file side, shared by whoever flushes (behind [`Aof::io`]; lock
/// order: `io`, then `pending`).
#[derive(Default)]
struct Io {
    /// The current incremental file; None while the log is off.
    file: Option<Arc<File>>,
    /// Segments taken from `pending` but not yet (fully) written: after an
    /// error, or behind a switch a worker left to the writer thread.
    work: VecDeque<Segment>,
    /// A drained buffer kept for its capacity (swapped with the tail).
    spare: Vec<u8>,
    /// Logical offset up to which the files are written.
    written: u64,
    /// Logical offset up to which they are fsynced.
    synced: u64,
}

/// The append-only log: what the rest of the server talks to. It lives in
/// `Shared` whether or not `appendonly` is on ([`Aof::enabled`]).
pub struct Aof {
    enabled: AtomicBool,
    policy: AtomicU8,
    pending: Mutex<Pending>,
    /// Wakes the writer thread.
    wake: Condvar,
    io: Mutex<Io>,
    /// How far the log is: `Pending::appended`, and `Io::written` (every
    /// byte below is handed to the kernel) and `Io::synced` (written and
    /// fsynced) as last published, read without a lock.
    appended_at: AtomicU64,
    written_at: AtomicU64,
    synced_at: AtomicU64,
    /// The writer stopped: offsets not reached by now never will be.
    closed: AtomicBool,
    /// Wakes the replies waiting for an offset ([`Aof::wait_durable`]).
    moved: Notify,
    /// Flushes done (by anyone): the writer thread's backstop steps in only
    /// if this did not move while data waited.
    flushes: AtomicU64,
    /// The last fsync took [`SLOW_FSYNC`] or more.
    fsync_slow: AtomicBool,
    /// False after a failed write or fsync, until one succeeds.
    write_ok: AtomicBool,
    /// `strerror` text of the last write error (for the MISCONF reply).
    last_error: Mutex<String>,
    /// Bytes in the current incremental file.
    incr_size: AtomicU64,
    /// Bytes of the base and earlier incremental files still in the manifest.
    others_size: AtomicU64,
    /// File switches asked for ([`Aof::switch`]) and done by the writer:
    /// [`Aof::rewritten`] waits for the writer to pass the last one before
    /// recounting the sizes.
    switches: AtomicU64,
    switched: AtomicU64,
    /// Size of the base file (INFO `aof_base_size`).
    pub(crate) base_size: AtomicU64,
    /// Total size right after the last rewrite (auto-rewrite growth base).
    pub(crate) rewrite_base_size: AtomicU64,
    /// Unix seconds of the last successful fsync (LASTSAVE).
    pub(crate) last_fsync_unix: AtomicU64,
    /// The writer thread (joined at shutdown).
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Test hook: every write and fsync fails with this errno while set
    /// (`Aof::inject_fault`).
    #[cfg(any(test, feature = "fault-injection"))]
    fault: Mutex<Option<i32>>,
}

/// Who flushes (see [`Aof::flush`]).
#[derive(Clone, Copy)]
enum Flusher {
    /// The writer thread.
    Writer,
    /// A runtime worker about to park; `wake_here` as in
    /// [`Aof::before_park`].
    Worker { wake_here: bool },
}

/// What the writer thread does next.
enum Job {
    /// Wake the replies waiting for offsets a worker published.
    WakeWaiters,
    /// Write what is pending (and the switches); fsync if asked.
    Flush { fsync: bool, stop: bool },
    /// `everysec`: fsync what is written, in the background.
    Fsync,
}

fn policy_code(p: AppendFsync) -> u8 {
    match p {
        AppendFsync::Always => 0,
        AppendFsync::Everysec => 1,
        AppendFsync::No => 2,
    }
}

/// Appends the RESP encoding of one command to `out`.
pub fn encode_command<B: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[B]) {
    let mut n = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(n.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(n.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// `SELECT n` encoded.
fn encode_select(out: &mut Vec<u8>, db: usize) {
    let n = db.to_string();
    encode_command(out, &[b"SELECT".as_slice(), n.as_bytes()]);
}

/// Redis's `strerror` text for an I/O error (without Rust's " (os error N)").
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl Default for Aof {
    fn default() -> Self {
        Aof {
            enabled: AtomicBool::new(false),
            policy: AtomicU8::new(1),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            io: Mutex::new(Io::default()),
            appended_at: AtomicU64::new(0),
            written_at: AtomicU64::new(0),
            synced_at: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            moved: Notify::new(),
            flushes: AtomicU64::new(0),
            fsync_slow: AtomicBool::new(false),
            write_ok: AtomicBool::new(true),
            last_error: Mutex::new(String::new()),
            incr_size: AtomicU64::new(0),
            others_size: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            switched: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            rewrite_base_size: AtomicU64::new(0),
            last_fsync_unix: AtomicU64::new(crate::store::now_ms() / 1000),
            thread: Mutex::new(None),
            #[cfg(any(test, feature = "fault-injection"))]
            fault: Mutex::new(None),
        }
    }
}

impl Aof {
    /// True while the log is on: commands' effects are appended.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The fsync policy in force.
    pub fn policy(&self) -> AppendFsync {
        match self.policy.load(Ordering::Relaxed) {
            0 => AppendFsync::Always,
            1 => AppendFsync::Everysec,
            _ => AppendFsync::No,
        }
    }

    /// Applies a new `appendfsync` (start-up and CONFIG SET).
    pub fn set_policy(&self, p: AppendFsync) {
        self.policy.store(policy_code(p), Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// INFO `aof_last_write_status` / MISCONF: the error text of a failing
    /// log, None while writes succeed.
    pub fn write_error(&self) -> Option<String> {
        // As Redis's `writeCommandsDeniedByDiskError`: only while the log
        // is on (turning it off ends the refusals).
        if self.write_ok.load(Ordering::Relaxed) || !self.enabled() {
            None
        } else {
            Some(self.last_error.lock().clone())
        }
    }

    /// Total bytes of the files in the manifest (INFO `aof_current_size`).
    pub fn current_size(&self) -> u64 {
        self.incr_size.load(Ordering::Relaxed) + self.others_size.load(Ordering::Relaxed)
    }

    /// Starts the log on `incr` (the open current incremental file,
    /// positioned at its end) and its writer thread. `others` is the size of
    /// the other files of the manifest.
    pub(crate) fn start(self: &Arc<Self>, incr: File, others: u64, policy: AppendFsync) {
        let size = incr.metadata().map(|m| m.len()).unwrap_or(0);
        self.incr_size.store(size, Ordering::Relaxed);
        self.others_size.store(others, Ordering::Relaxed);
        self.rewrite_base_size
            .store(size + others, Ordering::Relaxed);
        self.set_policy(policy);
        {
            // A fresh start (also after CONFIG SET appendonly no / yes):
            // nothing left over from a previous writer.
            let mut io = self.io.lock();
            let mut p = self.pending.lock();
            p.queue.clear();
            p.tail.clear();
            p.selected = None;
            p.stop = false;
            p.fsync_requested = false;
            p.writer_waiting = false;
            p.open = true;
            self.switched
                .store(self.switches.load(Ordering::Relaxed), Ordering::Relaxed);
            let at = p.appended;
            io.file = Some(Arc::new(incr));
            io.work.clear();
            io.written = at;
            io.synced = at;
            self.appended_at.store(at, Ordering::Relaxed);
            self.written_at.store(at, Ordering::Relaxed);
            self.synced_at.store(at, Ordering::Relaxed);
            self.closed.store(false, Ordering::Release);
        }
        self.write_ok.store(true, Ordering::Relaxed);
        self.enabled.store(true, Ordering::Relaxed);
        let me = self.clone();
        let t = std::thread::Builder::new()
            .name("herald-aof".into())
            .spawn(move || me.writer());
        match t {
            Ok(t) => *self.thread.lock() = Some(t),
            Err(e) => {
                self.enabled.store(false, Ordering::Relaxed);
                self.pending.lock().open = false;
                self.io.lock().file = None;
                tracing::error!("cannot start the AOF writer thread: {e}");
            }
        }
    }

    /// Appends the effects of one command or transaction: `(database,
    /// command)` pairs, wrapped in MULTI / EXEC if `multi`. Returns the
    /// offset the reply must wait for (0: nothing was logged).
    pub fn append<'a, I>(&self, items: I, multi: bool) -> u64
    where
        I: IntoIterator<Item = (usize, &'a [Bytes])>,
    {
        let mut p = self.pending.lock();
        if !p.open {
            return 0;
        }
        let start = p.tail.len();
        let mut first = true;
        for (db, cmd) in items {
            if p.selected != Some(db) {
                encode_select(&mut p.tail, db);
                p.selected = Some(db);
            }
            if first && multi {
                encode_command(&mut p.tail, &[b"MULTI".as_slice()]);
            }
            first = false;
            encode_command(&mut p.tail, cmd);
        }
        if first {
            return 0;
        }
        if multi {
            encode_command(&mut p.tail, &[b"EXEC".as_slice()]);
        }
        p.appended += (p.tail.len() - start) as u64;
        let end = p.appended;
        self.appended_at.store(end, Ordering::Release);
        // Wake the writer only if it sleeps with nothing pending (see the
        // module header): the worker about to park writes these bytes.
        let wake = std::mem::take(&mut p.writer_waiting);
        drop(p);
        if wake {
            self.wake.notify_one();
        }
        end
    }

    /// Waits until the bytes below `offset` are as safe as `appendfsync`
    /// promises before a reply: written under `everysec` / `no`, fsynced
    /// under `always`. False if that will never happen (the writer stopped
    /// on an error): the caller must not acknowledge.
    pub async fn wait_durable(&self, offset: u64) -> bool {
        loop {
            // Registered before looking, so a publication in between is
            // not missed.
            let moved = self.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            let at = if self.policy() == AppendFsync::Always {
                &self.synced_at
            } else {
                &self.written_at
            };
            if at.load(Ordering::Acquire) >= offset {
                return true;
            }
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            moved.await;
        }
    }

    /// The runtime's `on_thread_park` hook (see the module header): a worker
    /// with nothing left to run writes what was appended (and fsyncs it
    /// under `always`), releasing the replies that wait for it.
    ///
    /// `wake_here`: the waiting tasks may be woken from this hook. True for
    /// the `current_thread` runtime, which calls it with its scheduler in
    /// place, so they go straight to its run queue. A multi-thread worker
    /// calls it without its scheduler core while still counted as active:
    /// tasks woken there land in the global queue, which it does not look
    /// at again before sleeping, and may sit there until some other event
    /// (measured: 1,500 SET/s instead of 30,000). There the writer thread
    /// does the waking, as any thread outside the runtime may.
    pub fn before_park(&self, wake_here: bool) {
        if self.appended_at.load(Ordering::Acquire) > self.written_at.load(Ordering::Relaxed)
            && self.write_ok.load(Ordering::Relaxed)
            && self.enabled()
        {
            self.flush(Flusher::Worker { wake_here }, false);
        }
    }

    /// Makes the writer write and fsync what it has, now (SAVE, BGSAVE).
    /// With `wait`, returns once done (false if it failed or the log is off).
    pub fn fsync_now(&self, wait: bool) -> bool {
        if !self.enabled() {
            return false;
        }
        let target = {
            let mut p = self.pending.lock();
            p.fsync_requested = true;
            p.appended
        };
        self.wake.notify_one();
        if !wait {
            return true;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.synced_at.load(Ordering::Acquire) >= target {
                return true;
            }
            if self.closed.load(Ordering::Acquire) || Instant::now() > deadline {
                return false;
            }
            // The writer thread publishes when done; poll without a
            // runtime (this runs on a worker thread).
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Hands the log over to `new_incr` at this point (see the module
    /// header). Called by the rewrite with every database locked.
    /// False (and nothing done) if the log was stopped meanwhile.
    pub(crate) fn switch(&self, new_incr: File) -> bool {
        let mut p = self.pending.lock();
        if !p.open {
            return false;
        }
        let tail = std::mem::take(&mut p.tail);
        if !tail.is_empty() {
            p.queue.push_back(Segment::Data(tail));
        }
        p.queue.push_back(Segment::Switch(new_incr));
        p.selected = None;
        self.switches.fetch_add(1, Ordering::Relaxed);
        drop(p);
        self.wake.notify_one();
        true
    }

    /// The rewrite finished: the manifest now holds the new base (of
    /// `base` bytes) and the current incremental file only.
    pub(crate) fn rewritten(&self, base: u64) {
        // The old incremental file's bytes count until the writer has left
        // it (normally long done; bounded in case the disk fails).
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.switched.load(Ordering::Acquire) < self.switches.load(Ordering::Relaxed)
            && self.enabled()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.others_size.store(base, Ordering::Relaxed);
        self.base_size.store(base, Ordering::Relaxed);
        self.rewrite_base_size.store(
            base + self.incr_size.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    /// Stops the log at shutdown: last write and fsync, writer stopped.
    pub fn shutdown(&self) {
        if self.enabled() {
            tracing::info!("Calling fsync() on the AOF file.");
        }
        self.stop();
    }

    /// Stops the log (shutdown, CONFIG SET appendonly no): later appends
    /// are dropped (see the module header), the writer writes and fsyncs
    /// what it has, then exits. Returns once it has.
    pub fn stop(&self) {
        if !self.enabled.swap(false, Ordering::Relaxed) {
            return;
        }
        {
            let mut p = self.pending.lock();
            p.open = false;
            p.stop = true;
            p.fsync_requested = true;
        }
        self.wake.notify_one();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// Test hook (feature `fault-injection`): while `Some(errno)`, every
    /// write and fsync of the log fails with that error, as a full or
    /// failing disk would make them; `None` lets them succeed again. It
    /// exists because a real disk error cannot be produced without root.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn inject_fault(&self, errno: Option<i32>) {
        *self.fault.lock() = errno;
        self.wake.notify_one();
    }

    /// The injected error, if any (always None without the test hook).
    #[inline]
    fn injected(&self) -> Option<io::Error> {
        #[cfg(any(test, feature = "fault-injection"))]
        if let Some(errno) = *self.fault.lock() {
            return Some(io::Error::from_raw_os_error(errno));
        }
        None
    }

    fn fail(&self, e: &io::Error, what: &str) {
        let text = strerror(e);
        if self.write_ok.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "error {what} the AOF: {text}; write commands are refused until it works again"
            );
        }
        *self.last_error.lock() = text;
        // The writer thread retries (it may be asleep with nothing pending).
        self.wake.notify_one();
    }

    fn recovered(&self) {
        if !self.write_ok.swap(true, Ordering::Relaxed) {
            tracing::warn!("AOF write error looks solved, herald can write again");
        }
    }

    /// Makes new offsets visible and wakes the replies waiting for them
    /// (`wake_here`), or has the writer thread wake them (see
    /// [`Aof::before_park`]).
    fn publish(&self, written: u64, synced: u64, wake_here: bool) {
        let w = self.written_at.fetch_max(written, Ordering::Release);
        let s = self.synced_at.fetch_max(synced, Ordering::Release);
        if w < written || s < synced {
            if wake_here {
                self.moved.notify_waiters();
            } else {
                self.pending.lock().wake_waiters = true;
                self.wake.notify_one();
            }
        }
    }

    /// Writes everything appended so far to the current file and, under
    /// `always` or with `fsync`, fsyncs it; then publishes the offsets.
    /// `by_writer`: the writer thread, which waits for the file lock and
    /// carries out switches; a worker ([`Aof::before_park`]) never waits:
    /// if another thread is flushing, or a switch comes next, it leaves the
    /// rest to that thread or to the writer. False if a write or fsync
    /// failed.
    fn flush(&self, by: Flusher, fsync: bool) -> bool {
        let (by_writer, wake_here) = match by {
            Flusher::Writer => (true, true),
            Flusher::Worker { wake_here } => (false, wake_here),
        };
        let mut guard = if by_writer {
            self.io.lock()
        } else {
            match self.io.try_lock() {
                Some(g) => g,
                None => return true,
            }
        };
        let io = &mut *guard;
        let Some(mut file) = io.file.clone() else {
            return true;
        };
        {
            let mut p = self.pending.lock();
            io.work.extend(p.queue.drain(..));
            if !p.tail.is_empty() {
                // Swap in the drained buffer kept from the last flush, so
                // that appends reuse its capacity.
                let mut buf = std::mem::take(&mut io.spare);
                std::mem::swap(&mut buf, &mut p.tail);
                io.work.push_back(Segment::Data(buf));
            }
        }
        let mut ok = true;
        while let Some(seg) = io.work.front_mut() {
            if let Some(e) = self.injected() {
                self.fail(&e, "writing");
                ok = false;
                break;
            }
            match seg {
                Segment::Data(buf) => match write_some(&file, buf) {
                    Ok(()) => {
                        io.written += buf.len() as u64;
                        self.incr_size
                            .fetch_add(buf.len() as u64, Ordering::Relaxed);
                        if let Some(Segment::Data(mut buf)) = io.work.pop_front() {
                            if io.spare.capacity() == 0 {
                                buf.clear();
                                io.spare = buf;
                            }
                        }
                    }
                    Err((n, e)) => {
                        io.written += n as u64;
                        self.incr_size.fetch_add(n as u64, Ordering::Relaxed);
                        buf.drain(..n);
                        self.fail(&e, "writing");
                        ok = false;
                        break;
                    }
                },
                Segment::Switch(_) => {
                    if !by_writer {
                        // Its fsync of the old file is the writer's job.
                        break;
                    }
                    // The old file must be complete on disk before the
                    // manifest can drop it.
                    if let Err(e) = file.sync_data() {
                        self.fail(&e, "fsyncing");
                        ok = false;
                        break;
                    }
                    io.synced = io.written;
                    if let Some(Segment::Switch(new)) = io.work.pop_front() {
                        file = Arc::new(new);
                        io.file = Some(file.clone());
                        self.others_size.fetch_add(
                            self.incr_size.swap(0, Ordering::Relaxed),
                            Ordering::Relaxed,
                        );
                        self.switched.fetch_add(1, Ordering::Release);
                    }
                }
            }
        }
        let always = self.policy() == AppendFsync::Always;
        let inline = by_writer || !self.fsync_slow.load(Ordering::Relaxed);
        let want_sync = fsync || (always && inline);
        if ok && want_sync {
            if io.synced < io.written {
                let r = self.timed_fsync(&file);
                match r {
                    Ok(()) => io.synced = io.written,
                    Err(e) => {
                        self.fail(&e, "fsyncing");
                        ok = false;
                    }
                }
            }
            if ok {
                self.last_fsync_unix
                    .store(crate::store::now_ms() / 1000, Ordering::Relaxed);
            }
        }
        if ok {
            self.recovered();
        }
        let unsynced = io.synced < io.written;
        self.publish(io.written, io.synced, wake_here);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        drop(guard);
        if ok && always && unsynced && !by_writer {
            let mut p = self.pending.lock();
            if std::mem::take(&mut p.writer_sleeping) {
                drop(p);
                self.wake.notify_one();
            }
        }
        ok
    }

    /// `fdatasync`, noting whether it was slow (see [`SLOW_FSYNC`]).
    fn timed_fsync(&self, file: &File) -> io::Result<()> {
        if let Some(e) = self.injected() {
            return Err(e);
        }
        let t = Instant::now();
        let r = file.sync_data();
        self.fsync_slow
            .store(t.elapsed() >= SLOW_FSYNC, Ordering::Relaxed);
        r
    }

    /// Fsyncs what is written without holding the file lock (workers go on
    /// writing meanwhile): `everysec` once a second, and `always` when
    /// fsyncs are slow. False if it failed.
    fn background_fsync(&self) -> bool {
        let (file, target) = {
            let io = self.io.lock();
            match &io.file {
                Some(f) if io.synced < io.written => (f.clone(), io.written),
                _ => return true,
            }
        };
        if let Err(e) = self.timed_fsync(&file) {
            self.fail(&e, "fsyncing");
            return false;
        }
        // Bytes below `target` are in this file, or in an older one that a
        // switch fsynced before leaving it.
        let (written, synced) = {
            let mut io = self.io.lock();
            io.synced = io.synced.max(target);
            (io.written, io.synced)
        };
        self.last_fsync_unix
            .store(crate::store::now_ms() / 1000, Ordering::Relaxed);
        self.recovered();
        self.publish(written, synced, true);
        true
    }

    /// The writer thread's loop (see the module header).
    fn writer(self: Arc<Self>) {
        let mut last_fsync = Instant::now();
        let mut retry_at: Option<Instant> = None;
        // The backstop: the appended offset and the flush count when the
        // writer last saw data waiting; the appended offset at its last look.
        let mut mark: Option<(u64, u64)> = None;
        let mut seen: u64 = 0;
        loop {
            let job = {
                let mut p = self.pending.lock();
                loop {
                    let now = Instant::now();
                    if std::mem::take(&mut p.wake_waiters) {
                        break Job::WakeWaiters;
                    }
                    if p.stop || p.fsync_requested {
                        p.fsync_requested = false;
                        break Job::Flush {
                            fsync: true,
                            stop: p.stop,
                        };
                    }
                    if !self.write_ok.load(Ordering::Relaxed) && retry_at.is_none() {
                        // A flush failed (perhaps a worker's): retry later.
                        retry_at = Some(now + RETRY_AFTER);
                    }
                    let written = self.written_at.load(Ordering::Acquire);
                    let synced = self.synced_at.load(Ordering::Acquire);
                    let everysec = self.policy() == AppendFsync::Everysec;
                    let mut timeout = Duration::from_secs(1);
                    if let Some(t) = retry_at {
                        // Nothing is tried before then (it would fail too),
                        // and new data need not wake us.
                        if now >= t {
                            break Job::Flush {
                                fsync: everysec && synced < written,
                                stop: false,
                            };
                        }
                        timeout = t - now;
                    } else {
                        if self.switched.load(Ordering::Acquire)
                            < self.switches.load(Ordering::Relaxed)
                        {
                            break Job::Flush {
                                fsync: false,
                                stop: false,
                            };
                        }
                        let flushes = self.flushes.load(Ordering::Relaxed);
                        if let Some((m, f)) = mark {
                            if written < m && flushes == f {
                                break Job::Flush {
                                    fsync: false,
                                    stop: false,
                                };
                            }
                        }
                        if self.policy() == AppendFsync::Always && synced < written {
                            // Written by a worker that left the (slow)
                            // fsync to us.
                            break Job::Fsync;
                        }
                        if everysec && synced < written {
                            let due = last_fsync + Duration::from_secs(1);
                            if now >= due {
                                break Job::Fsync;
                            }
                            timeout = timeout.min(due - now);
                        }
                        if p.appended > written {
                            // Waiting data: look again in a while.
                            mark = Some((p.appended, flushes));
                            timeout = timeout.min(BACKSTOP);
                        } else if p.appended != seen {
                            // Busy, all written: look again, but appends
                            // need not wake us meanwhile.
                            mark = None;
                            timeout = timeout.min(BACKSTOP);
                        } else {
                            // Idle: the next append wakes us.
                            mark = None;
                            p.writer_waiting = true;
                        }
                        seen = p.appended;
                    }
                    p.writer_sleeping = true;
                    self.wake
                        .wait_for(&mut p, timeout.max(Duration::from_micros(100)));
                    p.writer_waiting = false;
                    p.writer_sleeping = false;
                }
            };
            if let Job::WakeWaiters = job {
                self.moved.notify_waiters();
                continue;
            }
            mark = None;
            let ok = match job {
                Job::WakeWaiters => true,
                Job::Flush { fsync, stop } => {
                    let ok = self.flush(Flusher::Writer, fsync);
                    if stop {
                        self.io.lock().file = None;
                        self.closed.store(true, Ordering::Release);
                        self.moved.notify_waiters();
                        return;
                    }
                    if ok && fsync {
                        last_fsync = Instant::now();
                    }
                    ok
                }
                Job::Fsync => {
                    let ok = self.background_fsync();
                    if ok {
                        last_fsync = Instant::now();
                    }
                    ok
                }
            };
            retry_at = if ok {
                None
            } else {
                Some(Instant::now() + RETRY_AFTER)
            };
        }
    }
}

/// Writes all of `buf`, or returns how much was written before the error.
fn write_some(mut file: &File, buf: &[u8]) -> Result<(), (usize, io::Error)> {
    let mut done = 0;
    while done < buf.len() {
        match file.write(&buf[done..]) {
            Ok(0) => return Err((done, io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_redis() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET".as_slice(), b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn append_selects_and_wraps() {
        let aof = Aof::default();
        let set: Vec<Bytes> = vec!["SET".into(), "a".into(), "1".into()];
        // Closed (no writer): appends are dropped.
        assert_eq!(aof.append([(2, &set[..])], false), 0);
        assert!(aof.pending.lock().tail.is_empty());
        aof.pending.lock().open = true;
        aof.append([(2, &set[..]), (2, &set[..])], true);
        let p = aof.pending.lock();
        let text = String::from_utf8_lossy(&p.tail).replace("\r\n", " ");
        assert_eq!(
            text,
            "*2 $6 SELECT $1 2 *1 $5 MULTI *3 $3 SET $1 a $1 1 *3 $3 SET $1 a $1 1 *1 $4 EXEC "
        );
        assert_eq!(p.appended, p.tail.len() as u64);
    }

    /// A log started on a fresh file in the temporary directory.
    fn started(name: &str, policy: AppendFsync) -> (Arc<Aof>, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "herald-aof-unit-{name}-{}-{:?}.aof",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let aof = Arc::new(Aof::default());
        aof.start(file, 0, policy);
        (aof, path)
    }

    fn set_cmd() -> Vec<Bytes> {
        vec!["SET".into(), "a".into(), "1".into()]
    }

    /// Runs `f` on a current_thread runtime, failing after 10 s.
    fn within_10s<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), f)
                .await
                .expect("timed out")
        })
    }

    #[test]
    fn a_parking_worker_writes_and_releases() {
        let (aof, path) = started("park", AppendFsync::Everysec);
        let set = set_cmd();
        let off = aof.append([(0, &set[..])], false);
        assert!(off > 0);
        aof.before_park(true);
        assert!(aof.written_at.load(Ordering::Acquire) >= off);
        assert!(within_10s(aof.wait_durable(off)));
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            text.replace("\r\n", " "),
            "*2 $6 SELECT $1 0 *3 $3 SET $1 a $1 1 "
        );
        aof.stop();
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn slow_fsyncs_are_left_to_the_writer() {
        let (aof, path) = started("slow", AppendFsync::Always);
        aof.fsync_slow.store(true, Ordering::Relaxed);
        let set = set_cmd();
        let off = aof.append([(0, &set[..])], false);
        aof.before_park(true);
        // Written by the worker; fsynced by the writer thread it woke.
        assert!(aof.written_at.load(Ordering::Acquire) >= off);
        assert!(within_10s(aof.wait_durable(off)));
        assert!(aof.synced_at.load(Ordering::Acquire) >= off);
        aof.stop();
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn the_backstop_writes_when_no_worker_parks() {
        for policy in [AppendFsync::Everysec, AppendFsync::Always] {
            let (aof, path) = started("backstop", policy);
            let set = set_cmd();
            let off = aof.append([(0, &set[..])], false);
            assert!(within_10s(aof.wait_durable(off)));
            aof.stop();
            let _ = std::fs::remove_file(path);
        }
    }

    #[test]
    fn a_worker_that_may_not_wake_has_the_writer_wake() {
        let (aof, path) = started("remote", AppendFsync::Everysec);
        let set = set_cmd();
        let off = aof.append([(0, &set[..])], false);
        let waiter = {
            let aof = aof.clone();
            std::thread::spawn(move || within_10s(aof.wait_durable(off)))
        };
        aof.before_park(false);
        assert!(waiter.join().unwrap());
        aof.stop();
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn stopping_releases_waiters() {
        let (aof, path) = started("stop", AppendFsync::Always);
        let set = set_cmd();
        let off = aof.append([(0, &set[..])], false);
        aof.stop();
        // The final write and fsync covered it.
        assert!(within_10s(aof.wait_durable(off)));
        // Beyond what was ever appended: never, and said so at once.
        assert!(!within_10s(aof.wait_durable(off + 1)));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn strerror_drops_os_error_suffix() {
        let e = io::Error::from_raw_os_error(28);
        assert_eq!(strerror(&e), "No space left on device");
    }
}
