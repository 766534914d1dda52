//! Helpers shared by the integration tests: a server to test (herald started
//! in-process on a free port, or an external server named by
//! `HERALD_TEST_SERVER_PORT`); what tests that start their own servers need
//! (herald with a changed config, a free port and redis-server for a server
//! process, a child killed on drop, a temporary directory); connections
//! (the `redis` crate, or raw TCP with a reply-line reader) and the INFO /
//! CONFIG SET calls several tests make; where the end-to-end clients are
//! (the venv's python, the Node test folder, redis-cli); subprocesses run
//! with a deadline and killed, with their whole process group, when it
//! passes; and bounded waits for what a test cannot be told about.
//!
//! Nothing here sleeps to wait for something: a subprocess's exit and its
//! output lines are waited for as events, each with a deadline. Where there
//! is no event to wait on (a counter in INFO, a server starting to accept
//! connections), [`poll`] and the helpers built on it re-check a condition
//! with a short pause until a deadline, and fail naming what they awaited.
//!
//! Environment:
//! - `HERALD_PYTHON`: the python of the venv that has redis-py and pytest
//!   (default: `.venv/bin/python` in the project, if it exists);
//! - `HERALD_NODE_DIR`: `tests/node` with its `node_modules` installed
//!   (default: the project's `tests/node`, if `node_modules` is there);
//! - `HERALD_REDIS_CLI`: the redis-cli to run (default: `redis-cli` on PATH);
//! - `HERALD_REDIS_SERVER`: the redis-server to run (default: `redis-server`
//!   on PATH);
//! - `HERALD_TEST_SERVER_PORT`: run against the server on 127.0.0.1 at that
//!   port (e.g. a redis-server, to check the tests) instead of herald.
//!
//! `bash scripts/test.sh` installs all of these (redis-cli and redis-server
//! on PATH) and sets `HERALD_PYTHON` and `HERALD_NODE_DIR`.

#![allow(dead_code)]

pub mod dataset;

use std::fmt::Debug;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Upper bound of one wait for an event (a line, a reply).
pub const WAIT: Duration = Duration::from_secs(10);

/// Pause between two checks of [`poll`] and the waits built on it: short
/// enough not to slow the tests down, long enough not to take the CPU from
/// the server the test waits for.
pub const POLL_PAUSE: Duration = Duration::from_millis(5);

/// Calls `check` until it returns `Some`, pausing [`POLL_PAUSE`] between
/// calls, and returns that value; `None` once `timeout` has passed (the last
/// call starts at or after the deadline, so a condition that comes true just
/// in time is still seen).
///
/// Only for conditions that nothing announces (a figure in INFO, a server
/// starting to accept connections, a flag set by another thread): where
/// there is an event (a reply, a message, an output line, a process exit),
/// wait for that event with a timeout instead.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last_chance = Instant::now() >= deadline;
        if let Some(v) = check() {
            return Some(v);
        }
        if last_chance {
            return None;
        }
        std::thread::sleep(POLL_PAUSE.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Waits, with [`poll`], until `ready` returns true; panics, naming `what`
/// was awaited and for how long, if it is still false after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    if poll(timeout, || ready().then_some(())).is_none() {
        panic!("timed out after {timeout:?} waiting for {what}");
    }
}

/// Waits, with [`poll`], until `probe` returns `want`; panics, naming
/// `what`, the timeout and the last value seen, if it never does within
/// `timeout`.
pub fn wait_for_value<T: PartialEq + Debug>(
    what: &str,
    timeout: Duration,
    want: T,
    mut probe: impl FnMut() -> T,
) {
    let mut last = None;
    let reached = poll(timeout, || {
        let got = probe();
        if got == want {
            Some(())
        } else {
            last = Some(got);
            None
        }
    });
    if reached.is_none() {
        panic!(
            "timed out after {timeout:?} waiting for {what} to be {want:?}: still {:?}",
            last.expect("probed at least once")
        );
    }
}

/// [`wait_for_value`] for async tests: `probe` is awaited, and the pause
/// between checks is a tokio sleep (the runtime's other tasks, such as the
/// connections being probed, go on meanwhile).
pub async fn wait_for_value_async<T, F, Fut>(what: &str, timeout: Duration, want: T, mut probe: F)
where
    T: PartialEq + Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last_chance = Instant::now() >= deadline;
        let got = probe().await;
        if got == want {
            return;
        }
        if last_chance {
            panic!("timed out after {timeout:?} waiting for {what} to be {want:?}: still {got:?}");
        }
        tokio::time::sleep(POLL_PAUSE.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }
}

