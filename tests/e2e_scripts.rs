//! End-to-end: libraries built on Lua scripts, the software our users run,
//! prove the server's scripting (EVAL, EVALSHA, SCRIPT LOAD / EXISTS / FLUSH
//! and the commands the scripts call):
//! - BullMQ (`tests/node/bullmq-e2e.js`, Node): a Queue, a Worker, retries
//!   with exponential backoff, a job that ends failed, a delayed job,
//!   QueueEvents, obliterate;
//! - redis-py's `Lock` (`tests/py/test_lock.py`, pytest, RESP2 and RESP3):
//!   acquire, extend, reacquire, release, contention, expiry, `locked()` /
//!   `owned()`, the scripts reloaded after SCRIPT FLUSH.
//!
//! Each runs twice: against herald (`common::start_server`, so also against
//! an external server named by `HERALD_TEST_SERVER_PORT`), and against a
//! redis-server 7.0 that the test starts, which proves the tests themselves.
//!
//! Needs the venv and `tests/node/node_modules` (with bullmq) installed by
//! `bash scripts/test.sh` (`HERALD_PYTHON`, `HERALD_NODE_DIR`), and
//! redis-server (`HERALD_REDIS_SERVER`, or on PATH).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Runs `tests/node/bullmq-e2e.js` against the server at `port`.
fn bullmq(port: u16, server: &str) {
    let out = common::run(
        Command::new(common::node())
            .arg("bullmq-e2e.js")
            .current_dir(node_dir_with_bullmq())
            .env("HERALD_PORT", port.to_string()),
        Duration::from_secs(180),
    );
    out.print(&format!("node bullmq-e2e.js against {server}"));
    assert!(
        out.status.success(),
        "BullMQ against {server} failed ({}): its output is above",
        out.status
    );
}

/// Runs `tests/py/test_lock.py` against the server at `port`.
fn redis_py_lock(port: u16, server: &str) {
    let out = common::run(
        Command::new(common::python())
            .args(["-m", "pytest", "-q", "-rfEsxX", "-p", "no:cacheprovider"])
            .arg("tests/py/test_lock.py")
            .current_dir(common::project_dir())
            .env("HERALD_PORT", port.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        Duration::from_secs(180),
    );
    out.print(&format!("pytest tests/py/test_lock.py against {server}"));
    assert!(
        out.status.success(),
        "redis-py Lock against {server} failed ({}): its output is above",
        out.status
    );
}

/// `tests/node` with bullmq installed (it comes with `npm ci`, like the
/// other Node clients).
fn node_dir_with_bullmq() -> PathBuf {
    let dir = common::node_dir();
    assert!(
        dir.join("node_modules/bullmq").exists(),
        "{}/node_modules has no bullmq: run `bash scripts/test.sh`, which runs npm ci \
         in tests/node when package-lock.json changes (or set HERALD_NODE_DIR)",
        dir.display()
    );
    dir
}

// ---------------------------------------------------------------------------
// Against herald.
// ---------------------------------------------------------------------------

#[test]
fn bullmq_on_herald() {
    let server = common::start_server();
    bullmq(server.port(), "herald");
}

#[test]
fn redis_py_lock_on_herald() {
    let server = common::start_server();
    redis_py_lock(server.port(), "herald");
}

// ---------------------------------------------------------------------------
// Against redis-server 7.0: proves the Node script and the pytest file.
// ---------------------------------------------------------------------------

#[test]
fn bullmq_on_redis_server() {
    let redis = common::RedisServer::start();
    bullmq(redis.addr.port(), "redis-server");
}

#[test]
fn redis_py_lock_on_redis_server() {
    let redis = common::RedisServer::start();
    redis_py_lock(redis.addr.port(), "redis-server");
}
