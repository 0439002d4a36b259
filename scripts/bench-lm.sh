#!/usr/bin/env bash
# train-lm benchmark: peak RSS and MB/s of `datamill train-lm` (5-gram, SentencePiece BPE)
# on the first tenth (17.6 MB of text) and on all of the benchmark corpus, with --memory 256M
# and with a budget larger than the machine's memory (no spilling), then the perplexity
# stage's MB/s on one core with the model trained on all of it.
# Usage: scripts/bench-lm.sh [CORPUS.jsonl.zst]   (run `make build` first)
set -euo pipefail
CORPUS="${1:-../shared/data/bench/docs.jsonl.zst}"
BIN="${BIN:-target/release/datamill}"
WORK="${BENCH_WORK:-$(mktemp -d)}"
VOCAB="${BENCH_LM_VOCAB:-32000}"
mkdir -p "$WORK"
if [[ ! -f "$CORPUS" ]]; then
  echo "bench-lm: $CORPUS not found; skipped"
  exit 0
fi
# The first tenth of the documents, and all of them, as JSONL.
zstdcat "$CORPUS" > "$WORK/all.jsonl"
total=$(wc -l < "$WORK/all.jsonl")
head -n $((total / 10)) "$WORK/all.jsonl" > "$WORK/tenth.jsonl"
text_mb() {
  python3 -c "import json,sys; print(sum(len(json.loads(l).get('text','').encode()) for l in open(sys.argv[1], encoding='utf-8'))/1e6)" "$1"
}
echo "== train-lm benchmark on $CORPUS ($(nproc) cores), vocabulary $VOCAB, work dir $WORK"
for input in tenth all; do
  mb=$(text_mb "$WORK/$input.jsonl")
  for memory in 256M 64G; do
    out="$WORK/$input-$memory"
    mkdir -p "$out"
    /usr/bin/time -o "$WORK/last.time" -f "%e %M" \
      $BIN train-lm --input "$WORK/$input.jsonl" --lang en --order 5 --memory "$memory" \
      --vocab-size "$VOCAB" --output "$out/lm.bin" > "$WORK/last.out"
    read -r wall peak < "$WORK/last.time"
    echo "-- $input ($mb MB of text), --memory $memory: wall $wall s, peak RSS $((peak / 1024)) MB, $(python3 -c "print(round($mb / $wall, 3))") MB/s"
    sed 's/^/   /' "$WORK/last.out"
  done
  cmp "$WORK/$input-256M/lm.bin" "$WORK/$input-64G/lm.bin" && echo "   same model file with 256M and 64G"
done
$BIN bench-quality --corpus "$CORPUS" --lm "$WORK/all-256M/lm.bin"
