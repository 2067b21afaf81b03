# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# OpenSSF's model_signing in a venv of its own (its sigstore pins are not ours): the tests
# of 'modelkeep sign' run its real 'verify key' against our signatures.
MS_VENV := .venv-ms
MS_STAMP := $(MS_VENV)/.installed
MODEL_SIGNING := model-signing==1.1.1 pyopenssl==26.4.0
# The KServe SDK in a venv of its own (a server's worth of pins): the tests of
# 'deploy export --kserve' load its InferenceServices with the SDK's own models.
KS_VENV := .venv-kserve
KS_STAMP := $(KS_VENV)/.installed
KSERVE := kserve==0.21.0 kubernetes==37.0.3

.PHONY: run test lint typecheck pytest bench bench-serving docs clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(MS_STAMP): Makefile
	@test -x $(MS_VENV)/bin/python || $(PYTHON) -m venv $(MS_VENV)
	$(MS_VENV)/bin/python -m pip install --quiet $(MODEL_SIGNING)
	@touch $(MS_STAMP)

$(KS_STAMP): Makefile
	@test -x $(KS_VENV)/bin/python || $(PYTHON) -m venv $(KS_VENV)
	$(KS_VENV)/bin/python -m pip install --quiet $(KSERVE)
	@touch $(KS_STAMP)

run: $(STAMP)
	$(BIN)/python examples/serve.py

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(MS_STAMP) $(KS_STAMP)
	MODELKEEP_MODEL_SIGNING_PYTHON=$(CURDIR)/$(MS_VENV)/bin/python \
	MODELKEEP_KSERVE_PYTHON=$(CURDIR)/$(KS_VENV)/bin/python \
	$(BIN)/pytest -n 2 --dist loadfile

docs: $(STAMP)
	$(BIN)/python -m modelkeep.entrypoints.cli.reference > docs/cli.md

bench: $(STAMP)
	$(BIN)/python bench/registry.py

# gateway vs `mlflow models serve`, routing cost, swap under load (~5 min; --quick: ~1 min)
bench-serving: $(STAMP)
	$(BIN)/python bench/serving.py

clean:
	rm -rf $(VENV) $(MS_VENV) $(KS_VENV) .modelkeep .pytest_cache .mypy_cache .ruff_cache
