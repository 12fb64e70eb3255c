"""Redis sinks: feature rows, recommendations, neighbours, counters (prices: prices.py).

Each writer writes the frozen values the steps emit (:mod:`flows.records`): it encodes them,
keeps the latest per key when a batch holds several, and never calls into a step's state.

Every write sets absolute values (never increments state that a replay would count twice),
so the at-least-once output of a recovered flow leaves Redis as an uninterrupted run would.
The counters in ``flow:stats`` are the exception and say so: they are operational metrics.

Redis stays bounded: a shopper's or a product's keys expire ``TILLFLOW_SHOPPER_IDLE_S`` /
``TILLFLOW_PRODUCT_IDLE_S`` after their last write (the flow drops their state then too; a
key written often has its expiry set again at most once a minute, flows/sinks/expiry.py);
price histories, popularity lists and the drift stream are trimmed at each write.
Each Redis round trip is retried until Redis takes it (flows/sinks/outage.py), and a value
that cannot be encoded is set aside (flows/sinks/set_aside.py).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson
import structlog
from bytewax.outputs import StatelessSinkPartition

from featurestore.layout import sku_layout, user_layout
from flows.metrics import flow_metrics
from flows.records import Drift, FeatureRow, Neighbours, Popularity, ShopperLists
from flows.sinks.context import SinkContext
from flows.sinks.expiry import Expiry
from flows.sinks.outage import RideOut
from flows.sinks.overlap import OverlappedSink
from flows.sinks.set_aside import encode_each, set_aside
from infra.clients import SyncRedis, queue_eval, queue_publish, redis_client
from schemas.serving import PricingState, StoredShopper
from schemas.settings import Settings

T = TypeVar("T")
# Replaces the hash KEYS[1] by the field/value pairs ARGV[2..] with TTL ARGV[1], or deletes it
# when there are none. One script call is atomic, so a reader never sees a neighbour list empty
# or half-written; it touches one key, so it runs on a Redis Cluster too, where a transaction
# over several products' keys would span slots.
REPLACE_HASH = """
redis.call('DEL', KEYS[1])
if #ARGV > 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
"""
PUBLISHED_LISTS = 200_000  # per recommendation writer: lists remembered to skip unchanged ones
log = structlog.get_logger(__name__)


class WriterFactory(Protocol[T]):
    """A writer class (or a partial of one): settings, and where it runs."""

    def __call__(
        self, settings: Settings, *, ctx: SinkContext | None = None
    ) -> StatelessSinkPartition[T]: ...


class ServingSink(OverlappedSink[T]):
    """A sink whose writer (one per process) builds its clients from the settings; its
    items are sequences of values, written in a thread and joined at each epoch's end
    (flows/sinks/overlap.py)."""

    def __init__(self, writer: WriterFactory[T], settings: Settings) -> None:
        self.writer = writer
        self.settings = settings
        super().__init__(self.writer_for, settings.sink_in_flight)

    def writer_for(self, step_id: str, process: int) -> StatelessSinkPartition[T]:
        """The writer itself, logging its errors: each ``write_batch`` writes before it returns."""
        ctx = SinkContext(step_id, process, flow_metrics(), processes=self.processes)
        return _Logged(step_id, self.writer(self.settings, ctx=ctx))


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


def _client(settings: Settings, decode_responses: bool = True) -> SyncRedis:
    """A sink's Redis client; its callers retry failed round trips (:class:`RideOut`)."""
    return redis_client(settings, decode_responses=decode_responses)


def finite(value: float) -> float:
    """``value``, refused when Redis could not store it as a score.

    >>> finite(1.5)
    1.5
    >>> finite(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: not a finite number: nan
    """
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    return value


