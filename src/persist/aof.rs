//! The append-only file writer: encoding, the writer thread, fsync
//! policies and group commit.
//!
//! # Appending
//!
//! [`Aof::append`] is called by the command layer while it still holds the
//! lock of the database the effects belong to, so effects on one database
//! reach the file in the order they were made. It encodes them as RESP
//! arrays (with a `SELECT` first when the database differs from the last
//! one written, and `MULTI` / `EXEC` around a transaction's effects) into
//! an in-memory buffer under a short mutex, and returns the logical offset
//! (total bytes ever appended) at which they end. Nothing touches the disk
//! on the caller's thread.
//!
//! # The writer thread
//!
//! `herald-aof` takes the whole buffer at once, writes it to the current
//! incremental file and, depending on `appendfsync`:
//!
//! - `always`: fsyncs (`fdatasync`) and then publishes the new durable
//!   offset. A client whose command was logged may not see its reply before
//!   the offset its effects end at is durable: [`crate::command`] records
//!   that offset in `Client::durable_at`, and the connection task awaits
//!   [`Aof::wait_durable`] before writing its outbox (the replies of the
//!   batch stay queued meanwhile). While one fsync runs, every other client's
//!   appends pile up in the buffer and the next round writes and fsyncs them
//!   all together: that is the group commit, one fsync for as many clients
//!   as arrived during the previous one.
//! - `everysec`: writes as soon as there is data, fsyncs at most once a
//!   second. Replies do not wait (a crash may lose about a second).
//! - `no`: writes, never fsyncs (the OS flushes when it likes).
//!
//! Wake-ups are batched: an append wakes the writer (a futex call) only
//! if the writer is asleep waiting for data, never while it is busy, so
//! under load one round takes everything that arrived meanwhile. With
//! `everysec` and `no`, after each round the writer also lets appends
//! gather for up to [`BATCH_WINDOW`] before the next `write`, so a busy
//! server makes at most about a thousand `write` calls a second instead
//! of one per command (nobody waits for those writes; `always` has no
//! window, its group commit is the fsync itself).
//!
//! # Errors
//!
//! A failed write or fsync keeps the unwritten bytes, marks the status
//! failed (write commands then get `-MISCONF`, see [`Aof::write_error`]) and
//! retries every second; the first success clears it. Durable offsets never
//! move past what was really fsynced, so clients of `always` stay waiting
//! (unacknowledged) rather than being told a lie. At shutdown, a writer that
//! still fails releases its waiters with "not durable", and their
//! connections close without a reply.
//!
//! Disk errors cannot be produced on demand without root, so the tests
//! inject them: with the `fault-injection` feature (on in test builds
//! only), `Aof::inject_fault` makes every write and fsync fail with a
//! chosen errno. The check sits in the writer thread, never on a client's
//! path, and compiles to nothing without the feature.
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
//! `rewrite`). The next append after a switch starts with `SELECT`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::config::AppendFsync;

/// How far the log is on disk, published by the writer thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durable {
    /// Every byte below this logical offset is written and fsynced.
    pub offset: u64,
    /// The writer stopped: offsets not reached by now never will be.
    pub closed: bool,
}

/// A chunk of the buffer: bytes for the current file, or a file change.
enum Segment {
    Data(Vec<u8>),
    Switch(File),
}

/// How long the writer lets appends gather between two writes under
/// `everysec` / `no` (see the module header).
pub const BATCH_WINDOW: Duration = Duration::from_millis(1);

/// What appenders share with the writer thread (behind [`Aof::pending`]).
#[derive(Default)]
struct Pending {
    /// The log takes appends (a writer runs); false before [`Aof::start`]
    /// and after [`Aof::stop`].
    open: bool,
    /// The writer sleeps until data arrives: the next append wakes it.
    writer_waiting: bool,
    /// Older bytes and file switches, in order.
    queue: VecDeque<Segment>,
    /// The newest bytes (appended to in place).
    tail: Vec<u8>,
    /// Logical offset after the last appended byte.
    appended: u64,
    /// The database the log is positioned on (None: next append SELECTs).
    selected: Option<usize>,
    /// Ask the writer to fsync now (SAVE, shutdown, switch).
    fsync_requested: bool,
    /// Ask the writer to finish and exit.
    stop: bool,
}

