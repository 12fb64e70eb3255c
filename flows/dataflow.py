"""The tillflow dataflow, top-down: Kafka in → validate → lake, features, learners → sinks.

::

    kafka-in ─ ingest (validate, bronze row, route) ─┬─ invalid ─▶ dead-letter topic
                      ├─ per (topic, partition) batches ─▶ Delta bronze
                      └─ dedupe ─ fan-out
                           ├─ per category: each sku's features, elasticity, price
                           │     ─▶ Feast + pricing state, price-updates, pub/sub
                           └─ per shopper: features, interests, recent items
                                 ─▶ Feast, recommendations, pub/sub
                                 └─ item pairs ─▶ co-occurrence ─▶ Redis

Values travel grouped per key and batch up to the keyed states (:mod:`flows.ingest`,
:mod:`flows.fanout`): Bytewax's cost is per item and step, and a batch of input messages
crosses the first steps as a few dozen items instead of thousands.

Every keyed step runs through one adapter (:class:`flows.keyed.KeyedState`) and emits frozen
values (:mod:`flows.records`), once per key and batch where the latest is all a sink needs
(feature rows, a shopper's lists, neighbour lists); the sinks only write what they receive.
"""

from __future__ import annotations

import time
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage
from bytewax.dataflow import Dataflow

from flows.buffer import Buffered, RowBuffer
from flows.dedupe import SeenBatches, SeenIds
from flows.fanout import FanOut
from flows.ingest import Ingest
from flows.kafka_in import TolerantKafkaSource
from flows.keyed import KeyedSnapshot, KeyedState
from flows.lake_offsets import KafkaOffsets
from flows.metrics import flow_metrics
from flows.parse import dead_letter, encode_dead_letter
from flows.records import LakeRow, Rejected
from flows.sinks.lake import BronzeSink
from flows.sinks.prices import PriceWriter
from flows.sinks.serving import (
    FeatureWriter,
    ItemGraphWriter,
    RecommendationWriter,
    ServingSink,
    StatsWriter,
)
from flows.steps import (
    CategoryState,
    ItemNeighbours,
    Routed,
    ShopperState,
    coalesce_pairs,
    rejoined,
    sharing,
)
from online_models.pooling import ShopPrior
from schemas.catalogue import CatalogueItem
from schemas.headers import correlation_headers
from schemas.settings import Settings
from schemas.topics import DEAD_LETTER, LAKE_TOPICS

DEAD_LETTER_PRODUCER = {
    "linger.ms": "5",
    "acks": "all",
    "enable.idempotence": "true",
    "message.timeout.ms": "0",
}


