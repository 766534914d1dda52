#!/usr/bin/env bash
# bench/stall.sh: how long a background snapshot stops other clients, herald
# against redis-server, same machine, same run.
#
# For each data set (KEYS small strings; one list of LIST elements), each
# command (BGSAVE, BGREWRITEAOF) and each server, alternately, on a fresh
# server: bench/stall_probe.py loads the data, then measures the worst GET
# round trip while the command runs (and before, as a baseline). Prints one
# line per run and the medians. Then the same for a full resync: a fresh
# primary with KEYS keys and a fresh replica of the same server, diskless
# and disk-based (bench/resync_probe.py).
#
# Usage: bench/stall.sh [--keys N] [--list N] [--repeat R]
#        (defaults 1000000 keys, a 3000000-element list, 3 runs)
# Environment: HERALD_BIN, SKIP_BUILD=1, REDIS_ARGS / HERALD_ARGS (see
# benchmark_servers in bench/lib.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
LOG_TAG=stall
WORK=target/bench-stall
# shellcheck source=bench/lib.sh
source bench/lib.sh
KEYS=1000000
LIST=3000000
REPEAT=3
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) KEYS=$2; shift ;;
        --list) LIST=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        *) die "unknown argument $1" ;;
    esac
    shift
done
benchmark_servers
DATA="$WORK/data"
REDIS_FLAGS+=(--bind 127.0.0.1 --dir "$DATA")
HERALD_FLAGS+=(--bind 127.0.0.1 --dir "$DATA")

REPLICA_PID=""
trap 'stop_pid "$REPLICA_PID"; cleanup' EXIT

declare -A RESULTS_BY
ORDER=()
# record KEY LINE: logs a run's probe output (LINE, JSON) and keeps its worst
# round trip under KEY ("data command server"); $rep is the run.
record() {
    local worst
    worst=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["worst_ms"])' "$2")
    log "$1 run $rep: $2"
    [ -n "${RESULTS_BY[$1]+set}" ] || ORDER+=("$1")
    RESULTS_BY["$1"]+="$worst "
}

# Each data set: a label and stall_probe.py's KEYS and LIST arguments.
DATASETS=("keys $KEYS 0" "list 2 $LIST")
for data in "${DATASETS[@]}"; do
    read -r label nkeys nlist <<<"$data"
    for cmd in BGSAVE BGREWRITEAOF; do
        for rep in $(seq 1 "$REPEAT"); do
            for server in $(server_order "$rep"); do
                rm -rf "$DATA" && mkdir -p "$DATA"
                extra=()
                [ "$cmd" = BGREWRITEAOF ] && extra=(--appendonly yes)
                PORT=$(free_port)
                start_server "$server" "$PORT" "${extra[@]}" || die "$server did not start"
                line=$(python3 bench/stall_probe.py "$PORT" "$nkeys" "$cmd" "$nlist")
                stop_server
                record "$label $cmd $server" "$line"
            done
        done
    done
done
for diskless in yes no; do
    label=$([ "$diskless" = yes ] && echo diskless || echo disk)
    for rep in $(seq 1 "$REPEAT"); do
        for server in $(server_order "$rep"); do
            rm -rf "$DATA" && mkdir -p "$DATA"
            sync=(--repl-diskless-sync "$diskless" --repl-diskless-sync-delay 0)
            PORT=$(free_port)
            start_server "$server" "$PORT" "${sync[@]}" || die "$server did not start"
            PRIMARY_PORT=$PORT
            PRIMARY_PID=$SERVER_PID
            PORT=$(free_port)
            start_server "$server" "$PORT" --dbfilename replica.rdb ||
                die "$server (replica) did not start"
            REPLICA_PID=$SERVER_PID
            SERVER_PID=$PRIMARY_PID
            line=$(python3 bench/resync_probe.py "$PRIMARY_PORT" "$PORT" "$KEYS")
            stop_pid "$REPLICA_PID"
            REPLICA_PID=""
            stop_server
            record "$label resync $server" "$line"
        done
    done
done

printf '\n%-8s %-14s %-8s %s\n' data command server "worst GET round trip during the command, median of $REPEAT (ms)"
echo "(keys: $KEYS small strings; list: one list of $LIST elements; resync: KEYS"
echo " keys, a full resync to a fresh replica, diskless or disk-based)"
for key in "${ORDER[@]}"; do
    # shellcheck disable=SC2086
    median=$(python3 -c 'import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))' ${RESULTS_BY[$key]})
    # shellcheck disable=SC2086
    printf '%-8s %-14s %-8s %s\n' $key "$median"
done
