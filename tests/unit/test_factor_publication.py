"""The batch step that publishes item factors (batch/factors.py), the file it writes and the
blend that reads it (online_models.recommender.ranked_candidates with a factor source)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from batch.factors import publish_item_factors
from batch.result import WaitingForData
from online_models.factors import ItemFactors, factors_path, load_factors, save_factors
from online_models.recommender import Profile, ranked_candidates
from schemas.lake import ORDER_LINES, USER_ACTIVITY
from schemas.settings import Settings
from tests.silver_rows import activity, order_line, write_silver


def test_the_batch_step_publishes_one_vector_per_interacted_sku(tmp_path: Path) -> None:
    settings = Settings(
        environment="test", lake_dir=tmp_path / "lake", registry_dir=tmp_path / "models"
    )
    users = [f"u{u}" for u in range(12)]
    write_silver(
        settings.lake_dir,
        USER_ACTIVITY,
        [activity(u, f"S{(n + k) % 6}", "view") for n, u in enumerate(users) for k in range(3)]
        + [activity("u0", None, "search"), activity("u1", "S9", "search")],
    )
    write_silver(settings.lake_dir, ORDER_LINES, [order_line("u2", "S7")])
    result = publish_item_factors(settings)
    path = factors_path(settings.registry_dir, settings.mlflow_model_prefix)
    assert result.outputs == (f"models/{path.name}",)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["alpha", "factors", "regularization", "skus"]
        assert data["factors"].dtype == np.float32
        skus = [str(s) for s in data["skus"]]
    assert sorted(skus) == [*(f"S{i}" for i in range(6)), "S7"]  # a search is no interaction
    items = load_factors(path)
    assert items.factors.shape == (7, 32)
    assert result.rows_out == 7


def test_the_batch_step_waits_forwrite_silver(tmp_path: Path) -> None:
    settings = Settings(
        environment="test", lake_dir=tmp_path / "lake", registry_dir=tmp_path / "models"
    )
    with pytest.raises(WaitingForData):
        publish_item_factors(settings)
    assert not factors_path(settings.registry_dir, settings.mlflow_model_prefix).exists()


def test_a_saved_file_loads_as_the_same_factors(tmp_path: Path) -> None:
    items = ItemFactors(["a", "b", "c"], np.arange(6, dtype=np.float64).reshape(3, 2), 0.5, 2.0)
    path = tmp_path / "f.npz"
    save_factors(items, path)
    again = load_factors(path)
    assert list(again.skus) == ["a", "b", "c"]
    assert np.array_equal(again.factors, items.factors)
    assert (again.regularization, again.alpha) == (0.5, 2.0)
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]  # no partial file left


def test_a_file_without_one_finite_vector_per_sku_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.npz"
    np.savez(
        path, skus=np.array(["a", "b"]), factors=np.ones((3, 2)), regularization=0.1, alpha=1.0
    )
    with pytest.raises(ValueError, match="2 skus"):
        load_factors(path)
    np.savez(
        path, skus=np.array(["a"]), factors=np.full((1, 2), np.nan), regularization=0.1, alpha=1.0
    )
    with pytest.raises(ValueError, match="factors of shape"):
        load_factors(path)


def test_the_factor_source_is_a_third_source_of_the_blend() -> None:
    profile = Profile([("tea", 1.0)], [("drinks", 1.0)], ["tea"])
    similar, by_category = {"lemon": 1.0}, {"coffee": 1.0}
    without = ranked_candidates(profile, similar, by_category, [], 5)
    assert [sku for sku, _, _ in without] == ["lemon", "coffee"]
    found = ranked_candidates(profile, similar, by_category, [], 5, {"honey": 2.0, "milk": 1.0})
    assert {sku for sku, _, _ in found} == {"lemon", "coffee", "honey", "milk"}
    labels = {sku: source for sku, _, source in found}
    assert (labels["honey"], labels["lemon"], labels["coffee"]) == (
        "factors",
        "similar",
        "category",
    )
    scores = {sku: v for sku, v, _ in found}
    # neighbours 1 : categories 0.6 : factors 0.6, each source scaled to sum to its weight
    assert scores["lemon"] == pytest.approx(1 / 2.2, abs=1e-6)
    assert scores["honey"] == pytest.approx(0.6 * 2 / 3 / 2.2, abs=1e-6)
