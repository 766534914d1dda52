# bench/lib.sh: shell helpers shared by the benchmarks that run herald
# against redis-server (bench/compare.sh, bench/scripts.sh). Sourced, not run.
#
# Sourced from the repository's root, with LOG_TAG (prefix of the log lines,
# e.g. "compare") and WORK (directory for the servers' logs and
# results.jsonl, relative to the root) set. Sourcing sets ROOT, makes WORK
# absolute and creates it, sets START_TIME, empties RESULTS, and installs an
# EXIT/INT/TERM trap that stops SERVER_PID and BENCH_PID.
# The sourcing script sets, before it calls the server helpers:
#   REDIS_BIN, HERALD_BIN            the two server binaries
#   REDIS_FLAGS, HERALD_FLAGS        arrays of flags after --port P
# shellcheck shell=bash

ROOT=$(pwd)
WORK="$ROOT/$WORK"
mkdir -p "$WORK"
START_TIME=$(date +%s)

# bench_args HELP QUICK_OUT FULL_OUT "$@": the options every benchmark takes
#   --quick (or QUICK=1), --repeat N, --rows A,B, --out FILE, -h|--help
# (prints the lines HELP, a sed range, of $0). Sets QUICK, REPEAT (default
# 1 quick, 3 otherwise), ROWS and OUT (default QUICK_OUT or FULL_OUT).
bench_args() {
    local help=$1 quick_out=$2 full_out=$3
    shift 3
    QUICK=${QUICK:-0}
    REPEAT=""
    ROWS=""
    OUT=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --quick) QUICK=1 ;;
            --repeat) REPEAT=$2; shift ;;
            --rows) ROWS=$2; shift ;;
            --out) OUT=$2; shift ;;
            -h|--help) sed -n "${help}p" "$0"; exit 0 ;;
            *) echo "$(basename "$0"): unknown argument $1" >&2; exit 2 ;;
        esac
        shift
    done
    if [ "$QUICK" = 1 ]; then
        REPEAT=${REPEAT:-1}
        OUT=${OUT:-$quick_out}
    else
        REPEAT=${REPEAT:-3}
        OUT=${OUT:-$full_out}
    fi
}

