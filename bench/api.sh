#!/bin/sh
# bench/api.sh MOATD_BIN — requests/s and latency of the message-log API with 100,000 rows.
#
# Starts the moatd you name once to create its database, stops it, inserts ROWS message-log
# rows with sqlite3, starts it again (HTTP threads = HTTP_THREADS), creates an admin token
# through the API and runs wrk against a list and a search endpoint of /api/v1/messages.
# Everything lives in a throw-away directory under /tmp (KEEP=1 keeps it); every step is
# bounded by timeout. Needs: wrk, sqlite3, curl.
set -eu

BIN=${1:?usage: bench/api.sh path/to/moatd}
ROWS=${ROWS:-100000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
HTTP_THREADS=${HTTP_THREADS:-4}
PW=bench-admin-password
DIR=$(mktemp -d /tmp/moat-api-bench.XXXXXX)
PID=

cleanup() {
	if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	if [ "${KEEP:-0}" != 1 ]; then rm -rf "$DIR"; else echo "kept $DIR"; fi
}
trap cleanup EXIT INT TERM

cat > "$DIR/moatd.conf" <<CONF
data_dir = $DIR/data
smtp_listen = 127.0.0.1:0
http_listen = 127.0.0.1:0
log = $DIR/moatd.log
delivery = no
http_threads = $HTTP_THREADS
http_max_connections = 1024
CONF

start() {
	: > "$DIR/moatd.log"
	MOAT_ADMIN_PASSWORD=$PW "$BIN" -c "$DIR/moatd.conf" > "$DIR/moatd.out" 2>&1 &
	PID=$!
	i=0
	while ! grep -q ' ready ' "$DIR/moatd.log" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 150 ]; then echo "moatd not ready" >&2; cat "$DIR/moatd.out" >&2; exit 1; fi
		sleep 0.1
	done
	PORT=$(grep -o 'http=127.0.0.1:[0-9]*' "$DIR/moatd.log" | head -1 | cut -d: -f2)
}

stop() {
	kill "$PID"
	timeout 20 sh -c "while kill -0 $PID 2>/dev/null; do sleep 0.1; done"
	PID=
}

start
stop

echo "inserting $ROWS message-log rows"
NOW=$(($(date +%s) * 1000))
timeout 120 sqlite3 "$DIR/data/moat.db" <<SQL
PRAGMA journal_mode = WAL;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO message_log (ts, session_id, qid, client_addr, client_name, helo, sender,
                         recipients, size, result, code, reason, check_name)
SELECT $NOW - i * 1000, printf('s%08d', i), printf('%016X', i),
       printf('192.0.2.%d', i % 250), 'client.example', 'client.example',
       printf('sender%d@example.net', i % 1000),
       printf('["rcpt%d@example.org"]', i % 5000), 1000 + i % 5000,
       CASE i % 4 WHEN 1 THEN 'refused' WHEN 2 THEN 'deferred' ELSE 'accepted' END,
       CASE i % 4 WHEN 1 THEN '550 5.7.1' WHEN 2 THEN '451 4.7.1' ELSE '250 2.0.0' END,
       CASE i % 4 WHEN 1 THEN 'listed on zen.example' WHEN 2 THEN 'greylisted' END,
       CASE i % 4 WHEN 1 THEN 'dnsbl' WHEN 2 THEN 'grey' END
FROM n;
SQL

start
J=$(timeout 10 curl -sf -c "$DIR/cj" -H 'Content-Type: application/json' \
	-d "{\"username\":\"admin\",\"password\":\"$PW\"}" "http://127.0.0.1:$PORT/api/v1/session")
CSRF=$(echo "$J" | sed 's/.*"csrf_token":"\([0-9a-f]*\)".*/\1/')
T=$(timeout 10 curl -sf -b "$DIR/cj" -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' \
	-d '{"name":"bench","scope":"admin"}' "http://127.0.0.1:$PORT/api/v1/tokens")
TOKEN=$(echo "$T" | sed 's/.*"token":"\(moat_[0-9a-f]*\)".*/\1/')

run() {
	name=$1 path=$2
	n=$(timeout 10 curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path" |
		grep -o '"id":' | wc -l)
	echo "== $name: GET $path ($n items per page)"
	timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
		-H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path" > "$DIR/wrk.out"
	rps=$(awk '/Requests\/sec/ {print $2}' "$DIR/wrk.out")
	p50=$(awk '$1 == "50%" {print $2}' "$DIR/wrk.out")
	p99=$(awk '$1 == "99%" {print $2}' "$DIR/wrk.out")
	errs=$(grep -E 'Non-2xx|Socket errors' "$DIR/wrk.out" || true)
	echo "   requests/s $rps   p50 $p50   p99 $p99 ${errs:+  ($errs)}"
}

run list "/api/v1/messages?limit=50"
run list-deep "/api/v1/messages?limit=50&cursor=$((NOW - 90000 * 1000)).90000"
run search-sender "/api/v1/messages?sender=sender5@example.net&result=refused&limit=50"
run search-recipient "/api/v1/messages?recipient=rcpt123@example.org&limit=50"
run search-reason "/api/v1/messages?reason=zen&from=$((NOW - 3600 * 1000 * 6))&limit=50"
stop
