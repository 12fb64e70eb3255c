"""The served-list log through the real services: the API serves a list (HTTP and websocket)
→ the ``recommendations-served`` topic on the real Kafka → the dataflow's lake sink → Delta
bronze, where the ranker's training reads it."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from bytewax.testing import run_main
from confluent_kafka import Consumer
from fastapi.testclient import TestClient

from api.main import create_app
from api.metrics import ApiMetrics
from api.served import ServedLog
from batch.lake import read_all
from flows.catalogue import store_catalogue
from flows.dataflow import build_flow
from flows.sinks.serving import ItemGraphWriter, RecommendationWriter
from infra.stack.topics import delete_topics, ensure_topics
from ingest.producer import EventProducer
from schemas.catalogue import CatalogueItem
from schemas.lake import bronze_path
from schemas.served import ServedList
from schemas.serving import Recommendations, RecommendedItem
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, RECOMMENDATIONS_SERVED
from tests.credentials import admin_headers
from tests.flow_processes import isolated_settings
from tests.shoppers import viewed

pytestmark = pytest.mark.integration

CATEGORIES = {"A": "tea", "B": "tea", "C": "coffee", "D": "cake"}
CONSUME_TIMEOUT_S = 60.0  # a failure guard: the test waits for the messages themselves


@pytest.fixture(scope="module")
def shop(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = isolated_settings(stack, "served", Path(tmp_path_factory.mktemp("served")))
    ensure_topics(settings)
    catalogue = [
        CatalogueItem(sku=s, category=c, list_price=5.0, unit_cost=2.0)
        for s, c in CATEGORIES.items()
    ]
    store_catalogue(settings, catalogue)
    graph = ItemGraphWriter(settings)
    graph.write_batch(
        [
            ("A", [("B", 3.0), ("C", 1.0)]),
            ("A", ("tea", 5.0)),
            ("B", ("tea", 4.0)),
            ("C", ("coffee", 9.0)),
            ("D", ("cake", 2.0)),
        ]
    )
    graph.close()
    writer = RecommendationWriter(settings)
    writer.write_batch([viewed("u-1", ["A"], CATEGORIES)])
    writer.close()
    try:
        yield settings
    finally:
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


def _consume(settings: Settings, n: int) -> list[ServedList]:
    """The first ``n`` messages of the served-list topic."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([settings.topic(RECOMMENDATIONS_SERVED)])
    out: list[ServedList] = []
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    try:
        while len(out) < n:
            assert time.monotonic() < deadline, f"{len(out)} of {n} served lists on the topic"
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                out.append(ServedList.model_validate_json(msg.value() or b""))
    finally:
        consumer.close()
    return out


def test_each_served_list_is_logged_and_kept_in_bronze(shop: Settings) -> None:
    with TestClient(create_app(shop), headers=admin_headers(shop)) as client:
        shown = client.get("/recommendations/u-1", params={"list": "discover", "k": 3}).json()
        with client.websocket_connect("/ws/recommendations/u-1?list=again") as ws:
            pushed = orjson.loads(ws.receive_text())
    # What the shopper saw, each item with its source: A's neighbours, then a popular item.
    assert [(i["sku"], i["source"]) for i in shown["items"]] == [
        ("B", "similar"),
        ("C", "similar"),
        ("D", "popular"),
    ]
    assert [(i["sku"], i["source"]) for i in pushed["items"]] == [("A", "again")]

    logged = sorted(_consume(shop, 2), key=lambda e: e.list_name)
    assert [(e.user_id, e.list_name, e.served_by) for e in logged] == [
        ("u-1", "again", "streaming"),
        ("u-1", "discover", "streaming"),
    ]
    assert [(i.sku, i.source, i.score) for i in logged[1].items] == [
        (i["sku"], i["source"], i["score"]) for i in shown["items"]
    ]
    assert [(i.sku, i.source) for i in logged[0].items] == [("A", "again")]

    # The flow keeps the topic in Delta bronze (and learns nothing from it).
    run_main(build_flow(shop, {}, tail=False))
    bronze = read_all(bronze_path(shop.lake_dir, RECOMMENDATIONS_SERVED))
    assert bronze is not None
    kept = [ServedList.model_validate_json(p) for p in bronze.column("payload").to_pylist()]
    assert sorted(kept, key=lambda e: e.list_name) == logged


def test_a_list_the_log_refuses_is_counted_and_the_others_are_logged(
    stack: Settings, tmp_path: Path
) -> None:
    """A served list the log's schema refuses (a score that is not finite) is dropped and
    counted; the lists queued with it still reach the topic, and the log keeps running."""
    settings = isolated_settings(stack, "served-bad", tmp_path)
    ensure_topics(settings)
    metrics = ApiMetrics()

    def shown(user: str, score: float) -> Recommendations:
        item = RecommendedItem(sku="A", score=score, source="popular")
        return Recommendations(
            user_id=user, list_name="discover", items=[item], source="popularity"
        )

    async def scenario() -> tuple[int, int]:
        producer = EventProducer(settings)
        await producer.start()
        served = ServedLog(producer, 10.0, metrics)
        try:
            served.record(shown("u-nan", math.nan))
            served.record(shown("u-1", 0.5))
            first = await served.flush()
            served.record(shown("u-2", 0.25))  # the log still works after the refused list
            return first, await served.flush()
        finally:
            await producer.stop()

    try:
        assert asyncio.run(scenario()) == (1, 1)
        assert [e.user_id for e in _consume(settings, 2)] == ["u-1", "u-2"]
        dropped = {"outcome": "dropped"}
        assert metrics.registry.get_sample_value("tillflow_served_lists_total", dropped) == 1
    finally:
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
