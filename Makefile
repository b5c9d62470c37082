# Two commands a user needs: `make run` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAGE ?= dev

.PHONY: run test lint typecheck unit bench package deploy clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/clm local

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench

package: $(STAMP)
	rm -rf dist && CLM_STAGE=$(STAGE) $(BIN)/chalice package --stage $(STAGE) \
		--merge-template infra/resources.json dist

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache
