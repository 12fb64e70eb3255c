"""The tillflow dataflow, top-down: Kafka in → validate → lake, features, learners → sinks.

::

    kafka-in ─ parse ─┬─ invalid ─▶ dead-letter topic
                      └─ valid ─┬─ per (topic, partition) batches ─▶ Delta bronze
                                └─ route (plain signals) ─ dedupe
                                     ├─ per category: each sku's features, elasticity, price
                                     │     ─▶ Feast + pricing state, price-updates, pub/sub
                                     └─ per shopper: features, interests, recent items
                                           ─▶ Feast, recommendations, pub/sub
                                           └─ item pairs ─▶ co-occurrence ─▶ Redis

Every keyed step runs through one adapter (:class:`flows.keyed.KeyedState`) and emits frozen
values (:mod:`flows.records`), once per key and batch where the latest is all a sink needs
(feature rows, a shopper's lists, neighbour lists); the sinks only write what they receive.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSourceMessage
from bytewax.dataflow import Dataflow

from flows.dedupe import SeenIds, dedupe_key
from flows.kafka_in import TolerantKafkaSource
from flows.keyed import KeyedSnapshot, KeyedState
from flows.metrics import flow_metrics
from flows.parse import dead_letter, encode_dead_letter, parse_message, received_at
from flows.records import Accepted, LakeRow, Rejected
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
    category_signals,
    coalesce_pairs,
    rejoined,
    sharing,
)
from online_models.pooling import ShopPrior
from schemas.catalogue import CatalogueItem
from schemas.headers import correlation_headers
from schemas.settings import Settings
from schemas.topics import DEAD_LETTER, LAKE_TOPICS, RECOMMENDATIONS_SERVED

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
    )
    messages = op.input("kafka-in", flow, source)

    policy = settings.event_time_policy()

    def parse(m: KafkaSourceMessage[bytes | None, bytes | None]) -> Accepted | Rejected:
        return parse_message(
            topics,
            m.topic or "",
            m.partition or 0,
            m.offset or 0,
            m.key,
            m.value,
            m.headers,
            policy=policy,
            received=received_at(m.timestamp),
        )

    parsed = op.map("parse", messages, parse)
    op.inspect("metrics-parsed", parsed, metrics.on_parsed)
    checked = op.branch("valid?", parsed, lambda r: isinstance(r, Accepted))
    valid: Any = checked.trues
    invalid: Any = checked.falses

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
    rows = op.map("lake-row", valid, LakeRow.of)
    by_partition = op.key_on("lake-key", rows, lambda r: f"{r.topic}:{r.partition}")
    batches = op.collect(
        "lake-batch",
        by_partition,
        timeout=timedelta(seconds=settings.lake_flush_s),
        max_size=settings.lake_batch_rows,
    )
    op.output("bronze", batches, BronzeSink(settings.lake_dir))

    # -- dedupe by event_id within a bounded horizon (served lists are only kept) --------
    served = RECOMMENDATIONS_SERVED.name
    routed = op.filter_map("route", valid, lambda r: None if r.topic == served else Routed.of(r))
    deduped = op.stateful(
        "dedupe",
        op.key_on("dedupe-key", routed, lambda r: dedupe_key(r.event_id, r.t)),
        lambda resume: SeenIds(settings.dedupe_horizon_s, resume),
    )
    unique = op.filter_map("unique", deduped, lambda kv: kv[1])
    op.inspect("metrics-unique", unique, metrics.on_unique)  # observability hook: revenue
    duplicates = op.filter_map(
        "duplicates", deduped, lambda kv: ("duplicates", 1) if kv[1] is None else None
    )

    # -- products missing from the catalogue: counted; features only, never priced -------
    unknown = op.filter_map(
        "unknown-products",
        unique,
        lambda r: ("unknown_products", 1) if any(k not in catalogue for k, _ in r.sku) else None,
    )

    # -- per product, keyed by category: windowed features, elasticity, dynamic price ----
    # (a category's products share an elasticity prior and a demand pattern, and any event
    # of the category lets time-due products be re-priced); a category idle for
    # TILLFLOW_PRODUCT_IDLE_S is forgotten, as is a product outside the catalogue (its own key).
    # The categories of a process share the level above them (the shop's mean elasticity):
    # rebuilt from the categories' own evidence as they resume, it has no state of its own.
    shop_level = ShopPrior()

    def category_state(resume: KeyedSnapshot | None) -> KeyedState[Any, Any, Any]:
        if resume is not None and isinstance(resume.state, CategoryState):
            rejoined(resume.state, shop_level)
        return KeyedState(
            lambda _key: sharing(shop_level),
            lambda state, items: state.apply_batch(items, catalogue),
            resume,
            idle_s=settings.product_idle_s,
            when=lambda item: item[1].t,
        )

    sku_out = op.stateful_batch(
        "sku-state",
        op.flat_map("sku-signals", unique, lambda r: category_signals(r, categories)),
        category_state,
    )
    products = op.map("sku-output", sku_out, lambda kv: kv[1])

    # -- per shopper: features, recent items, co-interaction pairs -----------------------
    # One output per shopper and batch: its pairs, features and recommendation lists.
    k = settings.recommendations_k
    shopper_out = op.stateful_batch(
        "shopper-state",
        op.filter_map("user-signals", unique, lambda r: r.user),
        lambda resume: KeyedState(
            ShopperState,
            lambda state, signals: state.apply_batch(signals, categories, k),
            resume,
            idle_s=settings.shopper_idle_s,
            when=lambda s: s.t,
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
    features = op.merge(
        "features",
        op.flat_map("sku-features", products, lambda o: o.features),
        op.map("shopper-features", shoppers, lambda o: o.features),
    )
    op.output("features-redis", features, ServingSink(FeatureWriter, settings))
    op.output(
        "prices",
        op.flat_map("price-changes", products, lambda o: o.changes),
        ServingSink(PriceWriter, settings),
    )
    op.output(
        "recommendations",
        op.map("shopper-lists", shoppers, lambda o: o.lists),
        ServingSink(RecommendationWriter, settings),
    )
    graph = op.merge(
        "item-graph",
        neighbours,
        op.flat_map("popularity", products, lambda o: o.popularity),
    )
    op.output("item-graph-redis", graph, ServingSink(ItemGraphWriter, settings))
    stats = op.merge(
        "stats",
        duplicates,
        unknown,
        op.map("dead-lettered", invalid, lambda r: (f"dead_lettered:{r.topic}", 1)),
        op.flat_map("drift", products, lambda o: o.drift),
    )
    op.output("stats-redis", stats, ServingSink(StatsWriter, settings))
    return flow
