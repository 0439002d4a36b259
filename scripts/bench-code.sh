#!/usr/bin/env bash
# Throughput of the GitHub chain on one large permissive repository archive and of arXiv
# reading + cleaning, on one worker thread (per-core figures).
#
# Inputs are built here from material every build machine has:
# - GitHub: every crate source in the local cargo registry (mostly MIT/Apache Rust, C, docs),
#   packed as ONE repository `crates-sources/` with an MIT LICENSE at its root, tar.gz -1;
# - arXiv: a bulk `arXiv_src_*.tar` holding COPIES copies of each paper in samples/arxiv.
set -euo pipefail
BIN=${BIN:-target/release/datamill}
COPIES=${COPIES:-100}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

REG=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ | head -1)
LICENSE_SRC=$(ls "$REG"/anyhow-*/LICENSE-MIT | head -1)
mkdir -p "$WORK/root"
cp "$LICENSE_SRC" "$WORK/root/LICENSE"
echo "building the repository archive from $REG ..."
tar -cf - --transform 's,^\.,crates-sources,;s,^LICENSE,crates-sources/LICENSE,' \
    -C "$WORK/root" LICENSE -C "$REG" . | gzip -1 > "$WORK/crates-sources.tar.gz"

echo "building the arXiv bulk tar ($COPIES copies of each sample paper) ..."
mkdir -p "$WORK/bulk/2101"
n=0
for i in $(seq 1 "$COPIES"); do
  for p in samples/arxiv/*.gz; do
    n=$((n + 1))
    cp "$p" "$WORK/bulk/2101/2101.$(printf %05d $n).gz"
  done
done
tar -cf "$WORK/arXiv_src_2101_001.tar" -C "$WORK/bulk" 2101

report() { # name, output dir, wall seconds
  "$BIN" stats "$2" --json | python3 -c '
import json, sys
name, wall = sys.argv[1], float(sys.argv[2])
s = json.load(sys.stdin)
read = s["stages"][0]
docs, mb = read["docs_out"], read["bytes_out"] / 1e6
print("%s: %d files/papers, %.1f MB of text, %.1f s wall on 1 thread: %.0f docs/s, %.2f MB/s per core"
      % (name, docs, mb, wall, docs / wall, mb / wall))
for st in s["stages"][1:]:
    if st["seconds"] > 0:
        print("  %-22s %9.2f MB/s  (%.2f s, %d docs in, %d out)"
              % (st["name"], st["bytes_in"] / 1e6 / st["seconds"], st["seconds"], st["docs_in"], st["docs_out"]))
' "$1" "$3"
}

for job in github:crates-sources.tar.gz arxiv:arXiv_src_2101_001.tar; do
  name=${job%%:*}; input=$WORK/${job#*:}
  start=$(date +%s.%N)
  /usr/bin/time -f "  peak RSS %M KB" "$BIN" run "pipelines/$name.toml" --input "$input" \
      --output "$WORK/out-$name" --threads 1 --force 2>/dev/null | tail -1
  end=$(date +%s.%N)
  echo "input $(du -h "$input" | cut -f1) $(basename "$input")"
  report "$name" "$WORK/out-$name" "$(echo "$end - $start" | bc)"
done
