#!/usr/bin/env bash
# herald's test command: bash scripts/test.sh
#
# 1. Installs what the tests need, when missing (a second run installs
#    nothing):
#    - apt: redis-server and redis-tools (redis-cli), without starting the
#      system's redis service; tcl (tclsh, for Redis's own test suite);
#      python3-venv and nodejs/npm only if there is no python3 / node at all;
#    - .venv/ in the project: redis-py and pytest (tests/py/requirements.txt);
#    - tests/node/node_modules: ioredis, node-redis and BullMQ
#      (tests/node/package-lock.json).
# 2. Checks that the top-level modules depend on each other without a
#    cycle (../shared/tools/layering/cycles.py),
#    then runs cargo fmt --check, cargo clippy --all-targets -D warnings and
#    cargo test --all-targets over the workspace (the server and bench/,
#    herald-bench), telling the end-to-end tests where the venv's python and
#    the Node modules are (HERALD_PYTHON, HERALD_NODE_DIR).
#    (tests/soak.rs builds herald-bench and runs the quick soak,
#    herald-bench soak --quick, against the herald binary: about 30 s.)
# 3. Builds the fuzz targets (fuzz/, cargo-fuzz; installed with
#    cargo install cargo-fuzz --locked when missing). SKIP_FUZZ_BUILD=1
#    skips this step.
# 4. Runs Redis 7.0.15's own test suite against a release build of herald,
#    group by group, and fails when a group passes fewer tests (or fails
#    more) than scripts/conformance.sh expects (../shared/conformance;
#    about 8 minutes after a release build). SKIP_CONFORMANCE=1 skips this
#    step.
#
# Exits non-zero at the first failure. Needs root or sudo for apt only.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

step() { printf '\n==> %s\n' "$*"; }
elapsed() { printf '    (%ss)\n' "$((SECONDS - $1))"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

# A command that checks a stamp: the sha256 of the files that decide an install.
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  SUDO=()
fi

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "need $* but apt-get is not available: install them by hand"
  export DEBIAN_FRONTEND=noninteractive
  # Do not let the packages start their services (e.g. a redis-server on
  # port 6379): invoke-rc.d honours policy-rc.d's "101: action forbidden".
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod +x "$policy"
    made_policy=1
  fi
  local status=0
  {
    if [ "$APT_UPDATED" -eq 0 ]; then
      "${SUDO[@]}" apt-get update -q
      APT_UPDATED=1
    fi
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$@"
  } || status=$?
  if [ "$made_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi
  [ "$status" -eq 0 ] || die "apt-get install $* failed"
}

TOTAL=$SECONDS

# ---------------------------------------------------------------- system tools
step "system packages: redis-server, redis-cli, tclsh"
t=$SECONDS
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v tclsh >/dev/null 2>&1 || missing+=(tcl)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "    installing ${missing[*]}"
  apt_install "${missing[@]}"
else
  echo "    present: $(redis-server --version | cut -d' ' -f1-3), $(redis-cli --version), tclsh $(echo 'puts [info patchlevel]' | tclsh)"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (rustup) first"
elapsed "$t"

# ---------------------------------------------------------------- python venv
step "python venv .venv/ (tests/py/requirements.txt)"
t=$SECONDS
VENV=$ROOT/.venv
PY_STAMP=$(stamp_of tests/py/requirements.txt)
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$VENV"
  echo "    creating $VENV with $(python3 --version)"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's own python3 needs python3-venv for ensurepip.
    rm -rf "$VENV"
    apt_install python3-venv
    python3 -m venv "$VENV"
  fi
fi
if [ "$(cat "$VENV/.herald-stamp" 2>/dev/null || true)" != "$PY_STAMP" ]; then
  echo "    pip install -r tests/py/requirements.txt"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/py/requirements.txt
  echo "$PY_STAMP" >"$VENV/.herald-stamp"
else
  echo "    up to date: $("$VENV/bin/python" -c 'import redis, pytest; print("redis-py", redis.__version__, "pytest", pytest.__version__)')"
fi
elapsed "$t"

# ---------------------------------------------------------------- node modules
step "node modules tests/node/node_modules (package-lock.json)"
t=$SECONDS
NODE_DIR=$ROOT/tests/node
NODE_STAMP=$(stamp_of "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json")
if [ "$(cat "$NODE_DIR/node_modules/.herald-stamp" 2>/dev/null || true)" != "$NODE_STAMP" ]; then
  echo "    npm ci (node $(node --version), npm $(npm --version 2>/dev/null))"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$NODE_STAMP" >"$NODE_DIR/node_modules/.herald-stamp"
else
  echo "    up to date: ioredis $(node -p "require('$NODE_DIR/node_modules/ioredis/package.json').version"), redis $(node -p "require('$NODE_DIR/node_modules/redis/package.json').version"), bullmq $(node -p "require('$NODE_DIR/node_modules/bullmq/package.json').version")"
fi
elapsed "$t"

# ---------------------------------------------------------------- cargo
export HERALD_PYTHON=$VENV/bin/python
export HERALD_NODE_DIR=$NODE_DIR
export PYTHONDONTWRITEBYTECODE=1

step "module layering: no dependency cycle between top-level modules"
t=$SECONDS
# The checker lives beside the project, in the shared tools every
# development machine and CI run have.
python3 "$ROOT/../shared/tools/layering/cycles.py" "$ROOT"
elapsed "$t"

step "cargo fmt --check"
t=$SECONDS
cargo fmt --all -- --check
elapsed "$t"

step "cargo clippy --workspace --all-targets -- -D warnings"
t=$SECONDS
cargo clippy --workspace --all-targets -- -D warnings
elapsed "$t"

step "cargo test --workspace --all-targets (HERALD_PYTHON=$HERALD_PYTHON HERALD_NODE_DIR=$HERALD_NODE_DIR)"
t=$SECONDS
cargo test --workspace --all-targets
elapsed "$t"

# ---------------------------------------------------------------- fuzz targets
if [ "${SKIP_FUZZ_BUILD:-0}" != 1 ]; then
  step "cargo fuzz build (fuzz/: parser, commands, scripts, rdb, rdb_file)"
  t=$SECONDS
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "    installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
  fi
  # libfuzzer-sys compiles libFuzzer from C++ sources.
  command -v c++ >/dev/null 2>&1 || apt_install g++
  # cargo-fuzz passes nightly -Z flags; RUSTC_BOOTSTRAP lets stable rustc take them.
  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build)
  elapsed "$t"
fi

# ---------------------------------------------------------------- conformance
if [ "${SKIP_CONFORMANCE:-0}" != 1 ]; then
  step "Redis 7.0.15 test suite against herald (scripts/conformance.sh)"
  t=$SECONDS
  bash scripts/conformance.sh
  elapsed "$t"
fi

printf '\nscripts/test.sh: all checks passed in %ss\n' "$((SECONDS - TOTAL))"
