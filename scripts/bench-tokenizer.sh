#!/usr/bin/env bash
# Tokenizer benchmark: training time and peak RSS at 32k pieces on the text of the benchmark
# corpus, encoding MB/s on one thread and on all threads, and bytes per token against a model
# that Python's sentencepiece 0.2.3 trains on the same text (skip it with BENCH_SPM=0).
# Usage: scripts/bench-tokenizer.sh [CORPUS.jsonl.zst]   (run `make build setup-python` first)
set -euo pipefail
CORPUS="${1:-../shared/data/bench/docs.jsonl.zst}"
BIN=target/release/datamill
BENCH=target/release/tokenizer-bench
WORK="${BENCH_WORK:-$(mktemp -d)}"
mkdir -p "$WORK"
VOCAB="${BENCH_VOCAB:-32000}"
if [[ ! -f "$CORPUS" ]]; then
  echo "bench-tokenizer: $CORPUS not found; skipped"
  exit 0
fi
# Runs a command, then prints its wall time and peak RSS; keeps them in WALL and PEAK.
measure() {
  /usr/bin/time -o "$WORK/last.time" -f "%e %M %U %S" "$@"
  read -r WALL PEAK user sys < "$WORK/last.time"
  echo "  wall $WALL s, CPU $user s user + $sys s sys, peak RSS $PEAK KB"
}
echo "== tokenizer benchmark on $CORPUS ($(nproc) cores), work dir $WORK"
$BENCH --dump-text "$CORPUS" "$WORK/text.txt"

echo "-- datamill train-tokenizer, vocab $VOCAB"
measure $BIN train-tokenizer --input "$CORPUS" --vocab-size "$VOCAB" --output "$WORK/datamill.model"
$BENCH --model "$WORK/datamill.model" --text "$WORK/text.txt"
# The machine's speed drifts: the runs on the text file are made around sentencepiece's, and
# the speed-up is taken against their median.
DM_WALLS=()
DM_PEAK=0
train_text() {
  echo "-- datamill train-tokenizer on the text file sentencepiece reads, vocab $VOCAB (run $1)"
  measure $BIN train-tokenizer --input "$WORK/text.txt" --vocab-size "$VOCAB" --output "$WORK/datamill-text.model"
  DM_WALLS+=("$WALL")
  (( PEAK > DM_PEAK )) && DM_PEAK=$PEAK
  return 0
}
train_text 1
if cmp -s "$WORK/datamill.model" "$WORK/datamill-text.model"; then
  echo "  same model as from the JSONL shard"
else
  echo "  differs from the model trained on the JSONL shard"
fi

if [[ "${BENCH_SPM:-1}" != 0 ]]; then
  if [[ ! -x .venv/bin/python ]]; then
    echo "no .venv/bin/python: run \`make setup-python\` (or BENCH_SPM=0)"; exit 1
  fi
  echo "-- Python sentencepiece 0.2.3 train, vocab $VOCAB, LLaMA settings, 2 threads"
  measure .venv/bin/python scripts/spm_reference.py train "$WORK/text.txt" "$WORK/spm" "$VOCAB"
  SPM_WALL=$WALL SPM_PEAK=$PEAK
  train_text 2
  train_text 3
  median=$(printf '%s\n' "${DM_WALLS[@]}" | sort -g | sed -n 2p)
  python3 -c "print(f'== training: datamill {$median:.2f} s (median of ${DM_WALLS[*]}) vs sentencepiece {$SPM_WALL:.2f} s: {$SPM_WALL / $median:.1f}x faster; peak RSS {$DM_PEAK / 1024:.0f} MB vs {$SPM_PEAK / 1024:.0f} MB: {100 * $DM_PEAK / $SPM_PEAK:.0f}% of its memory')"
  echo "-- datamill's encoder on the sentencepiece model (same ids as sentencepiece)"
  $BENCH --model "$WORK/spm.model" --text "$WORK/text.txt"
  echo "-- Python sentencepiece encode, first 20 MB of lines"
  head -c 20000000 "$WORK/text.txt" | head -n -1 > "$WORK/head.txt"
  .venv/bin/python scripts/spm_reference.py speed "$WORK/spm.model" "$WORK/head.txt"
fi
