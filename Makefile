# One-command entry points. Each target builds the virtualenv it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test test-suite lint typecheck bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/python manage.py migrate --noinput
	PORT=$(PORT) $(BIN)/python manage.py run_local

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy .

test: lint typecheck test-suite

# The tests alone (CI runs them a second time with DATABASE_URL pointing at PostgreSQL).
test-suite: $(BIN)/.installed
	$(BIN)/pytest --cov --cov-report=term --cov-report=json:coverage.json

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.api_load

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache coverage.json .coverage
