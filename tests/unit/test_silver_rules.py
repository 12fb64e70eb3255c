"""The silver typing rules (DuckDB over in-memory arrow): what passes, and each reason."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pytest

from batch.silver import connect
from batch.silver_sql import SQL
from schemas.lake import COMPETITOR_PRICES, INVENTORY, ORDER_LINES, USER_ACTIVITY

T = datetime(2026, 1, 5, 23, 59, tzinfo=UTC)


def typed(table: str, payloads: list[str]) -> list[dict[str, object]]:
    bronze = pa.table(
        {
            "event_id": [f"e{i}" for i in range(len(payloads))],
            "event_time": pa.array([T] * len(payloads), pa.timestamp("us", tz="UTC")),
            "kafka_partition": pa.array([0] * len(payloads), pa.int32()),
            "kafka_offset": pa.array(range(len(payloads)), pa.int64()),
            "payload": payloads,
            "ingested_at": pa.array([T] * len(payloads), pa.timestamp("us", tz="UTC")),
        }
    )
    con = connect()
    con.register("bronze", bronze)
    rows = con.sql(SQL[table]).to_arrow_table().to_pylist()
    con.close()
    return rows


def j(**fields: object) -> str:
    return orjson.dumps(fields).decode()


ACTIVITY = {"user_id": "u1", "session_id": "s1", "action": "view", "sku": "SKU-1"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (j(**ACTIVITY), None),
        (j(**{**ACTIVITY, "action": "search", "sku": None, "query": "tea"}), None),
        ("{not json", "payload is not valid JSON"),
        (j(**{**ACTIVITY, "user_id": " "}), "user_id must not be empty"),
        (j(**{**ACTIVITY, "session_id": "x" * 129}), "session_id is longer than 128 characters"),
        (j(**{**ACTIVITY, "action": "buy"}), "action is not one of"),
        (j(**{**ACTIVITY, "action": "search", "query": "tea"}), "sku must be null"),
        (j(**{**ACTIVITY, "action": "search", "sku": None}), "query is required"),
        (j(**{**ACTIVITY, "sku": None}), "sku is required when action is 'view'"),
        (j(**{**ACTIVITY, "query": "tea"}), "query is only allowed"),
    ],
)
def test_user_activity_rules(payload: str, reason: str | None) -> None:
    (row,) = typed(USER_ACTIVITY, [payload])
    if reason is None:
        assert row["reason"] is None
        assert row["date"] == "2026-01-05"
    else:
        assert row["reason"] is not None
        assert str(row["reason"]).startswith(reason)


LINE = {"sku": "SKU-1", "quantity": 2, "unit_price": 1.5}
ORDER = {"order_id": "o1", "user_id": "u1", "store_id": "st1", "lines": [LINE]}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (j(**ORDER), None),
        (j(**{**ORDER, "lines": [LINE, {**LINE, "unit_price": "2.25"}]}), None),
        (j(**{**ORDER, "lines": []}), "lines must not be empty"),
        (j(**{**ORDER, "lines": "x"}), "lines is missing or not a list"),
        (j(**{**ORDER, "order_id": None}), "order_id is missing"),
        (
            j(**{**ORDER, "lines": [LINE, {**LINE, "quantity": 1.5}]}),
            "line 1: quantity is missing or not an integer",
        ),
        (j(**{**ORDER, "lines": [{**LINE, "quantity": 0}]}), "line 0: quantity must be between"),
        (
            j(**{**ORDER, "lines": [{**LINE, "unit_price": -1}]}),
            "line 0: unit_price must be a positive number",
        ),
        (j(**{**ORDER, "lines": [{**LINE, "sku": ""}]}), "line 0: sku must not be empty"),
    ],
)
def test_order_rules_and_one_row_per_line(payload: str, reason: str | None) -> None:
    rows = sorted(typed(ORDER_LINES, [payload]), key=lambda r: int(r["line"] or 0))
    reasons = {r["reason"] for r in rows}
    assert len(reasons) == 1, "every line of an order shares the order's verdict"
    if reason is None:
        assert reasons == {None}
        lines = orjson.loads(payload)["lines"]
        assert [r["line"] for r in rows] == list(range(len(lines)))
        assert [r["unit_price"] for r in rows] == [float(line["unit_price"]) for line in lines]
        assert [r["quantity"] for r in rows] == [line["quantity"] for line in lines]
    else:
        assert str(reasons.pop()).startswith(reason)


@pytest.mark.parametrize(
    ("table", "payload", "reason"),
    [
        (INVENTORY, j(sku="S", store_id="st", on_hand=0), None),
        (INVENTORY, j(sku="S", store_id="st", on_hand=-1), "on_hand must be between 0"),
        (INVENTORY, j(sku="S", store_id="st", on_hand="3"), "on_hand is missing or not an integer"),
        (INVENTORY, j(sku="S", on_hand=3), "store_id is missing"),
        (COMPETITOR_PRICES, j(sku="S", competitor="c", price="9.99"), None),
        (COMPETITOR_PRICES, j(sku="S", competitor="c", price=0), "price must be a positive"),
        (COMPETITOR_PRICES, j(sku="S", competitor="c", price="abc"), "price is missing"),
    ],
)
def test_inventory_and_competitor_rules(table: str, payload: str, reason: str | None) -> None:
    (row,) = typed(table, [payload])
    assert (row["reason"] is None) if reason is None else str(row["reason"]).startswith(reason)
