# Every command of the project is spelled here. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
TILLFLOW := $(VENV)/bin/tillflow
RATE ?= 300

.DEFAULT_GOAL := help
.PHONY: help setup up down status demo check test lint typecheck bench bench-smoke lock schemas dashboards rules clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: ## Install everything (Debian packages, .venv from requirements.lock, Kafka jars)
	@bash infra/setup.sh

up: ## Start Kafka (KRaft) and Redis on 127.0.0.1 and create the topics
	@$(TILLFLOW) up

down: ## Stop what `make up` / `make demo` started
	@$(TILLFLOW) down

status: ## Say what runs where
	@$(TILLFLOW) status

demo: setup up ## Set up; start the stack, the flows, the API and the live shop simulator (RATE/s)
	@$(TILLFLOW) demo --rate $(RATE)

check: setup ## Set up, start the stack, lint, type-check and run every test, stop the stack
	@$(TILLFLOW) up
	@status=0; $(MAKE) --no-print-directory lint typecheck test bench-smoke || status=$$?; \
	  $(TILLFLOW) down; exit $$status

test: ## Run the test suite (needs `make up`)
	@$(PY) -m pytest

lint: ## ruff lint and format check
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

typecheck: ## mypy --strict
	@$(VENV)/bin/mypy

bench: setup up ## Run the benchmarks; write benchmarks/results/*.json and BENCHMARKS.md
	@$(PY) -m benchmarks.ingest
	@$(PY) -m benchmarks.stream
	@$(PY) -m benchmarks.quality
	@$(PY) -m benchmarks.observability
	@$(PY) -m benchmarks.batch
	@$(PY) -m benchmarks.serving
	@$(PY) -m benchmarks.graph
	@$(PY) -m benchmarks.report

BENCH_MODULES := ingest stream quality observability batch serving graph

bench-smoke: ## Run every benchmark at a tiny size (--smoke; results in a temp dir, not results/)
	@set -e; for m in $(BENCH_MODULES); do \
	  echo "== benchmarks.$$m --smoke"; $(PY) -m benchmarks.$$m --smoke; done

lock: ## Re-resolve requirements.lock from pyproject.toml
	@$(VENV)/bin/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

schemas: ## Write the contract's JSON Schema files to schemas/json/
	@$(TILLFLOW) schemas export --out schemas/json

dashboards: ## Regenerate infra/grafana/dashboards/*.json from observability/dashboards.py
	@$(PY) -m observability.dashboards

rules: ## Check the Prometheus alert rules and run their unit tests (promtool)
	@promtool check rules infra/prometheus/rules/*.yml
	@promtool test rules infra/prometheus/tests/*.yml

clean: down ## Stop the stack; delete its data, logs, lake, recovery state, Feast registry, models and lineage
	@rm -rf .tillflow/data .tillflow/logs .tillflow/run .tillflow/lake .tillflow/recovery .tillflow/feast \
		.tillflow/models .tillflow/bench-models .tillflow/lineage
