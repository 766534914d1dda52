#!/usr/bin/env bash
# bench/soak.sh: the soak test (herald-bench soak) against a fresh herald or
# redis-server on a free loopback port.
#
# Usage: bench/soak.sh herald|redis [herald-bench soak arguments...]
#   e.g. bench/soak.sh herald                # full form: 10,000 connections, 60 s
#        bench/soak.sh redis --quick         # 1,000 connections, 20 s
# Both servers get the same flags: no persistence, maxclients 20000 and
# Redis's default pubsub output-buffer limit (32mb 8mb 60) unless SERVER_ARGS
# adds others (e.g. SERVER_ARGS='--client-output-buffer-limit "pubsub 4mb 1mb 5"').
# Environment: SKIP_BUILD=1 with HERALD_BIN / HERALD_BENCH_BIN to use existing
# binaries (default: cargo build --release). The server's log goes to
# target/soak/<server>-<port>.log. Exit status: the soak's (0 passed, 1 a
# check failed, 2 it could not run), or 2 if the server did not start.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK="$ROOT/target/soak"
mkdir -p "$WORK"

which=${1:-}
case $which in
    herald|redis) shift ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
esac

log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "building herald and herald-bench (release)"
    # Two packages of the workspace (herald-bench is bench/); every --bin
    # filter applies to every -p, so both are named.
    cargo build --release -p herald -p herald-bench --bin herald --bin herald-bench >&2
fi
HERALD_BIN=${HERALD_BIN:-$ROOT/target/release/herald}
HERALD_BENCH_BIN=${HERALD_BENCH_BIN:-$ROOT/target/release/herald-bench}

# 10,000 connections on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
logf="$WORK/$which-$port.log"
flags=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --maxclients 20000
       --client-output-buffer-limit "pubsub 32mb 8mb 60")
eval "extra=(${SERVER_ARGS:-})"
if [ "$which" = redis ]; then
    redis-server "${flags[@]}" "${extra[@]}" >"$logf" 2>&1 &
else
    "$HERALD_BIN" "${flags[@]}" "${extra[@]}" >"$logf" 2>&1 &
fi
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { log "$which exited at start-up: $(tail -n 3 "$logf")"; exit 2; }
    [ "$(timeout 2 redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
[ "$(timeout 2 redis-cli -p "$port" ping 2>/dev/null)" = PONG ] || { log "$which does not answer on $port"; exit 2; }

log "$which (pid $pid) on port $port: $HERALD_BENCH_BIN soak --port $port --pid $pid $*"
status=0
timeout -k 5 900 "$HERALD_BENCH_BIN" soak --port "$port" --pid "$pid" "$@" || status=$?
kill -0 "$pid" 2>/dev/null || log "$which is no longer running; its log: $(tail -n 3 "$logf")"
exit "$status"
