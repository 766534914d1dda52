#!/usr/bin/env bash
# Redis 7.0.15's own test suite against herald: bash scripts/conformance.sh
#
# For every group of ../shared/conformance/suite.sh that herald claims (all of
# them: see EXPECTED below), starts a fresh herald on a free port
# (--save "" --appendonly no, in a temporary --dir, with a Unix socket there
# as Redis's test framework gives every server), runs the group with
# suite.sh, stops the server, and compares the group's last
# "N passed, M failed" line with EXPECTED: fewer passed than the floor or more
# failed than the ceiling fails the run. Prints a table with redis-server
# 7.0.15's own counts (../shared/conformance/BASELINE.md) beside herald's, so
# the gap stays visible, and the time of each group.
#
# Output: target/conformance/GROUP.out (suite.sh's output: every [PASS] and
# [FAIL] line and the failing tests) for every group; for a group that fails
# its check also target/conformance/GROUP/ (the Tcl runner's raw logs and the
# server's log).
#
# Environment (all optional):
#   HERALD_BIN=path         the herald binary to test (default: cargo build
#                           --release, then target/release/herald)
#   CONFORMANCE_DIR=dir     where suite.sh lives (default ../shared/conformance
#                           beside the repository)
#   CONFORMANCE_GROUPS="g1 g2"  run only these groups (default: every group
#                           in EXPECTED)
#   CONFORMANCE_PORT=7970   first port tried; ports in use are skipped
#   GROUP_TIMEOUT=1200      seconds a group may take before it is killed (and
#                           counted as 0 passed)
#
# Needs tclsh (Debian package tcl; scripts/test.sh installs it).
# Exits 0 when every group is within its bounds, 1 otherwise, 2 on a setup
# problem (no suite.sh, no tclsh, a server that does not start).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

# Expected counts per group: GROUP FLOOR CEILING REDIS
#   FLOOR   passed tests herald must reach (what it reached when last raised)
#   CEILING failed tests herald may have at most
#   REDIS   passed tests of redis-server 7.0.15 itself (0 failed; BASELINE.md)
# The floors only go up and the ceilings only go down: when herald passes more
# tests, raise the floor to the new count (the summary says when) in the same
# commit. Never lower a floor to make a run pass; fix the regression instead.
EXPECTED=(
  "pubsub    38   1   39"
  "keyspace  966  2   968"
  "streams   110  1   111"
  "ops       171  1   172"
  "security  105  1   106"
  "dump      9    0   9"
  "types2    246  2   248"
  "scripting 277  1   278"
)

die() { printf 'scripts/conformance.sh: %s\n' "$*" >&2; exit 2; }

CONFORMANCE_DIR=${CONFORMANCE_DIR:-$ROOT/../shared/conformance}
SUITE=$CONFORMANCE_DIR/suite.sh
[ -f "$SUITE" ] || die "no suite.sh in $CONFORMANCE_DIR (set CONFORMANCE_DIR)"
command -v tclsh >/dev/null 2>&1 || die "tclsh not found (Debian package tcl)"
GROUP_TIMEOUT=${GROUP_TIMEOUT:-1200}
PORT=${CONFORMANCE_PORT:-7970}

declare -A FLOOR CEILING REDIS
ALL_GROUPS=()
for row in "${EXPECTED[@]}"; do
  read -r g floor ceiling redis <<<"$row"
  ALL_GROUPS+=("$g")
  FLOOR[$g]=$floor
  CEILING[$g]=$ceiling
  REDIS[$g]=$redis
done
read -r -a RUN_GROUPS <<<"${CONFORMANCE_GROUPS:-${ALL_GROUPS[*]}}"
for g in "${RUN_GROUPS[@]}"; do
  [ -n "${FLOOR[$g]:-}" ] || die "unknown group '$g' (known: ${ALL_GROUPS[*]})"
done

if [ -z "${HERALD_BIN:-}" ]; then
  echo "==> cargo build --release"
  cargo build --release --quiet
  HERALD_BIN=$ROOT/target/release/herald
fi
[ -x "$HERALD_BIN" ] || die "HERALD_BIN=$HERALD_BIN is not an executable"

OUT_DIR=$ROOT/target/conformance
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR"
WORK=$(mktemp -d /tmp/herald-conformance.XXXXXX)
SERVER_PID=

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Does something accept connections on 127.0.0.1:$1?
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts herald on the first free port from $PORT on, with its files in $1;
# sets SERVER_PID and PORT. A port taken between the check and herald's bind
# makes herald exit: the next port is tried.
start_server() {
  local dir=$1 tries=0 i
  while [ "$tries" -lt 20 ]; do
    tries=$((tries + 1))
    if listening "$PORT"; then
      PORT=$((PORT + 1))
      continue
    fi
    "$HERALD_BIN" --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no \
      --dir "$dir" --unixsocket "$dir/socket" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    # Up to 20 s for herald to accept connections (or to exit).
    for ((i = 0; i < 200; i++)); do
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        break
      fi
      if listening "$PORT" && kill -0 "$SERVER_PID" 2>/dev/null; then
        return 0
      fi
      sleep 0.1
    done
    echo "    herald did not start on port $PORT:" >&2
    tail -n 5 "$dir/server.log" >&2 || true
    stop_server
    PORT=$((PORT + 1))
  done
  return 1
}

RESULTS=()
STATUS=0
TOTAL=$SECONDS
for g in "${RUN_GROUPS[@]}"; do
  dir=$WORK/$g
  mkdir -p "$dir"
  start_server "$dir" || die "could not start $HERALD_BIN for group $g"
  printf '\n==> conformance group %s (herald on port %s)\n' "$g" "$PORT"
  t=$SECONDS
  rc=0
  LOG_DIR=$dir/logs timeout --kill-after=10 "$GROUP_TIMEOUT" \
    bash "$SUITE" 127.0.0.1 "$PORT" "$g" >"$OUT_DIR/$g.out" 2>&1 || rc=$?
  secs=$((SECONDS - t))
  # The Tcl clients of a group that timed out exit once their server is gone.
  stop_server
  PORT=$((PORT + 1))

  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$OUT_DIR/$g.out" | tail -n 1 || true)
  if [ -n "$line" ]; then
    read -r passed _ failed _ <<<"${line//,/}"
  else
    passed=0
    failed=0
  fi
  verdict=ok
  if [ -z "$line" ]; then
    verdict="FAIL: no result (suite.sh exit $rc; 124 = timed out after ${GROUP_TIMEOUT}s)"
  elif [ "$passed" -lt "${FLOOR[$g]}" ]; then
    verdict="FAIL: passed below floor ${FLOOR[$g]}"
  elif [ "$failed" -gt "${CEILING[$g]}" ]; then
    verdict="FAIL: failed above ceiling ${CEILING[$g]}"
  elif [ "$passed" -gt "${FLOOR[$g]}" ] || [ "$failed" -lt "${CEILING[$g]}" ]; then
    verdict="ok (better than expected: raise EXPECTED to $passed/$failed)"
  fi
  echo "    $passed passed, $failed failed in ${secs}s: $verdict"
  if [[ $verdict == FAIL* ]]; then
    STATUS=1
    cp -r "$dir" "$OUT_DIR/$g"
    if [ -n "$line" ]; then
      echo "    failing tests (output: target/conformance/$g.out, logs: target/conformance/$g/):"
      sed -n '/^Failing tests:$/,/^[0-9]* passed, [0-9]* failed$/p' "$OUT_DIR/$g.out" |
        sed '1d;$d' || true
    else
      echo "    last lines of target/conformance/$g.out (logs: target/conformance/$g/):"
      tail -n 20 "$OUT_DIR/$g.out"
    fi
  fi
  RESULTS+=("$(printf '%-10s %7s %7s %7s %8s %7s %6ss  %s' \
    "$g" "$passed" "$failed" "${FLOOR[$g]}" "${CEILING[$g]}" "${REDIS[$g]}" "$secs" "$verdict")")
done

printf '\nconformance summary (Redis 7.0.15 test suite; redis = redis-server 7.0.15 passed, 0 failed)\n'
printf '%-10s %7s %7s %7s %8s %7s %7s  %s\n' group passed failed floor ceiling redis time verdict
for r in "${RESULTS[@]}"; do echo "$r"; done
printf 'total %ss; per-group output in target/conformance/\n' "$((SECONDS - TOTAL))"
if [ "$STATUS" -ne 0 ]; then
  echo "scripts/conformance.sh: some groups fell below their expected counts" >&2
fi
exit "$STATUS"
