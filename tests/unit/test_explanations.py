"""Explanations belong to the served version and add up to what ONNX serves.

A Poisson LightGBM demand model goes through the production path (ONNX export, a local copy of
the version with its native booster, the API's loader); its explanations are checked against
the ONNX session the API predicts with.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from api.onnx_models import load
from api.pricing_detail import forecast_explanation
from batch.demand import LEAVES, TREES, DemandSet, importance_sample, train_demand
from batch.onnx_export import Export, export
from batch.promotion import register_and_promote
from governance.explain import Explainer
from governance.importance_plot import IMPORTANCE_FILE, importance_svg
from online_models.demand_features import DEMAND_FEATURES
from registry import ModelRegistry, ModelVersion
from registry.copies import LocalCopies
from registry.store import NATIVE_FILE
from registry.tracking import TrainingRecord
from schemas.settings import Settings

FEATURES = ("price", "units_24h", "noise")


def _demand(seed: int, rows: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [rng.integers(200, 2000, rows) / 100, rng.integers(0, 30, rows), rng.normal(0, 1, rows)]
    ).astype(np.float32)
    # demand falls steeply with price and follows yesterday's units; the noise column is noise
    return x, rng.poisson(np.exp(2.5 - 0.25 * x[:, 0] + 0.03 * x[:, 1])).astype(float)


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelVersion, np.ndarray]:
    """A version as the API finds it in its local copies (what training logs to MLflow beside
    the ONNX file: the native booster and the importance plot), and held-out rows."""
    x, y = _demand(3)
    model = lgb.LGBMRegressor(objective="poisson", n_estimators=120, n_jobs=1, verbose=-1)
    model.fit(x[:2500], y[:2500])
    exported = export(model, x[2500:])
    files = {
        NATIVE_FILE: exported.native.encode(),
        IMPORTANCE_FILE: importance_svg({"price": 1.0}, title="demand"),
    }
    metadata = {
        "features": list(FEATURES),
        "metrics": {"wape": 0.3},
        "onnx_output": exported.output,
        "files": sorted(files),
    }
    copies = LocalCopies(Path(tmp_path_factory.mktemp("registry")))
    path = copies.put("demand", 1, exported.onnx, metadata, files)
    return ModelVersion("demand", 1, path, metadata), x[2500:]


def test_the_version_keeps_its_native_booster_and_files(
    registered: tuple[ModelVersion, np.ndarray],
) -> None:
    version, _ = registered
    assert version.native_path.name == NATIVE_FILE
    assert lgb.Booster(model_file=str(version.native_path)).num_feature() == len(FEATURES)
    assert (version.path / IMPORTANCE_FILE).read_bytes().startswith(b"<svg ")


def test_explanations_add_up_to_the_onnx_forecast(
    registered: tuple[ModelVersion, np.ndarray],
) -> None:
    version, rows = registered
    loaded = load(version)
    assert loaded.explainer is not None
    served = loaded.predict(rows[:300])
    explained = loaded.explainer.explain(rows[:300])
    assert [e.forecast for e in explained] == pytest.approx(list(served), rel=1e-4, abs=1e-4)
    for e in explained:
        assert e.link == "log"
        product = e.base * math.prod(c.factor for c in e.contributions)
        assert product == pytest.approx(e.forecast, rel=1e-9)
        assert [abs(c.contribution) for c in e.contributions] == sorted(
            (abs(c.contribution) for c in e.contributions), reverse=True
        )


def test_price_drives_the_forecast_and_noise_does_not(
    registered: tuple[ModelVersion, np.ndarray],
) -> None:
    version, rows = registered
    explainer = Explainer.from_file(version.native_path, FEATURES)
    importance = explainer.global_importance(rows)
    assert next(iter(importance)) == "price"
    assert importance["noise"] < 0.2 * importance["price"]
    cheap, dear = explainer.explain(np.array([[3.0, 10, 0.0], [18.0, 10, 0.0]]))
    price_factor = {
        e: next(c.factor for c in e.contributions if c.feature == "price") for e in (cheap, dear)
    }
    assert price_factor[cheap] > 1 > price_factor[dear]


def test_the_response_shows_the_top_effects_and_the_rest_as_one_factor(
    registered: tuple[ModelVersion, np.ndarray],
) -> None:
    version, rows = registered
    (e,) = Explainer.from_file(version.native_path, FEATURES).explain(rows[:1])
    shown = forecast_explanation(e, version.label, top=2)
    assert [c.feature for c in shown.top] == [c.feature for c in e.contributions[:2]]
    product = shown.base_units * math.prod(c.factor for c in shown.top) * shown.other_factor
    assert product == pytest.approx(shown.forecast_units, rel=1e-3)


def test_a_booster_with_other_features_is_refused(
    registered: tuple[ModelVersion, np.ndarray],
) -> None:
    version, _ = registered
    with pytest.raises(ValueError, match="3 features, given 2"):
        Explainer.from_file(version.native_path, FEATURES[:2])


@pytest.mark.parametrize("name", ["../escape", "model.onnx", "metadata.json", "a/b"])
def test_version_files_are_plain_names_other_than_the_models_own(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="invalid file name"):
        LocalCopies(tmp_path).put("demand", 1, b"onnx", {}, {name: b"x"})
    assert not LocalCopies(tmp_path).has("demand", 1)


def test_a_row_explained_again_comes_from_memory_and_equals_a_fresh_explanation(
    registered: tuple[ModelVersion, np.ndarray],
) -> None:
    version, rows = registered
    explainer = Explainer.from_file(version.native_path, FEATURES, cached_rows=2)
    fresh = explainer.explain(rows[:3])
    first = [explainer.explain_row(row) for row in rows[:2]]
    assert first == fresh[:2]
    assert explainer.explain_row(rows[1:2]) is first[1]  # the same row, as a 1-row matrix
    assert explainer.cache_info().hits == 1
    assert explainer.explain_row(rows[2]) == fresh[2]  # a third row evicts the oldest
    assert explainer.explain_row(rows[0]) == fresh[0]
    assert explainer.cache_info().misses == 4
    with pytest.raises(ValueError, match="one row of 3 features"):
        explainer.explain_row(rows[:2])


def test_the_importance_sample_keeps_the_ranking_of_the_whole_holdout(
    registered: tuple[ModelVersion, np.ndarray],
) -> None:
    version, rows = registered
    explainer = Explainer.from_file(version.native_path, FEATURES)
    whole = explainer.global_importance(rows)
    sample = importance_sample(rows, 100)
    assert len(sample) == 100
    assert (sample[0] == rows[0]).all()
    assert (sample[-1] == rows[-1]).all()
    assert list(explainer.global_importance(sample)) == list(whole)


def test_the_promotion_gate_refuses_a_holdout_other_than_the_checked_rows(
    registered: tuple[ModelVersion, np.ndarray], tmp_path: Path
) -> None:
    """The new model's holdout scores are the export's own ONNX scores of the rows it was
    checked on: a holdout of other rows is refused before anything is logged."""
    _, rows = registered
    exported = Export(b"", "", "variable", 0.0, 0.0, 0.0, check_scores=np.zeros(len(rows)))
    settings = Settings(registry_dir=tmp_path, mlflow_url="http://127.0.0.1:9")  # never called
    with pytest.raises(ValueError, match="the export was checked on"):
        register_and_promote(
            settings,
            ModelRegistry.from_settings(settings),
            exported,
            {"features": list(FEATURES), "metrics": {}},
            TrainingRecord("demand", {}, {}, {}),
            rows[:-1],
            lambda scores: float(np.mean(scores)),
            "mean",
            higher_is_better=True,
        )


def test_the_demand_model_is_300_trees_of_at_most_7_leaves() -> None:
    """The explanation's cost is TreeSHAP's (trees × leaves × depth² per row): the production
    demand model keeps small trees, so a new row is explained in a fraction of a millisecond."""
    rng = np.random.default_rng(11)
    rows = 2_000
    x = rng.uniform(0, 1, (rows, len(DEMAND_FEATURES))).astype(np.float32)
    units = rng.poisson(np.exp(1.5 - x[:, 0] + x[:, 4])).astype(np.float64)
    days = np.repeat(np.arange(10), rows // 10).astype(str)
    trained = train_demand(DemandSet(x, units, np.roll(units, 1), days, {}))
    trees = trained.model.booster_.dump_model()["tree_info"]
    assert len(trees) == TREES
    assert max(tree["num_leaves"] for tree in trees) <= LEAVES
    assert trained.metrics["wape"] < trained.metrics["wape_naive"]
