"""Holds N channel subscriptions open on a server, for bench/commands.sh's
memory row: CONNS connections share the channels (ch:0 .. ch:N-1), each
subscribing in batches of 1,000; once every confirmation is read it prints
"ready" and keeps the connections until it is killed.

Usage: python3 bench/subs_hold.py PORT N [CONNS]"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resp  # noqa: E402

BATCH = 1000


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    conns = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    held = []
    for c in range(conns):
        sock, f = resp.connect(port)
        channels = [b"ch:%d" % i for i in range(c, n, conns)]
        for at in range(0, len(channels), BATCH):
            batch = channels[at:at + BATCH]
            resp.send(sock, b"SUBSCRIBE", *batch)
            for _ in batch:
                reply = resp.read_reply(f)
                if not isinstance(reply, list) or reply[0] != b"subscribe":
                    sys.exit(f"unexpected reply to SUBSCRIBE: {reply!r}")
        held.append((sock, f))
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