/// True if the server at `addr` answers PING with `+PONG` now (the connect
/// and the reply each bounded): the check of a readiness poll.
pub fn answers_ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Waits, with [`poll`], until the server at `addr` answers PING: a server
/// started as a separate process does not say when it listens. With the
/// server's process as `child`, gives up as soon as it exits. The error
/// says which happened (the exit status, or the timeout).
pub fn wait_for_ping(
    addr: SocketAddr,
    timeout: Duration,
    mut child: Option<&mut Child>,
) -> Result<(), String> {
    poll(timeout, || {
        if answers_ping(addr) {
            return Some(Ok(()));
        }
        match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => Some(Err(format!(
                "exited with {status} before answering PING at {addr}"
            ))),
            _ => None,
        }
    })
    .unwrap_or_else(|| Err(format!("did not answer PING at {addr} within {timeout:?}")))
}

/// The project's root (where Cargo.toml is).
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The server under test. Dropping it stops herald.
pub struct Server {
    handle: Option<herald::server::ServerHandle>,
    port: u16,
    /// Held while a test uses the external server: tests of one binary then
    /// take turns on it, as they would otherwise see each other's messages.
    _turn: Option<MutexGuard<'static, ()>>,
}

static EXTERNAL_TURN: Mutex<()> = Mutex::new(());

impl Server {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        match &self.handle {
            Some(h) => h.addr(),
            None => ([127, 0, 0, 1], self.port).into(),
        }
    }

    /// True when the tests run against an external server, not herald.
    pub fn is_external(&self) -> bool {
        self.handle.is_none()
    }
}

/// Starts herald on 127.0.0.1 on a free port, or uses the external server
/// named by `HERALD_TEST_SERVER_PORT`.
pub fn start_server() -> Server {
    if let Some(port) = std::env::var("HERALD_TEST_SERVER_PORT")
        .ok()
        .filter(|p| !p.is_empty())
    {
        let port = port
            .parse()
            .unwrap_or_else(|_| panic!("HERALD_TEST_SERVER_PORT={port:?} is not a port"));
        eprintln!("testing the external server at 127.0.0.1:{port}");
        let turn = EXTERNAL_TURN.lock().unwrap_or_else(|e| e.into_inner());
        return Server {
            handle: None,
            port,
            _turn: Some(turn),
        };
    }
    let handle = herald();
    let port = handle.port();
    Server {
        handle: Some(handle),
        port,
        _turn: None,
    }
}

fn missing(what: &str, var: &str) -> ! {
    panic!(
        "{what} not found: run the tests with `bash scripts/test.sh`, which installs \
         it and sets {var} (or set {var} yourself)"
    )
}

/// The python of the test venv (redis-py and pytest installed).
pub fn python() -> PathBuf {
    match std::env::var_os("HERALD_PYTHON") {
        Some(p) if Path::new(&p).exists() => PathBuf::from(p),
        Some(p) => panic!(
            "HERALD_PYTHON={p:?} does not exist: run `bash scripts/test.sh`, which \
             creates the venv .venv/"
        ),
        None => {
            let p = project_dir().join(".venv/bin/python");
            if p.exists() {
                p
            } else {
                missing("the test venv's python (.venv/bin/python)", "HERALD_PYTHON")
            }
        }
    }
}

/// `tests/node` with its dependencies (ioredis, node-redis) installed.
pub fn node_dir() -> PathBuf {
    let dir = match std::env::var_os("HERALD_NODE_DIR") {
        Some(d) => PathBuf::from(d),
        None => project_dir().join("tests/node"),
    };
    if !dir.join("node_modules/ioredis").exists() || !dir.join("node_modules/redis").exists() {
        missing(
            &format!("{}/node_modules (ioredis, redis)", dir.display()),
            "HERALD_NODE_DIR",
        );
    }
    dir
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The redis-server to run (the reference server of the differential and
/// persistence tests).
pub fn redis_server() -> PathBuf {
    if let Some(p) = std::env::var_os("HERALD_REDIS_SERVER") {
        return PathBuf::from(p);
    }
    on_path("redis-server").unwrap_or_else(|| {
        panic!(
            "redis-server not found (set HERALD_REDIS_SERVER or put it on PATH): run \
             `bash scripts/test.sh`, which installs redis-server 7.0.15"
        )
    })
}

/// The redis-server [`redis_server`] would run, if there is one (for tests
/// that skip without it).
pub fn redis_server_if_present() -> Option<PathBuf> {
    match std::env::var_os("HERALD_REDIS_SERVER") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => on_path("redis-server"),
    }
}

/// The redis-check-aof to run: beside the redis-server in use, else on
/// PATH (Debian's redis-tools ships it with redis-cli).
pub fn redis_check_aof() -> PathBuf {
    let beside = redis_server().with_file_name("redis-check-aof");
    if beside.exists() {
        return beside;
    }
    on_path("redis-check-aof")
        .unwrap_or_else(|| missing("redis-check-aof (apt package redis-tools)", "PATH"))
}

/// The redis-cli to run.
pub fn redis_cli() -> PathBuf {
    if let Some(p) = std::env::var_os("HERALD_REDIS_CLI") {
        return PathBuf::from(p);
    }
    on_path("redis-cli")
        .unwrap_or_else(|| missing("redis-cli (apt package redis-tools)", "HERALD_REDIS_CLI"))
}

/// The node to run.
pub fn node() -> PathBuf {
    on_path("node").unwrap_or_else(|| missing("node (Node.js 20)", "PATH"))
}

/// What a finished subprocess printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Prints both streams (shown by cargo test when the test fails, or with
    /// `--nocapture`).
    pub fn print(&self, name: &str) {
        println!("----- {name}: stdout -----\n{}", self.stdout);
        println!("----- {name}: stderr -----\n{}", self.stderr);
        println!("----- {name}: {} -----", self.status);
    }
}

