"""Redis sinks: feature rows, published prices, recommendations, neighbours, counters.

Every write sets absolute values (never increments state that a replay would count twice),
so the at-least-once output of a recovered flow leaves Redis as an uninterrupted run would.
The counters in ``flow:stats`` are the exception and say so: they are operational metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import Producer

from flows.metrics import flow_metrics
from flows.records import FeatureRow
from infra.clients import redis_client
from online_models.pricer import PriceChange
from online_models.recommender import recommend
from schemas.events import PriceUpdate
from schemas.keys import RedisKeys
from schemas.settings import Settings
from schemas.topics import PRICE_UPDATES

T = TypeVar("T")


class ServingSink(DynamicSink[T]):
    """A sink whose writer (one per worker) builds its clients from the settings in build()."""

    def __init__(
        self, writer: Callable[[Settings], StatelessSinkPartition[T]], settings: Settings
    ) -> None:
        self.writer = writer
        self.settings = settings

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[T]:
        return self.writer(self.settings)


def _client(settings: Settings) -> redis.Redis:
    return redis_client(settings, decode_responses=True)


def _encode(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class FeatureWriter(StatelessSinkPartition[FeatureRow]):
    """The latest feature values per product and shopper, as Redis hashes."""

    def __init__(self, settings: Settings) -> None:
        self.keys = settings.keys
        self.redis = _client(settings)
        self.metrics = flow_metrics()

    def write_batch(self, items: list[FeatureRow]) -> None:
        latest: dict[tuple[str, str], FeatureRow] = {}
        for row in items:
            latest[(row.entity, row.key)] = row
        pipe = self.redis.pipeline(transaction=False)
        for (entity, key), row in latest.items():
            name = self.keys.sku_features(key) if entity == "sku" else self.keys.user_features(key)
            values = row.source.values()
            pipe.hset(name, mapping={k: _encode(v) for k, v in values.items()})
            self.metrics.on_features(entity, key, values, row.source)
        pipe.execute()

    def close(self) -> None:
        self.redis.close()


def price_update_event(change: PriceChange) -> PriceUpdate:
    """The contract event of a change; its id is stable, so replays are recognisable."""
    return PriceUpdate.model_validate(
        {
            "event_id": f"price:{change.sku}:{change.sequence}",
            "event_time": datetime.fromtimestamp(change.t, UTC),
            "sku": change.sku,
            "price": f"{change.price:.2f}",
            "previous_price": f"{change.previous_price:.2f}",
            "reason": change.reason,
            "model_version": change.model_version,
        }
    )


class PriceWriter(StatelessSinkPartition[PriceChange]):
    """Every price change: price-updates topic, Redis (current, details, history), pub/sub."""

    def __init__(self, settings: Settings) -> None:
        self.keys: RedisKeys = settings.keys
        self.topic = settings.topic(PRICE_UPDATES)
        self.redis = _client(settings)
        self.producer = Producer(
            {"bootstrap.servers": settings.kafka_bootstrap, "acks": "all",
             "enable.idempotence": True, "linger.ms": 5}
        )  # fmt: skip
        self.metrics = flow_metrics()

    def write_batch(self, items: list[PriceChange]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for change in items:
            event = price_update_event(change)
            value = event.model_dump_json()
            self.producer.produce(self.topic, value=value.encode(), key=change.sku.encode())
            pipe.hset(self.keys.current_prices, change.sku, f"{change.price:.2f}")
            pipe.hset(
                self.keys.price(change.sku),
                mapping={
                    "price": f"{change.price:.2f}",
                    "previous_price": f"{change.previous_price:.2f}",
                    "updated_at": event.event_time.isoformat(),
                    "reason": change.reason,
                    "model_version": change.model_version,
                },
            )
            pipe.zadd(self.keys.price_history(change.sku), {value: change.t})
            pipe.publish(self.keys.price_channel, value)
        pipe.execute()
        self.producer.flush(30)
        self.metrics.on_price_changes(items)

    def close(self) -> None:
        self.producer.flush(30)
        self.redis.close()


ShopperItems = tuple[str, list[str]]  # (user_id, recent items newest first)
Neighbours = tuple[str, list[tuple[str, float]]]  # (sku, [(neighbour, weight), ...])
Popularity = tuple[str, float]  # (sku, decayed interaction count)


class RecommendationWriter(StatelessSinkPartition[ShopperItems]):
    """Re-ranks a shopper's candidates when they act; stores and publishes changed lists."""

    def __init__(self, settings: Settings) -> None:
        self.keys = settings.keys
        self.k = settings.recommendations_k
        self.redis = _client(settings)

    def write_batch(self, items: list[ShopperItems]) -> None:
        latest = dict(items)
        wanted = sorted({sku for recent in latest.values() for sku in recent})
        pipe = self.redis.pipeline(transaction=False)
        for sku in wanted:
            pipe.hgetall(self.keys.neighbours(sku))
        pipe.zrevrange(self.keys.popularity, 0, self.k * 2, withscores=True)
        for user in latest:
            pipe.get(self.keys.recommendations(user))
        answers = pipe.execute()
        neighbours = {
            sku: {k: float(v) for k, v in answers[i].items()} for i, sku in enumerate(wanted)
        }
        popular = [(s, float(v)) for s, v in answers[len(wanted)]]
        previous = answers[len(wanted) + 1 :]
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        pipe = self.redis.pipeline(transaction=False)
        for (user, recent), before in zip(latest.items(), previous, strict=True):
            ranked, source = recommend(recent, neighbours, popular, self.k)
            body = {"items": [{"sku": s, "score": v} for s, v in ranked], "source": source}
            if before is not None and orjson.loads(before).get("items") == body["items"]:
                continue
            payload = orjson.dumps({**body, "user_id": user, "updated_at": now}).decode()
            pipe.set(self.keys.recommendations(user), payload)
            pipe.publish(self.keys.recommendation_channel(user), payload)
        pipe.execute()

    def close(self) -> None:
        self.redis.close()


