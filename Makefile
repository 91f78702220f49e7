# Avatar Creator — every set-up step lives here so a fresh machine needs only `make run` / `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runtime is python3.12 (Pillow 13 ships manylinux_2_28 wheels for it; see docs/deploy.md).
PYTHON ?= $(shell scripts/find-python 3.12)
VENV := .venv
MS_VENV := .venv-ministack
PY := $(VENV)/bin/python
PORT ?= 8000
LOCAL_AWS_PORT ?= 4566
LOCAL_DATA_DIR ?= .local-data
USER ?= alice
STAGE ?= prod
PYTEST_ARGS ?=
# Parallel test workers (pytest-xdist). The browser and local-stack tests wait on subprocesses
# (ministack, Chromium), so 4 workers beat 3 on a 2-core machine: 9 min 57 s against 11 min 17 s for the
# same suite (BENCHMARKS.md, "The test suite"). -n 0: serial.
TEST_WORKERS ?= 4
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS)

.PHONY: help venv run token test test-fast test-unit test-functional test-integration test-e2e browser bench fuzz package lint clean

help:
	@echo "make run     start the whole service on the embedded local AWS stack (http://127.0.0.1:$(PORT)/)"
	@echo "make test    install what is needed and run every test (unit, functional, integration, e2e)"
	@echo "make test-fast   unit and functional tests without the tests marked slow (the edit loop; make test runs them)"
	@echo "make token USER=alice   print a dev JWT for the local stack"
	@echo "make bench   run the benchmarks and write BENCHMARKS.md"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "== installing the service's Python packages into $(VENV) (first run: a few minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# ministack pins its own botocore, so it lives in a venv of its own.
$(MS_VENV)/.installed: local/requirements-ministack.txt
	@echo "== installing the AWS emulator (ministack) into $(MS_VENV) (first run: a minute or two)"
	@test -x $(MS_VENV)/bin/python || $(PYTHON) -m venv $(MS_VENV)
	$(MS_VENV)/bin/python -m pip install -q --disable-pip-version-check -r local/requirements-ministack.txt
	@touch $@

# The slim botocore data the app's clients load on a cold start (chalicelib/aws/botocore_data.py).
BOTOCORE_DATA := chalicelib/aws/_botocore_data/VERSION
$(BOTOCORE_DATA): $(VENV)/.installed
	$(PY) -m chalicelib.aws.botocore_data

venv: $(VENV)/.installed $(MS_VENV)/.installed $(BOTOCORE_DATA)

run: venv
	PORT=$(PORT) LOCAL_AWS_PORT=$(LOCAL_AWS_PORT) LOCAL_DATA_DIR=$(LOCAL_DATA_DIR) $(PY) -m local.stack

token: $(VENV)/.installed
	@$(PY) -m local.token $(USER)

AXE := tests/e2e/node_modules/axe-core/axe.min.js
# Debian's Chromium drives the browser tests (Playwright's own browser download cannot run here).
# (The emoji font only makes the screenshots in test-artifacts/ show the page's icons.)
browser: $(AXE)
	@{ command -v chromium >/dev/null 2>&1 && test -d /usr/share/fonts/truetype/noto; } || { \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; }

NEED_NPM := command -v npm >/dev/null 2>&1 || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }

# axe-core (pinned in tests/e2e/package.json) for the accessibility checks of the browser tests.
$(AXE): tests/e2e/package.json tests/e2e/package-lock.json
	@$(NEED_NPM)
	cd tests/e2e && npm ci --no-audit --no-fund --silent
	@touch $@

# openapi-typescript, openapi-fetch and typescript (pinned in tests/contract/package.json): the API
# contract test generates a TypeScript client from /openapi.json and type-checks tests/contract/client.ts.
CONTRACT_DEPS := tests/contract/node_modules/.installed
$(CONTRACT_DEPS): tests/contract/package.json tests/contract/package-lock.json
	@$(NEED_NPM)
	cd tests/contract && npm ci --no-audit --no-fund --silent
	@touch $@

.PHONY: contract-deps
contract-deps: $(CONTRACT_DEPS)

