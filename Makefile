# Everything set-up needs, from a fresh clone on a machine that has Python 3.11+ and make.
#   make run   - install, index this project's docs/, and answer a question about them
#   make test  - install with the test extras and run the whole suite

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# CPU torch first, so nothing that depends on torch pulls a CUDA build.
# Elsewhere, add: TORCH_INDEX=--index-url https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# The port `make run` serves on (FIRSTREPLY_PORT when set, else 8080); its closing message names this one.
PORT ?= $(or $(FIRSTREPLY_PORT),8080)

.PHONY: install browser run lint test bench eval-payload clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/firstreply ingest docs --kb firstreply
	$(BIN)/firstreply ask --kb firstreply "How do I index my project's documentation?"
	@echo; echo "Serving firstreply: open http://127.0.0.1:$(PORT)/ask to ask in your browser, or try:"; \
	 echo "  curl -s localhost:$(PORT)/v1/answer -H 'Content-Type: application/json' -d '{\"question\": \"How do I configure firstreply?\"}'"; \
	 echo "Maintainers: .venv/bin/firstreply maintainer add YOURNAME, then sign in at http://127.0.0.1:$(PORT)/review"; echo
	FIRSTREPLY_KB=firstreply $(BIN)/firstreply serve --port $(PORT)

# The page tests drive Debian's chromium: install it where we can (root with apt-get); elsewhere they skip, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed here: the browser tests will be skipped"; fi; }

# ruff (pyflakes, isort, bugbear) over the tree and mypy --strict on the typed modules; pyproject.toml configures both.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(STAMP) browser lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.ingest_throughput
	$(BIN)/python -m bench.retrieval_latency
	$(BIN)/python -m bench.webhook_ack
	$(BIN)/python -m bench.webhook_burst
	$(BIN)/python -m bench.discord_burst
	$(BIN)/python -m bench.review_queries

eval-payload: $(STAMP)
	$(BIN)/firstreply eval retrieval --corpus ../shared/eval/payload/corpus \
	  --queries ../shared/eval/payload/queries.jsonl --qrels ../shared/eval/payload/qrels.tsv

clean:
	rm -rf $(VENV) .firstreply .pytest_cache
