#!/usr/bin/env bash
# MinHash near-dup dedup on the bench corpus: one process vs the distributed phases
# (map, reduce, cluster, apply) run one task after another, each with one thread.
# Usage: scripts/bench-minhash-ranks.sh [TASKS] [PARTITIONS]; needs a release build.
set -euo pipefail
N=${1:-4}
P=${2:-4}
BIN=${BIN:-$(pwd)/target/release/datamill}
CORPUS=${CORPUS:-/work/shared/data/bench/docs.jsonl.zst}
WORK=${WORK:-$(mktemp -d /tmp/datamill-minhash-bench.XXXXXX)}
mkdir -p "$WORK/in"
if [ -z "$(ls "$WORK/in")" ]; then
  zstd -dc "$CORPUS" > "$WORK/all.jsonl"
  split -n l/8 -d -a 2 --additional-suffix=.jsonl "$WORK/all.jsonl" "$WORK/in/part-"
  rm "$WORK/all.jsonl"
fi
pipe() {
  cat > "$WORK/$1.toml" <<TOML
name = "minhash-bench"
source = "web"
[input]
paths = ["$WORK/in"]
reader = "jsonl"
[output]
dir = "$WORK/$1"
[[stages]]
type = "minhash_dedup"
TOML
  echo "$WORK/$1.toml"
}
# Runs one command under /usr/bin/time; appends "wall user rss_kb" to $WORK/times.
timed() {
  /usr/bin/time -f "%e %U %M" -a -o "$WORK/times" "$@" > /dev/null 2> "$WORK/last.err" ||
    { cat "$WORK/last.err"; exit 1; }
}
phase() {
  local name=$1
  shift
  : > "$WORK/times"
  "$@"
  awk -v n="$name" '{w+=$1; u+=$2; if ($3>r) r=$3} END {printf "%-22s wall %7.2f s  user %7.2f s  max RSS %6.1f MB\n", n, w, u, r/1000}' "$WORK/times"
}
rm -rf "$WORK/single" "$WORK/ranks"
single=$(pipe single)
ranks=$(pipe ranks)
phase "one process" timed "$BIN" run "$single" --threads 1
common=(--world-size "$N" --dedup-partitions "$P" --threads 1)
map() { for r in $(seq 0 $((N - 1))); do timed "$BIN" run "$ranks" --step segment-0 --rank "$r" "${common[@]}"; done; }
red() { for p in $(seq 0 $((P - 1))); do timed "$BIN" run "$ranks" --step reduce-1 --rank "$p" --world-size "$P" --dedup-partitions "$P" --threads 1; done; }
clu() { timed "$BIN" run "$ranks" --step cluster-1 --rank 0 --world-size 1 --dedup-partitions "$P" --threads 1; }
app() { for r in $(seq 0 $((N - 1))); do timed "$BIN" run "$ranks" --step segment-1 --rank "$r" "${common[@]}"; done; }
phase "read + map ($N tasks)" map
phase "reduce ($P tasks)" red
phase "cluster (1 task)" clu
phase "apply ($N tasks)" app
for f in "$WORK"/single/*.jsonl.zst; do
  cmp "$f" "$WORK/ranks/$(basename "$f")"
done
echo "outputs identical; near-duplicates dropped: $(grep -ho '"near_duplicate": [0-9]*' "$WORK"/single/*.stats.json | awk '{s+=$2} END {print s}')"
du -sh "$WORK/ranks/.work/s1/map" "$WORK/ranks/.work/s1/sig" "$WORK/ranks/.work/s1/edges" "$WORK/ranks/.work/s1/cluster" | tr '\n' ' '
echo
