//! Tests of the configuration module. The fixtures under tests/fixtures/
//! were captured from redis-server 7.0.15 by scripts/gen-config-table.py;
//! these tests replay them against [`Config`].

use super::*;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn fields(line: &str) -> Vec<String> {
    line.split('\t').skip(1).map(unescape).collect()
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn get1(c: &Config, name: &str) -> String {
    c.value(name).unwrap_or_else(|| panic!("no option {name}"))
}

/// A scratch directory for file tests.
fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("herald-config-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_default_parses_to_itself() {
    let cwd = std::env::current_dir().unwrap();
    for def in OPTIONS {
        if matches!(def.kind, Kind::Special(Special::Dir)) {
            continue;
        }
        let v = default_value(def, &cwd);
        assert!(
            !matches!(def.kind, Kind::Num { .. }) || matches!(v, Value::Num(_)),
            "{}",
            def.name
        );
        assert_eq!(display(def, &v), def.default, "default of {}", def.name);
    }
}

#[test]
fn defaults_match_redis_config_get_star() {
    let mut c = Config::default();
    // herald's own defaults; the rest must be Redis's.
    assert_eq!(c.bind, vec!["127.0.0.1", "-::1"]);
    assert_eq!(get1(&c, "bind"), "127.0.0.1 -::1");
    assert_eq!(c.port, 6379);
    assert_eq!(c.io_threads, 0);
    assert_eq!(get1(&c, "save"), "");
    c.bind = vec!["*".into(), "-::*".into()];
    c.set(&[(b"save", b"3600 1 300 100 60 10000")]).unwrap();
    let cwd = std::env::current_dir().unwrap();
    let mut want = Vec::new();
    for line in fixture("config-defaults.txt").lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('\t').unwrap();
        let v = match k {
            "port" => "6379".to_string(),
            "dir" => cwd.to_string_lossy().into_owned(),
            _ => unescape(v),
        };
        want.push((k.to_string(), v));
    }
    let got = c.get(&[b"*"]);
    assert_eq!(got.len(), want.len());
    for ((gk, gv), (wk, wv)) in got.iter().zip(&want) {
        assert_eq!((gk, gv), (wk, wv));
    }
}

#[test]
fn typed_fields_defaults() {
    let c = Config::default();
    assert_eq!(c.proto_max_bulk_len, 512 * 1024 * 1024);
    assert_eq!(c.databases, 16);
    assert_eq!(c.maxclients, 10000);
    assert_eq!(c.timeout, 0);
    assert_eq!(c.tcp_keepalive, 300);
    assert_eq!(c.tcp_backlog, 511);
    assert_eq!(c.client_query_buffer_limit, 1 << 30);
    assert_eq!(c.client_output_buffer_limit.normal, BufferLimit::default());
    assert_eq!(
        c.client_output_buffer_limit.replica,
        BufferLimit {
            hard_bytes: 256 << 20,
            soft_bytes: 64 << 20,
            soft_seconds: 60
        }
    );
    assert_eq!(
        c.client_output_buffer_limit.pubsub,
        BufferLimit {
            hard_bytes: 32 << 20,
            soft_bytes: 8 << 20,
            soft_seconds: 60
        }
    );
    assert_eq!(c.maxmemory, 0);
    assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::NoEviction);
    assert_eq!(c.notify_keyspace_events, "");
    assert_eq!(c.requirepass, "");
    assert_eq!(c.loglevel, LogLevel::Notice);
    assert_eq!(c.logfile, "");
    assert_eq!(c.dir, std::env::current_dir().unwrap());
    // Config::default() is Redis's (appendonly no): what tests and embedders
    // get. The binary's own defaults are checked in
    // `binary_defaults_turn_persistence_on`.
    assert!(!c.appendonly);
    assert_eq!(c.appendfsync, AppendFsync::Everysec);
    assert_eq!(c.hz, 10);
    assert!(c.ignored_options_set().is_empty());
}

