# One-line entry points for humans and CI. `make up` and `make test` work on a fresh machine:
# `make up` installs what running paycore needs, `make test` adds the development tools.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: up test deps venv dev lint types imports check unit integration e2e chaos scale deploy-check bench clean

up: venv ## run the whole platform on embedded defaults
	$(BIN)/paycore up

# Test files run on JOBS processes (pytest-xdist, a file's tests together on one); the scale
# tier runs after, alone, because it measures how fast each context's rate comes back.
JOBS ?= 2

test: deps check ## everything CI runs: lint, types, import contracts, all test tiers
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile --ignore-glob='tests/*/scale'
	$(PY) -m pytest -q tests/*/scale

deps: ## system packages (servers, browser), then the virtualenv with the development tools
	bash scripts/install-deps

venv: $(VENV)/.installed ## paycore and what running it needs

dev: $(VENV)/.installed-dev ## the same plus the development tools (tests, lint, types) and extras

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev,otel]'
	touch $@

lint: dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: dev
	$(BIN)/mypy

imports: dev ## the import contracts, written from the registry and each context's LAYERS
	$(PY) scripts/lint-imports

check: lint types imports

unit: dev
	$(PY) -m pytest -q tests/*/unit

integration: dev
	$(PY) -m pytest -q tests/*/integration

e2e: dev
	$(PY) -m pytest -q tests/*/e2e

chaos: dev
	$(PY) -m pytest -q tests/*/chaos

scale: dev ## broker clusters, two of every process, a node and workers killed (-s: what each kill cost)
	$(PY) -m pytest -q -s tests/*/scale

deploy-check: dev ## deploy/ checked without Docker or a cluster (compose, kustomize, schemas, rules)
	$(PY) -m pytest -q tests/deploy

bench: dev
	$(PY) bench/commerce_orders.py

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache
