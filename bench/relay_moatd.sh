# Shared by bench/delivery.sh and bench/queue-scale.sh (sourced, not run):
# a moatd that relays everything for example.org to one smtp-sink.
#
#   free_port                              a free TCP port on 127.0.0.1
#   relay_conf CONF DATA_DIR LOG SINK_PORT writes CONF (SMTP on a free port) and seeds the
#                                          policy: local_domain example.org, no recipient
#                                          verification (smtp-source's recipients are made up)
# Needs MOATD (the binary) set by the caller.

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

relay_conf() {
	local conf=$1 data_dir=$2 log=$3 sink_port=$4
	cat >"$conf" <<CONF
data_dir = $data_dir
hostname = bench.moat.test
log = $log
log_level = warn
smtp_listen = 127.0.0.1:$(free_port)
http_listen = 127.0.0.1:0
max_sessions = 2000
max_sessions_per_client = 1000
downstream = 127.0.0.1:$sink_port
downstream_tls = off
delivery_concurrency = 100
delivery_concurrency_per_destination = 100
queue_poll = 100ms
CONF
	# Local domains are policy (SQLite); this also creates and migrates the database.
	"$MOATD" policy -c "$conf" add local_domain example.org >/dev/null
	"$MOATD" policy -c "$conf" set recipient_verify no >/dev/null
}
