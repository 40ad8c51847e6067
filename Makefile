# Every target does its own set-up: `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test demo bench lint typecheck golden fuzz coverage clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: it resolves to the local CPU wheel, never a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/python -m examples.demo

bench: setup
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.static
	$(BIN)/python -m bench.serving

coverage: setup
	$(BIN)/python -m dycl_jax.lower --coverage

fuzz: setup
	$(BIN)/python -m tests.fuzz.campaign --programs $(or $(N),500) --seed $(or $(SEED),0)

golden: setup
	DYCL_ACCEPT=1 $(BIN)/python -m pytest tests/test_golden.py

lint: setup
	$(BIN)/ruff check dycl_jax tests examples bench
	$(BIN)/ruff format --check dycl_jax tests examples bench

typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache
