"""Rebuild Redis's serving state from durable sources, without waiting for new events.

Redis is a copy, not the record. When it loses its data (a restart without its append-only
file, a flush, a new instance), :func:`rebuild` writes back

- the catalogue, from its durable file (``TILLFLOW_CATALOGUE_FILE``, :mod:`flows.catalogue`);
- product features, current prices, popularity lists, item neighbours, shopper features and
  recommendation lists, from the flow's newest recovery snapshots (:mod:`flows.recovered`);
- the graph copy (bought-together lists), from Neo4j when it answers.

It fills only what is missing: a key the flow wrote since the loss is newer than any snapshot
and is left alone. The loss is noticed by :class:`RedisGuard`: the marker key
(``RedisKeys.marker``, no TTL) is written after a rebuild; when it is gone, Redis lost its data.
``tillflow redis rebuild`` runs a rebuild on demand; the scheduler checks the marker every
``TILLFLOW_REDIS_CHECK_S`` seconds and rebuilds when it is missing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog

from featurestore.layout import sku_layout, user_layout
from flows.catalogue import copy_to_redis, read_catalogue_file
from flows.recovered import RecoveredState, recovered_state
from flows.sinks.prices import price_update_event, write_price
from flows.sinks.serving import FeatureWriter, ItemGraphWriter, RecommendationWriter
from flows.snapshots import StateFormatMismatch
from flows.steps import ShopperState, SkuState
from infra.clients import SyncRedis, redis_client
from infra.errors import ServiceUnavailable
from schemas.settings import Settings

log = structlog.get_logger(__name__)
BATCH = 1_000


@dataclass
class RebuildReport:
    """How many of each kind of serving value were written back."""

    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # part → why it was not rebuilt

    def add(self, part: str, n: int) -> None:
        self.written[part] = self.written.get(part, 0) + n


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _missing(client: SyncRedis, keys: Sequence[str | bytes]) -> list[bool]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.exists(key)
    return [not found for found in pipe.execute()]


def _catalogue(settings: Settings, client: SyncRedis, report: RebuildReport) -> dict[str, str]:
    items = read_catalogue_file(settings.catalogue_file)
    if not items:
        report.skipped["catalogue"] = f"no catalogue file at {settings.catalogue_file}"
        return {}
    missing = set(items) - set(client.hkeys(settings.keys.catalogue))  # type: ignore[arg-type]
    copy_to_redis(client, settings, [items[sku] for sku in sorted(missing)])
    report.add("catalogue", len(missing))
    return {sku: item.category for sku, item in items.items()}


def _features(
    settings: Settings, client: SyncRedis, state: RecoveredState, report: RebuildReport
) -> None:
    writer = FeatureWriter(settings)
    try:
        states: dict[str, dict[str, SkuState] | dict[str, ShopperState]] = {
            "sku": state.skus,
            "user": state.shoppers,
        }
        for entity, layout in (("sku", sku_layout(settings)), ("user", user_layout(settings))):
            of = states[entity]
            for keys in _chunks(sorted(of)):
                gone = _missing(client, [layout.key(k) for k in keys])
                rows = [of[k].feature_row() for k, lost in zip(keys, gone, strict=True) if lost]
                if rows:
                    writer.write_batch(rows)
                report.add(f"{entity}_features", len(rows))
    finally:
        writer.close()


def _prices(
    settings: Settings, client: SyncRedis, state: RecoveredState, report: RebuildReport
) -> None:
    changes = [s.last_change for s in state.skus.values() if s.last_change is not None]
    current: Any = client.hkeys(settings.keys.current_prices)
    changes = [c for c in changes if c.sku not in set(current)]
    for batch in _chunks(changes):
        pipe = client.pipeline(transaction=False)
        for change in batch:
            write_price(pipe, settings, change, price_update_event(change).model_dump_json())
        pipe.execute()
    report.add("prices", len(changes))


def _item_graph(
    settings: Settings, client: SyncRedis, state: RecoveredState, report: RebuildReport
) -> None:
    keys = settings.keys
    neighbours = sorted(state.neighbours)
    items: list[Any] = []
    for batch in _chunks(neighbours):
        gone = _missing(client, [keys.neighbours(k) for k in batch])
        lost = [k for k, g in zip(batch, gone, strict=True) if g]
        items += [(k, state.neighbours[k].similarity.similar()) for k in lost]
    report.add("neighbours", len(items))
    listed = set(client.zrange(keys.popularity, 0, -1))  # type: ignore[arg-type]
    popular = [
        (sku, (s.category, round(s.popularity, 4)))
        for sku, s in state.skus.items()
        if s.category and s.interactions and sku not in listed
    ]
    report.add("popularity", len(popular))
    writer = ItemGraphWriter(settings)
    try:
        for batch in _chunks(items + popular):
            writer.write_batch(list(batch))
    finally:
        writer.close()


def _recommendations(
    settings: Settings,
    client: SyncRedis,
    state: RecoveredState,
    categories: dict[str, str],
    report: RebuildReport,
) -> None:
    writer = RecommendationWriter(settings)
    k = settings.recommendations_k
    try:
        for users in _chunks(sorted(state.shoppers)):
            gone = _missing(client, [settings.keys.recommendations(u) for u in users])
            lost = [
                state.shoppers[u].lists(categories, k)
                for u, g in zip(users, gone, strict=True)
                if g
            ]
            if lost:
                writer.write_batch(lost)
            report.add("recommendations", len(lost))
    finally:
        writer.close()


def _graph_copy(
    settings: Settings, client: SyncRedis, skus: list[str], report: RebuildReport
) -> None:
    from neo4j.exceptions import DriverError, Neo4jError

    from graph.serving import cache_related
    from infra.clients import neo4j_driver

    if not skus:
        report.skipped["graph"] = "no catalogue"
        return
    try:
        driver = neo4j_driver(settings)
        try:
            report.add("graph_related", cache_related(settings, driver, client, skus))
        finally:
            driver.close()
    except (ServiceUnavailable, DriverError, Neo4jError) as exc:  # optional: Neo4j down
        report.skipped["graph"] = f"Neo4j at {settings.neo4j_uri}: {exc!r}"


def rebuild(settings: Settings, graph: bool = True) -> RebuildReport:
    """Write back every missing serving value; then write the marker."""
    report = RebuildReport()
    client = redis_client(settings, decode_responses=True)
    try:
        categories = _catalogue(settings, client, report)
        try:
            state = recovered_state(settings.recovery_dir)
        except StateFormatMismatch as exc:
            report.skipped["flow state"] = str(exc)
            state = RecoveredState({}, {}, {})
        if not (state.skus or state.shoppers) and "flow state" not in report.skipped:
            report.skipped["flow state"] = f"no recovery snapshots in {settings.recovery_dir}"
        _features(settings, client, state, report)
        _prices(settings, client, state, report)
        _item_graph(settings, client, state, report)
        _recommendations(settings, client, state, categories, report)
        if graph:
            _graph_copy(settings, client, sorted(categories), report)
        client.set(settings.keys.marker, uuid.uuid4().hex)
    finally:
        client.close()
    log.info("redis.rebuilt", written=report.written, skipped=report.skipped)
    return report


class RedisGuard:
    """Notices a Redis that lost its data (the marker is gone) and rebuilds it.

    :meth:`check` is cheap (one EXISTS) and rebuilds at most once per loss; it is called
    every ``TILLFLOW_REDIS_CHECK_S`` seconds by the scheduler's loop.
    """

    def __init__(
        self,
        settings: Settings,
        rebuild: Callable[[Settings], RebuildReport] = rebuild,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.rebuild = rebuild
        self.clock = clock
        self.checked_at: float | None = None
        self.rebuilds = 0

    def check(self) -> RebuildReport | None:
        """Rebuild if the marker is missing and a check is due; the report, if it rebuilt."""
        now = self.clock()
        if self.checked_at is not None and now - self.checked_at < self.settings.redis_check_s:
            return None
        self.checked_at = now
        client = redis_client(self.settings, decode_responses=True)
        try:
            present = client.exists(self.settings.keys.marker)
        finally:
            client.close()
        if present:
            return None
        log.warning("redis.lost_data", marker=self.settings.keys.marker)
        self.rebuilds += 1
        return self.rebuild(self.settings)

    def run(self, stop: threading.Event) -> None:
        """Check every ``TILLFLOW_REDIS_CHECK_S`` until ``stop`` is set; a failed check (Redis
        down) is logged and tried again at the next one."""
        while not stop.is_set():
            try:
                self.check()
            except redis.RedisError as exc:
                log.warning("redis.check_failed", error=str(exc), exc_info=True)
            stop.wait(self.settings.redis_check_s)

    def start(self, stop: threading.Event) -> threading.Thread:
        """:meth:`run` in a daemon thread."""
        thread = threading.Thread(target=self.run, args=(stop,), name="redis-guard", daemon=True)
        thread.start()
        return thread
