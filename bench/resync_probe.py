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
import time

from resp import WorstGet, connect, load_keys, read_reply, send


def main():
    pport, rport, keys = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    p = connect(pport)
    load_keys(p, keys)
    r = connect(rport)
    probe = WorstGet(pport)
    time.sleep(0.5)
    baseline = probe.baseline()
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
    worst = probe.stop()
    send(r[0], b"DBSIZE")
    dbsize = read_reply(r[1])
    print(json.dumps({
        "baseline_ms": baseline,
        "worst_ms": worst,
        "sync_s": round(took, 2),
        "replica_keys": int(dbsize.strip()[1:]),
    }))


if __name__ == "__main__":
    main()
