"""Keep the product index fresh from the stream, in bulk.

A small Kafka consumer of its own (group ``<prefix>tillflow-search-indexer``) reads
``price-updates`` (the prices tillflow published) and ``inventory`` (units per store), and
every ``popularity_poll_s`` reads the flows' popularity scores and the catalogue from Redis.
Changes are coalesced per product (the latest price wins) and written with one ``_bulk``
request per flush: when ``search_bulk_docs`` products changed, or ``search_flush_s`` after the
first pending change. Offsets are committed only after OpenSearch accepted the batch, so an
outage of OpenSearch delays the index but loses nothing; the flows never wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import OpenSearchException
from pydantic import ValidationError

from infra.clients import redis_client
from online_models.popularity import counts
from schemas.catalogue import CatalogueItem
from schemas.events import InventoryLevel, PriceUpdate
from schemas.settings import Settings
from schemas.topics import INVENTORY, PRICE_UPDATES
from search.client import ensure_product_index, opensearch_client
from search.documents import (
    Action,
    catalogue_actions,
    popularity_actions,
    price_actions,
    stock_actions,
)

log = structlog.get_logger(__name__)

POPULARITY_POLL_S = 2.0
RETRY_S = 1.0


@dataclass
class Pending:
    """Changes not yet written, coalesced per product."""

    prices: dict[str, float] = field(default_factory=dict)
    stock: dict[str, dict[str, int]] = field(default_factory=dict)
    popularity: dict[str, float] = field(default_factory=dict)
    catalogue: dict[str, CatalogueItem] = field(default_factory=dict)
    since: float | None = None  # clock reading of the first pending change

    def __len__(self) -> int:
        return len(self.prices) + len(self.stock) + len(self.popularity) + len(self.catalogue)

    def touch(self, now: float) -> None:
        if self.since is None:
            self.since = now

    def actions(self, index: str) -> list[Action]:
        """Catalogue first, so a product's text lands before or with its first price."""
        return (
            catalogue_actions(index, self.catalogue.values())
            + price_actions(index, self.prices)
            + stock_actions(index, self.stock)
            + popularity_actions(index, self.popularity)
        )


@dataclass
class StockBook:
    """Units per store of every product, as last reported (the index stores their total).

    >>> book = StockBook()
    >>> book.report("A", "s1", 2); book.report("A", "s2", 3)
    {'s1': 2}
    {'s1': 2, 's2': 3}
    """

    stores: dict[str, dict[str, int]] = field(default_factory=dict)

    def report(self, sku: str, store: str, on_hand: int) -> dict[str, int]:
        per_store = self.stores.setdefault(sku, {})
        per_store[store] = on_hand
        return dict(per_store)


