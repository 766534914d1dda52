"""RESP over a plain socket for the benchmark probes (bench/stall_probe.py,
bench/resync_probe.py, bench/repl_probe.py): standard library only, so
that they run with any python3."""

import socket
import threading
import time


def send(sock, *args):
    """Sends one command (bytes arguments)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    sock.sendall(b"".join(out))


def connect(port):
    """A connection to 127.0.0.1:port and a buffered reader on it."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, s.makefile("rb")


def read_reply(f):
    """One reply: bulk strings as bytes (None if null), arrays as lists,
    other replies as their line."""
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        return f.read(n + 2)[:-2] if n >= 0 else None
    if line[:1] == b"*":
        return [read_reply(f) for _ in range(int(line[1:]))]
    return line


def load_keys(conn, keys):
    """Writes keys key:0 .. key:(keys-1) (values value:i) in pipelined MSETs
    of 1,000 and reads every reply."""
    s, f = conn
    for base in range(0, keys, 1000):
        args = [b"MSET"]
        for i in range(base, min(keys, base + 1000)):
            args += [b"key:%d" % i, b"value:%d" % i]
        send(s, *args)
    for _ in range(0, keys, 1000):
        read_reply(f)


class WorstGet:
    """A second connection to `port` running GET key:1 in a loop on a
    thread, keeping the worst round trip: what a snapshot or a resync
    costs the other clients. `baseline()` returns the worst so far (in
    ms) and starts over; `stop()` ends the loop and returns the worst
    since."""

    def __init__(self, port):
        self._conn = connect(port)
        self._worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self):
        s, f = self._conn
        while not self._stop.is_set():
            t = time.perf_counter()
            send(s, b"GET", b"key:1")
            read_reply(f)
            self._worst = max(self._worst, time.perf_counter() - t)

    def baseline(self):
        worst, self._worst = self._worst, 0.0
        return round(worst * 1000, 2)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return round(self._worst * 1000, 2)
