#!/usr/bin/env bash
# Set up everything tillflow needs on a fresh Debian machine (idempotent):
#   - Debian packages: redis-server, kcat, docker-compose (compose file check), Java 17+, Maven,
#     chromium (page tests), wrk (serving benchmark),
#     prometheus (+ promtool), prometheus-alertmanager (amtool checks the alert routing),
#     rsyslog + rsyslog-elasticsearch (ships the JSON log lines into OpenSearch)
#   - a virtualenv in .venv with the locked Python dependencies (requirements.lock)
#   - the MLflow tracking server's own virtualenv in .tillflow/cache/mlflow-venv
#     (infra/mlflow/requirements.lock: its pins differ from the project's)
#   - the Kafka broker's, Neo4j's and OpenSearch's jars, and Delta Lake's for Spark, from Maven
#     Central (into .tillflow/cache)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
UV_VERSION=0.13.8

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v kcat >/dev/null || need+=(kcat)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v chromium >/dev/null || need+=(chromium)  # page tests (headless, driven by Playwright)
command -v wrk >/dev/null || need+=(wrk)  # serving benchmark load generator
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v prometheus >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v rsyslogd >/dev/null || need+=(rsyslog)
ls /usr/lib/*/rsyslog/omelasticsearch.so >/dev/null 2>&1 || need+=(rsyslog-elasticsearch)
ldconfig -p | grep -q libgomp.so.1 || need+=(libgomp1)  # OpenMP runtime of LightGBM
if ((${#need[@]})); then
  echo "setup: installing Debian packages: ${need[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's postinst may start a system redis on 6379; tillflow runs its own.
if pgrep -x redis-server >/dev/null && [ ! -f .tillflow/run/redis.pid ]; then
  (service redis-server stop >/dev/null 2>&1 || true)
fi
# Likewise a system prometheus on 9090 and alertmanager on 9093 (Kafka's controller port).
if pgrep -x prometheus >/dev/null && [ ! -f .tillflow/run/prometheus.pid ]; then
  (service prometheus stop >/dev/null 2>&1 || true)
fi
# And the system rsyslogd: tillflow runs its own, with its own configuration, as a shipper only.
if pgrep -x rsyslogd >/dev/null && [ ! -f .tillflow/run/rsyslog.pid ]; then
  (service rsyslog stop >/dev/null 2>&1 || true)
fi
# (by command line: pgrep -x sees only the first 15 characters of a process name)
if pgrep -f "^[^ ]*prometheus-alertmanager( |$)" >/dev/null; then
  (service prometheus-alertmanager stop >/dev/null 2>&1 || true)
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
  .venv/bin/pip install -q "uv==$UV_VERSION"
fi
# Bytecode compiled at install: with PYTHONDONTWRITEBYTECODE set (as on the shared machines)
# every process would otherwise compile what it imports from source again (mlflow's client
# alone: ~4 s of CPU per training process).
.venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python \
  --excludes infra/uv-excludes.txt -r requirements.lock
.venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
MLFLOW_VENV=.tillflow/cache/mlflow-venv
if [ ! -x "$MLFLOW_VENV/bin/python" ]; then
  mkdir -p .tillflow/cache
  "$PYTHON" -m venv "$MLFLOW_VENV"
fi
# `uv pip sync`: exactly the lock, nothing more (a no-op when it is already in place).
.venv/bin/uv pip sync -q --python "$MLFLOW_VENV/bin/python" infra/mlflow/requirements.lock
.venv/bin/tillflow setup
