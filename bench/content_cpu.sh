#!/usr/bin/env bash
# CPU of moatd's threads per relayed message, with a given number of server rules: what the
# content stage costs, read per thread from /proc/PID/task/TID/schedstat (run time in ns)
# rather than from msg/s, which a shared machine's load moves more than the effect measured.
#
#   bench/content_cpu.sh [path/to/moatd] [RULES]      (defaults: build/moatd, 1000)
#
# One moatd relaying example.org to one smtp-sink on 127.0.0.1, RULES rules of
# bench/rules_gen.py (0: none), the sample of bench/send_files.py (200 messages of about
# 5 KB, 20 of about 50 KB), one warm-up pass, then COUNT messages; prints the CPU per message
# of each thread name (the loop thread is "moatd", the content worker "content-0") and of the
# whole process, then the voluntary context switches per message of each (a thread that
# sleeps for work or for I/O). CALLGRIND=1 runs moatd under valgrind's callgrind instead,
# collecting only inside the content worker's job (run_job: read-back, MIME walk, rules, decide) and the
# loop's completion of it (done_job), and prints instructions per message; CALLGRIND_FNS
# names other functions to collect in.
# SYSCALLS=1 also counts, with perf stat over the measured pass (needs root and tracefs), the
# syncfs() calls (one per group commit of the spool writer: messages / syncfs is the mean
# group size) and epoll_wait() calls (loop wake-ups) per message.
# PERF_RECORD=FILE records a perf profile (cpu-clock, call graphs) of moatd over the measured pass.
# Env: COUNT=1000 THREADS=8 RUN_TIMEOUT=300 CALLGRIND= CALLGRIND_FNS= SYSCALLS= PERF_RECORD= KEEP=
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOATD="${1:-$ROOT/build/moatd}"
RULES="${2:-1000}"
SMTP_SINK="${SMTP_SINK:-/usr/sbin/smtp-sink}"
COUNT="${COUNT:-1000}"
THREADS="${THREADS:-8}"
RUN_TIMEOUT="${RUN_TIMEOUT:-300}"
PY=/usr/bin/python3

die() { printf 'content_cpu.sh: %s\n' "$*" >&2; exit 1; }
[ -x "$MOATD" ] || die "no moatd binary at $MOATD"
[ -x "$SMTP_SINK" ] || die "needs smtp-sink (package postfix)"
CORPUS="$("$ROOT/scripts/corpus.sh")"
WORK="$(mktemp -d /tmp/moat-content-cpu.XXXXXX)"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_until() {
	local deadline=$((SECONDS + RUN_TIMEOUT))
	until "$@"; do
		[ $SECONDS -lt $deadline ] || die "timed out waiting for: $*"
		sleep 0.05
	done
}
queue_empty() { [ -z "$(ls -A "$WORK/data/spool/queue")" ]; }

SINK_PORT=$(free_port)
"$SMTP_SINK" -u nobody 127.0.0.1:"$SINK_PORT" 1024 &
PIDS+=($!)
PORT=$(free_port)
cat >"$WORK/moatd.conf" <<CONF
data_dir = $WORK/data
hostname = bench.moat.test
log = $WORK/moatd.log
log_level = info
smtp_listen = 127.0.0.1:$PORT
http_listen = 127.0.0.1:0
max_sessions = 2000
max_sessions_per_client = 1000
downstream = 127.0.0.1:$SINK_PORT
downstream_tls = off
delivery_concurrency = 100
delivery_concurrency_per_destination = 100
queue_poll = 100ms
CONF
"$MOATD" policy -c "$WORK/moatd.conf" add local_domain example.org >/dev/null
"$MOATD" policy -c "$WORK/moatd.conf" set recipient_verify no >/dev/null
if [ "${CALLGRIND:-0}" = 1 ]; then
	valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
		$(for f in ${CALLGRIND_FNS:-run_job done_job}; do printf -- '--toggle-collect=%s ' "$f"; done) \
		"$MOATD" -c "$WORK/moatd.conf" 2>"$WORK/valgrind.log" &
else
	"$MOATD" -c "$WORK/moatd.conf" &
fi
PID=$!
PIDS+=("$PID")
wait_until grep -qs ' ready ' "$WORK/moatd.log"
if [ "$RULES" -gt 0 ]; then
	$PY "$ROOT/bench/rules_gen.py" moat "$RULES" "$WORK/rules.json"
	"$MOATD" rules -c "$WORK/moatd.conf" import "$WORK/rules.json" >/dev/null
	wait_until grep -qs "rules compiled rules=$RULES " "$WORK/moatd.log"
