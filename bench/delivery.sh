#!/usr/bin/env bash
# End-to-end relay throughput and CPU cost: smtp-source -> MTA -> smtp-sink, moatd side
# by side with Postfix configured as a plain relay in a temporary directory.
#
#   bench/delivery.sh [path/to/moatd]          (default: build/moatd)
#
# For each message size (SIZES, default "1024 51200") and concurrency level (CONCURRENCY,
# default "20 100") every MTA receives COUNT messages (one message per connection,
# smtp-source's default) and relays them to one smtp-sink on 127.0.0.1.  Time is measured
# from the start of smtp-source until the MTA's queue is empty again (every message
# received, fsync'ed, delivered and removed).  Both MTAs fsync before they answer 250
# (moatd: file + directory + SQLite synchronous=FULL; Postfix: cleanup fsync).
# CPU: each MTA runs in its own cpuacct cgroup (every Postfix process, short-lived ones
# included), and the CPU time of a run divided by COUNT is printed as "cpu ms/msg"; without
# a writable cgroup v1 cpuacct hierarchy the column says n/a.
# BASELINE=path/to/other/moatd adds a third MTA, "base", to compare two builds in one run.
# Everything listens on 127.0.0.1 only, every step is bounded by RUN_TIMEOUT, and
# everything started here is stopped at exit.  Env: COUNT=2000 KEEP=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOATD="${1:-$ROOT/build/moatd}"
SMTP_SOURCE="${SMTP_SOURCE:-/usr/sbin/smtp-source}"
SMTP_SINK="${SMTP_SINK:-/usr/sbin/smtp-sink}"
CONCURRENCY="${CONCURRENCY:-20 100}"
COUNT="${COUNT:-2000}"
SIZES="${SIZES:-1024 51200}"
BASELINE="${BASELINE:-}"
CG_ROOT=/sys/fs/cgroup/cpuacct
RUN_TIMEOUT="${RUN_TIMEOUT:-300}"

die() { printf 'delivery.sh: %s\n' "$*" >&2; exit 1; }
[ -x "$MOATD" ] || die "no moatd binary at $MOATD"
[ -x "$SMTP_SOURCE" ] && [ -x "$SMTP_SINK" ] || die "needs smtp-source and smtp-sink (postfix)"
command -v postfix >/dev/null || die "needs postfix"

WORK="$(mktemp -d /tmp/moat-delivery-bench.XXXXXX)"
chmod 755 "$WORK"
SINK_PID=""
MOATD_PID=""
BASE_PID=""
PF_DIR=""
CGROUPS=()

# shellcheck source=bench/relay_moatd.sh
. "$ROOT/bench/relay_moatd.sh"
# shellcheck source=bench/relay_peers.sh
. "$ROOT/bench/relay_peers.sh"

cleanup() {
	[ -n "$MOATD_PID" ] && kill "$MOATD_PID" 2>/dev/null && wait "$MOATD_PID" 2>/dev/null || true
	[ -n "$BASE_PID" ] && kill "$BASE_PID" 2>/dev/null && wait "$BASE_PID" 2>/dev/null || true
	[ -n "$PF_DIR" ] && postfix -c "$PF_DIR" stop >/dev/null 2>&1 || true
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null || true
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
	local cg p
	for cg in "${CGROUPS[@]}"; do
		[ -n "$cg" ] && [ -d "$cg" ] || continue
		while read -r p; do echo "$p" >"$CG_ROOT/cgroup.procs" 2>/dev/null || true; done <"$cg/cgroup.procs"
		rmdir "$cg" 2>/dev/null || true
	done
}
trap cleanup EXIT

# Wait until cmd prints 0 (queue empty), bounded.
wait_empty() {
	local deadline=$((SECONDS + RUN_TIMEOUT))
	while [ "$("$@")" != 0 ]; do
		[ $SECONDS -lt $deadline ] || die "queue not empty after ${RUN_TIMEOUT}s"
		sleep 0.05
	done
}

now() { date +%s.%N; }

# start_moatd NAME BINARY: a relaying moatd in $WORK/NAME; sets STARTED_PID, PORT_NAME, CG_NAME.
start_moatd() {
	local name=$1 bin=$2 cg
	mkdir -p "$WORK/$name"
	MOATD="$bin" relay_conf "$WORK/$name/moatd.conf" "$WORK/$name/data" "$WORK/$name/moatd.log" "$SINK_PORT"
	cg=$(cg_new "$name")
	CGROUPS+=("$cg")
	in_cg "$cg" "$bin" -c "$WORK/$name/moatd.conf" &
	STARTED_PID=$!  # moatd itself: in_cg execs
	for _ in $(seq 100); do grep -q ' ready ' "$WORK/$name/moatd.log" 2>/dev/null && break; sleep 0.1; done
	grep -q ' ready ' "$WORK/$name/moatd.log" || die "$name not ready: $(tail -5 "$WORK/$name/moatd.log")"
	printf -v "CG_$name" '%s' "$cg"
	printf -v "PORT_$name" '%s' "$(sed -n 's/^smtp_listen = 127.0.0.1://p' "$WORK/$name/moatd.conf")"
}

