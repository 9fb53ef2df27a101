#!/usr/bin/env bash
# Moat developer entry point: install dependencies, build, run, test.
#
#   scripts/dev.sh deps         install missing Debian packages
#   scripts/dev.sh build        release build (RelWithDebInfo) into build/
#   scripts/dev.sh build-asan   debug build with ASan/UBSan into build-asan/
#   scripts/dev.sh up           deps + build, then start moatd in the background
#   scripts/dev.sh down         stop the moatd started by `up`
#   scripts/dev.sh test         everything CI runs (see .ci/run)
#   scripts/dev.sh package      the Debian package (build-deb/moatd_*.deb, docs/install.md)
#
# Runs from any directory; always works on the repository that contains it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The one list of Debian packages needed to build, run and test Moat.
PACKAGES=(
    build-essential cmake pkg-config
    libevent-dev libc-ares-dev libssl-dev libsqlite3-dev sqlite3
    libmicrohttpd-dev libjansson-dev libcmocka-dev libargon2-dev
    libgmime-3.0-dev libvectorscan-dev libpcre2-dev libpsl-dev libpq-dev libhiredis-dev
    postgresql redis-server
    python3-pytest python3-aiosmtpd python3-jsonschema python3-yaml python3-dkim
    swaks postfix rbldnsd dnsmasq-base nmap dovecot-sieve
    clang libclang-rt-14-dev wrk ca-certificates chromium
    debhelper dpkg-dev
)

DATA_DIR="$ROOT/moat-data"
PID_FILE="$DATA_DIR/moatd.pid"
LOG_FILE="$DATA_DIR/moatd.log"
CONF="$ROOT/etc/moatd.conf"

READY_TIMEOUT=20   # seconds `up` waits for the ready line
STOP_TIMEOUT=20    # seconds `down` waits after SIGTERM
CTEST_TIMEOUT=900  # seconds per ctest test
FUZZ_SECONDS=20    # seconds per fuzz harness

say() { printf 'dev.sh: %s\n' "$*"; }
die() { printf 'dev.sh: error: %s\n' "$*" >&2; exit 1; }

jobs_n() { nproc 2>/dev/null || echo 2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

cmd_deps() {
    local missing=() p status
    for p in "${PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
        if [ "$status" != "install ok installed" ]; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "deps: all ${#PACKAGES[@]} packages installed"
        return 0
    fi
    say "deps: installing ${missing[*]}"
    # Postfix is only wanted for smtp-source/smtp-sink: no mail server configuration.
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" </dev/null
}

cmd_build() {
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build build -j"$(jobs_n)"
    build_webui
}

# The web console (docs/console.md): webui/dist, when node and npm are present.
build_webui() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        say "webui: node/npm not found; console not built"
        return 0
    fi
    (cd webui && npm ci --no-audit --no-fund && npm run build)
}

# The Debian package from a copy of the sources in build-deb/src, so that
# dpkg-buildpackage's files never land in the work tree.  MOAT_PKG_VERSION
# overrides the version of debian/changelog.  Prints the .deb's path last.
PKG_DIR="$ROOT/build-deb"
cmd_package() {
    local parts=(CMakeLists.txt cmake daemon schema etc debian docs/install.md)
    cmd_deps >&2
    [ -f webui/dist/index.html ] || build_webui >&2
    [ -f webui/dist/index.html ] && parts+=(webui/dist)
    rm -rf "$PKG_DIR"
    mkdir -p "$PKG_DIR/src"
    tar -cf - "${parts[@]}" | tar -xf - -C "$PKG_DIR/src"
    if [ -n "${MOAT_PKG_VERSION:-}" ]; then
        sed -i "1s/([^)]*)/($MOAT_PKG_VERSION)/" "$PKG_DIR/src/debian/changelog"
    fi
    (cd "$PKG_DIR/src" && dpkg-buildpackage -b -us -uc -j"$(jobs_n)" </dev/null) >&2
    ls "$PKG_DIR"/moatd_*.deb
}

cmd_build_asan() {
    cmake -S . -B build-asan -DMOAT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    cmake --build build-asan -j"$(jobs_n)"
}

# Prints the pid of the moatd started by `up` if it is still alive; fails otherwise.
running_pid() {
    local pid
    [ -f "$PID_FILE" ] || return 1
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    case "$pid" in ''|*[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moatd || return 1
    echo "$pid"
}

cmd_up() {
    local pid i line
    if pid="$(running_pid)"; then
        say "moatd is already running (pid $pid); stop it with: scripts/dev.sh down"
        return 0
    fi
    cmd_deps
    cmd_build
    [ -f "$CONF" ] || die "missing $CONF"
    mkdir -p "$DATA_DIR"
    : >"$LOG_FILE"
    nohup "$ROOT/build/moatd" -c "$CONF" >>"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
        line="$(grep -m1 ' ready .* pid=' "$LOG_FILE" || true)"
        if [ -n "$line" ]; then
            say "moatd running, pid $pid"
            say "  SMTP: $(sed -n 's/.* smtp=\([^ ]*\).*/\1/p' <<<"$line")"
            say "  HTTP: $(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$line")"
            say "  log:  $LOG_FILE"
            if grep -q 'administrator admin created' "$LOG_FILE"; then
                say "  console: http://$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$line")/ as admin;" \
                    "the first password is in the log line 'administrator admin created'"
            fi
            say "  stop: scripts/dev.sh down"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            say "moatd exited before it was ready; log tail:"
            tail -n 30 "$LOG_FILE" >&2
            exit 1
        fi
        sleep 0.1
    done
    say "moatd not ready after ${READY_TIMEOUT}s; stopping it; log tail:"
    tail -n 30 "$LOG_FILE" >&2
    kill -TERM "$pid" 2>/dev/null || true
    sleep 1
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
    exit 1
}