class FeatureWriter(StatelessSinkPartition[FeatureRow]):
    """The latest feature values per product and shopper, one pipeline per batch.

    Model features go to the Feast online store, in Feast's layout (featurestore/layout.py);
    a product's pricing state (``store="redis"`` in schemas.features) to its plain hash.
    """

    def __init__(self, settings: Settings, ctx: SinkContext | None = None) -> None:
        ctx = ctx or SinkContext.standalone(type(self).__name__)
        self.keys = settings.keys
        self.redis = _client(settings, decode_responses=False)
        self.feast = {"sku": sku_layout(settings), "user": user_layout(settings)}
        self.ttl = {"sku": settings.product_ttl_s, "user": settings.shopper_ttl_s}
        self.expiry = {entity: Expiry(ttl) for entity, ttl in self.ttl.items()}
        self.ctx = ctx
        self.metrics = ctx.metrics
        self.ride_out = RideOut(ctx.step_id, ctx.metrics)

    def _encode(self, row: FeatureRow) -> tuple[dict[Any, Any], dict[str, str]]:
        fields = self.feast[row.entity].fields(row.values, row.watermark)
        return fields, PricingState.encode(row.values)

    def write_batch(self, items: list[FeatureRow]) -> None:
        latest: dict[tuple[str, str], FeatureRow] = {}
        for row in items:
            latest[(row.entity, row.key)] = row
        encoded = encode_each(
            self.ctx.step_id,
            self.metrics,
            latest.values(),
            self._encode,
            key=lambda r: f"{r.entity}:{r.key}",
        )

        expire = [self.expiry[row.entity].due(row.key) for row, _ in encoded]

        def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for (row, (fields, plain)), due in zip(encoded, expire, strict=True):
                key, ttl = self.feast[row.entity].key(row.key), self.ttl[row.entity]
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
                if due:
                    pipe.expire(key, ttl)
                if row.entity == "sku" and plain:  # products outside the catalogue: no pricing
                    pipe.hset(self.keys.sku_features(row.key), mapping=plain)
                    if due:
                        pipe.expire(self.keys.sku_features(row.key), ttl)
            pipe.execute()

        self.ride_out(write)
        self.metrics.on_features(row for row, _ in encoded)

    def close(self) -> None:
        self.redis.close()


Shown = tuple[Sequence[tuple[str, float]], Sequence[str]]  # (buy-again list, recent items)


class RecommendationWriter(StatelessSinkPartition[ShopperLists]):
    """Stores and publishes what a shopper's lists come from when it changes: their buy-again
    list, recent items, touched items and categories (``schemas.serving.StoredShopper``), as
    the shopper step froze them (:class:`flows.records.ShopperLists`).

    The discover list is built when it is asked for (``api/discover.py``), from the item
    neighbours published at that moment: the flow does no Redis read per shopper, and a
    list is never ranked on neighbours older than the request.
    A shopper's items reach the sink of the worker that owns the shopper's state, so each
    writer remembers what it published (bounded, least recent first out) to skip unchanged
    shoppers without reading them back; after a restart or an eviction the value is written
    again, which is harmless (absolute value, one repeated message).
    """

    def __init__(self, settings: Settings, ctx: SinkContext | None = None) -> None:
        ctx = ctx or SinkContext.standalone(type(self).__name__)
        self.keys = settings.keys
        self.redis = _client(settings)
        self.ttl = settings.shopper_ttl_s
        self.expiry = Expiry(self.ttl)
        self.published: OrderedDict[str, Shown] = OrderedDict()
        self.ride_out = RideOut(ctx.step_id, ctx.metrics)

    def write_batch(self, items: list[ShopperLists]) -> None:
        now = datetime.now(UTC)
        published = self.published
        changed: dict[str, tuple[Shown, str]] = {}
        still_active: list[str] = []
        for user, lists in {lists.user: lists for lists in items}.items():
            shown = (lists.again, lists.recent)
            if published.get(user) == shown:
                if self.expiry.due(user):
                    still_active.append(user)  # unchanged: only its expiry moves on
                continue
            try:
                payload = StoredShopper.encode(
                    user, lists.again, lists.recent, sorted(lists.seen), lists.categories, now
                )
                changed[user] = shown, payload
                self.expiry.mark(user)  # SET ... EX sets it
            except (ValueError, orjson.JSONEncodeError) as exc:
                set_aside(self.ride_out.step_id, self.ride_out.metrics, user, lists, exc)

        def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for user in still_active:
                pipe.expire(self.keys.recommendations(user), self.ttl)
            for user, (_shown, payload) in changed.items():
                pipe.set(self.keys.recommendations(user), payload, ex=self.ttl)
                queue_publish(pipe, self.keys.recommendation_channel(user), payload)
            pipe.execute()

        self.ride_out(write)
        for user, (shown, _payload) in changed.items():
            published[user] = shown
            published.move_to_end(user)
        while len(published) > PUBLISHED_LISTS:
            published.popitem(last=False)

    def close(self) -> None:
        self.redis.close()


