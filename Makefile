# One-command entry points. Each target builds the virtualenv it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

VENDOR := paper_trading/static/paper_trading/vendor

.PHONY: run test test-suite test-postgres lint typecheck bench bench-compare-env clean assets abuse

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The dashboard's front-end libraries, from the npm registry (pinned by the lock file), copied
# where Django serves its static files. Reruns only when the lock file changes.
$(VENDOR)/.installed: frontend/package.json frontend/package-lock.json
	npm ci --prefix frontend --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp frontend/node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx.min.js
	cp frontend/node_modules/js-sha3/build/sha3.min.js $(VENDOR)/sha3.min.js
	cp frontend/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js \
		$(VENDOR)/lightweight-charts.standalone.production.js
	touch $@

assets: $(VENDOR)/.installed

run: $(BIN)/.installed $(VENDOR)/.installed
	$(BIN)/python manage.py migrate --noinput
	PORT=$(PORT) $(BIN)/python manage.py run_local

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy .

test: lint typecheck test-suite

# Every test that touches the database once more on PostgreSQL (DATABASE_URL=postgres://...):
# not tests/engine (plain Python, no Django), nor the tests that start processes on databases of
# their own.
test-postgres: $(BIN)/.installed
	$(BIN)/pytest tests/paper_trading tests/browser tests/integration -m "not own_database" --no-cov --durations=20

# The tests alone.
test-suite: $(BIN)/.installed $(VENDOR)/.installed
	$(BIN)/pytest --cov --cov-report=term --cov-report=json:coverage.json --durations=20

# The abuse tests at full size: schemathesis with 500 examples per operation (CI runs 25), the
# two-user authorization sweep, SIWE forgeries, malformed bodies, CSRF, production settings.
abuse: $(BIN)/.installed $(VENDOR)/.installed
	$(BIN)/python -m bench.abuse

# Every benchmark (the list is bench/suite.py's BENCHMARKS), each going on when one fails, then
# one table of all their verdicts, saved as bench/results/suite-latest.json.
bench: $(BIN)/.installed $(VENDOR)/.installed
	$(BIN)/python -m bench.suite

# backtesting.py and freqtrade in a virtualenv of their own, so bench.backtest_speed can run the
# same SMA crossover in them side by side; the project's environment never installs them.
COMPARE_VENV := bench/.venv-compare
bench-compare-env:
	$(PYTHON) -m venv $(COMPARE_VENV)
	$(COMPARE_VENV)/bin/pip install --quiet --upgrade pip
	$(COMPARE_VENV)/bin/pip install --quiet backtesting==0.6.6
	-$(COMPARE_VENV)/bin/pip install --quiet freqtrade==2026.9

clean:
	rm -rf $(VENV) $(COMPARE_VENV) frontend/node_modules $(VENDOR) .pytest_cache .mypy_cache .ruff_cache coverage.json .coverage
