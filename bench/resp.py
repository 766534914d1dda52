"""RESP over a plain socket for the benchmark probes (bench/stall_probe.py,
bench/repl_probe.py): standard library only, so that they run with any
python3."""

import socket


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
