#!/usr/bin/env bash
# bench/commands.sh: herald's per-command speed and memory against
# redis-server, same machine, same run.
#
# Builds herald (release), then runs every row below alternately on a freshly
# started redis-server and herald (each run gets a new server):
#   redis-server --port P --save "" --appendonly no
#   herald       --port P --save "" --appendonly no
# Rows:
#   p16, p1        redis-benchmark -c 50 -n N -r 100000 -P {16|1} --csv
#                  -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,
#                     zpopmin,lrange_100,lrange_300,mset
#                  (one redis-benchmark per test, in this order, on the
#                  same server: one figure per test)
#   xadd-pP        XADD s * f1 v1 f2 v2 (a new entry per request)
#   xrange-pP      XRANGE s - + COUNT 10 on a stream of 1,000 entries
#   xrg1-pP        XREADGROUP GROUP g c COUNT 1 STREAMS s >  on a stream
#   xrg10-pP       ... COUNT 10                              holding enough
#                  entries for every request to get new ones
#   xack-pP        XACK s g 0-<random> on 100,000 pending entries 0-1..0-100000
#                  (random ids: about 63% are pending when acknowledged)
#   (P = 16 and 1)
#   mem-strings    RSS growth for 1,000,000 SET key:i 8-byte values
#   mem-hashes     1,000,000 fields in 10,000 hashes (HSET h:j f:i v)
#   mem-zset       a 1,000,000-member sorted set (ZADD z i m:i)
#   mem-list       a 3,000,000-element list (RPUSH l in batches of 100)
#   mem-stream     1,000,000 stream entries (XADD s * f v)
#   mem-subs       500,000 channel subscriptions held by 10 connections
#                  (bench/subs_hold.py: SUBSCRIBE ch:i in batches of 1,000)
# The stream and memory rows load their data with redis-cli --pipe (but
# mem-subs).
# Beside ops/s, each load run records the server's CPU time per request
# (all its threads, from /proc/PID/task/*/schedstat): a figure that the
# other load on the machine disturbs far less than ops/s.
# After each load run, INFO stats must show total_error_replies:0
# (redis-benchmark counts error replies as successes). The medians (ops/s,
# or RSS growth in MB), the herald/redis ratios, every run's figure, the
# machine and the exact commands go to docs/benchmarks-commands.md, with a
# chart (docs/benchmarks-commands.svg).
#
# Usage: bench/commands.sh [--quick] [--repeat N] [--rows p16,xadd-p1] [--out FILE.md]
#   --quick    each kind of row once (the -P 16 stream rows, two memory
#              rows) with a small -n, memory rows 100x smaller (CI: checks
#              the machinery, measures nothing; also QUICK=1); writes
#              target/bench-compare/benchmarks-commands-quick.md unless --out
#   --repeat N runs per row and server (default 3)
#   --rows     only these rows
#   --out      where the Markdown goes (the SVG goes beside it)
# Environment: SKIP_BUILD=1 with HERALD_BIN (use an existing binary),
# HERALD_ARGS and REDIS_ARGS (extra server flags), SCALE (multiplies every
# load row's -n, default 1), KEEP_GOING=1 (exit 0 even if some runs failed).
# Exit status: 0 if every run succeeded, 1 otherwise (the report is written
# either way), 2 if the machinery itself failed.
set -euo pipefail

cd "$(dirname "$0")/.."
LOG_TAG=commands
WORK=target/bench-compare/commands
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_args 2,46 "$ROOT/target/bench-compare/benchmarks-commands-quick.md" "$ROOT/docs/benchmarks-commands.md" "$@"
SVG="${OUT%.md}.svg"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

benchmark_servers

TESTS=set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_300,mset
STREAM_KINDS="xadd xrange xrg1 xrg10 xack"
MEM_ROWS="mem-strings mem-hashes mem-zset mem-list mem-stream mem-subs"
ALL_ROWS="p16 p1"
for k in $STREAM_KINDS; do ALL_ROWS+=" $k-p16 $k-p1"; done
ALL_ROWS+=" $MEM_ROWS"

# Requests per load run: a few seconds per test for redis-server on a
# 2-core machine; --quick, a fraction of a second. MEM_SCALE divides the
# memory rows' sizes.
declare -A N
if [ "$QUICK" = 1 ]; then
    N[p16]=20000; N[p1]=5000; N_STREAM16=20000; N_STREAM1=5000; MEM_DIV=100
else
    N[p16]=500000; N[p1]=100000; N_STREAM16=300000; N_STREAM1=100000; MEM_DIV=1
fi
SCALE=${SCALE:-1}
scaled() { python3 -c "print(max(1, int($1 * float('$SCALE'))))"; }
N[p16]=$(scaled "${N[p16]}")
N[p1]=$(scaled "${N[p1]}")
for k in $STREAM_KINDS; do
    N[$k-p16]=$(scaled "$N_STREAM16")
    N[$k-p1]=$(scaled "$N_STREAM1")
done
# Each XREADGROUP COUNT 10 needs 10 new entries: a quarter of the requests
# keeps the stream it loads first to a few million entries.
N[xrg10-p16]=$(( N[xrg10-p16] / 4 + 1 ))
N[xrg10-p1]=$(( N[xrg10-p1] / 4 + 1 ))
XACK_IDS=$((100000 / MEM_DIV))

declare -A LABEL STREAM_CMD
LABEL[p16]="redis-benchmark -t, -P 16"
LABEL[p1]="redis-benchmark -t, -P 1"
STREAM_CMD[xadd]="XADD s * f1 v1 f2 v2"
STREAM_CMD[xrange]="XRANGE s - + COUNT 10"
STREAM_CMD[xrg1]="XREADGROUP GROUP g c COUNT 1 STREAMS s >"
STREAM_CMD[xrg10]="XREADGROUP GROUP g c COUNT 10 STREAMS s >"
STREAM_CMD[xack]="XACK s g 0-__rand_int__"
for k in $STREAM_KINDS; do
    for p in 16 1; do LABEL[$k-p$p]="${STREAM_CMD[$k]}, -P $p"; done
done
LABEL[mem-strings]="1,000,000 small strings (SET key:i 8 bytes)"
LABEL[mem-hashes]="1,000,000 fields in 10,000 hashes"
LABEL[mem-zset]="a 1,000,000-member sorted set"
LABEL[mem-list]="a 3,000,000-element list"
LABEL[mem-stream]="1,000,000 stream entries"
LABEL[mem-subs]="500,000 channel subscriptions (10 connections)"

# --quick checks each kind of row once (CI): the -P 1 stream rows and three
# memory rows only repeat machinery the others run.
if [ "$QUICK" = 1 ] && [ -z "$ROWS" ]; then
    ROWS="p16,p1,xadd-p16,xrange-p16,xrg1-p16,xrg10-p16,xack-p16,mem-strings,mem-list"
fi
select_rows "$ALL_ROWS"

# bench_argv ROW PORT [TEST]: sets ARGV, the redis-benchmark command line of
# a load row (of its test TEST for p16 / p1).
bench_argv() {
    local row=$1 port=$2 pipe=${1##*-p} kind=${1%-p*}
    local base=(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "${N[$row]}")
    case $row in
        p16 | p1)
            ARGV=("${base[@]}" -r 100000 -P "${row#p}" --csv -t "${3:-$TESTS}") ;;
        xack-*)
            local cmd
            read -ra cmd <<<"${STREAM_CMD[$kind]}"
            ARGV=("${base[@]}" -r "$XACK_IDS" -P "$pipe" --csv "${cmd[@]}") ;;
        *)
            local cmd
            read -ra cmd <<<"${STREAM_CMD[$kind]}"
            ARGV=("${base[@]}" -P "$pipe" --csv "${cmd[@]}") ;;
    esac
}