/// The append-only log: what the rest of the server talks to. It lives in
/// `Shared` whether or not `appendonly` is on ([`Aof::enabled`]).
pub struct Aof {
    enabled: AtomicBool,
    policy: AtomicU8,
    pending: Mutex<Pending>,
    wake: Condvar,
    durable: watch::Sender<Durable>,
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
            durable: watch::channel(Durable::default()).0,
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

    /// Starts the writer thread on `incr` (the open current incremental
    /// file, positioned at its end). `others` is the size of the other files
    /// of the manifest.
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
            self.durable.send_modify(|d| {
                d.offset = at;
                d.closed = false;
            });
        }
        self.write_ok.store(true, Ordering::Relaxed);
        self.enabled.store(true, Ordering::Relaxed);
        let me = self.clone();
        let t = std::thread::Builder::new()
            .name("herald-aof".into())
            .spawn(move || me.writer(incr));
        match t {
            Ok(t) => *self.thread.lock() = Some(t),
            Err(e) => {
                self.enabled.store(false, Ordering::Relaxed);
                tracing::error!("cannot start the AOF writer thread: {e}");
            }
        }
    }

    /// Appends the effects of one command or transaction: `(database,
    /// command)` pairs, wrapped in MULTI / EXEC if `multi`. Returns the
    /// offset the reply must wait for (0 unless `appendfsync always`).
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
        // Wake the writer only if it sleeps waiting for data (see the
        // module header): a busy writer takes these bytes next round.
        let wake = std::mem::take(&mut p.writer_waiting);
        drop(p);
        if wake {
            self.wake.notify_one();
        }
        if self.policy() == AppendFsync::Always {
            end
        } else {
            0
        }
    }

    /// Waits until every byte below `offset` is fsynced. False if that will
    /// never happen (the writer stopped on an error): the caller must not
    /// acknowledge.
    pub async fn wait_durable(&self, offset: u64) -> bool {
        let mut rx = self.durable.subscribe();
        let r = match rx.wait_for(|d| d.offset >= offset || d.closed).await {
            Ok(d) => d.offset >= offset,
            Err(_) => false,
        };
        r
    }

    /// Makes the writer fsync what it has, now (SAVE, BGSAVE). With `wait`,
    /// returns once done (false if it failed or the log is off).
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
        let mut rx = self.durable.subscribe();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = *rx.borrow_and_update();
            if d.offset >= target {
                return true;
            }
            if d.closed || Instant::now() > deadline {
                return false;
            }
            // The writer thread publishes after each round; poll the
            // channel without a runtime (this runs on a worker thread).
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
    }

    fn recovered(&self) {
        if !self.write_ok.swap(true, Ordering::Relaxed) {
            tracing::warn!("AOF write error looks solved, herald can write again");
        }
    }

    /// The writer thread's loop (see the module header).
    fn writer(self: Arc<Self>, mut file: File) {
        let mut last_fsync = Instant::now();
        let mut written: u64 = self.durable.borrow().offset;
        let mut synced: u64 = written;
        // Segments taken from `pending` but not yet (fully) written.
        let mut work: VecDeque<Segment> = VecDeque::new();
        let mut retry_at: Option<Instant> = None;
        loop {
            let (stop, fsync_req) = {
                let mut p = self.pending.lock();
                loop {
                    let idle = work.is_empty() && p.queue.is_empty() && p.tail.is_empty();
                    // After an error, nothing but stop / SAVE tries again
                    // before the retry time.
                    let may_try = retry_at.is_none_or(|t| Instant::now() >= t);
                    let everysec_due = self.policy() == AppendFsync::Everysec
                        && synced < written
                        && last_fsync.elapsed() >= Duration::from_secs(1);
                    if p.stop || p.fsync_requested || (everysec_due && may_try) {
                        break;
                    }
                    if !idle && may_try {
                        break;
                    }
                    let wait = match retry_at {
                        Some(t) => t.saturating_duration_since(Instant::now()),
                        None => Duration::from_millis(if synced < written { 100 } else { 1000 }),
                    };
                    // While retrying after an error, new data need not wake
                    // us; otherwise the next append does.
                    p.writer_waiting = retry_at.is_none();
                    self.wake
                        .wait_for(&mut p, wait.max(Duration::from_millis(1)));
                    p.writer_waiting = false;
                }
                work.extend(p.queue.drain(..));
                if !p.tail.is_empty() {
                    work.push_back(Segment::Data(std::mem::take(&mut p.tail)));
                }
                let r = (p.stop, p.fsync_requested);
                p.fsync_requested = false;
                r
            };
            retry_at = None;
            let mut failed = false;
            while let Some(seg) = work.front_mut() {
                if let Some(e) = self.injected() {
                    self.fail(&e, "writing");
                    failed = true;
                    break;
                }
                match seg {
                    Segment::Data(buf) => match write_some(&mut file, buf) {
                        Ok(()) => {
                            written += buf.len() as u64;
                            self.incr_size
                                .fetch_add(buf.len() as u64, Ordering::Relaxed);
                            work.pop_front();
                        }
                        Err((n, e)) => {
                            written += n as u64;
                            self.incr_size.fetch_add(n as u64, Ordering::Relaxed);
                            buf.drain(..n);
                            self.fail(&e, "writing");
                            failed = true;
                            break;
                        }
                    },
                    Segment::Switch(_) => {
                        // The old file must be complete on disk before the
                        // manifest can drop it.
                        if let Err(e) = file.sync_data() {
                            self.fail(&e, "fsyncing");
                            failed = true;
                            break;
                        }
                        if let Some(Segment::Switch(new)) = work.pop_front() {
                            file = new;
                            self.others_size.fetch_add(
                                self.incr_size.swap(0, Ordering::Relaxed),
                                Ordering::Relaxed,
                            );
                            self.switched.fetch_add(1, Ordering::Release);
                        }
                    }
                }
            }
            let want_sync = match self.policy() {
                AppendFsync::Always => true,
                AppendFsync::Everysec => last_fsync.elapsed() >= Duration::from_secs(1),
                AppendFsync::No => false,
            } || fsync_req
                || stop;
            if !failed && want_sync && synced < written {
                let r = match self.injected() {
                    Some(e) => Err(e),
                    None => file.sync_data(),
                };
                match r {
                    Ok(()) => {
                        synced = written;
                        last_fsync = Instant::now();
                        self.last_fsync_unix
                            .store(crate::store::now_ms() / 1000, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.fail(&e, "fsyncing");
                        failed = true;
                    }
                }
            } else if !failed && want_sync {
                last_fsync = Instant::now();
                self.last_fsync_unix
                    .store(crate::store::now_ms() / 1000, Ordering::Relaxed);
            }
            if !failed {
                self.recovered();
                // Under `everysec` / `no` the durable offset is only a
                // lower bound; only `always` clients wait on it.
                let off = if synced == written { written } else { synced };
                self.durable.send_if_modified(|d| {
                    if d.offset < off {
                        d.offset = off;
                        true
                    } else {
                        false
                    }
                });
            } else {
                retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
            if stop && (work.is_empty() || failed) {
                self.durable.send_modify(|d| d.closed = true);
                return;
            }
            if !failed && !stop && self.policy() != AppendFsync::Always {
                // Let appends gather (they do not wake us meanwhile).
                let mut p = self.pending.lock();
                if !p.stop && !p.fsync_requested {
                    self.wake.wait_for(&mut p, BATCH_WINDOW);
                }
            }
        }
    }
}

/// Writes all of `buf`, or returns how much was written before the error.
fn write_some(file: &mut File, buf: &[u8]) -> Result<(), (usize, io::Error)> {
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

    #[test]
    fn strerror_drops_os_error_suffix() {
        let e = io::Error::from_raw_os_error(28);
        assert_eq!(strerror(&e), "No space left on device");
    }
}