/// Spawns `cmd` in a process group of its own (so that killing it also
/// kills anything it started).
fn spawn(cmd: &mut Command) -> Child {
    cmd.process_group(0);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()))
}

/// Blocks until process `pid` (a child of this process) has exited, leaving
/// it unreaped.
fn wait_exit_no_reap(pid: u32) {
    // SAFETY: waitid(2) writes only into `info`, a zeroed siginfo_t we own.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        while libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        ) != 0
            && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {}
    }
}

/// Kills the process group led by `pid`. Only called while that process is
/// unreaped, so the id cannot belong to anybody else.
fn kill_group(pid: u32) {
    // SAFETY: kill(2) with a negative pid signals a process group; it has no
    // memory-safety preconditions.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

/// True if process `pid` (a child of this process) exits within `timeout`:
/// the exit is waited for as an event, in a thread, and the process is left
/// unreaped (its pid, also its process group's id, stays reserved).
fn exits_within(pid: u32, timeout: Duration) -> bool {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        wait_exit_no_reap(pid);
        let _ = tx.send(());
    });
    rx.recv_timeout(timeout).is_ok()
}

/// Waits for `child` to exit, at most `timeout`, and reaps it: its exit
/// status, or `None` if it is still running then (it is left running).
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    if exits_within(child.id(), timeout) {
        Some(child.wait().expect("reap the child"))
    } else {
        None
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so
/// that a test that fails or panics leaves no server running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_all(stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut stream = stream;
        let _ = stream.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `cmd` to completion with `input` on its stdin; kills it (and its
/// children) and panics, with what it printed so far, if it is not done
/// within `timeout`.
pub fn run_with_input(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = format!("{:?}", cmd.get_program());
    let mut child = spawn(cmd);
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    // The process stays unreaped until its group has been killed below.
    let timed_out = !exits_within(pid, timeout);
    // Ends the process if still running, and whatever it started.
    kill_group(pid);
    let status = child.wait().expect("wait for the subprocess");
    let _ = writer.join();
    let out = Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    if timed_out {
        out.print(&program);
        panic!("{program} did not finish within {timeout:?}: killed (its output is above)");
    }
    out
}

/// Runs `cmd` to completion (stdin empty), with a deadline; see
/// [`run_with_input`].
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    run_with_input(cmd, b"", timeout)
}

/// A long-running subprocess whose stdout is read line by line as it comes.
/// Dropping it kills it (and its process group).
pub struct Streaming {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
    name: String,
    reaped: bool,
}

impl Streaming {
    /// Starts `cmd` with stdin closed and stdout and stderr captured.
    pub fn spawn(cmd: &mut Command) -> Streaming {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let name = format!("{:?}", cmd);
        let mut child = spawn(cmd);
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = read_all(child.stderr.take().expect("piped stderr"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Streaming {
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
            name,
            reaped: false,
        }
    }

    /// Reads lines until one satisfies `pred` and returns it; panics, with
    /// every line read so far, if none comes within [`WAIT`] or the process
    /// closes its stdout first.
    pub fn expect_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no line with {what} within {WAIT:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("stdout closed before a line with {what}"))
                }
            }
        }
    }

    /// Reads the next `n` lines (each within [`WAIT`]).
    pub fn next_lines(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| self.expect_line(&format!("line {} of {n}", i + 1), |_| true))
            .collect()
    }

    /// Every stdout line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    fn fail(&mut self, why: &str) -> ! {
        self.kill();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        panic!(
            "{}: {why}\nstdout so far:\n{}\nstderr:\n{stderr}",
            self.name,
            self.seen.join("\n")
        );
    }

    /// Kills the process and its group, and reaps it.
    pub fn kill(&mut self) {
        if !self.reaped {
            kill_group(self.child.id());
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An in-process herald with default settings on a free port (tests that
/// inspect the server's state directly use this rather than
/// [`start_server`]).
pub fn herald() -> herald::server::ServerHandle {
    herald_with(|_| {})
}

/// An in-process herald on a free port with the default settings changed
/// by `edit` (which must leave `port` at 0). Its `dir` is a directory of
/// its own under the system's temp directory, not the project: a replica
/// stores the RDB it receives there, as Redis's, and a server loads the
/// `dump.rdb` it finds there at start.
pub fn herald_with(edit: impl FnOnce(&mut herald::config::Config)) -> herald::server::ServerHandle {
    static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir()
        .join(format!("herald-tests-{}", std::process::id()))
        .join(n.to_string());
    let _ = std::fs::create_dir_all(&dir);
    let mut config = herald::config::Config {
        port: 0,
        dir,
        ..Default::default()
    };
    edit(&mut config);
    herald::server::start(config).expect("herald starts")
}

/// A loopback port nobody listens on right now, for a server started as a
/// separate process (which binds it a moment later: another process may
/// take it meanwhile, which is rare and shows as a failed start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A random number (from the standard library's randomly keyed hasher: the
/// tests need no rand crate for a file name or a delay).
pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

/// A new empty directory `herald-TAG-PID-RANDOM` under the system's temp
/// directory (tests of one binary run in parallel, and several binaries
/// at once). The caller removes it.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "herald-{tag}-{}-{}",
        std::process::id(),
        rand_u64()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A `redis` crate connection to `s` whose reads time out after `timeout`.
pub fn connect_redis(
    s: &herald::server::ServerHandle,
    timeout: std::time::Duration,
) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{}/", s.addr())).expect("client");
    let con = client.get_connection().expect("connect");
    con.set_read_timeout(Some(timeout)).expect("timeout");
    con
}

/// A raw TCP connection to `addr` whose reads time out after [`WAIT`].
pub fn connect_raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    s
}

/// Reads one reply line, up to and with its CRLF (a status, error or
/// integer reply, or the header of a longer one), a byte at a time so that
/// nothing after it is consumed; panics, with what came so far, if the
/// connection closes or the read times out first.
pub fn read_line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        match s.read(&mut b) {
            Ok(0) => panic!(
                "connection closed inside a reply line, after {:?}",
                String::from_utf8_lossy(&out)
            ),
            Ok(_) => out.push(b[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "{e} while reading a reply line, after {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `CONFIG SET name value`, which must succeed.
pub fn config_set(con: &mut redis::Connection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(con)
        .expect("config set");
}

/// A numeric field of `INFO section`; panics if there is none.
pub fn info_u64(con: &mut redis::Connection, section: &str, field: &str) -> u64 {
    info_field(con, section, field)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no numeric {field}"))
}

/// The value of `field` in INFO `section` (`errorstat_NOGROUP` gives
/// `count=1`), if the section has it.
pub fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let text: String = redis::cmd("INFO").arg(section).query(con).expect("info");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
}

/// INFO's `blocked_clients`: nothing tells a test that a client has entered
/// a blocking command, so tests poll this before they unblock it.
pub fn blocked_clients(con: &mut redis::Connection) -> usize {
    info_u64(con, "clients", "blocked_clients") as usize
}

/// A scalar reply as text (bulk and simple strings, integers, OK); anything
/// else in its debug form.
pub fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::Okay => "OK".into(),
        other => format!("{other:?}"),
    }
}

/// A redis-server child process on a free loopback port, without
/// persistence, killed on drop: the reference the differential suite
/// compares against, and the server the library tests prove their harness on.
pub struct RedisServer {
    _child: KillOnDrop,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl RedisServer {
    /// Starts one, retrying on another port if the probed one was taken.
    pub fn start() -> RedisServer {
        let bin = redis_server();
        let mut last_err = String::new();
        // The free port may be taken between the probe and the start: retry.
        for _ in 0..3 {
            let port = free_port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(std::env::temp_dir())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run {}: {e}; run `bash scripts/test.sh`, which installs \
                         redis-server",
                        bin.display()
                    )
                });
            let mut child = KillOnDrop(child);
            match wait_for_ping(addr, Duration::from_secs(10), Some(&mut child.0)) {
                Ok(()) => {
                    return RedisServer {
                        _child: child,
                        addr,
                    }
                }
                Err(e) => last_err = format!("redis-server {e}"),
            }
        }
        panic!("could not start {}: {last_err}", bin.display());
    }
}
