"""Silver tables written directly (the batch silver job's layout), for tests of the steps
that read silver."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from schemas.lake import SILVER_SCHEMAS, silver_path

T = datetime(2026, 1, 1, tzinfo=UTC)


def write_silver(lake: Path, table: str, rows: list[dict[str, object]]) -> None:
    """``rows`` (without the event fields: added here) appended to the silver ``table``."""
    full = [
        {"event_id": f"{table}-{i}", "event_time": T, "date": "2026-01-01", **r}
        for i, r in enumerate(rows)
    ]
    write_deltalake(
        str(silver_path(lake, table)),
        pa.Table.from_pylist(full, schema=SILVER_SCHEMAS[table]),
        mode="append",
    )


def activity(user: str, sku: str | None, action: str = "view") -> dict[str, object]:
    return {"user_id": user, "session_id": f"{user}-s", "action": action, "sku": sku, "query": None}


def order_line(user: str, sku: str) -> dict[str, object]:
    order = {"order_id": f"{user}-o", "store_id": "st", "line": 0, "quantity": 1, "unit_price": 1.0}
    return {**order, "user_id": user, "sku": sku}
