# `make test` works on a fresh clone with only Python >= 3.11 and make:
# it creates the virtual environment, installs the package with its test
# dependencies, then runs the linters, the type checker and the suite.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test pytest lint typecheck format docs clean demo

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "stale-tokens needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	@touch $(STAMP)

test: lint typecheck pytest

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Seeds the bundled Ory emulator, runs the example FastAPI app and sweeps,
# all on 127.0.0.1; DEMO_ARGS="--identities 5000" changes the population.
demo: $(STAMP)
	$(BIN)/python examples/demo/run_demo.py $(DEMO_ARGS)

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) site .mypy_cache .ruff_cache .pytest_cache