# pipe_load PORT COUNT PYTHON_EXPR: sends COUNT commands built by
# PYTHON_EXPR (a function of i returning the argument list) through
# redis-cli --pipe; fails if one of them failed.
pipe_load() {
    local port=$1 count=$2 expr=$3 out
    out=$(python3 - "$count" "$expr" <<'EOF' | timeout 300 redis-cli -h 127.0.0.1 -p "$port" --pipe 2>&1
import sys
count, expr = int(sys.argv[1]), sys.argv[2]
build = eval("lambda i: " + expr)
w = sys.stdout.buffer
chunk = []
for i in range(count):
    args = [str(a).encode() for a in build(i)]
    chunk.append(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    if len(chunk) >= 10000:
        w.write(b"".join(chunk))
        chunk = []
w.write(b"".join(chunk))
EOF
    ) || { echo "$out"; return 1; }
    [[ $out == *"errors: 0,"* ]] || { echo "$out"; return 1; }
}

# stream_setup ROW PORT: the data a stream row reads.
stream_setup() {
    local row=$1 port=$2 kind=${1%-p*} cli=(timeout 60 redis-cli -h 127.0.0.1 -p "$2")
    case $kind in
        xrange) pipe_load "$port" 1000 "['XADD', 's', '*', 'f1', 'v1', 'f2', 'v2']" ;;
        xrg1 | xrg10)
            local per=${kind#xrg}
            "${cli[@]}" XGROUP CREATE s g '$' MKSTREAM >/dev/null &&
                pipe_load "$port" $(( N[$row] * per + 1000 )) "['XADD', 's', '*', 'f1', 'v1', 'f2', 'v2']" ;;
        xack)
            pipe_load "$port" "$XACK_IDS" "['XADD', 's', f'0-{i + 1}', 'f1', 'v1']" &&
                "${cli[@]}" XGROUP CREATE s g 0 >/dev/null &&
                "${cli[@]}" XREADGROUP GROUP g c COUNT "$XACK_IDS" STREAMS s '>' >/dev/null ;;
        *) return 0 ;;
    esac
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# mem_load ROW PORT: the data of a memory row.
mem_load() {
    local port=$2
    case $1 in
        mem-strings) pipe_load "$port" $((1000000 / MEM_DIV)) "['SET', f'key:{i}', 'val:%04d' % (i % 10000)]" ;;
        mem-hashes) pipe_load "$port" $((1000000 / MEM_DIV)) "['HSET', f'h:{i % 10000}', f'f:{i}', 'v']" ;;
        mem-zset) pipe_load "$port" $((1000000 / MEM_DIV)) "['ZADD', 'z', i, f'm:{i}']" ;;
        mem-list) pipe_load "$port" $((30000 / MEM_DIV)) "['RPUSH', 'l'] + [f'e{j}' for j in range(100)]" ;;
        mem-stream) pipe_load "$port" $((1000000 / MEM_DIV)) "['XADD', 's', '*', 'f', 'v']" ;;
        mem-subs) subs_hold "$port" $((500000 / MEM_DIV)) ;;
    esac
}

# subs_hold PORT N: starts bench/subs_hold.py holding N subscriptions (its
# pid in $WORK/subs.pid, for subs_release) and waits until they are all
# confirmed. Its output goes to a file: it outlives this function, which
# runs in a command substitution.
subs_hold() {
    python3 bench/subs_hold.py "$1" "$2" >"$WORK/subs.out" 2>&1 &
    echo $! >"$WORK/subs.pid"
    local waited=0
    until grep -q ready "$WORK/subs.out" 2>/dev/null; do
        if ! kill -0 "$(cat "$WORK/subs.pid")" 2>/dev/null || [ $waited -ge 3000 ]; then
            cat "$WORK/subs.out"
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# subs_release: ends subs_hold's connections, if it ran.
subs_release() {
    [ -f "$WORK/subs.pid" ] || return 0
    kill "$(cat "$WORK/subs.pid")" 2>/dev/null || true
    rm -f "$WORK/subs.pid"
}

# record_ok ROW SERVER REP JSON: appends a successful run.
record_ok() {
    printf '{"kind":"run","row":"%s","server":"%s","rep":%s,"ok":true,"result":%s}\n' \
        "$1" "$2" "$3" "$4" >>"$RESULTS"
}

# error_replies PORT: the server's total_error_replies.
error_replies() {
    timeout 10 redis-cli -h 127.0.0.1 -p "$1" INFO stats 2>/dev/null | tr -d '\r' |
        awk -F: '$1 == "total_error_replies" {print $2}'
}

# run_load ROW SERVER REP: one load run on a fresh server.
run_load() {
    local row=$1 server=$2 rep=$3 out err errors result msg
    start_run "$row" "$server" "$rep" || return 0
    local port=$PORT
    out="$RUN.csv" err="$RUN.err"
    if ! msg=$(stream_setup "$row" "$port"); then
        record_failure "$row" "$server" "$rep" "setup: $(echo "$msg" | tail -n 2 | tr '\n' ' ')"
        stop_server
        return
    fi
    # One redis-benchmark per test (p16 / p1) or for the row, each with the
    # server's CPU time around it: its lines "csv-file cpu-ns requests".
    local tests=("") t before ok=1
    if [ "$row" = p16 ] || [ "$row" = p1 ]; then IFS=, read -ra tests <<<"$TESTS"; fi
    : >"$out.list"
    for t in "${tests[@]}"; do
        bench_argv "$row" "$port" "$t"
        before=$(cpu_ns "$SERVER_PID")
        if ! timeout -k 5 600 "${ARGV[@]}" >"$out.$t" 2>"$err"; then
            ok=0
            break
        fi
        echo "$out.$t $(($(cpu_ns "$SERVER_PID") - before)) ${N[$row]}" >>"$out.list"
    done
    if [ "$ok" = 1 ]; then
        errors=$(error_replies "$port")
        # {"tests": {test: rps}, "cpu_ns": {test: server ns per request}}.
        # A run whose CSV has several tests (LRANGE's set-up LPUSH) gets no
        # CPU figure: its time covers more requests than the test's.
        result=$(python3 - "$out.list" <<'EOF'
import csv, json, sys
tests, cpu = {}, {}
for line in open(sys.argv[1]):
    path, ns, n = line.split()
    rows = [r for r in csv.reader(open(path)) if r]
    head = rows[0]
    for r in rows[1:]:
        tests[r[0]] = float(r[head.index("rps")])
    if len(rows) == 2:
        cpu[rows[1][0]] = round(int(ns) / int(n))
print(json.dumps({"tests": tests, "cpu_ns": cpu}) if tests else "")
EOF
        ) || result=""
        if [ -z "$result" ]; then
            record_failure "$row" "$server" "$rep" "no figures in redis-benchmark's output"
        elif [ "$errors" != 0 ]; then
            record_failure "$row" "$server" "$rep" "the server counted ${errors:-unknown} error replies (total_error_replies)"
        else
            record_ok "$row" "$server" "$rep" "$result"
            log "$row on $server (run $rep): $result"
        fi
    else
        record_failure "$row" "$server" "$rep" "redis-benchmark: $(tail -n 3 "$err" | tr '\n' ' ')"
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "$server died during $row; its log: $(tail -n 3 "$WORK/$server-$port.log" | tr '\n' ' ')"
    fi
    stop_server
}

# run_mem ROW SERVER REP: one memory run on a fresh server: RSS after
# loading minus RSS before, in MB.
run_mem() {
    local row=$1 server=$2 rep=$3 before after msg
    start_run "$row" "$server" "$rep" || return 0
    before=$(rss_kb "$SERVER_PID")
    if ! msg=$(mem_load "$row" "$PORT"); then
        record_failure "$row" "$server" "$rep" "load: $(echo "$msg" | tail -n 2 | tr '\n' ' ')"
        subs_release
        stop_server
        return
    fi
    sleep 1
    after=$(rss_kb "$SERVER_PID")
    subs_release
    local mb
    mb=$(python3 -c "print(round(($after - $before) / 1024, 1))")
    record_ok "$row" "$server" "$rep" "{\"tests\":{\"rss_mb\":$mb}}"
    log "$row on $server (run $rep): RSS grew $mb MB ($before -> $after kB)"
    stop_server
}

log "rows: $SELECTED; $REPEAT run(s) each; load average $LOAD_START; results in $RESULTS"
for row in $SELECTED; do
    for rep in $(seq 1 "$REPEAT"); do
        for server in $(server_order "$rep"); do
            case $row in
                mem-*) run_mem "$row" "$server" "$rep" ;;
                *) run_load "$row" "$server" "$rep" ;;
            esac
        done
    done
done

# --- the report -----------------------------------------------------------------
ROWS_JSON="$WORK/rows.json"
{
    printf '['
    sep=""
    for row in $SELECTED; do
        case $row in
            mem-subs)
                cmd="python3 bench/subs_hold.py P 500000 (held while RSS is read)" ;;
            mem-*)
                cmd="redis-cli -h 127.0.0.1 -p P --pipe < (generated: ${LABEL[$row]})" ;;
            p16 | p1)
                bench_argv "$row" P T
                cmd="for each test T of $TESTS, in turn: $(shell_join "${ARGV[@]}")" ;;
            *)
                bench_argv "$row" P
                cmd=$(shell_join "${ARGV[@]}") ;;
        esac
        printf '%s{"row":"%s","label":%s,"command":%s}' "$sep" "$row" \
            "$(json_str "${LABEL[$row]}")" "$(json_str "$cmd")"
        sep=","
    done
    printf ']\n'
} >"$ROWS_JSON"
MACHINE="$WORK/machine.json"
machine_json "$MACHINE" load_start="$LOAD_START" load_end="$(cut -d' ' -f1-3 /proc/loadavg)" \
    benchmark_version="$(redis-benchmark --version 2>/dev/null || echo unknown)" \
    redis_flags="redis-server --port P $(shell_join "${REDIS_FLAGS[@]}")" \
    herald_flags="herald --port P $(shell_join "${HERALD_FLAGS[@]}")" \
    mem_div="$MEM_DIV"
mkdir -p "$(dirname "$OUT")"
python3 bench/commands_report.py "$RESULTS" "$ROWS_JSON" "$MACHINE" "$OUT" "$SVG" ||
    die "cannot write the report"
finish "$OUT"
