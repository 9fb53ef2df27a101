#!/usr/bin/env bash
# Inbound SMTP throughput of moatd, driven by Postfix's smtp-source.
#
#   bench/smtp-source.sh [path/to/moatd]        (default: build/moatd)
#
# Starts moatd on 127.0.0.1 with an ephemeral port and a throw-away data dir,
# then for each concurrency level sends COUNT messages of 5120 payload bytes
# (one message per connection, smtp-source's default) and prints the messages
# per second that moatd acknowledged with 250, counted in its queue_message
# table. Builds nothing. Env: CONCURRENCY="1 20 100", COUNT_1=2000, COUNT_N=5000,
# SIZE=5120, KEEP=1 keeps the temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOATD="${1:-$ROOT/build/moatd}"
SMTP_SOURCE="${SMTP_SOURCE:-/usr/sbin/smtp-source}"
CONCURRENCY="${CONCURRENCY:-1 20 100}"
COUNT_1="${COUNT_1:-2000}"
COUNT_N="${COUNT_N:-5000}"
SIZE="${SIZE:-5120}"
RUN_TIMEOUT="${RUN_TIMEOUT:-600}"

die() { printf 'smtp-source.sh: %s\n' "$*" >&2; exit 1; }

[ -x "$MOATD" ] || die "no moatd binary at $MOATD (build it: scripts/dev.sh build)"
[ -x "$SMTP_SOURCE" ] || die "no $SMTP_SOURCE (apt-get install postfix, or scripts/dev.sh deps)"
command -v sqlite3 >/dev/null || die "no sqlite3 CLI"

WORK="$(mktemp -d /tmp/moat-bench.XXXXXX)"
PID=""
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

cat >"$WORK/moatd.conf" <<EOF
data_dir = $WORK/data
hostname = bench.test
log = stderr
log_level = warn
smtp_listen = 127.0.0.1:0
http_listen = 127.0.0.1:0
max_sessions = 1000
max_sessions_per_client = 1000
EOF

"$MOATD" -c "$WORK/moatd.conf" >"$WORK/moatd.log" 2>&1 </dev/null &
PID=$!
READY=""
for _ in $(seq 1 200); do
    READY="$(grep -m1 ' ready .* pid=' "$WORK/moatd.log" || true)"
    [ -n "$READY" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/moatd.log" >&2; die "moatd exited"; }
    sleep 0.1
done
[ -n "$READY" ] || { tail -n 20 "$WORK/moatd.log" >&2; die "moatd not ready after 20 s"; }
ADDR="$(sed -n 's/.* smtp=\([^ ,]*\).*/\1/p' <<<"$READY")"
DB="$WORK/data/moat.db"

queued() { sqlite3 -readonly "$DB" 'SELECT count(*) FROM queue_message'; }

echo "$("$MOATD" -V 2>/dev/null | head -n 1) at $ADDR; $(nproc) CPUs," \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
printf '%-12s %9s %9s %9s %10s\n' concurrency sent acked seconds msg/s
STATUS=0
for c in $CONCURRENCY; do
    if [ "$c" -eq 1 ]; then n="$COUNT_1"; else n="$COUNT_N"; fi
    before="$(queued)"
    t0="$(date +%s.%N)"
    rc=0
    timeout "$RUN_TIMEOUT" "$SMTP_SOURCE" -s "$c" -m "$n" -l "$SIZE" \
        -f bench@example.org -t sink@example.org "$ADDR" </dev/null || rc=$?
    t1="$(date +%s.%N)"
    after="$(queued)"
    acked=$((after - before))
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
    rate="$(awk -v n="$acked" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')"
    printf '%-12s %9s %9s %9s %10s\n' "$c" "$n" "$acked" "$secs" "$rate"
    if [ "$rc" -ne 0 ] || [ "$acked" -ne "$n" ]; then
        echo "  smtp-source exit $rc; $acked of $n acknowledged" >&2
        STATUS=1
    fi
done
if ! kill -0 "$PID" 2>/dev/null; then
    tail -n 20 "$WORK/moatd.log" >&2
    die "moatd died during the run"
fi
exit "$STATUS"
