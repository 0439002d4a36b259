#!/usr/bin/env bash
# `datamill wiki-refs` on real wikitext: the 4,489 Wikipedia pages (el, ja, mr, uk, vi; 40 MB of
# raw wikitext) of the shared benchmark corpus, wrapped into one MediaWiki XML dump, COPIES times
# (copy N > 0 has `cN.` put before every host, so the distinct URLs grow with the copies, as in a
# large dump). Runs with a 1 MB and a 1 GB URL buffer (spilled runs vs one run) and prints wall
# time, MB/s, peak RSS and the summary line; the two outputs must be identical.
set -euo pipefail
BIN=${BIN:-target/release/datamill}
COPIES=${COPIES:-1}
CORPUS=${1:-../shared/data/bench/docs.jsonl.zst}
[ -f "$CORPUS" ] || { echo "bench-wiki-refs: $CORPUS not found, skipped"; exit 0; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The corpus keeps each page's wikitext XML-escaped, as it is inside <text>; a few pages end in
# raw dump markup (the corpus cut the dumps by lines), which is escaped so the file stays XML.
zstd -dc "$CORPUS" | python3 -c '
import json, re, sys
def xml_text(t):
    t = re.sub(r"&(?![a-zA-Z]+;|#[0-9]+;|#x[0-9a-fA-F]+;)", "&amp;", t)
    return t.replace("<", "&lt;").replace(">", "&gt;")
copies = int(sys.argv[1])
out = sys.stdout
out.write("<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.10/\" xml:lang=\"el\">\n")
out.write("<siteinfo><dbname>benchwiki</dbname></siteinfo>\n")
pages = [json.loads(l) for l in sys.stdin]
pages = [p for p in pages if p.get("source") == "wiki"]
n = 0
for c in range(copies):
    for p in pages:
        n += 1
        text = xml_text(p["text"])
        if c > 0:
            text = text.replace("://", "://c%d." % c)
        out.write("<page><title>%s</title><ns>0</ns><id>%d</id><revision><text xml:space=\"preserve\">%s</text></revision></page>\n" % (p["id"], n, text))
out.write("</mediawiki>\n")
' "$COPIES" > "$TMP/dump.xml"
MB=$(python3 -c "import os,sys; print(f'{os.path.getsize(sys.argv[1])/1e6:.1f}')" "$TMP/dump.xml")
echo "input: $TMP/dump.xml, $MB MB"

for mem in 1 1024; do
  /usr/bin/time -f "%e %M" -o "$TMP/time" "$BIN" wiki-refs "$TMP/dump.xml" \
    --memory-mb "$mem" --output "$TMP/refs-$mem.tsv.zst" 2>/dev/null
  read -r secs rss < "$TMP/time"
  python3 -c "import sys; s,r,mb,m=map(float,sys.argv[1:]); print(f'--memory-mb {int(m)}: {s:.2f} s wall, {mb/s:.1f} MB/s, peak RSS {r/1024:.1f} MB')" "$secs" "$rss" "$MB" "$mem"
done
cmp "$TMP/refs-1.tsv.zst" "$TMP/refs-1024.tsv.zst" && echo "outputs identical"
