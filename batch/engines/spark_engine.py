"""The Spark engine: Apache Spark 4 with Delta Lake, local (``local[*]``) or on a cluster.

The session loads the Delta jars that ``tillflow setup`` resolved into the runtime cache
(``spark.jars``), so it starts without network. Queries are transpiled from DuckDB's dialect
by SQLGlot (``batch/engines/dialect.py``); inputs become temporary views, results come back
as Arrow. The session's time zone is UTC, as DuckDB's instants are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pyarrow as pa
import structlog

from batch.engines import EngineName
from batch.engines.dialect import to_spark
from batch.engines.spark_session import release_metastore, spark_session
from schemas.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = structlog.get_logger(__name__)


class SparkEngine:
    name: EngineName = "spark"

    def __init__(self, settings: Settings, session: SparkSession | None = None) -> None:
        self._own = session is None
        self._settings = settings
        self.spark = session if session is not None else spark_session(settings)

    def query(self, sql: str, tables: Mapping[str, pa.Table]) -> pa.Table:
        for name, table in tables.items():
            self.spark.createDataFrame(table).createOrReplaceTempView(name)
        try:
            return self.spark.sql(to_spark(sql)).toArrow()
        finally:
            for name in tables:
                self.spark.catalog.dropTempView(name)

    def close(self) -> None:
        if self._own:
            self.spark.stop()
            release_metastore(self._settings)
