# nbi: two commands matter. `make run` starts the service, `make test` passes the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=

.PHONY: run test faults bench lint typecheck install redis-bin promtool-bin chromium-bin clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

# Make sure a redis-server binary exists (tests start private ones); install it where allowed.
redis-bin:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server not found: installing it with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null \
	  || { echo "error: could not install redis-server; install it and re-run"; exit 1; }; }

# promtool (Debian package `prometheus`) checks the /metrics exposition in the tests.
promtool-bin:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "promtool not found: installing the prometheus package with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null \
	  || { echo "error: could not install promtool; install it and re-run"; exit 1; }; }

# Headless Chromium (Debian package `chromium`) renders report.html in the layout tests.
chromium-bin:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium not found: installing it with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null \
	  || { echo "error: could not install chromium; install it and re-run"; exit 1; }; }

run: install
	$(BIN)/nbi serve --host $(HOST) --port $(PORT)

test: install redis-bin promtool-bin chromium-bin
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 $(PYTEST_ARGS)

# The fault suite alone (crashes, outages, overload with real processes), latency targets on.
faults: install redis-bin
	NBI_FAULTS_STRICT=1 $(BIN)/python -m pytest -q -p no:cacheprovider -m faults -s $(PYTEST_ARGS)

bench: install redis-bin
	$(BIN)/python -m bench.run_all

lint: install
	$(BIN)/ruff check bandit simulator service offline_eval tests bench
	$(BIN)/ruff format --check bandit simulator service offline_eval tests bench
	$(BIN)/mypy

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
