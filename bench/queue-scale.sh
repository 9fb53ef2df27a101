#!/usr/bin/env bash
# New mail behind a big deferred queue: does the queue runner's cost depend on
# the size of the queue?
#
#   bench/queue-scale.sh [path/to/moatd]          (default: build/moatd)
#
# Two moatd runs, each relaying to one smtp-sink on 127.0.0.1:
#   baseline  an empty data directory;
#   queued    a data directory holding N deferred messages (rows + spool files)
#             whose next attempt is a day ahead, so the runner must leave them be.
# Each run records the start-up time (launch to the "ready" line, spool
# reconciliation included), VmRSS/VmHWM after start, the time to take in and
# deliver M new messages from smtp-source, and VmHWM after.  "Delivered" is
# exact: smtp-source has had its 250s (the rows are committed), and no
# queue_message row received after the start mark is left (a delivered
# message's rows are deleted; a dead one would stay).  Loopback only, every wait
# bounded, everything started here is stopped at exit.
# Env: N=1000000 M=2000 KEEP=1 RUN_TIMEOUT=600 START_TIMEOUT=1800.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOATD="${1:-$ROOT/build/moatd}"
SMTP_SOURCE="${SMTP_SOURCE:-/usr/sbin/smtp-source}"
SMTP_SINK="${SMTP_SINK:-/usr/sbin/smtp-sink}"
N="${N:-1000000}"
M="${M:-2000}"
RUN_TIMEOUT="${RUN_TIMEOUT:-600}"
START_TIMEOUT="${START_TIMEOUT:-1800}"

die() { printf 'queue-scale.sh: %s\n' "$*" >&2; exit 1; }
[ -x "$MOATD" ] || die "no moatd binary at $MOATD"
[ -x "$SMTP_SOURCE" ] || die "needs $SMTP_SOURCE (postfix)"
[ -x "$SMTP_SINK" ] || die "needs $SMTP_SINK (postfix)"
command -v sqlite3 >/dev/null || die "needs the sqlite3 CLI"

WORK="$(mktemp -d /tmp/moat-queue-scale.XXXXXX)"
chmod 755 "$WORK"
SINK_PID=""
MOATD_PID=""
FAILED=0

# shellcheck source=bench/relay_moatd.sh
. "$ROOT/bench/relay_moatd.sh"

stop_moatd() {
	[ -n "$MOATD_PID" ] || return 0
	kill "$MOATD_PID" 2>/dev/null || true
	timeout 60 tail --pid="$MOATD_PID" -f /dev/null || kill -KILL "$MOATD_PID" 2>/dev/null || true
	wait "$MOATD_PID" 2>/dev/null || true
	MOATD_PID=""
}

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	stop_moatd
	if [ -n "$SINK_PID" ]; then
		kill "$SINK_PID" 2>/dev/null || true
		wait "$SINK_PID" 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1000 }'; }
mem() { awk -v k="$1:" '$1 == k { printf "%.1f MB", $2 / 1024 }' "/proc/$MOATD_PID/status"; }
sql() { sqlite3 -cmd '.timeout 5000' "$1/moat.db" "$2"; }

SINK_PORT=$(free_port)
"$SMTP_SINK" -u nobody 127.0.0.1:"$SINK_PORT" 1024 &
SINK_PID=$!

# One config per data directory.
configure() { # dir
	mkdir -p "$1"
	relay_conf "$1.conf" "$1" "$1.log" "$SINK_PORT"
}

