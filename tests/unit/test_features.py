"""Per-product and per-shopper feature state, fed signals directly."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from flows.features import MAX_COVER_DAYS, ShopperFeatures, SkuFeatures, iso
from flows.records import SkuSignal, UserSignal
from schemas.event_time import EARLIEST

T0 = 1_767_571_200.0  # 2026-01-05T00:00Z


def test_windows_count_views_sales_and_conversion() -> None:
    f = SkuFeatures()
    for i in range(10):
        f.apply(SkuSignal("view", T0 + i))
    f.apply(SkuSignal("sale", T0 + 20, quantity=2, price=9.5))
    f.apply(SkuSignal("view", T0 + 3_600 + 30))  # 1 h later: the 5 min window moved on
    v = f.values(published_price=9.5)
    assert (v["views_5m"], v["views_1h"], v["views_24h"]) == (1, 1, 11)
    assert (v["units_5m"], v["units_24h"], v["revenue_24h"]) == (0, 2, 19.0)
    assert v["conversion_24h"] == round(2 / 11, 6)
    assert v["last_price"] == 9.5


def test_stock_and_competitors_keep_the_latest_by_event_time() -> None:
    f = SkuFeatures()
    f.apply(SkuSignal("stock", T0 + 100, quantity=5, source="store-01"))
    f.apply(SkuSignal("stock", T0 + 50, quantity=99, source="store-01"))  # older, arrives late
    f.apply(SkuSignal("stock", T0 + 60, quantity=7, source="store-02"))
    f.apply(SkuSignal("competitor", T0 + 10, price=8.0, source="a"))
    f.apply(SkuSignal("competitor", T0 + 20, price=11.0, source="b"))
    v = f.values(published_price=10.0)
    assert v["on_hand"] == 12
    assert v["min_competitor_price"] == 8.0
    assert v["competitor_gap"] == 0.25
    assert v["days_of_cover"] == MAX_COVER_DAYS  # nothing sold yet
    assert v["late_events"] == 0
    f.apply(SkuSignal("view", T0 - 1_000))
    assert f.values(10.0)["late_events"] == 1


def test_shopper_recent_items_affinity_and_session() -> None:
    f = ShopperFeatures()
    cats = {"a": "dairy", "b": "dairy", "c": "bakery"}
    f.apply(UserSignal("view", T0, "s1", ("a",)), cats)
    f.apply(UserSignal("view", T0 + 5, "s1", ("b",)), cats)
    f.apply(UserSignal("view", T0 + 9, "s1", ("a",)), cats)
    assert f.recent_items(3) == ["a", "b"]
    f.apply(UserSignal("purchase", T0 + 30, "order:1", ("c",)), cats)
    v = f.values()
    assert f.recent_items(3) == ["a", "b", "c"]  # views first: the latest interactions
    assert v["recent_purchases"] == ["c"]
    assert v["recent_views"] == ["a", "b", "a"]
    assert v["session_id"] == "order:1"
    assert set(v["category_affinity"]) == {"dairy", "bakery"}
    assert v["category_affinity"]["dairy"] > v["category_affinity"]["bakery"]


def test_state_snapshots_restore_the_state_as_it_was() -> None:
    import pickle

    from flows.records import SkuSignal
    from flows.snapshots import pickled
    from flows.steps import new_sku_state
    from schemas.catalogue import CatalogueItem

    catalogue = {"S": CatalogueItem(sku="S", category="c", list_price=10.0, unit_cost=6.0)}
    state = new_sku_state("S", catalogue)
    t = 1_767_571_200.0
    for i in range(500):
        state.apply(SkuSignal("view", t + 20 * i))
        state.apply(SkuSignal("add_to_cart", t + 20 * i))
    before = state.values()
    snapshot = pickled(state)  # what the keyed state's snapshot() returns
    state.apply(SkuSignal("view", t + 20_000))
    restored = pickle.loads(pickle.dumps(snapshot))  # what recovery stores and loads
    assert restored.values() == before != state.values()
    restored.apply(SkuSignal("view", t + 20_000))
    assert restored.values() == state.values()


def test_a_failing_sink_logs_its_error_before_bytewax_swallows_it() -> None:
    import pytest
    from bytewax.outputs import StatelessSinkPartition
    from structlog.testing import capture_logs

    from flows.sinks.serving import ServingSink
    from schemas.settings import Settings

    class Broken(StatelessSinkPartition[int]):
        def write_batch(self, items: list[int]) -> None:
            raise ValueError("redis said no")

    part = ServingSink(lambda _s, ctx=None: Broken(), Settings()).writer_for("prices", 0)
    with capture_logs() as logs, pytest.raises(ValueError, match="redis said no"):
        part.write_batch([1, 2])
    assert logs[0]["step"] == "prices"
    assert "redis said no" in logs[0]["error"]


@given(
    st.one_of(
        st.floats(min_value=EARLIEST.timestamp(), max_value=4e9),
        # a fraction at or next to a half microsecond, a rounding to the next millisecond or
        # second: where rounding and truncation differ
        st.builds(
            lambda s, us, nudge: s + us / 1e6 + nudge,
            st.integers(min_value=int(EARLIEST.timestamp()), max_value=4_000_000_000),
            st.sampled_from([0, 499, 500, 999, 999_499, 999_500, 999_999]),
            st.sampled_from([0.0, 5e-7, 4.9e-7, 5.1e-7, -5e-7, 1e-9]),
        ),
        # either side of midnight, where the day and the time of day turn over
        st.builds(
            lambda day, offset: day * 86_400.0 + offset,
            st.integers(min_value=int(EARLIEST.timestamp()) // 86_400 + 1, max_value=46_000),
            st.sampled_from([-1.0, -0.0005, 0.0, 0.0004, 1.0, 59.9996, 3_599.0, 3_600.0]),
        ),
    )
)
@settings(max_examples=2_000, deadline=None)
def test_iso_writes_what_datetime_writes(t: float) -> None:
    assert iso(t) == datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


revenue_sum = st.one_of(
    st.sampled_from([0.0, -0.0, 1e-13, -1e-13, 0.005, 0.015, 2.0]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)


@given(
    views=st.sampled_from([0.0, 1.0, 7.0]),
    units=st.integers(min_value=0, max_value=50).map(float),  # whole quantities: sums exact
    revenue=revenue_sum,
)
@settings(max_examples=500, deadline=None)
def test_revenue_and_conversion_are_rounded_as_written_whatever_the_sums(
    views: float, units: float, revenue: float
) -> None:
    # revenue as float drift may leave it: zero of either sign, a crumb either side of it
    f = SkuFeatures(watermark=T0)
    f.windows["5m"].totals[:] = [views, 0.0, units, revenue]
    v = f.values(published_price=1.0)
    expected = (round(revenue, 2) + 0.0, round(units / views, 6) if views else 0.0)
    assert repr((v["revenue_5m"], v["conversion_5m"])) == repr(expected)  # -0.0 told apart
