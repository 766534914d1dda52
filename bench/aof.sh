#!/usr/bin/env bash
# bench/aof.sh: write throughput with the append-only file, herald against
# redis-server, same machine, same run.
#
# For each appendfsync policy (no AOF, everysec, always) it starts a fresh
# redis-server (--appendonly yes --aof-use-rdb-preamble no, --save "") and a
# fresh herald, alternately, each in its own empty data directory, and runs
#   redis-benchmark -t set -n N -c 50 -r 100000 -q
# against it, REPEAT times; it prints every run and the median SET/s.
#
# Usage: bench/aof.sh [REPEAT]   (default 3; N from $N, default 50000)
# Environment: HERALD_BIN (default target/release/herald, built if missing),
# REDIS_SERVER (default redis-server on PATH), N; HERALD_BEFORE_BIN adds a
# third server (another herald build, e.g. before a change) to every round.
set -euo pipefail

cd "$(dirname "$0")/.."
REPEAT=${1:-3}
N=${N:-50000}
HERALD_BIN=${HERALD_BIN:-target/release/herald}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
WORK=$(mktemp -d /tmp/herald-aof-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

[ -x "$HERALD_BIN" ] || cargo build --release --bin herald

# A port nothing listens on (the kernel picks it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: until the server answers PING; fails if it exited.
wait_port() {
    for _ in $(seq 1 500); do
        kill -0 "$2" 2>/dev/null || { echo "server on port $1 exited" >&2; return 1; }
        redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
        sleep 0.01
    done
    echo "server on port $1 did not start" >&2
    return 1
}

# run SERVER POLICY -> prints requests per second
run() {
    local server=$1 policy=$2 port
    port=$(free_port)
    local dir="$WORK/$server-$policy-$RANDOM"
    mkdir -p "$dir"
    local aof=(--appendonly yes --appendfsync "$policy")
    [ "$policy" = off ] && aof=(--appendonly no)
    if [ "$server" = redis ]; then
        "$REDIS_SERVER" --port "$port" --dir "$dir" --save "" --aof-use-rdb-preamble no \
            "${aof[@]}" --daemonize no >"$dir/log" 2>&1 &
    elif [ "$server" = herald-before ]; then
        "$HERALD_BEFORE_BIN" --port "$port" --dir "$dir" "${aof[@]}" >"$dir/log" 2>&1 &
    else
        "$HERALD_BIN" --port "$port" --dir "$dir" "${aof[@]}" >"$dir/log" 2>&1 &
    fi
    local pid=$!
    if wait_port "$port" "$pid"; then
        timeout 300 redis-benchmark -p "$port" -t set -n "$N" -c 50 -r 100000 -q 2>/dev/null |
            tr '\r' '\n' | awk '/^SET:/ {print $2}' | tail -1
    else
        echo failed
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "redis-benchmark -t set -n $N -c 50 -r 100000 -q; $REPEAT runs each, alternating"
echo "machine: $(nproc) cores, $(uname -sr); $("$REDIS_SERVER" --version | awk '{print $3}')"
SERVERS=(redis herald)
[ -n "${HERALD_BEFORE_BIN:-}" ] && SERVERS+=(herald-before)
printf '%-10s %-14s %12s   %s\n' policy server "median/s" runs
for policy in off everysec always; do
    declare -A runs=()
    for _ in $(seq 1 "$REPEAT"); do
        for server in "${SERVERS[@]}"; do
            runs[$server]+="$(run "$server" "$policy") "
        done
    done
    for server in "${SERVERS[@]}"; do
        m=$(echo "${runs[$server]}" | tr ' ' '\n' | grep -E '^[0-9.]+$' | median)
        printf '%-10s %-14s %12s   %s\n' "$policy" "$server" "$m" "${runs[$server]}"
    done
done
