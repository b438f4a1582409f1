# Every target does its own setup: `make demo` and `make test` work on a fresh machine.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.stamp-requirements
NSTAMP  := node_modules/.stamp-package

.PHONY: setup setup-python setup-node setup-browser test test-fast lint bench demo load fuzz app-package clean

setup: setup-python setup-node setup-browser

setup-python: $(STAMP)
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

setup-node: $(NSTAMP)
$(NSTAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Debian's Chromium drives the end-to-end tests (browsers cannot be downloaded here).
setup-browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium (needs root and apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation >/dev/null; }

# All tests: unit, integration (simulator over loopback HTTPS), bot over HTTP, end-to-end in the Playground.
test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -ra

test-fast: setup-python
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -ra -m "not e2e"

lint: setup-python
	$(BIN)/ruff check .
	$(BIN)/mypy graph bot dialogs app.py

bench: setup-python
	$(BIN)/python -m tests.benchmarks

# The demo needs the venv and the Playground (node_modules), not the browser: open the printed addresses yourself.
demo: setup-python setup-node
	$(BIN)/python app.py --demo

# Reliability at full size (the suite runs short versions): 50 agents for 60 s; 20000 fuzz cases.
load: setup-python
	$(BIN)/python -m tests.reliability.load --agents 50 --seconds 60

fuzz: setup-python
	FUZZ_EXAMPLES=20000 $(BIN)/python -m pytest -q -p no:randomly tests/reliability/test_fuzz.py

app-package: setup-python
	$(BIN)/python -m appPackage.build

clean:
	rm -rf $(VENV) node_modules data test-artifacts build
