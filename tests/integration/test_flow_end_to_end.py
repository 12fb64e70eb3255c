"""The dataflow against the real broker, Redis and Delta: one simulated day, plus bad input.

The simulator fills the input topics; a few malformed messages and re-sent duplicates are
added; the flow runs to the end of the topics (``tail=False``). Every output is then checked
against what was produced.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from bytewax.testing import run_main
from confluent_kafka import Producer
from deltalake import DeltaTable
from feast import FeatureStore

from featurestore.repo import apply, online_features
from flows.catalogue import load_catalogue
from flows.dataflow import build_flow
from infra.clients import redis_client
from infra.stack.topics import delete_topics, ensure_topics
from schemas.events import CompetitorPrice, InventoryLevel, Order, PriceUpdate, UserActivity
from schemas.features import SKU_FEATURES, WINDOWS
from schemas.lake import bronze_path
from schemas.serving import StoredShopper
from schemas.settings import Settings
from schemas.topics import (
    ALL_TOPICS,
    DEAD_LETTER,
    INPUT_TOPICS,
    ORDERS,
    PRICE_UPDATES,
    USER_ACTIVITY,
)
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from simulator.shop import Shop

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

CONFIG = ShopConfig(seed=5, products=40, shoppers=500, sessions_per_day=30_000, competitors=2)
BAD = [
    (USER_ACTIVITY, b"u-1", b"{not json"),
    (USER_ACTIVITY, b"u-1", b'{"event_id": "x", "event_time": "2026-01-05T00:00:00Z"}'),
    (ORDERS, b"o-1", b"\xff\xfe binary"),
    (
        ORDERS,
        b"o-2",
        orjson.dumps(
            {
                "event_id": "y",
                "event_time": "2026-01-05T00:00:00",
                "order_id": "o",
                "user_id": "u",
                "store_id": "s",
                "lines": [{"sku": "a", "quantity": 1, "unit_price": 1}],
            }
        ),
    ),
]


@dataclass
class Run:
    settings: Settings
    produced: dict[str, list[dict[str, Any]]]  # valid events per topic, duplicates included
    duplicates: int
    shop: Shop
    store: FeatureStore  # the Feast repository of this run, applied


@pytest.fixture(scope="module")
def flow_run(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Run:
    rid = uuid.uuid4().hex[:6]
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}flow{rid}.",
            "redis_prefix": f"{stack.redis_prefix}flow{rid}:",
            "lake_dir": Path(tmp_path_factory.mktemp("lake")),
        }
    )
    ensure_topics(settings)
    import asyncio

    asyncio.run(run_shop(settings, CONFIG, RunOptions(days=1.0)))
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for topic, key, value in BAD:
        producer.produce(settings.topic(topic), value=value, key=key)
    # Re-send some valid events: the flow must count them once.
    shop = Shop(CONFIG)
    events = list(shop.events(until=shop.start + 86_400.0))
    resent = [e for e in events if e.topic is USER_ACTIVITY][:25]
    for e in resent:
        producer.produce(settings.topic(e.topic), value=orjson.dumps(e.payload), key=e.key)
    producer.flush(30)
    produced: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in [*events, *resent]:
        produced[e.topic.name].append(e.payload)
    run_main(build_flow(settings, load_catalogue(settings), tail=False))
    yield Run(settings, produced, len(resent), shop, apply(settings))
    delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


def read_topic(settings: Settings, name: str) -> list[dict[str, Any]]:
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    c.subscribe([name])
    out, eofs, empty = [], set(), 0
    while empty < 20:
        msg = c.poll(0.5)
        if msg is None:
            empty += 1
            continue
        if msg.error():
            eofs.add(msg.partition())
            if len(eofs) == 3:
                break
            continue
        out.append(orjson.loads(msg.value()))
    c.close()
    return out


def test_bronze_holds_every_valid_message_once(flow_run: Run) -> None:
    for topic in INPUT_TOPICS:
        table = DeltaTable(str(bronze_path(flow_run.settings.lake_dir, topic))).to_pyarrow_table()
        expected = flow_run.produced[topic.name]
        assert table.num_rows == len(expected), topic.name
        ids = sorted(table.column("event_id").to_pylist())
        assert ids == sorted(p["event_id"] for p in expected)
        positions = set(
            zip(
                table.column("kafka_partition").to_pylist(),
                table.column("kafka_offset").to_pylist(),
                strict=True,
            )
        )
        assert len(positions) == table.num_rows, "a (partition, offset) appears twice"
        assert str(table.schema.field("event_time").type) == "timestamp[us, tz=UTC]"
        assert set(table.column("date").to_pylist()) <= {"2026-01-05", "2026-01-06"}


def test_invalid_messages_reach_the_dead_letter_topic_with_the_reason(flow_run: Run) -> None:
    letters = read_topic(flow_run.settings, flow_run.settings.topic(DEAD_LETTER))
    assert len(letters) == len(BAD)
    by_raw = {}
    for letter in letters:
        DEAD_LETTER.model.model_validate(letter)
        raw = (
            letter["raw"].encode()
            if letter["raw_encoding"] == "utf-8"
            else base64.b64decode(letter["raw"])
        )
        by_raw[raw] = letter
    for topic, _key, value in BAD:
        letter = by_raw[value]
        assert letter["topic"] == topic.name
        assert letter["offset"] >= 0
        assert letter["error"]
    assert "not valid JSON" in by_raw[b"{not json"]["error"]
    assert by_raw[b"\xff\xfe binary"]["raw_encoding"] == "base64"
    assert "timezone" in by_raw[BAD[3][2]]["error"]


def test_duplicates_and_dead_letters_are_counted(flow_run: Run) -> None:
    client = redis_client(flow_run.settings, decode_responses=True)
    stats = client.hgetall(flow_run.settings.keys.flow_stats)
    client.close()
    assert int(stats["duplicates"]) == flow_run.duplicates
    assert int(stats["dead_lettered:user-activity"]) == 2
    assert int(stats["dead_lettered:orders"]) == 2


def _sku_signals(run: Run) -> dict[str, list[tuple[float, str, dict[str, Any]]]]:
    signals: dict[str, list[tuple[float, str, dict[str, Any]]]] = defaultdict(list)
    seen: set[str] = set()
    for name, payloads in run.produced.items():
        for p in payloads:
            if p["event_id"] in seen:
                continue
            seen.add(p["event_id"])
            if name == "user-activity":
                e = UserActivity.model_validate(p)
                if e.sku and e.action.value in ("view", "add_to_cart", "remove_from_cart"):
                    signals[e.sku].append((e.event_time.timestamp(), e.action.value, {}))
            elif name == "orders":
                o = Order.model_validate(p)
                for line in o.lines:
                    signals[line.sku].append(
                        (
                            o.event_time.timestamp(),
                            "sale",
                            {"q": line.quantity, "p": float(line.unit_price)},
                        )
                    )
            elif name == "inventory":
                i = InventoryLevel.model_validate(p)
                signals[i.sku].append(
                    (i.event_time.timestamp(), "stock", {"store": i.store_id, "on_hand": i.on_hand})
                )
            else:
                c = CompetitorPrice.model_validate(p)
                signals[c.sku].append(
                    (
                        c.event_time.timestamp(),
                        "competitor",
                        {"who": c.competitor, "price": float(c.price)},
                    )
                )
    return signals


def test_sku_features_read_through_feast_match_the_events(flow_run: Run) -> None:
    signals_by_sku = _sku_signals(flow_run)
    features = online_features(flow_run.store, "sku", sorted(signals_by_sku))
    checked = 0
    for sku, signals in signals_by_sku.items():
        got = features[sku]
        watermark = max(t for t, _, _ in signals)
        for w in WINDOWS:
            head = math.floor(watermark / w.bucket_s)
            live = [s for s in signals if math.floor(s[0] / w.bucket_s) > head - w.buckets]
            views = sum(1 for _, kind, _ in live if kind == "view")
            units = sum(d["q"] for _, kind, d in live if kind == "sale")
            assert int(got[f"views_{w.name}"]) == views, (sku, w.name)
            assert int(got[f"units_{w.name}"]) == units, (sku, w.name)
        stock: dict[str, tuple[float, int]] = {}
        lowest: dict[str, tuple[float, float]] = {}
        for t, kind, d in sorted(signals, key=lambda s: s[0]):
            if kind == "stock":
                stock[d["store"]] = (t, d["on_hand"])
            elif kind == "competitor":
                lowest[d["who"]] = (t, d["price"])
        assert int(got["on_hand"]) == sum(v for _, v in stock.values())
        assert float(got["min_competitor_price"]) == min(p for _, p in lowest.values())
        assert got["event_time"] == _iso(watermark)
        checked += 1
    assert checked == CONFIG.products


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def test_shopper_features_read_through_feast_match_the_events(flow_run: Run) -> None:
    views: dict[str, list[str]] = defaultdict(list)
    last: dict[str, float] = {}
    for p in {p["event_id"]: p for p in flow_run.produced["user-activity"]}.values():
        e = UserActivity.model_validate(p)
        t = e.event_time.timestamp()
        last[e.user_id] = max(last.get(e.user_id, t), t)
        if e.action.value == "view" and e.sku:
            views[e.user_id].append(e.sku)
    for p in flow_run.produced["orders"]:
        o = Order.model_validate(p)
        last[o.user_id] = max(last.get(o.user_id, 0.0), o.event_time.timestamp())
    users = sorted(views)[:100]
    got = online_features(flow_run.store, "user", users)
    for user in users:
        # Keyed steps may reorder events of one shopper within an epoch: compare contents.
        recent = orjson.loads(got[user]["recent_views"])
        assert len(recent) == min(20, len(views[user])), user
        assert views[user][-1] in recent
        assert set(recent) <= set(views[user])
        assert got[user]["event_time"] == _iso(last[user])


def test_feature_stores_do_not_overlap(flow_run: Run) -> None:
    """Model features only in Feast; the pricing state only in the plain hash."""
    s = flow_run.settings
    client = redis_client(s, decode_responses=True)
    sku = flow_run.shop.products[0].sku
    plain = client.hgetall(s.keys.sku_features(sku))
    users = {p["user_id"] for p in flow_run.produced["user-activity"]}
    assert not any(client.exists(s.keys.user_features(u)) for u in sorted(users)[:50])
    price = client.hget(s.keys.current_prices, sku)
    client.close()
    assert set(plain) == {f.name for f in SKU_FEATURES if f.store == "redis"}
    assert float(plain["elasticity_std"]) > 0
    if price is not None:
        assert float(plain["published_price"]) == float(price)
    feast = online_features(flow_run.store, "sku", [sku])[sku]
    assert "elasticity" not in feast
    assert feast["views_24h"] > 0


def test_prices_move_within_the_guardrails_and_are_published(flow_run: Run) -> None:
    s = flow_run.settings
    updates = [PriceUpdate.model_validate(u) for u in read_topic(s, s.topic(PRICE_UPDATES))]
    assert updates, "the pricing flow published no price change in a simulated day"
    products = {p.sku: p for p in flow_run.shop.products}
    last: dict[str, PriceUpdate] = {}
    for u in sorted(updates, key=lambda u: int(u.event_id.rsplit(":", 1)[1])):
        p = products[u.sku]
        assert float(u.price) >= round(p.unit_cost * 1.05, 2) - 0.01
        assert float(u.price) <= round(p.list_price * 1.6, 2) + 0.01
        assert abs(float(u.price) - float(u.previous_price)) <= 0.1 * float(u.previous_price) + 0.01
        last[u.sku] = u
    client = redis_client(s, decode_responses=True)
    current = client.hgetall(s.keys.current_prices)
    for sku, u in last.items():
        assert float(current[sku]) == float(u.price)
        details = client.hgetall(s.keys.price(sku))
        assert details["model_version"] == u.model_version
        assert client.zcard(s.keys.price_history(sku)) >= 1
    client.close()


def test_both_lists_are_kept_for_active_shoppers(flow_run: Run) -> None:
    s = flow_run.settings
    client = redis_client(s, decode_responses=True)
    users = {p["user_id"] for p in flow_run.produced["user-activity"]}
    lists = [client.get(s.keys.recommendations(u)) for u in sorted(users)[:200]]
    categories = {p.sku: p.category for p in flow_run.shop.catalogue()}
    best = {c: client.zrevrange(s.keys.category_popularity(c), 0, -1) for c in categories.values()}
    client.close()
    assert all(best.values()), "a category without its popularity list"
    assert all(categories[sku] == c for c, skus in best.items() for sku in skus)
    present = [StoredShopper.model_validate_json(x) for x in lists if x is not None]
    assert len(present) >= 150
    assert sum(bool(x.again) for x in present) >= 150  # items to come back to
    for x in present:  # discover will leave out everything they touched
        assert bool(x.again) == bool(x.recent)  # (searches alone touch no product)
        assert {i.sku for i in x.again} | set(x.recent) <= set(x.seen)
        assert {c for c, _ in x.categories} <= set(categories.values())
    assert any(len(x.recent) > 1 for x in present)
