//! RDB snapshots (`dump.rdb`), as redis-server 7.0 writes and reads them.
//!
//! - Interchange: every type (streams with groups, PELs and consumers,
//!   TTLs, function libraries) saved by herald loads in redis-server 7.0.15
//!   and the reverse, key for key; `redis-check-rdb` accepts herald's file
//!   and `herald check-rdb` redis-server's.
//! - SAVE, BGSAVE, LASTSAVE, INFO persistence, the `save` points firing,
//!   SHUTDOWN and SIGTERM saving, FLUSHALL saving (no resurrection from an
//!   older file), DEBUG RELOAD.
//! - A corrupt file stops start-up naming the offset; `herald check-rdb`
//!   says the same.
//! - A failed background save makes writes fail with MISCONF while save
//!   points are set (`stop-writes-on-bgsave-error`).
//! - An AOF whose base redis-server wrote with an RDB preamble loads, and
//!   `herald check-aof` checks it.
//!
//! Every wait has a deadline and waits for the event (a process's exit, an
//! INFO figure), never a fixed time.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::dataset::{dump_all, qs, write_every_type};
use common::KillOnDrop;

/// Connects once PING answers (deadline 10 s).
fn connect(port: u16) -> redis::Connection {
    common::poll(Duration::from_secs(10), || {
        redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).map(|_| c))
            .ok()
    })
    .unwrap_or_else(|| panic!("server on {port} not ready after 10 s"))
}

/// The `herald` binary on `dir` with the AOF off and `extra` flags.
fn herald_bin(dir: &Path, extra: &[&str]) -> (KillOnDrop, u16) {
    let port = common::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--port", &port.to_string(), "--appendonly", "no", "--dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("herald");
    (KillOnDrop(child), port)
}

/// redis-server on `dir` with `extra` flags.
fn redis_server(dir: &Path, extra: &[&str]) -> (KillOnDrop, u16) {
    let port = common::free_port();
    let child = Command::new(common::redis_server())
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir)
        .args(["--daemonize", "no"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    (KillOnDrop(child), port)
}

/// SHUTDOWN (with `how`) and wait for the process to exit.
fn shutdown(mut p: KillOnDrop, c: &mut redis::Connection, how: &[&str]) {
    let _ = redis::cmd("SHUTDOWN").arg(how).query::<()>(c);
    wait_exit(&mut p);
}

fn wait_exit(p: &mut KillOnDrop) -> std::process::ExitStatus {
    common::wait_exit(&mut p.0, Duration::from_secs(20)).expect("the server did not exit in 20 s")
}

fn info(c: &mut redis::Connection, field: &str) -> String {
    common::info_field(c, "persistence", field).unwrap_or_else(|| panic!("no {field}"))
}

/// Copies `dump.rdb` of `from` into a new directory.
fn copy_rdb(from: &Path, tag: &str) -> std::path::PathBuf {
    let d = common::temp_dir(tag);
    std::fs::copy(from.join("dump.rdb"), d.join("dump.rdb")).expect("copy dump.rdb");
    d
}

#[test]
fn every_type_round_trips_between_herald_and_redis_server() {
    let d = common::temp_dir("rdb-herald");
    let (p, port) = herald_bin(&d, &["--save", ""]);
    let mut c = connect(port);
    write_every_type(&mut c);
    qs(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('f', function() return 7 end)",
        ],
    );
    let want = dump_all(&mut c);
    assert!(want.len() > 40);
    assert_eq!(common::text(&qs(&mut c, &["SAVE"])), "OK");
    assert_eq!(info(&mut c, "rdb_changes_since_last_save"), "0");
    assert_eq!(info(&mut c, "rdb_saves"), "1");
    shutdown(p, &mut c, &["NOSAVE"]);

    // herald reloads its own file.
    let debug = ["--save", "", "--enable-debug-command", "yes"];
    let (p, port) = herald_bin(&d, &debug);
    let mut c = connect(port);
    assert_eq!(dump_all(&mut c), want, "herald reloading herald's file");
    let digest = common::text(&qs(&mut c, &["DEBUG", "DIGEST"]));
    assert_eq!(digest.len(), 40);
    assert_eq!(
        info(&mut c, "rdb_last_load_keys_loaded"),
        want.len().to_string()
    );
    shutdown(p, &mut c, &["NOSAVE"]);

    // redis-check-rdb and redis-server accept it.
    let check = common::run(
        Command::new(common::redis_server().with_file_name("redis-check-rdb"))
            .arg(d.join("dump.rdb")),
        Duration::from_secs(30),
    );
    let out = check.stdout.clone();
    assert!(out.contains("RDB looks OK"), "redis-check-rdb: {out}");
    let r = copy_rdb(&d, "rdb-redis");
    let (rp, rport) = redis_server(&r, &[&debug[..], &["--appendonly", "no"]].concat());
    let mut rc = connect(rport);
    assert_eq!(
        dump_all(&mut rc),
        want,
        "redis-server loading herald's file"
    );
    // DEBUG DIGEST is Redis's own fingerprint, bit for bit.
    assert_eq!(common::text(&qs(&mut rc, &["DEBUG", "DIGEST"])), digest);
    let f: i64 = redis::cmd("FCALL").arg("f").arg(0).query(&mut rc).unwrap();
    assert_eq!(f, 7);

    // And back: redis-server writes, herald loads.
    qs(&mut rc, &["SET", "from-redis", "yes"]);
    qs(&mut rc, &["HSET", "h-from-redis", "a", "1"]);
    let want2 = dump_all(&mut rc);
    let digest2 = common::text(&qs(&mut rc, &["DEBUG", "DIGEST"]));
    assert_ne!(digest2, digest);
    assert_eq!(common::text(&qs(&mut rc, &["SAVE"])), "OK");
    shutdown(rp, &mut rc, &["NOSAVE"]);
    let check = common::run(
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("check-rdb")
            .arg(r.join("dump.rdb")),
        Duration::from_secs(30),
    );
    let out = check.stdout.clone();
    assert!(
        check.status.success() && out.contains("RDB looks OK"),
        "herald check-rdb: {out}"
    );
    let h = copy_rdb(&r, "rdb-back");
    let (p, port) = herald_bin(&h, &debug);
    let mut c = connect(port);
    assert_eq!(
        dump_all(&mut c),
        want2,
        "herald loading redis-server's file"
    );
    assert_eq!(common::text(&qs(&mut c, &["DEBUG", "DIGEST"])), digest2);
    let f: i64 = redis::cmd("FCALL").arg("f").arg(0).query(&mut c).unwrap();
    assert_eq!(f, 7);
    shutdown(p, &mut c, &["NOSAVE"]);
    for dir in [d, r, h] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn bgsave_save_points_and_lastsave() {
    let d = common::temp_dir("rdb-bgsave");
    let s = common::herald_with(|cfg| cfg.dir = d.clone());
    let mut c = connect(s.port());
    for i in 0..100 {
        qs(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    assert_eq!(info(&mut c, "rdb_changes_since_last_save"), "100");
    assert_eq!(
        common::text(&qs(&mut c, &["BGSAVE"])),
        "Background saving started"
    );
    common::wait_until("the BGSAVE to finish", Duration::from_secs(20), || {
        info(&mut c, "rdb_saves") == "1" && info(&mut c, "rdb_bgsave_in_progress") == "0"
    });
    assert_eq!(info(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_eq!(info(&mut c, "rdb_changes_since_last_save"), "0");
    let last: i64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
    assert_eq!(info(&mut c, "rdb_last_save_time"), last.to_string());
    assert!(d.join("dump.rdb").exists());

    // A save point: one change within a second.
    common::config_set(&mut c, "save", "1 1");
    qs(&mut c, &["SET", "after", "x"]);
    common::wait_until("the save point to fire", Duration::from_secs(20), || {
        info(&mut c, "rdb_saves") == "2" && info(&mut c, "rdb_bgsave_in_progress") == "0"
    });
    assert_eq!(info(&mut c, "rdb_changes_since_last_save"), "0");
    s.shutdown();
    let _ = std::fs::remove_dir_all(&d);
}

/// The child processes of `pid` (every thread's, from /proc).
fn children_of(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    out
}

#[test]
fn a_killed_background_child_fails_its_save_and_the_server_goes_on() {
    let d = common::temp_dir("rdb-fork-kill");
    let (p, port) = herald_bin(&d, &["--save", "", "--appendonly", "yes"]);
    let pid = p.0.id();
    let mut c = connect(port);
    for i in 0..100 {
        qs(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    // 100 ms per key: the child would take 10 s.
    common::config_set(&mut c, "rdb-key-save-delay", "100000");
    for (cmd, status) in [
        ("BGSAVE", "rdb_last_bgsave_status"),
        ("BGREWRITEAOF", "aof_last_bgrewrite_status"),
    ] {
        qs(&mut c, &[cmd]);
        let child = common::poll(Duration::from_secs(10), || {
            children_of(pid).first().copied()
        })
        .unwrap_or_else(|| panic!("{cmd}: no child process"));
        // SAFETY: kill(2) on the server's child, alive (it sleeps per key).
        assert_eq!(unsafe { libc::kill(child, libc::SIGKILL) }, 0);
        common::wait_until(&format!("{cmd} to fail"), Duration::from_secs(10), || {
            info(&mut c, "rdb_bgsave_in_progress") == "0"
                && info(&mut c, "aof_rewrite_in_progress") == "0"
        });
        assert_eq!(info(&mut c, status), "err", "{cmd}");
        assert!(children_of(pid).is_empty(), "{cmd}: the child was reaped");
    }
    let forks = common::info_field(&mut c, "stats", "total_forks");
    assert_eq!(forks.as_deref(), Some("2"));
    // The server still serves, and the next ones succeed.
    common::config_set(&mut c, "rdb-key-save-delay", "0");
    qs(&mut c, &["SET", "after", "x"]);
    for (cmd, status) in [
        ("BGSAVE", "rdb_last_bgsave_status"),
        ("BGREWRITEAOF", "aof_last_bgrewrite_status"),
    ] {
        qs(&mut c, &[cmd]);
        common::wait_until(&format!("{cmd} to end"), Duration::from_secs(20), || {
            info(&mut c, "rdb_bgsave_in_progress") == "0"
                && info(&mut c, "aof_rewrite_in_progress") == "0"
        });
        assert_eq!(info(&mut c, status), "ok", "{cmd}");
    }
    shutdown(p, &mut c, &["NOSAVE"]);
    // Both files have every key.
    for extra in [&["--appendonly", "no"][..], &["--appendonly", "yes"][..]] {
        let (p, port) = herald_bin(&d, extra);
        let mut c = connect(port);
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        assert_eq!(n, 101, "{extra:?}");
        shutdown(p, &mut c, &["NOSAVE"]);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn shutdown_sigterm_and_flushall_save_with_save_points() {
    for how in ["shutdown", "sigterm"] {
        let d = common::temp_dir(&format!("rdb-{how}"));
        let (mut p, port) = herald_bin(&d, &["--save", "3600 1"]);
        let mut c = connect(port);
        qs(&mut c, &["RPUSH", "l", "a", "b"]);
        if how == "sigterm" {
            // SAFETY: kill(2) on our own child's pid, which is alive.
            let r = unsafe { libc::kill(p.0.id() as i32, libc::SIGTERM) };
            assert_eq!(r, 0);
            assert!(wait_exit(&mut p).success());
        } else {
            shutdown(p, &mut c, &[]);
        }
        let (p, port) = herald_bin(&d, &["--save", "3600 1"]);
        let mut c = connect(port);
        let n: i64 = redis::cmd("LLEN").arg("l").query(&mut c).unwrap();
        assert_eq!(n, 2, "{how}: the list was saved at exit");
        // FLUSHALL saves at once: the list does not come back.
        qs(&mut c, &["FLUSHALL"]);
        shutdown(p, &mut c, &["NOSAVE"]);
        let (p, port) = herald_bin(&d, &["--save", "3600 1"]);
        let mut c = connect(port);
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        assert_eq!(n, 0, "{how}: FLUSHALL saved an empty data set");
        shutdown(p, &mut c, &["NOSAVE"]);
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn debug_reload_keeps_the_data() {
    let d = common::temp_dir("rdb-reload");
    let s = common::herald_with(|cfg| {
        let mut enabled =
            herald::config::Config::from_config_text("enable-debug-command yes\n").expect("config");
        enabled.port = 0;
        enabled.dir = d.clone();
        *cfg = enabled;
    });
    let mut c = connect(s.port());
    write_every_type(&mut c);
    let want = dump_all(&mut c);
    assert_eq!(common::text(&qs(&mut c, &["DEBUG", "RELOAD"])), "OK");
    assert_eq!(dump_all(&mut c), want);
    s.shutdown();
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_corrupt_file_is_refused_with_its_offset() {
    let d = common::temp_dir("rdb-corrupt");
    let (p, port) = herald_bin(&d, &["--save", ""]);
    let mut c = connect(port);
    for i in 0..50 {
        qs(&mut c, &["SET", &format!("key:{i}"), &"x".repeat(i)]);
    }
    qs(&mut c, &["SAVE"]);
    shutdown(p, &mut c, &["NOSAVE"]);
    let path = d.join("dump.rdb");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();

    let out = common::run(
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["--port", &common::free_port().to_string()])
            .args(["--appendonly", "no", "--save", "", "--dir"])
            .arg(&d),
        Duration::from_secs(20),
    );
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(!out.status.success(), "started on a corrupt file: {text}");
    assert!(text.contains("at offset"), "{text}");
    let check = common::run(
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("check-rdb")
            .arg(&path),
        Duration::from_secs(20),
    );
    assert_eq!(check.status.code(), Some(1));
    let text = check.stdout.clone();
    assert!(text.contains("RDB ERROR DETECTED"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_failed_background_save_refuses_writes_with_misconf() {
    let d = common::temp_dir("rdb-misconf");
    let gone = d.join("gone");
    std::fs::create_dir_all(&gone).unwrap();
    let s = common::herald_with(|cfg| {
        cfg.dir = gone.clone();
        cfg.set(&[(b"save".as_slice(), b"3600 1".as_slice())])
            .unwrap();
    });
    let mut c = connect(s.port());
    qs(&mut c, &["SET", "a", "1"]);
    std::fs::remove_dir_all(&gone).unwrap();
    qs(&mut c, &["BGSAVE"]);
    common::wait_until("the BGSAVE to fail", Duration::from_secs(20), || {
        info(&mut c, "rdb_last_bgsave_status") == "err"
    });
    let mut raw = common::connect_raw(s.addr());
    use std::io::Write;
    raw.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n")
        .unwrap();
    assert_eq!(
        common::read_line(&mut raw),
        "-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.\r\n"
    );
    raw.write_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n").unwrap();
    assert_eq!(common::read_line(&mut raw), "$1\r\n");
    common::config_set(&mut c, "stop-writes-on-bgsave-error", "no");
    qs(&mut c, &["SET", "b", "2"]);
    s.shutdown();
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_aof_with_an_rdb_preamble_from_redis_server_loads() {
    let d = common::temp_dir("rdb-preamble");
    let (rp, rport) = redis_server(
        &d,
        &[
            "--appendonly",
            "yes",
            "--aof-use-rdb-preamble",
            "yes",
            "--save",
            "",
        ],
    );
    let mut rc = connect(rport);
    write_every_type(&mut rc);
    qs(&mut rc, &["BGREWRITEAOF"]);
    common::wait_until("redis-server's rewrite", Duration::from_secs(30), || {
        info(&mut rc, "aof_rewrite_in_progress") == "0"
            && info(&mut rc, "aof_rewrite_scheduled") == "0"
            && info(&mut rc, "aof_rewrites") != "0"
    });
    qs(&mut rc, &["SET", "after-rewrite", "1"]);
    let want = dump_all(&mut rc);
    shutdown(rp, &mut rc, &["NOSAVE"]);
    assert!(std::fs::read_dir(d.join("appendonlydir"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".base.rdb")));
    let port = common::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "--port",
            &port.to_string(),
            "--appendonly",
            "yes",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(&d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("herald");
    let p = KillOnDrop(child);
    let mut c = connect(port);
    assert_eq!(dump_all(&mut c), want);
    shutdown(p, &mut c, &["NOSAVE"]);
    let check = common::run(
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("check-aof")
            .arg(&d),
        Duration::from_secs(20),
    );
    assert!(
        check.status.success() && check.stdout.contains("RDB preamble"),
        "{}{}",
        check.stdout,
        check.stderr
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Under an LRU policy a key's idle time is saved (`RDB_OPCODE_IDLE`),
/// under an LFU policy its counter (`RDB_OPCODE_FREQ`); herald and
/// redis-server both restore them.
#[test]
fn idle_times_and_lfu_counters_survive_a_save() {
    for (policy, probe) in [("allkeys-lru", "IDLETIME"), ("allkeys-lfu", "FREQ")] {
        let d = common::temp_dir("rdb-access");
        let flags = ["--save", "", "--maxmemory-policy", policy];
        let (p, port) = herald_bin(&d, &flags);
        let mut c = connect(port);
        qs(&mut c, &["SET", "src", "v"]);
        let payload: Vec<u8> = redis::cmd("DUMP").arg("src").query(&mut c).unwrap();
        let mut restore = redis::cmd("RESTORE");
        restore.arg("k").arg(0).arg(payload);
        if policy == "allkeys-lru" {
            restore.arg("IDLETIME").arg(5000);
        } else {
            restore.arg("FREQ").arg(100);
        }
        let _: () = restore.query(&mut c).unwrap();
        let before: i64 = redis::cmd("OBJECT")
            .arg(probe)
            .arg("k")
            .query(&mut c)
            .unwrap();
        assert!(before >= 100, "{policy}: {before}");
        qs(&mut c, &["SAVE"]);
        shutdown(p, &mut c, &["NOSAVE"]);

        let (p, port) = herald_bin(&d, &flags);
        let mut c = connect(port);
        let after: i64 = redis::cmd("OBJECT")
            .arg(probe)
            .arg("k")
            .query(&mut c)
            .unwrap();
        assert!(
            (after - before).abs() <= 2,
            "{policy}: {before} then {after} in herald"
        );
        shutdown(p, &mut c, &["NOSAVE"]);

        let r = copy_rdb(&d, "rdb-access-redis");
        let (rp, rport) = redis_server(&r, &["--appendonly", "no", "--maxmemory-policy", policy]);
        let mut rc = connect(rport);
        let in_redis: i64 = redis::cmd("OBJECT")
            .arg(probe)
            .arg("k")
            .query(&mut rc)
            .unwrap();
        assert!(
            (in_redis - before).abs() <= 2,
            "{policy}: {before} then {in_redis} in redis-server"
        );
        shutdown(rp, &mut rc, &["NOSAVE"]);
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&r);
    }
}
