"""The SQL engines the batch jobs run on: DuckDB in this process, or Apache Spark.

Every transformation of silver, gold and the Feast export is one query written once, in
DuckDB's dialect (``batch/silver_sql.py``, ``batch/gold.py``, ``batch/features.py``). An
:class:`Engine` runs such a query over named Arrow inputs and returns an Arrow table: DuckDB
runs it as written; Spark runs it after SQLGlot has transpiled it (``batch/engines/dialect.py``).
Reading increments from Delta and committing outputs with their markers stay with delta-rs
(``batch/lake.py``), so both engines write the same tables through the same commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

import pyarrow as pa

from schemas.settings import Settings

EngineName = Literal["duckdb", "spark"]
ENGINES: tuple[EngineName, ...] = ("duckdb", "spark")


class Engine(Protocol):
    """Runs one query over named Arrow tables."""

    name: EngineName

    def query(self, sql: str, tables: Mapping[str, pa.Table]) -> pa.Table:
        """The result of ``sql`` (DuckDB dialect), each name in ``tables`` bound to its table."""
        ...

    def close(self) -> None: ...


def open_engine(settings: Settings, name: EngineName | None = None) -> Engine:
    """The engine ``name`` (default ``settings.batch_engine``); Spark per ``spark_master``."""
    chosen = name or settings.batch_engine
    if chosen == "duckdb":
        from batch.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine()
    if chosen == "spark":
        from batch.engines.spark_engine import SparkEngine

        return SparkEngine(settings)
    raise ValueError(f"unknown batch engine {chosen!r}: choose one of {', '.join(ENGINES)}")
