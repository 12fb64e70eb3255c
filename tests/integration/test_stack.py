"""The local stack: idempotent start, topic creation, status, and readable errors."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.errors import ServiceUnavailable
from infra.readiness import (
    require_kafka,
    require_mlflow,
    require_neo4j,
    require_opensearch,
    require_redis,
)
from infra.stack import local
from infra.stack.topics import ensure_topics
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, INPUT_TOPICS

pytestmark = pytest.mark.integration


def test_topics_are_created_once_with_their_partitions(stack: Settings) -> None:
    again = ensure_topics(stack)  # the stack fixture created them already
    assert {s.action for s in again} == {"exists"}
    assert {s.name for s in again} == {stack.topic(t) for t in ALL_TOPICS}
    meta = require_kafka(stack)
    for topic in INPUT_TOPICS:
        assert len(meta.topics[stack.topic(topic)].partitions) == stack.input_partitions


def test_partitions_grow_when_configured_higher(stack: Settings) -> None:
    wider = stack.model_copy(
        update={"topic_prefix": stack.topic_prefix + "wide.", "input_partitions": 2}
    )
    from infra.stack.topics import delete_topics

    try:
        ensure_topics(wider, INPUT_TOPICS)
        grown = ensure_topics(wider.model_copy(update={"input_partitions": 4}), INPUT_TOPICS)
        assert {s.action for s in grown} == {"grown"}
        meta = require_kafka(wider)
        assert {len(meta.topics[wider.topic(t)].partitions) for t in INPUT_TOPICS} == {4}
    finally:
        delete_topics(wider, [wider.topic(t) for t in INPUT_TOPICS])


def test_up_is_idempotent_and_status_says_what_runs_where(stack: Settings) -> None:
    before = {s.name: s for s in local.status(stack)}
    after = {s.name: s for s in local.up(stack)}
    for name in ("kafka", "redis", "neo4j", "opensearch", "mlflow", "prometheus"):
        assert after[name].state in ("running", "external")
        assert after[name].pid == before[name].pid, f"{name} was restarted"
        if after[name].state == "running":  # started by the launcher: it writes the log shown
            assert Path(after[name].log).stat().st_size > 0, f"{name} logs nothing"
    result = subprocess.run(
        [sys.executable, "-m", "cli", "status"], capture_output=True, text=True, check=True
    )
    assert "kafka" in result.stdout
    assert "127.0.0.1:9092" in result.stdout
    assert "prometheus" in result.stdout
    assert "opensearch" in result.stdout
    assert "mlflow" in result.stdout


def test_missing_services_are_named_quickly() -> None:
    nowhere = Settings(
        kafka_bootstrap="127.0.0.1:1",
        redis_url="redis://127.0.0.1:1/0",
        neo4j_uri="bolt://127.0.0.1:1",
        opensearch_url="http://127.0.0.1:1",
        mlflow_url="http://127.0.0.1:1",
    )
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=r"Kafka is not reachable at 127\.0\.0\.1:1"):
        require_kafka(nowhere, timeout_s=2)
    with pytest.raises(ServiceUnavailable, match=r"Redis is not reachable at redis://127"):
        require_redis(nowhere)
    with pytest.raises(ServiceUnavailable, match=r"Neo4j is not reachable at bolt://127"):
        require_neo4j(nowhere, timeout_s=2)
    with pytest.raises(ServiceUnavailable, match=r"OpenSearch is not reachable at http://127"):
        require_opensearch(nowhere, timeout_s=2)
    with pytest.raises(ServiceUnavailable, match=r"MLflow is not reachable at http://127"):
        require_mlflow(nowhere, timeout_s=2)
    assert time.monotonic() - started < 30, "a missing service must not hang"


def test_flows_refuse_to_start_without_the_broker() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "TILLFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "TILLFLOW_KAFKA_TIMEOUT_S": "2",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cli", "flows", "run", "--once"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Kafka is not reachable at 127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30
