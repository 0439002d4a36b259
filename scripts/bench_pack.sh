#!/usr/bin/env bash
# Packing throughput and memory: packs the benchmark corpus once (1 input shard) and twice
# (2 input shards, same file) and prints datamill's own figures (MB/s, tokens/s per core, peak
# RSS). Peak RSS must not grow with the input size.
# usage: scripts/bench_pack.sh CORPUS.jsonl.zst TOKENIZER.model [BIN]
set -euo pipefail
corpus=$(realpath "$1")
model=$(realpath "$2")
bin=${3:-target/release/datamill}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in 1 2; do
  mkdir -p "$work/in$n/web"
  for i in $(seq 1 "$n"); do ln -s "$corpus" "$work/in$n/web/$(printf %05d "$i").jsonl.zst"; done
  echo "== pack: $n x $(basename "$corpus")"
  "$bin" pack --tokenizer "$model" --input "$work/in$n" --output "$work/out$n" \
    --max-shard-bytes 50000000 --threads "$n" | tail -n 2
done
