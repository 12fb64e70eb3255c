"""The table catalogue: every Delta table of the lake, registered by name in a Hive metastore.

Each table under ``<lake>/{bronze,silver,gold}/<table>`` is registered as
``tillflow.<layer>_<table>`` (e.g. ``tillflow.gold_sku_daily``) with ``CREATE TABLE … USING
DELTA LOCATION …``: the metastore keeps the name and location only, the Delta log stays the
truth, so a registration never writes to a table and each query sees its latest version.
Spark queries the tables by name; DuckDB reads the same locations (``duckdb_views``) under the
same names. The metastore is the one the Spark session is configured with
(``batch/engines/spark_session.py``): embedded Derby locally, ``metastore_uri`` in production.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import structlog
from deltalake import DeltaTable

from batch.lake import table_version
from batch.maintenance import lake_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = structlog.get_logger(__name__)

DATABASE = "tillflow"


@dataclass(frozen=True, slots=True)
class CatalogueTable:
    name: str  # in DATABASE, e.g. gold_sku_daily
    location: Path
    version: int  # the Delta table's current version

    @property
    def qualified(self) -> str:
        return f"{DATABASE}.{self.name}"


def table_name(lake_dir: Path, path: Path) -> str:
    """The catalogue name of the lake table at ``path``.

    >>> table_name(Path("/lake"), Path("/lake/gold/sku_daily"))
    'gold_sku_daily'
    >>> table_name(Path("lake"), Path("lake/bronze/user-activity"))
    'bronze_user_activity'
    """
    layer, table = path.relative_to(lake_dir).parts[:2]
    return re.sub(r"[^0-9a-zA-Z_]", "_", f"{layer}_{table}").lower()


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def register(spark: SparkSession, lake_dir: Path) -> list[CatalogueTable]:
    """Register every lake table not yet in the catalogue (moved ones again); list them all."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    known = {t.name: t for t in registered(spark)}
    for path in lake_tables(lake_dir):
        name = table_name(lake_dir, path)
        location = path.resolve()
        entry = known.get(name)
        if entry is not None and entry.location == location:
            continue
        if entry is not None:
            spark.sql(f"DROP TABLE {DATABASE}.{name}")  # the metadata only: the data stays
        spark.sql(f"CREATE TABLE {DATABASE}.{name} USING DELTA LOCATION {_quote(str(location))}")
        log.info("catalogue.registered", table=f"{DATABASE}.{name}", location=str(location))
    return registered(spark)


def registered(spark: SparkSession) -> list[CatalogueTable]:
    """The catalogue's tables with their locations and current Delta versions."""
    if not spark.catalog.databaseExists(DATABASE):
        return []
    tables = []
    for table in spark.catalog.listTables(DATABASE):
        detail = spark.sql(f"DESCRIBE DETAIL {DATABASE}.{table.name}").first()
        if detail is None:
            continue
        location = Path(str(detail["location"]).removeprefix("file:"))
        tables.append(CatalogueTable(table.name, location, table_version(location)))
    return sorted(tables, key=lambda t: t.name)


def duckdb_views(con: duckdb.DuckDBPyConnection, tables: list[CatalogueTable]) -> None:
    """Make each catalogue table readable in DuckDB as ``tillflow.<name>`` (current version)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {DATABASE}")
    for table in tables:
        dataset = DeltaTable(str(table.location)).to_pyarrow_dataset()
        con.register(f"__{table.name}", dataset)
        con.execute(f"CREATE OR REPLACE VIEW {table.qualified} AS SELECT * FROM __{table.name}")
