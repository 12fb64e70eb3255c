"""Gold → Feast: export the daily batch features and materialise them to the online store.

``sku_daily_features`` (``schemas.features.BATCH_SKU_FEATURES``) is computed from gold
``sku_daily`` over a complete sku × day grid (a day without a row sold and showed nothing),
one row per (sku, day) stamped at the end of the day, and written as one parquet file: the
Feast offline source (Feast cannot read Delta beside deltalake 1.x, docs/dependencies.md).
Feast then copies the latest row per sku to its Redis online store (``materialize``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from batch.engines import Engine
from batch.engines.duckdb_engine import DuckDBEngine
from batch.lake import read_all, table_version
from batch.result import StepResult
from batch.silver import conform
from schemas.features import BATCH_SKU_FEATURES
from schemas.lake import SKU_DAILY, SKU_DAILY_FEATURES, feast_source_path, gold_path
from schemas.settings import Settings

log = structlog.get_logger(__name__)

TIMESTAMP = "event_timestamp"
_TYPES = {"int": pa.int64(), "float": pa.float64()}
FEATURES_SCHEMA = pa.schema(
    [
        pa.field("sku", pa.string(), nullable=False),
        pa.field(TIMESTAMP, pa.timestamp("us", tz="UTC"), nullable=False),
        *(pa.field(f.name, _TYPES[f.dtype]) for f in BATCH_SKU_FEATURES),
    ]
)

FEATURES_SQL = """
WITH bounds AS (
    SELECT min(date)::TIMESTAMP AS lo, max(date)::TIMESTAMP AS hi FROM sku_daily
), days AS (
    SELECT unnest(generate_series(lo, hi, INTERVAL 1 DAY)) AS day FROM bounds
), grid AS (
    SELECT s.sku, d.day FROM (SELECT DISTINCT sku FROM sku_daily) s CROSS JOIN days d
), filled AS (
    SELECT g.sku, g.day, coalesce(s.units, 0) AS units, coalesce(s.views, 0) AS views,
           s.stock, s.avg_price, s.competitor_min
    FROM grid g LEFT JOIN sku_daily s ON s.sku = g.sku AND s.date::TIMESTAMP = g.day
)
SELECT sku, day + INTERVAL 1 DAY AS event_timestamp,
       units AS units_1d, views AS views_1d,
       coalesce(last_value(stock IGNORE NULLS) OVER upto, 0) AS stock_1d,
       coalesce(last_value(avg_price IGNORE NULLS) OVER upto, 0.0) AS last_paid_price,
       coalesce(last_value(competitor_min IGNORE NULLS) OVER upto, 0.0) AS competitor_min_1d,
       avg(units) OVER (PARTITION BY sku ORDER BY day ROWS 6 PRECEDING) AS units_per_day_7d,
       avg(views) OVER (PARTITION BY sku ORDER BY day ROWS 6 PRECEDING) AS views_per_day_7d,
       avg(units) OVER (PARTITION BY sku ORDER BY day ROWS 27 PRECEDING) AS units_per_day_28d
FROM filled
WINDOW upto AS (PARTITION BY sku ORDER BY day ROWS UNBOUNDED PRECEDING)
ORDER BY sku, day
"""


def batch_features(lake_dir: Path, engine: Engine | None = None) -> pa.Table:
    """The ``sku_daily_features`` rows computed from gold ``sku_daily`` (empty without it)."""
    daily = read_all(gold_path(lake_dir, SKU_DAILY))
    if daily is None or daily.num_rows == 0:
        return FEATURES_SCHEMA.empty_table()
    own = engine is None
    engine = engine or DuckDBEngine()
    try:
        return conform(engine.query(FEATURES_SQL, {"sku_daily": daily}), FEATURES_SCHEMA)
    finally:
        if own:
            engine.close()


def export_features(lake_dir: Path, engine: Engine | None = None) -> tuple[pa.Table, Path, int]:
    """Write the parquet offline source; returns the rows, its path and the gold version."""
    version = table_version(gold_path(lake_dir, SKU_DAILY))
    rows = batch_features(lake_dir, engine)
    path = feast_source_path(lake_dir, SKU_DAILY_FEATURES)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(rows, tmp)
    tmp.replace(path)  # readers never see half a file
    return rows, path, version


def run_features(
    settings: Settings, materialize: bool = True, engine: Engine | None = None
) -> StepResult:
    """Export the batch features; apply the Feast repository and materialise them online."""
    from featurestore.repo import BATCH_SKU_VIEW, apply

    rows, path, version = export_features(settings.lake_dir, engine)
    names = (f"gold/{SKU_DAILY}",), (f"feast/{SKU_DAILY_FEATURES}",)
    details: dict[str, object] = {"sku_daily_version": version, "offline_source": str(path)}
    if rows.num_rows and materialize:
        stamps = rows.column(TIMESTAMP)
        start: datetime = pa.compute.min(stamps).as_py()
        end: datetime = pa.compute.max(stamps).as_py()
        store = apply(settings)
        store.materialize(
            start - timedelta(seconds=1), end + timedelta(seconds=1), feature_views=[BATCH_SKU_VIEW]
        )
        details["materialized_until"] = end.isoformat()
    log.info("features.exported", rows=rows.num_rows, path=str(path), **details)
    return StepResult(rows.num_rows, rows.num_rows, names[0], names[1], details)
