#!/usr/bin/env bash
# Cost of 1,000 server rules on the relay path, with real messages: moatd without rules and
# with them, side by side with Postfix without and with the same 1,000 patterns as pcre:
# header_checks / body_checks, and rspamd's scan time as a reference point.
#
#   bench/rules_relay.sh [path/to/moatd]         (default: build/moatd)
#
# Messages: a fixed sample of the SpamAssassin corpus (scripts/corpus.sh), 200 of about 5 KB
# and 20 of about 50 KB, sent as they are by bench/send_files.py (Python smtplib, THREADS
# threads, one connection per message) and re-sent in a fixed order until COUNT have gone.
# Every MTA relays to one smtp-sink on 127.0.0.1. Per MTA: one warm-up pass over the sample,
# then ROUNDS measured runs of COUNT messages, the MTAs taking turns. Time runs from the
# first connection until the MTA's queue is empty again; CPU is that of the MTA's cpuacct
# cgroup (every Postfix process included) divided by COUNT.
#
# Rules: bench/rules_gen.py, the mix of bench/rules_bench.c (same seed); none matches the
# sample, which the script checks (moatd's hit counts, Postfix's WARN log lines). moatd gets
# them with `moatd rules import` once it is ready; its compile time is the `rules compiled`
# log line. After the runs the same moatd gets 10,000 rules, for the compile time and memory.
#
# rspamd (optional, reference only): with its default configuration on loopback, network
# checks answered NXDOMAIN at once by a local dnsmasq, no Redis. Debian 12's rspamd package
# cannot be installed next to libvectorscan5 (its libhyperscan5 conflicts), so unpack it:
#   mkdir /tmp/rspamd && cd /tmp/rspamd && apt-get download rspamd libhyperscan5 libluajit2-5.1-2 \
#     && for d in *.deb; do dpkg -x "$d" root; done
# and run with RSPAMD_ROOT=/tmp/rspamd/root (an installed rspamd in PATH is used otherwise).
#
# Needs: postfix, postfix-pcre (apt-get install postfix-pcre), smtp-sink, sqlite3, python3;
# dnsmasq for rspamd. Everything listens on 127.0.0.1, every wait is bounded by RUN_TIMEOUT,
# everything started here is stopped at exit and the temp dir removed (KEEP=1 keeps it).
# Env: COUNT=2000 THREADS=8 ROUNDS=2 RUN_TIMEOUT=300 RSPAMD_COUNT=1000 RSPAMD_ROOT= KEEP=
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOATD="${1:-$ROOT/build/moatd}"
SMTP_SINK="${SMTP_SINK:-/usr/sbin/smtp-sink}"
COUNT="${COUNT:-2000}"
THREADS="${THREADS:-8}"
ROUNDS="${ROUNDS:-2}"
RUN_TIMEOUT="${RUN_TIMEOUT:-300}"
RSPAMD_COUNT="${RSPAMD_COUNT:-1000}"
RSPAMD_ROOT="${RSPAMD_ROOT:-}"
CG_ROOT=/sys/fs/cgroup/cpuacct
PY=/usr/bin/python3

die() { printf 'rules_relay.sh: %s\n' "$*" >&2; exit 1; }
[ -x "$MOATD" ] || die "no moatd binary at $MOATD"
[ -x "$SMTP_SINK" ] || die "needs smtp-sink (package postfix)"
command -v postfix >/dev/null || die "needs postfix"
command -v sqlite3 >/dev/null || die "needs sqlite3"
CORPUS="$("$ROOT/scripts/corpus.sh")"

WORK="$(mktemp -d /tmp/moat-rules-relay.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
PF_DIRS=()
CGROUPS=()
mkdir "$WORK/pf-probe" && touch "$WORK/pf-probe/main.cf"
postconf -c "$WORK/pf-probe" -m 2>/dev/null | grep -qx pcre ||
	die "needs Postfix pcre: tables: apt-get install postfix-pcre"

