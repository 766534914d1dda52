//! Background snapshots in a child process, as redis-server's
//! `rdbSaveBackground` and `rewriteAppendOnlyFileBackground` make them.
//!
//! # Why fork
//!
//! A background save (BGSAVE, a `save` point, an AOF rewrite, the RDB of a
//! replication full resync) must see the data set at one instant while
//! clients go on changing it. Copying the data under the databases' locks
//! stops every client for the length of the copy (a few hundred ms at two
//! million keys). `fork(2)` gives the child a copy-on-write image of the
//! whole process instead: the server holds every database only for the
//! fork itself (it copies page tables, not data; INFO
//! `latest_fork_usec`), then goes on, and the kernel copies a page only
//! when the server writes to it while the child lives.
//!
//! # Why it is sound
//!
//! After `fork` only the forking thread exists in the child; every lock
//! another thread held at that instant stays held there forever. So:
//!
//! - The forking thread holds every database lock ([`Held`]) across the
//!   fork: in the child the databases are plain memory that nobody else
//!   can have been in the middle of changing, and the child reads them
//!   through the guards it inherited (never dropping them: dropping would
//!   unlock, and parking_lot's unlock may touch its global parking table).
//! - Everything else the child needs (function libraries, encoding, aux
//!   fields, the eviction policy, the time, configuration values) is read
//!   by the caller before the fork. The child touches no other lock, no
//!   tokio runtime, no host state, and never logs (tracing's and stderr's
//!   locks may be held by threads that do not exist in the child). A panic
//!   is caught (with a silent hook, for the same reason) and becomes exit
//!   status 2; an I/O error (the server went away: `EPIPE`, SIGPIPE being
//!   ignored by Rust's runtime) status 1.
//! - Allocation in the child is safe: jemalloc (the binary's global
//!   allocator) and glibc's malloc (the tests') both take their locks
//!   around `fork` with `pthread_atfork` handlers, as redis-server's child
//!   relies on.
//! - The child leaves with `_exit`, never returning into the caller nor
//!   unwinding past this module: no destructor, no atexit handler runs.
//! - It closes every descriptor but its pipe's write end (`close_range`),
//!   as Redis's child closes its listening sockets: client connections the
//!   server closes meanwhile really close, a restarted server can bind its
//!   port, and one child does not keep another's pipe open. If the kernel
//!   lacks `close_range` the descriptors stay open until the child exits,
//!   which it does as soon as it has written everything.
//! - SIGTERM and SIGINT go back to their default action in the child (the
//!   server's handlers would only tell a runtime that does not exist), so
//!   killing the child works as with Redis; the server sees a child killed
//!   by a signal as a failed save ([`Child::wait`]), never crashes for it.
//!
//! # What crosses the pipe
//!
//! The child serializes straight from the held databases through
//! `snapshot::Data` (no copy of the data set first) and writes the bytes to a
//! pipe; the server reads them on the thread that writes them where they
//! go (the temporary file of a save, the AOF base, the replicas' sockets),
//! then reaps the child and treats any status but 0 as a failed save.

use std::io::{self, BufWriter, PipeReader, PipeWriter, Read, Write};
use std::time::Instant;

use super::snapshot::Held;
use super::Host;

/// A child process writing a snapshot, and the read end of its pipe. Dropped
/// before [`wait`](Child::wait) (the server gave up on it), it is killed
/// and reaped.
pub struct Child {
    /// The child's process id.
    pid: libc::pid_t,
    /// What it writes.
    out: PipeReader,
    /// Reaped already.
    reaped: bool,
}

/// Where a child writes: its pipe, buffered.
pub type Out = BufWriter<PipeWriter>;

