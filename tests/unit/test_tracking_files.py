"""What a training run logs before its model exists is what it would log after: the model
folder's environment files, and the global importance from the booster before its export."""

from __future__ import annotations

from pathlib import Path

import mlflow.onnx
import numpy as np
import onnx
import pytest

from batch.demand import DemandSet, evaluate_demand, fit_demand, importance
from online_models.demand_features import DEMAND_FEATURES
from registry.tracking import ENVIRONMENT_NAMES, environment_files, runtime_requirements


@pytest.fixture(scope="module")
def demand_set() -> DemandSet:
    rng = np.random.default_rng(4)
    rows = 1_000
    x = rng.uniform(0, 10, (rows, len(DEMAND_FEATURES))).astype(np.float32)
    units = rng.poisson(np.exp(0.1 * x[:, 4] - 0.08 * x[:, 0] + 0.6)).astype(np.float64)
    days = np.repeat([f"2026-02-{d:02d}" for d in range(1, 11)], rows // 10)
    return DemandSet(x, units, np.roll(units, 100), days, {"gold/sku_daily": 1})


def test_the_environment_files_logged_when_a_run_starts_are_those_of_its_model(
    demand_set: DemandSet, tmp_path: Path
) -> None:
    """A run uploads :func:`environment_files` before the fit and skips the model folder's
    own copies when they are the same: they must be, byte for byte."""
    trained = evaluate_demand(fit_demand(demand_set))
    folder = tmp_path / "model"
    mlflow.onnx.save_model(
        onnx.load_from_string(trained.exported.onnx),
        str(folder),
        pip_requirements=list(runtime_requirements()),
    )
    early = dict(environment_files())
    assert set(early) == set(ENVIRONMENT_NAMES)
    for name in ENVIRONMENT_NAMES:
        assert early[name] == (folder / name).read_bytes(), name
    assert b"onnxruntime==" in early["requirements.txt"]


def test_the_importance_of_the_fitted_booster_is_that_of_the_exported_one(
    demand_set: DemandSet,
) -> None:
    """Training computes the importance from the fitted booster while the export rounds the
    thresholds of a copy to float32: on float32 rows both give the same figures."""
    fit = fit_demand(demand_set)
    fitted_booster = fit.model.booster_
    trained = evaluate_demand(fit)
    assert trained.model.booster_ is not fitted_booster  # the export's float32 thresholds
    before = importance(fitted_booster, fit.holdout)
    after = importance(trained.model.booster_, trained.holdout)
    assert list(before) == list(after)
    assert list(before.values()) == pytest.approx(list(after.values()), rel=1e-12, abs=1e-15)
    assert max(before.values()) > 0