# Everything, in parallel; the 20 slowest tests are listed at the end (BENCHMARKS.md keeps a run).
test: venv browser contract-deps
	$(PYTEST) --durations=20 $(PYTEST_ARGS)

# The edit loop: unit and functional tests, without the tests marked slow (the invariant state
# machine, tests/conftest.py; `make invariants` runs it long, `make test` bounded).
test-fast: $(VENV)/.installed contract-deps
	$(PYTEST) -m "not slow" tests/unit tests/functional $(PYTEST_ARGS)

test-unit: $(VENV)/.installed
	$(PYTEST) tests/unit $(PYTEST_ARGS)

test-functional: $(VENV)/.installed contract-deps
	$(PYTEST) tests/functional $(PYTEST_ARGS)

test-integration: venv
	$(PYTEST) tests/integration $(PYTEST_ARGS)

test-e2e: venv browser
	$(PYTEST) tests/e2e $(PYTEST_ARGS)

bench: venv
	$(PY) -m bench.run_all

# The capacity model (docs/scaling.md): records each operation's AWS calls over moto, then models
# 10k/1M/10M users into bench/results/capacity.md.
.PHONY: capacity
capacity: $(VENV)/.installed
	$(PY) -m bench.capacity

# The invariants of the data, checked on a stack (docs/operations.md): a local one by default, or
# AUDIT_ARGS="--stack avatar-creator-prod [--user alice] [--repair]".
.PHONY: audit invariants
AUDIT_ARGS ?= --outputs $(LOCAL_DATA_DIR)/outputs.json
audit: $(VENV)/.installed
	$(PY) -m infra.audit $(AUDIT_ARGS)

# Which Inference Providers serve FLUX_LORA / FLUX_MODEL / SAFETY_MODEL (needs HF_TOKEN; docs/operations.md).
.PHONY: check-provider
check-provider: $(VENV)/.installed
	$(PY) -m infra.check_provider

# The long runs of the state machines: the invariants and the job timing (make test runs bounded ones).
invariants: $(VENV)/.installed
	INVARIANT_EXAMPLES=$${INVARIANT_EXAMPLES:-200} INVARIANT_STEPS=$${INVARIANT_STEPS:-60} INVARIANT_RANDOM=1 \
	  $(PY) -m pytest tests/functional/test_invariants.py --timeout=0 $(PYTEST_ARGS)
	TIMING_EXAMPLES=$${TIMING_EXAMPLES:-200} TIMING_STEPS=$${TIMING_STEPS:-40} \
	  $(PY) -m pytest tests/functional/test_job_timing.py --timeout=0 $(PYTEST_ARGS)

# The long API fuzz run (make test runs 10 cases per operation).
fuzz: venv
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(PY) -m pytest tests/integration/test_fuzz.py -s $(PYTEST_ARGS)

# ---- AWS packaging (docs/deploy.md) ----------------------------------------------------------
.PHONY: lint-infra run-packaged
BUILD_DIR ?= build/$(STAGE)

# build/$(STAGE)/sam.json + deployment.zip + layer-deployment.zip, checked and cfn-linted.
package: $(VENV)/.installed
	scripts/package.sh $(STAGE) $(BUILD_DIR)

# Checks an existing package again (after editing infra/ or .chalice/, `make package` rebuilds).
lint-infra: $(VENV)/.installed
	@test -f $(BUILD_DIR)/sam.json || { echo "no $(BUILD_DIR)/sam.json: run make package"; exit 1; }
	$(PY) -m infra.check_package $(BUILD_DIR)
	$(VENV)/bin/cfn-lint $(BUILD_DIR)/sam.json
	$(PY) -m pytest tests/unit/test_infra_template.py -q $(PYTEST_ARGS)

# The packaged template deployed into ministack's CloudFormation (IAM enforced), until Ctrl-C.
run-packaged: package $(MS_VENV)/.installed
	LOCAL_AWS_PORT=$(LOCAL_AWS_PORT) $(PY) -m infra.packaged_stack $(BUILD_DIR)

clean:
	rm -rf $(VENV) $(MS_VENV) $(LOCAL_DATA_DIR) .pytest_cache test-artifacts
