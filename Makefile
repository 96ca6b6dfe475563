# The two commands the README promises: `make demo` and `make test`.
# Both create the environment from the committed lock file (uv.lock) on a machine that has only
# Python 3.11, pip and make.
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
BIN    := $(VENV)/bin
# e.g. PYTEST_ARGS='-m "not slow"' (CI runs the slow checks on one database only)
PYTEST_ARGS ?=
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: demo test lint typecheck pytest install install-test install-bench serve clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==0.13.8

install: $(UV)
	$(UV) sync --frozen --inexact

install-test: $(UV)
	$(UV) sync --frozen --inexact --extra test

install-bench: $(UV)
	$(UV) sync --frozen --inexact --extra test --extra bench

demo: install
	$(BIN)/relieflink demo

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-test
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: install-test
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

serve: install
	$(BIN)/relieflink serve

clean:
	rm -rf $(TOOLS) $(VENV) relieflink.db relieflink-report .pytest_cache .mypy_cache .ruff_cache
