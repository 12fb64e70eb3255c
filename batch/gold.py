"""Silver → gold: ``sku_daily``, ``user_item_interactions`` and ``orders_enriched``.

- ``sku_daily``: the dates touched by new silver files are recomputed whole from silver and
  replace their partitions (idempotent, and right after a compaction of silver too);
- ``orders_enriched``: new order lines (not yet in gold, by event_id) joined with the
  catalogue are appended;
- ``user_item_interactions``: re-aggregated over all of silver when silver changed (a group-by
  of a few hundred thousand rows takes well under a second; no double counting can creep in).

Each output commit records the silver versions it covers (``gold_app_id``). The queries run on
the batch engine (DuckDB, or Spark after transpiling: batch/engines/). Revenue is summed in
DECIMAL (prices to the millionth), so no engine's summation order changes its last digits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import structlog

from batch.engines import Engine
from batch.engines.duckdb_engine import DuckDBEngine
from batch.lake import (
    append,
    new_files,
    processed_version,
    read_all,
    read_dates,
    read_increment,
    replace,
    table_version,
    touched_dates,
)
from batch.result import StepResult
from batch.silver import conform
from schemas.lake import (
    COMPETITOR_PRICES,
    GOLD_SCHEMAS,
    INVENTORY,
    ORDER_LINES,
    ORDERS_ENRICHED,
    SILVER_SCHEMAS,
    SKU_DAILY,
    USER_ACTIVITY,
    USER_ITEM_INTERACTIONS,
    gold_app_id,
    gold_path,
    silver_path,
)

log = structlog.get_logger(__name__)

SKU_DAILY_INPUTS = (ORDER_LINES, USER_ACTIVITY, COMPETITOR_PRICES, INVENTORY)
VIEW_WEIGHT, CART_WEIGHT, PURCHASE_WEIGHT = 1.0, 3.0, 10.0


def run_gold(
    lake_dir: Path,
    catalogue: pa.Table,
    step: Callable[[str], None] = lambda _: None,
    engine: Engine | None = None,
) -> StepResult:
    """Bring the three gold tables up to date with silver (on DuckDB by default)."""
    own = engine is None
    engine = engine or DuckDBEngine()
    try:
        result = sku_daily(lake_dir, engine)
        step("gold sku_daily")
        result = result + orders_enriched(lake_dir, engine, catalogue)
        step("gold orders_enriched")
        result = result + user_item_interactions(lake_dir, engine)
        step("gold user_item_interactions")
    finally:
        if own:
            engine.close()
    return result


def _empty(table: str) -> pa.Table:
    return SILVER_SCHEMAS[table].empty_table()


def _silver(lake_dir: Path, table: str, dates: set[str] | None = None) -> pa.Table:
    path = silver_path(lake_dir, table)
    rows = read_all(path) if dates is None else read_dates(path, dates)
    return rows if rows is not None and rows.num_rows else _empty(table)


SKU_DAILY_SQL = """
WITH sales AS (
    SELECT sku, date, sum(quantity) AS units,
           sum(quantity * unit_price::DECIMAL(18, 6))::DOUBLE AS revenue,
           count(DISTINCT event_id) AS orders, min(unit_price) AS min_price,
           max(unit_price) AS max_price
    FROM order_lines GROUP BY ALL
), viewed AS (
    SELECT sku, date, count(*) AS views FROM user_activity WHERE action = 'view' GROUP BY ALL
), competition AS (
    SELECT sku, date, min(price) AS competitor_min FROM competitor_prices GROUP BY ALL
), stock_days AS (  -- last level per store and day
    SELECT sku, store_id, date::DATE AS day, arg_max(on_hand, event_time) AS on_hand
    FROM inventory GROUP BY ALL
), keys AS (
    SELECT sku, date FROM sales UNION SELECT sku, date FROM viewed
    UNION SELECT sku, date FROM competition
    UNION SELECT DISTINCT sku, day::VARCHAR FROM stock_days WHERE day::VARCHAR IN (SELECT d FROM wanted)
), store_grid AS (
    SELECT k.sku, k.date, s.store_id FROM keys k JOIN (SELECT DISTINCT sku, store_id FROM stock_days) s USING (sku)
), grid_and_levels AS (  -- a store's levels and the days it is asked for, in one line
    SELECT sku, store_id, date::DATE AS day, 1 AS asked, date, CAST(NULL AS BIGINT) AS on_hand
    FROM store_grid
    UNION ALL
    SELECT sku, store_id, day, 0 AS asked, CAST(NULL AS VARCHAR) AS date, on_hand FROM stock_days
), carried AS (  -- each store's last level on or before the day (a level first on its day)
    SELECT sku, date, store_id, asked, last_value(on_hand IGNORE NULLS) OVER (
        PARTITION BY sku, store_id ORDER BY day, asked
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS on_hand
    FROM grid_and_levels
), store_stock AS (
    SELECT sku, date, store_id, on_hand FROM carried WHERE asked = 1 AND on_hand IS NOT NULL
), stock AS (
    SELECT sku, date, sum(on_hand) AS stock FROM store_stock GROUP BY ALL
)
SELECT k.sku, k.date, k.date::TIMESTAMP AS day_start,
       coalesce(s.units, 0) AS units, coalesce(s.revenue, 0.0) AS revenue,
       coalesce(s.orders, 0) AS orders,
       CASE WHEN s.units > 0 THEN s.revenue / s.units END AS avg_price,
       s.min_price, s.max_price, coalesce(v.views, 0) AS views,
       c.competitor_min, st.stock
FROM keys k
LEFT JOIN sales s USING (sku, date) LEFT JOIN viewed v USING (sku, date)
LEFT JOIN competition c USING (sku, date) LEFT JOIN stock st USING (sku, date)
WHERE k.date IN (SELECT d FROM wanted)
ORDER BY k.date, k.sku
"""  # noqa: E501


def _silver_changes(lake_dir: Path, output: Path, inputs: tuple[str, ...]) -> dict[str, int]:
    """Silver versions not yet covered by ``output`` (input table → its current version)."""
    changed = {}
    for table in inputs:
        current = table_version(silver_path(lake_dir, table))
        done = processed_version(output, gold_app_id(table))
        if current >= 0 and (done is None or done < current):
            changed[table] = current
    return changed


def sku_daily(lake_dir: Path, engine: Engine) -> StepResult:
    out = gold_path(lake_dir, SKU_DAILY)
    names = tuple(f"silver/{t}" for t in SKU_DAILY_INPUTS), (f"gold/{SKU_DAILY}",)
    dates: set[str] = set()
    marks = {}
    for table in SKU_DAILY_INPUTS:
        path = silver_path(lake_dir, table)
        files, version = new_files(path, processed_version(out, gold_app_id(table)))
        dates |= touched_dates(files)
        if version >= 0:
            marks[gold_app_id(table)] = version
    if not dates:
        return StepResult(inputs=names[0], outputs=names[1])
    inputs = {
        t: _silver(lake_dir, t, dates) for t in (ORDER_LINES, USER_ACTIVITY, COMPETITOR_PRICES)
    }
    inputs[INVENTORY] = _silver(lake_dir, INVENTORY)  # levels carry over from earlier days
    wanted = pa.table({"d": sorted(dates)})
    rows = conform(
        engine.query(SKU_DAILY_SQL, {**inputs, "wanted": wanted}), GOLD_SCHEMAS[SKU_DAILY]
    )
    replace(out, rows, marks=marks, partition_by=["date"], dates=dates)
    rows_in = sum(t.num_rows for t in inputs.values())
    log.info("gold.sku_daily", dates=len(dates), rows=rows.num_rows)
    return StepResult(rows_in, rows.num_rows, names[0], names[1], {"sku_daily_dates": len(dates)})


ORDERS_ENRICHED_SQL = """
SELECT o.order_id, o.event_id, o.event_time, o.date, o.user_id, o.store_id, o.sku,
       c.category, o.quantity, o.unit_price, c.unit_cost,
       o.quantity * o.unit_price AS revenue,
       o.quantity * (o.unit_price - c.unit_cost) AS margin
FROM fresh o LEFT JOIN catalogue c USING (sku)
WHERE o.event_id NOT IN (SELECT event_id FROM existing)
ORDER BY o.date, o.event_time, o.event_id, o.line
"""


def orders_enriched(lake_dir: Path, engine: Engine, catalogue: pa.Table) -> StepResult:
    out = gold_path(lake_dir, ORDERS_ENRICHED)
    app_id = gold_app_id(ORDER_LINES)
    names = (f"silver/{ORDER_LINES}",), (f"gold/{ORDERS_ENRICHED}",)
    columns = SILVER_SCHEMAS[ORDER_LINES].names
    increment = read_increment(
        silver_path(lake_dir, ORDER_LINES), processed_version(out, app_id), columns
    )
    if increment.rows.num_rows == 0:
        return StepResult(inputs=names[0], outputs=names[1])
    existing = read_dates(out, increment.dates, ["event_id"])
    if existing.num_rows == 0:
        existing = pa.table({"event_id": pa.array([], pa.string())})
    inputs = {"fresh": increment.rows, "catalogue": catalogue, "existing": existing}
    rows = conform(engine.query(ORDERS_ENRICHED_SQL, inputs), GOLD_SCHEMAS[ORDERS_ENRICHED])
    append(out, rows, marks={app_id: increment.version}, partition_by=["date"])
    unknown = rows.column("category").null_count
    log.info("gold.orders_enriched", rows=rows.num_rows, unknown_skus=unknown)
    return StepResult(
        increment.rows.num_rows,
        rows.num_rows,
        names[0],
        names[1],
        {"orders_enriched_unknown_skus": unknown},
    )


INTERACTIONS_SQL = f"""
WITH events AS (
    SELECT user_id, sku, event_time,
           CASE WHEN action = 'view' THEN 1 ELSE 0 END AS views,
           CASE WHEN action = 'add_to_cart' THEN 1 ELSE 0 END AS carts, 0 AS purchases
    FROM user_activity WHERE sku IS NOT NULL AND action IN ('view', 'add_to_cart')
    UNION ALL
    SELECT user_id, sku, event_time, 0, 0, quantity FROM order_lines
)
SELECT user_id, sku, sum(views) AS views, sum(carts) AS carts, sum(purchases) AS purchases,
       {VIEW_WEIGHT} * sum(views) + {CART_WEIGHT} * sum(carts)
           + {PURCHASE_WEIGHT} * sum(purchases) AS weight,
       min(event_time) AS first_time, max(event_time) AS last_time
FROM events GROUP BY ALL ORDER BY user_id, sku
"""


def user_item_interactions(lake_dir: Path, engine: Engine) -> StepResult:
    out = gold_path(lake_dir, USER_ITEM_INTERACTIONS)
    inputs = (USER_ACTIVITY, ORDER_LINES)
    names = tuple(f"silver/{t}" for t in inputs), (f"gold/{USER_ITEM_INTERACTIONS}",)
    changed = _silver_changes(lake_dir, out, inputs)
    if not changed:
        return StepResult(inputs=names[0], outputs=names[1])
    marks = {gold_app_id(t): table_version(silver_path(lake_dir, t)) for t in inputs}
    sources = {t: _silver(lake_dir, t) for t in inputs}
    rows = conform(engine.query(INTERACTIONS_SQL, sources), GOLD_SCHEMAS[USER_ITEM_INTERACTIONS])
    replace(out, rows, marks=marks, partition_by=None)
    log.info("gold.user_item_interactions", rows=rows.num_rows)
    return StepResult(sum(t.num_rows for t in sources.values()), rows.num_rows, *names)
