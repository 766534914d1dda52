#!/usr/bin/env bash
# bench/stall.sh: how long a background snapshot stops other clients, herald
# against redis-server, same machine, same run.
#
# For each command (BGSAVE, BGREWRITEAOF) and each server, alternately, on a
# fresh server with KEYS small strings: bench/stall_probe.py loads the keys,
# then measures the worst GET round trip while the command runs (and before,
# as a baseline). Prints one line per run and the medians.
#
# Usage: bench/stall.sh [--keys N] [--repeat R]   (defaults 1000000, 3)
# Environment: HERALD_BIN, SKIP_BUILD=1, REDIS_ARGS / HERALD_ARGS (see
# benchmark_servers in bench/lib.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
LOG_TAG=stall
WORK=target/bench-stall
# shellcheck source=bench/lib.sh
source bench/lib.sh
KEYS=1000000
REPEAT=3
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) KEYS=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        *) die "unknown argument $1" ;;
    esac
    shift
done
benchmark_servers
DATA="$WORK/data"
REDIS_FLAGS+=(--bind 127.0.0.1 --dir "$DATA")
HERALD_FLAGS+=(--bind 127.0.0.1 --dir "$DATA")

declare -A RESULTS_BY
for cmd in BGSAVE BGREWRITEAOF; do
    for rep in $(seq 1 "$REPEAT"); do
        for server in $(server_order "$rep"); do
            rm -rf "$DATA" && mkdir -p "$DATA"
            extra=()
            [ "$cmd" = BGREWRITEAOF ] && extra=(--appendonly yes)
            PORT=$(free_port)
            start_server "$server" "$PORT" "${extra[@]}" || die "$server did not start"
            line=$(python3 bench/stall_probe.py "$PORT" "$KEYS" "$cmd")
            stop_server
            worst=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["worst_ms"])' "$line")
            log "$cmd $server run $rep: $line"
            RESULTS_BY["$cmd $server"]+="$worst "
        done
    done
done
printf '\n%-14s %-8s %s\n' command server "worst GET round trip during the command, median of $REPEAT (ms)"
for key in "BGSAVE redis" "BGSAVE herald" "BGREWRITEAOF redis" "BGREWRITEAOF herald"; do
    # shellcheck disable=SC2086
    median=$(python3 -c 'import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))' ${RESULTS_BY[$key]})
    printf '%-14s %-8s %s\n' ${key} "$median"
done
