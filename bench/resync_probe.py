"""bench/resync_probe.py PRIMARY_PORT REPLICA_PORT KEYS: how long a full
resync stops the primary's clients.

Loads KEYS small strings into the primary (pipelined MSET), then makes the
server on REPLICA_PORT its replica while a second connection runs GET on
the primary in a loop, until the replica's link is up and the primary's
save is over. Prints one JSON line: the worst GET round trip before
(baseline) and during the resync in ms, how long the resync took, and the
replica's key count. Used by bench/stall.sh; standard library only.
"""

import json
import sys
import threading
import time

from resp import connect, load_keys, read_reply, send


def main():
    pport, rport, keys = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    p = connect(pport)
    load_keys(p, keys)
    r = connect(rport)
    g, gf = connect(pport)
    worst = [0.0]
    stop = threading.Event()

    def probe():
        while not stop.is_set():
            t = time.perf_counter()
            send(g, b"GET", b"key:1")
            read_reply(gf)
            worst[0] = max(worst[0], time.perf_counter() - t)

    th = threading.Thread(target=probe)
    th.start()
    time.sleep(0.5)
    baseline, worst[0] = worst[0], 0.0
    started = time.perf_counter()
    send(r[0], b"REPLICAOF", b"127.0.0.1", str(pport).encode())
    read_reply(r[1])
    while True:
        send(r[0], b"INFO", b"replication")
        replica = read_reply(r[1]) or b""
        send(p[0], b"INFO", b"persistence")
        primary = read_reply(p[1]) or b""
        if b"master_link_status:up" in replica and b"rdb_bgsave_in_progress:0" in primary:
            break
        time.sleep(0.02)
    took = time.perf_counter() - started
    time.sleep(0.2)
    stop.set()
    th.join()
    send(r[0], b"DBSIZE")
    dbsize = read_reply(r[1])
    print(json.dumps({
        "baseline_ms": round(baseline * 1000, 2),
        "worst_ms": round(worst[0] * 1000, 2),
        "sync_s": round(took, 2),
        "replica_keys": int(dbsize.strip()[1:]),
    }))


if __name__ == "__main__":
    main()