fi
send() {
	timeout "$RUN_TIMEOUT" $PY "$ROOT/bench/send_files.py" smtp 127.0.0.1 "$PORT" "$CORPUS" \
		"$1" "$THREADS" "$RUN_TIMEOUT" >/dev/null || die "client failed"
	wait_until queue_empty
}
# schedstat: "run_ns wait_ns slices" per thread; the thread's name from comm; its
# voluntary context switches from status.
snap() {
	local t
	for t in /proc/"$PID"/task/*; do
		printf '%s %s %s %s %s\n' "${t##*/}" "$(tr ' ' '_' <"$t/comm")" "$(cut -d' ' -f1 "$t/schedstat")" \
			"$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status")" \
			"$(sed 's/.*) //' "$t/stat" | cut -d' ' -f12-13 | tr ' ' ,)"
	done 2>/dev/null
}
if [ "${CALLGRIND:-0}" = 1 ]; then
	send "$COUNT"
	kill "$PID"
	wait "$PID" 2>/dev/null || true
	PIDS=("${PIDS[@]:0:1}")
	total=$(callgrind_annotate "$WORK/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
	echo "callgrind: ${CALLGRIND_FNS:-run_job done_job}, $COUNT messages, $RULES rules: $total instructions," \
		"$((total / COUNT)) per message"
	callgrind_annotate --inclusive=yes "$WORK/callgrind.out" 2>/dev/null | sed -n '/file:function/,$p' | head -40
	exit 0
fi
send 220
snap >"$WORK/before"
if [ "${SYSCALLS:-0}" = 1 ]; then
	perf stat -x, -o "$WORK/perf" -e syscalls:sys_enter_syncfs,syscalls:sys_enter_epoll_wait \
		-p "$PID" &
	PERF_PID=$!
fi
if [ -n "${PERF_RECORD:-}" ]; then
	perf record -q -e cpu-clock -g -o "$PERF_RECORD" -p "$PID" 2>/dev/null &
	PERF_REC_PID=$!
fi
send "$COUNT"
snap >"$WORK/after"
if [ -n "${PERF_RECORD:-}" ]; then
	kill -INT "$PERF_REC_PID"
	wait "$PERF_REC_PID" 2>/dev/null || true
fi
if [ "${SYSCALLS:-0}" = 1 ]; then
	kill -INT "$PERF_PID"
	wait "$PERF_PID" 2>/dev/null || true
	awk -F, -v n="$COUNT" '/sys_enter/ { sub("syscalls:sys_enter_", "", $3);
		printf "%s %.3f/message  ", $3, $1 / n } END { print "" }' "$WORK/perf"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
$PY - "$WORK/before" "$WORK/after" "$COUNT" "$RULES" <<'PY'
import sys
def read(p):
    d = {}
    for line in open(p):
        tid, name, ns, vcs, ticks = line.split()
        user, system = (int(x) for x in ticks.split(","))
        d[tid] = (name, int(ns), int(vcs), user, system)
    return d
a, b, n, rules = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
per = {}
wake = {}
sys_share = {}
for tid, (name, ns, vcs, user, system) in b.items():
    a0 = a.get(tid, (name, 0, 0, 0, 0))
    per[name] = per.get(name, 0) + ns - a0[1]
    wake[name] = wake.get(name, 0) + vcs - a0[2]
    u, s = sys_share.get(name, (0, 0))
    sys_share[name] = (u + user - a0[3], s + system - a0[4])
total = sum(per.values())
print("rules=%s messages=%d  cpu ms/message: total %.3f  " % (rules, n, total / 1e6 / n) +
      "  ".join("%s %.3f" % (k, v / 1e6 / n) for k, v in sorted(per.items(), key=lambda x: -x[1])
                if v / 1e6 / n >= 0.001))
print("kernel share of each (utime/stime ticks): " + "  ".join(
      "%s %.0f%%" % (k, 100.0 * sys_share[k][1] / max(1, sum(sys_share[k])))
      for k, v in sorted(per.items(), key=lambda x: -x[1]) if v / 1e6 / n >= 0.001))
print("voluntary context switches/message: " + "  ".join("%s %.2f" % (k, wake[k] / n)
      for k, v in sorted(per.items(), key=lambda x: -x[1]) if v / 1e6 / n >= 0.001))
PY
