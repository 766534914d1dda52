#!/usr/bin/env python3
"""Capture the data behind herald's COMMAND command from a running redis-server.

herald answers COMMAND, COMMAND INFO, COMMAND DOCS, COMMAND LIST, COMMAND
GETKEYS[ANDFLAGS] and COMMAND HELP from data captured from redis-server 7.0.15
(see src/catalog/mod.rs). This script asks a running server for that data,
in RESP3 so that reply types (sets, maps, simple strings) are preserved, and
writes it byte-for-byte, so the Rust side only needs a small RESP3 reader.

Outputs (both deterministic: re-running against the same server version
reproduces them exactly):

  src/catalog/data/commands.resp
      One RESP3 map:
        %3
        +version  $<redis_version>
        +help     <raw RESP3 reply of COMMAND HELP>
        +commands *<N> of *2 [<COMMAND INFO entry>, <COMMAND DOCS value>]
      with one element per top-level command, sorted by name. Subcommands
      are nested inside their container's INFO entry and DOCS map as the
      server sends them, but sorted by name: the server's order comes from
      hash tables seeded randomly at every start.

  tests/fixtures/command-replies.resp
      Replies of the real server to sample COMMAND invocations, for herald's
      unit tests. A RESP2 array of cases, each *4 [mode, argv, resp2, resp3]:
      mode is +exact or +unordered (compare the top-level array as a
      multiset: COMMAND LIST follows the server's hash-table order; such
      replies are stored with their elements sorted), argv an
      array of bulk strings, resp2/resp3 the raw reply bytes as bulk strings.

Usage (stdlib only, talks RESP over a plain socket):

  redis-server --port 7721 --save '' --daemonize no &
  scripts/gen-command-data.py --port 7721
"""

import argparse
import os
import socket
import sys

EXPECTED_VERSION = "7.0.15"

# Commands whose INFO and DOCS replies are checked byte-for-byte in tests.
SAMPLE_COMMANDS = [
    "get", "set", "publish", "subscribe", "xreadgroup", "client|kill",
    "config|get", "zadd", "blpop", "eval", "migrate", "georadius",
]