log() { printf '[%s %s] %s\n' "${LOG_TAG:-bench}" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

# select_rows ALL: sets SELECTED, the rows named in ROWS (comma-separated),
# or ALL (space-separated) when ROWS is empty; dies on a row not in ALL.
select_rows() {
    local r
    SELECTED=${ROWS//,/ }
    SELECTED=${SELECTED:-$1}
    for r in $SELECTED; do
        [[ " $1 " == *" $r "* ]] || die "unknown row $r (rows: $1)"
    done
}

# cpu_ns PID: the CPU time all of PID's threads have used, in ns (the first
# field of each thread's schedstat).
cpu_ns() {
    local f total=0 used _
    for f in /proc/"$1"/task/*/schedstat; do
        read -r used _ <"$f" 2>/dev/null && total=$((total + used))
    done
    echo "$total"
}

# --- processes: every server we start is stopped on exit -----------------
SERVER_PID=""
BENCH_PID=""
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317 # called by the traps
cleanup() {
    stop_pid "$BENCH_PID"
    stop_pid "$SERVER_PID"
    BENCH_PID=""
    SERVER_PID=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# --- prerequisites ----------------------------------------------------------
apt_install() {
    log "installing $*"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }; then
        die "cannot install $*"
    fi
}

# need_tools: redis-server, redis-cli and python3 (installed if missing);
# sets REDIS_BIN.
need_tools() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server
    fi
    command -v python3 >/dev/null || apt_install python3
    REDIS_BIN=$(command -v redis-server)
}

# benchmark_servers: what the redis-benchmark comparisons need: the tools
# and redis-benchmark, a release herald (built unless SKIP_BUILD=1;
# HERALD_BIN may name another), both servers without persistence plus
# REDIS_ARGS / HERALD_ARGS. Sets HERALD_BIN, REDIS_FLAGS and HERALD_FLAGS.
benchmark_servers() {
    need_tools
    command -v redis-benchmark >/dev/null || apt_install redis-tools
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        log "building herald (release)"
        cargo build --release -p herald --bin herald >&2 || die "cargo build failed"
    fi
    HERALD_BIN=${HERALD_BIN:-$ROOT/target/release/herald}
    [ -x "$HERALD_BIN" ] || die "no herald binary at $HERALD_BIN"
    # shellcheck disable=SC2206
    REDIS_FLAGS=(--save "" --appendonly no ${REDIS_ARGS:-})
    # shellcheck disable=SC2206
    HERALD_FLAGS=(--save "" --appendonly no ${HERALD_ARGS:-})
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- servers ----------------------------------------------------------------
# wait_ready PORT PID: true once the server answers PING (10 s at most).
wait_ready() {
    local port=$1 pid=$2 i
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 1
        if [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# start_server redis|herald PORT [extra flags...]: sets SERVER_PID.
start_server() {
    local which=$1 port=$2
    shift 2
    local logf="$WORK/$which-$port.log"
    if [ "$which" = redis ]; then
        "$REDIS_BIN" --port "$port" "${REDIS_FLAGS[@]}" "$@" >"$logf" 2>&1 &
    else
        "$HERALD_BIN" --port "$port" "${HERALD_FLAGS[@]}" "$@" >"$logf" 2>&1 &
    fi
    SERVER_PID=$!
    if ! wait_ready "$port" "$SERVER_PID"; then
        log "$which did not start on port $port; its log:"
        tail -n 5 "$logf" >&2 || true
        stop_pid "$SERVER_PID"
        SERVER_PID=""
        return 1
    fi
}

stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=""
}

# start_run ROW SERVER REP [server flags...]: a fresh server for one run, on
# a free port: sets PORT and RUN (WORK/run-ROW-SERVER-REP, the stem of the
# run's files). If it does not start, records the failure and returns 1.
start_run() {
    local row=$1 server=$2 rep=$3
    shift 3
    PORT=$(free_port)
    RUN="$WORK/run-$row-$server-$rep"
    start_server "$server" "$PORT" "$@" && return 0
    record_failure "$row" "$server" "$rep" "server did not start"
    return 1
}

# Alternate the order of the servers from one repetition to the next.
server_order() { if [ $(($1 % 2)) = 1 ]; then echo "redis herald"; else echo "herald redis"; fi; }

# --- the report -----------------------------------------------------------------
# json_str TEXT: TEXT as a JSON string.
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

# The runs go to RESULTS, one JSON line each; FAILURES counts the failed.
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
FAILURES=0

record_failure() { # row server rep message
    FAILURES=$((FAILURES + 1))
    log "row $1 on $2 (run $3) failed: $4"
    printf '{"kind":"run","row":"%s","server":"%s","rep":%s,"ok":false,"error":%s}\n' \
        "$1" "$2" "$3" "$(json_str "$4")" >>"$RESULTS"
}

# finish WHAT: logs that WHAT was written and the failures, and exits 1 if
# a run failed (unless KEEP_GOING=1), else 0.
finish() {
    log "wrote $1 in $(( $(date +%s) - START_TIME )) s; $FAILURES failed run(s)"
    if [ "$FAILURES" -gt 0 ] && [ "${KEEP_GOING:-0}" != 1 ]; then
        exit 1
    fi
    exit 0
}

# shell_join ARGS...: the arguments as one shell-quoted command line.
shell_join() { python3 -c 'import shlex,sys; print(shlex.join(sys.argv[1:]))' "$@"; }

# machine_json FILE [KEY=VALUE...]: writes the machine and run description
# (cores, CPU, memory, kernel, versions, date, seconds since START_TIME,
# QUICK, REPEAT) plus each KEY=VALUE (VALUE as JSON if it parses, else a
# string).
machine_json() {
    python3 - "$REDIS_BIN" "$START_TIME" "$QUICK" "$REPEAT" "$@" <<'EOF'
import json, platform, subprocess, sys, time
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""
redis_bin, start, quick, repeat, path = sys.argv[1:6]
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip()
mem_kb = sh("awk '/MemTotal/ {print $2}' /proc/meminfo")
m = {
    "nproc": sh("nproc"),
    "cpu": cpu or "unknown CPU",
    "mem": f"{int(mem_kb) / 1048576:.0f} GiB RAM" if mem_kb.isdigit() else "",
    "kernel": platform.release(),
    "redis_version": sh(f"'{redis_bin}' --version"),
    "herald_version": (sh("grep -m1 '^version' Cargo.toml | cut -d'\"' -f2") + " "
                       + sh("git rev-parse --short HEAD 2>/dev/null")).strip(),
    "rustc": sh("rustc --version"),
    "date": sh("date -u '+%Y-%m-%d %H:%M UTC'"),
    "elapsed_s": int(time.time()) - int(start),
    "quick": quick == "1",
    "repeat": int(repeat),
}
for kv in sys.argv[6:]:
    key, _, value = kv.partition("=")
    try:
        m[key] = json.loads(value)
    except ValueError:
        m[key] = value.strip()
json.dump(m, open(path, "w"))
EOF
}