class ItemGraphWriter(StatelessSinkPartition[Neighbours | Popularity]):
    """Each item's top neighbours (hash) and the popularity list (sorted set)."""

    def __init__(self, settings: Settings) -> None:
        self.keys = settings.keys
        self.redis = _client(settings)

    def write_batch(self, items: list[Neighbours | Popularity]) -> None:
        neighbours: dict[str, list[tuple[str, float]]] = {}
        popularity: dict[str, float] = {}
        for sku, value in items:
            if isinstance(value, list):
                neighbours[sku] = value
            else:
                popularity[sku] = value
        pipe = self.redis.pipeline(transaction=True)
        for sku, top in neighbours.items():
            pipe.delete(self.keys.neighbours(sku))
            if top:
                pipe.hset(self.keys.neighbours(sku), mapping={k: str(v) for k, v in top})
        if popularity:
            pipe.zadd(self.keys.popularity, popularity)
        pipe.execute()

    def close(self) -> None:
        self.redis.close()


Stat = tuple[str, int]  # (counter name, increment)


class StatsWriter(StatelessSinkPartition[Stat | dict[str, Any]]):
    """Operational counters (at-least-once: a replay after a crash may count twice)."""

    def __init__(self, settings: Settings) -> None:
        self.keys = settings.keys
        self.redis = _client(settings)
        self.metrics = flow_metrics()

    def write_batch(self, items: list[Stat | dict[str, Any]]) -> None:
        totals: dict[str, int] = {}
        pipe = self.redis.pipeline(transaction=False)
        for item in items:
            if isinstance(item, dict):  # a drift event
                pipe.xadd(self.keys.drift_events, {k: str(v) for k, v in item.items()})
                name, n = "drift_detections", 1
            else:
                name, n = item
            totals[name] = totals.get(name, 0) + n
        for name, n in totals.items():
            pipe.hincrby(self.keys.flow_stats, name, n)
        pipe.execute()
        self.metrics.on_stats(totals)

    def close(self) -> None:
        self.redis.close()