# Invocations whose replies are captured as fixtures: (mode, argv).
FIXTURE_CASES = (
    [("exact", ["COMMAND", "INFO", n]) for n in SAMPLE_COMMANDS]
    + [("exact", ["COMMAND", "DOCS", n]) for n in SAMPLE_COMMANDS]
    + [
        ("exact", ["COMMAND", "INFO", "GET", "nope", "Client|Kill", "get|x", "client|", ""]),
        ("exact", ["COMMAND", "DOCS", "nope", "PUBLISH", "get|x", "publish"]),
        ("exact", ["COMMAND", "COUNT"]),
        ("exact", ["COMMAND", "HELP"]),
        ("unordered", ["COMMAND", "LIST"]),
        ("unordered", ["COMMAND", "LIST", "FILTERBY", "ACLCAT", "pubsub"]),
        ("unordered", ["COMMAND", "LIST", "FILTERBY", "aclcat", "CONNECTION"]),
        ("exact", ["COMMAND", "LIST", "FILTERBY", "ACLCAT", "@pubsub"]),
        ("unordered", ["COMMAND", "LIST", "FILTERBY", "PATTERN", "CLIENT|*"]),
        ("unordered", ["COMMAND", "LIST", "FILTERBY", "pattern", "*sub*"]),
        ("unordered", ["COMMAND", "LIST", "FILTERBY", "PATTERN", "[a-c]?[^a]*"]),
        ("exact", ["COMMAND", "LIST", "FILTERBY", "MODULE", "json"]),
        ("exact", ["COMMAND", "LIST", "FILTERBY", "PATTERN"]),
        ("exact", ["COMMAND", "LIST", "FILTERBY", "NAME", "x"]),
        ("exact", ["COMMAND", "LIST", "FILTERBY", "PATTERN", "a", "b"]),
        ("exact", ["COMMAND", "LIST", "x"]),
        ("exact", ["COMMAND", "NOPE"]),
        ("exact", ["COMMAND", "COUNT", "x"]),
        ("exact", ["COMMAND", "HELP", "x"]),
        ("exact", ["COMMAND", "GETKEYS"]),
        ("exact", ["COMMAND", "GETKEYS", "get"]),
        ("exact", ["COMMAND", "GETKEYS", "nope", "x"]),
        ("exact", ["COMMAND", "GETKEYS", "ping", "x"]),
        ("exact", ["COMMAND", "GETKEYS", "client", "kill", "x"]),
        ("exact", ["COMMAND", "GETKEYS", "client", "nope"]),
        ("exact", ["COMMAND", "GETKEYS", "get", "a", "b"]),
        ("exact", ["COMMAND", "GETKEYS", "GET", "k"]),
        ("exact", ["COMMAND", "GETKEYS", "set", "k", "v", "EX", "10"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "set", "k", "v"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "set", "k", "v", "NX", "GET"]),
        ("exact", ["COMMAND", "GETKEYS", "mset", "a", "1", "b", "2"]),
        ("exact", ["COMMAND", "GETKEYS", "mset", "a", "1", "b"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "mset", "a", "1", "b", "2"]),
        ("exact", ["COMMAND", "GETKEYS", "xreadgroup", "GROUP", "g", "c", "COUNT", "1",
                   "STREAMS", "s1", "s2", ">", ">"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "xreadgroup", "GROUP", "g", "c",
                   "STREAMS", "streams", "s2", ">", ">"]),
        ("exact", ["COMMAND", "GETKEYS", "xreadgroup", "GROUP", "g", "c", "STREAMS", "s1"]),
        ("exact", ["COMMAND", "GETKEYS", "xread", "COUNT", "2", "STREAMS", "a", "b", "c"]),
        ("exact", ["COMMAND", "GETKEYS", "zunionstore", "dst", "2", "a", "b", "WEIGHTS", "1", "2"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "zunionstore", "dst", "2", "a", "b"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "zunionstore", "dst", "02", "a", "b"]),
        ("exact", ["COMMAND", "GETKEYS", "zunionstore", "dst", "3", "a", "b"]),
        ("exact", ["COMMAND", "GETKEYS", "zunionstore", "dst", "0", "a"]),
        ("exact", ["COMMAND", "GETKEYS", "zunionstore", "dst", "x", "a"]),
        ("exact", ["COMMAND", "GETKEYS", "zunionstore", "dst", "4294967297", "a"]),
        ("exact", ["COMMAND", "GETKEYS", "eval", "return 1", "2", "k1", "k2", "a1"]),
        ("exact", ["COMMAND", "GETKEYS", "eval", "return 1", "0"]),
        ("exact", ["COMMAND", "GETKEYS", "eval", "return 1", "5", "k1"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "fcall", "f", "1", "k1", "a1"]),
        ("exact", ["COMMAND", "GETKEYS", "migrate", "h", "6379", "k", "0", "5000"]),
        ("exact", ["COMMAND", "GETKEYS", "migrate", "h", "6379", "", "0", "5000",
                   "COPY", "KEYS", "k1", "k2"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "migrate", "h", "6379", "", "0", "5000",
                   "AUTH", "keys", "KEYS", "k1"]),
        ("exact", ["COMMAND", "GETKEYS", "migrate", "h", "6379", "", "0", "5000"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "sort", "s", "BY", "w_*", "GET", "store",
                   "STORE", "dst", "LIMIT", "0", "1"]),
        ("exact", ["COMMAND", "GETKEYS", "sort", "s", "STORE"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "sort_ro", "s", "BY", "x"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "georadius", "g", "0", "0", "1", "km",
                   "STORE", "a", "STOREDIST", "b"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "lmove", "a", "b", "LEFT", "RIGHT"]),
        ("exact", ["COMMAND", "GETKEYS", "blmpop", "0", "2", "a", "b", "LEFT"]),
        ("exact", ["COMMAND", "GETKEYS", "publish", "ch", "msg"]),
        ("exact", ["COMMAND", "GETKEYS", "object", "encoding", "k"]),
        ("exact", ["COMMAND", "GETKEYSANDFLAGS", "xgroup", "CREATE", "s", "g", "$"]),
    ]
)


