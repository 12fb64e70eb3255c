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
import yaml
from mlflow.models import infer_signature

from batch.demand import DemandSet, evaluate_demand, fit_demand, importance
from batch.onnx_export import Checked
from online_models.demand_features import DEMAND_FEATURES
from registry.tracking import (
    ENVIRONMENT_NAMES,
    ONNX_FILE,
    OpenRun,
    environment_files,
    model_folder,
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


def test_the_model_folder_is_what_mlflow_writes_for_the_model(
    demand_set: DemandSet, tmp_path: Path
) -> None:
    """A run builds its model folder from the bytes in hand instead of calling
    ``mlflow.onnx.save_model``: every file must be what ``save_model`` writes (``MLmodel``
    but for the id and time it gives every model), so MLflow loads it as its own."""
    trained = evaluate_demand(fit_demand(demand_set))
    rows, scores = trained.holdout[:5], trained.exported.check_scores[:5]
    saved = tmp_path / "model"
    mlflow.onnx.save_model(
        onnx.load_from_string(trained.exported.onnx),
        str(saved),
        signature=infer_signature(rows, scores.astype(np.float32)),
        pip_requirements=list(runtime_requirements()),
        save_as_external_data=False,
    )
    built = model_folder(trained.exported.onnx, rows, scores)
    assert {parent for parent, _ in built} == {"model"}
    files = {name: content for (_, name), content in built.items()}
    assert sorted(files) == sorted(path.name for path in saved.iterdir())
    for name in files.keys() - {"MLmodel"}:
        assert files[name] == (saved / name).read_bytes(), name
    made, expected = (
        {
            k: v
            for k, v in yaml.safe_load(text).items()
            if k not in ("model_uuid", "utc_time_created")
        }
        for text in (files["MLmodel"], (saved / "MLmodel").read_bytes())
    )
    assert made == expected
    loaded = mlflow.pyfunc.load_model(str(_written(files, tmp_path / "built")))
    predicted = loaded.predict(rows)["variable"]
    np.testing.assert_allclose(np.ravel(predicted), scores, rtol=1e-6)


def _written(files: dict[str, bytes], folder: Path) -> Path:
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


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
