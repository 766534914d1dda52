#!/usr/bin/env bash
# bench/repl.sh: replication figures, herald against redis-server, same
# machine, same run: the full sync of KEYS small strings to a fresh replica
# (from REPLICAOF until the link is up), then the replication lag under a
# write + publish load (a key SET on the primary every 10 ms, timed until
# GET finds it on the replica, while two connections pipeline SETs and
# PUBLISHes and a subscriber on the replica reads them). Each run is a
# fresh primary and replica of the same kind (diskless sync, no delay);
# the kinds alternate; medians of REPEAT runs are printed.
#
# Usage: bench/repl.sh [--keys N] [--load-secs S] [--repeat R]
#        (defaults 1000000, 10, 3; --quick: 100000, 2, 1)
# Environment: HERALD_BIN, SKIP_BUILD=1, REDIS_ARGS / HERALD_ARGS (see
# benchmark_servers in bench/lib.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
LOG_TAG=repl
WORK=target/bench-repl
# shellcheck source=bench/lib.sh
source bench/lib.sh
KEYS=1000000
LOAD_SECS=10
REPEAT=3
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) KEYS=$2; shift ;;
        --load-secs) LOAD_SECS=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        --quick) KEYS=100000; LOAD_SECS=2; REPEAT=1 ;;
        *) die "unknown argument $1" ;;
    esac
    shift
done
benchmark_servers
# A replica stores the RDB it receives in its dir (repl-diskless-load
# disabled, both servers' default).
DATA="$WORK/data"
mkdir -p "$DATA"
REDIS_FLAGS+=(--bind 127.0.0.1 --dir "$DATA" --repl-diskless-sync yes --repl-diskless-sync-delay 0)
HERALD_FLAGS+=(--bind 127.0.0.1 --dir "$DATA" --repl-diskless-sync yes --repl-diskless-sync-delay 0)

declare -A RESULTS_BY
FIELDS="full_sync_s lag_p50_ms lag_p99_ms lag_max_ms sets_per_s publishes_per_s"
for rep in $(seq 1 "$REPEAT"); do
    for server in $(server_order "$rep"); do
        PRIMARY_PORT=$(free_port)
        start_server "$server" "$PRIMARY_PORT" || die "$server did not start"
        PRIMARY_PID=$SERVER_PID
        REPLICA_PORT=$(free_port)
        start_server "$server" "$REPLICA_PORT" || { stop_pid "$PRIMARY_PID"; die "$server did not start"; }
        REPLICA_PID=$SERVER_PID
        line=$(python3 bench/repl_probe.py "$PRIMARY_PORT" "$REPLICA_PORT" "$KEYS" "$LOAD_SECS")
        stop_pid "$REPLICA_PID"
        stop_pid "$PRIMARY_PID"
        SERVER_PID=""
        log "$server run $rep: $line"
        for field in $FIELDS; do
            value=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$line" "$field")
            RESULTS_BY["$field $server"]+="$value "
        done
    done
done
printf '\n%-16s %12s %12s %8s   (median of %s runs, %s keys, %s s of load)\n' figure redis herald ratio "$REPEAT" "$KEYS" "$LOAD_SECS"
for field in $FIELDS; do
    # shellcheck disable=SC2086
    read -r r h < <(python3 -c 'import statistics,sys; a=sys.argv[1].split(); b=sys.argv[2].split(); print(statistics.median(map(float,a)), statistics.median(map(float,b)))' "${RESULTS_BY["$field redis"]}" "${RESULTS_BY["$field herald"]}")
    ratio=$(python3 -c 'import sys; r,h=float(sys.argv[1]),float(sys.argv[2]); print(f"{h/r:.2f}" if r else "-")' "$r" "$h")
    printf '%-16s %12s %12s %8s\n' "$field" "$r" "$h" "$ratio"
done