class Indexer:
    """The consumer loop; ``run`` returns when ``stop`` is set."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.pending = Pending()
        self.book = StockBook()
        self.popularity: dict[str, float] = {}
        self.catalogue: dict[str, str] = {}  # sku -> its catalogue JSON, as last indexed
        self.indexed = 0  # bulk lines OpenSearch accepted since start
        self.prices: dict[str, float] = {}  # the latest price written per product
        self.on_hand: dict[str, int] = {}  # the latest total units written per product
        self.progress = threading.Condition()  # notified after every accepted bulk request

    def group_id(self) -> str:
        return f"{self.settings.topic_prefix}tillflow-search-indexer"

    def _consumer(self) -> Consumer:
        s = self.settings
        consumer = Consumer(
            {
                "bootstrap.servers": s.kafka_bootstrap,
                "group.id": self.group_id(),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )
        consumer.subscribe([s.topic(PRICE_UPDATES), s.topic(INVENTORY)])
        return consumer

    def _seed_stock(self, client: OpenSearch) -> None:
        """Recover units per store from the index (a restart resumes at committed offsets)."""
        query = {"query": {"exists": {"field": "on_hand"}}, "_source": ["stores"]}
        for hit in helpers.scan(client, index=self.settings.search_index, query=query):
            stores = hit["_source"].get("stores") or {}
            self.book.stores[hit["_id"]] = {k: int(v) for k, v in stores.items()}

    def take(self, message: Message) -> None:
        """Fold one message into the pending changes (unreadable ones are skipped: the flows
        dead-letter them)."""
        topic, value = message.topic(), message.value()
        if value is None:
            return
        try:
            if topic == self.settings.topic(PRICE_UPDATES):
                update = PriceUpdate.model_validate_json(value)
                self.pending.prices[update.sku] = float(update.price)
            else:
                level = InventoryLevel.model_validate_json(value)
                stores = self.book.report(level.sku, level.store_id, level.on_hand)
                self.pending.stock[level.sku] = stores
        except ValidationError:
            log.debug("search.indexer.skipped", topic=topic, offset=message.offset())
            return
        self.pending.touch(self.clock())

    def poll_redis(self) -> None:
        """Popularity counts (``online_models.popularity``: relative to the least popular
        product listed) and catalogue entries that changed since the last poll."""
        keys = self.settings.keys
        client = redis_client(self.settings, decode_responses=True)
        try:
            scores = client.zrange(keys.popularity, 0, -1, withscores=True)
            catalogue: dict[str, str] = client.hgetall(keys.catalogue)  # type: ignore[assignment]
        finally:
            client.close()
        changed = False
        listed = dict(scores)  # type: ignore[arg-type]
        least = min(listed.values(), default=0.0)
        for sku, count in counts(listed, least).items():
            if self.popularity.get(sku) != count:
                self.popularity[sku] = self.pending.popularity[sku] = count
                changed = True
        for sku, raw in catalogue.items():
            if self.catalogue.get(sku) != raw:
                try:
                    self.pending.catalogue[sku] = CatalogueItem.model_validate_json(raw)
                except ValidationError:
                    log.warning("search.indexer.bad_catalogue_entry", sku=sku)
                self.catalogue[sku] = raw
                changed = True
        if changed:
            self.pending.touch(self.clock())

    def due(self) -> bool:
        p = self.pending
        if p.since is None:
            return False
        return len(p) >= self.settings.search_bulk_docs or (
            self.clock() - p.since >= self.settings.search_flush_s
        )

    def flush(self, client: OpenSearch) -> int:
        """Write the pending changes in one bulk request; return how many lines were accepted."""
        actions = self.pending.actions(self.settings.search_index)
        if not actions:
            self.pending = Pending()
            return 0
        response: dict[str, Any] = client.bulk(body=actions)
        failed = [i for i in response["items"] if i["update"].get("error")]
        for item in failed[:5]:
            log.warning(
                "search.indexer.rejected",
                sku=item["update"]["_id"],
                error=item["update"]["error"].get("reason"),
            )
        done = len(actions) // 2 - len(failed)
        with self.progress:
            self.indexed += done
            self.prices.update(self.pending.prices)
            self.on_hand.update({k: sum(v.values()) for k, v in self.pending.stock.items()})
            self.pending = Pending()
            self.progress.notify_all()
        return done

    def wait_for(self, written: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``written()`` holds after a flush (or already does); False on timeout."""
        with self.progress:
            return self.progress.wait_for(written, timeout_s)

    def run(self, stop: threading.Event) -> None:
        client = opensearch_client(self.settings, timeout_s=30.0)
        ensure_product_index(client, self.settings)
        self._seed_stock(client)
        consumer = self._consumer()
        next_poll = self.clock()
        log.info("search.indexer.started", index=self.settings.search_index, group=self.group_id())
        try:
            while not stop.is_set():
                batch = consumer.consume(
                    self.settings.search_bulk_docs, timeout=self.settings.search_flush_s
                )
                for message in batch:
                    if message.error() is None:
                        self.take(message)
                if self.clock() >= next_poll:
                    try:
                        self.poll_redis()
                    except redis.RedisError as exc:  # prices and stock keep flowing meanwhile
                        log.warning("search.indexer.redis_unavailable", error=str(exc)[:200])
                    next_poll = self.clock() + POPULARITY_POLL_S
                if self.due():
                    self._flush_and_commit(client, consumer, stop)
        finally:
            consumer.close()
            client.close()

    def _flush_and_commit(
        self, client: OpenSearch, consumer: Consumer, stop: threading.Event
    ) -> None:
        """Flush until OpenSearch takes the batch (retrying each ``RETRY_S``), then commit."""
        while not stop.is_set():
            try:
                written = self.flush(client)
            except OpenSearchException as exc:
                log.warning("search.indexer.opensearch_unavailable", error=str(exc)[:200])
                stop.wait(RETRY_S)
                continue
            log.debug("search.indexer.flushed", lines=written)
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as exc:  # nothing consumed since the last commit
                if exc.args[0].code() != KafkaError._NO_OFFSET:
                    raise
            return
