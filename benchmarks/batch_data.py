"""Simulated events written straight to the Delta bronze tables (no Kafka, no flow).

The batch benchmark measures the batch jobs, not the flow (benchmarks/stream.py does), so it
fills bronze directly with the rows the flow's lake sink would write: the same arrow
conversion (flows.sinks.lake.to_arrow), one "partition" per topic, offsets in order.

Prices move: every simulated day each product's shelf price is set to its list price times a
random factor in [0.85, 1.15] (a price experiment), so the demand model has prices to learn.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from pathlib import Path

import orjson
from deltalake import write_deltalake

from flows.records import LakeRow
from flows.sinks.lake import to_arrow
from schemas.lake import bronze_path
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.shop import DAY, Shop

BATCH_ROWS = 100_000


def fill_bronze(
    lake_dir: Path, events: int, config: ShopConfig, price_spread: float = 0.15
) -> dict[str, int]:
    """Write ``events`` simulated events to bronze; return the count per topic."""
    shop = Shop(config)
    rng = random.Random(config.seed + 7)
    pending: dict[str, list[LakeRow]] = {t.name: [] for t in INPUT_TOPICS}
    counts = dict.fromkeys(pending, 0)
    day = -1
    for n, e in enumerate(shop.events()):
        if n >= events:
            break
        today = int((e.time - shop.start) // DAY)
        if today != day:
            day = today
            for p in shop.products:
                factor = math.exp(rng.uniform(-price_spread, price_spread))
                shop.prices.set(p.index, round(p.list_price * factor, 2))
        rows = pending[e.topic.name]
        us = int(e.time * 1_000_000)
        rows.append(
            LakeRow(
                e.topic.name,
                0,
                counts[e.topic.name],
                e.key.encode(),
                orjson.dumps(e.payload),
                e.payload["event_id"],
                us,
            )
        )
        counts[e.topic.name] += 1
        if len(rows) >= BATCH_ROWS:
            _flush(lake_dir, e.topic.name, rows)
    for name, rows in pending.items():
        _flush(lake_dir, name, rows)
    return counts


def _flush(lake_dir: Path, topic: str, rows: list[LakeRow]) -> None:
    if not rows:
        return
    topic_obj = next(t for t in INPUT_TOPICS if t.name == topic)
    path = bronze_path(lake_dir, topic_obj)
    path.mkdir(parents=True, exist_ok=True)
    write_deltalake(
        str(path), to_arrow(rows, datetime.now(UTC)), mode="append", partition_by=["date"]
    )
    rows.clear()
