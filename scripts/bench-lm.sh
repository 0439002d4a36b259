#!/usr/bin/env bash
# train-lm benchmark: peak RSS, wall and CPU seconds and MB/s of `datamill train-lm` (5-gram,
# SentencePiece BPE) on the first tenth of the benchmark corpus's text (the first documents
# up to 17.6 MB) and on all of it, with --memory 256M and with a budget larger than the
# machine's memory (no spilling), then the perplexity stage's MB/s on one core with the model
# trained on all of it (BENCH_LM_PERPLEXITY=0 skips that).
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
# All documents, and the first ones up to a tenth of the text, as JSONL.
zstdcat "$CORPUS" > "$WORK/all.jsonl"
python3 - "$WORK/all.jsonl" "$WORK/tenth.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").readlines()
total = sum(len(json.loads(l).get("text", "").encode()) for l in lines)
taken = 0
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for l in lines:
        if taken >= total / 10:
            break
        out.write(l)
        taken += len(json.loads(l).get("text", "").encode())
PY
text_mb() {
  python3 -c "import json,sys; print(sum(len(json.loads(l).get('text','').encode()) for l in open(sys.argv[1], encoding='utf-8'))/1e6)" "$1"
}
echo "== train-lm benchmark on $CORPUS ($(nproc) cores), vocabulary $VOCAB, work dir $WORK"
for input in tenth all; do
  mb=$(text_mb "$WORK/$input.jsonl")
  for memory in 256M 64G; do
    out="$WORK/$input-$memory"
    mkdir -p "$out"
    /usr/bin/time -o "$WORK/last.time" -f "%e %M %U %S" \
      $BIN train-lm --input "$WORK/$input.jsonl" --lang en --order 5 --memory "$memory" \
      --vocab-size "$VOCAB" --output "$out/lm.bin" > "$WORK/last.out"
    read -r wall peak user sys < "$WORK/last.time"
    cpu=$(python3 -c "print(round($user + $sys, 1))")
    echo "-- $input ($mb MB of text), --memory $memory: wall $wall s, CPU $cpu s, peak RSS $((peak / 1024)) MB, $(python3 -c "print(round($mb / $wall, 3))") MB/s, $(python3 -c "print(round($mb / $cpu, 3))") MB/s of CPU time"
    sed 's/^/   /' "$WORK/last.out"
  done
  # The sort budget must not change the model.
  if cmp -s "$WORK/$input-256M/lm.bin" "$WORK/$input-64G/lm.bin"; then
    echo "   same model file with 256M and 64G"
  else
    echo "   ERROR: the model files of 256M and 64G differ" >&2
    exit 1
  fi
done
if [[ "${BENCH_LM_PERPLEXITY:-1}" != 0 ]]; then
  $BIN bench-quality --corpus "$CORPUS" --lm "$WORK/all-256M/lm.bin"
fi
