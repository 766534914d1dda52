#!/usr/bin/env bash
# bench/compare.sh: herald against redis-server, same machine, same run.
#
# Builds herald and herald-bench (release), then runs the benchmark matrix
# (the rows below) alternately on a freshly started redis-server and herald (each run gets a
# new server), repeats every row, and writes the medians, the herald/redis
# ratios, the machine and a chart to docs/benchmarks.md (+ benchmarks.svg).
#
# Usage: bench/compare.sh [--quick] [--repeat N] [--rows 1a,2,9b] [--out FILE.md]
#   --quick    each row once, 1 s, small sizes (CI: checks the machinery;
#              also QUICK=1); writes target/bench-compare/benchmarks-quick.md
#              unless --out is given
#   --repeat N runs per row and server (default 3)
#   --rows     only these rows (ids: 1a 1b 2 3 4 5 6 7 8 9a 9b 10)
#   --out      where the Markdown goes (the SVG goes beside it)
# Environment: BENCH_THREADS (generator threads, default 1), HERALD_ARGS and
# REDIS_ARGS (extra server flags), SKIP_BUILD=1 with HERALD_BIN /
# HERALD_BENCH_BIN (use existing binaries), KEEP_GOING=1 (exit 0 even if
# some runs failed).
# Exit status: 0 if every run succeeded, 1 otherwise (the report is written
# either way), 2 if the machinery itself failed.
set -euo pipefail

cd "$(dirname "$0")/.."
LOG_TAG=compare
WORK=target/bench-compare
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_args 2,21 "$WORK/benchmarks-quick.md" "$ROOT/docs/benchmarks.md" "$@"
SVG="${OUT%.md}.svg"
BENCH_THREADS=${BENCH_THREADS:-1}

need_tools

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "building herald and herald-bench (release)"
    # Two packages of the workspace (herald-bench is bench/); every --bin
    # filter applies to every -p, so both are named.
    cargo build --release -p herald -p herald-bench --bin herald --bin herald-bench >&2 || die "cargo build failed"
fi
HERALD_BIN=${HERALD_BIN:-$ROOT/target/release/herald}
HERALD_BENCH_BIN=${HERALD_BENCH_BIN:-$ROOT/target/release/herald-bench}
[ -x "$HERALD_BIN" ] || die "no herald binary at $HERALD_BIN"
[ -x "$HERALD_BENCH_BIN" ] || die "no herald-bench binary at $HERALD_BENCH_BIN"

# Thousands of connections: raise the open-files limit (inherited by the
# servers and the generator).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
MAXCLIENTS=$(( NOFILE - 100 ))
[ "$MAXCLIENTS" -gt 50000 ] && MAXCLIENTS=50000
if [ "$QUICK" != 1 ] && [ "$MAXCLIENTS" -lt 10100 ]; then
    log "warning: open-files limit $NOFILE is too low for the 10,000-connection rows"
fi

# --- servers ----------------------------------------------------------------
COMMON_OPTS=(--save "" --appendonly no --client-output-buffer-limit "pubsub 32mb 8mb 60"
             --maxclients "$MAXCLIENTS")
# shellcheck disable=SC2206
REDIS_FLAGS=(--bind 127.0.0.1 "${COMMON_OPTS[@]}" ${REDIS_ARGS:-})
HERALD_FLAGS=()
HERALD_DROPPED=""

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# herald may not take every redis-server option yet: keep those it accepts.
probe_herald_options() {
    local port i
    port=$(free_port)
    start_server herald "$port" --appendonly no || die "herald does not start with: $HERALD_BIN --port $port --appendonly no"
    stop_server
    local wanted=(--bind 127.0.0.1 "${COMMON_OPTS[@]}")
    for ((i = 0; i < ${#wanted[@]}; i += 2)); do
        local name=${wanted[i]} value=${wanted[i + 1]}
        port=$(free_port)
        if start_server herald "$port" "$name" "$value" 2>/dev/null; then
            HERALD_FLAGS+=("$name" "$value")
            stop_server
        else
            log "herald refuses $name '$value': dropped from its command line"
            HERALD_DROPPED+="$name '$value' "
        fi
    done
    # shellcheck disable=SC2206
    HERALD_FLAGS+=(${HERALD_ARGS:-})
}

# --- the matrix ---------------------------------------------------------------
# Sizes: full, or small for --quick.
if [ "$QUICK" = 1 ]; then
    TIMING=(--warmup 0.3 --duration 1 --drain 2 --timeout 5)
    R3_SUBS=100; R4_SUBS=50; R4_CH=10; R5_SUBS=10; R5_EXTRA=100; R6_N=1000
    R9A_CONNS=1000; R9B_CLIENTS=200; R9B_CH=20; HOLD=1
else
    TIMING=(--warmup 2 --duration 8 --drain 5 --timeout 10)
    R3_SUBS=1000; R4_SUBS=500; R4_CH=100; R5_SUBS=50; R5_EXTRA=1000; R6_N=10000
    R9A_CONNS=10000; R9B_CLIENTS=5000; R9B_CH=100; HOLD=2
fi
ALL_ROWS="1a 1b 2 3 4 5 6 7 8 9a 9b 10"
declare -A LABEL ARGS
LABEL[1a]="publish-only, pipeline 16"
ARGS[1a]="--publishers 1 --subscribers 0 --pipeline 16"
LABEL[1b]="publish-only, pipeline 64"
ARGS[1b]="--publishers 1 --subscribers 0 --pipeline 64"
LABEL[2]="1 publisher → 50 subscribers, 1 channel"
ARGS[2]="--publishers 1 --subscribers 50 --channels 1"
LABEL[3]="1 publisher → $R3_SUBS subscribers, 1 channel, 1 KiB"
ARGS[3]="--publishers 1 --subscribers $R3_SUBS --channels 1 --payload 1024"
LABEL[4]="4 publishers → $R4_SUBS subscribers over $R4_CH channels"
ARGS[4]="--publishers 4 --subscribers $R4_SUBS --channels $R4_CH"
LABEL[5]="$R5_SUBS pattern subscribers, $R5_EXTRA non-matching patterns each"
ARGS[5]="--mode pattern --publishers 1 --subscribers $R5_SUBS --channels 1 --extra-patterns $R5_EXTRA"
LABEL[6]="$R6_N channels, 1 subscriber each"
ARGS[6]="--publishers 4 --subscribers $R6_N --channels $R6_N"
LABEL[7]="sharded: 4 publishers → $R4_SUBS subscribers over $R4_CH channels"
ARGS[7]="--mode sharded --publishers 4 --subscribers $R4_SUBS --channels $R4_CH"
LABEL[8]="latency: row 2 at half of redis-server's maximum"
ARGS[8]="--publishers 1 --subscribers 50 --channels 1 --rate RATE"
LABEL[9a]="memory: $R9A_CONNS idle connections"
ARGS[9a]="--hold $HOLD --subscribers $R9A_CONNS --channels-per-sub 0"
LABEL[9b]="memory: $R9B_CLIENTS clients × $R9B_CH channels"
ARGS[9b]="--hold $HOLD --subscribers $R9B_CLIENTS --channels $R9B_CH --channels-per-sub $R9B_CH"
# Row 2's shape plus 5 subscribers that stop reading when the measured window
# starts; a 1 MB pubsub hard limit (both servers) cuts them off within it.
LABEL[10]="1 publisher → 50 subscribers on 1 channel, + 5 that never read"
ARGS[10]="--publishers 1 --subscribers 50 --channels 1 --slow-subscribers 5"

# row_server_flags ROW: sets ROW_FLAGS, the extra server flags of a row.
row_server_flags() {
    ROW_FLAGS=()
    case $1 in
        10) ROW_FLAGS=(--client-output-buffer-limit "pubsub 1mb 0 0") ;;
    esac
}

select_rows "$ALL_ROWS"

# run_load ROW SERVER REP ARGS...: one load run on a fresh server.
run_load() {
    local row=$1 server=$2 rep=$3
    shift 3
    row_server_flags "$row"
    start_run "$row" "$server" "$rep" "${ROW_FLAGS[@]}" || return 0
    local port=$PORT out="$RUN.json" err="$RUN.err"
    if timeout -k 5 300 "$HERALD_BENCH_BIN" --port "$port" --threads "$BENCH_THREADS" \
        --server-pid "$SERVER_PID" "${TIMING[@]}" "$@" --json >"$out" 2>"$err"; then
        printf '{"kind":"run","row":"%s","server":"%s","rep":%s,"ok":true,"result":%s}\n' \
            "$row" "$server" "$rep" "$(tail -n 1 "$out")" >>"$RESULTS"
        log "row $row on $server (run $rep): $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("published/s %s delivered/s %s p99 %s us cpu %s%% server cpu %s%%%s" % (r["published_per_s"], r["delivered_per_s"], (r.get("latency_us") or {}).get("p99"), r["cpu_percent"], r.get("server_cpu_percent"), " SATURATED" if r["saturated"] else ""))' "$(tail -n 1 "$out")")"
    else
        record_failure "$row" "$server" "$rep" "$(tail -n 3 "$err" | tr '\n' ' ')"
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "$server died during row $row; its log: $(tail -n 3 "$WORK/$server-$port.log" | tr '\n' ' ')"
    fi
    stop_server
}

# run_memory ROW SERVER REP ARGS...: RSS with everything established minus
# the empty server's RSS.
run_memory() {
    local row=$1 server=$2 rep=$3
    shift 3
    local empty loaded i
    start_run "$row" "$server" "$rep" || return 0
    local port=$PORT out="$RUN.out" err="$RUN.err"
    sleep 0.2
    empty=$(rss_kb "$SERVER_PID")
    timeout -k 5 300 "$HERALD_BENCH_BIN" --port "$port" --threads "$BENCH_THREADS" \
        --timeout 10 "$@" --json >"$out" 2>"$err" &
    BENCH_PID=$!
    loaded=""
    for i in $(seq 1 1200); do # 120 s at most
        if grep -q '^READY' "$out" 2>/dev/null; then
            sleep 0.3 # let the server settle
            loaded=$(rss_kb "$SERVER_PID")
            break
        fi
        kill -0 "$BENCH_PID" 2>/dev/null || break
        sleep 0.1
    done
    if wait "$BENCH_PID" && [ -n "$loaded" ]; then
        printf '{"kind":"run","row":"%s","server":"%s","rep":%s,"ok":true,"result":{"rss_empty_kb":%s,"rss_kb":%s,"delta_kb":%s,"hold":%s}}\n' \
            "$row" "$server" "$rep" "$empty" "$loaded" "$((loaded - empty))" "$(tail -n 1 "$out")" >>"$RESULTS"
        log "row $row on $server (run $rep): RSS $empty -> $loaded KiB"
    else
        record_failure "$row" "$server" "$rep" "$(tail -n 3 "$err" | tr '\n' ' ')"
    fi
    BENCH_PID=""
    stop_server
}

run_row() {
    local row=$1 rep server args argv
    args=${ARGS[$row]}
    if [ "$row" = 8 ]; then
        local max
        max=$(python3 bench/report.py median "$RESULTS" 2 redis published_per_s)
        if [ -z "$max" ]; then
            log "row 8: measuring redis-server's maximum for row 2 first"
            read -ra argv <<<"${ARGS[2]}"
            for rep in $(seq 1 "$REPEAT"); do
                run_load 2 redis "$rep" "${argv[@]}"
            done
            max=$(python3 bench/report.py median "$RESULTS" 2 redis published_per_s)
        fi
        [ -n "$max" ] || { record_failure 8 redis 0 "no maximum for row 2"; return; }
        RATE=$(python3 -c "print(max(1, int(float('$max') / 2)))")
        args=${args/RATE/$RATE}
        log "row 8: rate $RATE publishes/s"
    fi
    row_server_flags "$row"
    printf '{"kind":"row","row":"%s","label":%s,"args":%s,"server_args":%s%s}\n' "$row" \
        "$(json_str "${LABEL[$row]}")" "$(json_str "$args")" \
        "$(json_str "${ROW_FLAGS[*]}")" \
        "$([ "$row" = 8 ] && echo ",\"rate\":$RATE")" >>"$RESULTS"
    read -ra argv <<<"$args"
    for rep in $(seq 1 "$REPEAT"); do
        for server in $(server_order "$rep"); do
            case $row in
                9*) run_memory "$row" "$server" "$rep" "${argv[@]}" ;;
                *) run_load "$row" "$server" "$rep" "${argv[@]}" ;;
            esac
        done
    done
}

log "probing herald's options"
probe_herald_options
log "rows: $SELECTED; $REPEAT run(s) each; generator threads $BENCH_THREADS; results in $RESULTS"
for row in $SELECTED; do
    run_row "$row"
done

# --- the report -----------------------------------------------------------------
MACHINE="$WORK/machine.json"
machine_json "$MACHINE" bench_threads="$BENCH_THREADS" herald_dropped="$HERALD_DROPPED" \
    redis_flags="redis-server --port P $(shell_join "${REDIS_FLAGS[@]}")" \
    herald_flags="herald --port P $(shell_join "${HERALD_FLAGS[@]}")"
mkdir -p "$(dirname "$OUT")"
python3 bench/report.py render "$RESULTS" "$MACHINE" "$OUT" "$SVG" || die "cannot write the report"
finish "$OUT and $SVG"
