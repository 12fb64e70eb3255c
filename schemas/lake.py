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
