#!/usr/bin/env bash
# Scheduling overhead of a whole recipe on Slurm: wall time from `datamill slurm submit RECIPE`
# until its last job has left the queue (`--wait`, polled every 0.5 s), against `datamill recipe
# RECIPE` on the same machine, both from scratch on the recipe's inputs (samples/ for
# pipelines/llama.toml). Needs a running Slurm (scripts/slurm-local.sh start) and is run from
# the repository root. Usage: bench-slurm-recipe.sh [BIN] [RECIPE] [TASKS]
set -euo pipefail
BIN=${1:-target/release/datamill}
RECIPE=${2:-pipelines/llama.toml}
TASKS=${3:-2}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for run in local cluster; do
  sed "s|^output = .*|output = \"$WORK/$run\"|" "$RECIPE" > "$WORK/$run.toml"
done
seconds() { /usr/bin/time -f "%e" -o "$WORK/time" "$@" > "$WORK/out.txt" 2>&1 || { cat "$WORK/out.txt"; exit 1; }; cat "$WORK/time"; }
local_s=$(seconds "$BIN" recipe "$WORK/local.toml")
cluster_s=$(seconds "$BIN" slurm submit "$WORK/cluster.toml" --tasks "$TASKS" --wait 7200)
jobs=$(grep -c " job " "$WORK/out.txt" || true)
tasks=$(grep " job " "$WORK/out.txt" | sed 's/.*array \[\(.*\)\].*/\1/' | tr ',' '\n' | grep -c . || true)
same=yes
for f in "$WORK"/local/tokens/*/*.bin "$WORK"/local/tokens/*/*.idx "$WORK"/local/tokenizer/tokenizer.model; do
  cmp -s "$f" "${f/\/local\//\/cluster\/}" || same=no
done
echo "datamill recipe:        ${local_s} s"
echo "datamill slurm submit:  ${cluster_s} s ($jobs array jobs, $tasks tasks, --tasks $TASKS; tokens and tokenizer identical: $same)"
awk -v l="$local_s" -v c="$cluster_s" 'BEGIN { printf "ratio slurm/recipe: %.2f, overhead %.1f s\n", c / l, c - l }'
