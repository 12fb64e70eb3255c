"""Both batch engines on the same bronze: DuckDB and Spark must write identical tables.

A small simulated shop is written to bronze, with hostile messages added (bad JSON, broken
rules, an order with one bad line, re-sent copies), and the lake copied. Silver, gold and the
Feast export then run on DuckDB in one copy and on a real Spark session (``local[*]``, Delta
jars from the cache) in the other, twice: after the first bronze, and after more bronze
arrives (the incremental paths: anti-joins against what silver and gold hold already).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from batch.catalogue_source import catalogue_table
from batch.engines import Engine
from batch.engines.duckdb_engine import DuckDBEngine
from batch.engines.parity import differences, lake_outputs
from batch.engines.spark_engine import SparkEngine
from batch.features import export_features
from batch.gold import run_gold
from batch.metastore import duckdb_views, register
from batch.silver import run_silver
from benchmarks.batch_data import fill_bronze
from flows.records import LakeRow
from flows.sinks.lake import to_arrow
from schemas.lake import (
    GOLD_SCHEMAS,
    QUARANTINE,
    SILVER_SCHEMAS,
    SKU_DAILY_FEATURES,
    bronze_path,
    gold_path,
)
from schemas.settings import Settings
from schemas.topics import COMPETITOR_PRICES, INPUT_TOPICS, INVENTORY, ORDERS, USER_ACTIVITY
from simulator.config import ShopConfig
from simulator.shop import Shop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

CONFIG = ShopConfig(seed=5, products=30, shoppers=200, sessions_per_day=1_500, competitors=2)
EVENTS = 6_000
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LINE = {"sku": "SKU-1", "quantity": 2, "unit_price": 3.5}
ORDER = {"order_id": "o-bad", "user_id": "u1", "store_id": "s1", "lines": [LINE]}
ACTIVITY = {"user_id": "u1", "session_id": "s1", "action": "view", "sku": "SKU-1"}
BAD = {
    ORDERS.name: [
        b"{not json",
        b"null",
        orjson.dumps({**ORDER, "lines": []}),
        orjson.dumps({**ORDER, "lines": "x"}),
        orjson.dumps({**ORDER, "lines": [LINE, {**LINE, "quantity": "2"}]}),
        orjson.dumps({**ORDER, "lines": [LINE, {**LINE, "quantity": 1.5}]}),
        orjson.dumps({**ORDER, "lines": [{**LINE, "unit_price": -1}]}),
    ],
    USER_ACTIVITY.name: [
        orjson.dumps({**ACTIVITY, "action": "buy"}),
        orjson.dumps({**ACTIVITY, "user_id": " "}),
        orjson.dumps({**ACTIVITY, "action": "search", "query": "tea"}),
    ],
    INVENTORY.name: [
        orjson.dumps({"sku": "SKU-1", "store_id": "s1", "on_hand": 2.5}),
        orjson.dumps({"sku": "SKU-1", "store_id": "s1", "on_hand": "3"}),
        orjson.dumps({"sku": "SKU-1", "store_id": "s1", "on_hand": -1}),
    ],
    COMPETITOR_PRICES.name: [
        orjson.dumps({"sku": "SKU-1", "competitor": "c", "price": "abc"}),
        orjson.dumps({"sku": "SKU-1", "competitor": "c", "price": "inf"}),
    ],
}
GOOD = {
    ORDERS.name: [orjson.dumps({**ORDER, "order_id": "o-good"})] * 2,  # re-sent: one event
    COMPETITOR_PRICES.name: [orjson.dumps({"sku": "SKU-1", "competitor": "c", "price": "9.99"})],
}


def add_hostile(lake: Path, offset: int) -> None:
    """Append the hostile messages to bronze (the re-sent copy keeps its event_id)."""
    for topic in INPUT_TOPICS:
        rows = []
        messages = BAD.get(topic.name, []) + GOOD.get(topic.name, [])
        for n, raw in enumerate(messages):
            event_id = "dup" if b"o-good" in raw else f"hostile-{topic.name}-{offset}-{n}"
            us = int(T0.timestamp() * 1_000_000) + n
            rows.append(LakeRow(topic.name, 1, offset + n, None, raw, event_id, us))
        if rows:
            write_deltalake(
                str(bronze_path(lake, topic)),
                to_arrow(rows, T0),
                mode="append",
                partition_by=["date"],
            )


def run_batch(lake: Path, engine: Engine, catalogue: pa.Table) -> None:
    run_silver(lake, engine=engine)
    run_gold(lake, catalogue, engine=engine)
    export_features(lake, engine)


@pytest.fixture(scope="module")
def spark_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A runtime folder of the module's own (metastore), with the Delta jars of the cache."""
    root = tmp_path_factory.mktemp("spark")
    (root / "cache").symlink_to((Settings().runtime_dir / "cache").resolve())
    return Settings(runtime_dir=root, spark_master="local[2]", spark_shuffle_partitions=2)