cmd_down() {
    local pid i
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        say "moatd is not running"
        return 0
    fi
    kill -TERM "$pid"
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            say "moatd (pid $pid) stopped"
            return 0
        fi
        sleep 0.1
    done
    say "moatd (pid $pid) still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
    exit 1
}

# Runs every fuzz harness briefly if fuzz/ has harnesses and CMake offers a `fuzz` target.
# Sets FUZZ_SUMMARY.
FUZZ_SUMMARY="skipped"
run_fuzz() {
    local harnesses=() bin name seeds work n=0
    shopt -s nullglob
    harnesses=(fuzz/fuzz_*.c)
    shopt -u nullglob
    if [ "${#harnesses[@]}" -eq 0 ]; then
        FUZZ_SUMMARY="skipped (no harnesses in fuzz/)"
        say "$FUZZ_SUMMARY"
        return 0
    fi
    cmake -S . -B build-fuzz -DMOAT_FUZZ=ON -DCMAKE_C_COMPILER=clang
    local targets
    targets="$(cmake --build build-fuzz --target help)"
    if ! grep -Eq '(^|[ .:])fuzz($|[ :])' <<<"$targets"; then
        FUZZ_SUMMARY="skipped (no 'fuzz' build target)"
        say "$FUZZ_SUMMARY"
        return 0
    fi
    cmake --build build-fuzz --target fuzz -j"$(jobs_n)"
    mkdir -p build-fuzz/artifacts
    for bin in build-fuzz/fuzz_*; do
        if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
            continue
        fi
        name="$(basename "$bin")"
        seeds=""
        if [ -d "fuzz/corpus/$name" ]; then
            seeds="fuzz/corpus/$name"
        elif [ -d "fuzz/corpus/${name#fuzz_}" ]; then
            seeds="fuzz/corpus/${name#fuzz_}"
        fi
        # New inputs go to a scratch dir, never into the committed seed corpus.
        work="build-fuzz/corpus-work/$name"
        mkdir -p "$work"
        say "fuzz: $name for ${FUZZ_SECONDS}s${seeds:+ (seeds $seeds)}"
        timeout --kill-after=30 $((FUZZ_SECONDS + 120)) "$bin" \
            -max_total_time="$FUZZ_SECONDS" \
            -artifact_prefix="build-fuzz/artifacts/$name-" \
            "$work" ${seeds:+"$seeds"} </dev/null
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || die "fuzz target built no build-fuzz/fuzz_* binaries"
    FUZZ_SUMMARY="$n harnesses x ${FUZZ_SECONDS}s"
}

# Lints the API contract (api/openapi.yaml) with the Redocly CLI pinned in
# api/package-lock.json, under api/redocly.yaml (recommended rules, every warning
# an error). Offline once npm ci has run: telemetry and the update check are off.
lint_api() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        [ -z "${CI:-}" ] || die "api lint: node/npm not found"
        say "api lint: node/npm not found; api/openapi.yaml not linted"
        return 0
    fi
    (cd api && npm ci --no-audit --no-fund </dev/null)
    (cd api && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
        node_modules/.bin/redocly lint --format=stylish openapi.yaml </dev/null)
}

CURRENT_STEP=""
on_test_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '\ndev.sh test: FAILED at step "%s" (exit %d)\n' "$CURRENT_STEP" "$rc" >&2
    fi
}

cmd_test() {
    local t0=$SECONDS
    trap on_test_exit EXIT
    CURRENT_STEP="deps"; cmd_deps
    CURRENT_STEP="build"; cmd_build
    CURRENT_STEP="build-asan"; cmd_build_asan
    CURRENT_STEP="api lint"; lint_api

    CURRENT_STEP="ctest build-asan"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ctest --test-dir build-asan --output-on-failure --timeout "$CTEST_TIMEOUT" </dev/null

    CURRENT_STEP="ctest build"
    ctest --test-dir build --output-on-failure --timeout "$CTEST_TIMEOUT" </dev/null

    # The Debian package: build, install, upgrade, purge (root only; undone after).
    CURRENT_STEP="package"
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/package </dev/null

    CURRENT_STEP="fuzz"; run_fuzz

    CURRENT_STEP="done"
    printf '\ndev.sh test: PASSED (api lint, asan+ubsan ctest, release ctest, package, fuzz: %s) in %ds\n' \
        "$FUZZ_SUMMARY" $((SECONDS - t0))
}

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case "${1:-help}" in
    deps) cmd_deps ;;
    build) cmd_build ;;
    build-asan) cmd_build_asan ;;
    up) cmd_up ;;
    down) cmd_down ;;
    test) cmd_test ;;
    package) cmd_package ;;
    help|-h|--help) usage ;;
    *) usage >&2; exit 2 ;;
esac
