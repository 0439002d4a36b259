#!/usr/bin/env bash
# fastText benchmark, one thread unless said otherwise, on the first 30 MB of the benchmark corpus:
#  1. language ID and the reference classifier: datamill's own inference against the C++ fastText
#     library on the same documents, alternating (target/release/fasttext-bench);
#  2. the filter chain (LID -> Gopher repetition -> Gopher quality, every language kept at
#     score >= 0.65) as `datamill run`, against datatrove's same chain, alternating A B A B
#     (PEER_PYTHON: a Python with datatrove 0.10.1, see peer_datatrove_filter.py's header;
#     skipped when unset), and against BEFORE_BIN (an older datamill binary) when given;
#  3. peak RSS of the chain with 1 and 2 threads.
#
#   bash scripts/bench-fasttext.sh CORPUS.jsonl.zst [CLASSIFIER_MODEL]
set -euo pipefail

CORPUS="${1:-../shared/data/bench/docs.jsonl.zst}"
CLASSIFIER="${2:-models/wikiref.bin}"
MB="${BENCH_MB:-30}"
BIN="${BIN:-target/release/datamill}"
FT_BENCH="${FT_BENCH:-target/release/fasttext-bench}"
PEER_SCRIPT="${PEER_SCRIPT:-../shared/bench/peer_datatrove_filter.py}"
[[ -f "$CORPUS" ]] || { echo "bench-fasttext: corpus $CORPUS not found; skipped"; exit 0; }
CORPUS="$(realpath "$CORPUS")"
[[ -f "$PEER_SCRIPT" ]] && PEER_SCRIPT="$(realpath "$PEER_SCRIPT")"
cd "$(dirname "$0")/.."
[[ -f models/lid.176.ftz ]] || { echo "bench-fasttext: models/lid.176.ftz missing: run make setup" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/datamill-bench-fasttext.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/in"
# The first MB megabytes of JSONL, cut after the last whole line.
{ zstd -dc "$CORPUS" 2>/dev/null || true; } | head -c "$((MB * 1000000))" | sed '$d' > "$WORK/in/docs.jsonl"
echo "input: first $MB MB of $CORPUS: $(wc -l < "$WORK/in/docs.jsonl") documents; $(nproc) cores; $(date -u +%F)"

echo
echo "== 1. fastText inference, one thread"
if [[ -f "$CLASSIFIER" ]]; then
  "$FT_BENCH" "$WORK/in/docs.jsonl" "$MB" models/lid.176.ftz "$CLASSIFIER"
else
  echo "(no classifier at $CLASSIFIER: language ID only)"
  "$FT_BENCH" "$WORK/in/docs.jsonl" "$MB" models/lid.176.ftz
fi

cat > "$WORK/chain.toml" <<EOF
name = "bench-fasttext-chain"
source = "web"
[input]
paths = ["$WORK/in"]
reader = "jsonl"
[output]
dir = "$WORK/out"
[[stages]]
type = "langid"
model = "$(realpath models/lid.176.ftz)"
languages = []
threshold = 0.65
[[stages]]
type = "gopher_repetition"
[[stages]]
type = "gopher_quality"
EOF

# Runs a command under /usr/bin/time; sets WALL and CPU (user + system) seconds and PEAK (KB).
# The cores are shared with other jobs, so the comparisons use CPU seconds.
measure() {
  /usr/bin/time -o "$WORK/last.time" -f "%e %M %U %S" "$@" > "$WORK/last.out" 2> "$WORK/last.err" \
    || { cat "$WORK/last.err" >&2; exit 1; }
  local user sys
  read -r WALL PEAK user sys < "$WORK/last.time"
  CPU=$(python3 -c "print('%.2f' % ($user + $sys))")
}
chain() { # binary threads
  rm -rf "$WORK/out"
  measure "$1" run "$WORK/chain.toml" --threads "$2" --force
}
peer() {
  rm -rf "$WORK/peer-out"
  LID_MODEL="$(realpath models/lid.176.ftz)" measure "$PEER_PYTHON" "$PEER_SCRIPT" "$WORK/in/docs.jsonl" "$WORK/peer-out"
}

echo
echo "== 2. filter chain (LID -> Gopher repetition -> Gopher quality), one thread, A B A B"
declare -a DM PEER OLD
for round in 1 2; do
  chain "$BIN" 1; DM+=("$CPU"); echo "round $round: datamill $CPU s CPU, $WALL s wall (peak RSS $PEAK KB)"
  kept=$(grep -oE '[0-9]+ kept' "$WORK/last.out" | head -1 || true)
  if [[ -n "${BEFORE_BIN:-}" ]]; then
    chain "$BEFORE_BIN" 1; OLD+=("$CPU"); echo "round $round: datamill before $CPU s CPU, $WALL s wall (peak RSS $PEAK KB)"
  fi
  if [[ -n "${PEER_PYTHON:-}" && -f "$PEER_SCRIPT" ]]; then
    peer; PEER+=("$CPU"); echo "round $round: datatrove $CPU s CPU, $WALL s wall"
  fi
done
[[ -n "$kept" ]] && echo "datamill: $kept"
python3 - "${DM[*]}" "${PEER[*]:-}" "${OLD[*]:-}" <<'PY'
import sys
dm = [float(x) for x in sys.argv[1].split()]
peer = [float(x) for x in sys.argv[2].split()] if sys.argv[2].strip() else []
old = [float(x) for x in sys.argv[3].split()] if sys.argv[3].strip() else []
print("datamill chain: %s s CPU" % " ".join("%.2f" % x for x in dm))
if peer:
    ratios = [p / d for p, d in zip(peer, dm)]
    print("datatrove chain: %s s CPU; datamill is %s times faster (per round)" % (
        " ".join("%.1f" % x for x in peer), " ".join("%.0f" % r for r in ratios)))
if old:
    print("datamill before: %s s CPU; speed-up %s (per round)" % (
        " ".join("%.2f" % x for x in old), " ".join("%.1f" % (o / d) for o, d in zip(old, dm))))
PY

echo
echo "== 3. peak RSS of the chain, input cut into 4 files (the runner spreads files over threads)"
mkdir -p "$WORK/parts"
split -n l/4 -d -a 2 --additional-suffix=.jsonl "$WORK/in/docs.jsonl" "$WORK/parts/part-"
sed -i "s|paths = \[.*\]|paths = [\"$WORK/parts\"]|" "$WORK/chain.toml"
for threads in 1 2; do
  chain "$BIN" "$threads"
  echo "$threads thread(s): $WALL s wall, $CPU s CPU, peak RSS $PEAK KB"
done
