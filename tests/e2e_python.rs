//! End-to-end: the seed documents' redis-py pub/sub examples (`tests/py`,
//! pytest) against herald, each with RESP2 and with RESP3: the publisher and
//! its subscriber counts, the simple (`listen()`) and robust (`get_message()`,
//! `psubscribe`) subscribers, the threaded listeners (a `Thread` subclass and
//! `run_in_thread`), the EventBus fan-out to several services, the monitoring
//! script's PUBSUB CHANNELS / NUMSUB / NUMPAT, the pitfalls (a message
//! published before SUBSCRIBE is lost; a RESP2 subscribed connection refuses
//! other commands) and pipelined batch publishing.
//!
//! Needs the venv made by `bash scripts/test.sh` (`HERALD_PYTHON`). To run the
//! same pytest files against another server: `HERALD_PORT=<port>
//! .venv/bin/python -m pytest -q tests/py`.

mod common;

use std::process::Command;
use std::time::Duration;

#[test]
fn redis_py_seed_examples() {
    let server = common::start_server();
    let out = common::run(
        Command::new(common::python())
            .args(["-m", "pytest", "-q", "-rfEsxX", "-p", "no:cacheprovider"])
            .arg("tests/py")
            // redis-py's Lock runs Lua scripts: tests/e2e_scripts.rs runs it,
            // against herald and against redis-server.
            .arg("--ignore=tests/py/test_lock.py")
            .current_dir(common::project_dir())
            .env("HERALD_PORT", server.port().to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        Duration::from_secs(300),
    );
    out.print("pytest tests/py");
    assert!(
        out.status.success(),
        "pytest failed ({}): its output is above",
        out.status
    );
}
