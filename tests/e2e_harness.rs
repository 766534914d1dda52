//! The end-to-end harness itself (tests/common): a subprocess that outlives
//! its deadline is killed together with everything it started, and the test
//! fails at once instead of hanging; output lines are delivered as they come.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_hung_subprocess_and_its_children_are_killed_at_the_deadline() {
    let started = Instant::now();
    let result = std::panic::catch_unwind(|| {
        // The background `sleep` keeps stdout open: only killing the whole
        // process group lets run() return.
        common::run(
            Command::new("sh").args(["-c", "sleep 60 & echo started; wait"]),
            Duration::from_millis(300),
        )
    });
    let message = result
        .err()
        .and_then(|e| e.downcast::<String>().ok())
        .expect("run() must panic when the deadline passes");
    assert!(message.contains("did not finish within"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "run() returned only after {:?}",
        started.elapsed()
    );
}

#[test]
fn a_finished_subprocess_gives_its_output_and_status() {
    let out = common::run_with_input(
        Command::new("sh").args(["-c", "cat; echo err >&2; exit 3"]),
        b"from stdin\n",
        Duration::from_secs(10),
    );
    assert_eq!(out.stdout, "from stdin\n");
    assert_eq!(out.stderr, "err\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn streaming_lines_arrive_before_the_process_ends() {
    // The process waits for nothing but its own kill: the lines must be read
    // while it runs.
    let mut proc = common::Streaming::spawn(
        Command::new("sh").args(["-c", "echo one; echo two; exec sleep 60"]),
    );
    assert_eq!(proc.next_lines(2), ["one", "two"]);
    proc.kill();
}
