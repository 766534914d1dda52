#!/usr/bin/env python3
"""Generate herald's configuration option table, and its test fixtures, from a
real redis-server (7.0.x).

Usage:
    python3 scripts/gen-config-table.py [--root DIR] [--redis-server PATH]

What it does (nothing here is typed in by hand except the few facts listed in
the constants below, each taken from Redis's src/config.c):

1. Starts a throwaway redis-server on a free port, in a temporary directory,
   with nothing but `--port` on its command line, and reads `CONFIG GET *`
   (every option's name and default) plus the hidden options by exact name.
2. Classifies every option by asking the server:
   - `CONFIG SET name <its current value>` answers OK (mutable),
     "can't set immutable config" or "can't set protected config";
   - a bad value's error text gives the type: yes/no, integer, memory size,
     memory-or-percent, octal, enum (with its values), or string;
   - an out-of-range value's error text gives the bounds;
   - immutable options are probed the same way by starting redis-server with
     `--name value --zzz-herald-probe 1` and reading its fatal error.
3. Writes:
   - src/config/table.rs             the Rust option table;
   - tests/fixtures/config-defaults.txt  `CONFIG GET *` of the fresh server;
   - tests/fixtures/config-set.txt   a transcript of CONFIG SET / GET probes
                                     and the server's replies;
   - tests/fixtures/config-load.txt  start-up errors for bad `--name value`.

The unit tests in src/config.rs replay the fixtures against herald's Config.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# --- facts from Redis's src/config.c that probing cannot reveal -------------

# Options with their own parse/print functions (createSpecialConfig).
SPECIAL = {
    "dir": "Dir",
    "save": "Save",
    "client-output-buffer-limit": "ClientOutputBufferLimit",
    "oom-score-adj-values": "OomScoreAdjValues",
    "notify-keyspace-events": "NotifyKeyspaceEvents",
    "bind": "Bind",
    "replicaof": "ReplicaOf",
    "latency-tracking-info-percentiles": "LatencyTrackingInfoPercentiles",
}
# Options flagged HIDDEN_CONFIG: shown by CONFIG GET only when named exactly.
HIDDEN = [
    "use-exit-on-panic",
    "rdb-key-save-delay",
    "key-load-delay",
    "watchdog-period",
    "loading-process-events-interval-bytes",
]
# Options flagged SENSITIVE_CONFIG (redacted from logs / slowlog / MONITOR).
SENSITIVE = {"masteruser", "masterauth", "requirepass"}
# Numeric options stored in an unsigned C type (createUIntConfig,
# createULongLongConfig, createSizeTConfig): their bounds are checked unsigned.
UNSIGNED = {
    "maxclients", "unixsocketperm", "maxmemory", "cluster-link-sendbuf-limit",
    "hash-max-listpack-entries", "set-max-intset-entries",
    "zset-max-listpack-entries", "active-defrag-ignore-bytes",
    "hash-max-listpack-value", "stream-node-max-bytes",
    "zset-max-listpack-value", "hll-sparse-max-bytes",
    "tracking-table-max-keys", "client-query-buffer-limit", "socket-mark-id",
}
# Enums that take several flags at once (MULTI_ARG_CONFIG enums), with the
# flag bits of each name, and their validity check.
BITFLAG_ENUMS = {
    "shutdown-on-sigint": ([("default", 0), ("save", 1), ("nosave", 2), ("now", 4), ("force", 8)], "ShutdownFlags"),
    "shutdown-on-sigterm": ([("default", 0), ("save", 1), ("nosave", 2), ("now", 4), ("force", 8)], "ShutdownFlags"),
}
# String options with a validity check (is_valid_fn).
STRING_CHECKS = {
    "dbfilename": "DbFilename",
    "appendfilename": "AofFilename",
    "appenddirname": "AofDirname",
    "cluster-announce-hostname": "Hostname",
    "proc-title-template": "ProcTitle",
}
# Names whose alias differs by more than slave/replica or ziplist/listpack.
ALIAS_EXTRA = {"lua-time-limit": "busy-reply-threshold"}

# --- herald's own choices ---------------------------------------------------

# Options herald acts on (they have a typed field in Config). Every other
# option is accepted, stored and shown, and reported as "accepted but ignored".
HERALD_USES = {
    "bind", "port", "proto-max-bulk-len", "databases", "io-threads",
    "maxclients", "timeout", "tcp-keepalive", "tcp-backlog",
    "client-query-buffer-limit", "client-output-buffer-limit", "maxmemory",
    "maxmemory-policy", "notify-keyspace-events", "requirepass", "loglevel",
    "logfile", "pidfile", "dir", "appendonly", "appendfsync", "hz",
    # persistence (src/persist)
    "appenddirname", "appendfilename", "aof-load-truncated",
    "auto-aof-rewrite-min-size", "auto-aof-rewrite-percentage",
    # RDB files (src/persist/save.rs): read through Config::value
    "save", "dbfilename", "rdbcompression", "rdbchecksum",
    "stop-writes-on-bgsave-error", "shutdown-on-sigint", "shutdown-on-sigterm",
    # operations (src/observe, src/engine/evict.rs): read through Config::value
    "slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold",
    "maxmemory-samples", "maxmemory-eviction-tenacity", "lfu-log-factor",
    "lfu-decay-time",
    # lazy free (src/engine/lazyfree.rs): read through Config::value
    "lazyfree-lazy-eviction", "lazyfree-lazy-user-del", "lazyfree-lazy-user-flush",
    # scripting (src/scripting): read through Config::value
    "busy-reply-threshold",
    # security (src/acl, src/net/transport.rs): read through Config::value
    "acl-pubsub-default", "aclfile", "acllog-max-len", "protected-mode",
    "tls-port", "tls-cert-file", "tls-key-file", "tls-ca-cert-file",
    "tls-auth-clients",
    # the Unix socket (src/net/listener.rs): read through Config::value
    "unixsocket", "unixsocketperm",
}

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
U64_MAX = 2**64 - 1
PROBE_END = ["--zzz-herald-probe", "1"]


class Redis:
    """A minimal RESP2 client: enough for CONFIG GET / SET."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.file.readline()
        if not line:
            raise RuntimeError("redis-server closed the connection")
        kind, rest = line[:1], line[1:-2].decode()
        if kind == b"+":
            return ("ok", rest)
        if kind == b"-":
            return ("err", rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            return self.file.read(n + 2)[:-2].decode()
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise RuntimeError("unexpected reply %r" % line)

    def get(self, name):
        r = self.cmd("config", "get", name)
        return r[1] if r else None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Prober:
    def __init__(self, redis_server):
        self.redis_server = redis_server
        self.tmp = tempfile.mkdtemp(prefix="herald-cfg-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [redis_server, "--port", str(self.port)],
            cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                self.r = Redis(self.port)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not start")
        self.version = self.r.cmd("info", "server")
        m = re.search(r"redis_version:(\S+)", self.version)
        self.version = m.group(1) if m else "?"

    def close(self):
        try:
            self.r.cmd("shutdown", "nosave")
        except Exception:
            pass
        self.proc.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def startup_error(self, args, probe_end=True):
        """Starts redis-server with `args` (plus a bad final option, so it
        always stops) and returns (shown line or None, message) of its fatal
        error."""
        tail = PROBE_END if probe_end else []
        p = subprocess.run([self.redis_server] + args + tail, cwd=self.tmp,
                           capture_output=True, text=True, timeout=20)
        lines = p.stderr.strip().split("\n")
        shown = None
        for line in lines:
            if line.startswith(">>> '") and line.endswith("'"):
                shown = line[5:-1]
        if "*** FATAL CONFIG FILE ERROR" not in p.stderr:
            raise RuntimeError("no fatal error for %r: %r %r" % (args, p.stdout, p.stderr))
        return shown, lines[-1]


def primary_name(name, names):
    cand = ALIAS_EXTRA.get(name) or name.replace("slave", "replica").replace("ziplist", "listpack")
    return cand if cand != name and cand in names else None


def parse_bounds(msg):
    m = re.fullmatch(r"argument must be between (-?\d+) and (-?\d+) inclusive", msg)
    return (int(m.group(1)), int(m.group(2))) if m else None


def classify(p, names, values):
    """Returns {primary name: info dict}."""
    aliases = {}
    for n in names:
        prim = primary_name(n, names)
        if prim:
            if values[n] != values[prim]:
                raise RuntimeError("alias %s of %s shows another value" % (n, prim))
            aliases[prim] = n
    primaries = sorted(n for n in names if primary_name(n, names) is None)
    opts = {}
    for n in primaries:
        info = {"name": n, "alias": aliases.get(n), "default": values[n],
                "hidden": n in HIDDEN, "sensitive": n in SENSITIVE,
                "unsigned": n in UNSIGNED, "herald": n in HERALD_USES}
        r = p.r.cmd("config", "set", n, values[n])
        if r == ("ok", "OK"):
            info["mut"] = "mutable"
        elif r[1].endswith("can't set immutable config"):
            info["mut"] = "immutable"
        elif r[1].endswith("can't set protected config"):
            info["mut"] = "protected"
        else:
            raise RuntimeError("%s: CONFIG SET to its own value: %r" % (n, r))
        if n in SPECIAL:
            info["kind"] = ("special", SPECIAL[n])
            opts[n] = info
            continue

        def try_value(v):
            """Returns (ok, message) for setting n to v, restoring afterwards."""
            if info["mut"] == "mutable":
                r = p.r.cmd("config", "set", n, v)
                if r[0] == "ok":
                    shown = p.r.get(n)
                    p.r.cmd("config", "set", n, values[n])
                    return True, shown
                prefix = "ERR CONFIG SET failed (possibly related to argument '%s') - " % n
                if not r[1].startswith(prefix):
                    raise RuntimeError("%s=%r: %r" % (n, v, r))
                return False, r[1][len(prefix):]
            _, msg = p.startup_error(["--" + n, v])
            if msg == "Bad directive or wrong number of arguments":
                return True, None
            return False, msg

        ok, msg = try_value("x!")
        if ok or n in STRING_CHECKS:
            info["kind"] = ("string", STRING_CHECKS.get(n))
        elif msg == "argument must be 'yes' or 'no'":
            check = None
            # Does "yes" pass its validity check? (Not tried where "yes"
            # starts something: AOF, or TLS without certificates.)
            if info["mut"] == "mutable" and n != "appendonly" and not n.startswith("tls-"):
                ok_yes, msg_yes = try_value("yes")
                if not ok_yes:
                    check = msg_yes
            info["kind"] = ("bool", check)
        elif msg.startswith("argument(s) must be one of the following: "):
            names_ = msg[len("argument(s) must be one of the following: "):].split(", ")
            if n in BITFLAG_ENUMS:
                flags, check = BITFLAG_ENUMS[n]
                if [f for f, _ in flags] != names_:
                    raise RuntimeError("%s: flags %r" % (n, names_))
                info["kind"] = ("flags", flags, check)
            else:
                if info["mut"] == "mutable" and try_value(names_[0] + " " + names_[-1])[0]:
                    raise RuntimeError("%s takes several flags: add it to BITFLAG_ENUMS" % n)
                ids, canon = [], {}
                for v in names_:
                    shown = try_value(v)[1] if info["mut"] == "mutable" else v
                    if shown not in canon:
                        canon[shown] = len(canon)
                    ids.append((v, canon[shown]))
                info["kind"] = ("enum", ids)
        elif msg in ("argument couldn't be parsed into an integer",
                     "argument must be a memory value",
                     "argument must be a memory or percent value",
                     "argument couldn't be parsed as an octal number"):
            fmt = {"argument couldn't be parsed into an integer": "Int",
                   "argument must be a memory value": "Memory",
                   "argument must be a memory or percent value": "MemoryPercent",
                   "argument couldn't be parsed as an octal number": "Octal"}[msg]
            probe = {"Int": str(I64_MIN), "Memory": str(U64_MAX),
                     "MemoryPercent": str(U64_MAX), "Octal": "-1"}[fmt]
            ok, msg2 = try_value(probe)
            if not ok:
                if fmt == "Octal":
                    m = re.fullmatch(r"argument must be between (\d+) and (\d+) inclusive", msg2)
                    lo, hi = int(m.group(1), 8), int(m.group(2), 8)
                else:
                    lo, hi = parse_bounds(msg2)
            elif fmt == "Memory" and msg2 == str(U64_MAX) and info["unsigned"]:
                lo, hi = 0, U64_MAX
            elif fmt == "MemoryPercent" and msg2 == "1%" and not info["unsigned"]:
                # ULLONG_MAX read back as ssize_t -1, i.e. 1%: a signed
                # (ssize_t) option whose upper bound is SSIZE_MAX.
                ok3, msg3 = try_value("99999%")
                m = re.fullmatch(r"percentage argument must be less or equal to (\d+)", msg3 or "")
                if ok3 or not m:
                    raise RuntimeError("%s: percent probe %r" % (n, msg3))
                lo, hi = -int(m.group(1)), I64_MAX
            else:
                raise RuntimeError("%s: %s probe accepted: %r" % (n, fmt, msg2))
            info["kind"] = ("num", fmt, lo, hi)
        else:
            raise RuntimeError("%s: unknown type, error %r" % (n, msg))
        opts[n] = info
    # Check each alias really is one: setting it changes the primary.
    for prim, alias in aliases.items():
        info = opts[prim]
        if info["mut"] != "mutable":
            continue
        kind = info["kind"][0]
        v = {"bool": "no" if info["default"] == "yes" else "yes",
             "num": "7", "special": None}.get(kind)
        if v is None:
            continue
        p.r.cmd("config", "set", alias, v)
        changed = p.r.get(prim)
        p.r.cmd("config", "set", alias, info["default"])
        if changed != v:
            raise RuntimeError("%s is not an alias of %s" % (alias, prim))
    return opts


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rust_int(v):
    return str(v) if -(2**63) <= v <= 2**64 - 1 else None


def write_table(path, opts, version):
    out = []
    out.append("// @generated by scripts/gen-config-table.py from redis-server %s:" % version)
    out.append("// do not edit by hand; change the script and run it again.")
    out.append("")
    out.append("//! The table of every redis-server option: one row per option (an alias")
    out.append("//! rides on its option's row), sorted by name. `default` is what CONFIG GET")
    out.append("//! prints on a fresh redis-server (for `port`, the compiled-in default;")
    out.append("//! `dir` is the working directory at start-up).")
    out.append("")
    out.append("use super::def::{Def, Flag, NumFormat, Special, StrCheck};")
    out.append("")
    out.append("/// Every option redis-server %s has." % version)
    out.append("#[rustfmt::skip]")
    out.append("pub(super) const OPTIONS: &[Def] = &[")
    for n in sorted(opts):
        o = opts[n]
        kind = o["kind"]
        default = o["default"]
        if n == "port":
            default = "6379"  # the probe server ran on another port
        elif n == "dir":
            default = ""  # the working directory at start-up, filled in at run time
        d = rust_str(default)
        if kind[0] == "bool":
            row = "Def::boolean(%s, %s)" % (rust_str(n), d)
            if kind[1]:
                if not kind[1].startswith("Active defragmentation cannot be enabled"):
                    raise RuntimeError("%s: unknown bool check %r" % (n, kind[1]))
                row += ".no_active_defrag()"
        elif kind[0] == "num":
            _, fmt, lo, hi = kind
            row = "Def::number(%s, %s, NumFormat::%s, %d, %d)" % (rust_str(n), d, fmt, lo, hi)
            if o["unsigned"]:
                row += ".unsigned()"
        elif kind[0] == "enum":
            vals = ", ".join("(%s, %d)" % (rust_str(v), i) for v, i in kind[1])
            row = "Def::enumeration(%s, %s, &[%s])" % (rust_str(n), d, vals)
        elif kind[0] == "flags":
            vals = ", ".join("(%s, %d)" % (rust_str(v), i) for v, i in kind[1])
            row = "Def::flag_set(%s, %s, &[%s])" % (rust_str(n), d, vals)
        elif kind[0] == "string":
            if kind[1]:
                row = "Def::string(%s, %s).check(StrCheck::%s)" % (rust_str(n), d, kind[1])
            else:
                row = "Def::string(%s, %s)" % (rust_str(n), d)
        else:
            row = "Def::special(%s, %s, Special::%s)" % (rust_str(n), d, kind[1])
        if o["alias"]:
            row += ".alias(%s)" % rust_str(o["alias"])
        flags = []
        if o["mut"] == "immutable":
            flags.append("Flag::IMMUTABLE")
        if o["mut"] == "protected":
            flags.append("Flag::PROTECTED")
        if o["hidden"]:
            flags.append("Flag::HIDDEN")
        if o["sensitive"]:
            flags.append("Flag::SENSITIVE")
        if o["herald"]:
            flags.append("Flag::HERALD")
        if flags:
            row += ".flags(%s)" % " | ".join(flags)
        out.append("    %s," % row)
    out.append("];")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def esc(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class Transcript:
    """CONFIG SET / GET commands and the server's replies, as text:
    `>` command args, `+` OK, `!` error, `=` CONFIG GET pairs; fields are
    tab-separated with \\\\, \\t and \\n escaped; a blank line starts a block
    that the test replays on a fresh Config."""

    def __init__(self, p):
        self.p = p
        self.lines = []

    def run(self, *args):
        r = self.p.r.cmd(*args)
        self.lines.append("\t".join([">"] + [esc(a) for a in args]))
        if isinstance(r, list):
            # The probe server's port and directory are written as <port>
            # and <dir>, so that the file does not change from run to run.
            # Pairs are sorted: Redis answers in hash table order.
            pairs = []
            for k, v in zip(r[0::2], r[1::2]):
                if k.lower() in ("port", "dir"):
                    v = "<%s>" % k.lower()
                pairs.append((k, v))
            flat = [x for kv in sorted(pairs) for x in kv]
            self.lines.append("\t".join(["="] + [esc(x) for x in flat]))
        elif r[0] == "ok":
            self.lines.append("+")
        else:
            self.lines.append("!\t" + esc(r[1]))
        return r

    def block(self, pairs, get=None, restore=None):
        """Sets `pairs`; if that worked, reads back `get` (default: the names
        set) and restores `restore` (name -> value) on the server."""
        self.lines.append("")
        r = self.run("config", "set", *[x for pr in pairs for x in pr])
        if r[0] == "ok":
            self.run("config", "get", *(get or [n for n, _ in pairs]))
            for n, v in (restore or {}).items():
                self.p.r.cmd("config", "set", n, v)
        return r


def set_probes(opts):
    """Values to try with CONFIG SET, per option, by type."""
    for n in sorted(opts):
        o = opts[n]
        names = [n] + ([o["alias"]] if o["alias"] else [])
        kind = o["kind"]
        if o["mut"] != "mutable":
            yield n, ["/tmp" if n == "dir" else o["default"], "x!"], names
            continue
        if kind[0] == "bool":
            vals = ["yes", "no", "YES", "No", "maybe", "", "1"]
        elif kind[0] == "num":
            _, fmt, lo, hi = kind
            vals = ["abc", "", "1", "0", "-1", "+1", "01", " 1", "1 ", "1k", "1.5",
                    str(I64_MIN), str(I64_MAX), "99999999999999999999",
                    str(lo), str(hi), str(lo - 1), str(hi + 1)]
            if fmt in ("Memory", "MemoryPercent"):
                vals += ["1k", "1kb", "1m", "1mb", "1g", "1gb", "1K", "1KB", "1Gb", "1b",
                         "1B", "kb", "2x", "-5", "1.5k", "k1", str(U64_MAX),
                         str(U64_MAX + 1), "99999999999999999999999", "2gb",
                         "8796093022208gb", "17179869184gb", "1%", "%", "-1%"]
            if fmt == "MemoryPercent":
                vals += ["0%", "10%", "100%", "101%", "01%", "1.5%"]
        elif kind[0] in ("enum", "flags"):
            vals = [v for v, _ in kind[1]] + [kind[1][0][0].upper(), "bad", "", kind[1][-1][0] + " " + kind[1][0][0]]
            if kind[0] == "flags":
                vals += ["save now", "NOW force save", "save nosave", "default now", "now now", "now  force", " "]
        elif kind[0] == "string":
            vals = ["x!", "", "a b", "a/b", "/abs", "dump.rdb", "host-1.example", "under_score",
                    "{title}", "{title} {port}", "{nosuch}", "{{x}}", "x{", "{listen-addr", "a" * 300]
        else:
            vals = SPECIAL_VALUES.get(n, [])
        vals = [v for v in vals if safe_value(n, o, v)]
        yield n, vals, names


# Values tried on the special options.
SPECIAL_VALUES = {
    "save": ["", "900 1", "900 1 300 10", "900 1 300", "0 1", "1 0", "1 -1", "+5 +6", "5 x",
             "900  1", " 900 1", "99999999999999999999 1", "1 4294967297", "1 2147483648",
             "3600 1 300 100 60 10000", "1k 1"],
    "client-output-buffer-limit": [
        "pubsub 1mb 2mb 3", "replica 1 2 3", "slave 64mb 16mb 60", "PubSub 1k 1kb 0",
        "normal 0 0 0", "normal 1gb 1gb 0 pubsub 0 0 0", "pubsub 1 2", "master 1 2 3",
        "bogus 1 2 3", "pubsub -1 2 3", "pubsub 1 2 -3", "pubsub 1 2 x", "pubsub 1 2 3x",
        "pubsub 1x 2 3", "pubsub 1 2 4294967296", "pubsub 1 2 2147483648", "", "pubsub  1 2 3",
        "pubsub 1 2 +3", "pubsub 1 2  3"],
    "oom-score-adj-values": ["0 200 800", "1 2 3", "-2000 0 2000", "0 200 2001", "0 200",
                             "0 200 800 1", "a b c", "", "+1 2 3", "0 0 0", "5 4 3", " 1 2 3"],
    "notify-keyspace-events": ["", "KEA", "A", "n", "An", "nK", "g$", "x$g", "KEm", "AA",
                               "g$lshzxetdnmK", "Ez", "q", "KEA ", "E", "K", "lshzxetd",
                               "g$lshzxetd", "Kg$lshzxetdn"],
    "bind": [" ".join("10.0.0.%d" % i for i in range(17))],
    "replicaof": ["no one", "127.0.0.1 6380"],
    "latency-tracking-info-percentiles": ["50 99 99.9", "", "0 100", "100.1", "-1", "abc",
                                          "1e1", "0.5 1.25", "99.999999", "0.0000001",
                                          "50  99", "1 inf", "nan", " 50", "50 ", "1.", ".5",
                                          "1e-9", "12.3456789"],
    "dir": ["/tmp", "/nonexistent-herald"],
}


def plain_int(v, lo, hi):
    """True if Redis's string2ll takes `v` and it lies in [lo, hi]."""
    return bool(re.fullmatch(r"0|-?[1-9][0-9]{0,19}", v)) and lo <= int(v) <= hi


def safe_value(name, o, v):
    """False for successful sets that would disturb the probe server (or
    depend on the machine): herald's Config cannot check those."""
    if name in ("port", "tls-port"):
        return not plain_int(v, 0, 65535)
    if name == "maxclients":
        return not plain_int(v, 10001, 2**32 - 1)
    if name == "appendonly" or name in ("tls-cluster", "tls-replication"):
        return v.lower() != "yes"
    if name == "watchdog-period":
        return not plain_int(v, 1, 2**31 - 1)
    if name == "repl-backlog-size":
        return not plain_int(v, 2**30, I64_MAX) and v.lower() not in ("1g", "1gb", "2gb")
    if name == "maxmemory-clients":
        # small limits would evict the probing client itself
        return v in ("0", "0%", "10%", "100%", "1gb", "2gb", "1Gb", "1g", str(U64_MAX),
                     "99999999999999999999999", str(I64_MAX)) or not re.fullmatch(r"[0-9]+[a-zA-Z]*%?", v)
    return True


def load_probes(opts):
    """Command lines for redis-server that stop at a bad value."""
    for n in sorted(opts):
        o = opts[n]
        kind = o["kind"]
        if kind[0] == "string":
            if kind[1]:
                for v in ["", "a/b", "x!", "{nosuch}", "a" * 300]:
                    yield ["--" + n, v]
            continue
        if kind[0] == "special":
            for v in SPECIAL_LOAD.get(n, []):
                yield ["--" + n] + v
            continue
        yield ["--" + n, "x!"]
        yield ["--" + n]
        yield ["--" + n, "1", "2"]
        if kind[0] == "num":
            _, fmt, lo, hi = kind
            for v in [str(lo - 1), str(hi + 1), "-1", str(U64_MAX), "1%", "101%", "9", "0777", "01", ""]:
                yield ["--" + n, v]


SPECIAL_LOAD = {
    "save": [["1"], ["0", "1"], ["1", "x"], ["1", "-1"]],
    "client-output-buffer-limit": [["pubsub", "1", "2"], ["master", "1", "2", "3"],
                                   ["pubsub", "1", "2", "-3"], ["pubsub", "1x", "2", "3"]],
    "oom-score-adj-values": [["0", "200"], ["0", "200", "2001"], ["a", "b", "c"]],
    "notify-keyspace-events": [["q"], [], ["K", "E"]],
    "bind": [["10.0.0.%d" % i for i in range(17)]],
    "replicaof": [["a"], ["a", "b"], ["a", "70000"], ["a", "1", "2"]],
    "latency-tracking-info-percentiles": [["abc"], ["101"], ["50", "-1"]],
    "dir": [["/nonexistent-herald"], ["/etc/hostname"], [""], ["a", "b"]],
}

# Start-up probes that are not about one option's value.
EXTRA_LOAD = [
    ["--port", "1", "--bogus", "2"],
    ["--port"],
    ["--list-max-ziplist-entries", "5", "--port", "x"],
    ["--list-max-ziplist-entries", "5", "6"],
    ["--lua-replicate-commands", "yes", "--port", "x"],
    ["--rename-command", "x"],
    ["--include", "a", "b"],
    ["--my.module", "a", "b"],
    ["--save", "--port", "x"],
    ["--requirepass", "--port", "--port", "x"],
    ["--port 6380", "--port", "x y"],
    ["--PORT", "x"],
    ["--port", "1", "x", "--hz"],
    ["--hz", "0", "--port", "'x"],
    ["--port", "\"x"],
    ["--requirepass", "a b\n\"c", "--port", "x"],
]

# Start-up probes run without the final bad option (the error comes from the
# checks made once every line is read).
EXTRA_LOAD_WHOLE = [
    ["--cluster-enabled", "yes", "--replicaof", "127.0.0.1", "1"],
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="repository root to write into (default: this script's repo)")
    ap.add_argument("--redis-server", default="redis-server")
    args = ap.parse_args()

    p = Prober(args.redis_server)
    try:
        flat = p.r.cmd("config", "get", "*")
        values = dict(zip(flat[0::2], flat[1::2]))
        shown = dict(values)
        for h in HIDDEN:
            v = p.r.get(h)
            if v is None:
                raise RuntimeError("hidden option %s is missing" % h)
            values[h] = v
        names = sorted(values)
        opts = classify(p, names, values)

        # CONFIG GET * of the fresh server.
        fx = os.path.join(args.root, "tests", "fixtures")
        os.makedirs(fx, exist_ok=True)
        with open(os.path.join(fx, "config-defaults.txt"), "w") as f:
            f.write("# CONFIG GET * on a fresh redis-server %s, by scripts/gen-config-table.py.\n" % p.version)
            f.write("# name<TAB>value, sorted. The server ran with --port P in a temporary\n")
            f.write("# directory: `port` and `dir` below are written as <port> and <dir>.\n")
            for n in sorted(shown):
                v = shown[n]
                if n == "port":
                    v = "<port>"
                elif n == "dir":
                    v = "<dir>"
                f.write("%s\t%s\n" % (n, esc(v)))

        # CONFIG SET / GET transcript.
        t = Transcript(p)
        for n, vals, names_ in set_probes(opts):
            for v in vals:
                t.block([(n, v)], get=names_, restore={n: opts[n]["default"]})
            if opts[n]["alias"] and vals:
                t.block([(opts[n]["alias"], vals[0])], get=names_, restore={n: opts[n]["default"]})
        handwritten = [
            ([("port", "abc"), ("daemonize", "yes")], None),
            ([("foo", "1"), ("daemonize", "x")], None),
            ([("daemonize", "yes"), ("foo", "1")], None),
            ([("maxmemory", "1mb"), ("maxmemory-policy", "bad")], ["maxmemory", "maxmemory-policy"]),
            ([("maxmemory", "1mb"), ("maxmemory-policy", "allkeys-lru")], ["maxmemory", "maxmemory-policy"]),
            ([("maxmemory", "1mb"), ("maxmemory", "2mb")], None),
            ([("maxmemory", "1mb"), ("MAXMEMORY", "2mb")], None),
            ([("slave-priority", "1"), ("replica-priority", "2")], ["*priority*"]),
            ([("replica-priority", "1"), ("slave-priority", "2")], ["*priority*"]),
            ([("PORT", "abc")], None),
            ([("SLAVE-priority", "abc")], None),
            ([("Hz", "1000")], ["hz", "HZ"]),
            ([("hz", "0")], None),
            ([("timeout", "5"), ("tcp-keepalive", "x"), ("hz", "20")], ["timeout", "hz"]),
            ([("timeout", "5"), ("dir", "/tmp")], ["timeout"]),
            ([("timeout", "5"), ("bogus", "1"), ("dbfilename", "x")], ["timeout"]),
            ([("dbfilename", "x"), ("bogus", "1")], ["timeout"]),
            ([("save", "1 1"), ("save", "2 2")], None),
            ([("requirepass", "secret"), ("masterauth", "m")], ["requirepass", "masterauth"]),
            ([("loglevel", "WARNING"), ("appendfsync", "Always")], ["loglevel", "appendfsync"]),
        ]
        for pairs, get in handwritten:
            restore = {}
            for n, _ in pairs:
                key = n.lower()
                prim = primary_name(key, set(values)) or key
                if prim in opts:
                    restore[prim] = opts[prim]["default"]
            t.block(pairs, get=get, restore=restore)
        for args_ in [["config", "set", "a"], ["config", "set", "a", "b", "c"],
                      ["config", "set", "port"], ["config", "set", "port", "1", "hz"],
                      ["config", "get"]]:
            t.lines.append("")
            t.run(*args_)
        for pats in [["port"], ["PORT"], ["port", "PORT", "p*rt"], ["*max*-entries*"],
                     ["bind", "save"], ["maxmemory"], ["nosuch"], ["*"], ["key-load-delay"],
                     ["*load-delay*"], ["KEY-LOAD-DELAY"], ["slaveof"], ["replicaof", "slaveof"],
                     ["*slave*"], ["[a-c]*"], ["*[^a-y]"], ["?z"], ["hz", "*hz*", "dynamic-hz"],
                     ["HASH-*"], ["hash-max-ziplist-entries", "HASH-MAX-ZIPLIST-ENTRIES"],
                     ["*-[lz]*"], ["\\*"], ["*\\-max*"], ["[^]", "[]", "[!a]*"], ["*"] * 2,
                     ["dir"], ["requirepass"], ["unixsocketperm"]]:
            t.lines.append("")
            t.run("config", "get", *pats)
        with open(os.path.join(fx, "config-set.txt"), "w") as f:
            f.write("# CONFIG SET / GET against redis-server %s, by scripts/gen-config-table.py.\n" % p.version)
            f.write("# `>` command, `+` OK, `!` error, `=` reply pairs; fields tab-separated\n")
            f.write("# (\\\\ \\t \\n escaped); each block (after a blank line) starts from defaults.\n")
            f.write("# The server's `port` and `dir` values are written as <port> and <dir>.\n")
            f.write("\n".join(t.lines).lstrip("\n") + "\n")

        # Start-up errors.
        lines = []
        cases = [(a, True) for a in list(load_probes(opts)) + EXTRA_LOAD]
        cases += [(a, False) for a in EXTRA_LOAD_WHOLE]
        for a, probe_end in cases:
            shown_line, msg = p.startup_error(a, probe_end)
            lines += ["", "\t".join([">" if probe_end else ">>"] + [esc(x) for x in a])]
            if shown_line is not None:
                lines.append("@\t" + esc(shown_line))
            lines.append("!\t" + esc(msg))
        with open(os.path.join(fx, "config-load.txt"), "w") as f:
            f.write("# redis-server %s start-up errors, by scripts/gen-config-table.py.\n" % p.version)
            f.write("# `>` arguments (then --zzz-herald-probe 1), `>>` arguments (alone), `@` the line\n")
            f.write("# Redis shows (if any), `!` its error;\n")
            f.write("# fields tab-separated (\\\\ \\t \\n escaped).\n")
            f.write("\n".join(lines).lstrip("\n") + "\n")

        write_table(os.path.join(args.root, "src", "config", "table.rs"), opts, p.version)
        print("%d options (%d names) from redis-server %s" % (len(opts), len(names), p.version))
    finally:
        p.close()


if __name__ == "__main__":
    sys.exit(main())
