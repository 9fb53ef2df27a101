#!/usr/bin/env bash
# End-to-end relay throughput: smtp-source -> MTA -> smtp-sink, moatd side by side
# with Postfix configured as a plain relay in a temporary directory.
#
#   bench/delivery.sh [path/to/moatd]          (default: build/moatd)
#
# For each concurrency level (CONCURRENCY, default "20 100") both MTAs receive
# COUNT messages of SIZE payload bytes (one message per connection, smtp-source's
# default) and relay them to one smtp-sink on 127.0.0.1.  Time is measured from
# the start of smtp-source until the MTA's queue is empty again (every message
# received, fsync'ed, delivered and removed).  Both MTAs fsync before they answer
# 250 (moatd: file + directory + SQLite synchronous=FULL; Postfix: cleanup fsync).
# Everything listens on 127.0.0.1 only, every step is bounded by RUN_TIMEOUT, and
# everything started here is stopped at exit.  Env: COUNT=2000 SIZE=5120 KEEP=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOATD="${1:-$ROOT/build/moatd}"
SMTP_SOURCE="${SMTP_SOURCE:-/usr/sbin/smtp-source}"
SMTP_SINK="${SMTP_SINK:-/usr/sbin/smtp-sink}"
CONCURRENCY="${CONCURRENCY:-20 100}"
COUNT="${COUNT:-2000}"
SIZE="${SIZE:-5120}"
RUN_TIMEOUT="${RUN_TIMEOUT:-300}"

die() { printf 'delivery.sh: %s\n' "$*" >&2; exit 1; }
[ -x "$MOATD" ] || die "no moatd binary at $MOATD"
[ -x "$SMTP_SOURCE" ] && [ -x "$SMTP_SINK" ] || die "needs smtp-source and smtp-sink (postfix)"
command -v postfix >/dev/null || die "needs postfix"

WORK="$(mktemp -d /tmp/moat-delivery-bench.XXXXXX)"
chmod 755 "$WORK"
SINK_PID=""
MOATD_PID=""
PF_DIR=""

# shellcheck source=bench/relay_moatd.sh
. "$ROOT/bench/relay_moatd.sh"

cleanup() {
	[ -n "$MOATD_PID" ] && kill "$MOATD_PID" 2>/dev/null && wait "$MOATD_PID" 2>/dev/null || true
	[ -n "$PF_DIR" ] && postfix -c "$PF_DIR" stop >/dev/null 2>&1 || true
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null || true
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
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

SINK_PORT=$(free_port)
"$SMTP_SINK" -u nobody 127.0.0.1:"$SINK_PORT" 1024 &
SINK_PID=$!

# ---- moatd -------------------------------------------------------------------------
mkdir -p "$WORK/moatd"
relay_conf "$WORK/moatd/moatd.conf" "$WORK/moatd/data" "$WORK/moatd/moatd.log" "$SINK_PORT"
M_PORT=$(sed -n 's/^smtp_listen = 127.0.0.1://p' "$WORK/moatd/moatd.conf")
"$MOATD" -c "$WORK/moatd/moatd.conf" &
MOATD_PID=$!
for _ in $(seq 100); do grep -q ' ready ' "$WORK/moatd/moatd.log" 2>/dev/null && break; sleep 0.1; done
grep -q ' ready ' "$WORK/moatd/moatd.log" || die "moatd not ready: $(tail -5 "$WORK/moatd/moatd.log")"
moatd_queue() { ls "$WORK/moatd/data/spool/queue" | wc -l; }

# ---- Postfix -----------------------------------------------------------------------
P_PORT=$(free_port)
PF_DIR="$WORK/postfix"
mkdir -p "$PF_DIR/queue" "$PF_DIR/data"
chown postfix "$PF_DIR/data"
cat >"$PF_DIR/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.org
relayhost = [127.0.0.1]:$SINK_PORT
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = $WORK
default_process_limit = 300
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_destination_concurrency_limit = 100
smtp_destination_concurrency_limit = 100
initial_destination_concurrency = 100
in_flow_delay = 0
EOF
awk -v port="$P_PORT" '
	/^smtp +inet/ { print "127.0.0.1:" port " inet n - n - - smtpd"; next }
	/^[a-z0-9]+ +(unix|inet|fifo|unix-dgram|pass) / { $5 = "n"; print; next }
	{ print }' /etc/postfix/master.cf >"$PF_DIR/master.cf"
echo "postlog   unix-dgram n  -       n       -       1       postlogd" >>"$PF_DIR/master.cf"
postfix -c "$PF_DIR" check >/dev/null 2>&1 || true
script -qc "postfix -c $PF_DIR start" "$WORK/postfix-start.log" >/dev/null 2>&1 || die "postfix start failed: $(cat "$WORK/postfix-start.log")"
for _ in $(seq 100); do
	/usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1',$P_PORT),1)" 2>/dev/null && break
	sleep 0.1
done
postfix_queue() {
	find "$PF_DIR/queue/maildrop" "$PF_DIR/queue/incoming" "$PF_DIR/queue/active" \
		"$PF_DIR/queue/deferred" -type f 2>/dev/null | wc -l
}

# ---- runs ----------------------------------------------------------------------------
run() { # name port queue-fn concurrency
	local name=$1 port=$2 qfn=$3 c=$4 t0 t1
	t0=$(now)
	timeout "$RUN_TIMEOUT" "$SMTP_SOURCE" -s "$c" -m "$COUNT" -l "$SIZE" \
		-f bench@example.net -t sink@example.org 127.0.0.1:"$port"
	wait_empty "$qfn"
	t1=$(now)
	/usr/bin/python3 -c "print('%-7s c=%-4s %6d msgs %7.2fs %8.1f msg/s' % ('$name', $c, $COUNT, $t1-$t0, $COUNT/($t1-$t0)))"
}

printf 'smtp-source -s C -m %s -l %s -> MTA -> smtp-sink (127.0.0.1), end to end\n' "$COUNT" "$SIZE"
for c in $CONCURRENCY; do
	run moatd "$M_PORT" moatd_queue "$c" | tee -a "$WORK/results"
	run postfix "$P_PORT" postfix_queue "$c" | tee -a "$WORK/results"
done
grep -q 'status=deferred\|status=bounced' "$PF_DIR/maillog" 2>/dev/null && echo "note: postfix log shows deferred/bounced mail" || true
/usr/bin/python3 - "$WORK/results" <<'EOF'
import sys, re
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r[1], {})[r[0]] = float(r[5])
for c, v in by.items():
    if "moatd" in v and "postfix" in v:
        print(f"{c}: moatd/postfix = {v['moatd'] / v['postfix']:.2f}")
EOF
