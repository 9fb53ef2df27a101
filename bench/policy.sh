#!/usr/bin/env bash
# Cost of the whole front-door policy per connection: 10,000 list entries and
# 5 DNSBL sites (a real rbldnsd on loopback), DNS cache on and off, against a
# baseline with an empty policy.
#
#   bench/policy.sh [path/to/moatd]        (default: build/moatd)
#
# Env: COUNT=2000 connections per scenario (after as many for warm-up),
# RUN_TIMEOUT=600, KEEP=1 keeps the temp dirs.  Builds nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOATD="${1:-$ROOT/build/moatd}"
RUN_TIMEOUT="${RUN_TIMEOUT:-600}"

[ -x "$MOATD" ] || { echo "policy.sh: no moatd at $MOATD" >&2; exit 1; }
[ -x /usr/sbin/rbldnsd ] || { echo "policy.sh: needs rbldnsd (apt-get install rbldnsd)" >&2; exit 1; }
exec timeout "$RUN_TIMEOUT" /usr/bin/python3 "$ROOT/bench/policy_bench.py" "$MOATD"
