//! The soak test's short form on CI (issue 6): starts the `herald` binary on
//! a free loopback port with a small pubsub output-buffer limit (so slow
//! readers are cut off within the run), runs `herald-bench soak --quick`
//! against it (1,000 connections, a 15 s warm-up round then 15 s measured:
//! churn, mid-command disconnects,
//! garbage, slow readers, a flood, order checks), and requires it to pass:
//! no reordering, no well-behaved client failed, and PUBSUB NUMSUB / NUMPAT
//! / CHANNELS, connected_clients and RSS back to their baseline afterwards.
//! Every wait is bounded (the soak's exit is waited for as an event, the
//! server's readiness polled with PING); the server is killed on the way out.

mod common;

use std::io::Read;
use std::path::PathBuf;
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

#[test]
fn quick_soak_passes() {
    let port = common::free_port();
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-herald-{port}.log"));
    let log_file = std::fs::File::create(&log).unwrap();
    // Room for 1,000 connections where the limits allow it.
    let connections = 1000.min(nofile_hard().saturating_sub(200)).max(100);
    let server = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--appendonly", "no", "--maxclients", "4000"])
        .args(["--client-output-buffer-limit", "pubsub 128kb 32kb 1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let mut server = common::KillOnDrop(server);
    let addr = ([127, 0, 0, 1], port).into();
    if let Err(e) = common::wait_for_ping(addr, Duration::from_secs(20), Some(&mut server.0)) {
        panic!("herald did not start on port {port}: {e}");
    }
    let pid = server.0.id();

    let mut soak = Command::new(env!("CARGO_BIN_EXE_herald-bench"))
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
