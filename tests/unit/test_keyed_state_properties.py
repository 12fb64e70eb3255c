"""Property-based tests of every keyed state the flow updates after parsing: whatever the
accepted events (any event time the policy lets through, any value within the contract's
bounds, any arrival order), an update never raises, every published value stays finite,
latest-wins values never move backwards and windows never freeze."""

from __future__ import annotations

import math
import pickle
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.dedupe import Item, SeenIds
from flows.features import MAX_SOURCES, SkuFeatures
from flows.records import SkuSignal, UserSignal
from flows.steps import ItemNeighbours, ShopperState, SkuState, new_sku_state
from online_models.pricing import Guardrails
from online_models.similarity import PAIR_DEPTH
from schemas.catalogue import CatalogueItem
from schemas.event_time import EARLIEST
from schemas.events import MAX_ON_HAND, MAX_PRICE, MAX_QUANTITY

NOW = 1_767_571_200.0  # 2026-01-05T00:00Z: the policy's clock
SKEW = 300.0
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CATALOGUE = {"S": CatalogueItem(sku="S", category="c", list_price=10.0, unit_cost=6.0)}
CATEGORIES = {"A": "c1", "B": "c2", "S": "c"}

# Every event time the contract and the policy accept: the contract's earliest up to now + skew,
# with most of the weight near now (where windows, sessions and rate limits interact).
times = st.one_of(
    st.floats(min_value=EARLIEST.timestamp(), max_value=NOW + SKEW),
    st.floats(min_value=NOW - 90_000, max_value=NOW + SKEW),
    st.sampled_from([EARLIEST.timestamp(), NOW + SKEW, NOW, NOW - 1]),
)
prices = st.one_of(
    st.floats(min_value=0.0001, max_value=float(MAX_PRICE)), st.sampled_from([0.0001, 1e6])
)
sources = st.sampled_from(["s1", "s2", "s3", "evil"])
sku_signals = st.one_of(
    st.builds(SkuSignal, st.sampled_from(["view", "add_to_cart"]), times),
    st.builds(SkuSignal, st.just("sale"), times, st.integers(1, MAX_QUANTITY), prices),
    st.builds(SkuSignal, st.just("stock"), times, st.integers(0, MAX_ON_HAND), source=sources),
    st.builds(SkuSignal, st.just("competitor"), times, price=prices, source=sources),
)
user_signals = st.builds(
    UserSignal,
    st.sampled_from(["view", "add_to_cart", "remove_from_cart", "wishlist", "search", "purchase"]),
    times,
    st.sampled_from(["s1", "s2", "order:1", "\u202eodd"]),
    st.lists(st.sampled_from(["A", "B", "S", "unknown"]), min_size=1, max_size=3).map(tuple),
)


def finite(values: dict[str, Any]) -> bool:
    return all(math.isfinite(v) for v in values.values() if isinstance(v, int | float))


def latest_by_event_time(signals: list[SkuSignal], kind: str, value: str) -> dict[str, Any]:
    """The value of the newest event per source (the later arrival among equal times)."""
    newest: dict[str, tuple[float, Any]] = {}
    for s in signals:
        if s.kind == kind and (s.source not in newest or s.t >= newest[s.source][0]):
            newest[s.source] = (s.t, getattr(s, value))
    return {k: v for k, (_, v) in newest.items()}


@PROPERTY
@given(st.lists(sku_signals, max_size=60))
def test_product_state_takes_any_accepted_events(signals: list[SkuSignal]) -> None:
    state = new_sku_state("S", CATALOGUE)
    for s in signals:
        out = state.apply(s)
        if out.change is not None:
            rails, item = Guardrails(), CATALOGUE["S"]
            floor = item.unit_cost * (1 + rails.min_margin)
            assert floor - 0.01 <= out.change.price <= item.list_price * rails.max_markup + 0.01
    if not signals:
        return
    values = state.values()
    assert finite(values)
    assert values["on_hand"] == sum(latest_by_event_time(signals, "stock", "quantity").values())
    competitors = latest_by_event_time(signals, "competitor", "price")
    assert values["min_competitor_price"] == (min(competitors.values()) if competitors else 0.0)
    assert pickle.loads(pickle.dumps(state)).values() == values  # snapshots still work


@PROPERTY
@given(st.lists(sku_signals, min_size=1, max_size=60), st.floats(NOW - 60, NOW))
def test_windows_never_freeze(history: list[SkuSignal], now: float) -> None:
    """After any accepted history, a view at the present still counts in the hour and day."""
    state = SkuState("S")
    for s in history:
        state.apply(s)
    before, moved = state.values(), now > state.watermark
    state.apply(SkuSignal("view", now))
    after = state.values()
    for window in ("1h", "24h"):  # the 5 min window may lag by up to the skew (5 min)
        assert after[f"views_{window}"] >= 1
        if not moved:
            assert after[f"views_{window}"] == before[f"views_{window}"] + 1


@PROPERTY
@given(st.lists(sku_signals, min_size=1, max_size=40), st.lists(times, max_size=20))
def test_older_events_never_move_latest_wins_values_backwards(
    signals: list[SkuSignal], old: list[float]
) -> None:
    state = SkuState("S")
    for s in signals:
        state.apply(s)
    before = state.values()
    oldest = min(s.t for s in signals)
    for t in old:
        t = min(t, oldest - 1)
        for s in (
            SkuSignal("stock", t, 1, source="s1"),
            SkuSignal("competitor", t, price=0.0001, source="s1"),
            SkuSignal("sale", t, 1, 0.0001),
        ):
            state.apply(s)
    after = state.values()
    for name in ("on_hand", "min_competitor_price", "last_price", "event_time"):
        if name == "on_hand" and "s1" not in latest_by_event_time(signals, "stock", "quantity"):
            continue  # a store never seen before: its first value is news, not a regression
        if name == "min_competitor_price" and "s1" not in latest_by_event_time(
            signals, "competitor", "price"
        ):
            continue
        if name == "last_price" and not any(s.kind == "sale" for s in signals):
            continue
        assert after[name] == before[name], name


@PROPERTY
@given(st.lists(st.tuples(times, prices), min_size=1, max_size=3 * MAX_SOURCES))
def test_sources_per_product_stay_bounded(updates: list[tuple[float, float]]) -> None:
    state = SkuState("S")
    for i, (t, price) in enumerate(updates):
        state.apply(SkuSignal("competitor", t, price=price, source=f"c{i}"))
        state.apply(SkuSignal("stock", t, 1, source=f"store{i}"))
    assert len(state.features.competitors) <= MAX_SOURCES
    assert len(state.features.stock) <= MAX_SOURCES
    assert len(state.features._seen) <= 2 * MAX_SOURCES
    newest = max(t for t, _ in updates)
    assert newest in {state.features._seen[("competitor", c)] for c in state.features.competitors}


@PROPERTY
@given(st.lists(user_signals, max_size=60))
def test_shopper_state_takes_any_accepted_events(signals: list[UserSignal]) -> None:
    state = ShopperState("u")
    starts = []
    for s in signals:
        out = state.apply(s, CATEGORIES)
        starts.append(state.features.session_start)
        assert len(out.pairs) <= (PAIR_DEPTH + 1) * len(s.skus)  # one message per item
    assert starts == sorted(starts)  # the session never goes back in event time
    if signals:
        values = state.features.values()
        assert finite(values)
        assert values["session_seconds"] >= 0
        assert len(values["recent_views"]) <= 20
    state.profile(CATEGORIES)
    pickle.loads(pickle.dumps(state))


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from("abcdefghij"), st.floats(0.0, 3.0)), max_size=300))
def test_item_neighbours_stay_bounded_and_finite(updates: list[tuple[str, float]]) -> None:
    state = ItemNeighbours()
    for item, weight in updates:
        top = state.add([(item, weight)])
        if top is not None:
            assert all(math.isfinite(w) for _, w in top)
    co = state.similarity.co
    assert len(co.weights) <= 4 * co.capacity


@PROPERTY
@given(st.lists(st.text(min_size=1, max_size=128), max_size=100))
def test_dedupe_emits_each_id_once(ids: list[str]) -> None:
    seen = SeenIds[Item](horizon_s=60, clock=lambda: NOW)
    emitted = [out for i in ids for out in seen.on_item(Item(i))[0] if out is not None]
    assert [e.event_id for e in emitted] == list(dict.fromkeys(ids))


@PROPERTY
@given(st.lists(sku_signals, min_size=1, max_size=80))
def test_windows_move_exactly_as_if_advanced_at_every_signal(signals: list[SkuSignal]) -> None:
    """A product's windows are advanced only when the watermark enters a later bucket: the
    windows end where advancing them at every signal leaves them."""
    skipping, every = SkuFeatures(), SkuFeatures()
    for s in signals:
        skipping.apply(s)
        every.apply(s)
        for w in every.windows.values():
            w.advance(every.watermark)
        assert pickle.dumps(skipping) == pickle.dumps(every)
