# crossbook: the README's two commands are `make devnet` and `make test`.
# Both install what is missing (.venv from pyproject.toml, node_modules from
# package-lock.json) and are idempotent.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

# Anvil and solc-js live in node_modules; py-solc-x finds our solc-js wrapper
# through SOLCX_BINARY_PATH; ape keeps its data inside the repo.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/tools/solc
export APE_DATA_FOLDER := $(CURDIR)/.cache/ape
export PYTHONHASHSEED := 0

TESTS ?= tests
PYTEST_ARGS ?=

.PHONY: install compile test test-invariants-long test-api-fuzz devnet bench-gas bench-gas-profile bench-engine bench-scan bench-api bench-soak bench-mm bench-scenario clean

$(BIN)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -e '.[test]'  # bytecode is written on first import, not for every installed file
	@touch $@

node_modules/.installed: package.json package-lock.json
	@# npm ci refuses this lock: npm leaves the other platforms' optional anvil binaries out of it.
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

install: $(BIN)/.installed node_modules/.installed

# ape's incremental compile misses changes to imported files (a library edited, the contract
# importing it kept stale) and to compiler settings: recompile everything when any contract
# source or ape-config.yaml changes.
CONTRACT_SOURCES := $(shell find contracts -name '*.sol')

.build/.stamp: $(CONTRACT_SOURCES) ape-config.yaml $(BIN)/.installed node_modules/.installed
	$(BIN)/ape compile --force
	@touch $@

compile: install .build/.stamp

# The console's browser tests drive Debian's Chromium through Playwright and Debian's Firefox ESR
# through puppeteer-core (neither tool can download its own browsers here).
/usr/bin/chromium:
	apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }

/usr/bin/firefox-esr:
	apt-get install -y -q firefox-esr || { apt-get update -q && apt-get install -y -q firefox-esr; }

test: compile /usr/bin/chromium /usr/bin/firefox-esr
	$(BIN)/pytest $(TESTS) $(PYTEST_ARGS)

# The stateful invariant run at five times the steps of `make test` (about 100,000 steps, ~30 min).
test-invariants-long: compile
	CROSSBOOK_INVARIANT_EXAMPLES=250 CROSSBOOK_INVARIANT_STEPS=400 CROSSBOOK_INVARIANT_MIN_STEPS=50000 \
		$(BIN)/pytest tests/contracts/test_invariants.py $(PYTEST_ARGS)

# schemathesis over every API operation at twenty times the examples of `make test` (~1,000 each).
test-api-fuzz: compile
	CROSSBOOK_SCHEMATHESIS_EXAMPLES=$${CROSSBOOK_SCHEMATHESIS_EXAMPLES:-1000} \
		$(BIN)/pytest tests/e2e/test_api_hardening.py -k schemathesis $(PYTEST_ARGS)

devnet: compile
	$(BIN)/venue devnet

bench-gas: compile
	$(BIN)/venue bench gas

bench-gas-profile: compile
	$(BIN)/venue bench gasprofile

bench-engine: install
	$(BIN)/venue bench engine

bench-scan: install
	$(BIN)/venue bench scan

bench-api: compile
	$(BIN)/venue bench api

bench-soak: compile
	$(BIN)/venue bench soak

bench-mm: compile
	$(BIN)/venue bench mm

bench-scenario: compile
	$(BIN)/venue bench scenario

clean:
	rm -rf .build .cache
