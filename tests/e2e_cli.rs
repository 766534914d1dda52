//! End-to-end: redis-cli against herald, output compared with what
//! redis-cli prints against redis-server 7: PING, ECHO and PUBLISH (an
//! integer reply, raw and `--no-raw`); the seed's monitoring command
//! `redis-cli --csv PSUBSCRIBE '*'` printing a message published afterwards
//! (with redis-cli's CSV quoting); a RESP3 session (`-3`, which starts with
//! HELLO 3) with push messages; `PUBSUB NUMSUB` / `CHANNELS` in `--raw`,
//! no-tty and `--no-raw` forms; and commands piped on stdin.
//!
//! Needs redis-cli (apt package redis-tools, installed by
//! `bash scripts/test.sh`). Channel names are unique per test so that the
//! tests can share a server (see `HERALD_TEST_SERVER_PORT` in tests/common).

mod common;

use common::{Server, Streaming};
use std::process::Command;
use std::time::Duration;

const RUN: Duration = Duration::from_secs(30);

/// `redis-cli -h 127.0.0.1 -p PORT` with `args` after it.
fn cli_command(server: &Server, args: &[&str]) -> Command {
    let mut cmd = Command::new(common::redis_cli());
    cmd.args(["-h", "127.0.0.1", "-p", &server.port().to_string()])
        .args(args);
    cmd
}

/// Runs redis-cli to completion; returns its stdout (it must exit 0).
fn cli(server: &Server, args: &[&str]) -> String {
    let out = common::run(&mut cli_command(server, args), RUN);
    if !out.status.success() {
        out.print("redis-cli");
        panic!("redis-cli {args:?} failed: {}", out.status);
    }
    out.stdout
}

#[test]
fn ping_echo_and_publish_replies() {
    let server = common::start_server();
    assert_eq!(cli(&server, &["PING"]), "PONG\n");
    assert_eq!(cli(&server, &["ECHO", "hello world"]), "hello world\n");
    assert_eq!(cli(&server, &["PUBLISH", "e2e-cli:nobody", "hi"]), "0\n");
    assert_eq!(
        cli(&server, &["--no-raw", "PUBLISH", "e2e-cli:nobody", "hi"]),
        "(integer) 0\n"
    );
    assert_eq!(cli(&server, &["--no-raw", "PING"]), "PONG\n");
}

#[test]
fn csv_psubscribe_star_prints_later_messages() {
    let server = common::start_server();
    // The seed's "Monitorer en temps réel": redis-cli --csv PSUBSCRIBE '*'
    let mut monitor = Streaming::spawn(&mut cli_command(&server, &["--csv", "PSUBSCRIBE", "*"]));
    monitor.expect_line("the PSUBSCRIBE confirmation", |l| {
        l == r#""psubscribe","*",1"#
    });

    assert_eq!(
        cli(&server, &["PUBLISH", "e2e-cli:csv", r#"hello, "world""#]),
        "1\n"
    );
    monitor.expect_line("the first pmessage", |l| {
        l.starts_with(r#""pmessage","*","e2e-cli:csv""#)
    });
    assert_eq!(
        monitor.seen().last().unwrap(),
        r#""pmessage","*","e2e-cli:csv","hello, \"world\"""#
    );

    assert_eq!(
        cli(&server, &["PUBLISH", "e2e-cli:csv", "line1\nline2\ttab"]),
        "1\n"
    );
    let line = monitor.expect_line("the second pmessage", |l| {
        l.starts_with(r#""pmessage","*","e2e-cli:csv""#)
    });
    assert_eq!(line, r#""pmessage","*","e2e-cli:csv","line1\nline2\ttab""#);
}

#[test]
fn resp3_session_starts_with_hello() {
    let server = common::start_server();
    let hello = cli(&server, &["-3", "HELLO", "3"]);
    let lines: Vec<&str> = hello.lines().collect();
    for expected in ["proto 3", "mode standalone", "role master"] {
        assert!(
            lines.contains(&expected),
            "HELLO 3 output lacks {expected:?}:\n{hello}"
        );
    }
    let hello = cli(&server, &["-3", "--no-raw", "HELLO", "3"]);
    assert!(
        hello
            .lines()
            .any(|l| l.ends_with(r#""proto" => (integer) 3"#)),
        "HELLO 3 (--no-raw) output lacks the proto field:\n{hello}"
    );
    assert_eq!(cli(&server, &["-3", "PING"]), "PONG\n");
    assert_eq!(
        cli(&server, &["-3", "PUBSUB", "NUMSUB", "e2e-cli:resp3"]),
        "e2e-cli:resp3\n0\n"
    );

    // SUBSCRIBE in a RESP3 session: confirmations and messages are pushes.
    let mut sub = Streaming::spawn(&mut cli_command(
        &server,
        &["-3", "SUBSCRIBE", "e2e-cli:resp3"],
    ));
    assert_eq!(sub.next_lines(3), ["subscribe", "e2e-cli:resp3", "1"]);
    assert_eq!(
        cli(&server, &["-3", "PUBLISH", "e2e-cli:resp3", "x y"]),
        "1\n"
    );
    assert_eq!(sub.next_lines(3), ["message", "e2e-cli:resp3", "x y"]);
}

#[test]
fn pubsub_numsub_raw_and_no_tty_output() {
    let server = common::start_server();
    let mut sub = Streaming::spawn(&mut cli_command(
        &server,
        &["SUBSCRIBE", "e2e-cli:numsub-a"],
    ));
    // Without a tty redis-cli prints raw: one element per line.
    assert_eq!(sub.next_lines(3), ["subscribe", "e2e-cli:numsub-a", "1"]);

    let args = ["PUBSUB", "NUMSUB", "e2e-cli:numsub-a", "e2e-cli:numsub-b"];
    let raw = "e2e-cli:numsub-a\n1\ne2e-cli:numsub-b\n0\n";
    assert_eq!(cli(&server, &[&["--raw"], &args[..]].concat()), raw);
    assert_eq!(cli(&server, &args), raw);
    assert_eq!(
        cli(&server, &[&["--no-raw"], &args[..]].concat()),
        "1) \"e2e-cli:numsub-a\"\n2) (integer) 1\n3) \"e2e-cli:numsub-b\"\n4) (integer) 0\n"
    );
    assert_eq!(
        cli(&server, &["PUBSUB", "CHANNELS", "e2e-cli:numsub-*"]),
        "e2e-cli:numsub-a\n"
    );

    assert_eq!(
        cli(&server, &["PUBLISH", "e2e-cli:numsub-a", "hello"]),
        "1\n"
    );
    assert_eq!(sub.next_lines(3), ["message", "e2e-cli:numsub-a", "hello"]);
}

#[test]
fn commands_piped_on_stdin() {
    let server = common::start_server();
    let out = common::run_with_input(
        &mut cli_command(&server, &[]),
        b"PING\nPUBLISH e2e-cli:pipe hello\nPUBSUB NUMSUB e2e-cli:pipe\nECHO \"two words\"\n",
        RUN,
    );
    out.print("redis-cli < commands");
    assert!(out.status.success());
    assert_eq!(out.stdout, "PONG\n0\ne2e-cli:pipe\n0\ntwo words\n");
}
