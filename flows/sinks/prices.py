"""Price changes: the price-updates topic (each change exactly once), Redis, pub/sub.

A change is published in three steps, each retried until its service takes it
(flows/sinks/outage.py):

1. Redis: read the last published sequence of the batch's products (and any a crash left
   produced but not recorded, below), and mark the batch pending (the worker's field of
   ``prices:pending`` = now);
2. Kafka: produce the changes not yet published and wait until all are acknowledged
   (flows/sinks/delivery.py);
3. Redis: current price, details and history (one pipeline, which a Redis Cluster spreads
   over the products' masters), then the pub/sub announcements (a second pipeline, so that a
   subscriber reading the product's price on the announcement finds it stored: a cluster runs
   one pipeline's commands on several masters in no fixed order); then, in one transaction,
   the new sequences and the pending mark removed (the bookkeeping keys carry the lineage's
   hash tag, so one slot holds them).

After a crash Bytewax replays the epochs since its last snapshot, and the writer skips
changes at or below a product's published sequence. Sequences and marks are kept per
lineage of the recovery state (flows/sinks/context.py): a flow started from fresh state
counts from 1 again and must not be mistaken for a replay. A crash between steps 2 and 3 leaves
the pending mark: the restarted writers then read the price-updates published since the
earliest mark of any worker (a few messages) and store the sequences they find in Redis
(``prices:produced``) before removing their own mark, so no change is produced twice, however
often the flow is killed before its replay records them and whichever worker prices a product
after a restart with another number of processes (process 0 also removes the marks of workers
beyond the current count, once it has stored what they left). A crash
within step 3 leaves the mark and the old sequences too: the writer then stores the same
absolute values again, and subscribers may see a change announced twice. Event ids
``price:<sku>:<sequence>`` are stable, so a reader can check it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import structlog
from bytewax.outputs import StatelessSinkPartition
from confluent_kafka import Consumer, TopicPartition

from flows.sinks.context import SinkContext
from flows.sinks.delivery import Delivering, Outgoing, delivering_producer
from flows.sinks.expiry import Expiry
from flows.sinks.outage import RideOut
from flows.sinks.set_aside import encode_each
from infra.clients import SyncPipeline, SyncRedis, queue_publish, redis_client
from online_models.pricer import PriceChange
from schemas.events import PriceUpdate
from schemas.keys import RedisKeys
from schemas.serving import CurrentPrices, PriceDetails
from schemas.settings import Settings
from schemas.topics import PRICE_UPDATES

PENDING_MARGIN_MS = 5_000  # producer and writer clocks are the same host's; margin for safety
log = structlog.get_logger(__name__)


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
    pipe: SyncPipeline, settings: Settings, change: PriceChange, value: str, expire: bool = True
) -> None:
    """The Redis side of a published price (``value``: its price-update JSON): current price,
    its details and its history, which is trimmed to the newest entries; a product's keys
    expire ``TILLFLOW_PRODUCT_IDLE_S`` after its last change (their expiry set when
    ``expire``: a writer sets it again only when due, flows/sinks/expiry.py)."""
    keys, ttl = settings.keys, settings.product_ttl_s
    details = PriceDetails(
        price=change.price,
        previous_price=change.previous_price,
        updated_at=datetime.fromtimestamp(change.t, UTC),
        reason=change.reason,
        model_version=change.model_version,
    ).to_hash()
    pipe.hset(keys.current_prices, mapping=CurrentPrices({change.sku: change.price}).to_hash())
    pipe.hset(keys.price(change.sku), mapping=details)
    history = keys.price_history(change.sku)
    pipe.zadd(history, {value: change.t})
    pipe.zremrangebyrank(history, 0, -settings.price_history_len - 1)  # keep the newest
    if expire:
        pipe.expire(keys.price(change.sku), ttl)
        pipe.expire(history, ttl)


def sequence_of(event_id: str) -> tuple[str, int] | None:
    """The product and sequence of a price-update event id, if it is one.

    >>> sequence_of("price:SKU-00042:17")
    ('SKU-00042', 17)
    >>> sequence_of("3f0c2a4e") is None
    True
    """
    head, _, tail = event_id.rpartition(":")
    if not head.startswith("price:") or not tail.isdigit():
        return None
    return head.removeprefix("price:"), int(tail)


def published_since(bootstrap: str, topic: str, since_ms: int, timeout_s: float) -> dict[str, int]:
    """The highest sequence per product among the price updates produced since ``since_ms``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "tillflow-price-replay",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        parts = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        wanted = [TopicPartition(topic, p, since_ms) for p in parts]
        starts = consumer.offsets_for_times(wanted, timeout=timeout_s)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout_s)[1] for p in parts
        }
        todo = {tp.partition: tp.offset for tp in starts if 0 <= tp.offset < ends[tp.partition]}
        consumer.assign([TopicPartition(topic, p, o) for p, o in todo.items()])
        latest: dict[str, int] = {}
        while todo:
            msg = consumer.poll(timeout_s)
            if msg is None:
                raise TimeoutError(f"reading {topic} since {since_ms} ms stalled")
            if msg.error():
                continue
            found = sequence_of(orjson.loads(msg.value() or b"{}").get("event_id", ""))
            if found is not None:
                latest[found[0]] = max(latest.get(found[0], -1), found[1])
            partition, offset = msg.partition(), msg.offset()
            if partition in todo and offset is not None and offset + 1 >= ends[partition]:
                del todo[partition]
        return latest
    finally:
        consumer.close()


class PriceWriter(StatelessSinkPartition[PriceChange]):
    """Every price change: price-updates topic, Redis (current, details, history), pub/sub."""

    def __init__(
        self,
        settings: Settings,
        ctx: SinkContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        ctx = ctx or SinkContext.standalone(type(self).__name__)
        self.keys: RedisKeys = settings.keys
        self.settings = settings
        self.topic = settings.topic(PRICE_UPDATES)
        self.ctx = ctx
        self.clock = clock
        self.redis: SyncRedis = redis_client(settings, decode_responses=True)
        self.kafka = Delivering(lambda: delivering_producer(settings.kafka_bootstrap))
        self.ride_out = RideOut(ctx.step_id, ctx.metrics)
        self.expiry = Expiry(settings.product_ttl_s)
        self.ride_out(self._learn_unfinished)

    def write_batch(self, items: list[PriceChange]) -> None:
        encoded = encode_each(
            self.ctx.step_id,
            self.ctx.metrics,
            items,
            lambda c: price_update_event(c).model_dump_json(),
            key=lambda c: c.sku,
        )
        if not encoded:
            return
        skus = sorted({c.sku for c, _ in encoded})
        stored, produced = self.ride_out(lambda: self._begin(skus))
        known = {s: max(stored.get(s, -1), produced.get(s, -1)) for s in skus}
        fresh = [(c, v) for c, v in encoded if c.sequence > known[c.sku]]
        self.kafka.produce([Outgoing(self.topic, c.sku.encode(), v.encode()) for c, v in fresh])
        self.ride_out(self.kafka.deliver)
        unrecorded = [(c, v) for c, v in encoded if c.sequence > stored.get(c.sku, -1)]
        recorded = {c.sku: c.sequence for c, _ in unrecorded}  # in order: a product's last wins
        settled = [
            s for s, q in produced.items() if max(recorded.get(s, -1), stored.get(s, -1)) >= q
        ]
        expire = {sku: self.expiry.due(sku) for sku in recorded}
        self.ride_out(lambda: self._record(unrecorded, expire, settled))
        self.ctx.metrics.on_price_changes([c for c, _ in fresh])

    def _learn_unfinished(self) -> None:
        """Store in Redis what unfinished batches of any worker produced and Redis does not
        record (module doc), then remove this worker's mark (and, on worker 0, those of
        workers no longer running)."""
        lineage, worker = self.ctx.lineage, self.ctx.worker
        marks: dict[str, str] = self.redis.hgetall(self.keys.price_pending(lineage))  # type: ignore[assignment]
        if not marks:
            return
        since = min(int(t) for t in marks.values()) - PENDING_MARGIN_MS
        learned = published_since(
            self.settings.kafka_bootstrap, self.topic, since, self.settings.kafka_timeout_s
        )
        if learned:
            skus = sorted(learned)
            stored = _known(skus, self.redis.hmget(self.keys.price_sequences(lineage), skus))  # type: ignore[arg-type]
            learned = {s: q for s, q in learned.items() if q > stored.get(s, -1)}
        done = [
            w for w in marks if int(w) == worker or (worker == 0 and int(w) >= self.ctx.processes)
        ]
        pipe = self.redis.pipeline(transaction=True)
        if learned:
            pipe.hset(
                self.keys.price_produced(lineage),
                mapping={s: str(q) for s, q in learned.items()},
            )
        if done:
            pipe.hdel(self.keys.price_pending(lineage), *done)
        pipe.execute()
        log.info(
            "price updates of unfinished batches found",
            worker=worker,
            marks=sorted(marks),
            products=len(learned),
        )

    def _begin(self, skus: list[str]) -> tuple[dict[str, int], dict[str, int]]:
        """The sequences Redis records for ``skus`` and those a crash left produced but not
        recorded; the batch marked pending."""
        lineage = self.ctx.lineage
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.price_sequences(lineage), skus)
        pipe.hmget(self.keys.price_produced(lineage), skus)
        pipe.hset(
            self.keys.price_pending(lineage), str(self.ctx.worker), str(int(self.clock() * 1000))
        )
        stored, produced, _ = pipe.execute()
        return _known(skus, stored), _known(skus, produced)

    def _record(
        self, changes: list[tuple[PriceChange, str]], expire: dict[str, bool], settled: list[str]
    ) -> None:
        """The prices first, then the bookkeeping that says they are stored (module doc): the
        new sequences, the ``settled`` products' entries of what a crash left produced, and
        the pending mark; the expiry of a product's keys set with its last change in the
        batch, when ``expire`` says it is due."""
        pipe = self.redis.pipeline(transaction=False)
        last = {c.sku: i for i, (c, _) in enumerate(changes)}
        for i, (change, value) in enumerate(changes):
            due = expire[change.sku] and last[change.sku] == i
            write_price(pipe, self.settings, change, value, expire=due)
        pipe.execute()
        announce = self.redis.pipeline(transaction=False)
        for _, value in changes:
            queue_publish(announce, self.keys.price_channel, value)
        announce.execute()
        lineage = self.ctx.lineage
        done = self.redis.pipeline(transaction=True)
        if changes:  # in order, so a product's last change wins
            sequences = {c.sku: str(c.sequence) for c, _ in changes}
            done.hset(self.keys.price_sequences(lineage), mapping=sequences)
        if settled:
            done.hdel(self.keys.price_produced(lineage), *settled)
        done.hdel(self.keys.price_pending(lineage), str(self.ctx.worker))
        done.execute()

    def close(self) -> None:
        self.kafka.close()
        self.redis.close()


def _known(skus: list[str], sequences: list[str | None]) -> dict[str, int]:
    """The sequences Redis answered for ``skus`` (absent ones left out).

    >>> _known(["SKU-1", "SKU-2"], ["4", None])
    {'SKU-1': 4}
    """
    return {s: int(q) for s, q in zip(skus, sequences, strict=True) if q is not None}
