# Tianmu (天目) — two commands on a fresh machine with Python 3.11:
#   make demo   build the environment, the Lin'an demo data, and serve http://127.0.0.1:8000
#   make test   the whole test suite (SQLite; set TIANMU_DATABASE_URL for PostgreSQL)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgresql://postgres@127.0.0.1:5432/tianmu
CHROMIUM ?= /usr/bin/chromium
PYTEST_ARGS ?=

.PHONY: demo demo-reset run test test-pg e2e fuzz bench lint messages clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Tianmu needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/tianmu demo

demo-reset: $(STAMP)
	rm -f var/tianmu.sqlite3 var/tianmu.sqlite3-wal var/tianmu.sqlite3-shm
	$(BIN)/tianmu demo

run: $(STAMP)
	$(BIN)/tianmu run

test: $(STAMP)
	$(BIN)/python -m pytest -m "not browser" $(PYTEST_ARGS)

test-pg: $(STAMP)
	TIANMU_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -m "not browser" $(PYTEST_ARGS)

# Real headless Chromium (Debian's chromium package) driven by Playwright.
e2e: $(STAMP)
	TIANMU_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

# The API fuzzer runs in `make test` with a fixed seed and 10 examples per operation and role; this goes deeper:
#   make fuzz FUZZ_EXAMPLES=100 FUZZ_SEED=7
FUZZ_EXAMPLES ?= 60
FUZZ_SEED ?= 1
fuzz: $(STAMP)
	TIANMU_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) TIANMU_FUZZ_SEED=$(FUZZ_SEED) $(BIN)/python -m pytest tests/fuzz $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check tianmu tests bench
	PYTHONPATH=. $(BIN)/lint-imports

messages: $(STAMP)
	cd tianmu && ../$(BIN)/tianmu makemessages -l en --no-obsolete && ../$(BIN)/tianmu compilemessages -l en

clean:
	rm -rf $(VENV) var
