"""Append valid events to the Delta bronze tables, batched and idempotent across restarts.

Batches arrive per Kafka (topic, partition) with offsets in order. Each sink batch appends
one commit per topic (one commit per partition made the flow pause for ~50 ms per partition)
holding, for each partition it covers, a Delta transaction marker
``tillflow-bronze:<topic>:<partition>`` whose version is that partition's last offset; after a
restart (Bytewax replays the last snapshot interval) rows at or below
the committed version are skipped, so every message lands exactly once. A row Arrow cannot
encode is set aside (counted, logged; its offset still committed), and a failed append is
retried until the lake takes it.

Each topic's table is opened once and kept (:class:`_Tables`): an append to an open
``DeltaTable`` moves it to the version it committed, where an append by path reads the
table's log again first (about a third of a commit's CPU, and growing with the log until its
next checkpoint). A failed append drops the open table, so the retry starts from the log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from bytewax.outputs import StatelessSinkPartition
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from flows.metrics import flow_metrics
from flows.records import LakeRow
from flows.sinks.context import SinkContext
from flows.sinks.outage import RideOut
from flows.sinks.overlap import OverlappedSink
from flows.sinks.set_aside import UNENCODABLE, encode_each
from schemas.lake import BRONZE_SCHEMA, bronze_app_id, bronze_path
from schemas.topics import by_name


def to_arrow(rows: list[LakeRow], ingested_at: datetime) -> pa.Table:
    micros = pa.array([r.event_us for r in rows], pa.int64())
    times = micros.cast(pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "event_id": [r.event_id for r in rows],
            "event_time": times,
            "date": pc.strftime(times, format="%Y-%m-%d"),
            "kafka_partition": pa.array([r.partition for r in rows], pa.int32()),
            "kafka_offset": pa.array([r.offset for r in rows], pa.int64()),
            "key": [r.key.decode("utf-8", "replace") if r.key else None for r in rows],
            "payload": [r.raw.decode("utf-8") for r in rows],
            "ingested_at": pa.array([ingested_at] * len(rows), pa.timestamp("us", tz="UTC")),
        },
        schema=BRONZE_SCHEMA,
    )


def encodable_arrow(ctx: SinkContext, rows: list[LakeRow], ingested_at: datetime) -> pa.Table:
    """``rows`` as one table; if Arrow refuses the batch, each row alone, bad ones set aside."""
    try:
        return to_arrow(rows, ingested_at)
    except UNENCODABLE:
        tables = encode_each(
            ctx.step_id,
            ctx.metrics,
            rows,
            lambda r: to_arrow([r], ingested_at),
            key=lambda r: f"{r.topic}:{r.partition}:{r.offset}",
        )
        return pa.concat_tables([t for _, t in tables] or [to_arrow([], ingested_at)])


class _Tables:
    """The bronze tables a sink partition appends to, each opened once (module doc)."""

    def __init__(self) -> None:
        self.open: dict[Path, DeltaTable] = {}

    def get(self, path: Path) -> DeltaTable | None:
        """The table at ``path``, None while it does not exist."""
        table = self.open.get(path)
        if table is None:
            try:
                table = self.open[path] = DeltaTable(str(path))
            except TableNotFoundError:
                return None
        return table

    def append(self, path: Path, table: pa.Table, markers: list[Transaction]) -> None:
        """Append ``table`` with its transaction ``markers`` in one commit."""
        try:
            _append(self.get(path) or path, table, markers)
        except Exception:
            self.open.pop(path, None)  # the retry reads the log afresh
            raise


class _BronzePartition(StatelessSinkPartition[LakeRow]):
    def __init__(self, lake_dir: Path, ctx: SinkContext) -> None:
        self.lake_dir = lake_dir
        self.ctx = ctx
        self.ride_out = RideOut(ctx.step_id, ctx.metrics)
        self.tables = _Tables()
        self._committed: dict[str, int] = {}

    def _committed_offset(self, path: Path, app_id: str) -> int:
        if app_id not in self._committed:
            table = self.tables.get(path)
            version = None if table is None else table.transaction_version(app_id)
            self._committed[app_id] = -1 if version is None else version
        return self._committed[app_id]

    def write_batch(self, items: list[LakeRow]) -> None:
        """One Delta commit per topic: its new rows and one transaction marker per partition."""
        now = datetime.now(UTC)
        by_topic: dict[str, list[LakeRow]] = {}
        for r in items:
            by_topic.setdefault(r.topic, []).append(r)
        for name, rows in by_topic.items():
            topic = by_name(name)
            path = bronze_path(self.lake_dir, topic)
            fresh: list[LakeRow] = []
            last: dict[str, int] = {}
            for r in rows:
                app_id = bronze_app_id(topic, r.partition)
                if r.offset > self._committed_offset(path, app_id):
                    fresh.append(r)
                    last[app_id] = max(last.get(app_id, -1), r.offset)
            if not fresh:
                continue
            table = encodable_arrow(self.ctx, fresh, now)
            markers = [Transaction(app_id=a, version=v) for a, v in last.items()]
            self.ride_out(partial(self.tables.append, path, table, markers))
            self._committed.update(last)


def _append(target: Path | DeltaTable, table: pa.Table, markers: list[Transaction]) -> None:
    if isinstance(target, Path):  # the table's first commit creates it
        target.mkdir(parents=True, exist_ok=True)
    write_deltalake(
        target if isinstance(target, DeltaTable) else str(target),
        table,
        mode="append",
        partition_by=["date"],
        commit_properties=CommitProperties(app_transactions=markers),
    )


class BronzeSink(OverlappedSink[LakeRow]):
    """Writes the lake batches (lists of :class:`LakeRow`, any partitions) to
    ``<lake>/bronze/<topic>``, in a thread joined at each epoch's end (flows/sinks/overlap.py).
    """

    def __init__(self, lake_dir: Path, in_flight: int) -> None:
        self.lake_dir = lake_dir
        super().__init__(self.writer_for, in_flight)

    def writer_for(self, step_id: str, process: int) -> _BronzePartition:
        """The writer itself: each ``write_batch`` commits before it returns."""
        # pyarrow imports pandas (seconds) the first time it builds a timezone-aware
        # timestamp column: pay that at start-up, not in the middle of the first batch.
        to_arrow([], datetime.now(UTC))
        return _BronzePartition(self.lake_dir, SinkContext(step_id, process, flow_metrics()))
