//! The soak test's short form on CI: starts the `herald` binary on
//! a free loopback port with a small pubsub output-buffer limit (so slow
//! readers are cut off within the run), runs `herald-bench soak --quick`
//! against it (1,000 connections, a 15 s warm-up round then 15 s measured:
//! churn, mid-command disconnects,
//! garbage, slow readers, a flood, order checks), and requires it to pass:
//! no reordering, no well-behaved client failed, and PUBSUB NUMSUB / NUMPAT
//! / CHANNELS, connected_clients and RSS back to their baseline afterwards.
//! Every wait is bounded (the soak's exit is waited for as an event, the
//! server's readiness polled with PING); the server is killed on the way out.
//!
//! herald-bench is another package of the workspace (bench/), built by the
//! test itself before the server starts: see `herald_bench`.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The open-files hard limit (the server and the soak each raise theirs to it).
fn nofile_hard() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_max
    } else {
        1024
    }
}

/// The herald-bench binary, built from the current sources.
///
/// `CARGO_BIN_EXE_<name>` only names binaries of the test's own package, and
/// Cargo builds no other package's binaries for a test, so `cargo test --test
/// soak` alone would have no herald-bench, and a binary left over from an
/// earlier build could be stale. So the test runs `cargo build -p
/// herald-bench` itself, with the cargo running the test (`CARGO`), in the
/// target directory and profile of this build: a no-op when the binary is
/// up to date. Both come from herald's own path, `<target-dir>/<profile
/// dir>/herald`, where Cargo puts every binary of a profile ("debug" is the
/// dev and test profiles' directory); herald-bench lands beside it. Cargo
/// releases the target directory's lock before it runs the tests, so the
/// inner build does not wait for the outer one. HERALD_BENCH_BIN names a
/// binary to use instead, without building.
fn herald_bench() -> PathBuf {
    if let Some(bin) = std::env::var_os("HERALD_BENCH_BIN") {
        return PathBuf::from(bin);
    }
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_herald")).parent().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => panic!("no profile directory in {}", profile_dir.display()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let out = Command::new(cargo)
        .args(["build", "--package", "herald-bench"])
        .args(["--profile", profile])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build -p herald-bench failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile_dir.join("herald-bench");
    assert!(bin.is_file(), "no herald-bench at {}", bin.display());
    bin
}

#[test]
fn quick_soak_passes() {
    let bench = herald_bench();
    let port = common::free_port();
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-herald-{port}.log"));
    let log_file = std::fs::File::create(&log).unwrap();
    // Room for 1,000 connections where the limits allow it.
    let connections = 1000.min(nofile_hard().saturating_sub(200)).max(100);
    let server = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--appendonly", "no", "--save", "", "--maxclients", "4000"])
        .args(["--client-output-buffer-limit", "pubsub 128kb 32kb 1"])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = common::KillOnDrop(server);
    let addr = ([127, 0, 0, 1], port).into();
    if let Err(e) = common::wait_for_ping(addr, Duration::from_secs(20), Some(&mut server.0)) {
        panic!("herald did not start on port {port}: {e}");
    }
    let pid = server.0.id();

    let mut soak = Command::new(&bench)
        .args(["soak", "--quick", "--port", &port.to_string()])
        .args(["--pid", &pid.to_string()])
        .args(["--connections", &connections.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // 2 × 15 s of load + at most 2 × 20 s to settle + set-up: 150 s is a hang.
    let status = common::wait_exit(&mut soak, Duration::from_secs(150));
    if status.is_none() {
        let _ = soak.kill();
        let _ = soak.wait();
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = soak.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = soak.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    println!("{out}");
    eprintln!("{err}");
    let server_alive = server.0.try_wait().unwrap().is_none();
    let tail = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    assert!(
        server_alive,
        "herald died during the soak; its log:\n{}",
        tail()
    );
    match status {
        None => panic!("the soak did not finish within 150 s"),
        Some(s) => assert!(
            s.success(),
            "the soak failed ({s}):\n{out}\n{err}\nherald's log:\n{}",
            tail()
        ),
    }
}