/// Forks a child that writes what `produce` makes of `held` to a pipe;
/// the databases are released in the server as soon as the fork returns.
/// `produce` runs in the child only: it must do nothing but serialize
/// `held` (see the module header). The fork is counted in `host`'s
/// state (INFO `total_forks`, `latest_fork_usec`).
pub fn spawn<H: Host + ?Sized>(
    host: &H,
    held: Held,
    produce: impl FnOnce(&Held, &mut Out) -> io::Result<()>,
) -> io::Result<Child> {
    let (reader, writer) = io::pipe()?;
    let started = Instant::now();
    // SAFETY: fork duplicates only this thread. Before it, this thread
    // holds every database lock (`held`) and has read everything the child
    // needs; the child then only reads `held`'s databases (plain memory in
    // its image, consistent since no other thread could be inside them),
    // allocates (jemalloc and glibc malloc reset their locks with
    // pthread_atfork handlers), writes to its pipe, and leaves with
    // `_exit` without returning or unwinding, so no lock held by a thread
    // that does not exist in the child is ever touched. `signal` and
    // `close_range` are async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The child. SAFETY: `signal` is async-signal-safe; the default
        // action lets SIGTERM / SIGINT end the child (the server's handlers
        // would only notify a runtime that does not exist here).
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
        }
        drop(reader);
        keep_only(std::os::fd::AsRawFd::as_raw_fd(&writer));
        std::panic::set_hook(Box::new(|_| {}));
        let status = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut w = BufWriter::with_capacity(1 << 16, writer);
            produce(&held, &mut w)?;
            w.flush()
        })) {
            Ok(Ok(())) => 0,
            Ok(Err(_)) => 1,
            Err(_) => 2,
        };
        // SAFETY: leaves the child at once: no destructor (the guards in
        // `held` stay locked in a process that ends), no atexit handler.
        unsafe { libc::_exit(status) }
    }
    let fork_usec = started.elapsed().as_micros() as u64;
    drop(held);
    drop(writer);
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    {
        let mut st = host.state().lock();
        st.forks += 1;
        st.latest_fork_usec = fork_usec;
    }
    Ok(Child {
        pid,
        out: reader,
        reaped: false,
    })
}

/// In the child: closes every descriptor above stderr except `fd`.
fn keep_only(fd: std::os::fd::RawFd) {
    let fd = fd as libc::c_uint;
    // SAFETY: close_range only closes descriptors; none of those closed is
    // used by the child afterwards (it writes to `fd` only). A kernel
    // without it (ENOSYS) leaves them open until the child exits.
    unsafe {
        if fd > 3 {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                fd - 1,
                0 as libc::c_uint,
            );
        }
        libc::syscall(
            libc::SYS_close_range,
            fd + 1,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        );
    }
}

impl Child {
    /// Copies everything the child writes to `out`, asking `go_on` before
    /// each chunk: false abandons the child (an error). Returns the bytes
    /// copied.
    pub fn copy_to(
        &mut self,
        out: &mut impl Write,
        mut go_on: impl FnMut() -> bool,
    ) -> io::Result<u64> {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = match self.out.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if !go_on() {
                return Err(io::Error::other("abandoned"));
            }
            out.write_all(&buf[..n])?;
            total += n as u64;
        }
    }

    /// Reaps the child: an error unless it exited with status 0 (Redis's
    /// "Background saving error" / "terminated by signal").
    pub fn wait(mut self) -> io::Result<()> {
        let status = self.reap()?;
        if libc::WIFEXITED(status) {
            match libc::WEXITSTATUS(status) {
                0 => Ok(()),
                1 => Err(io::Error::other(
                    "the child process could not write the snapshot",
                )),
                code => Err(io::Error::other(format!(
                    "the child process exited with status {code}"
                ))),
            }
        } else if libc::WIFSIGNALED(status) {
            Err(io::Error::other(format!(
                "the child process was terminated by signal {}",
                libc::WTERMSIG(status)
            )))
        } else {
            Err(io::Error::other("the child process ended abnormally"))
        }
    }

    /// `waitpid` for the child (once).
    fn reap(&mut self) -> io::Result<libc::c_int> {
        let mut status: libc::c_int = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid out
            // pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                self.reaped = true;
                return Ok(status);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                self.reaped = true;
                return Err(e);
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: signals and reaps our own child, not reaped yet (so
            // its pid cannot have been reused).
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
            let _ = self.reap();
        }
    }
}
