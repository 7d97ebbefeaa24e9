# cdchub — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup system-packages venv jars demo test test-unit test-integration lint clean down

setup: system-packages venv jars  ## Install everything the stack and the hub need

system-packages:
	@infrastructure/scripts/install-system-packages.sh

$(BIN)/cdchub: requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -r requirements-dev.txt
	@$(BIN)/pip install -q --no-deps -e .
	@touch $(BIN)/cdchub

venv: $(BIN)/cdchub

jars: venv  ## Kafka + Debezium jars from Maven Central into ~/.cache/cdchub (skipped when present)
	@$(BIN)/python -c "from infrastructure.stack.jars import ensure_jars; ensure_jars()"

demo: setup  ## Stack up, schemas, connectors, workload, replicate, verify
	$(BIN)/cdchub demo

test: setup lint  ## Lint (ruff, import layers, mypy), unit tests, then integration tests on a private stack
	$(BIN)/pytest tests/unit -q
	$(BIN)/pytest tests/integration -q

test-unit: venv
	$(BIN)/pytest tests/unit -q

lint: venv  ## ruff; the import-layer contracts (pyproject [tool.importlinter]); mypy (strict on core/, merge/)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

down:
	$(BIN)/cdchub stack down

clean:
	-$(BIN)/cdchub stack down --purge
	rm -rf $(VENV)
