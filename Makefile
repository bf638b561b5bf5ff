# One-line entry points for humans and CI. `make up` and `make test` work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: up test deps venv lint types imports check unit integration e2e chaos bench clean

up: venv ## run the whole platform on embedded defaults
	$(BIN)/paycore up

test: deps check ## everything CI runs: lint, types, import contracts, all test tiers
	$(PY) -m pytest -q

deps: ## system packages (servers, browser) and the virtualenv
	bash scripts/install-deps

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: venv
	$(BIN)/mypy

imports: venv ## the import contracts, written from the registry and each context's LAYERS
	$(PY) scripts/lint-imports

check: lint types imports

unit: venv
	$(PY) -m pytest -q tests/*/unit

integration: venv
	$(PY) -m pytest -q tests/*/integration

e2e: venv
	$(PY) -m pytest -q tests/*/e2e

chaos: venv
	$(PY) -m pytest -q tests/*/chaos

bench: venv
	$(PY) bench/commerce_orders.py

clean:
	rm -rf .paycore .pytest_cache .mypy_cache .ruff_cache