class ItemGraphWriter(StatelessSinkPartition[Neighbours | Popularity]):
    """Each item's top neighbours (hash) and the popularity lists (sorted sets)."""

    def __init__(self, settings: Settings, ctx: SinkContext | None = None) -> None:
        ctx = ctx or SinkContext.standalone(type(self).__name__)
        self.keys = settings.keys
        self.redis = _client(settings)
        self.ttl = settings.product_ttl_s
        self.keep = settings.popularity_len
        self.ctx = ctx
        self.ride_out = RideOut(ctx.step_id, ctx.metrics)

    @staticmethod
    def _encode(item: Neighbours | Popularity) -> dict[str, str] | tuple[str, float]:
        _sku, value = item
        if isinstance(value, list):
            return {k: str(finite(v)) for k, v in value}
        category, score = value
        return category, finite(score)

    def write_batch(self, items: list[Neighbours | Popularity]) -> None:
        neighbours: dict[str, dict[str, str]] = {}
        popularity: dict[str, float] = {}
        by_category: dict[str, dict[str, float]] = {}
        for (sku, _), value in encode_each(
            self.ctx.step_id, self.ctx.metrics, items, self._encode, key=lambda i: i[0]
        ):
            if isinstance(value, dict):
                neighbours[sku] = value
            else:
                category, score = value
                popularity[sku] = score
                if category:
                    by_category.setdefault(category, {})[sku] = score

        def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for sku, top in neighbours.items():
                fields = [x for pair in top.items() for x in pair]
                queue_eval(pipe, REPLACE_HASH, self.keys.neighbours(sku), self.ttl, *fields)
            lists = {self.keys.category_popularity(c): v for c, v in by_category.items()}
            if popularity:
                lists[self.keys.popularity] = popularity
            for key, scores in lists.items():
                pipe.zadd(key, scores)
                pipe.zremrangebyrank(key, 0, -self.keep - 1)  # keep the most popular
            pipe.execute()

        self.ride_out(write)

    def close(self) -> None:
        self.redis.close()


Stat = tuple[str, int]  # (counter name, increment)


class StatsWriter(StatelessSinkPartition[Stat | Drift]):
    """Operational counters (at-least-once: a replay after a crash may count twice)."""

    def __init__(self, settings: Settings, ctx: SinkContext | None = None) -> None:
        ctx = ctx or SinkContext.standalone(type(self).__name__)
        self.keys = settings.keys
        self.redis = _client(settings)
        self.metrics = ctx.metrics
        self.ride_out = RideOut(ctx.step_id, ctx.metrics)
        self.stream_len = settings.stream_len

    def write_batch(self, items: list[Stat | Drift]) -> None:
        totals: dict[str, int] = {}
        drift: list[dict[str, str]] = []
        for item in items:
            if isinstance(item, Drift):
                drift.append({k: str(v) for k, v in item._asdict().items()})
                name, n = "drift_detections", 1
            else:
                name, n = item
            totals[name] = totals.get(name, 0) + n

        def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for event in drift:
                pipe.xadd(self.keys.drift_events, event, maxlen=self.stream_len)  # type: ignore[arg-type]
            for name, n in totals.items():
                pipe.hincrby(self.keys.flow_stats, name, n)
            pipe.execute()

        self.ride_out(write)
        self.metrics.on_stats(totals)

    def close(self) -> None:
        self.redis.close()
