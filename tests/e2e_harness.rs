//! The end-to-end harness itself (tests/common): a subprocess that outlives
//! its deadline is killed together with everything it started, and the test
//! fails at once instead of hanging; output lines are delivered as they come;
//! a process's exit is waited for with a deadline; a poll that never sees its
//! condition fails saying what it waited for, how long, and what it saw.

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

#[test]
fn wait_exit_gives_the_status_or_none_at_the_deadline() {
    let mut done = Command::new("sh").args(["-c", "exit 4"]).spawn().unwrap();
    let status = common::wait_exit(&mut done, Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(4));
    let mut hung = common::KillOnDrop(Command::new("sleep").arg("60").spawn().unwrap());
    let started = Instant::now();
    assert!(common::wait_exit(&mut hung.0, Duration::from_millis(100)).is_none());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_poll_sees_a_late_condition_and_a_failed_wait_says_what_it_saw() {
    let mut calls = 0;
    let got = common::poll(Duration::from_secs(10), || {
        calls += 1;
        (calls == 3).then_some(calls)
    });
    assert_eq!(got, Some(3));
    let result = std::panic::catch_unwind(|| {
        common::wait_for_value("the answer", Duration::from_millis(50), 42, || 41)
    });
    let message = result
        .err()
        .and_then(|e| e.downcast::<String>().ok())
        .expect("wait_for_value() must panic when the deadline passes");
    assert!(
        message.contains("waiting for the answer to be 42"),
        "{message}"
    );
    assert!(message.contains("50ms"), "{message}");
    assert!(message.contains("still 41"), "{message}");
}
