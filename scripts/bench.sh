#!/usr/bin/env bash
# Filter benchmark: language ID alone vs. LID -> Gopher repetition -> Gopher quality, on the first
# 6,584 documents of the shared benchmark corpus (the slice datatrove was measured on), with one
# thread and with all threads, plus a 10x larger input to show that peak memory stays flat.
#
#   bash scripts/bench.sh [CORPUS.jsonl.zst]      (make bench passes ../shared/data/bench/docs.jsonl.zst)
set -euo pipefail

CORPUS="${1:-../shared/data/bench/docs.jsonl.zst}"
DOCS="${BENCH_DOCS:-6584}"
PARTS="${BENCH_PARTS:-8}"
BIN="${BIN:-target/release/datamill}"
[[ -f "$CORPUS" ]] && CORPUS="$(realpath "$CORPUS")"
cd "$(dirname "$0")/.."

if [[ ! -f "$CORPUS" ]]; then
  echo "bench: corpus $CORPUS not found; skipping the filter benchmark (pass its path as argument)."
  exit 0
fi
for tool in zstd split python3; do
  command -v "$tool" >/dev/null || { echo "bench: needs $tool" >&2; exit 1; }
done
[[ -x "$BIN" ]] || cargo build --release
[[ -f models/lid.176.ftz ]] || { echo "bench: models/lid.176.ftz missing: run make setup" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/datamill-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# The slice, cut into PARTS files of about equal size (the runner parallelises over files).
mkdir -p "$WORK/x1" "$WORK/x10"
# (zstd is cut off by head on purpose: its SIGPIPE status is ignored)
{ zstd -dc "$CORPUS" 2>/dev/null || true; } | head -n "$DOCS" > "$WORK/slice.jsonl"
[[ $(wc -l < "$WORK/slice.jsonl") -eq $DOCS ]] || { echo "bench: $CORPUS has fewer than $DOCS documents" >&2; exit 1; }
split -n "l/$PARTS" -d -a 2 --additional-suffix=.jsonl "$WORK/slice.jsonl" "$WORK/x1/part-"
for f in "$WORK"/x1/*.jsonl; do
  for _ in $(seq 10); do cat "$f"; done > "$WORK/x10/$(basename "$f")"
done
TEXT_MB=$(python3 -c '
import json, sys
print("%.2f" % (sum(len(json.loads(l)["text"].encode()) for l in open(sys.argv[1])) / 1e6))' "$WORK/slice.jsonl")
FILE_MB=$(python3 -c 'import os,sys; print("%.2f" % (os.path.getsize(sys.argv[1]) / 1e6))' "$WORK/slice.jsonl")
echo "slice: $DOCS documents, $TEXT_MB MB of text ($FILE_MB MB of JSONL) in $PARTS files; $(nproc) cores"

run() { # name pipeline input threads
  local name=$1 pipeline=$2 input=$3 threads=$4
  local log="$WORK/$name.log"
  "$BIN" run "$pipeline" --input "$input" --output "$WORK/out-$name" --threads "$threads" --force \
    > "$log" 2> "$WORK/$name.err" || { cat "$WORK/$name.err" >&2; exit 1; }
  local summary secs
  summary=$(grep -E ' MB/s ' "$log" | tail -1)
  secs=$(sed -E 's/.* MB in ([0-9.]+) s on.*/\1/' <<< "$summary")
  printf '%-26s %s\n' "$name" "$summary"
  python3 -c 'import sys; s=float(sys.argv[1]); t=float(sys.argv[2])*float(sys.argv[4]); n=int(sys.argv[3])
print("%-26s text: %.2f MB/s, %.2f MB/s per core" % ("", t/s, t/s/n))' "$secs" "$TEXT_MB" "$(grep -oE 'on [0-9]+ threads' <<< "$summary" | grep -oE '[0-9]+')" "${5:-1}"
  echo "$secs" > "$WORK/$name.secs"
}

echo
echo "== one thread"
run lid-1t bench/bench-lid.toml "$WORK/x1" 1
run filter-1t bench/bench-filter.toml "$WORK/x1" 1
echo
echo "== all threads"
run lid-all bench/bench-lid.toml "$WORK/x1" 0
run filter-all bench/bench-filter.toml "$WORK/x1" 0
echo
echo "== 10x input (peak RSS must stay flat)"
run filter-all-x10 bench/bench-filter.toml "$WORK/x10" 0 10
echo
python3 - "$WORK" <<'PY'
import sys
w = sys.argv[1]
s = {n: float(open(f"{w}/{n}.secs").read()) for n in ("lid-1t", "filter-1t", "lid-all", "filter-all")}
print("chain speed / LID-alone speed: %.0f%% (1 thread), %.0f%% (all threads)" % (
    100 * s["lid-1t"] / s["filter-1t"], 100 * s["lid-all"] / s["filter-all"]))
PY
echo
echo "drops of the filter chain (1 thread run):"
"$BIN" stats "$WORK/out-filter-1t" | sed -n '1,6p'
