# mopsbot: `make demo` and `make test` work on a fresh machine with Python 3.11+ and nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo seed test lint format bench soak cassettes clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mopsbot needs Python 3.11 or newer (found %s); set PYTHON=python3.11" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## Set up, seed the demo workspace and open the terminal chat on the embedded defaults.
demo: setup
	$(BIN)/mopsbot db upgrade
	$(BIN)/mopsbot demo seed
	$(BIN)/mopsbot knowledge ingest
	@# the demo data ends on 2026-10-31: pin "today" so "last month" and "last quarter" have data
	MOPSBOT_TODAY=$${MOPSBOT_TODAY:-2026-11-16} $(BIN)/mopsbot chat

seed: setup
	$(BIN)/mopsbot demo seed

## Set up and run the whole test suite (lint and layer contracts included).
test: setup lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

## Re-record the LLM cassettes against a running OpenAI-compatible server (OPENAI_BASE_URL).
cassettes: setup
	@test -n "$(OPENAI_BASE_URL)" || (echo "set OPENAI_BASE_URL, e.g. http://127.0.0.1:8089/v1" && exit 1)
	rm -f tests/cassettes/agent/*.yaml  # vcrpy's record mode "all" appends to a cassette; start each one afresh
	MOPSBOT_TEST_RECORD=1 MOPSBOT_TEST_OPENAI_BASE_URL=$(OPENAI_BASE_URL) $(BIN)/python -m pytest tests/agent/test_openai_cassettes.py -p no:randomly

bench: setup
	$(BIN)/python benchmarks/bench_seed.py
	$(BIN)/python benchmarks/bench_knowledge.py
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_predictions.py
	$(BIN)/python -m benchmarks.bench_slack
	$(BIN)/python benchmarks/bench_governance.py
	$(BIN)/python benchmarks/bench_governance_blind.py
	$(BIN)/python benchmarks/bench_warehouse.py

## Two replicas for 10 minutes with a restart and a database bounce: answered once, lost, latency, RSS.
soak: setup
	$(BIN)/python -m benchmarks.bench_soak --minutes 10

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
