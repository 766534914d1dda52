"""bench/repl_probe.py PRIMARY_PORT REPLICA_PORT KEYS LOAD_SECS: replication
figures of one primary / replica pair (both empty, on 127.0.0.1).

1. Loads KEYS small strings on the primary (pipelined MSET), sends REPLICAOF
   to the replica and measures the full sync: from REPLICAOF until the
   replica's INFO says the link is up and no sync is in progress.
2. Lag under load: for LOAD_SECS, two connections write to the primary
   (pipelined SET of random keys, and PUBLISH to a channel a subscriber on
   the replica reads) while a probe SETs a fresh key on the primary every
   10 ms and times how long until GET finds it on the replica.

Prints one JSON line: full_sync_s, lag p50/p99/max in ms, probes, and the
write and publish rates reached. Standard library only.
"""

import json
import socket
import sys
import threading
import time

from resp import connect, load_keys, read_reply, send


def call(conn, *args):
    send(conn[0], *args)
    return read_reply(conn[1])


def synced(info):
    return b"master_link_status:up" in info and b"master_sync_in_progress:0" in info


def main():
    pport, rport, keys, secs = (int(a) for a in sys.argv[1:5])
    primary, replica = connect(pport), connect(rport)
    load_keys(primary, keys)
    t = time.perf_counter()
    call(replica, b"REPLICAOF", b"127.0.0.1", str(pport).encode())
    while not synced(call(replica, b"INFO", b"replication") or b""):
        time.sleep(0.005)
    full_sync = time.perf_counter() - t

    stop = threading.Event()
    counts = {"set": 0, "publish": 0, "received": 0}

    def writer(kind):
        s, f = connect(pport)
        n = 0
        while not stop.is_set():
            for _ in range(16):
                if kind == "set":
                    send(s, b"SET", b"load:%d" % (n % 100000), b"x" * 32)
                else:
                    send(s, b"PUBLISH", b"news", b"y" * 32)
                n += 1
            for _ in range(16):
                read_reply(f)
        counts[kind] = n

    sub = connect(rport)
    call(sub, b"SUBSCRIBE", b"news")
    sub[0].settimeout(0.5)

    def subscriber():
        while not stop.is_set():
            try:
                read_reply(sub[1])
                counts["received"] += 1
            except (socket.timeout, OSError):
                continue

    threads = [threading.Thread(target=writer, args=(k,)) for k in ("set", "publish")]
    threads.append(threading.Thread(target=subscriber))
    for th in threads:
        th.start()
    lags = []
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < secs:
        key = b"probe:%d" % i
        i += 1
        t = time.perf_counter()
        call(primary, b"SET", key, b"1")
        while call(replica, b"GET", key) is None:
            pass
        lags.append((time.perf_counter() - t) * 1000)
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    for th in threads:
        th.join()
    lags.sort()
    pick = lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))], 3)
    print(json.dumps({
        "full_sync_s": round(full_sync, 3),
        "lag_p50_ms": pick(0.5),
        "lag_p99_ms": pick(0.99),
        "lag_max_ms": round(lags[-1], 3),
        "probes": len(lags),
        "sets_per_s": round(counts["set"] / elapsed),
        "publishes_per_s": round(counts["publish"] / elapsed),
    }))


if __name__ == "__main__":
    main()
