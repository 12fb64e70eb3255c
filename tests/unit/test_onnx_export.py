"""ONNX exports predict what the LightGBM models do, thresholds on float32 grid values included."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from batch.onnx_export import export, floor32, onnx_scores, session


@pytest.mark.parametrize("value", [0.1, 2.5, 7.54, -0.0125, 1e-35, 123456.789])
def test_floor32_is_the_largest_float32_not_above(value: float) -> None:
    f = floor32(value)
    assert float(f) <= value
    assert float(np.nextafter(f, np.float32(np.inf))) > value


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # prices on a cent grid and counts: many thresholds fall between neighbouring values
    x = np.column_stack(
        [rng.integers(50, 2000, 4000) / 100, rng.integers(0, 50, 4000), rng.normal(0, 0.1, 4000)]
    ).astype(np.float32)
    return x, x[:, 0] * 0.3 + x[:, 1] * 0.1 + x[:, 2]


def test_regressor_export_matches_native_on_unseen_rows() -> None:
    x, y = _data(1)
    model = lgb.LGBMRegressor(objective="poisson", n_estimators=200, n_jobs=1, verbose=-1)
    model.fit(x[:3000], np.maximum(y[:3000], 0))
    exported = export(model, x[3000:])
    assert exported.max_abs_diff <= 1e-3
    native = model.predict(x[3000:])
    assert np.allclose(
        onnx_scores(session(exported.onnx), exported.output, x[3000:]), native, atol=1e-3
    )


def test_classifier_export_scores_probabilities() -> None:
    x, y = _data(2)
    model = lgb.LGBMClassifier(n_estimators=100, n_jobs=1, verbose=-1)
    model.fit(x[:3000], (y[:3000] > np.median(y)).astype(int))
    exported = export(model, x[3000:])
    assert exported.output == "probabilities"
    assert exported.max_abs_diff <= 1e-5
    scores = onnx_scores(session(exported.onnx), exported.output, x[3000:3005])
    assert scores.shape == (5,)
    assert np.all((scores >= 0) & (scores <= 1))
