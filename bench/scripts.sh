#!/usr/bin/env bash
# bench/scripts.sh: Lua scripting (EVALSHA), herald against redis-server 7.0,
# same machine, same run.
#
# Builds herald (release), then runs every row below alternately on a freshly
# started redis-server and herald (each run gets a new server):
#   redis-server --port P --save "" --appendonly no
#   herald       --port P --save "" --appendonly no
# caches the row's script with SCRIPT LOAD (redis-cli), checks one EVALSHA's
# reply, then runs
#   redis-benchmark -h 127.0.0.1 -p P -c 50 -n N -P {1|16} -r 100000 --csv \
#       EVALSHA <sha> <numkeys> <keys with __rand_int__>
# and checks that the server answered no command with an error (INFO stats
# total_error_replies; redis-benchmark counts error replies as successes).
# Every row is repeated; the medians (ops/s), the herald/redis ratios, every
# run's figure, the machine and the exact commands go to
# docs/benchmarks-scripts.md.
#
# Rows (goal: herald >= 1.0x redis-server on each):
#   small-p1, small-p16  return redis.call('INCR', KEYS[1])
#   ten-p1, ten-p16      10 redis.call()s on 3 declared keys that share one
#                        hash tag (5 INCR, EXPIRE, SET, GET, HSET, HGET)
#
# Usage: bench/scripts.sh [--quick] [--repeat N] [--rows small-p1,ten-p16] [--out FILE.md]
#   --quick    each row once with a small -n (CI: checks the machinery,
#              measures nothing; also QUICK=1); writes
#              target/bench-compare/benchmarks-scripts-quick.md unless --out
#   --repeat N runs per row and server (default 3)
#   --rows     only these rows
#   --out      where the Markdown goes
# Environment: SKIP_BUILD=1 with HERALD_BIN (use an existing binary),
# HERALD_ARGS and REDIS_ARGS (extra server flags), SCALE (multiplies every
# row's -n, default 1), KEEP_GOING=1 (exit 0 even if some runs failed).
# Exit status: 0 if every run succeeded, 1 otherwise (the report is written
# either way), 2 if the machinery itself failed.
set -euo pipefail

cd "$(dirname "$0")/.."
LOG_TAG=scripts
WORK=target/bench-compare/scripts
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_args 2,35 "$ROOT/target/bench-compare/benchmarks-scripts-quick.md" "$ROOT/docs/benchmarks-scripts.md" "$@"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

benchmark_servers

# --- the scripts ----------------------------------------------------------------
SMALL_SCRIPT="return redis.call('INCR', KEYS[1])"
# A counter bumped five times, kept an hour, its value copied to a string
# and a hash field and read back: every key is declared in KEYS, and the
# three share the hash tag {bench}, so the script is cluster-legal.
TEN_SCRIPT=$(cat <<'LUA'
local n
for _ = 1, 5 do n = redis.call('INCR', KEYS[1]) end
redis.call('EXPIRE', KEYS[1], 3600)
redis.call('SET', KEYS[2], n)
local last = redis.call('GET', KEYS[2])
redis.call('HSET', KEYS[3], 'last', last)
return redis.call('HGET', KEYS[3], 'last')
LUA
)
declare -A SCRIPT KEYS_OF EXPECT PIPE N LABEL
SCRIPT[small]=$SMALL_SCRIPT
KEYS_OF[small]="1 key:__rand_int__"
EXPECT[small]=1 # the reply of the first run on fresh keys
SCRIPT[ten]=$TEN_SCRIPT
KEYS_OF[ten]="3 {bench}:n:__rand_int__ {bench}:s:__rand_int__ {bench}:h:__rand_int__"
EXPECT[ten]=5

ALL_ROWS="small-p1 small-p16 ten-p1 ten-p16"
# Requests per run: a few seconds each for redis-server on a 2-core machine
# (--quick: about a second).
if [ "$QUICK" = 1 ]; then
    N[small-p1]=20000; N[small-p16]=50000; N[ten-p1]=10000; N[ten-p16]=20000
else
    N[small-p1]=200000; N[small-p16]=500000; N[ten-p1]=100000; N[ten-p16]=200000
