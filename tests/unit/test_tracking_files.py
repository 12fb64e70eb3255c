"""What a training run logs before its model exists is what it would log after: the model
folder's environment files, and the global importance from the booster before its export."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, TypeVar

import mlflow.onnx
import numpy as np
import onnx
import pytest

from batch.demand import DemandSet, evaluate_demand, fit_demand, importance
from batch.onnx_export import Checked
from online_models.demand_features import DEMAND_FEATURES
from registry.tracking import (
    ENVIRONMENT_NAMES,
    ONNX_FILE,
    OpenRun,
    environment_files,
    runtime_requirements,
    submit_model,
)
from schemas.settings import Settings

T = TypeVar("T")


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


def test_the_model_logged_during_the_export_is_the_exported_one(demand_set: DemandSet) -> None:
    """Training uploads the model folder and the native booster from the export's check,
    before the export measures its latencies: they are what the export returns, and a run
    that logged them sends no model file again."""
    seen: list[Checked] = []
    trained = evaluate_demand(fit_demand(demand_set), seen.append)
    (checked,) = seen
    assert checked.onnx == trained.exported.onnx
    assert checked.native == trained.exported.native
    assert checked.max_abs_diff == trained.exported.max_abs_diff
    np.testing.assert_array_equal(checked.check_scores, trained.exported.check_scores)
    run = OpenRun("r", "mlflow-artifacts:/1/r/artifacts", "demand", environment_files())
    rows, scores = trained.holdout[:5], trained.exported.check_scores[:5]
    pool = Recording()
    logged = run.having([(ONNX_FILE, checked.onnx)])
    assert submit_model(Settings(), logged, trained.exported.onnx, rows, scores, pool) == []
    assert pool.uploads == []
    submit_model(Settings(), run, trained.exported.onnx, rows, scores, pool)
    assert sorted(name for _, name, _ in pool.uploads) == ["MLmodel", ONNX_FILE]


class Recording(Executor):
    """Records the uploads submitted to it instead of running them."""

    def __init__(self) -> None:
        self.uploads: list[tuple[str, str, bytes]] = []

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.uploads.append(args)
        return Future()
