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

# Two workers (these machines have two cores), each test file whole on one of them (its module
# fixtures, a local stack, are made once); then the fuzz, which needs a process of its own
# (tests/e2e/test_fuzz.py). `.venv/bin/pytest PATH` runs what you name in one process.
PYTEST_WORKERS ?= 2
unit: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile
	$(BIN)/pytest -q tests/e2e/test_fuzz.py

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench

# The long fuzz: schemathesis against a local stack of its own, >= 1,000 generated cases, the coverage
# phase, a new seed each run (CLM_FUZZ_SEED=N replays one). `make test` runs a short, fixed one.
.PHONY: fuzz
fuzz: $(STAMP)
	CLM_FUZZ_EXAMPLES=$${CLM_FUZZ_EXAMPLES:-100} $(BIN)/pytest -q tests/e2e/test_fuzz.py

openapi: $(STAMP)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$(AWS_REGION_DEFAULT)} $(BIN)/python -m clm.openapi openapi.json

package: $(STAMP)
	rm -rf dist && CLM_STAGE=$(STAGE) AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$(AWS_REGION_DEFAULT)} $(BIN)/chalice package --stage $(STAGE) \
		--merge-template infra/resources.json dist
	$(BIN)/python -m clm.package dist/deployment.zip dist/sam.json

# `make deploy STAGE=dev|prod BUCKET=...`: package for STAGE (the functions' CLM_STAGE) and deploy stack
# clm-STAGE with the same Stage (the resources' names), with the AWS CLI v2's own credentials and region.
ifneq ($(filter deploy,$(MAKECMDGOALS)),)
ifneq ($(STAGE),$(filter dev prod,$(firstword $(STAGE))))
$(error make deploy: STAGE must be dev or prod, not "$(STAGE)")
endif
ifeq ($(BUCKET),)
$(error make deploy: set BUCKET to an S3 bucket for the code, in the stack's region)
endif
endif

deploy: package
	aws cloudformation package --template-file dist/sam.json --s3-bucket $(BUCKET) \
		--s3-prefix clm-$(STAGE) --use-json --output-template-file dist/packaged.json
	aws cloudformation deploy --template-file dist/packaged.json --stack-name clm-$(STAGE) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --parameter-overrides Stage=$(STAGE) \
		--no-fail-on-empty-changeset

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache

