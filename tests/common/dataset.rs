//! A data set with every type in every state (TTLs, streams with consumer
//! groups, pending entries and consumers) and a full, comparable dump of
//! a server's keyspace: the persistence tests (AOF and RDB) write one to a
//! server, reload it elsewhere (herald or redis-server) and compare dumps.

/// Runs one command; panics naming it if it fails.
pub fn q(c: &mut redis::Connection, args: &[&[u8]]) -> redis::Value {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| {
        let shown: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        panic!("{shown:?}: {e}")
    })
}

/// `q` with text arguments.
pub fn qs(c: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let b: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    q(c, &b)
}

/// Reply fields that depend on when commands ran, or on the radix tree's
/// shape, rather than on the data.
pub const VOLATILE: [&[u8]; 6] = [
    b"seen-time",
    b"active-time",
    b"idle",
    b"inactive",
    b"radix-tree-keys",
    b"radix-tree-nodes",
];

/// Replaces what depends on when a command ran rather than on the data:
/// consumer seen / active times, idle times, and the radix-tree shape.
pub fn scrub(v: &mut redis::Value) {
    if let redis::Value::Array(items) = v {
        let mut i = 0;
        while i < items.len() {
            let volatile = matches!(&items[i], redis::Value::BulkString(b)
                if VOLATILE.contains(&&b[..]));
            if volatile && i + 1 < items.len() {
                items[i + 1] = redis::Value::Nil;
                i += 2;
                continue;
            }
            scrub(&mut items[i]);
            i += 1;
        }
    }
}

/// Every key of every database with its type, absolute expiry and full
/// contents (streams with their groups, PELs and consumers), as text.
pub fn dump_all(c: &mut redis::Connection) -> Vec<String> {
    let mut out = Vec::new();
    for db in 0..16 {
        qs(c, &["SELECT", &db.to_string()]);
        let mut keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(c).unwrap();
        keys.sort();
        for k in keys {
            let kt = String::from_utf8_lossy(&k).into_owned();
            let t = super::text(&q(c, &[b"TYPE", &k]));
            let at = super::text(&q(c, &[b"PEXPIRETIME", &k]));
            let mut vals: Vec<redis::Value> = Vec::new();
            match t.as_str() {
                "string" => vals.push(q(c, &[b"GET", &k])),
                "list" => vals.push(q(c, &[b"LRANGE", &k, b"0", b"-1"])),
                "set" => {
                    let mut m: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&k).query(c).unwrap();
                    m.sort();
                    vals.push(redis::Value::Array(
                        m.into_iter().map(redis::Value::BulkString).collect(),
                    ));
                }
                "hash" => {
                    let mut m: Vec<(Vec<u8>, Vec<u8>)> =
                        redis::cmd("HGETALL").arg(&k).query(c).unwrap();
                    m.sort();
                    vals.push(redis::Value::Array(
                        m.into_iter()
                            .flat_map(|(f, v)| {
                                [redis::Value::BulkString(f), redis::Value::BulkString(v)]
                            })
                            .collect(),
                    ));
                }
                "zset" => vals.push(q(c, &[b"ZRANGE", &k, b"0", b"-1", b"WITHSCORES"])),
                "stream" => {
                    vals.push(q(c, &[b"XRANGE", &k, b"-", b"+"]));
                    vals.push(q(c, &[b"XINFO", b"STREAM", &k, b"FULL", b"COUNT", b"0"]));
                    let groups = q(c, &[b"XINFO", b"GROUPS", &k]);
                    if let redis::Value::Array(gs) = &groups {
                        for g in gs {
                            if let redis::Value::Array(f) = g {
                                let name = f[1].clone();
                                let redis::Value::BulkString(name) = name else {
                                    continue;
                                };
                                vals.push(q(c, &[b"XINFO", b"CONSUMERS", &k, &name]));
                            }
                        }
                    }
                    vals.push(groups);
                }
                other => panic!("unexpected type {other} of {kt}"),
            }
            for v in &mut vals {
                scrub(v);
            }
            out.push(format!("db{db} {kt:?} {t} expire={at} {vals:?}"));
        }
    }
    qs(c, &["SELECT", "0"]);
    out
}

/// Writes keys of every type, with TTLs, and streams with consumer groups
/// in every state XREADGROUP, XCLAIM, XAUTOCLAIM, XACK, NOACK, SETID,
/// CREATECONSUMER / DELCONSUMER and trimming can leave them in.
pub fn write_every_type(c: &mut redis::Connection) {
    let far = (herald::util::now_ms() / 1000 + 100_000).to_string();
    for args in [
        &["SET", "s", "hello"][..],
        &["APPEND", "s", " world"],
        &["SETRANGE", "s", "0", "J"],
        &["SET", "n", "10"],
        &["INCRBY", "n", "5"],
        &["INCRBYFLOAT", "fl", "3.25"],
        &["SET", "ttl-px", "v", "PX", "500000"],
        &["SET", "ttl-ex", "v", "EX", "1000"],
        &["EXPIRE", "ttl-ex", "2000"],
        &["SET", "ttl-at", "v"],
        &["EXPIREAT", "ttl-at", far.as_str()],
        &["SET", "persisted", "v", "EX", "100"],
        &["PERSIST", "persisted"],
        &["SET", "getex", "v"],
        &["GETEX", "getex", "PX", "700000"],
        &["SET", "gone", "v"],
        &["GETDEL", "gone"],
        &["SET", "old", "v"],
        &["RENAME", "old", "renamed"],
        &["COPY", "renamed", "copied"],
        &["RPUSH", "l", "a", "b", "c", "d", "e"],
        &["LPUSH", "l", "z"],
        &["LPOP", "l"],
        &["RPOP", "l", "1"],
        &["LINSERT", "l", "BEFORE", "c", "x"],
        &["LSET", "l", "0", "first"],
        &["LREM", "l", "1", "b"],
        &["RPUSH", "src", "1", "2", "3"],
        &["LMOVE", "src", "dst", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "src", "dst"],
        &["PEXPIRE", "dst", "900000"],
        &["HSET", "h", "f1", "v1", "f2", "v2", "f3", "v3"],
        &["HINCRBY", "h", "n", "3"],
        &["HINCRBYFLOAT", "h", "fl", "1.5"],
        &["HDEL", "h", "f2"],
        &["HSETNX", "h", "f4", "v4"],
        &["SADD", "set", "a", "b", "c", "d"],
        &["SREM", "set", "d"],
        &["SADD", "pop", "1", "2", "3", "4", "5"],
        &["SPOP", "pop", "2"],
        &["SMOVE", "set", "moved", "a"],
        &["SADD", "i1", "1", "2", "3"],
        &["SADD", "i2", "2", "3", "4"],
        &["SINTERSTORE", "inter", "i1", "i2"],
        &[
            "ZADD", "z", "1", "a", "2", "b", "-inf", "ninf", "+inf", "pinf", "1.5e10", "big",
            "0.1", "c",
        ],
        &["ZINCRBY", "z", "2.5", "a"],
        &["ZREM", "z", "b"],
        &["ZADD", "zp", "1", "a", "2", "b", "3", "c"],
        &["ZPOPMIN", "zp"],
        &["ZRANGESTORE", "zstore", "z", "0", "2"],
        &["MSET", "m1", "1", "m2", "2"],
        &["SELECT", "3"],
        &["SET", "in3", "three"],
        &["RPUSH", "l3", "a"],
        &["SELECT", "0"],
    ] {
        qs(c, args);
    }
    // Binary keys and values.
    q(c, &[b"SET", b"bin\x00\xff\r\n", b"\x00\x01\r\n\xfe"]);
    q(c, &[b"HSET", b"hb", b"\x00", b"\r\n"]);
    // Collections larger than one rewrite batch (64 items).
    let many: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    let mut rpush = vec!["RPUSH", "biglist"];
    let mut sadd = vec!["SADD", "bigset"];
    let mut hset = vec!["HSET", "bighash"];
    let mut zadd = vec!["ZADD", "bigz"];
    let scores: Vec<String> = (0..150).map(|i| format!("{}.5", i)).collect();
    for (m, s) in many.iter().zip(&scores) {
        rpush.push(m);
        sadd.push(m);
        hset.push(m);
        hset.push(s);
        zadd.push(s);
        zadd.push(m);
    }
    for cmd in [&rpush, &sadd, &hset, &zadd] {
        qs(c, cmd);
    }
    // MULTI / EXEC.
    redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("tx")
        .arg(1)
        .cmd("INCR")
        .arg("tx")
        .cmd("RPUSH")
        .arg("txl")
        .arg("a")
        .query::<redis::Value>(c)
        .unwrap();
    // Streams.
    qs(c, &["XADD", "st", "1-1", "f", "v"]);
    for i in 0..12 {
        qs(c, &["XADD", "st", "*", "i", &i.to_string()]);
    }
    let ids: Vec<String> = match qs(c, &["XRANGE", "st", "-", "+"]) {
        redis::Value::Array(es) => es
            .iter()
            .map(|e| match e {
                redis::Value::Array(p) => super::text(&p[0]),
                _ => unreachable!(),
            })
            .collect(),
        v => panic!("{v:?}"),
    };
    for args in [
        &["XDEL", "st", ids[3].as_str()][..],
        &["XGROUP", "CREATE", "st", "g1", "0"],
        &["XGROUP", "CREATE", "st", "g2", "$"],
        &["XGROUP", "CREATE", "st", "g3", "0", "ENTRIESREAD", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "3",
            "STREAMS",
            "st",
            ">",
        ],
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "3",
            "STREAMS",
            "st",
            ">",
        ],
        // History: delivery counts go up.
        &["XREADGROUP", "GROUP", "g1", "alice", "STREAMS", "st", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "st",
            "0",
        ],
        &[
            "XCLAIM",
            "st",
            "g1",
            "carol",
            "0",
            ids[0].as_str(),
            "RETRYCOUNT",
            "5",
        ],
        &[
            "XCLAIM",
            "st",
            "g1",
            "carol",
            "0",
            ids[1].as_str(),
            "IDLE",
            "5000",
        ],
        &["XCLAIM", "st", "g1", "carol", "0", ids[4].as_str()],
        &["XACK", "st", "g1", ids[2].as_str()],
        &["XGROUP", "CREATECONSUMER", "st", "g1", "dave"],
        &["XGROUP", "CREATECONSUMER", "st", "g1", "gone"],
        &["XGROUP", "DELCONSUMER", "st", "g1", "gone"],
        &["XAUTOCLAIM", "st", "g1", "frank", "0", "0-0", "COUNT", "1"],
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "nobody",
            "COUNT",
            "1",
            "STREAMS",
            "st",
            "0",
        ],
        &["XADD", "st", "*", "late", "1"],
        &[
            "XREADGROUP",
            "GROUP",
            "g2",
            "erin",
            "NOACK",
            "STREAMS",
            "st",
            ">",
        ],
        &[
            "XGROUP",
            "SETID",
            "st",
            "g3",
            ids[5].as_str(),
            "ENTRIESREAD",
            "5",
        ],
        &[
            "XREADGROUP",
            "GROUP",
            "g3",
            "gina",
            "COUNT",
            "2",
            "STREAMS",
            "st",
            ">",
        ],
        &["XTRIM", "st", "MAXLEN", "11"],
        // An empty stream made by MKSTREAM (last ID 0-0).
        &["XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM"],
        // A stream emptied by XDEL (last ID and max deleted ID kept).
        &["XADD", "emptied", "5-1", "a", "1"],
        &["XADD", "emptied", "5-2", "a", "2"],
        &["XDEL", "emptied", "5-1", "5-2"],
        &["XADD", "setid", "1-1", "a", "b"],
        &[
            "XSETID",
            "setid",
            "9-9",
            "ENTRIESADDED",
            "20",
            "MAXDELETEDID",
            "3-3",
        ],
    ] {
        qs(c, args);
    }
    // Approximate trimming (logged as exact trims).
    for i in 0..450 {
        qs(
            c,
            &[
                "XADD",
                "capped",
                "MAXLEN",
                "~",
                "120",
                "*",
                "i",
                &i.to_string(),
            ],
        );
    }
    qs(c, &["XTRIM", "capped", "MAXLEN", "~", "30"]);
    for i in 0..250 {
        qs(
            c,
            &[
                "XADD",
                "minid",
                "MINID",
                "~",
                "100",
                &format!("{}-1", i + 1),
                "i",
                "x",
            ],
        );
    }
    qs(c, &["XTRIM", "minid", "MINID", "~", "200", "LIMIT", "150"]);
}