/// Replays tests/fixtures/config-set.txt: every CONFIG SET / GET the script
/// sent to redis-server, each block on a fresh Config.
#[test]
fn config_set_and_get_match_redis() {
    let text = fixture("config-set.txt");
    // herald's embedded default `save ""` set back to Redis's.
    let base = || {
        let mut c = Config {
            bind: vec!["*".into(), "-::*".into()],
            ..Config::default()
        };
        c.set(&[(b"save", b"3600 1 300 100 60 10000")]).unwrap();
        c
    };
    let here = std::env::current_dir()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut c = base();
    let mut lines = text.lines().peekable();
    let mut n = 0;
    let mut bad = Vec::new();
    while let Some(line) = lines.next() {
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            c = base();
            continue;
        }
        assert!(line.starts_with('>'), "{line}");
        let cmd = fields(line);
        let reply = lines.next().unwrap();
        // Values herald refuses on purpose (see `support`).
        if cmd.get(2).is_some_and(|o| refused_here(o)) {
            continue;
        }
        let ctx = format!("command {cmd:?}, redis replied {reply:?}");
        n += 1;
        let cmd_b: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
        match cmd[1].as_str() {
            "set" => {
                let got = c.set_args(&cmd_b[2..], false);
                let want = match reply.split('\t').next() {
                    Some("+") => Ok(()),
                    Some("!") => Err(fields(reply)[0].clone()),
                    _ => panic!("bad reply line {reply}"),
                };
                if got != want {
                    bad.push(format!("{ctx}: got {got:?}"));
                }
            }
            "get" if cmd.len() < 3 => {
                assert_eq!(
                    fields(reply),
                    ["ERR wrong number of arguments for 'config|get' command"]
                );
            }
            "get" => {
                let mut want: Vec<(String, String)> = fields(reply)
                    .chunks(2)
                    .map(|p| match p[1].as_str() {
                        "<port>" => (p[0].clone(), "6379".to_string()),
                        "<dir>" => (p[0].clone(), here.clone()),
                        _ => (p[0].clone(), p[1].clone()),
                    })
                    .collect();
                want.sort();
                let mut got = c.get(&cmd_b[2..]);
                got.sort();
                if got != want {
                    bad.push(format!("{ctx}: got {got:?}"));
                }
            }
            other => panic!("unknown command {other}"),
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(n > 1000, "only {n} commands replayed");
}

/// Replays tests/fixtures/config-load.txt: redis-server's start-up errors.
#[test]
fn startup_errors_match_redis() {
    let text = fixture("config-load.txt");
    let mut lines = text.lines().filter(|l| !l.starts_with('#')).peekable();
    let mut n = 0;
    let mut bad = Vec::new();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let mut argv = fields(line);
        if line.starts_with(">\t") {
            argv.extend(args(&["--zzz-herald-probe", "1"]));
        }
        let mut shown = None;
        if lines.peek().is_some_and(|l| l.starts_with('@')) {
            shown = lines.next().map(|l| fields(l)[0].clone());
        }
        let msg = fields(lines.next().unwrap())[0].clone();
        if argv.iter().any(|a| refused_here(a.trim_start_matches('-'))) {
            continue;
        }
        n += 1;
        let err = match Config::from_args(&argv) {
            Ok(_) => {
                bad.push(format!("{argv:?} should fail: {msg}"));
                continue;
            }
            Err(e) => e,
        };
        let shown_ok = shown
            .as_ref()
            .is_none_or(|s| err.0.contains(&format!("\n>>> '{s}'\n")));
        if !shown_ok || !err.0.ends_with(&format!("\n{msg}")) {
            bad.push(format!(
                "{argv:?}: want {shown:?} / {msg:?}, got {:?}",
                err.0
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(n > 500, "only {n} cases replayed");
}

#[test]
fn config_get_patterns() {
    let c = Config::default();
    let keys = |pats: &[&[u8]]| c.get(pats).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        c.get(&[b"port"]),
        vec![("port".to_string(), "6379".to_string())]
    );
    assert_eq!(keys(&[b"PORT"]), ["PORT"]);
    assert_eq!(keys(&[b"port", b"PORT", b"p*rt"]), ["port"]);
    assert_eq!(
        keys(&[b"*max*-entries*"]),
        [
            "hash-max-listpack-entries",
            "hash-max-ziplist-entries",
            "set-max-intset-entries",
            "stream-node-max-entries",
            "zset-max-listpack-entries",
            "zset-max-ziplist-entries"
        ]
    );
    assert_eq!(
        c.get(&[b"bind", b"save"]),
        vec![
            ("bind".to_string(), "127.0.0.1 -::1".to_string()),
            ("save".to_string(), String::new())
        ]
    );
    assert_eq!(keys(&[b"slaveof", b"replicaof"]), ["replicaof", "slaveof"]);
    // Hidden options answer only to their exact name.
    assert_eq!(keys(&[b"key-load-delay"]), ["key-load-delay"]);
    assert!(keys(&[b"key-load-*"]).is_empty());
    assert!(keys(&[b"nosuch"]).is_empty());
    assert_eq!(c.get(&[b"*"]).len(), 192);
}

#[test]
fn config_set_is_all_or_nothing() {
    let mut c = Config::default();
    let e = c.set(&[(b"maxmemory", b"1mb"), (b"maxmemory-policy", b"bad")]);
    assert_eq!(
        e,
        Err("ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) \
             must be one of the following: volatile-lru, volatile-lfu, volatile-random, \
             volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
            .into())
    );
    assert_eq!(c.maxmemory, 0);
    assert_eq!(get1(&c, "maxmemory"), "0");
    c.set(&[
        (b"maxmemory", b"1mb"),
        (b"maxmemory-policy", b"allkeys-lru"),
    ])
    .unwrap();
    assert_eq!(c.maxmemory, 1 << 20);
    assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::AllkeysLru);
    // A failing apply hook leaves everything as it was.
    let e = c.set_with(
        &[(b"port", b"7000"), (b"timeout", b"5")],
        false,
        |old, new| {
            assert_eq!(old.port, 6379);
            assert_eq!(new.port, 7000);
            Err((
                "port".into(),
                "Unable to listen on this port. Check server logs.".into(),
            ))
        },
    );
    assert_eq!(
        e,
        Err(
            "ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on \
             this port. Check server logs."
                .into()
        )
    );
    assert_eq!((c.port, c.timeout), (6379, 0));
}

#[test]
fn config_set_error_texts() {
    let mut c = Config::default();
    let mut err = |a: &[&str]| {
        let a: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
        c.set_args(&a, false).unwrap_err()
    };
    assert_eq!(
        err(&["foo", "bar"]),
        "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
    );
    assert_eq!(
        err(&["port", "x"]),
        "ERR CONFIG SET failed (possibly related to argument 'port') - argument couldn't be parsed into an integer"
    );
    assert_eq!(
        err(&["daemonize", "yes"]),
        "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"
    );
    assert_eq!(
        err(&["appendonly", "maybe"]),
        "ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument must be 'yes' or 'no'"
    );
    assert_eq!(
        err(&["maxmemory", "1x"]),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
    );
    assert_eq!(
        err(&["timeout", "-1"]),
        "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive"
    );
    assert_eq!(
        err(&["loglevel", "loud"]),
        "ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, verbose, notice, warning"
    );
    assert_eq!(
        err(&["timeout", "1", "TIMEOUT", "2"]),
        "ERR CONFIG SET failed (possibly related to argument 'TIMEOUT') - duplicate parameter"
    );
    assert_eq!(
        err(&["dir", "/tmp"]),
        "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"
    );
    assert_eq!(
        err(&["a"]),
        "ERR wrong number of arguments for 'config|set' command"
    );
    assert_eq!(err(&["a", "b", "c"]), "ERR syntax error");
    // An option and its alias are not duplicates; the last one wins.
    c.set(&[(b"slave-priority", b"1"), (b"replica-priority", b"2")])
        .unwrap();
    assert_eq!(get1(&c, "slave-priority"), "2");
}

#[test]
fn typed_fields_follow_config_set_and_back() {
    let mut c = Config::default();
    c.set(&[
        (b"timeout", b"30"),
        (b"tcp-keepalive", b"60"),
        (b"maxclients", b"100"),
        (b"client-query-buffer-limit", b"2mb"),
        (
            b"client-output-buffer-limit",
            b"pubsub 64mb 16mb 90 replica 1gb 0 0",
        ),
        (b"notify-keyspace-events", b"KEA"),
        (b"requirepass", b"s3cret"),
        (b"loglevel", b"WARNING"),
        (b"appendonly", b"yes"),
        (b"appendfsync", b"always"),
        (b"hz", b"1000"),
        (b"proto-max-bulk-len", b"1gb"),
        (b"bind", b"0.0.0.0 ::1"),
    ])
    .unwrap();
    assert_eq!((c.timeout, c.tcp_keepalive, c.maxclients), (30, 60, 100));
    assert_eq!(c.client_query_buffer_limit, 2 << 20);
    assert_eq!(
        c.client_output_buffer_limit.pubsub,
        BufferLimit {
            hard_bytes: 64 << 20,
            soft_bytes: 16 << 20,
            soft_seconds: 90
        }
    );
    assert_eq!(c.client_output_buffer_limit.replica.hard_bytes, 1 << 30);
    assert_eq!(c.notify_keyspace_events, "KEA");
    assert_eq!(get1(&c, "notify-keyspace-events"), "AKE");
    assert_eq!(c.requirepass, "s3cret");
    assert_eq!(c.loglevel, LogLevel::Warning);
    assert!(c.appendonly);
    assert_eq!(c.appendfsync, AppendFsync::Always);
    assert_eq!(c.hz, 500);
    assert_eq!(get1(&c, "hz"), "500");
    assert_eq!(c.proto_max_bulk_len, 1 << 30);
    assert_eq!(c.bind, vec!["0.0.0.0", "::1"]);
    c.set(&[(b"requirepass", b"")]).unwrap();
    assert_eq!(c.requirepass, "");
    // Fields written directly show in CONFIG GET.
    c.port = 0;
    c.maxmemory = 1000;
    assert_eq!(get1(&c, "port"), "0");
    assert_eq!(get1(&c, "maxmemory"), "1000");
    assert!(Config::is_sensitive(b"REQUIREPASS"));
    assert!(!Config::is_sensitive(b"port"));
}

#[test]
fn file_parsing_quotes_comments_and_multi_args() {
    let c = Config::from_config_text(
        "# a comment\n\
         \n\
         \x20  port 7000  \r\n\
         PORT 7001\n\
         requirepass \"a b\\\"c\\x41\"\n\
         logfile 'it''s'\n\
         save 900 1\n\
         save 300 10\n\
         bind 10.0.0.1 -::1\n\
         client-output-buffer-limit pubsub 32mb 8mb 60\n\
         client-output-buffer-limit normal 1mb 0 0\n\
         slaveof 127.0.0.1 6380\n\
         hash-max-ziplist-entries 7\n\
         rename-command FLUSHALL \"\"\n\
         list-max-ziplist-entries 512\n\
         maxmemory 1gb\n",
    );
    // `'it''s'`: a closing quote must be followed by a space.
    let e = c.unwrap_err();
    assert!(
        e.0.contains("at line 6\n>>> 'logfile 'it''s''\nUnbalanced quotes in configuration line"),
        "{}",
        e.0
    );

    let c = Config::from_config_text(
        "# a comment\n\
         \n\
         \x20  port 7000  \r\n\
         PORT 7001\n\
         requirepass \"a b\\\"c\\x41\"\n\
         save 900 1\n\
         save 300 10\n\
         bind 10.0.0.1 -::1\n\
         client-output-buffer-limit pubsub 32mb 8mb 60\n\
         client-output-buffer-limit normal 1mb 0 0\n\
         hash-max-ziplist-entries 7\n\
         rename-command FLUSHALL \"\"\n\
         list-max-ziplist-entries 512\n\
         daemonize no\n\
         appendonly yes\n\
         maxmemory 1gb\n",
    )
    .unwrap();
    assert_eq!(c.port, 7001);
    assert_eq!(c.requirepass, "a b\"cA");
    assert_eq!(get1(&c, "save"), "900 1 300 10");
    assert_eq!(c.bind, vec!["10.0.0.1", "-::1"]);
    assert_eq!(c.client_output_buffer_limit.normal.hard_bytes, 1 << 20);
    assert_eq!(c.client_output_buffer_limit.pubsub.soft_bytes, 8 << 20);
    assert_eq!(get1(&c, "hash-max-listpack-entries"), "7");
    assert_eq!(
        c.rename_commands,
        vec![("FLUSHALL".to_string(), String::new())]
    );
    assert_eq!(c.maxmemory, 1 << 30);
    assert_eq!(
        c.ignored_options_set(),
        ["list-max-ziplist-entries", "daemonize"]
    );
}

#[test]
fn file_errors_name_file_line_and_option() {
    let d = temp_dir("errors");
    let f = d.join("bad.conf");
    std::fs::write(&f, "port 7000\n\n  maxmemory 1zb\n").unwrap();
    let e = Config::from_args(&args(&[f.to_str().unwrap()])).unwrap_err();
    assert_eq!(
        e.0,
        format!(
            "*** FATAL CONFIG FILE ERROR (herald {}) ***\nReading the configuration file '{}', at \
             line 3\n>>> 'maxmemory 1zb'\nargument must be a memory value",
            env!("CARGO_PKG_VERSION"),
            f.display()
        )
    );
    std::fs::write(&f, "nosuchoption 1\n").unwrap();
    let e = Config::from_args(&args(&[f.to_str().unwrap()])).unwrap_err();
    assert!(e
        .0
        .ends_with("at line 1\n>>> 'nosuchoption 1'\nBad directive or wrong number of arguments"));
    let e = Config::from_args(&args(&["/nonexistent/herald.conf"])).unwrap_err();
    assert_eq!(
        e.0,
        "Fatal error, can't open config file '/nonexistent/herald.conf': No such file or directory"
    );
    // (Redis's "replicaof directive not allowed in cluster mode" comes
    // after: herald refuses cluster mode itself.)
    let e = Config::from_config_text("cluster-enabled yes\nreplicaof 10.0.0.1 6379\n").unwrap_err();
    assert!(e.0.ends_with("herald has no cluster mode"), "{}", e.0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn include_files_and_globs() {
    let d = temp_dir("include");
    std::fs::create_dir_all(d.join("conf.d")).unwrap();
    std::fs::write(d.join("conf.d/10-a.conf"), "timeout 10\nmaxclients 10\n").unwrap();
    std::fs::write(d.join("conf.d/20-b.conf"), "timeout 20\n").unwrap();
    std::fs::write(d.join("conf.d/.hidden.conf"), "timeout 99\n").unwrap();
    std::fs::write(d.join("base.conf"), "hz 20\n").unwrap();
    std::fs::write(d.join("bad.conf"), "hz 20\nhz x\n").unwrap();
    std::fs::write(
        d.join("main.conf"),
        format!(
            "include {}/base.conf\ninclude {}/conf.d/*.conf\ninclude {}/empty.d/*.conf\ntcp-keepalive 5\n",
            d.display(),
            d.display(),
            d.display()
        ),
    )
    .unwrap();
    let c = Config::from_args(&args(&[d.join("main.conf").to_str().unwrap()])).unwrap();
    assert_eq!(
        (c.hz, c.timeout, c.maxclients, c.tcp_keepalive),
        (20, 20, 10, 5)
    );
    assert_eq!(c.config_file.as_deref(), d.join("main.conf").to_str());
    // A relative include is taken from `dir` (Redis's working directory).
    std::fs::write(
        d.join("rel.conf"),
        format!("dir {}\ninclude base.conf\n", d.display()),
    )
    .unwrap();
    let c = Config::from_args(&args(&[d.join("rel.conf").to_str().unwrap()])).unwrap();
    assert_eq!(c.hz, 20);
    // Errors inside an included file name that file.
    std::fs::write(
        d.join("inc-bad.conf"),
        format!("include {}/bad.conf\n", d.display()),
    )
    .unwrap();
    let e = Config::from_args(&args(&[d.join("inc-bad.conf").to_str().unwrap()])).unwrap_err();
    assert!(
        e.0.contains(&format!(
            "'{}', at line 2\n>>> 'hz x'",
            d.join("bad.conf").display()
        )),
        "{}",
        e.0
    );
    // A file including itself stops.
    std::fs::write(d.join("loop.conf"), "include loop.conf\n").unwrap();
    std::fs::write(
        d.join("loop-main.conf"),
        format!("dir {}\ninclude loop.conf\n", d.display()),
    )
    .unwrap();
    let e = Config::from_args(&args(&[d.join("loop-main.conf").to_str().unwrap()])).unwrap_err();
    assert!(e.0.contains("include nesting too deep"), "{}", e.0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn command_line_precedence() {
    let d = temp_dir("cli");
    let f = d.join("herald.conf");
    std::fs::write(&f, "port 7000\ntimeout 5\nsave 900 1\n").unwrap();
    let fs = f.to_str().unwrap();
    let c = Config::from_args(&args(&["--port", "7000"])).unwrap();
    assert_eq!(c.port, 7000);
    let c = Config::from_args(&args(&[fs, "--port", "7001"])).unwrap();
    assert_eq!((c.port, c.timeout), (7001, 5));
    let c = Config::from_args(&args(&[fs, "--port", "7001", "--port", "7002"])).unwrap();
    assert_eq!(c.port, 7002);
    // As in Redis, `save` lines add up across the file and the flags.
    let c = Config::from_args(&args(&[fs, "--save", "60", "2"])).unwrap();
    assert_eq!(get1(&c, "save"), "900 1 60 2");
    let c = Config::from_args(&args(&["--save", "--port", "7003"])).unwrap();
    assert_eq!((get1(&c, "save").as_str(), c.port), ("", 7003));
    let c = Config::from_args(&args(&["--save"])).unwrap();
    assert_eq!(get1(&c, "save"), "");
    // Name and value in one argument; several values; a value like a flag.
    let c = Config::from_args(&args(&[
        "--port 7004",
        "--bind",
        "10.0.0.1",
        "::1",
        "--requirepass",
        "--x",
    ]))
    .unwrap();
    assert_eq!(c.port, 7004);
    assert_eq!(c.bind, vec!["10.0.0.1", "::1"]);
    assert_eq!(c.requirepass, "--x");
    let e = Config::from_args(&args(&["--port", "abc"])).unwrap_err();
    assert!(e.0.contains("command line options, at option 1\n>>> 'port \"abc\"'\nargument couldn't be parsed into an integer"), "{}", e.0);
    let e = Config::from_args(&args(&["--nosuch", "1"])).unwrap_err();
    assert!(
        e.0.ends_with(">>> 'nosuch \"1\"'\nBad directive or wrong number of arguments"),
        "{}",
        e.0
    );
    let e = Config::from_args(&args(&["-", "--port", "1"])).unwrap_err();
    assert!(e.0.contains("standard input"));
    let e = Config::from_args(&args(&["--version"])).unwrap_err();
    assert!(e.0.ends_with("Bad directive or wrong number of arguments"));
    let c = Config::from_args(&args(&[fs, "--daemonize", "no", "--port", "1"])).unwrap();
    assert_eq!(c.ignored_options_set(), ["daemonize"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn dir_is_checked_and_made_absolute() {
    let d = temp_dir("dir");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    let c = Config::from_config_text(&format!("dir {}\ndir sub\n", d.display())).unwrap();
    assert_eq!(c.dir, std::fs::canonicalize(d.join("sub")).unwrap());
    let e = Config::from_config_text(&format!("dir {}/nope\n", d.display())).unwrap_err();
    assert!(e.0.ends_with("\nNo such file or directory"), "{}", e.0);
    let mut c = Config::from_config_text("enable-protected-configs yes\n").unwrap();
    c.set(&[(b"dir", d.to_str().unwrap().as_bytes())]).unwrap();
    assert_eq!(c.dir, std::fs::canonicalize(&d).unwrap());
    let e = c.set(&[(b"dir", b"/nonexistent-herald")]).unwrap_err();
    assert_eq!(
        e,
        "ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory"
    );
    let mut c = Config::from_config_text("enable-protected-configs local\n").unwrap();
    assert!(c.set_args(&[b"dbfilename", b"x.rdb"], false).is_err());
    c.set_args(&[b"dbfilename", b"x.rdb"], true).unwrap();
    assert_eq!(get1(&c, "dbfilename"), "x.rdb");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn debian_redis_conf_loads() {
    let path = "/etc/redis/redis.conf";
    if std::fs::metadata(path).is_err() || std::fs::read(path).is_err() {
        eprintln!("skipped: {path} is not readable here");
        return;
    }
    // Debian's file points `dir` at /var/lib/redis; take it from wherever
    // it is, or from a stand-in when that directory does not exist.
    // It daemonizes, which herald refuses; as run by Debian's systemd
    // unit (`--daemonize no`) it loads.
    let text = std::fs::read_to_string(path).unwrap();
    let e = Config::from_config_text(&text).unwrap_err();
    assert!(e.0.contains(">>> 'daemonize yes'\n"), "{}", e.0);
    let text = text.replace("\ndaemonize yes", "\ndaemonize no");
    let c = if Path::new("/var/lib/redis").is_dir() {
        Config::from_config_text(&text).unwrap()
    } else {
        let text = text.replace("\ndir /var/lib/redis", "\ndir /");
        Config::from_config_text(&text).unwrap()
    };
    assert_eq!(c.bind, vec!["127.0.0.1", "-::1"]);
    assert_eq!(c.port, 6379);
    assert_eq!(c.logfile, "/var/log/redis/redis-server.log");
    assert_eq!(get1(&c, "pidfile"), "/run/redis/redis-server.pid");
    let ignored = c.ignored_options_set();
    assert!(!ignored.contains(&"pidfile".to_string()), "{ignored:?}");
    assert!(!ignored.contains(&"port".to_string()), "{ignored:?}");
}

#[test]
fn numbers_parse_as_redis() {
    use value::{memtoull, strtoll};
    assert_eq!(memtoull(b"1k"), Some(1000));
    assert_eq!(memtoull(b"1KB"), Some(1024));
    assert_eq!(memtoull(b"1m"), Some(1_000_000));
    assert_eq!(memtoull(b"1mb"), Some(1 << 20));
    assert_eq!(memtoull(b"1g"), Some(1_000_000_000));
    assert_eq!(memtoull(b"1Gb"), Some(1 << 30));
    assert_eq!(memtoull(b"5b"), Some(5));
    assert_eq!(memtoull(b""), Some(0));
    assert_eq!(memtoull(b"99999999999999999999999"), Some(u64::MAX));
    assert_eq!(memtoull(b"17179869184gb"), Some(0));
    assert_eq!(memtoull(b"-1"), None);
    assert_eq!(memtoull(b"1.5k"), None);
    assert_eq!(strtoll(b" +12x", 10), (12, 4, false));
    assert_eq!(strtoll(b"", 10), (0, 0, false));
    assert_eq!(strtoll(b"-", 10), (0, 0, false));
    assert_eq!(strtoll(b"777", 8), (511, 3, false));
    assert_eq!(strtoll(b"99999999999999999999", 10), (i64::MAX, 20, true));
    assert_eq!(strtoll(b"-99999999999999999999", 10), (i64::MIN, 21, true));
}

/// Issue 7: the `herald` binary (Config::from_args) differs from Redis on
/// purpose: `appendonly yes` in `./herald-data`, unless the file or the
/// command line says otherwise. Everything else stays Redis's.
#[test]
fn binary_defaults_turn_persistence_on() {
    let cwd = std::env::current_dir().unwrap();
    let c = Config::from_args(&[]).unwrap();
    assert!(c.appendonly);
    assert_eq!(get1(&c, "appendonly"), "yes");
    assert_eq!(c.dir, cwd.join("herald-data"));
    assert_eq!(c.appendfsync, AppendFsync::Everysec);
    assert_eq!(get1(&c, "save"), "3600 1 300 100 60 10000");
    assert!(c.ignored_options_set().is_empty());
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let c = Config::from_args(&args(&["--appendonly", "no", "--dir", "/tmp"])).unwrap();
    assert!(!c.appendonly);
    assert_eq!(c.dir, std::path::PathBuf::from("/tmp"));
    let c = Config::from_args(&args(&["--save", ""])).unwrap();
    assert_eq!(get1(&c, "save"), "");
}

#[test]
fn multi_argument_option_given_as_one_argument_is_split() {
    let args: Vec<String> = [
        "--client-output-buffer-limit",
        "pubsub 1mb 512kb 10",
        "--save",
        "900 1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let c = Config::from_args(&args).expect("loads");
    assert_eq!(c.client_output_buffer_limit.pubsub.hard_bytes, 1024 * 1024);
    assert_eq!(c.client_output_buffer_limit.pubsub.soft_seconds, 10);
    assert_eq!(c.value("save").as_deref(), Some("900 1"));
}

/// Options whose values herald may refuse (see `support`): the fixtures
/// from redis-server are not replayed for them.
fn refused_here(option: &str) -> bool {
    super::support::REFUSABLE
        .iter()
        .any(|r| r.eq_ignore_ascii_case(option))
}

#[test]
fn values_without_their_effect_are_refused_defaults_are_not() {
    for line in [
        "daemonize yes",
        "supervised systemd",
        "cluster-enabled yes",
        "syslog-enabled yes",
        "maxmemory-clients 10%",
        "tls-protocols TLSv1.2",
        "loadmodule /x.so",
    ] {
        let e = Config::from_config_text(line).unwrap_err();
        assert!(
            e.0.contains(&format!(">>> '{line}'\n")) || line.starts_with("save"),
            "{line}: {}",
            e.0
        );
        assert!(
            e.0.contains("not supported") || e.0.contains("cannot load"),
            "{line}: {}",
            e.0
        );
    }
    let ok = "daemonize no\nsupervised no\ncluster-enabled no\nsyslog-enabled no\n\
              maxmemory-clients 0\nunixsocket \"\"\nsave \"\"\nappendonly no\n";
    Config::from_config_text(ok).unwrap();
    Config::from_config_text("appendonly yes\nsave 900 1\n").unwrap();
    let mut c = Config::from_config_text("").unwrap();
    let e = c.set(&[(b"maxmemory-clients", b"1mb")]).unwrap_err();
    assert!(e.starts_with("ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - 'maxmemory-clients 1048576' is not supported"), "{e}");
    c.set(&[(b"save", b"900 1")]).unwrap();
    c.set(&[(b"appendonly", b"yes"), (b"save", b"900 1")])
        .unwrap();
}

/// docs/configuration.md says which options herald acts on; the start-up
/// log's "accepted but not used" list comes from `Flag::HERALD`: both must
/// agree, row for row.
#[test]
fn documented_statuses_match_the_table() {
    let doc = include_str!("../../docs/configuration.md");
    let mut seen = 0;
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].split('`').nth(1).unwrap_or("");
        let status = cells[2];
        let Some((idx, _)) = lookup(name.as_bytes()) else {
            panic!("docs/configuration.md names an unknown option {name}");
        };
        let herald = OPTIONS[idx].has(Flag::HERALD);
        match status {
            "implemented" => assert!(herald, "{name} is documented as implemented"),
            "accepted, no effect" => assert!(!herald, "{name} is documented as without effect"),
            _ => {}
        }
        seen += 1;
    }
    assert_eq!(seen, OPTIONS.len(), "one row per option");
}

// CONFIG REWRITE's text transformation. The expected texts are what
// redis-server 7.0.15 wrote for the same old file and settings (its
// appended lines come in a random order; herald's in table order).

/// The users line redis-server writes for its untouched default user.
const DEFAULT_USER: &str = "user default on nopass ~* &* +@all";

fn live_default() -> Live {
    Live {
        users: vec![DEFAULT_USER.as_bytes().to_vec()],
        primary: None,
    }
}

/// A configuration loaded from `text`, with Redis's `bind` default (so
/// that no `bind` line is written) and a fixed `dir`.
fn rw_config(text: &str) -> Config {
    let mut c = Config::from_config_text(text).unwrap();
    if !text.contains("bind ") {
        c.bind = vec!["*".into(), "-::*".into()];
    }
    c.dir = PathBuf::from("/data");
    c
}

fn rewrite(old: &str, c: &Config, live: &Live) -> String {
    String::from_utf8(c.rewrite_text(old.as_bytes(), live, false)).unwrap()
}

/// What every rewrite of an otherwise default configuration appends.
const ALWAYS: &str = "dir \"/data\"\n\
                      latency-tracking-info-percentiles 50 99 99.9\n\
                      save \"\"\n";

#[test]
fn rewrite_keeps_comments_and_replaces_options_in_place() {
    let old = "# top comment\nPORT 7000\n\n\n   # indented   \nmaxmemory 100mb\nmaxmemory 200mb\n\
               timeout 0\ntimeout 0\ninclude /etc/x.conf\nrename-command FLUSHDB \"\"\nloglevel notice";
    let mut c = rw_config("port 7000\nmaxmemory 200mb\nrename-command FLUSHDB \"\"\n");
    c.set(&[(b"maxmemory", b"3gb"), (b"hz", b"20")]).unwrap();
    let want = format!(
        "# top comment\nport 7000\n\n# indented\nmaxmemory 3gb\n\ntimeout 0\n\n\
         include /etc/x.conf\nrename-command FLUSHDB \"\"\nloglevel notice\n\
         # Generated by CONFIG REWRITE\n{}hz 20\n{}{DEFAULT_USER}\n",
        "dir \"/data\"\n", "latency-tracking-info-percentiles 50 99 99.9\nsave \"\"\n"
    );
    assert_eq!(rewrite(old, &c, &live_default()), want);
}

#[test]
fn rewrite_appends_the_signature_once_and_is_stable() {
    let mut c = rw_config("port 7000\n");
    c.set(&[(b"maxmemory", b"1025")]).unwrap();
    let first = rewrite("port 7000\n", &c, &live_default());
    assert_eq!(
        first,
        format!(
            "port 7000\n\n# Generated by CONFIG REWRITE\n{}maxmemory 1025\n{}{DEFAULT_USER}\n",
            "dir \"/data\"\nlatency-tracking-info-percentiles 50 99 99.9\n", "save \"\"\n"
        )
    );
    // A second rewrite finds every line in place; the file's last newline
    // leaves one blank line at the end, as in Redis.
    let second = rewrite(&first, &c, &live_default());
    assert_eq!(second, format!("{first}\n"));
    assert_eq!(rewrite(&second, &c, &live_default()), second);
    assert_eq!(second.matches(rewrite::SIGNATURE).count(), 1);
}

#[test]
fn rewrite_does_not_append_defaults_but_keeps_their_lines() {
    let c = rw_config("logfile \"\"\ntimeout 0\n");
    let out = rewrite("logfile \"\"\ntimeout 0", &c, &Live::default());
    assert_eq!(
        out,
        format!("logfile \"\"\ntimeout 0\n# Generated by CONFIG REWRITE\n{ALWAYS}")
    );
    // From no file at all.
    assert_eq!(
        rewrite("", &c, &Live::default()),
        format!("# Generated by CONFIG REWRITE\n{ALWAYS}")
    );
}

#[test]
fn rewrite_quotes_strings_as_sdscatrepr() {
    let mut c = rw_config("dbfilename \"my dump.rdb\"\n");
    c.set(&[
        (b"requirepass", b"a b\"c\n"),
        (b"notify-keyspace-events", b"KEA"),
    ])
    .unwrap();
    let out = rewrite(
        "requirepass old\nnotify-keyspace-events \"\"\n",
        &c,
        &Live::default(),
    );
    assert!(
        out.starts_with("requirepass \"a b\\\"c\\n\"\nnotify-keyspace-events \"AKE\"\n"),
        "{out}"
    );
    assert!(out.contains("\ndbfilename \"my dump.rdb\"\n"), "{out}");
    // An empty requirepass is no password: its line goes.
    let c = rw_config("");
    let out = rewrite("requirepass old\nport 6379\n", &c, &Live::default());
    assert!(out.starts_with("\nport 6379\n"), "{out}");
}

#[test]
fn rewrite_writes_save_points_one_per_line() {
    let old = "save 900 1\nsave 300 10\nsave 60 10000\nport 6379\n";
    let mut c = rw_config(old);
    c.set(&[(b"save", b"3600 5")]).unwrap();
    let out = rewrite(old, &c, &Live::default());
    assert!(out.starts_with("save 3600 5\n\nport 6379\n"), "{out}");
    c.set(&[(b"save", b"")]).unwrap();
    let out = rewrite(old, &c, &Live::default());
    assert!(out.starts_with("save \"\"\n\nport 6379\n"), "{out}");
    c.set(&[(b"save", b"10 1 20 2")]).unwrap();
    let out = rewrite("port 6379\n", &c, &Live::default());
    assert!(out.ends_with("save 10 1\nsave 20 2\n"), "{out}");
}

#[test]
fn rewrite_writes_client_output_buffer_limit_per_class() {
    let old = "client-output-buffer-limit normal 0 0 0 slave 1 1 1\n\
               client-output-buffer-limit slave 256mb 64mb 60\n";
    let mut c = rw_config(old);
    let out = rewrite(old, &c, &Live::default());
    assert!(
        out.starts_with(
            "client-output-buffer-limit normal 0 0 0\n\
             client-output-buffer-limit replica 256mb 64mb 60\n\n# Generated"
        ),
        "{out}"
    );
    c.set(&[(b"client-output-buffer-limit", b"pubsub 1mb 2000 0")])
        .unwrap();
    let out = rewrite("", &c, &Live::default());
    assert!(
        out.contains("client-output-buffer-limit pubsub 1mb 2000 0\ndir"),
        "{out}"
    );
    assert!(!out.contains("normal"), "{out}");
}

#[test]
fn rewrite_names_options_by_their_main_name() {
    let old = "slaveof 10.0.0.1 6380\nSlave-Read-Only no\nhash-max-ziplist-value 32\n\
               LUA-TIME-LIMIT 6000\nslave-priority 5\n";
    let mut c = rw_config(
        "Slave-Read-Only no\nhash-max-ziplist-value 32\nLUA-TIME-LIMIT 6000\nslave-priority 5\n",
    );
    let live = Live {
        users: Vec::new(),
        primary: Some(("10.0.0.1".into(), 6380)),
    };
    let out = rewrite(old, &c, &live);
    assert!(
        out.starts_with(
            "replicaof 10.0.0.1 6380\nreplica-read-only no\nhash-max-listpack-value 32\n\
             busy-reply-threshold 6000\nreplica-priority 5\n"
        ),
        "{out}"
    );
    // A primary: the replicaof line goes.
    c.set(&[(b"replica-priority", b"100")]).unwrap();
    let out = rewrite(old, &c, &Live::default());
    assert!(out.starts_with("\nreplica-read-only no\n"), "{out}");
    assert!(out.contains("\nreplica-priority 100\n"), "{out}");
    // A replica whose file has no replicaof line gets one.
    let out = rewrite("", &c, &live);
    assert!(out.contains("\nreplicaof 10.0.0.1 6380\n"), "{out}");
}

#[test]
fn rewrite_comments_out_unknown_lines_and_keeps_directives() {
    let old = "foo bar\nbaz \"unbalanced\nlist-max-ziplist-entries 512\nmymod.cfg 1\n\
               include /x.conf\nrename-command GET g2\nsentinel monitor x\nloadmodule /x.so\n\
               user alice on nopass ~* +@all\nuser bob off\n";
    let c = rw_config("");
    let live = Live {
        users: vec![
            b"user alice on nopass ~* +@all".to_vec(),
            DEFAULT_USER.into(),
        ],
        primary: None,
    };
    let out = rewrite(old, &c, &live);
    assert_eq!(
        out,
        format!(
            "# ??? foo bar\n# ??? baz \"unbalanced\n# ??? list-max-ziplist-entries 512\n\
             # ??? mymod.cfg 1\ninclude /x.conf\nrename-command GET g2\nsentinel monitor x\n\n\
             user alice on nopass ~* +@all\n{DEFAULT_USER}\n\n# Generated by CONFIG REWRITE\n{ALWAYS}"
        )
    );
    // With an ACL file the users live there: their lines go.
    let c = rw_config("aclfile users.acl\n");
    let out = rewrite("user bob off\nport 6379\n", &c, &live);
    assert!(out.starts_with("\nport 6379\n"), "{out}");
    assert!(!out.contains("user "), "{out}");
}

#[test]
fn rewrite_formats_numbers_as_redis() {
    let mut c = rw_config("unixsocketperm 700\n");
    c.set(&[(b"maxmemory", b"1048576")]).unwrap();
    c.set(&[(b"proto-max-bulk-len", b"2000000")]).unwrap();
    c.set(&[(b"oom-score-adj-values", b"1 200 800")]).unwrap();
    c.set(&[(b"shutdown-on-sigint", b"nosave now")]).unwrap();
    c.set(&[(b"latency-tracking-info-percentiles", b"99.99 50")])
        .unwrap();
    let out = rewrite("", &c, &Live::default());
    for want in [
        "\nmaxmemory 1mb\n",
        "\nproto-max-bulk-len 2000000\n",
        "\noom-score-adj-values 1 200 800\n",
        "\nshutdown-on-sigint nosave now\n",
        "\nlatency-tracking-info-percentiles 99.99 50\n",
        "\nunixsocketperm 700\n",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    c.set(&[(b"latency-tracking-info-percentiles", b"")])
        .unwrap();
    let out = rewrite("", &c, &Live::default());
    assert!(
        out.contains("\nlatency-tracking-info-percentiles \"\"\n"),
        "{out}"
    );
}

#[test]
fn rewrite_writes_bind_unless_it_is_redis_s_default() {
    let c = rw_config("bind 127.0.0.1 -::1\n");
    let out = rewrite("bind 1.2.3.4\n", &c, &Live::default());
    assert!(out.starts_with("bind 127.0.0.1 -::1\n"), "{out}");
    let c = rw_config("");
    let out = rewrite("bind 1.2.3.4\nport 6379\n", &c, &Live::default());
    assert!(out.starts_with("\nport 6379\n"), "{out}");
}

#[test]
fn force_all_writes_every_option() {
    let c = rw_config("");
    let out = String::from_utf8(c.rewrite_text(b"", &Live::default(), true)).unwrap();
    for want in [
        "\nport 6379\n",
        "\nhz 10\n",
        "\nmaxmemory 0\n",
        "\nappendonly no\n",
        "\nclient-output-buffer-limit normal 0 0 0\n",
        "\nlogfile \"\"\n",
        "\nnotify-keyspace-events \"\"\n",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    for absent in ["requirepass", "replicaof", "bind", "unixsocket ", "pidfile"] {
        assert!(!out.contains(absent), "{absent} in {out}");
    }
}

#[test]
fn options_unset_when_empty_exist() {
    for name in rewrite::empty_is_unset_names() {
        assert!(lookup(name.as_bytes()).is_some(), "{name}");
    }
}

#[test]
fn overwrite_replaces_the_file_and_leaves_no_temporary() {
    let dir = std::env::temp_dir().join(format!("herald-rewrite-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("redis.conf");
    std::fs::write(&path, "port 1\n").unwrap();
    rewrite::overwrite_file(&path, b"port 2\n").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"port 2\n");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    assert!(rewrite::overwrite_file(&dir.join("no/such/dir.conf"), b"x").is_err());
    assert_eq!(
        rewrite::read_old_file(&dir.join("absent.conf")).unwrap(),
        b""
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
