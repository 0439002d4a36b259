#!/usr/bin/env bash
# Throughput of the books, wikipedia and stackexchange readers and of MinHash dedup, one thread.
# Inputs: samples/ copied COPIES times (so a run lasts long enough to measure), and the shared
# benchmark corpus's documents (if present) for MinHash. Prints datamill's own summary lines
# (MB/s per core, docs/s, peak RSS).
set -euo pipefail
BIN=${BIN:-target/release/datamill}
COPIES=${COPIES:-8}
CORPUS=${1:-../shared/data/bench/docs.jsonl.zst}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for i in $(seq 1 "$COPIES"); do
  mkdir -p "$TMP/books/c$i" "$TMP/wiki/c$i" "$TMP/se"
  cp -r samples/books/. "$TMP/books/c$i/"
  cp samples/wikipedia/gensim/*.bz2 "$TMP/wiki/c$i/enwiki.xml.bz2"
  cp samples/wikipedia/dumpster-dive/*.xml "$TMP/wiki/c$i/ltgwiki.xml"
  for s in samples/stackexchange/*/; do
    site=$(basename "$s"); mkdir -p "$TMP/se/$site$i"; cp "$s/Posts.xml" "$TMP/se/$site$i/"
  done
done

pipeline() { # name reader input stages...
  local name=$1 reader=$2 input=$3; shift 3
  {
    printf 'name = "%s"\nsource = "%s"\n[input]\npaths = ["%s"]\nreader = "%s"\n' "$name" "$name" "$input" "$reader"
    printf '[output]\ndir = "%s/out-%s"\n' "$TMP" "$name"
    for s in "$@"; do printf '%s\n' "$s"; done
  } > "$TMP/$name.toml"
  echo "== $name"
  if [ -x /usr/bin/time ]; then
    # CPU seconds too: on a shared machine wall-clock MB/s understates the code's speed.
    /usr/bin/time -f "cpu %U s user" -o "$TMP/time" "$BIN" run "$TMP/$name.toml" --threads 1 --force 2>/dev/null | tail -n 1
    cat "$TMP/time"
  else
    "$BIN" run "$TMP/$name.toml" --threads 1 --force 2>/dev/null | tail -n 1
  fi
  rm -rf "$TMP/out-$name"
}

pipeline books-read books "$TMP/books"
pipeline books-strip-minhash books "$TMP/books" \
  '[[stages]]' 'type = "gutenberg_strip"' '[[stages]]' 'type = "minhash_dedup"'
pipeline wikipedia-read-clean wikipedia "$TMP/wiki"
pipeline stackexchange-read stackexchange "$TMP/se/*/Posts.xml"
if [ -f "$CORPUS" ]; then
  pipeline corpus-minhash jsonl "$CORPUS" '[[stages]]' 'type = "minhash_dedup"'
else
  echo "== corpus-minhash: $CORPUS not found, skipped"
fi
