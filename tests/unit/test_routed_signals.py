"""What each kind of valid event becomes on its way to the keyed steps: its product signals
and its shopper signal, exactly (flows.steps.signals, Routed.of)."""

from __future__ import annotations

import orjson
import pytest

from flows.parse import parse_message
from flows.records import Accepted, SkuSignal, UserSignal
from flows.steps import Routed, sku_signals, user_signal
from schemas.event_time import EventTimePolicy
from schemas.topics import COMPETITOR_PRICES, INVENTORY, ORDERS, USER_ACTIVITY, Topic

T = "2026-01-05T10:00:00Z"
AT = 1_767_607_200.0  # T in epoch seconds


def accepted(topic: Topic, payload: dict[str, object]) -> Accepted:
    body = orjson.dumps({"event_id": "e1", "event_time": T, **payload})
    rec = parse_message({topic.name: topic}, topic.name, 0, 1, b"k", body, policy=EventTimePolicy())
    assert isinstance(rec, Accepted), rec
    return rec


def activity(action: str, sku: str | None = "S1") -> Accepted:
    payload: dict[str, object] = {"user_id": "u1", "session_id": "s1", "action": action}
    if sku is not None:
        payload["sku"] = sku
    else:
        payload["query"] = "shoes"
    return accepted(USER_ACTIVITY, payload)


@pytest.mark.parametrize("action", ["view", "add_to_cart", "remove_from_cart"])
def test_a_view_or_a_cart_is_a_product_signal_and_a_shopper_signal(action: str) -> None:
    routed = Routed.of(activity(action))
    assert routed == Routed(
        "e1",
        AT,
        [("S1", ("S1", SkuSignal(action, AT)))],  # type: ignore[arg-type]
        ("u1", ("u1", UserSignal(action, AT, "s1", ("S1",)))),  # type: ignore[arg-type]
    )
    assert type(routed.sku[0][1][1].kind) is str  # a plain string crosses processes, no enum
    assert type(routed.user[1][1].kind) is str  # type: ignore[index]


@pytest.mark.parametrize(("action", "sku"), [("wishlist", "S1")])
def test_other_actions_on_a_product_are_the_shoppers_only(action: str, sku: str) -> None:
    rec = activity(action, sku)
    assert sku_signals(rec) == []
    assert user_signal(rec) == ("u1", ("u1", UserSignal(action, AT, "s1", (sku,))))  # type: ignore[arg-type]


def test_a_search_has_no_product() -> None:
    assert Routed.of(activity("search", None)) == Routed(
        "e1", AT, [], ("u1", ("u1", UserSignal("search", AT, "s1", ())))
    )


def test_an_order_is_a_sale_per_line_and_one_purchase() -> None:
    lines = [
        {"sku": "S1", "quantity": 2, "unit_price": "3.50"},
        {"sku": "S2", "quantity": 1, "unit_price": 10},
    ]
    rec = accepted(ORDERS, {"order_id": "o9", "user_id": "u1", "store_id": "a", "lines": lines})
    assert Routed.of(rec) == Routed(
        "e1",
        AT,
        [
            ("S1", ("S1", SkuSignal("sale", AT, 2, 3.5))),
            ("S2", ("S2", SkuSignal("sale", AT, 1, 10.0))),
        ],
        ("u1", ("u1", UserSignal("purchase", AT, "order:o9", ("S1", "S2")))),
    )


def test_stock_and_competitor_prices_are_product_signals_only() -> None:
    stock = accepted(INVENTORY, {"sku": "S1", "store_id": "a", "on_hand": 7})
    price = accepted(COMPETITOR_PRICES, {"sku": "S1", "competitor": "c", "price": 4.25})
    assert Routed.of(stock) == Routed(
        "e1", AT, [("S1", ("S1", SkuSignal("stock", AT, 7, source="a")))], None
    )
    assert Routed.of(price) == Routed(
        "e1", AT, [("S1", ("S1", SkuSignal("competitor", AT, price=4.25, source="c")))], None
    )
