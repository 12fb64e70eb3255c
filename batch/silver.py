"""Bronze → silver: typed rows, deduplicated by event_id, bad rows quarantined with the reason.

Per input topic: read the bronze files added since the version this job last committed
(``silver_app_id``), type the JSON payloads with the batch engine (DuckDB or Spark,
batch/engines/) running batch/silver_sql.py, keep the first
copy of every event_id that is not in silver already (same date partitions), and append. Rows
that break the contract go to ``silver/quarantine`` first, so a crash between the two commits
loses nothing: the re-run re-reads the same bronze files and the anti-joins drop repeats.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import structlog

from batch.engines import Engine
from batch.engines.duckdb_engine import DuckDBEngine, connect
from batch.lake import Increment, append, processed_version, read_dates, read_increment
from batch.result import StepResult
from batch.silver_sql import SQL
from schemas.lake import (
    QUARANTINE,
    SILVER_SCHEMAS,
    SILVER_TABLES,
    bronze_path,
    silver_app_id,
    silver_path,
)
from schemas.topics import INPUT_TOPICS, Topic

log = structlog.get_logger(__name__)

BRONZE_COLUMNS = [
    "event_id",
    "event_time",
    "kafka_partition",
    "kafka_offset",
    "payload",
    "ingested_at",
]


__all__ = [
    "BRONZE_COLUMNS",
    "QUARANTINE_SQL",
    "conform",
    "connect",
    "deduplicate_sql",
    "run_silver",
]


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns in ``schema``'s order and types (nullability enforced on write)."""
    return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)


def run_silver(
    lake_dir: Path, step: Callable[[str], None] = lambda _: None, engine: Engine | None = None
) -> StepResult:
    """Bring every silver table up to date with its bronze topic (on DuckDB by default)."""
    total = StepResult()
    own = engine is None
    engine = engine or DuckDBEngine()
    try:
        for topic in INPUT_TOPICS:
            total = total + silver_topic(lake_dir, topic, engine)
            step(f"silver {SILVER_TABLES[topic.name]}")
    finally:
        if own:
            engine.close()
    return total


def silver_topic(lake_dir: Path, topic: Topic, engine: Engine) -> StepResult:
    table = SILVER_TABLES[topic.name]
    out = silver_path(lake_dir, table)
    app_id = silver_app_id(topic)
    since = processed_version(out, app_id)
    increment = read_increment(bronze_path(lake_dir, topic), since, BRONZE_COLUMNS)
    names = (f"bronze/{topic.name}",), (f"silver/{table}", f"silver/{QUARANTINE}")
    if increment.rows.num_rows == 0:
        log.info("silver.up_to_date", table=table, bronze_version=increment.version)
        return StepResult(inputs=names[0], outputs=names[1])
    parsed = engine.query(SQL[table], {"bronze": increment.rows})
    quarantined = _quarantine(lake_dir, topic, engine, parsed, increment)
    valid = _deduplicated(out, table, engine, parsed, increment)
    append(out, valid, marks={app_id: increment.version}, partition_by=["date"])
    messages = increment.rows.num_rows
    log.info(
        "silver.appended",
        table=table,
        bronze_version=increment.version,
        messages=messages,
        rows=valid.num_rows,
        quarantined=quarantined,
    )
    return StepResult(
        rows_in=messages,
        rows_out=valid.num_rows,
        inputs=names[0],
        outputs=names[1],
        details={f"quarantined:{table}": quarantined},
    )


def _deduplicated(
    out: Path, table: str, engine: Engine, parsed: pa.Table, increment: Increment
) -> pa.Table:
    """Valid rows: the first copy of each event_id that silver does not hold yet."""
    schema = SILVER_SCHEMAS[table]
    existing = read_dates(out, increment.dates, ["event_id"])
    if existing.num_rows == 0:
        existing = pa.table({"event_id": pa.array([], pa.string())})
    rows = engine.query(deduplicate_sql(table), {"parsed": parsed, "existing": existing})
    return conform(rows, schema)


def deduplicate_sql(table: str) -> str:
    """The valid rows of ``parsed`` not in ``existing``, the first copy of each event_id."""
    columns = ", ".join(f.name for f in SILVER_SCHEMAS[table])
    return f"""
        SELECT {columns} FROM parsed
        WHERE reason IS NULL AND event_id NOT IN (SELECT event_id FROM existing)
        QUALIFY dense_rank() OVER (
            PARTITION BY event_id ORDER BY ingested_at, kafka_partition, kafka_offset) = 1
        ORDER BY date, event_time
        """


QUARANTINE_SQL = """
SELECT DISTINCT j.topic, p.event_id, p.event_time, p.date, p.kafka_partition, p.kafka_offset,
       p.payload, p.reason, j.quarantined_at
FROM parsed p CROSS JOIN job j
WHERE p.reason IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM existing e WHERE e.topic = j.topic
      AND e.kafka_partition = p.kafka_partition AND e.kafka_offset = p.kafka_offset)
"""
"""A message's bad rows (several lines of one order) carry the same values: one row each."""


def _quarantine(
    lake_dir: Path, topic: Topic, engine: Engine, parsed: pa.Table, increment: Increment
) -> int:
    """Append the increment's bad messages (once each) to silver/quarantine; return how many."""
    out = silver_path(lake_dir, QUARANTINE)
    existing = read_dates(out, increment.dates, ["topic", "kafka_partition", "kafka_offset"])
    if existing.num_rows == 0:
        existing = pa.table(
            {
                "topic": pa.array([], pa.string()),
                "kafka_partition": pa.array([], pa.int32()),
                "kafka_offset": pa.array([], pa.int64()),
            }
        )
    job = pa.table(
        {
            "topic": [topic.name],
            "quarantined_at": pa.array([datetime.now(UTC)], pa.timestamp("us", "UTC")),
        }
    )
    rows = engine.query(QUARANTINE_SQL, {"parsed": parsed, "existing": existing, "job": job})
    bad = conform(rows, SILVER_SCHEMAS[QUARANTINE])
    if bad.num_rows:
        append(out, bad, marks={}, partition_by=["date"])
        log.warning("silver.quarantined", topic=topic.name, rows=bad.num_rows)
    return int(bad.num_rows)
