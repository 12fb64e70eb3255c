# Every command of the project is spelled here. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
TILLFLOW := $(VENV)/bin/tillflow
RATE ?= 300
BACKFILL_DAYS ?= 14

.DEFAULT_GOAL := help
.PHONY: help setup up down status demo check test test-cluster lint typecheck docs bench bench-smoke lock schemas dashboards rules clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: ## Install everything (Debian packages, .venv from requirements.lock, Kafka/Neo4j/OpenSearch/Delta-for-Spark jars)
	@bash infra/setup.sh

up: ## Start Kafka (KRaft), Redis, Neo4j, OpenSearch, MLflow, rsyslog and Prometheus on 127.0.0.1; create the topics
	@$(TILLFLOW) up

down: ## Stop what `make up` / `make demo` started
	@$(TILLFLOW) down

status: ## Say what runs where
	@$(TILLFLOW) status

demo: setup up ## Set up; start everything, backfill BACKFILL_DAYS of history, train; then the live shop (RATE/s)
	@$(TILLFLOW) demo --rate $(RATE) --backfill-days $(BACKFILL_DAYS)

check: setup ## Set up, start the stack, lint, type-check, build the docs, run every test (and the `cluster` ones on a Redis Cluster), stop the stack
	@$(TILLFLOW) up
	@status=0; $(MAKE) --no-print-directory lint typecheck docs test test-cluster bench-smoke || status=$$?; \
	  $(TILLFLOW) down; exit $$status

test: ## Run the test suite (needs `make up`)
	@$(PY) -m pytest

# A local Redis Cluster of three masters on CLUSTER_PORT..CLUSTER_PORT+2 (not the shared 6379).
CLUSTER_PORT ?= 7100
CLUSTER_ENV := TILLFLOW_REDIS_CLUSTER=true TILLFLOW_REDIS_PORT=$(CLUSTER_PORT) \
	TILLFLOW_REDIS_URL=redis://127.0.0.1:$(CLUSTER_PORT)/0

test-cluster: ## Start a local 3-master Redis Cluster (CLUSTER_PORT..+2) and run the tests marked `cluster` on it
	@$(CLUSTER_ENV) $(TILLFLOW) up
	@$(CLUSTER_ENV) $(PY) -m pytest -m cluster

lint: ## ruff lint and format check
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

typecheck: ## mypy --strict
	@$(VENV)/bin/mypy

docs: ## Build the docs site (docs/ -> .tillflow/site) strictly: any warning or broken link fails
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

BENCH_MODULES := ingest stream quality elasticity observability batch serving graph search fuzz soak governance recs demo
# Tools run by hand (stream_ab compares commits, stream_snapshots times the keyed states'
# snapshots, recs_replay scores discover variants in process); bench-smoke keeps them working.
SMOKE_ONLY := stream_ab stream_snapshots recs_replay

bench: setup up ## Run every benchmark (progress per module); write benchmarks/results/*.json and BENCHMARKS.md
	@set -e; n=0; total=$(words $(BENCH_MODULES)); for m in $(BENCH_MODULES); do \
	  n=$$((n + 1)); echo "== [$$n/$$total] benchmarks.$$m"; start=$$(date +%s); \
	  $(PY) -m benchmarks.$$m; echo "== benchmarks.$$m done in $$(( $$(date +%s) - start ))s"; done
	@$(PY) -m benchmarks.report

SMOKE_JOBS ?= 4

bench-smoke: ## Run every benchmark at a tiny size (--smoke), SMOKE_JOBS at a time; results in a temp dir, not results/
	@$(PY) -m benchmarks.smoke --jobs $(SMOKE_JOBS) $(BENCH_MODULES) $(SMOKE_ONLY)

lock: ## Re-resolve requirements.lock from pyproject.toml (and the MLflow server's lock)
	@$(VENV)/bin/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 --excludes infra/uv-excludes.txt -o requirements.lock
	@$(VENV)/bin/uv pip compile -q infra/mlflow/requirements.in --python-version 3.11 \
		-o infra/mlflow/requirements.lock

schemas: ## Write the contract's JSON Schema files to schemas/json/
	@$(TILLFLOW) schemas export --out schemas/json

dashboards: ## Regenerate infra/grafana/dashboards/*.json from observability/dashboards.py
	@$(PY) -m observability.dashboards

rules: ## Check the Prometheus alert rules and run their unit tests (promtool)
	@promtool check rules infra/prometheus/rules/*.yml
	@promtool test rules infra/prometheus/tests/*.yml

clean: down ## Stop the stack; delete its data (OpenSearch's indices and MLflow's runs and models too), logs, lake, recovery state, Feast registry, models and lineage
	@rm -rf .tillflow/data .tillflow/logs .tillflow/run .tillflow/lake .tillflow/recovery .tillflow/feast \
		.tillflow/models .tillflow/bench-models .tillflow/lineage