# N deferred messages, each with its rows and its spool file, due in a day.
# Queue ids follow spool.c (11 hex digits of ms, 5 more; lower case), so
# start-up reconciliation keeps them.  No fsync: durability is not measured.
fill() { # dir
	/usr/bin/python3 - "$1" "$N" <<'EOF'
import os, sqlite3, sys, time
from email.utils import formatdate
d, n = sys.argv[1], int(sys.argv[2])
now = int(time.time() * 1000)
recv, due = now - 3600_000, now + 86400_000
qdir = os.path.join(d, "spool", "queue")
os.makedirs(qdir, exist_ok=True)
date = formatdate(recv / 1000)
msgs, rcpts = [], []
for i in range(n):
    qid = "%011x%05x" % (recv + i // 0x100000, i % 0x100000)
    to = "user%d@example.org" % (i % 1000)
    body = ("Received: from client.example.net (client.example.net [192.0.2.1])\r\n"
            "\tby bench.moat.test (Moat) with ESMTP id %s\r\n\tfor <%s>; %s\r\n"
            "From: <sender@example.net>\r\nTo: <%s>\r\nSubject: deferred %d\r\n"
            "Date: %s\r\nMessage-ID: <%s@example.net>\r\n\r\n"
            "This message waits for tomorrow.\r\n" % (qid, to, date, to, i, date, qid)).encode()
    fd = os.open(os.path.join(qdir, qid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    os.write(fd, body)
    os.close(fd)
    msgs.append((qid, "sender@example.net", "192.0.2.1", "client.example.net",
                 "client.example.net", len(body), recv))
    rcpts.append((qid, to, due))
db = sqlite3.connect(os.path.join(d, "moat.db"), isolation_level=None)
db.execute("PRAGMA synchronous = OFF")
db.execute("BEGIN")
db.executemany("INSERT INTO queue_message (qid, sender, client_addr, client_name, helo,"
               " size, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)", msgs)
db.executemany("INSERT INTO queue_rcpt (qid, rcpt, state, attempts, next_attempt, last_error,"
               " route) VALUES (?, ?, 'deferred', 1, ?, '451 4.3.0 bench: try tomorrow',"
               " 'downstream')", rcpts)
db.execute("COMMIT")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
EOF
}

# Start moatd on dir, time it to "ready", then send M messages and time them
# until every one is delivered.  Prints one line of figures.
run() { # name dir
	local name=$1 dir=$2 t0 t_ready t_send t_sent t_done deadline port accepted rss hwm
	port=$(sed -n 's/^smtp_listen = 127.0.0.1://p' "$dir.conf")
	t0=$(now_ms)
	"$MOATD" -c "$dir.conf" &
	MOATD_PID=$!
	deadline=$((SECONDS + START_TIMEOUT))
	until grep -q ' ready ' "$dir.log" 2>/dev/null; do
		kill -0 "$MOATD_PID" 2>/dev/null || die "$name: moatd exited: $(tail -5 "$dir.log")"
		[ $SECONDS -lt $deadline ] || die "$name: moatd not ready after ${START_TIMEOUT}s"
		sleep 0.02
	done
	t_ready=$(now_ms)
	sleep 1 # let the runner's first probe and the listeners settle
	rss=$(mem VmRSS)
	hwm=$(mem VmHWM)

	t_send=$(now_ms)
	timeout "$RUN_TIMEOUT" "$SMTP_SOURCE" -s 20 -m "$M" -l 2048 \
		-f a@example.net -t b@example.org 127.0.0.1:"$port" || FAILED=1
	t_sent=$(now_ms)
	deadline=$((SECONDS + RUN_TIMEOUT))
	# The backlog's received_at is an hour old: only the new mail is counted.
	while [ "$(sql "$dir" "SELECT count(*) FROM queue_message WHERE received_at >= $t_send")" != 0 ]; do
		[ $SECONDS -lt $deadline ] || die "$name: new mail not delivered after ${RUN_TIMEOUT}s"
		sleep 0.05
	done
	t_done=$(now_ms)
	accepted=$(sql "$dir" "SELECT count(*) FROM message_log WHERE ts >= $t_send AND result = 'accepted'")
	[ "$accepted" = "$M" ] || FAILED=1
	printf '%-9s start %7ss  RSS after start %s (HWM %s)  %s msgs accepted %s/%s, in %ss, all delivered in %ss  HWM after %s  RSS after %s\n' \
		"$name" "$(secs "$t0" "$t_ready")" "$rss" "$hwm" "$M" "$accepted" "$M" \
		"$(secs "$t_send" "$t_sent")" "$(secs "$t_send" "$t_done")" "$(mem VmHWM)" "$(mem VmRSS)"
	stop_moatd
	# warn and error lines say whether anything went wrong under the load
	printf '%-9s log: %s warn/error lines; queue left: %s\n' "$name" \
		"$(grep -E ' (warn|error): ' "$dir.log" | grep -vc 'running as root' || true)" \
		"$(sql "$dir" "SELECT state || '=' || count(*) FROM queue_rcpt GROUP BY state" | tr '\n' ' ')"
	grep -E ' (warn|error): ' "$dir.log" | grep -v 'running as root' | head -5 | sed 's/^/    /' || true
}

sizes() { # dir
	printf 'queued    moat.db %s MB, spool %s MB (%s files)\n' \
		"$(du -m "$1/moat.db" | cut -f1)" "$(du -sm "$1/spool/queue" | cut -f1)" \
		"$(find "$1/spool/queue" -type f | wc -l)"
}

printf 'M=%s new messages (smtp-source -s 20 -l 2048) -> moatd -> smtp-sink, N=%s deferred\n' "$M" "$N"
configure "$WORK/base"
run baseline "$WORK/base"

configure "$WORK/queued"
t=$(now_ms)
fill "$WORK/queued"
printf 'queued    prepared %s messages in %ss\n' "$N" "$(secs "$t" "$(now_ms)")"
sizes "$WORK/queued"
run queued "$WORK/queued"

# The runner's probes, copied from daemon/store/store_queue.c: how SQLite
# answers them on this queue.
echo "query plans on the queued database (SQL_DUE, SQL_NEXT_DUE, SQL_PURGEABLE):"
sql "$WORK/queued" "EXPLAIN QUERY PLAN SELECT r.qid FROM queue_rcpt r JOIN queue_message m ON m.qid = r.qid
 WHERE r.state = 'deferred' AND r.next_attempt <= $(now_ms) ORDER BY r.next_attempt LIMIT 400"
sql "$WORK/queued" "EXPLAIN QUERY PLAN SELECT min(next_attempt) FROM (SELECT min(next_attempt) AS next_attempt
 FROM queue_rcpt WHERE state = 'queued' UNION ALL SELECT min(next_attempt) FROM queue_rcpt WHERE state = 'deferred')"
PURGE="SELECT DISTINCT d.qid FROM queue_rcpt d WHERE d.state = 'dead' AND d.final_at <= $(now_ms)
 AND NOT EXISTS (SELECT 1 FROM queue_rcpt r WHERE r.qid = d.qid
 AND (r.state IN ('queued', 'deferred', 'held')
 OR (r.state = 'dead' AND r.final_at > $(now_ms)))) LIMIT 1000"
sql "$WORK/queued" "EXPLAIN QUERY PLAN $PURGE"
t=$(now_ms)
sql "$WORK/queued" "$PURGE" | wc -l >/dev/null
printf 'SQL_PURGEABLE (every 60 s, in BEGIN IMMEDIATE) took %ss on the queued database\n' "$(secs "$t" "$(now_ms)")"
[ "$FAILED" = 0 ] || die "smtp-source failed or not every message was accepted"
