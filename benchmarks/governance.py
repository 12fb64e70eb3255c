"""Governance benchmark: what model governance costs next to the work it governs.

The figures come from independent sections, each a function returning its own figures (and
its runs); :func:`main` merges them into one ``governance.json``. Sections:

- :func:`tracking_figures`: the demand model's training (the production ``train_demand``:
  LightGBM fit, ONNX export and parity check) on a synthetic sku-day set of the size the batch
  benchmark trains on, timed without tracking and with it (the same plus the promotion gate,
  the MLflow run with parameters, metrics, data versions and the ONNX model with its
  signature, the registered version and its alias), alternating. ``tracking_overhead_ratio`` is
  with / without; goal ≤ 1.10. Importing ``mlflow`` (and Feast, which the training job has
  loaded anyway and whose MLflow plugin the client loads on its first request) happens once per
  training process and is reported apart (``tracking_import_s``), not in the ratio.

Needs the MLflow server of ``tillflow up``.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from batch.demand import DemandSet, train_demand, wape
from batch.promotion import register_and_promote
from batch.training import FEATURE_SET, training_record
from benchmarks.common import Mode, median, parse_mode, print_repeat, write_result
from infra.readiness import require_mlflow
from online_models.demand_features import DEMAND_FEATURES
from registry import ModelRegistry
from schemas.lake import SKU_DAILY
from schemas.settings import Settings

SKUS, DAYS = 600, 50  # 30,000 sku-days
REPEATS = 3

Section = Callable[[Mode], tuple[dict[str, float], dict[str, Any]]]


def demand_set(skus: int, days: int, seed: int = 3) -> DemandSet:
    """Synthetic sku-days: units depend on price and on the day before, like the shop's."""
    rng = np.random.default_rng(seed)
    rows = skus * days
    features = rng.uniform(0.0, 10.0, size=(rows, len(DEMAND_FEATURES))).astype(np.float32)
    rate = np.exp(0.15 * features[:, 1] - 0.1 * features[:, 0] + 0.5)
    units = rng.poisson(rate).astype(np.float64)
    return DemandSet(
        features=features,
        units=units,
        naive=rng.poisson(rate).astype(np.float64),
        days=np.repeat([f"2026-01-{d:03d}" for d in range(days)], skus),
        trained_on={f"gold/{SKU_DAILY}": 1},
    )


def tracking_figures(mode: Mode) -> tuple[dict[str, float], dict[str, Any]]:
    """``train_s_without_tracking``, ``train_s_with_tracking``, ``tracking_overhead_ratio``."""
    skus, repeats = mode.size(SKUS, 40), mode.size(REPEATS, 1)
    settings = Settings(
        registry_dir=Path(tempfile.mkdtemp(prefix="tillflow-governance-bench-")),
        mlflow_model_prefix=f"bench-governance-{uuid.uuid4().hex[:6]}-",
    )
    require_mlflow(settings)
    registry = ModelRegistry.from_settings(settings)
    data = demand_set(skus, DAYS)
    start = time.perf_counter()
    import mlflow.onnx
    import mlflow.pyfunc  # noqa: F401 - what mlflow.onnx.save_model loads on first use

    import featurestore.repo  # noqa: F401 - the training job has Feast loaded (training set)

    runs: dict[str, list[float]] = {"tracking_import_s": [time.perf_counter() - start]}
    for repeat in range(repeats):
        start = time.perf_counter()
        train_demand(data)
        runs.setdefault("train_s_without_tracking", []).append(time.perf_counter() - start)
        start = time.perf_counter()
        fitted = train_demand(data)
        metadata = {
            "features": list(DEMAND_FEATURES), "metrics": fitted.metrics,
            "trained_on": data.trained_on, "model_type": "lightgbm.LGBMRegressor(poisson)",
            "target": "units per sku-day", "holdout": "last 20% of days",
        }  # fmt: skip
        register_and_promote(
            settings, registry, fitted.exported, metadata,
            training_record("demand", fitted.model, metadata, FEATURE_SET), fitted.holdout,
            partial(wape, fitted.holdout_units), "wape", higher_is_better=False,
        )  # fmt: skip
        runs.setdefault("train_s_with_tracking", []).append(time.perf_counter() - start)
        print_repeat(repeat, repeats, runs)
    figures = {k: median(v) for k, v in runs.items()}
    figures["tracking_overhead_ratio"] = (
        figures["train_s_with_tracking"] / figures["train_s_without_tracking"]
    )
    figures["tracking_train_rows"] = float(len(data.units))
    return figures, {"tracking": runs, "tracking_repeats": repeats}


SECTIONS: tuple[Section, ...] = (tracking_figures,)


def main(mode: Mode) -> None:
    figures: dict[str, float] = {}
    runs: dict[str, Any] = {}
    for section in SECTIONS:
        got, section_runs = section(mode)
        figures.update(got)
        runs.update(section_runs)
    runs["repeats"] = max((v for k, v in runs.items() if k.endswith("_repeats")), default=1)
    print(f"wrote {write_result('governance', figures, runs, mode)}")


if __name__ == "__main__":
    main(parse_mode(__doc__))
