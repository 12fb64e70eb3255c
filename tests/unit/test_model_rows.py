"""The model input rows shared by training and serving (online_models.ranking/demand_features)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest

from api.onnx_models import ModelSlot
from api.recommendations import usable_ranker
from online_models.demand_features import DEMAND_FEATURES, demand_features, sku_state_from_batch
from online_models.ranking import RANKER_FEATURES, ranker_features
from schemas.serving import CANDIDATE_SOURCES

WHEN = datetime(2026, 1, 10, 9, tzinfo=UTC)  # a Saturday


@pytest.mark.parametrize(
    ("user", "expected_views", "expected_affinity"),
    [
        ({}, 0.0, 0.0),
        ({"recent_views": "not json", "category_affinity": "[1, 2]"}, 0.0, 0.0),
        ({"recent_views": '["s1", "s2", "s1"]', "category_affinity": '{"toys": 0.4}'}, 3.0, 0.4),
    ],
)
def test_ranker_rows_tolerate_missing_and_malformed_user_state(
    user: dict[str, str], expected_views: float, expected_affinity: float
) -> None:
    row = dict(
        zip(RANKER_FEATURES, ranker_features(user, {}, 2.0, 5, "toys", sku="s1"), strict=True)
    )
    assert row["user_recent_views"] == expected_views
    assert row["category_affinity"] == expected_affinity
    assert row["candidate_score"] == 2.0
    assert row["candidate_rank"] == 5.0
    assert row["viewed_count"] == (2.0 if expected_views else 0.0)


def test_position_features_skip_recent_entries_that_are_not_skus() -> None:
    user = {
        "recent_views": '[["s1"], {"s1": 1}, 7, "s2", "s1", "s1"]',
        "recent_purchases": '[null, ["s1"], "s1"]',
    }
    row = dict(zip(RANKER_FEATURES, ranker_features(user, {}, 1.0, 0, None, "s1"), strict=True))
    assert row["user_recent_views"] == 6.0
    assert row["viewed_position"] == pytest.approx(1 / 5)
    assert row["viewed_count"] == 2.0
    assert row["purchased_position"] == pytest.approx(1 / 3)
    unnamed = dict(zip(RANKER_FEATURES, ranker_features(user, {}, 1.0, 0, None), strict=True))
    assert unnamed["viewed_position"] == unnamed["viewed_count"] == 0.0


def test_demand_row_follows_price_and_weekday() -> None:
    state = {"units_24h": "4", "views_24h": "50", "last_price": "5", "min_competitor_price": "4"}
    cheap = dict(zip(DEMAND_FEATURES, demand_features(state, 4.0, WHEN), strict=True))
    dear = dict(zip(DEMAND_FEATURES, demand_features(state, 6.0, WHEN), strict=True))
    assert cheap["log_price_ratio"] < 0 < dear["log_price_ratio"]
    assert cheap["competitor_gap"] == 0.0
    assert dear["competitor_gap"] == pytest.approx(0.5)
    assert cheap["weekday"] == 5.0
    assert cheap["conversion_24h"] == pytest.approx(0.08)
    with pytest.raises(ValueError, match="timezone"):
        demand_features(state, 4.0, datetime(2026, 1, 10))


def test_training_state_from_batch_features_builds_the_same_row_as_serving() -> None:
    batch = {
        "units_1d": 4,
        "views_1d": 50,
        "stock_1d": 10,
        "last_paid_price": 5.0,
        "competitor_min_1d": 4.0,
        "units_per_day_7d": 3.5,
        "views_per_day_7d": 45.0,
        "units_per_day_28d": 3.0,
    }
    serving = {
        "units_24h": "4",
        "views_24h": "50",
        "conversion_24h": "0.08",
        "on_hand": "10",
        "last_price": "5.0",
        "min_competitor_price": "4.0",
        "units_per_day_7d": "3.5",
        "views_per_day_7d": "45.0",
        "units_per_day_28d": "3.0",
    }
    assert demand_features(sku_state_from_batch(batch), 4.5, WHEN) == pytest.approx(
        demand_features(serving, 4.5, WHEN)
    )


@pytest.mark.parametrize(
    ("features", "used"),
    [(RANKER_FEATURES, True), (RANKER_FEATURES[:-4], False), ((), False)],
    ids=["today's columns", "trained before the source columns", "no metadata"],
)
def test_the_api_ranks_only_with_a_ranker_trained_on_todays_columns(
    features: tuple[str, ...], used: bool
) -> None:
    model = SimpleNamespace(features=features)
    slot = cast(ModelSlot, SimpleNamespace(model=model))
    assert (usable_ranker(slot) is model) == used
    assert usable_ranker(cast(ModelSlot, SimpleNamespace(model=None))) is None


def test_a_candidates_source_sets_exactly_one_source_column() -> None:
    columns = [f"from_{s}" for s in CANDIDATE_SOURCES]
    for source in (*CANDIDATE_SOURCES, None):
        values = ranker_features({}, {}, 1.0, 0, None, "s", source)
        row = dict(zip(RANKER_FEATURES, values, strict=True))
        assert [c for c in columns if row[c] == 1.0] == ([f"from_{source}"] if source else [])
        assert sum(row[c] for c in columns) == (1.0 if source else 0.0)