def build_flow(
    settings: Settings, catalogue: dict[str, CatalogueItem], tail: bool = True
) -> Dataflow:
    """The whole streaming pipeline. ``tail=False`` stops at the end of the topics."""
    flow = Dataflow("tillflow")
    topics = {settings.topic(t): t for t in LAKE_TOPICS}
    brokers = [settings.kafka_bootstrap]
    categories = {sku: item.category for sku, item in catalogue.items()}

    # -- in: every partition of the input topics and the served-list log; validate ------
    metrics = flow_metrics()  # observability hook: counts, lag, offsets (flows/metrics.py)
    source = TolerantKafkaSource(
        brokers,
        list(topics),
        tail=tail,
        batch_size=settings.kafka_batch,
        on_error=metrics.on_consumer_error,
        max_ahead_s=settings.event_time_skew_s,
        read_ahead_kb=settings.kafka_read_ahead_kb,
    )
    messages = op.input("kafka-in", flow, source)

    # One Python step per input batch: validate each message, count it, make its bronze row
    # and its routed signals, grouped by the key of the step each goes to (flows/ingest.py).
    ingested = op.flat_map_batch(
        "ingest", messages, Ingest(topics, settings.event_time_policy(), metrics.on_parsed)
    )
    invalid = op.flat_map("invalid", ingested, lambda b: b.rejected)

    # -- bad events: dead-letter topic, with the reason ----------------------------------
    def to_dead_letter(r: Rejected) -> KafkaSinkMessage[bytes | None, bytes]:
        value = encode_dead_letter(dead_letter(r, settings.kafka_max_message_bytes))
        headers = correlation_headers(r.correlation_id)
        return KafkaSinkMessage(key=None, value=value, headers=headers)

    op.output(
        "dead-letter",
        op.map("dead-letter-message", invalid, to_dead_letter),
        # Its flush waits for every acknowledgement; with no message timeout a broker away
        # blocks the epoch instead of dropping dead letters after librdkafka's 5 minutes.
        KafkaSink(
            brokers,
            settings.topic(DEAD_LETTER),
            add_config={
                **DEAD_LETTER_PRODUCER,
                "message.max.bytes": str(settings.kafka_max_message_bytes),
            },
        ),
    )

    # -- lake: batches per Kafka partition, appended idempotently to Delta bronze --------
    # A snapshot keeps the buffered rows' Kafka offsets, read again on resume
    # (flows/lake_offsets.py): Kafka holds the rows already.
    lake_rows = KafkaOffsets(
        brokers,
        topics,
        Ingest(topics, settings.event_time_policy()).parse,
        settings.kafka_read_ahead_kb,
    )

    def lake_buffer(resume: Buffered | None) -> RowBuffer[LakeRow]:
        return RowBuffer(lake_rows, settings.lake_flush_s, settings.lake_batch_rows, resume)

    batches = op.stateful_batch(
        "lake-batch", op.flat_map("lake-rows", ingested, lambda b: b.lake), lake_buffer
    )
    op.output("bronze", batches, BronzeSink(settings.lake_dir, settings.sink_in_flight))

    # -- dedupe by event_id within a bounded horizon; then per category and per shopper --
    deduped = op.stateful_batch(
        "dedupe",
        op.flat_map("dedupe-groups", ingested, lambda b: b.events),
        lambda resume: SeenBatches(SeenIds[Routed](settings.dedupe_horizon_s, resume)),
    )
    # observability hook (revenue), repeats and unknown products counted on the way
    fanned = op.flat_map_batch("fan-out", deduped, FanOut(categories, metrics.on_unique))

    # -- per product, keyed by category: windowed features, elasticity, dynamic price ----
    # (a category's products share an elasticity prior and a demand pattern, and any event
    # of the category lets time-due products be re-priced); a category idle for
    # TILLFLOW_PRODUCT_IDLE_S is forgotten, as is a product outside the catalogue (its own key).
    # Products missing from the catalogue are counted; features only, never priced.
    # One output per category and batch: its price changes, drift, popularity, and the
    # feature rows of the products touched since the category's last rows, if due.
    # The categories of a process share the level above them (the shop's mean elasticity):
    # rebuilt from the categories' own evidence as they resume, it has no state of its own.
    shop_level = ShopPrior()
    # A product's feature row at most once per TILLFLOW_FEATURE_ROW_EVERY_MS of wall time,
    # its latest values (the products touched since held in the category's state).
    every_s = settings.feature_row_every_ms / 1000

    def category_state(resume: KeyedSnapshot | None) -> KeyedState[Any, Any, Any]:
        if resume is not None and isinstance(resume.state, CategoryState):
            rejoined(resume.state, shop_level)
        return KeyedState(
            lambda _key: sharing(shop_level),
            lambda state, items: state.apply_batch(items, catalogue, time.time(), every_s),
            resume,
            idle_s=settings.product_idle_s,
            when=lambda item: item[1].t,
            grouped=True,
            held_until=lambda state: state.rows_due(every_s),
            release=CategoryState.held_rows,
        )

    sku_out = op.stateful_batch(
        "sku-state",
        op.flat_map("sku-signals", fanned, lambda f: f.categories),
        category_state,
    )

    # -- per shopper: features, recent items, co-interaction pairs -----------------------
    # One output per shopper and batch: its pairs, features and recommendation lists.
    k = settings.recommendations_k
    shopper_out = op.stateful_batch(
        "shopper-state",
        op.flat_map("user-signals", fanned, lambda f: f.shoppers),
        lambda resume: KeyedState(
            ShopperState,
            lambda state, signals: state.apply_batch(signals, categories, k),
            resume,
            idle_s=settings.shopper_idle_s,
            when=lambda s: s.t,
            grouped=True,
        ),
    )
    shoppers = op.map("shopper-output", shopper_out, lambda kv: kv[1])
    pairs = op.flat_map_batch("co-pairs", shoppers, coalesce_pairs)  # one per item
    neighbours = op.stateful_batch(
        "co-occurrence",
        pairs,
        lambda resume: KeyedState(
            lambda _key: ItemNeighbours(), ItemNeighbours.apply_batch, resume
        ),
    )

    # -- out: the sinks write the values they receive ---------------------------------
    # Each sink's items are (key, values of one step's batch): the writers run in threads of
    # their own, joined at each epoch's end (flows/sinks/overlap.py); the key is not used.
    features = op.merge(
        "features",
        op.map("sku-features", sku_out, lambda kv: (kv[0], kv[1].features)),
        op.map("shopper-features", shopper_out, lambda kv: (kv[0], (kv[1].features,))),
    )
    op.output("features-redis", features, ServingSink(FeatureWriter, settings))
    op.output(
        "prices",
        op.map("price-changes", sku_out, lambda kv: (kv[0], kv[1].changes)),
        ServingSink(PriceWriter, settings),
    )
    op.output(
        "recommendations",
        op.map("shopper-lists", shopper_out, lambda kv: (kv[0], (kv[1].lists,))),
        ServingSink(RecommendationWriter, settings),
    )
    graph = op.merge(
        "item-graph",
        op.map("neighbour-lists", neighbours, lambda kv: (kv[0], (kv,))),
        op.map("popularity", sku_out, lambda kv: (kv[0], kv[1].popularity)),
    )
    op.output("item-graph-redis", graph, ServingSink(ItemGraphWriter, settings))
    stats = op.merge(
        "stats",
        op.map("counts", fanned, lambda f: ("", f.stats)),
        op.map("dead-lettered", invalid, lambda r: ("", ((f"dead_lettered:{r.topic}", 1),))),
        op.map("drift", sku_out, lambda kv: (kv[0], kv[1].drift)),
    )
    op.output("stats-redis", stats, ServingSink(StatsWriter, settings))
    return flow