SINK_PORT=$(free_port)
"$SMTP_SINK" -u nobody 127.0.0.1:"$SINK_PORT" 1024 &
SINK_PID=$!

# ---- moatd -------------------------------------------------------------------------
start_moatd moatd "$MOATD"
MOATD_PID=$STARTED_PID
moatd_queue() { ls "$WORK/moatd/data/spool/queue" | wc -l; }
if [ -n "$BASELINE" ]; then
	[ -x "$BASELINE" ] || die "no baseline moatd at $BASELINE"
	start_moatd base "$BASELINE"
	BASE_PID=$STARTED_PID
	base_queue() { ls "$WORK/base/data/spool/queue" | wc -l; }
fi

# ---- Postfix -----------------------------------------------------------------------
P_PORT=$(free_port)
PF_DIR="$WORK/postfix"
postfix_relay_conf "$PF_DIR" "$P_PORT" "$SINK_PORT"
postfix -c "$PF_DIR" check >/dev/null 2>&1 || true
CG_postfix=$(cg_new postfix)
CGROUPS+=("$CG_postfix")
PORT_postfix=$P_PORT
(in_cg "$CG_postfix" script -qc "postfix -c $PF_DIR start" "$WORK/postfix-start.log" >/dev/null 2>&1) || die "postfix start failed: $(cat "$WORK/postfix-start.log")"
for _ in $(seq 100); do
	/usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1',$P_PORT),1)" 2>/dev/null && break
	sleep 0.1
done
postfix_queue() { postfix_queue_count "$PF_DIR"; }

# ---- runs ----------------------------------------------------------------------------
run() { # name queue-fn concurrency size
	local name=$1 qfn=$2 c=$3 size=$4 t0 t1 u0 u1 port_var="PORT_$1" cg_var="CG_$1"
	u0=$(cg_usage "${!cg_var}")
	t0=$(now)
	timeout "$RUN_TIMEOUT" "$SMTP_SOURCE" -s "$c" -m "$COUNT" -l "$size" \
		-f bench@example.net -t sink@example.org 127.0.0.1:"${!port_var}"
	wait_empty "$qfn"
	t1=$(now)
	u1=$(cg_usage "${!cg_var}")
	/usr/bin/python3 - "$name" "$size" "$c" "$COUNT" "$t0" "$t1" "$u0" "$u1" <<'PY'
import sys
name, size, c, count, t0, t1, u0, u1 = sys.argv[1:]
count, secs = int(count), float(t1) - float(t0)
cpu = "%.3f" % ((int(u1) - int(u0)) / 1e6 / count) if u0 != "-" else "n/a"
print("%-7s size=%-6s c=%-4s %6d msgs %7.2fs %8.1f msg/s  cpu_ms/msg %s"
      % (name, size, c, count, secs, count / secs, cpu))
PY
}

MTAS="moatd:moatd_queue postfix:postfix_queue"
[ -n "$BASELINE" ] && MTAS="moatd:moatd_queue base:base_queue postfix:postfix_queue"
printf 'smtp-source -s C -m %s -l SIZE -> MTA -> smtp-sink (127.0.0.1), end to end\n' "$COUNT"
for size in $SIZES; do
	for c in $CONCURRENCY; do
		for m in $MTAS; do
			run "${m%%:*}" "${m#*:}" "$c" "$size" | tee -a "$WORK/results"
		done
	done
done
grep -q 'status=deferred\|status=bounced' "$PF_DIR/maillog" 2>/dev/null && echo "note: postfix log shows deferred/bounced mail" || true
/usr/bin/python3 - "$WORK/results" <<'PY'
import sys
by = {}
for line in open(sys.argv[1]):
    r = line.split()
    by.setdefault((r[1], r[2]), {})[r[0]] = (float(r[6]), r[9])
for (size, c), v in by.items():
    if "moatd" not in v or "postfix" not in v:
        continue
    out = f"{size} {c}: moatd/postfix {v['moatd'][0] / v['postfix'][0]:.2f}x msg/s"
    if v["moatd"][1] != "n/a" and float(v["moatd"][1]) > 0:
        out += f", postfix/moatd {float(v['postfix'][1]) / float(v['moatd'][1]):.2f}x CPU per message"
    if "base" in v:
        out += f"; moatd/base {v['moatd'][0] / v['base'][0]:.2f}x msg/s"
    print(out)
PY