cleanup() {
	local p cg
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
	for p in "${PF_DIRS[@]}"; do postfix -c "$p" stop >/dev/null 2>&1 || true; done
	for cg in "${CGROUPS[@]}"; do
		[ -n "$cg" ] && [ -d "$cg" ] || continue
		# Wait (bounded) for the last Postfix processes to leave before removing the group.
		for _ in $(seq 50); do [ -s "$cg/cgroup.procs" ] || break; sleep 0.1; done
		while read -r p; do echo "$p" >"$CG_ROOT/cgroup.procs" 2>/dev/null || true; done <"$cg/cgroup.procs"
		rmdir "$cg" 2>/dev/null || true
	done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# shellcheck source=bench/relay_peers.sh
. "$ROOT/bench/relay_peers.sh"

now() { date +%s.%N; }
free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait_until CMD...: CMD succeeds within RUN_TIMEOUT, or the script fails.
wait_until() {
	local deadline=$((SECONDS + RUN_TIMEOUT))
	until "$@"; do
		[ $SECONDS -lt $deadline ] || die "timed out waiting for: $*"
		sleep 0.05
	done
}
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

SINK_PORT=$(free_port)
"$SMTP_SINK" -u nobody 127.0.0.1:"$SINK_PORT" 1024 &
PIDS+=($!)

$PY "$ROOT/bench/rules_gen.py" moat 1000 "$WORK/rules-1000.json"
$PY "$ROOT/bench/rules_gen.py" moat 10000 "$WORK/rules-10000.json"
PF_COUNTS=$($PY "$ROOT/bench/rules_gen.py" postfix 1000 "$WORK/pcre")

# ---- moatd: "moatd" without rules, "moatd+rules" with 1,000 ----------------------------
# start_moatd NAME: a moatd in $WORK/NAME relaying example.org to the sink, logging at info
# (the `rules compiled` line); sets PID_NAME, PORT_NAME, CG_NAME, CONF_NAME.
start_moatd() {
	local name=$1 dir="$WORK/$1" port cg
	mkdir -p "$dir"
	port=$(free_port)
	cat >"$dir/moatd.conf" <<CONF
data_dir = $dir/data
hostname = bench.moat.test
log = $dir/moatd.log
log_level = info
smtp_listen = 127.0.0.1:$port
http_listen = 127.0.0.1:0
max_sessions = 2000
max_sessions_per_client = 1000
downstream = 127.0.0.1:$SINK_PORT
downstream_tls = off
delivery_concurrency = 100
delivery_concurrency_per_destination = 100
queue_poll = 100ms
CONF
	"$MOATD" policy -c "$dir/moatd.conf" add local_domain example.org >/dev/null
	"$MOATD" policy -c "$dir/moatd.conf" set recipient_verify no >/dev/null
	cg=$(cg_new "$name")
	[ -z "$cg" ] || CGROUPS+=("$cg")
	in_cg "$cg" "$MOATD" -c "$dir/moatd.conf" &
	PIDS+=($!)
	printf -v "PID_$2" '%s' "$!"
	printf -v "PORT_$2" '%s' "$port"
	printf -v "CG_$2" '%s' "$cg"
	wait_until grep -qs ' ready ' "$dir/moatd.log"
}
moatd_queue_empty() { [ -z "$(ls -A "$WORK/$1/data/spool/queue")" ]; }

start_moatd moatd plain
start_moatd moatd+rules rules
"$MOATD" rules -c "$WORK/moatd+rules/moatd.conf" import "$WORK/rules-1000.json" >/dev/null
wait_until grep -qs 'rules compiled rules=1000 ' "$WORK/moatd+rules/moatd.log"
COMPILE_1000=$(grep -o 'rules compiled rules=1000 .*' "$WORK/moatd+rules/moatd.log" | tail -1)

# ---- Postfix: "postfix" plain, "postfix+pcre" with the 1,000 patterns ------------------
# start_postfix NAME VAR [checks]: a relay-only Postfix in $WORK/NAME (as in delivery.sh).
start_postfix() {
	local name=$1 dir="$WORK/$1" port cg
	port=$(free_port)
	postfix_relay_conf "$dir" "$port" "$SINK_PORT"
	echo "message_size_limit = 10240000" >>"$dir/main.cf"
	if [ "${3:-}" = checks ]; then
		# The whole body is checked, as moatd reads it all (the default stops after 51200 octets).
		cat >>"$dir/main.cf" <<EOF
header_checks = pcre:$WORK/pcre/header_checks
body_checks = pcre:$WORK/pcre/body_checks
body_checks_size_limit = 10240000
smtpd_sender_restrictions = check_sender_access pcre:$WORK/pcre/sender_access
EOF
	fi
	postfix -c "$dir" check >/dev/null 2>&1 || true
	cg=$(cg_new "$name")
	[ -z "$cg" ] || CGROUPS+=("$cg")
	PF_DIRS+=("$dir")
	(in_cg "$cg" script -qc "postfix -c $dir start" "$dir/start.log" >/dev/null 2>&1) ||
		die "postfix $name start failed: $(cat "$dir/start.log")"
	printf -v "PORT_$2" '%s' "$port"
	printf -v "CG_$2" '%s' "$cg"
	wait_until $PY -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null
}
postfix_queue_empty() {
	[ "$(postfix_queue_count "$WORK/$1")" = 0 ]
}

start_postfix postfix pfplain
start_postfix postfix+pcre pfpcre checks

# ---- runs ------------------------------------------------------------------------------
# run NAME VAR QUEUE-FN N LABEL: N messages to the MTA, wait until its queue is empty.
run() {
	local name=$1 var=$2 qfn=$3 n=$4 label=$5 port_var="PORT_$2" cg_var="CG_$2" t0 t1 u0 u1 out
	u0=$(cg_usage "${!cg_var}")
	t0=$(now)
	out=$(timeout "$RUN_TIMEOUT" $PY "$ROOT/bench/send_files.py" smtp 127.0.0.1 "${!port_var}" \
		"$CORPUS" "$n" "$THREADS" "$RUN_TIMEOUT") || die "$name: client failed: $out"
	wait_until "$qfn" "$name"
	t1=$(now)
	u1=$(cg_usage "${!cg_var}")
	[ "$label" = warmup ] && return 0
	$PY - "$name" "$n" "$t0" "$t1" "$u0" "$u1" "$out" <<'PY' | tee -a "$WORK/results"
import json, sys
name, n, t0, t1, u0, u1, out = sys.argv[1:]
n, secs, o = int(n), float(t1) - float(t0), json.loads(out)
cpu = "%.3f" % ((int(u1) - int(u0)) / 1e6 / n) if u0 != "-" else "n/a"
print("%-13s %6d msgs %7.2fs %7.1f msg/s  cpu_ms/msg %s" % (name, n, secs, n / secs, cpu))
PY
}

MTAS="moatd:plain:moatd_queue_empty moatd+rules:rules:moatd_queue_empty"
MTAS="$MTAS postfix:pfplain:postfix_queue_empty postfix+pcre:pfpcre:postfix_queue_empty"
for m in $MTAS; do
	IFS=: read -r name var qfn <<<"$m"
	run "$name" "$var" "$qfn" 220 warmup
done
RSS_PLAIN=$(rss_kb "$PID_plain" VmRSS)
RSS_RULES=$(rss_kb "$PID_rules" VmRSS)
echo "relay: send_files.py ($THREADS threads, one connection per message, corpus sample) -> MTA -> smtp-sink"
for r in $(seq "$ROUNDS"); do
	for m in $MTAS; do
		IFS=: read -r name var qfn <<<"$m"
		run "$name" "$var" "$qfn" "$COUNT" "round$r"
	done
done

# Nothing may have matched: moatd's hit counts and Postfix's WARN lines.
HITS=$(sqlite3 "$WORK/moatd+rules/data/moat.db" 'SELECT count(*) FROM rule WHERE hits > 0')
PF_WARN=$(grep -c 'warning: header \|warning: body \|warn: ' "$WORK/postfix+pcre/maillog" || true)
NOT_SENT=$(cat "$WORK"/postfix*/maillog | grep -c 'status=deferred\|status=bounced' || true)

# And both do match a message made to match rules 0 (Subject) and 1 (body phrase).
for port in "$PORT_rules" "$PORT_pfpcre"; do
	$PY - "$port" <<'PY'
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
    s.sendmail("bench@example.net", ["sink@example.org"],
               b"From: <bench@example.net>\r\nTo: <sink@example.org>\r\n"
               b"Subject: Prize Pharmacy 0 control\r\n\r\nThe winner viagra money1 line.\r\n")
PY
done
control_hits() {
	[ "$(sqlite3 "$WORK/moatd+rules/data/moat.db" \
		"SELECT count(*) FROM rule WHERE name IN ('rule 0', 'rule 1') AND hits = 1")" = 2 ]
}
control_warns() { [ "$(grep -c ': rule [01]$' "$WORK/postfix+pcre/maillog")" = 2 ]; }
wait_until control_hits
wait_until control_warns

# ---- compile time and memory -----------------------------------------------------------
# `moatd rules import` reads at most 1 MiB and 10,000 rules are 1.5 MB of JSON: replace the
# set with the first 2,500, then append the rest 2,500 at a time.
$PY - "$WORK/rules-10000.json" <<'PY'
import json, sys
rules = json.load(open(sys.argv[1]))
for k in range(0, len(rules), 2500):
    json.dump(rules[k:k + 2500], open(f"{sys.argv[1]}.{k // 2500}", "w"))
PY
for k in 0 1 2 3; do
	mode=()
	[ $k = 0 ] || mode=(--append)
	"$MOATD" rules -c "$WORK/moatd+rules/moatd.conf" import "$WORK/rules-10000.json.$k" \
		"${mode[@]}" >/dev/null
done
wait_until grep -qs 'rules compiled rules=10000 ' "$WORK/moatd+rules/moatd.log"
# That compile may have overlapped the CLI's own checks of the last import: one more policy
# write (a no-op setting) makes moatd load and compile the same 10,000 rules on a quiet machine.
"$MOATD" policy -c "$WORK/moatd+rules/moatd.conf" set recipient_verify no >/dev/null
n_lines() { [ "$(grep -c 'rules compiled rules=10000 ' "$WORK/moatd+rules/moatd.log")" -ge 2 ]; }
wait_until n_lines
COMPILE_10000=$(grep -o 'rules compiled rules=10000 .*' "$WORK/moatd+rules/moatd.log" | tail -1)
sleep 1 # the previous snapshot is released once its last session ends
RSS_10000=$(rss_kb "$PID_rules" VmRSS)

echo
echo "moatd+rules: 1,000 rules: $COMPILE_1000"
echo "moatd+rules: 10,000 rules: $COMPILE_10000"
echo "VmRSS after warm-up: moatd $RSS_PLAIN kB, moatd+rules $RSS_RULES kB;" \
	"moatd+rules with 10,000 rules $RSS_10000 kB (VmHWM $(rss_kb "$PID_rules" VmHWM) kB)"
echo "postfix+pcre tables: $PF_COUNTS"
echo "rules that matched a message: moatd $HITS, postfix WARN lines $PF_WARN;" \
	"postfix deferred/bounced: $NOT_SENT; control message: both matched rules 0 and 1"
$PY - "$WORK/results" <<'PY'
import sys
by = {}
for line in open(sys.argv[1]):
    r = line.split()
    by.setdefault(r[0], []).append((float(r[4]), float(r[7]) if r[7] != "n/a" else None))
def med(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
for a, b in (("moatd", "moatd+rules"), ("postfix", "postfix+pcre")):
    if a in by and b in by:
        ra, rb = med([x[0] for x in by[a]]), med([x[0] for x in by[b]])
        line = f"{b} / {a}: {rb / ra:.2f}x msg/s (median of rounds)"
        ca, cb = [x[1] for x in by[a]], [x[1] for x in by[b]]
        if None not in ca + cb:
            line += f", {med(cb) / med(ca):.2f}x CPU per message (+{med(cb) - med(ca):.3f} ms)"
        print(line)
PY

# ---- rspamd (reference) ----------------------------------------------------------------
RSPAMD_BIN=""
if [ -n "$RSPAMD_ROOT" ] && [ -x "$RSPAMD_ROOT/usr/bin/rspamd" ]; then
	RSPAMD_BIN="$RSPAMD_ROOT/usr/bin/rspamd"
	export LD_LIBRARY_PATH="$RSPAMD_ROOT/usr/lib/rspamd:$RSPAMD_ROOT/usr/lib/x86_64-linux-gnu"
	RS_SHARE="$RSPAMD_ROOT/usr/share/rspamd"
	RS_ETC="$RSPAMD_ROOT/etc/rspamd"
elif command -v rspamd >/dev/null; then
	RSPAMD_BIN=$(command -v rspamd)
	RS_SHARE=/usr/share/rspamd
	RS_ETC=/etc/rspamd
fi
if [ -z "$RSPAMD_BIN" ]; then
	echo "rspamd: skipped (no RSPAMD_ROOT and no rspamd in PATH; see the head of this script)"
	exit 0
fi
command -v dnsmasq >/dev/null || die "rspamd needs dnsmasq (a loopback resolver answering NXDOMAIN)"
RS="$WORK/rspamd"
mkdir -p "$RS/db" "$RS/run" "$RS/log"
cp -r "$RS_ETC" "$RS/etc"
DNS_PORT=$(free_port)
# No upstream: every name is NXDOMAIN at once, so DNS-based rules run but cost no wait.
dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=127.0.0.1 \
	--bind-interfaces --port="$DNS_PORT" --address=/#/ --pid-file="$RS/dnsmasq.pid" \
	--log-facility="$RS/log/dnsmasq.log" &
PIDS+=($!)
RS_PORT=$(free_port)
RS_CTL=$(free_port)
RS_PROXY=$(free_port)
mkdir -p "$RS/etc/override.d"
cat >"$RS/etc/override.d/worker-normal.inc" <<EOF
bind_socket = "127.0.0.1:$RS_PORT";
count = 2;
EOF
cat >"$RS/etc/override.d/worker-controller.inc" <<EOF
bind_socket = "127.0.0.1:$RS_CTL";
EOF
cat >"$RS/etc/override.d/worker-proxy.inc" <<EOF
bind_socket = "127.0.0.1:$RS_PROXY";
EOF
cat >"$RS/etc/local.d/options.inc" <<EOF
dns { nameserver = ["127.0.0.1:$DNS_PORT"]; timeout = 1s; retransmits = 1; }
EOF
# Its language data are looked for under the compiled-in /usr/share/rspamd.
cat >"$RS/etc/rspamd.conf.local" <<EOF
lang_detection { languages = "$RS_SHARE/languages"; stop_words = "$RS_SHARE/languages/stop_words"; }
EOF
# The fuzzy hash servers are on the Internet (its start-up resolves them): off.
echo 'enabled = false;' >"$RS/etc/local.d/fuzzy_check.conf"
cat >"$RS/etc/local.d/logging.inc" <<EOF
type = "file";
filename = "$RS/log/rspamd.log";
level = "warning";
EOF
CG_rspamd=$(cg_new rspamd)
[ -z "$CG_rspamd" ] || CGROUPS+=("$CG_rspamd")
in_cg "$CG_rspamd" "$RSPAMD_BIN" -f -i -c "$RS/etc/rspamd.conf" \
	--var=CONFDIR="$RS/etc" --var=LOCAL_CONFDIR="$RS/etc" --var=RULESDIR="$RS_SHARE/rules" \
	--var=LUALIBDIR="$RS_SHARE/lualib" --var=PLUGINSDIR="$RS_SHARE/plugins" \
	--var=SHAREDIR="$RS_SHARE" --var=WWWDIR="$RS_SHARE/www" --var=DBDIR="$RS/db" \
	--var=RUNDIR="$RS/run" --var=LOGDIR="$RS/log" >"$RS/stdout.log" 2>&1 &
PIDS+=($!)
wait_until $PY -c "import socket; socket.create_connection(('127.0.0.1',$RS_PORT),1)" 2>/dev/null
$PY "$ROOT/bench/send_files.py" rspamd "http://127.0.0.1:$RS_PORT/checkv2" "$CORPUS" 220 "$THREADS" \
	"$RUN_TIMEOUT" >/dev/null || die "rspamd warm-up failed: $(tail -5 "$RS/log/rspamd.log")"
u0=$(cg_usage "$CG_rspamd")
out=$($PY "$ROOT/bench/send_files.py" rspamd "http://127.0.0.1:$RS_PORT/checkv2" "$CORPUS" \
	"$RSPAMD_COUNT" "$THREADS" "$RUN_TIMEOUT") || die "rspamd run failed: $out"
u1=$(cg_usage "$CG_rspamd")
$PY - "$out" "$u0" "$u1" "$RSPAMD_COUNT" "$("$RSPAMD_BIN" -v 2>&1 | head -1)" <<'PY'
import json, sys
o, u0, u1, n, ver = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
cpu = "%.3f" % ((int(u1) - int(u0)) / 1e6 / n) if u0 != "-" else "n/a"
print(f"rspamd ({ver}, default rules, 2 workers, {n} scans over /checkv2): "
      f"{n / o['elapsed_s']:.1f} msg/s, cpu_ms/msg {cpu}, scan time (time_real) mean "
      f"{o.get('scan_ms_mean')} ms p50 {o.get('scan_ms_p50')} p99 {o.get('scan_ms_p99')}; "
      f"client-measured mean {o.get('client_ms_mean')} ms p50 {o.get('client_ms_p50')} "
      f"p99 {o.get('client_ms_p99')}")
PY
