"""The simulator against the real stack: it fills the topics and reads prices from Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import redis

from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS, ORDERS, Topic
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from simulator.shop import Shop

pytestmark = pytest.mark.integration

CONFIG = ShopConfig(seed=9, products=30, shoppers=400, sessions_per_day=20_000, competitors=2)


async def test_simulator_fills_every_input_topic_with_valid_events(
    stack: Settings,
    tmp_path: Path,
    end_offsets: Callable[[Topic], int],
    consume: Callable[..., list[tuple[bytes, dict[str, object]]]],
) -> None:
    before = {t.name: end_offsets(t) for t in INPUT_TOPICS}
    truth = tmp_path / "truth.json"
    report = await run_shop(stack, CONFIG, RunOptions(days=0.5, rate=0, ground_truth=truth))
    assert report.events == sum(report.per_topic.values()) > 1_000
    for topic in INPUT_TOPICS:
        assert end_offsets(topic) - before[topic.name] == report.per_topic[topic.name]
    for key, value in consume(ORDERS, 20):
        order = ORDERS.model.model_validate(value)
        assert key == ORDERS.key_of(order)
    data = orjson.loads(truth.read_bytes())
    assert len(data["products"]) == 30
    assert len(data["shoppers"]) == 400
    assert all(-3.0 <= p["elasticity"] <= -0.5 for p in data["products"])
    assert sum(len(v) for v in data["purchases"].values()) > 0
    assert data["stats"]["events"] == report.per_topic


async def test_simulator_sells_at_the_price_published_in_redis(
    stack: Settings,
    redis_client: redis.Redis,
    consume: Callable[..., list[tuple[bytes, dict[str, object]]]],
) -> None:
    shop = Shop(CONFIG)
    published = {p.sku: f"{round(p.list_price * 0.8, 2):.2f}" for p in shop.products[:15]}
    redis_client.hset(stack.keys.current_prices, mapping=published)
    try:
        other = stack.model_copy(update={"topic_prefix": stack.topic_prefix + "priced."})
        from infra.stack.topics import delete_topics, ensure_topics

        ensure_topics(other)
        try:
            await run_shop(other, CONFIG, RunOptions(days=0.25))
            seen: dict[str, set[float]] = {}
            from confluent_kafka import Consumer

            c = Consumer(
                {
                    "bootstrap.servers": other.kafka_bootstrap,
                    "group.id": "price-check",
                    "auto.offset.reset": "earliest",
                }
            )
            c.subscribe([other.topic(ORDERS)])
            empty = 0
            while empty < 6:
                msg = c.poll(0.5)
                if msg is None:
                    empty += 1
                    continue
                for line in orjson.loads(msg.value())["lines"]:
                    seen.setdefault(line["sku"], set()).add(line["unit_price"])
            c.close()
        finally:
            delete_topics(other, [other.topic(t) for t in INPUT_TOPICS])
    finally:
        redis_client.delete(stack.keys.current_prices)
    list_prices = {p.sku: p.list_price for p in shop.products}
    assert seen
    for sku, prices in seen.items():
        expected = float(published[sku]) if sku in published else list_prices[sku]
        assert prices == {expected}, sku


async def test_kcat_reads_back_valid_events(stack: Settings) -> None:
    """The events the simulator writes are readable by a plain Kafka tool (kcat)."""
    import shutil
    import subprocess

    kcat = shutil.which("kcat")
    assert kcat is not None, "kcat (Debian package) is installed by `make setup`"
    other = stack.model_copy(update={"topic_prefix": stack.topic_prefix + "kcat."})
    from infra.stack.topics import delete_topics, ensure_topics

    ensure_topics(other, INPUT_TOPICS)
    try:
        report = await run_shop(other, CONFIG, RunOptions(days=0.1, rate=2_000))
        for topic in INPUT_TOPICS:
            result = subprocess.run(  # noqa: ASYNC221  (the test waits on purpose)
                [
                    kcat,
                    "-b",
                    other.kafka_bootstrap,
                    "-C",
                    "-t",
                    other.topic(topic),
                    "-e",
                    "-q",
                    "-f",
                    "%k\\t%s\\n",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            lines = result.stdout.splitlines()
            assert len(lines) == report.per_topic[topic.name]
            for line in lines:
                key, value = line.split("\t", 1)
                event = topic.model.model_validate_json(value)
                assert topic.key_of(event) == key.encode()
    finally:
        delete_topics(other, [other.topic(t) for t in INPUT_TOPICS])
