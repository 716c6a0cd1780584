# make run   : install into .venv, then reproduce every article (snakemake --cores all)
# make test  : install into .venv, then run the test suite
# GPU machines: make run TORCH=torch   (the CUDA build of torch; see README "On a GPU")
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
# One stamp per torch requirement: changing TORCH reinstalls torch instead of keeping the old
# build (pip would call a CPU wheel "already satisfied" for a plain `torch`).
STAMP := $(VENV)/.installed-$(subst =,-,$(subst >,,$(subst <,,$(TORCH))))

.PHONY: run test install lint reference

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	rm -f $(VENV)/.installed-*
	$(BIN)/pip uninstall -q -y torch 2>/dev/null || true
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(STAMP)

run: install
	PATH="$(abspath $(BIN)):$$PATH" snakemake --cores all

test: install
	PATH="$(abspath $(BIN)):$$PATH" pytest -q

lint: install
	PATH="$(abspath $(BIN)):$$PATH" sh -c 'ruff check . && snakemake --lint'

# copy results/<variant>/ (index, summary, reports) to docs/reference/<variant>/
reference: install
	PATH="$(abspath $(BIN)):$$PATH" python -m kexue reference