fi
SCALE=${SCALE:-1}
for r in $ALL_ROWS; do
    N[$r]=$(python3 -c "print(max(1, int(${N[$r]} * float('$SCALE'))))")
    PIPE[$r]=${r##*-p}
done
LABEL[small-p1]="small script (1 INCR), -P 1"
LABEL[small-p16]="small script (1 INCR), -P 16"
LABEL[ten-p1]="10-command script, -P 1"
LABEL[ten-p16]="10-command script, -P 16"

select_rows "$ALL_ROWS"

# bench_argv ROW PORT SHA: sets ARGV, the redis-benchmark command line.
bench_argv() {
    local row=$1 port=$2 sha=$3 keys
    read -ra keys <<<"${KEYS_OF[${row%-p*}]}"
    ARGV=(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "${N[$row]}" -P "${PIPE[$row]}"
          -r 100000 --csv EVALSHA "$sha" "${keys[@]}")
}

# run_one ROW SERVER REP: one run on a fresh server.
run_one() {
    local row=$1 server=$2 rep=$3 script=${1%-p*}
    local sha reply errors keys
    start_run "$row" "$server" "$rep" || return 0
    local port=$PORT out="$RUN.csv" err="$RUN.err"
    local cli=(timeout 10 redis-cli -h 127.0.0.1 -p "$port")
    sha=$("${cli[@]}" SCRIPT LOAD "${SCRIPT[$script]}" 2>&1) || true
    if ! [[ $sha =~ ^[0-9a-f]{40}$ ]]; then
        record_failure "$row" "$server" "$rep" "SCRIPT LOAD: $sha"
        stop_server
        return
    fi
    # One call on keys the load never touches (its random ids are numbers).
    read -ra keys <<<"${KEYS_OF[$script]//__rand_int__/check}"
    reply=$("${cli[@]}" EVALSHA "$sha" "${keys[@]}" 2>&1) || true
    if [ "$reply" != "${EXPECT[$script]}" ]; then
        record_failure "$row" "$server" "$rep" "EVALSHA replied '$reply', expected '${EXPECT[$script]}'"
        stop_server
        return
    fi
    bench_argv "$row" "$port" "$sha"
    if timeout -k 5 300 "${ARGV[@]}" >"$out" 2>"$err"; then
        errors=$("${cli[@]}" INFO stats 2>/dev/null | tr -d '\r' |
                 awk -F: '$1 == "total_error_replies" {print $2}')
        # Appends the run to RESULTS; prints its figures, or why it failed.
        local summary
        if summary=$(python3 - "$out" "$RESULTS" "$row" "$server" "$rep" "${errors:-unknown}" <<'EOF'
import csv, json, sys
path, results, row, server, rep, errors = sys.argv[1:]
rec = [r for r in csv.reader(open(path)) if r]
rec = dict(zip(rec[0], rec[-1]))
res = {"rps": float(rec["rps"]), "p50_ms": float(rec["p50_latency_ms"]),
       "p99_ms": float(rec["p99_latency_ms"])}
out = {"row": row, "server": server, "rep": int(rep), "ok": errors == "0", "result": res}
if errors != "0":
    out["error"] = f"the server counted {errors} error replies (total_error_replies)"
with open(results, "a") as f:
    f.write(json.dumps(out) + "\n")
print(out.get("error") or f"{res['rps']:,.0f} ops/s, p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms")
sys.exit(0 if out["ok"] else 1)
EOF
        ); then
            log "$row on $server (run $rep): $summary"
        else
            FAILURES=$((FAILURES + 1))
            log "$row on $server (run $rep) failed: $summary"
        fi
    else
        record_failure "$row" "$server" "$rep" "redis-benchmark: $(tail -n 3 "$err" | tr '\n' ' ')"
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "$server died during $row; its log: $(tail -n 3 "$WORK/$server-$port.log" | tr '\n' ' ')"
    fi
    stop_server
}

log "rows: $SELECTED; $REPEAT run(s) each; load average $LOAD_START; results in $RESULTS"
for row in $SELECTED; do
    for rep in $(seq 1 "$REPEAT"); do
        for server in $(server_order "$rep"); do
            run_one "$row" "$server" "$rep"
        done
    done
done

# --- the report -----------------------------------------------------------------
ROWS_JSON="$WORK/rows.json"
{
    printf '['
    sep=""
    for row in $SELECTED; do
        bench_argv "$row" P '<sha>'
        printf '%s{"row":"%s","label":%s,"command":%s}' "$sep" "$row" \
            "$(json_str "${LABEL[$row]}")" "$(json_str "$(shell_join "${ARGV[@]}")")"
        sep=","
    done
    printf ']\n'
} >"$ROWS_JSON"
MACHINE="$WORK/machine.json"
machine_json "$MACHINE" load_start="$LOAD_START" load_end="$(cut -d' ' -f1-3 /proc/loadavg)" \
    benchmark_version="$(redis-benchmark --version 2>/dev/null || echo unknown)" \
    redis_flags="redis-server --port P $(shell_join "${REDIS_FLAGS[@]}")" \
    herald_flags="herald --port P $(shell_join "${HERALD_FLAGS[@]}")" \
    small_script="$SMALL_SCRIPT" ten_script="$TEN_SCRIPT"
mkdir -p "$(dirname "$OUT")"
python3 bench/scripts_report.py "$RESULTS" "$ROWS_JSON" "$MACHINE" "$OUT" || die "cannot write the report"
finish "$OUT"
