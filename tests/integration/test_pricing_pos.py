"""A point-of-sale-only shop through the real Kafka, dataflow and Redis: till orders (no views,
no carts), the shop's own prices varying by store week, and the catalogue loaded. The flow
must learn every product's elasticity from sales over time and publish prices."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from bytewax.testing import run_main
from confluent_kafka import Consumer, Producer, TopicPartition

from flows.catalogue import load_catalogue, store_catalogue
from flows.dataflow import build_flow
from infra.stack.topics import delete_topics, ensure_topics
from schemas.events import PriceUpdate
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, PRICE_UPDATES, USER_ACTIVITY
from simulator.config import ShopConfig
from simulator.shop import DAY, Shop

pytestmark = pytest.mark.integration

CONFIG = ShopConfig(
    seed=11,
    channels="pos",
    products=12,
    categories=2,
    shoppers=400,
    stores=2,
    till_visits_per_day=4_000,
    competitors=1,
    competitor_updates_per_day=1,
)
DAYS = 6
BASE_PRIOR = -1.5


@pytest.fixture(scope="module")
def pos_run(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Shop, dict[str, int]]]:
    rid = uuid.uuid4().hex[:6]
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}pos{rid}.",
            "redis_prefix": f"{stack.redis_prefix}pos{rid}:",
            "lake_dir": Path(tmp_path_factory.mktemp("lake")),
        }
    )
    ensure_topics(settings)
    shop = Shop(CONFIG)
    store_catalogue(settings, shop.catalogue())
    rng = random.Random(5)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20})
    counts: dict[str, int] = {}
    period = -1
    for e in shop.events(until=shop.start + DAYS * DAY):
        now = int((e.time - shop.start) // (11 * 3600))
        if now != period:  # the retailer re-prices every 11 hours: ±20 % around list
            period = now
            for p in shop.products:
                shop.prices.set(p.index, round(p.list_price * math.exp(rng.uniform(-0.2, 0.2)), 2))
        producer.produce(settings.topic(e.topic), value=orjson.dumps(e.payload), key=e.key)
        counts[e.topic.name] = counts.get(e.topic.name, 0) + 1
        producer.poll(0)
    producer.flush(60)
    run_main(build_flow(settings, load_catalogue(settings), tail=False))
    yield settings, shop, counts
    delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
    client = redis.Redis.from_url(settings.redis_url)
    keys = list(client.scan_iter(f"{settings.redis_prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_the_stream_is_point_of_sale_only(pos_run: tuple[Settings, Shop, dict[str, int]]) -> None:
    _, _, counts = pos_run
    assert counts.get(USER_ACTIVITY.name, 0) == 0
    assert counts["orders"] > 1_000


def test_elasticities_are_learned_from_sales_and_time(
    pos_run: tuple[Settings, Shop, dict[str, int]],
) -> None:
    settings, shop, _ = pos_run
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    learned = {p.sku: client.hgetall(settings.keys.sku_features(p.sku)) for p in shop.products}
    client.close()
    errors, prior_errors = [], []
    for p in shop.products:
        state = learned[p.sku]
        assert int(state["observations"]) > 10, p.sku
        assert int(state["evidence_views"]) == 0
        assert float(state["exposure_hours"]) > 24 * DAYS / 2
        assert float(state["evidence_units"]) > 0
        assert float(state["elasticity_std"]) < float(state["elasticity_prior_std"])
        errors.append(abs(float(state["elasticity"]) - p.elasticity))
        prior_errors.append(abs(BASE_PRIOR - p.elasticity))
    assert sum(errors) / len(errors) < 0.75 * sum(prior_errors) / len(prior_errors)


def _published(settings: Settings) -> list[PriceUpdate]:
    """Every message of this run's price-updates topic, read up to its end offsets."""
    name = settings.topic(PRICE_UPDATES)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(name, timeout=10).topics[name].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(name, p, 0) for p in partitions])
        read = dict.fromkeys(partitions, 0)
        out = []
        idle = 0
        while any(read[p] < ends[p] for p in partitions) and idle < 60:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                idle += 1
                continue
            idle = 0
            read[msg.partition()] = msg.offset() + 1
            out.append(PriceUpdate.model_validate_json(msg.value()))
        return out
    finally:
        consumer.close()


def test_prices_are_published_with_their_reasons(
    pos_run: tuple[Settings, Shop, dict[str, int]],
) -> None:
    settings, shop, _ = pos_run
    updates = _published(settings)
    assert len(updates) >= len(shop.products)
    assert {u.sku for u in updates} == {p.sku for p in shop.products}
    for u in updates:
        assert "units" in u.reason
        assert "exposure h" in u.reason
        assert "± " in u.reason
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    current = client.hgetall(settings.keys.current_prices)
    client.close()
    assert set(current) == {p.sku for p in shop.products}
