# make run   : install into .venv, then reproduce every article (snakemake --cores all)
# make test  : install into .venv, then run the test suite
# GPU machines: make run TORCH=torch   (a plain torch install brings its CUDA build)
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install lint

$(BIN)/activate-kexue: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/activate-kexue

run: install
	PATH="$(abspath $(BIN)):$$PATH" snakemake --cores all

test: install
	PATH="$(abspath $(BIN)):$$PATH" pytest -q

lint: install
	PATH="$(abspath $(BIN)):$$PATH" sh -c 'ruff check . && snakemake --lint'
