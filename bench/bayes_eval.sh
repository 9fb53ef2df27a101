#!/usr/bin/env bash
# The statistical filter side by side with bogofilter and SpamAssassin's Bayes on the
# SpamAssassin public corpus (bench/README.md, "Statistical filter").
#
#   bench/bayes_eval.sh [MOATD] [-- bayes_eval.py options]
#
# MOATD defaults to build/moatd.  Installs bogofilter and spamassassin with apt-get
# when they are missing (the benchmark only).  Options of bayes_eval.py: --seed N
# (20021), --train FRACTION (0.5), --combiners fisher,osb,geomean, --only
# moatd,bogofilter,sa; KEEP=1 keeps the work directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOATD="${1:-$ROOT/build/moatd}"
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
[ -x "$MOATD" ] || { echo "bayes_eval.sh: $MOATD: not an executable" >&2; exit 1; }
missing=()
command -v bogofilter >/dev/null || missing+=(bogofilter)
command -v sa-learn >/dev/null || missing+=(spamassassin)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bayes_eval.sh: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get install -y "${missing[@]}" >/dev/null
fi
CORPUS="$("$ROOT/scripts/corpus.sh")"
exec /usr/bin/python3 "$ROOT/bench/bayes_eval.py" --corpus "$CORPUS" --moatd "$MOATD" "$@"
