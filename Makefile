# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# setup.py compiles the twin's control loop with mypyc; the editable install puts the
# extensions beside their sources, so an edited source there is compiled again (COMPILED).
COMPILED := $(VENV)/.compiled
COMPILED_SOURCES := setup.py $(wildcard src/cityhub/brain/*.py src/cityhub/sandbox/*.py)

$(STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@ $(COMPILED)

$(DEV_STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP) $(COMPILED)

$(COMPILED): $(COMPILED_SOURCES) | $(STAMP)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

demo: $(STAMP) $(COMPILED)
	$(BIN)/cityhub demo

test: $(DEV_STAMP) $(COMPILED)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP) $(COMPILED)
	$(BIN)/pytest -q

bench: $(DEV_STAMP) $(COMPILED)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/query.py

clean:
	rm -rf $(VENV) .cityhub .pytest_cache .mypy_cache .ruff_cache build
	find src -name '*.so' -delete
