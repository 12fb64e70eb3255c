"""Property-based tests of parsing: whatever bytes arrive, parsing returns; every message it
refuses becomes a dead letter with a reason that fits the dead-letter topic; every message it
accepts satisfies the contract's bounds and the event-time policy, and the steps after
parsing (lake row, routing, dedupe key) take it without failing."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.dedupe import dedupe_key
from flows.parse import dead_letter, encode_dead_letter, parse_message
from flows.records import Accepted, LakeRow, Rejected
from flows.steps import Routed
from schemas.event_time import EARLIEST, LATEST, EventTimePolicy
from schemas.events import (
    MAX_ERROR_CHARS,
    MAX_ON_HAND,
    MAX_ORDER_LINES,
    MAX_PRICE,
    MAX_QUANTITY,
    DeadLetter,
    InventoryLevel,
    Order,
)
from schemas.topics import COMPETITOR_PRICES, INPUT_TOPICS, INVENTORY, USER_ACTIVITY, Topic

NOW = 1_767_571_200.0  # 2026-01-05T00:00Z: the injected clock
POLICY = EventTimePolicy(skew_s=300, clock=lambda: NOW)
TOPICS = {f"p.{t.name}": t for t in INPUT_TOPICS}
MAX_BYTES = 20_000  # a small topic limit, so that truncation is exercised
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

topic_names = st.sampled_from(sorted(TOPICS))
odd_text = st.text(
    st.characters(codec=None, exclude_categories=()), max_size=300
)  # any code point: controls, surrogates, emoji, right-to-left marks
offsets = st.sampled_from(["Z", "+00:00", "+01:00", "-12:00", "+14:00", "+23:59"])
extreme_times = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).map(
        lambda d: d.isoformat()
    ),
    st.builds(
        lambda d, off: d.isoformat() + off,
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
        offsets,
    ),
    st.sampled_from(
        [
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "2026-01-05T00:05:01Z",
            "2026-01-05T00:04:59Z",
            "",
            "now",
            "2026-02-30T00:00:00Z",
            "2026-01-05T24:00:00Z",
        ]
    ),
    st.integers(),
    st.floats(),
    odd_text,
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["1e400", "-0", "0.00001", "NaN", "Infinity", "99999999.99999", True, None]),
)
anything = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, odd_text),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)


def hostile_event(topic: Topic) -> st.SearchStrategy[dict[str, Any]]:
    """Objects shaped like ``topic``'s events, every field possibly hostile."""
    ident = st.one_of(st.just("SKU-00001"), odd_text, numbers)
    line = st.fixed_dictionaries({"sku": ident, "quantity": numbers, "unit_price": numbers})
    fields: dict[str, st.SearchStrategy[Any]] = {
        "event_id": ident,
        "event_time": extreme_times,
        "user_id": ident,
        "session_id": ident,
        "action": st.sampled_from(["view", "add_to_cart", "search", "wishlist", "x", ""]),
        "sku": st.one_of(st.none(), ident),
        "query": st.one_of(st.none(), odd_text),
        "order_id": ident,
        "store_id": ident,
        "competitor": ident,
        "lines": st.one_of(st.lists(line, max_size=5), anything),
        "on_hand": numbers,
        "price": numbers,
    }
    names = list(topic.model.model_fields)
    return st.fixed_dictionaries(
        {}, optional={n: fields.get(n, anything) for n in names} | {"extra": anything}
    )


def to_json(value: Any) -> bytes:
    """JSON as a careless producer writes it: NaN/Infinity tokens, escaped lone surrogates."""
    return json.dumps(value, allow_nan=True, default=str).encode()


def check(result: Accepted | Rejected, raw: bytes) -> None:
    """What must hold for any parsed message."""
    if isinstance(result, Rejected):
        assert result.error
        letter = dead_letter(result, MAX_BYTES)
        encoded = encode_dead_letter(letter)
        assert len(encoded) <= MAX_BYTES
        back = DeadLetter.model_validate_json(encoded)
        assert back.raw_size == len(raw)
        assert 0 < len(back.error) <= MAX_ERROR_CHARS
        return
    event = result.event
    assert EARLIEST <= event.event_time <= LATEST
    assert result.t <= NOW + POLICY.skew_s
    assert event.event_time.utcoffset() == timedelta(0)
    assert math.isfinite(result.t)
    if isinstance(event, InventoryLevel):
        assert 0 <= event.on_hand <= MAX_ON_HAND
    if isinstance(event, Order):
        assert 1 <= len(event.lines) <= MAX_ORDER_LINES
        for ln in event.lines:
            assert 0 < ln.quantity <= MAX_QUANTITY
            assert Decimal(0) < ln.unit_price <= MAX_PRICE
    LakeRow.of(result)
    routed = Routed.of(result)
    dedupe_key(routed.event_id, routed.t)
    for _key, (_, signal) in routed.sku:
        assert math.isfinite(signal.price)
        assert math.isfinite(signal.t)


@PROPERTY
@given(
    topic=topic_names,
    value=st.binary(max_size=2_000),
    headers=st.lists(
        st.tuples(odd_text, st.one_of(st.none(), st.binary(max_size=300))), max_size=3
    ),
)
def test_arbitrary_bytes_never_raise(topic: str, value: bytes, headers: Any) -> None:
    result = parse_message(TOPICS, topic, 0, 1, value[:8], value, headers, policy=POLICY)
    check(result, value)


@PROPERTY
@given(data=st.data(), topic=st.sampled_from(INPUT_TOPICS))
def test_schema_shaped_hostile_events_never_raise(data: st.DataObject, topic: Topic) -> None:
    raw = to_json(data.draw(hostile_event(topic)))
    result = parse_message(TOPICS, f"p.{topic.name}", 2, 3, None, raw, policy=POLICY)
    check(result, raw)


@PROPERTY
@given(value=anything)
def test_any_json_value_never_raises(value: Any) -> None:
    raw = to_json(value)
    check(parse_message(TOPICS, "p.orders", 0, 0, None, raw, policy=POLICY), raw)


@PROPERTY
@given(
    when=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_event_times_outside_the_policy_are_refused_with_the_reason(
    when: datetime, offset_minutes: int
) -> None:
    stamp = when.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    raw = orjson.dumps(
        {
            "event_id": "e",
            "event_time": stamp.isoformat(),
            "sku": "S",
            "competitor": "c",
            "price": 9.5,
        }
    )
    result = parse_message(TOPICS, "p.competitor-prices", 0, 0, None, raw, policy=POLICY)
    check(result, raw)
    in_range = EARLIEST <= stamp <= LATEST
    if not in_range:
        assert isinstance(result, Rejected)
        assert "event_time" in result.error
    elif stamp.timestamp() > NOW + POLICY.skew_s:
        assert isinstance(result, Rejected)
        assert "event_time: in the future" in result.error
    else:
        assert isinstance(result, Accepted)  # history is accepted (backfills, replays)


@pytest.mark.parametrize(
    ("field", "literal"),
    [
        ("on_hand", str(MAX_ON_HAND + 1)),
        ("on_hand", str(2**64)),
        ("on_hand", "-1"),
        ("on_hand", "3.0"),
        ("on_hand", '"5"'),
        ("sku", '"' + "x" * 129 + '"'),
        ("sku", '"a\\nb"'),
        ("sku", '"a\\u0000b"'),
        ("store_id", '""'),
        ("store_id", '"   "'),
        ("event_time", '"0001-01-01T00:30:00+01:00"'),
        ("event_time", '"9999-12-31T00:00:00Z"'),
        ("event_time", '"2026-01-05T00:05:01Z"'),
        ("event_time", '"1999-12-31T23:59:59Z"'),
        ("event_time", '"2026-01-05T00:00:00"'),
        ("event_time", "1e300"),
    ],
)
def test_each_bound_of_the_inventory_contract_refuses(field: str, literal: str) -> None:
    good = {
        "event_id": "e",
        "event_time": "2026-01-05T00:00:00Z",
        "sku": "S",
        "store_id": "s",
        "on_hand": 5,
    }
    ok = parse_message(TOPICS, "p.inventory", 0, 0, None, to_json(good), policy=POLICY)
    assert isinstance(ok, Accepted)
    rest = to_json({k: v for k, v in good.items() if k != field})
    raw = rest[:-1] + f', "{field}": {literal}}}'.encode()
    result = parse_message(TOPICS, "p.inventory", 0, 0, None, raw, policy=POLICY)
    assert isinstance(result, Rejected)
    assert result.error.startswith(field), result.error


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(literal: str) -> None:
    raw = b'{"event_id": "e", "event_time": "2026-01-05T00:00:00Z", "sku": "S", "store_id": "s", '
    result = parse_message(
        TOPICS, "p.inventory", 0, 0, None, raw + f'"on_hand": {literal}}}'.encode(), policy=POLICY
    )
    assert isinstance(result, Rejected)
    assert result.error.startswith(("on_hand", "(event): not valid JSON")), result.error


@pytest.mark.parametrize("price", [0, -1, "1000000.01", 1e12, "NaN", "Infinity", "0.00001"])
def test_competitor_prices_out_of_bounds_are_refused(price: Any) -> None:
    raw = to_json(
        {
            "event_id": "e",
            "event_time": "2026-01-05T00:00:00Z",
            "sku": "S",
            "competitor": "c",
            "price": price,
        }
    )
    result = parse_message(TOPICS, "p.competitor-prices", 0, 0, None, raw, policy=POLICY)
    assert isinstance(result, Rejected)
    assert result.error.startswith("price")


def test_an_order_with_too_many_lines_is_refused() -> None:
    lines = [{"sku": "S", "quantity": 1, "unit_price": 1.0}] * (MAX_ORDER_LINES + 1)
    raw = to_json(
        {
            "event_id": "e",
            "event_time": "2026-01-05T00:00:00Z",
            "order_id": "o",
            "user_id": "u",
            "store_id": "s",
            "lines": lines,
        }
    )
    result = parse_message(TOPICS, "p.orders", 0, 0, None, raw, policy=POLICY)
    assert isinstance(result, Rejected)
    assert result.error.startswith("lines")


def test_an_unexpected_failure_is_dead_lettered_with_the_exception_type() -> None:
    class Exploding(dict[str, Topic]):
        def __getitem__(self, key: str) -> Topic:
            raise OverflowError("date value out of range")

    result = parse_message(Exploding(), "p.inventory", 0, 9, None, b"{}", policy=POLICY)
    assert isinstance(result, Rejected)
    assert result.error == "OverflowError: date value out of range"
    assert dead_letter(result).error == "OverflowError: date value out of range"


def test_the_future_is_judged_against_the_kafka_timestamp_when_it_is_earlier() -> None:
    raw = to_json(
        {
            "event_id": "e",
            "event_time": "2026-01-04T23:00:00Z",
            "user_id": "u",
            "session_id": "s",
            "action": "view",
            "sku": "S",
        }
    )
    accepted = parse_message(TOPICS, "p.user-activity", 0, 0, None, raw, policy=POLICY)
    assert isinstance(accepted, Accepted)
    early = NOW - 7_200  # the message reached Kafka two hours before now
    refused = parse_message(
        TOPICS, "p.user-activity", 0, 0, None, raw, policy=POLICY, received=early
    )
    assert isinstance(refused, Rejected)
    assert "in the future" in refused.error
    later = parse_message(
        TOPICS, "p.user-activity", 0, 0, None, raw, policy=POLICY, received=NOW + 9e6
    )
    assert isinstance(later, Accepted)  # a forged late timestamp moves nothing past now


@pytest.mark.parametrize(
    "raw",
    [
        b'{"x": "' + b"\x01" * 400_000 + b'"}',  # JSON escapes grow it 6x
        b"\xff" * 300_000,  # not UTF-8: base64
        ("é" * 200_000).encode(),
    ],
)
def test_a_dead_letter_too_big_for_the_topic_is_cut_and_records_the_original_size(
    raw: bytes,
) -> None:
    result = parse_message(TOPICS, f"p.{INVENTORY.name}", 1, 2, None, raw, policy=POLICY)
    assert isinstance(result, Rejected)
    letter = dead_letter(result, MAX_BYTES)
    encoded = encode_dead_letter(letter)
    assert len(encoded) <= MAX_BYTES
    assert letter.raw_truncated
    assert letter.raw_size == len(raw)
    assert len(encoded) > MAX_BYTES // 2  # cut to fit, not emptied
    whole = dead_letter(result)
    assert not whole.raw_truncated
    assert whole.raw_size == len(raw)


def test_valid_events_of_every_topic_still_pass() -> None:
    stamp = datetime.fromtimestamp(NOW, UTC).isoformat()
    for topic, body in [
        (USER_ACTIVITY, {"user_id": "u", "session_id": "s", "action": "search", "query": "tea"}),
        (COMPETITOR_PRICES, {"sku": "S", "competitor": "c", "price": "999999.9999"}),
        (INVENTORY, {"sku": "S", "store_id": "s", "on_hand": MAX_ON_HAND}),
    ]:
        raw = to_json({"event_id": "ok", "event_time": stamp, **body})
        result = parse_message(TOPICS, f"p.{topic.name}", 0, 0, None, raw, policy=POLICY)
        assert isinstance(result, Accepted), result


def test_every_message_of_the_fuzz_benchmark_is_refused_with_a_reason() -> None:
    """The benchmark counts on it: each generated hostile message ends as one dead letter."""
    import random

    from benchmarks.hostile import HUGE_EVERY, hostile
    from simulator.config import ShopConfig
    from simulator.shop import Shop

    rng, kinds = random.Random(5), set()
    events = [e for _, e in zip(range(2_000), Shop(ShopConfig(seed=9)).events(), strict=False)]
    for n, good in enumerate(events):
        kind, topic, key, value = hostile(rng, good, HUGE_EVERY - 1 if n == 0 else n)
        kinds.add(kind)
        result = parse_message(
            TOPICS, f"p.{topic.name}", 0, n, key, value, policy=EventTimePolicy()
        )
        assert isinstance(result, Rejected), (kind, value[:200])
        assert len(encode_dead_letter(dead_letter(result, 1_000_000))) <= 1_000_000
    assert {"huge", "event_time", "id", "number", "missing", "bytes", "cut_json"} <= kinds
