# Dockyard: run as root on Debian 12.  `make run` then `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help setup run start stop restart status test test-fast lint format bench clean

help:
	@echo "make run      install what is missing, then start the stack (panel, Docker API, worker)"
	@echo "make stop     stop the stack (containers keep running)"
	@echo "make status   show the stack's processes"
	@echo "make test     lint, then the whole test suite (live tests start their own stack)"
	@echo "make test-fast  the tests that need no live stack"
	@echo "make lint     ruff"
	@echo "make bench    Dockyard vs Docker: docker run --rm latency, shim memory"

setup:
	@bash scripts/setup.sh

run start: setup
	@bash scripts/stack.sh start

stop:
	@bash scripts/stack.sh stop

restart:
	@bash scripts/stack.sh restart

status:
	@bash scripts/stack.sh status

lint: setup
	$(VENV)/bin/ruff check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# pytest exits 5 when it collected nothing: that is a failure here, never "green".
test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not live and not browser" $(PYTEST_ARGS)

bench: setup
	$(PY) bench/bench_run.py $(BENCH_ARGS)

clean:
	rm -rf .pytest_cache .ruff_cache test-artifacts
