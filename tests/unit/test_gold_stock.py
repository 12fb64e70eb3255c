"""Gold ``sku_daily``'s stock: each store's last level on or before the day, summed over the
stores, run by DuckDB in process on hand-made silver rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from batch.engines.duckdb_engine import DuckDBEngine
from batch.gold import SKU_DAILY_SQL
from schemas.lake import COMPETITOR_PRICES, INVENTORY, ORDER_LINES, SILVER_SCHEMAS, USER_ACTIVITY


def at(day: int, hour: int = 12) -> dict[str, Any]:
    when = datetime(2026, 1, day, hour, tzinfo=UTC)
    return {"event_time": when, "date": when.date().isoformat()}


def level(n: int, day: int, store: str, on_hand: int, hour: int = 12) -> dict[str, Any]:
    return {"event_id": f"i{n}", **at(day, hour), "sku": "A", "store_id": store, "on_hand": on_hand}


def sale(n: int, day: int) -> dict[str, Any]:
    return {
        "event_id": f"o{n}",
        **at(day),
        "order_id": f"o{n}",
        "user_id": "u",
        "store_id": "s1",
        "line": 0,
        "sku": "A",
        "quantity": 1,
        "unit_price": 2.0,
    }


def stock_by_day(levels: list[dict[str, Any]], sale_days: list[int]) -> dict[str, int | None]:
    tables = {
        INVENTORY: pa.Table.from_pylist(levels, SILVER_SCHEMAS[INVENTORY]),
        ORDER_LINES: pa.Table.from_pylist(
            [sale(n, d) for n, d in enumerate(sale_days)], SILVER_SCHEMAS[ORDER_LINES]
        ),
        USER_ACTIVITY: SILVER_SCHEMAS[USER_ACTIVITY].empty_table(),
        COMPETITOR_PRICES: SILVER_SCHEMAS[COMPETITOR_PRICES].empty_table(),
    }
    wanted = pa.table({"d": sorted({at(d)["date"] for d in sale_days})})
    engine = DuckDBEngine()
    try:
        rows = engine.query(SKU_DAILY_SQL, {**tables, "wanted": wanted}).to_pylist()
    finally:
        engine.close()
    return {r["date"]: r["stock"] for r in rows}


def test_each_stores_last_level_carries_over_to_later_days() -> None:
    levels = [
        level(1, 2, "s1", 5),
        level(2, 4, "s1", 7),
        level(3, 3, "s2", 2),
        level(4, 4, "s1", 6, hour=18),  # the day's last level counts
    ]
    stock = stock_by_day(levels, sale_days=[1, 2, 3, 4, 5])
    assert stock == {
        "2026-01-01": None,  # no store has a level yet
        "2026-01-02": 5,  # s1's level of the same day
        "2026-01-03": 7,  # s1's 5 carried over, s2's 2 of the day
        "2026-01-04": 8,  # s1's last level of the day, 6, and s2's 2
        "2026-01-05": 8,
    }
