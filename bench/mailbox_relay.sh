#!/usr/bin/env bash
# SMTP relay throughput and CPU per message of moatd without and with per-user mailbox rules:
# 10,000 directory users with 200 rules each, messages to recipients spread over those users,
# cold (each set compiled by the first message that needs it) and warm (the same recipients
# again, their sets in the cache), side by side in one run.
#
#   bench/mailbox_relay.sh [path/to/moatd]        (default: build/moatd)
#
# Two moatds relay example.org to one smtp-sink on 127.0.0.1: "moatd" (no mailbox rules)
# and "moatd+mbox" (USERS users x RULES rules written into its SQLite file as the API stores
# them: schema 017, one mailbox_ruleset per user; the rule mix of bench/mailbox_bench.c:
# `is` sender, Subject `contains`, List-Id `ends_with`, Subject AND to_cc, each a `move` to
# a folder, none matching the messages, so every message walks its recipient's whole set).
# The load: THREADS Python smtplib threads, one connection per message, a 5 KB text message
# to one recipient u<i>@example.org, i spread over the users (message k to user
# k * 7919 % USERS). Per MTA and pass: COUNT messages, time from the first connection until
# its queue is empty, CPU of its cpuacct cgroup / COUNT. Passes: warm-up (a different user
# range, to warm the code paths), cold (COUNT users never seen), warm (the same COUNT users
# again). mailbox_rules_cache is sized so that COUNT sets fit.
#
# Needs: smtp-sink (postfix), sqlite3, python3. Everything on 127.0.0.1, every wait bounded
# by RUN_TIMEOUT, everything stopped at exit, the temp dir removed (KEEP=1 keeps it).
# Env: USERS=10000 RULES=200 COUNT=1000 THREADS=8 RUN_TIMEOUT=600 KEEP=
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOATD="${1:-$ROOT/build/moatd}"
SMTP_SINK="${SMTP_SINK:-/usr/sbin/smtp-sink}"
USERS="${USERS:-10000}"
RULES="${RULES:-200}"
COUNT="${COUNT:-1000}"
THREADS="${THREADS:-8}"
RUN_TIMEOUT="${RUN_TIMEOUT:-600}"
CG_ROOT=/sys/fs/cgroup/cpuacct
PY=/usr/bin/python3

die() { printf 'mailbox_relay.sh: %s\n' "$*" >&2; exit 1; }
[ -x "$MOATD" ] || die "no moatd binary at $MOATD"
[ -x "$SMTP_SINK" ] || die "needs smtp-sink (package postfix)"
command -v sqlite3 >/dev/null || die "needs sqlite3"
[ "$COUNT" -le $((USERS / 3)) ] || die "COUNT must be at most USERS/3 (three disjoint user ranges)"

