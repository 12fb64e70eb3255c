"""Delta Lake tables: where they live and their schemas.

Bronze holds every valid input message as it arrived, one table per input topic,
partitioned by event date; ``(partition, offset)`` identifies a row and makes appends
idempotent across restarts. Timestamps are timezone-aware (UTC) so every engine reads them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from schemas.topics import Topic

BRONZE_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("date", pa.string(), nullable=False),  # YYYY-MM-DD of event_time (partition)
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("key", pa.string()),
        pa.field("payload", pa.string(), nullable=False),  # the message value, UTF-8 JSON
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


def bronze_path(lake_dir: Path, topic: Topic) -> Path:
    """``<lake>/bronze/<topic>``, e.g. ``.tillflow/lake/bronze/orders``."""
    return lake_dir / "bronze" / topic.name


def bronze_app_id(topic: Topic, partition: int) -> str:
    """The Delta transaction id of one Kafka partition's appends (its version is an offset)."""
    return f"tillflow-bronze:{topic.name}:{partition}"


# --- Silver and gold: written by the batch jobs (batch/), read by Feast, training and the graph.


def silver_path(lake_dir: Path, table: str) -> Path:
    """``<lake>/silver/<table>``: typed, deduplicated rows (one table per event kind)."""
    return lake_dir / "silver" / table


def gold_path(lake_dir: Path, table: str) -> Path:
    """``<lake>/gold/<table>``, e.g. ``.tillflow/lake/gold/sku_daily``."""
    return lake_dir / "gold" / table


SKU_DAILY = "sku_daily"
USER_ITEM_INTERACTIONS = "user_item_interactions"
ORDERS_ENRICHED = "orders_enriched"

GOLD_SCHEMAS: dict[str, pa.Schema] = {
    # One row per (sku, date): what sold, at what prices, against which competitor price and stock.
    SKU_DAILY: pa.schema(
        [
            pa.field("sku", pa.string(), nullable=False),
            pa.field("date", pa.string(), nullable=False),  # YYYY-MM-DD (UTC)
            pa.field("day_start", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("units", pa.int64(), nullable=False),
            pa.field("revenue", pa.float64(), nullable=False),
            pa.field("orders", pa.int64(), nullable=False),
            pa.field("avg_price", pa.float64()),  # revenue / units; null on days without sales
            pa.field("min_price", pa.float64()),
            pa.field("max_price", pa.float64()),
            pa.field("views", pa.int64(), nullable=False),
            pa.field("competitor_min", pa.float64()),  # lowest competitor price seen that day
            pa.field("stock", pa.int64()),  # last on-hand level reported that day (all stores)
        ]
    ),
    # One row per (user, sku): implicit feedback, weight = views + 3·carts + 10·purchased units.
    USER_ITEM_INTERACTIONS: pa.schema(
        [
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("sku", pa.string(), nullable=False),
            pa.field("views", pa.int64(), nullable=False),
            pa.field("carts", pa.int64(), nullable=False),
            pa.field("purchases", pa.int64(), nullable=False),  # units bought
            pa.field("weight", pa.float64(), nullable=False),
            pa.field("first_time", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("last_time", pa.timestamp("us", tz="UTC"), nullable=False),
        ]
    ),
    # One row per order line, joined with the catalogue (category, cost).
    ORDERS_ENRICHED: pa.schema(
        [
            pa.field("order_id", pa.string(), nullable=False),
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("date", pa.string(), nullable=False),
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("store_id", pa.string(), nullable=False),
            pa.field("sku", pa.string(), nullable=False),
            pa.field("category", pa.string()),  # null when the sku is not in the catalogue
            pa.field("quantity", pa.int64(), nullable=False),
            pa.field("unit_price", pa.float64(), nullable=False),
            pa.field("unit_cost", pa.float64()),
            pa.field("revenue", pa.float64(), nullable=False),
            pa.field("margin", pa.float64()),
        ]
    ),
}


# --- Silver: one table per input topic, typed and deduplicated by event_id, partitioned by
# date; rows that fail the contract go to ``quarantine`` with the reason (batch/silver.py).

ORDER_LINES = "order_lines"
USER_ACTIVITY = "user_activity"
INVENTORY = "inventory"
COMPETITOR_PRICES = "competitor_prices"
QUARANTINE = "quarantine"


def _event_fields() -> list[pa.Field]:
    return [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("date", pa.string(), nullable=False),
    ]


SILVER_TABLES: dict[str, str] = {
    "orders": ORDER_LINES,
    "user-activity": USER_ACTIVITY,
    "inventory": INVENTORY,
    "competitor-prices": COMPETITOR_PRICES,
}
"""Input topic name → its silver table."""

SILVER_SCHEMAS: dict[str, pa.Schema] = {
    # One row per order line; every line of an order shares the order's event_id.
    ORDER_LINES: pa.schema(
        [
            *_event_fields(),
            pa.field("order_id", pa.string(), nullable=False),
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("store_id", pa.string(), nullable=False),
            pa.field("line", pa.int32(), nullable=False),  # 0-based position in the order
            pa.field("sku", pa.string(), nullable=False),
            pa.field("quantity", pa.int64(), nullable=False),
            pa.field("unit_price", pa.float64(), nullable=False),
        ]
    ),
    USER_ACTIVITY: pa.schema(
        [
            *_event_fields(),
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("session_id", pa.string(), nullable=False),
            pa.field("action", pa.string(), nullable=False),
            pa.field("sku", pa.string()),  # null for searches
            pa.field("query", pa.string()),  # searches only
        ]
    ),
    INVENTORY: pa.schema(
        [
            *_event_fields(),
            pa.field("sku", pa.string(), nullable=False),
            pa.field("store_id", pa.string(), nullable=False),
            pa.field("on_hand", pa.int64(), nullable=False),
        ]
    ),
    COMPETITOR_PRICES: pa.schema(
        [
            *_event_fields(),
            pa.field("sku", pa.string(), nullable=False),
            pa.field("competitor", pa.string(), nullable=False),
            pa.field("price", pa.float64(), nullable=False),
        ]
    ),
    # Bronze rows that break the contract, kept whole with the reason.
    QUARANTINE: pa.schema(
        [
            pa.field("topic", pa.string(), nullable=False),
            *_event_fields(),
            pa.field("kafka_partition", pa.int32(), nullable=False),
            pa.field("kafka_offset", pa.int64(), nullable=False),
            pa.field("payload", pa.string(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("quarantined_at", pa.timestamp("us", tz="UTC"), nullable=False),
        ]
    ),
}


def silver_app_id(topic: Topic) -> str:
    """The Delta transaction id whose version is the bronze version silver has read up to."""
    return f"tillflow-silver:{topic.name}"


def gold_app_id(source: str) -> str:
    """The Delta transaction id whose version is the ``source`` table version gold has read."""
    return f"tillflow-gold:{source}"


def feast_source_path(lake_dir: Path, view: str) -> Path:
    """``<lake>/gold/feast/<view>.parquet``: a Feast offline source exported from gold."""
    return lake_dir / "gold" / "feast" / f"{view}.parquet"


SKU_DAILY_FEATURES = "sku_daily_features"  # Feast view of schemas.features.BATCH_SKU_FEATURES
