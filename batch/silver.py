"""Bronze → silver: typed rows, deduplicated by event_id, bad rows quarantined with the reason.

Per input topic: read the bronze files added since the version this job last committed
(``silver_app_id``), type the JSON payloads with DuckDB (batch/silver_sql.py), keep the first
copy of every event_id that is not in silver already (same date partitions), and append. Rows
that break the contract go to ``silver/quarantine`` first, so a crash between the two commits
loses nothing: the re-run re-reads the same bronze files and the anti-joins drop repeats.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import structlog

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

BRONZE_COLUMNS = ["event_id", "event_time", "kafka_partition", "kafka_offset", "payload",
                  "ingested_at"]  # fmt: skip


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB (without ICU: timestamps are UTC instants, cast to naive UTC)."""
    return duckdb.connect(config={"threads": 2})


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns in ``schema``'s order and types (nullability enforced on write)."""
    return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)


def run_silver(lake_dir: Path, step: Callable[[str], None] = lambda _: None) -> StepResult:
    """Bring every silver table up to date with its bronze topic."""
    total = StepResult()
    con = connect()
    try:
        for topic in INPUT_TOPICS:
            total = total + silver_topic(lake_dir, topic, con)
            step(f"silver {SILVER_TABLES[topic.name]}")
    finally:
        con.close()
    return total


def silver_topic(lake_dir: Path, topic: Topic, con: duckdb.DuckDBPyConnection) -> StepResult:
    table = SILVER_TABLES[topic.name]
    out = silver_path(lake_dir, table)
    app_id = silver_app_id(topic)
    since = processed_version(out, app_id)
    increment = read_increment(bronze_path(lake_dir, topic), since, BRONZE_COLUMNS)
    names = (f"bronze/{topic.name}",), (f"silver/{table}", f"silver/{QUARANTINE}")
    if increment.rows.num_rows == 0:
        log.info("silver.up_to_date", table=table, bronze_version=increment.version)
        return StepResult(inputs=names[0], outputs=names[1])
    con.register("bronze", increment.rows)
    con.execute(f"CREATE OR REPLACE TEMP TABLE parsed AS {SQL[table]}")
    con.unregister("bronze")
    quarantined = _quarantine(lake_dir, topic, con, increment)
    valid = _deduplicated(out, table, con, increment)
    append(out, valid, marks={app_id: increment.version}, partition_by=["date"])
    messages = increment.rows.num_rows
    log.info(
        "silver.appended", table=table, bronze_version=increment.version, messages=messages,
        rows=valid.num_rows, quarantined=quarantined,
    )  # fmt: skip
    return StepResult(
        rows_in=messages,
        rows_out=valid.num_rows,
        inputs=names[0],
        outputs=names[1],
        details={f"quarantined:{table}": quarantined},
    )


def _deduplicated(
    out: Path, table: str, con: duckdb.DuckDBPyConnection, increment: Increment
) -> pa.Table:
    """Valid rows: the first copy of each event_id that silver does not hold yet."""
    schema = SILVER_SCHEMAS[table]
    existing = read_dates(out, increment.dates, ["event_id"])
    if existing.num_rows == 0:
        existing = pa.table({"event_id": pa.array([], pa.string())})
    con.register("existing", existing)
    columns = ", ".join(f.name for f in schema)
    rows = con.sql(
        f"""
        SELECT {columns} FROM parsed
        WHERE reason IS NULL AND event_id NOT IN (SELECT event_id FROM existing)
        QUALIFY dense_rank() OVER (
            PARTITION BY event_id ORDER BY ingested_at, kafka_partition, kafka_offset) = 1
        ORDER BY date, event_time
        """
    ).to_arrow_table()
    con.unregister("existing")
    return conform(rows, schema)


def _quarantine(
    lake_dir: Path, topic: Topic, con: duckdb.DuckDBPyConnection, increment: Increment
) -> int:
    """Append the increment's bad messages (once each) to silver/quarantine; return how many."""
    out = silver_path(lake_dir, QUARANTINE)
    existing = read_dates(out, increment.dates, ["topic", "kafka_partition", "kafka_offset"])
    if existing.num_rows == 0:
        existing = pa.table({"topic": pa.array([], pa.string()),
                             "kafka_partition": pa.array([], pa.int32()),
                             "kafka_offset": pa.array([], pa.int64())})  # fmt: skip
    con.register("existing", existing)
    rows = con.sql(
        """
        SELECT DISTINCT ON (kafka_partition, kafka_offset)
               ? AS topic, event_id, event_time, date, kafka_partition, kafka_offset, payload,
               reason, ?::TIMESTAMP AS quarantined_at
        FROM parsed p
        WHERE reason IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM existing e WHERE e.topic = ?
              AND e.kafka_partition = p.kafka_partition AND e.kafka_offset = p.kafka_offset)
        """,
        params=[topic.name, datetime.now(UTC).replace(tzinfo=None), topic.name],
    ).to_arrow_table()
    con.unregister("existing")
    bad = conform(rows, SILVER_SCHEMAS[QUARANTINE])
    if bad.num_rows:
        append(out, bad, marks={}, partition_by=["date"])
        log.warning("silver.quarantined", topic=topic.name, rows=bad.num_rows)
    return int(bad.num_rows)