WORK="$(mktemp -d /tmp/moat-mailbox-relay.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
CGROUPS=()
cleanup() {
	local p cg
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
	for cg in "${CGROUPS[@]}"; do
		[ -n "$cg" ] && [ -d "$cg" ] || continue
		while read -r p; do echo "$p" >"$CG_ROOT/cgroup.procs" 2>/dev/null || true; done <"$cg/cgroup.procs"
		rmdir "$cg" 2>/dev/null || true
	done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# shellcheck source=bench/relay_peers.sh
. "$ROOT/bench/relay_peers.sh"
# shellcheck source=bench/relay_moatd.sh
. "$ROOT/bench/relay_moatd.sh"

now() { date +%s.%N; }
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

# start NAME VAR [extra config]: a moatd in $WORK/NAME; sets PID_VAR, PORT_VAR, CG_VAR.
prepare() {
	local name=$1 dir="$WORK/$1"
	mkdir -p "$dir"
	relay_conf "$dir/moatd.conf" "$dir/data" "$dir/moatd.log" "$SINK_PORT"
	sed -i 's/^log_level = warn/log_level = info/' "$dir/moatd.conf"
	echo "content_workers = 2" >>"$dir/moatd.conf"
}
start() {
	local name=$1 dir="$WORK/$1" cg
	cg=$(cg_new "$name")
	[ -z "$cg" ] || CGROUPS+=("$cg")
	in_cg "$cg" "$MOATD" -c "$dir/moatd.conf" &
	PIDS+=($!)
	printf -v "PID_$2" '%s' "$!"
	printf -v "PORT_$2" '%s' "$(awk '/^smtp_listen/ { sub(/.*:/, "", $3); print $3 }' "$dir/moatd.conf")"
	printf -v "CG_$2" '%s' "$cg"
	wait_until grep -qs ' ready ' "$dir/moatd.log"
}
queue_empty() { [ -z "$(ls -A "$WORK/$1/data/spool/queue")" ]; }

prepare moatd
prepare moatd+mbox
# 231 KB a compiled 200-rule set (bench/mailbox_bench): room for every set a pass touches.
echo "mailbox_rules_cache = $(((COUNT * 2 + 64) * RULES * 1200 / 1024 / 1024 + 64))M" \
	>>"$WORK/moatd+mbox/moatd.conf"

T0=$(now)
$PY - "$WORK/moatd+mbox/data/moat.db" "$USERS" "$RULES" <<'PY'
import json, sqlite3, sys, time
db, users, rules = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
con = sqlite3.connect(db)
con.execute("PRAGMA synchronous = OFF")
now = int(time.time() * 1000)
def rule(u, i):
    k = i % 4
    if k == 0:
        when = {"field": "sender", "op": "is", "value": f"ship{u}-{i}@fleet{i % 97}.example.com"}
    elif k == 1:
        when = {"field": "header", "header": "Subject", "op": "contains",
                "value": f"noon report vessel {u}x{i}"}
    elif k == 2:
        when = {"field": "header", "header": "List-Id", "op": "ends_with",
                "value": f"<list{u}-{i}.fleet.example.com>"}
    else:
        when = {"all": [{"field": "header", "header": "Subject", "op": "contains",
                         "value": f"cargo manifest {u}/{i}"},
                        {"field": "to_cc", "op": "contains", "value": f"crew{i}@example.org"}]}
    acts = [{"type": "move", "folder": f"Fleet/{i % 50}/{k}"}]
    if i % 10 == 0:
        acts.insert(0, {"type": "tag_subject", "prefix": f"[{i % 50}] "})
    if i % 25 == 0:
        acts.insert(0, {"type": "copy", "folder": "Archive"})
    return {"name": f"rule {i}", "enabled": True, "except": None, "comment": "",
            "when": when, "actions": acts}
for u in range(users):
    uid = con.execute("INSERT INTO dir_user (name, created) VALUES (?, 0)", (f"u{u}",)).lastrowid
    con.execute("INSERT INTO dir_address (address, user_id, kind) VALUES (?, ?, 'primary')",
                (f"u{u}@example.org", uid))
    sid = con.execute("INSERT INTO mailbox_ruleset (user_id) VALUES (?)", (uid,)).lastrowid
    con.executemany("INSERT INTO mailbox_rule (ruleset_id, position, name, enabled, definition,"
                    " created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?, ?)",
                    [(sid, i, f"rule {i}", json.dumps(rule(u, i), separators=(",", ":")),
                      now, now) for i in range(rules)])
con.commit()
PY
LOAD_S=$(printf "%.0f" "$(echo "$(now) - $T0" | bc)")
DB_MB=$(( $(stat -c %s "$WORK/moatd+mbox/data/moat.db") / 1024 / 1024 ))

start moatd plain
start moatd+mbox mbox

# send VAR FIRST: COUNT messages, message k to u<(FIRST + k) * 7919 % USERS>@example.org.
send() {
	local port_var="PORT_$1"
	timeout "$RUN_TIMEOUT" $PY - "${!port_var}" "$2" "$COUNT" "$USERS" "$THREADS" <<'PY'
import smtplib, sys, threading
port, first, count, users, threads = map(int, sys.argv[1:])
body = ("From: <bench@example.net>\r\nTo: <x@example.org>\r\nSubject: weekly figures\r\n"
        "Message-ID: <m@bench>\r\n\r\n" + ("The quick brown fox jumps over the lazy dog. " * 2
        + "\r\n") * 55).encode()
nxt, lock, fails = [0], threading.Lock(), [0]
def worker():
    while True:
        with lock:
            k = nxt[0]
            nxt[0] += 1
        if k >= count:
            return
        rcpt = f"u{(first + k) * 7919 % users}@example.org"
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                s.sendmail("bench@example.net", [rcpt], body)
        except Exception:
            with lock:
                fails[0] += 1
ts = [threading.Thread(target=worker) for _ in range(threads)]
[t.start() for t in ts]
[t.join() for t in ts]
sys.exit(1 if fails[0] else 0)
PY
}

# run NAME VAR FIRST LABEL
run() {
	local name=$1 var=$2 first=$3 label=$4 cg_var="CG_$2" t0 t1 u0 u1
	u0=$(cg_usage "${!cg_var}")
	t0=$(now)
	send "$var" "$first" || die "$name: client failed"
	wait_until queue_empty "$name"
	t1=$(now)
	u1=$(cg_usage "${!cg_var}")
	[ "$label" = warmup ] && return 0
	$PY - "$name" "$label" "$COUNT" "$t0" "$t1" "$u0" "$u1" <<'PY' | tee -a "$WORK/results"
import sys
name, label, n, t0, t1, u0, u1 = sys.argv[1:]
n, secs = int(n), float(t1) - float(t0)
cpu = "%.3f" % ((int(u1) - int(u0)) / 1e6 / n) if u0 != "-" else "n/a"
print("%-11s %-5s %6d msgs %7.2fs %7.1f msg/s  cpu_ms/msg %s" % (name, label, n, secs, n / secs, cpu))
PY
}

echo "mailbox_relay: $USERS users x $RULES rules loaded in ${LOAD_S}s (database $DB_MB MB);" \
	"$THREADS threads, one connection per message, 5 KB, one recipient each -> moatd -> smtp-sink"
# Warm-up over users [2*COUNT, 3*COUNT): the code paths, not the measured sets.
run moatd plain $((2 * COUNT)) warmup
run moatd+mbox mbox $((2 * COUNT)) warmup
# cold: users [0, COUNT) seen for the first time; warm: the same again.
run moatd plain 0 cold
run moatd+mbox mbox 0 cold
run moatd plain 0 warm
run moatd+mbox mbox 0 warm

COMPILES=$(grep -c 'mailbox compiled set=' "$WORK/moatd+mbox/moatd.log" || true)
COMPILE_MS=$(grep -o 'mailbox compiled set=.* ms=[0-9]*' "$WORK/moatd+mbox/moatd.log" |
	sed 's/.*ms=//' | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }')
MOVED=$(grep -c 'outcome=folder' "$WORK/moatd+mbox/moatd.log" || true)
NOTRUN=$(grep -c 'MAILBOX RULES NOT RUN' "$WORK/moatd+mbox/moatd.log" || true)
echo
echo "moatd+mbox: sets compiled $COMPILES (median ${COMPILE_MS:-?} ms each), rules matched" \
	"$MOVED (none should), not run $NOTRUN; VmRSS moatd $(rss_kb "$PID_plain" VmRSS) kB," \
	"moatd+mbox $(rss_kb "$PID_mbox" VmRSS) kB (VmHWM $(rss_kb "$PID_mbox" VmHWM) kB)"
$PY - "$WORK/results" <<'PY'
import sys
r = {}
for line in open(sys.argv[1]):
    f = line.split()
    r[(f[0], f[1])] = (float(f[5]), None if f[8] == "n/a" else float(f[8]))
for label in ("cold", "warm"):
    a, b = r.get(("moatd", label)), r.get(("moatd+mbox", label))
    if a and b:
        s = f"{label}: moatd+mbox / moatd {b[0] / a[0]:.2f}x msg/s"
        if a[1] is not None and b[1] is not None:
            s += f", {b[1] / a[1]:.2f}x CPU per message (+{b[1] - a[1]:.3f} ms)"
        print(s)
PY
