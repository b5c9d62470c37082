# Two commands a user needs: `make run` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAGE ?= dev
AWS_REGION_DEFAULT ?= cn-north-1

.PHONY: run test lint typecheck unit bench package openapi deploy clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip>=24,<26.3"  # chalice needs pip < 26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/clm local $(if $(FRESH),--fresh,)

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

openapi: $(STAMP)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$(AWS_REGION_DEFAULT)} $(BIN)/python -m clm.openapi openapi.json

package: $(STAMP)
	rm -rf dist && CLM_STAGE=$(STAGE) AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$(AWS_REGION_DEFAULT)} $(BIN)/chalice package --stage $(STAGE) \
		--merge-template infra/resources.json dist
	$(BIN)/python -m clm.package dist/deployment.zip dist/sam.json

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache
