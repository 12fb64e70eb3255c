"""Logs you can search: one request's id followed through the shipped logs in OpenSearch.

The API and the flow run as processes writing JSON lines into this run's log folder; a real
``rsyslogd`` (the local stack's configuration, this run's index prefix) ships them into
OpenSearch. One request id goes from the API (its request log line, the Kafka header of the
event it produced) to the flow, whose dead-letter log line carries it too. The API refuses
invalid events itself (422), so the dead letter comes from a raw message with the same
correlation id, as another producer of that request would send it.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from flows.run import process_commands
from infra.errors import ServiceUnavailable
from infra.readiness import require_opensearch
from infra.stack import rsyslog
from infra.stack.processes import running_pid, terminate
from infra.stack.topics import delete_topics, ensure_topics
from schemas.headers import CORRELATION_ID
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, DEAD_LETTER, ORDERS
from search.client import opensearch_client
from tests.cli_processes import child_env, post_json, start_api, tillflow_up
from tests.credentials import producer_headers
from tests.flow_processes import free_port

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Shipped:
    settings: Settings
    request_id: str


def _search(settings: Settings, query: str) -> list[dict[str, Any]]:
    with opensearch_client(settings) as client:
        pattern = f"{settings.log_index_prefix}*"
        client.indices.refresh(index=pattern, ignore_unavailable=True, allow_no_indices=True)
        body = client.search(
            index=pattern, q=query, size=100, ignore_unavailable=True, allow_no_indices=True
        )
    return [hit["_source"] for hit in body["hits"]["hits"]]


def _until_found(
    settings: Settings, query: str, enough: Callable[[list[Any]], bool], timeout_s: float = 90.0
) -> list[dict[str, Any]]:
    """Poll the shipped logs until ``enough(hits)`` holds (rsyslog ships asynchronously)."""
    deadline = time.monotonic() + timeout_s
    hits = _search(settings, query)
    while not enough(hits) and time.monotonic() < deadline:
        time.sleep(0.25)
        hits = _search(settings, query)
    return hits


@pytest.fixture(scope="module")
def shipped(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shipped]:
    try:
        require_opensearch(stack, timeout_s=5)
    except ServiceUnavailable as exc:
        pytest.fail(f"log search tests need OpenSearch (`tillflow up`): {exc}", pytrace=False)
    rid = uuid.uuid4().hex[:6]
    root = tmp_path_factory.mktemp("logsearch")
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}logs{rid}.",
            "redis_prefix": f"{stack.redis_prefix}logs{rid}:",
            "runtime_dir": root / "runtime",
            "lake_dir": root / "lake",
            "recovery_dir": root / "recovery",
            "registry_dir": root / "models",
            "api_port": free_port(),
            "flow_metrics_port": 0,
            "rate_limit_per_s": 0.0,
            "log_level": "info",
            "log_format": "json",
            "api_access_log": True,  # the API's line of a request is what is searched for
            "log_index_prefix": f"test-{rid}-logs-",
        }
    )
    ensure_topics(settings)
    logs = settings.runtime_dir / "logs"
    logs.mkdir(parents=True)
    # `tillflow up` finds every service answering and starts this run's rsyslog only.
    tillflow_up(settings, timeout_s=300)
    started: list[subprocess.Popen[bytes]] = []
    try:
        with (logs / "flows.log").open("wb") as out:
            [cmd] = process_commands(settings, 1, 1, recovery=False)
            started.append(subprocess.Popen(cmd, env=child_env(settings), stdout=out, stderr=out))
        started.append(start_api(settings, logs / "api.log"))
        yield Shipped(settings, f"req-{rid}")
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            proc.wait(30)
        terminate(rsyslog.files(settings))
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
        with opensearch_client(settings) as client:
            client.indices.delete(index=f"{settings.log_index_prefix}*", ignore_unavailable=True)
            client.indices.delete_index_template(name=f"test-{rid}-logs", ignore=[404])


def _dead_letter(settings: Settings, correlation_id: str) -> dict[str, Any] | None:
    """The dead letter carrying ``correlation_id``, read from this run's topic."""
    config = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": uuid.uuid4().hex,
        "auto.offset.reset": "earliest",
    }
    consumer = Consumer(config)
    consumer.subscribe([settings.topic(DEAD_LETTER)])
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            body: dict[str, Any] = orjson.loads(msg.value())
            if body.get("correlation_id") == correlation_id:
                return body
    finally:
        consumer.close()
    return None


def test_one_request_is_found_in_the_shipped_logs_from_api_to_dead_letter(
    shipped: Shipped,
) -> None:
    s, rid = shipped.settings, shipped.request_id
    assert running_pid(rsyslog.files(s)) is not None, "rsyslogd is not running"
    api = f"http://127.0.0.1:{s.api_port}"
    event = {
        "event_id": f"logs-{rid}",
        "event_time": datetime.now(UTC).isoformat(),
        "order_id": "o-1",
        "user_id": "u-1",
        "store_id": "s-1",
        "lines": [],
    }
    with pytest.raises(urllib.error.HTTPError, match="422"):  # refused at the door, logged
        post_json(f"{api}/events/orders", event, {"X-Request-ID": rid, **producer_headers(s)})
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap})
    producer.produce(
        s.topic(ORDERS),
        value=b'{"order_id": "o-1", "lines": [',
        headers=[(CORRELATION_ID, rid.encode())],
    )
    assert producer.flush(30) == 0
    letter = _dead_letter(s, rid)
    flow_log = (s.runtime_dir / "logs" / "flows.log").read_text()[-3000:]
    assert letter is not None, f"the flow did not dead-letter the message:\n{flow_log}"
    assert letter["topic"] == "orders"

    query = f'request_id:"{rid}" OR correlation_id:"{rid}"'
    hits = _until_found(s, query, lambda h: {x.get("process") for x in h} >= {"api", "flows"})
    by_process = {h["process"]: h for h in hits}
    assert set(by_process) == {"api", "flows"}, hits
    api_line, flow_line = by_process["api"], by_process["flows"]
    assert api_line["request_id"] == rid
    assert api_line["path"] == "/events/orders"
    assert int(api_line["status"]) == 422
    assert flow_line["event"] == "dead-lettered"
    assert flow_line["correlation_id"] == rid
    assert flow_line["level"] == "warning"
    assert flow_line["topic"] == "orders"
    assert "shipped_at" in flow_line
    assert "timestamp" in flow_line


def test_the_logs_panel_query_finds_warnings(shipped: Shipped) -> None:
    """The Grafana logs panel's Lucene query, against what was shipped."""
    from observability.dashboards import SERVING

    [panel] = [p for p in SERVING.panels if p.kind == "logs"]
    hits = _until_found(shipped.settings, panel.queries[0].expr, lambda h: len(h) > 0)
    assert hits
    assert {h["level"] for h in hits} <= {"warning", "error"}


def test_old_log_indices_are_deleted(shipped: Shipped) -> None:
    from search.logs import log_index, prune_log_indices

    s = shipped.settings
    today = datetime.now(UTC).date()
    old = log_index(s.log_index_prefix, today.replace(year=today.year - 1))
    current = log_index(s.log_index_prefix, today)
    with opensearch_client(s) as client:
        client.indices.create(index=old)
        if not client.indices.exists(index=current):
            client.indices.create(index=current)
        deleted = prune_log_indices(client, s, today)
        assert deleted == [old]
        assert not client.indices.exists(index=old)
        assert client.indices.exists(index=current)
