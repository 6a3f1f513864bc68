# Two entry points that work on a fresh machine with python3 and make:
#   make run    set up, then run the main job (a synthetic month through the live pipeline)
#   make test   set up, then run the whole test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Parallel test workers: most tests wait on a broker, a database or a subprocess, so more workers
# than the 2 cores pay (8: about 5.5 minutes here, 1: about 20). Each worker has its own embedded
# broker, PostgreSQL schemas and temporary files.
TEST_WORKERS ?= 8

.PHONY: install run test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/commcredits demo

test: install
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

bench: install
	$(BIN)/python bench/simulate_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
