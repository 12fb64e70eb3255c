"""Redis sinks: feature rows, published prices, recommendations, neighbours, counters.

Every write sets absolute values (never increments state that a replay would count twice),
so the at-least-once output of a recovered flow leaves Redis as an uninterrupted run would.
The counters in ``flow:stats`` are the exception and say so: they are operational metrics.

Redis stays bounded: a shopper's or a product's keys expire ``TILLFLOW_SHOPPER_IDLE_S`` /
``TILLFLOW_PRODUCT_IDLE_S`` after their last write (the flow drops their state then too);
price histories, popularity lists and the drift stream are trimmed at each write.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import redis
import structlog
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import Producer

from featurestore.layout import sku_layout, user_layout
from flows.metrics import flow_metrics
from flows.records import FeatureRow
from flows.steps import ShopperState
from infra.clients import redis_client
from online_models.pricer import PriceChange
from online_models.recommender import CATEGORY_ITEMS, Scored, recommend
from schemas.events import PriceUpdate
from schemas.features import SKU_FEATURES, stored_in
from schemas.keys import RedisKeys
from schemas.settings import Settings
from schemas.topics import PRICE_UPDATES

T = TypeVar("T")
PUBLISHED_LISTS = 200_000  # per recommendation writer: lists remembered to skip unchanged ones
SINK_RETRIES = 6  # with backoff up to 2 s: rides out ~20 s of a stalled Redis
log = structlog.get_logger(__name__)


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
        return _Logged(step_id, self.writer(self.settings))


class _Logged(StatelessSinkPartition[T]):
    """Logs a writer's error before Bytewax sees it.

    With several processes, Bytewax turns an exception in user code into a timely panic
    ("Send thread panic", "MergeQueue poisoned") and the Python error is lost (bytewax
    issue #318): the log line is the only trace of what went wrong.
    """

    def __init__(self, step_id: str, inner: StatelessSinkPartition[T]) -> None:
        self.step_id = step_id
        self.inner = inner

    def write_batch(self, items: list[T]) -> None:
        try:
            self.inner.write_batch(items)
        except Exception as exc:
            log.error("sink failed", step=self.step_id, error=repr(exc), items=len(items))
            raise

    def close(self) -> None:
        self.inner.close()


def _client(settings: Settings, decode_responses: bool = True) -> redis.Redis:
    """A sink's Redis client: timeouts and dropped connections retried with backoff.

    Every sink write is idempotent (absolute values; the counters of ``flow:stats`` are
    at-least-once anyway), so a retry is safe; on a busy machine a single 2 s socket timeout
    would otherwise stop the flow.
    """
    return redis_client(settings, decode_responses=decode_responses, retries=SINK_RETRIES)


class FeatureWriter(StatelessSinkPartition[FeatureRow]):
    """The latest feature values per product and shopper, one pipeline per batch.

    Model features go to the Feast online store, in Feast's layout (featurestore/layout.py);
    a product's pricing state (``store="redis"`` in schemas.features) to its plain hash.
    """

    def __init__(self, settings: Settings) -> None:
        self.keys = settings.keys
        self.redis = _client(settings, decode_responses=False)
        self.feast = {"sku": sku_layout(settings), "user": user_layout(settings)}
        self.ttl = {"sku": settings.product_ttl_s, "user": settings.shopper_ttl_s}
        self.plain = [f.name for f in stored_in(SKU_FEATURES, "redis")]
        self.metrics = flow_metrics()

    def write_batch(self, items: list[FeatureRow]) -> None:
        latest: dict[tuple[str, str], FeatureRow] = {}
        for row in items:
            latest[(row.entity, row.key)] = row
        pipe = self.redis.pipeline(transaction=False)
        for (entity, key), row in latest.items():
            values = row.source.values()
            layout = self.feast[entity]
            fields = layout.fields(values, row.source.watermark)
            pipe.hset(layout.key(key), mapping=fields)  # type: ignore[arg-type]
            pipe.expire(layout.key(key), self.ttl[entity])
            plain = {name: str(values[name]) for name in self.plain if name in values}
            if entity == "sku" and plain:  # products outside the catalogue have no pricing
                pipe.hset(self.keys.sku_features(key), mapping=plain)
                pipe.expire(self.keys.sku_features(key), self.ttl[entity])
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


def write_price(
    pipe: redis.client.Pipeline, settings: Settings, change: PriceChange, event: PriceUpdate
) -> None:
    """The Redis side of a published price: current price, its details, bounded history."""
    keys, ttl = settings.keys, settings.product_ttl_s
    value = event.model_dump_json()
    pipe.hset(keys.current_prices, change.sku, f"{change.price:.2f}")
    pipe.hset(
        keys.price(change.sku),
        mapping={
            "price": f"{change.price:.2f}",
            "previous_price": f"{change.previous_price:.2f}",
            "updated_at": event.event_time.isoformat(),
            "reason": change.reason,
            "model_version": change.model_version,
        },
    )
    pipe.expire(keys.price(change.sku), ttl)
    history = keys.price_history(change.sku)
    pipe.zadd(history, {value: change.t})
    pipe.zremrangebyrank(history, 0, -settings.price_history_len - 1)  # keep the newest
    pipe.expire(history, ttl)


class PriceWriter(StatelessSinkPartition[PriceChange]):
    """Every price change: price-updates topic, Redis (current, details, history), pub/sub."""

    def __init__(self, settings: Settings) -> None:
        self.keys: RedisKeys = settings.keys
        self.settings = settings
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
            write_price(pipe, self.settings, change, event)
            pipe.publish(self.keys.price_channel, value)
        pipe.execute()
        self.producer.flush(30)
        self.metrics.on_price_changes(items)

    def close(self) -> None:
        self.producer.flush(30)
        self.redis.close()


Shopper = tuple[str, ShopperState]  # (user_id, live state of the shopper)
Neighbours = tuple[str, list[tuple[str, float]]]  # (sku, [(neighbour, weight), ...])
Popularity = tuple[str, tuple[str, float]]  # (sku, (category, decayed interaction count))


class RecommendationWriter(StatelessSinkPartition[Shopper]):
    """Re-ranks a shopper's candidates when they act; stores and publishes changed lists.

    A shopper's items reach the sink of the worker that owns the shopper's state, so each
    writer remembers the lists it published (bounded, least recent first out) to skip
    unchanged ones without reading them back; after a restart or an eviction the list is
    written again, which is harmless (absolute value, one repeated message).
    """

    def __init__(self, settings: Settings, categories: dict[str, str]) -> None:
        self.keys = settings.keys
        self.k = settings.recommendations_k
        self.categories = categories
        self.redis = _client(settings)
        self.ttl = settings.shopper_ttl_s
        self.published: OrderedDict[str, Scored] = OrderedDict()

    def write_batch(self, items: list[Shopper]) -> None:
        profiles = {user: state.profile(self.categories) for user, state in dict(items).items()}
        items_wanted = sorted({sku for p in profiles.values() for sku in p.recent})
        cats_wanted = sorted({cat for p in profiles.values() for cat, _ in p.categories})
        pipe = self.redis.pipeline(transaction=False)
        for sku in items_wanted:
            pipe.hgetall(self.keys.neighbours(sku))
        for cat in cats_wanted:
            pipe.zrevrange(
                self.keys.category_popularity(cat), 0, CATEGORY_ITEMS - 1, withscores=True
            )
        pipe.zrevrange(self.keys.popularity, 0, self.k * 2, withscores=True)
        answers = iter(pipe.execute())
        neighbours = {sku: {k: float(v) for k, v in next(answers).items()} for sku in items_wanted}
        by_category = {cat: [(s, float(v)) for s, v in next(answers)] for cat in cats_wanted}
        popular = [(s, float(v)) for s, v in next(answers)]
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        pipe = self.redis.pipeline(transaction=False)
        published = self.published
        for user, profile in profiles.items():
            ranked, source = recommend(profile, by_category, neighbours, popular, self.k)
            if published.get(user) == ranked:
                pipe.expire(self.keys.recommendations(user), self.ttl)  # still active
                continue
            published[user] = ranked
            published.move_to_end(user)
            listed = [{"sku": s, "score": v} for s, v in ranked]
            body = {"items": listed, "source": source, "user_id": user, "updated_at": now}
            payload = orjson.dumps(body).decode()
            pipe.set(self.keys.recommendations(user), payload, ex=self.ttl)
            pipe.publish(self.keys.recommendation_channel(user), payload)
        while len(published) > PUBLISHED_LISTS:
            published.popitem(last=False)
        pipe.execute()

    def close(self) -> None:
        self.redis.close()


class ItemGraphWriter(StatelessSinkPartition[Neighbours | Popularity]):
    """Each item's top neighbours (hash) and the popularity lists (sorted sets)."""

    def __init__(self, settings: Settings) -> None:
        self.keys = settings.keys
        self.redis = _client(settings)
        self.ttl = settings.product_ttl_s
        self.keep = settings.popularity_len

    def write_batch(self, items: list[Neighbours | Popularity]) -> None:
        neighbours: dict[str, list[tuple[str, float]]] = {}
        popularity: dict[str, float] = {}
        by_category: dict[str, dict[str, float]] = {}
        for sku, value in items:
            if isinstance(value, list):
                neighbours[sku] = value
            else:
                category, score = value
                popularity[sku] = score
                if category:
                    by_category.setdefault(category, {})[sku] = score
        pipe = self.redis.pipeline(transaction=True)
        for sku, top in neighbours.items():
            pipe.delete(self.keys.neighbours(sku))
            if top:
                pipe.hset(self.keys.neighbours(sku), mapping={k: str(v) for k, v in top})
                pipe.expire(self.keys.neighbours(sku), self.ttl)
        lists = {self.keys.category_popularity(c): scores for c, scores in by_category.items()}
        if popularity:
            lists[self.keys.popularity] = popularity
        for key, scores in lists.items():
            pipe.zadd(key, scores)
            pipe.zremrangebyrank(key, 0, -self.keep - 1)  # keep the most popular
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
        self.stream_len = settings.stream_len

    def write_batch(self, items: list[Stat | dict[str, Any]]) -> None:
        totals: dict[str, int] = {}
        pipe = self.redis.pipeline(transaction=False)
        for item in items:
            if isinstance(item, dict):  # a drift event
                fields: dict[Any, Any] = {k: str(v) for k, v in item.items()}
                pipe.xadd(self.keys.drift_events, fields, maxlen=self.stream_len)
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