@pytest.fixture(scope="module")
def spark(spark_settings: Settings) -> Iterator[SparkEngine]:
    """One Spark session for the module (driver 1g)."""
    engine = SparkEngine(spark_settings)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lakes")


@pytest.fixture(scope="module")
def lakes(spark: SparkEngine, lake_root: Path) -> dict[str, dict[str, dict[str, pa.Table]]]:
    """Each engine's tables after the first bronze ("first") and after more ("second")."""
    duck_lake, spark_lake = lake_root / "duckdb", lake_root / "spark"
    fill_bronze(duck_lake, EVENTS, CONFIG)
    add_hostile(duck_lake, 0)
    shutil.copytree(duck_lake, spark_lake)
    catalogue = catalogue_table(Shop(CONFIG).catalogue())
    duck = DuckDBEngine()
    out: dict[str, dict[str, dict[str, pa.Table]]] = {"first": {}, "second": {}}
    for name, lake, engine in (("duckdb", duck_lake, duck), ("spark", spark_lake, spark)):
        run_batch(lake, engine, catalogue)
        out["first"][name] = lake_outputs(lake)
        add_hostile(lake, 100)  # more bronze: new bad messages, and "dup" once more
        run_batch(lake, engine, catalogue)
        out["second"][name] = lake_outputs(lake)
    duck.close()
    return out


@pytest.mark.parametrize("round_", ["first", "second"])
def test_spark_writes_the_same_silver_gold_and_features_as_duckdb(
    lakes: dict[str, dict[str, dict[str, pa.Table]]], round_: str
) -> None:
    duck, spark = lakes[round_]["duckdb"], lakes[round_]["spark"]
    empty = [name for name, table in duck.items() if table.num_rows == 0]
    assert not empty, f"nothing to compare in {empty}"
    assert f"feast/{SKU_DAILY_FEATURES}" in duck
    assert differences(duck, spark) == []


def test_the_hostile_messages_are_quarantined_with_the_same_reasons(
    lakes: dict[str, dict[str, dict[str, pa.Table]]],
) -> None:
    quarantine = lakes["second"]["spark"][f"silver/{QUARANTINE}"]
    reasons = set(quarantine.column("reason").to_pylist())
    assert "payload is not valid JSON" in reasons
    assert "lines must not be empty" in reasons
    assert "line 1: quantity is missing or not an integer" in reasons
    assert "lines is missing or not a list" in reasons
    assert "price must be a positive number up to 1000000" in reasons
    assert "on_hand is missing or not an integer" in reasons
    assert "on_hand must be between 0 and 10000000" in reasons
    # Both rounds' bad messages, each once.
    assert quarantine.num_rows == 2 * sum(len(messages) for messages in BAD.values())


def test_the_lake_tables_are_in_the_catalogue_for_spark_and_duckdb(
    spark: SparkEngine, lakes: dict[str, dict[str, dict[str, pa.Table]]], lake_root: Path
) -> None:
    lake = lake_root / "spark"
    tables = register(spark.spark, lake)
    by_name = {t.name: t for t in tables}
    expected = {f"silver_{t}" for t in SILVER_SCHEMAS} | {f"gold_{t}" for t in GOLD_SCHEMAS}
    assert expected <= by_name.keys()
    assert any(name.startswith("bronze_") for name in by_name)
    assert by_name["gold_sku_daily"].location == gold_path(lake, "sku_daily").resolve()
    assert (
        by_name["gold_sku_daily"].version == DeltaTable(str(gold_path(lake, "sku_daily"))).version()
    )
    query = "SELECT count(*) AS n, sum(units) AS units FROM tillflow.gold_sku_daily"
    row = spark.spark.sql(query).first()
    assert row is not None
    con = duckdb.connect()
    duckdb_views(con, tables)
    assert con.execute(query).fetchone() == (row["n"], row["units"])
    assert row["n"] == lakes["second"]["spark"]["gold/sku_daily"].num_rows
    con.close()
    assert register(spark.spark, lake) == tables  # registering again changes nothing


def test_a_second_process_is_told_the_embedded_metastore_is_in_use(
    spark: SparkEngine, spark_settings: Settings
) -> None:
    env = {**os.environ, "TILLFLOW_RUNTIME_DIR": str(spark_settings.runtime_dir)}
    tillflow = Path(sys.executable).parent / "tillflow"
    done = subprocess.run(
        [str(tillflow), "batch", "tables"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    message = " ".join((done.stdout + done.stderr).split())
    assert "metastore.lock" in message
    assert f"in use by process {os.getpid()}" in message
