# Shared by bench/delivery.sh and bench/rules_relay.sh (sourced, not run): CPU accounting
# per MTA and the Postfix that relays side by side with moatd.
#
#   cg_new NAME                 a cgroup v1 cpuacct group for one MTA (its path), or nothing
#                               where the hierarchy is not writable
#   cg_usage CG                 CPU nanoseconds used so far by every process that ran in CG, or -
#   in_cg CG CMD...             execs CMD inside CG: run it as `in_cg ... &` (then $! is CMD
#                               itself) or in a subshell `(in_cg ...)` for a foreground command
#   postfix_relay_conf DIR PORT SINK_PORT
#                               writes DIR/main.cf and DIR/master.cf: a relay-only Postfix for
#                               example.org to 127.0.0.1:SINK_PORT, smtpd on 127.0.0.1:PORT, no
#                               chroot, destination concurrency 100, its log in DIR/maillog
#   postfix_queue_count DIR     messages still in that Postfix's queue
# Needs CG_ROOT (the cpuacct mount point) set by the caller.

cg_new() {
	local cg="$CG_ROOT/moat-bench-$$-${1//+/-}"
	if mkdir "$cg" 2>/dev/null; then echo "$cg"; fi
}

cg_usage() { if [ -n "$1" ]; then cat "$1/cpuacct.usage"; else echo -; fi; }

in_cg() {
	local cg=$1
	shift
	if [ -n "$cg" ]; then
		exec sh -c 'echo $$ >"$0/cgroup.procs"; exec "$@"' "$cg" "$@"
	fi
	exec "$@"
}

postfix_relay_conf() {
	local dir=$1 port=$2 sink_port=$3
	mkdir -p "$dir/queue" "$dir/data"
	chown postfix "$dir/data"
	cat >"$dir/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.org
relayhost = [127.0.0.1]:$sink_port
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
default_process_limit = 300
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_destination_concurrency_limit = 100
smtp_destination_concurrency_limit = 100
initial_destination_concurrency = 100
in_flow_delay = 0
CONF
	awk -v port="$port" '
		/^smtp +inet/ { print "127.0.0.1:" port " inet n - n - - smtpd"; next }
		/^[a-z0-9]+ +(unix|inet|fifo|unix-dgram|pass) / { $5 = "n"; print; next }
		{ print }' /etc/postfix/master.cf >"$dir/master.cf"
	echo "postlog   unix-dgram n  -       n       -       1       postlogd" >>"$dir/master.cf"
}

postfix_queue_count() {
	find "$1/queue/maildrop" "$1/queue/incoming" "$1/queue/active" "$1/queue/deferred" \
		-type f 2>/dev/null | wc -l
}
