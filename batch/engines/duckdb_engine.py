"""The DuckDB engine: an in-memory DuckDB in this process, queries run as written."""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pyarrow as pa

from batch.engines import EngineName


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB (without ICU: timestamps are UTC instants, cast to naive UTC)."""
    return duckdb.connect(config={"threads": 2})


class DuckDBEngine:
    name: EngineName = "duckdb"

    def __init__(self) -> None:
        self._con = connect()

    def query(self, sql: str, tables: Mapping[str, pa.Table]) -> pa.Table:
        for name, table in tables.items():
            self._con.register(name, table)
        try:
            return self._con.sql(sql).to_arrow_table()
        finally:
            for name in tables:
                self._con.unregister(name)

    def close(self) -> None:
        self._con.close()
