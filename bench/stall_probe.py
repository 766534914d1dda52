"""bench/stall_probe.py PORT KEYS COMMAND [LIST]: how long one snapshot stops
clients.

Loads KEYS small strings (pipelined MSET) and, with LIST, one list of LIST
elements (pipelined RPUSH of 10,000), then sends COMMAND (BGSAVE or
BGREWRITEAOF) while a second connection runs GET in a loop, until INFO
persistence says the save or rewrite is over. Prints one JSON line: the
worst GET round trip before the command (baseline) and while it ran, in ms.
Used by bench/stall.sh; standard library only.
"""

import json
import sys
import time

from resp import WorstGet, connect, load_keys, read_reply, send


def main():
    port, keys, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
    elements = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    s, f = connect(port)
    load_keys((s, f), max(keys, 2))
    batches = 0
    for base in range(0, elements, 10000):
        send(s, b"RPUSH", b"biglist", *[b"element:%d" % i for i in range(base, min(elements, base + 10000))])
        batches += 1
    for _ in range(batches):
        read_reply(f)
    probe = WorstGet(port)
    time.sleep(0.5)
    baseline = probe.baseline()
    send(s, command)
    read_reply(f)
    while True:
        send(s, b"INFO", b"persistence")
        info = read_reply(f) or b""
        if b"rdb_bgsave_in_progress:0" in info and b"aof_rewrite_in_progress:0" in info:
            break
        time.sleep(0.02)
    time.sleep(0.2)
    print(json.dumps({"baseline_ms": baseline, "worst_ms": probe.stop()}))


if __name__ == "__main__":
    main()
