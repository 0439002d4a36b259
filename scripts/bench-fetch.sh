#!/usr/bin/env bash
# `datamill download --urls` against a local web (scripts/bench_fetch_server.py: HOSTS ports on
# 127.0.0.1, a 5 kB page per URL): pages/s and peak RSS for a small and a 10x larger list
# (memory must not grow with the list), and wget's WARC writer on the small list as the peer
# (one connection, like datamill with --concurrency 1, measured in the same session).
set -euo pipefail
BIN=${BIN:-target/release/datamill}
HOSTS=${HOSTS:-50}
SMALL=${SMALL:-10000}
PORT=${PORT:-18700}
TMP=$(mktemp -d)
python3 scripts/bench_fetch_server.py "$PORT" "$HOSTS" > "$TMP/server.out" &
SERVER=$!
trap 'kill $SERVER; rm -rf "$TMP"' EXIT
until grep -q ready "$TMP/server.out" 2>/dev/null; do sleep 0.1; done

# URLs sorted by host (as a sorted list gives them): host h's pages in one run.
make_list() { # n file
  python3 - "$1" "$HOSTS" "$PORT" > "$2" <<'PY'
import sys
n, hosts, port = map(int, sys.argv[1:4])
per = -(-n // hosts)
for h in range(hosts):
    for i in range(per):
        if h * per + i < n:
            print(f"http://127.0.0.1:{port + h}/page/{i}\t1")
PY
}
make_list "$SMALL" "$TMP/small.tsv"
make_list $((SMALL * 10)) "$TMP/large.tsv"

run() { # name list args...
  local name=$1 list=$2; shift 2
  rm -rf "$TMP/out"
  /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M kB peak RSS" -o "$TMP/time" \
    "$BIN" download --urls "$list" --warc "$TMP/out" "$@" 2>/dev/null | head -n 1
  echo "  $name: $(cat "$TMP/time"); $(du -sb "$TMP/out" | cut -f1) bytes written"
}
echo "== datamill download --urls, $HOSTS hosts"
run "small, --concurrency 16" "$TMP/small.tsv" --concurrency 16
run "large (10x), --concurrency 16" "$TMP/large.tsv" --concurrency 16
run "small, --concurrency 1" "$TMP/small.tsv" --concurrency 1

echo "== peer: wget --warc-file, one connection, small list"
cut -f1 "$TMP/small.tsv" > "$TMP/small.txt"
rm -rf "$TMP/wget" && mkdir "$TMP/wget"
( cd "$TMP/wget" && /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M kB peak RSS" -o "$TMP/time" \
    wget -q -i "$TMP/small.txt" -O /dev/null --warc-file=peer --no-warc-keep-log || true )
echo "  wget: $(cat "$TMP/time"); $(du -sb "$TMP/wget" | cut -f1) bytes written"