def encode_command(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_line(buf, pos):
    end = buf.index(b"\r\n", pos)
    return buf[pos:end], end + 2


def frame_end(buf, pos):
    """Offset just past the RESP2/RESP3 frame starting at pos.

    Raises IndexError or ValueError while the frame is still incomplete."""
    if pos >= len(buf):
        raise IndexError(pos)
    kind = buf[pos:pos + 1]
    head, p = read_line(buf, pos + 1)
    if kind in (b"$", b"=", b"!"):
        n = int(head)
        if n < 0:
            return p
        if p + n + 2 > len(buf):
            raise IndexError(pos)
        return p + n + 2
    if kind in (b"*", b"~", b">"):
        for _ in range(max(int(head), 0)):
            p = frame_end(buf, p)
        return p
    if kind in (b"%", b"|"):
        for _ in range(2 * int(head)):
            p = frame_end(buf, p)
        return p
    return p


def children(buf, pos):
    """Raw byte strings of the direct children of the aggregate at pos."""
    head, p = read_line(buf, pos + 1)
    n = int(head) * (2 if buf[pos:pos + 1] == b"%" else 1)
    out = []
    for _ in range(n):
        end = frame_end(buf, p)
        out.append(buf[p:end])
        p = end
    return out


def bulk_value(raw):
    head, p = read_line(raw, 1)
    return raw[p:p + int(head)]


class Client:
    """A minimal blocking RESP client returning raw reply bytes."""

    def __init__(self, host, port, proto):
        self.sock = socket.create_connection((host, port))
        self.buf = b""
        if proto == 3:
            reply = self.call(["HELLO", "3"])
            if not reply.startswith(b"%"):
                sys.exit("HELLO 3 failed: %r" % reply[:200])

    def call(self, args):
        self.sock.sendall(encode_command(args))
        while True:
            try:
                end = frame_end(self.buf, 0)
                break
            except (IndexError, ValueError):
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise EOFError("server closed the connection")
                self.buf += chunk
        reply, self.buf = self.buf[:end], self.buf[end:]
        return reply


def header(raw):
    """The type-and-length line that opens an aggregate."""
    return raw[:raw.index(b"\r\n") + 2]


def sorted_aggregate(raw, key):
    """raw with its elements (or map pairs) sorted by key(element)."""
    items = children(raw, 0)
    if raw.startswith(b"%"):
        items = [items[i] + items[i + 1] for i in range(0, len(items), 2)]
    return header(raw) + b"".join(sorted(items, key=key))


def canonical_info(entry):
    """A COMMAND INFO entry with its subcommands sorted by name.

    redis-server seeds its hash tables randomly at startup, so the order of
    subcommands (like the order of COMMAND and COMMAND LIST) changes from one
    server process to the next; sorting makes the capture reproducible."""
    parts = children(entry, 0)
    subs = sorted_aggregate(parts[9], lambda e: bulk_value(children(e, 0)[0]))
    return header(entry) + b"".join(parts[:9]) + subs


def canonical_docs(docs):
    """A COMMAND DOCS value with its "subcommands" map sorted by name."""
    parts = children(docs, 0)
    for i in range(0, len(parts), 2):
        if bulk_value(parts[i]) == b"subcommands":
            parts[i + 1] = sorted_aggregate(parts[i + 1], lambda p: bulk_value(p[:frame_end(p, 0)]))
    return header(docs) + b"".join(parts)


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def simple(s):
    return b"+" + s.encode() + b"\r\n"


def server_version(client):
    info = bulk_value(client.call(["INFO", "server"])).decode()
    for line in info.splitlines():
        if line.startswith("redis_version:"):
            return line.split(":", 1)[1].strip()
    sys.exit("could not read redis_version from INFO server")


def capture_data(r3, version):
    # Top-level names from COMMAND (one INFO entry each, name first).
    names = sorted(bulk_value(children(entry, 0)[0])
                   for entry in children(r3.call(["COMMAND"]), 0))
    entries = []
    for name in names:
        info = r3.call(["COMMAND", "INFO", name])
        docs = r3.call(["COMMAND", "DOCS", name])
        (info_entry,) = children(info, 0)
        docs_name, docs_value = children(docs, 0)
        if not info.startswith(b"*1\r\n") or bulk_value(docs_name) != name:
            sys.exit("unexpected reply for %r" % name)
        entries.append(b"*2\r\n" + canonical_info(info_entry) + canonical_docs(docs_value))
    out = [b"%3\r\n",
           simple("version"), bulk(version.encode()),
           simple("help"), r3.call(["COMMAND", "HELP"]),
           simple("commands"), b"*%d\r\n" % len(entries)]
    out.extend(entries)
    return b"".join(out), len(names)


def capture_fixtures(r2, r3, cases):
    out = [b"*%d\r\n" % len(cases)]
    for mode, argv in cases:
        out.append(b"*4\r\n")
        out.append(simple(mode))
        out.append(b"*%d\r\n" % len(argv))
        out.extend(bulk(a.encode()) for a in argv)
        for client in (r2, r3):
            reply = client.call(argv)
            if mode == "unordered" and reply[:1] in b"*~":
                # Hash-table order varies between server runs (see canonical_info).
                reply = sorted_aggregate(reply, lambda e: e)
            out.append(bulk(reply))
    return b"".join(out)


def write(path, data):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    print("wrote %s (%d bytes)" % (path, len(data)))


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--data", default=os.path.join(root, "src/catalog/data/commands.resp"))
    ap.add_argument("--fixtures", default=os.path.join(root, "tests/fixtures/command-replies.resp"))
    ap.add_argument("--any-version", action="store_true",
                    help="accept a server other than redis %s" % EXPECTED_VERSION)
    args = ap.parse_args()

    r2 = Client(args.host, args.port, 2)
    r3 = Client(args.host, args.port, 3)
    version = server_version(r2)
    if version != EXPECTED_VERSION and not args.any_version:
        sys.exit("server is redis %s, expected %s (use --any-version to override)"
                 % (version, EXPECTED_VERSION))
    data, n = capture_data(r3, version)
    write(args.data, data)
    print("captured %d top-level commands from redis %s" % (n, version))
    write(args.fixtures, capture_fixtures(r2, r3, FIXTURE_CASES))


if __name__ == "__main__":
    main()
