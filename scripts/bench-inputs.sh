#!/usr/bin/env bash
# Input layer benchmarks: (1) the C4 pipeline on the benchmark corpus as ONE JSONL file, unsplit
# and with split_bytes, on 1 and 2 threads; (2) the wikipedia reader on a multistream dump made
# from the gensim sample, unsplit and split by bz2 streams; (3) the Common Crawl reader and its
# first stages (line dedup, fastText LID) reading samples/commoncrawl copies from disk and from
# a local HTTP server (python3 -m http.server on 127.0.0.1). Prints wall and CPU seconds
# (/usr/bin/time) and datamill's own summary line for each run.
set -euo pipefail
BIN=${BIN:-target/release/datamill}
CORPUS=${1:-../shared/data/bench/docs.jsonl.zst}
SPLIT=${SPLIT:-32MB}
WIKI_COPIES=${WIKI_COPIES:-6}
CC_COPIES=${CC_COPIES:-24}
PARTS=${PARTS:-c4 wiki cc}   # which of the three measurements to run
TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

timed() { # label, then the datamill arguments
  local label=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$TMP/time" "$BIN" "$@" --force 2>/dev/null > "$TMP/summary"
  read -r wall user sys < "$TMP/time"
  printf '%-34s wall %6.1f s  cpu %6.1f s  | %s\n' "$label" "$wall" \
    "$(echo "$user + $sys" | bc)" "$(grep 'MB/s' "$TMP/summary" | tail -n 1)"
}

pipeline() { # file name reader input-lines stage-lines
  {
    printf 'name = "%s"\nsource = "%s"\n[input]\nreader = "%s"\n%s\n' "$2" "$2" "$3" "$4"
    printf '[output]\ndir = "%s/out-%s"\n%s\n' "$TMP" "$2" "$5"
  } > "$1"
}

echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%F)"

# (1) C4 on one big JSONL file.
if [[ " $PARTS " != *" c4 "* ]]; then
  :
elif [ -f "$CORPUS" ]; then
  zstdcat "$CORPUS" > "$TMP/docs.jsonl"
  echo "== C4 pipeline, $(du -m "$TMP/docs.jsonl" | cut -f1) MB as one JSONL file (split_bytes = $SPLIT)"
  C4_STAGES=$(sed -n '/^\[\[stages\]\]/,$p' pipelines/c4.toml)
  pipeline "$TMP/c4.toml" c4 jsonl "paths = [\"$TMP/docs.jsonl\"]" "$C4_STAGES"
  pipeline "$TMP/c4-split.toml" c4 jsonl "paths = [\"$TMP/docs.jsonl\"]
split_bytes = \"$SPLIT\"" "$C4_STAGES"
  for t in 1 2; do
    timed "c4 unsplit, $t thread(s)" run "$TMP/c4.toml" --threads "$t"
    timed "c4 split $SPLIT, $t thread(s)" run "$TMP/c4-split.toml" --threads "$t"
  done
  rm -f "$TMP/docs.jsonl"
else
  echo "== C4: $CORPUS not found, skipped"
fi

# (2) Wikipedia multistream dump: the gensim sample's pages repeated, 100 pages per stream.
if [[ " $PARTS " == *" wiki "* ]]; then
python3 - "$TMP/wiki" "$WIKI_COPIES" <<'EOF'
import bz2, glob, os, re, sys
out, copies = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
xml = bz2.open(glob.glob("samples/wikipedia/gensim/*.bz2")[0]).read().decode()
head_end = xml.index("</siteinfo>") + len("</siteinfo>\n")
pages = re.findall(r"  <page>.*?</page>\n", xml[head_end:], re.S) * copies
name = os.path.join(out, "enwiki-bench-pages-articles-multistream")
data, index = bytearray(bz2.compress(xml[:head_end].encode())), []
for i in range(0, len(pages), 100):
    group = pages[i:i + 100]
    for p in group:
        page_id = re.search(r"<id>(\d+)</id>", p).group(1)
        index.append("%d:%s:x\n" % (len(data), page_id))
    data += bz2.compress("".join(group).encode())
data += bz2.compress(b"</mediawiki>\n")
open(name + ".xml.bz2", "wb").write(data)
open(name + "-index.txt.bz2", "wb").write(bz2.compress("".join(index).encode()))
EOF
DUMP=$(ls "$TMP"/wiki/*multistream.xml.bz2)
echo "== wikipedia reader, multistream dump of $(du -m "$DUMP" | cut -f1) MB (bz2)"
pipeline "$TMP/wiki.toml" wiki wikipedia "paths = [\"$DUMP\"]" ""
pipeline "$TMP/wiki-split.toml" wiki wikipedia "paths = [\"$DUMP\"]
split_bytes = \"4MB\"" ""
for t in 1 2; do
  timed "wikipedia unsplit, $t thread(s)" run "$TMP/wiki.toml" --threads "$t"
  timed "wikipedia split 4MB, $t thread(s)" run "$TMP/wiki-split.toml" --threads "$t"
done
fi

# (3) Common Crawl reader + line dedup + LID: disk against a local HTTP server.
[[ " $PARTS " == *" cc "* ]] || exit 0
mkdir -p "$TMP/www/cc"
for i in $(seq 1 "$CC_COPIES"); do
  mkdir -p "$TMP/www/cc/c$i"; cp -r samples/commoncrawl/. "$TMP/www/cc/c$i/"
done
(cd "$TMP/www/cc" && find . -type f -name '*.warc*' | sed 's|^\./||' | sort | gzip > ../cc.paths.gz)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$TMP/www" >/dev/null 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$PORT/cc.paths.gz" -o /dev/null && break; sleep 0.1
done
CC_STAGES='[[stages]]
type = "line_dedup"
[[stages]]
type = "langid"
model = "models/lid.176.ftz"
languages = ["en"]'
echo "== commoncrawl reader + line_dedup + langid, $(du -sm "$TMP/www/cc" | cut -f1) MB of WARC files"
pipeline "$TMP/cc-disk.toml" cc warc "paths = [\"$TMP/www/cc\"]" "$CC_STAGES"
pipeline "$TMP/cc-http.toml" cc warc "path_list = \"http://127.0.0.1:$PORT/cc.paths.gz\"
base_url = \"http://127.0.0.1:$PORT/cc/\"" "$CC_STAGES"
for t in 1 2; do
  timed "cc from disk, $t thread(s)" run "$TMP/cc-disk.toml" --threads "$t"
  timed "cc over HTTP, $t thread(s)" run "$TMP/cc-http.toml" --threads "$t"
done
