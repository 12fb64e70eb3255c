"""The ``train`` job: both models trained, exported to ONNX, checked, logged to MLflow,
registered and promoted (the ``champion`` alias) when they beat the champion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from batch import demand, ranker
from batch.promotion import Outcome, register_and_promote
from batch.result import StepResult
from infra.readiness import require_mlflow
from registry.store import ModelRegistry
from registry.tracking import TrainingRecord
from schemas.features import BATCH_SKU_FEATURES
from schemas.lake import SKU_DAILY_FEATURES
from schemas.settings import Settings

MAX_ONNX_DIFF = 1e-3


class ExportMismatch(Exception):
    """The ONNX export does not predict what the native model does."""


@dataclass(frozen=True)
class Trained:
    demand: demand.DemandModel
    ranker: ranker.RankerModel
    outcomes: dict[str, Outcome]


def _checked(name: str, diff: float) -> None:
    if not diff <= MAX_ONNX_DIFF:
        raise ExportMismatch(f"{name}: ONNX and native predictions differ by {diff:.2g}")


FEATURE_SET = tuple(f"{SKU_DAILY_FEATURES}:{f.name}" for f in BATCH_SKU_FEATURES)
"""The Feast features the demand training set joins (the ranker reads silver directly)."""


def training_record(
    name: str, estimator: Any, metadata: dict[str, Any], feature_set: tuple[str, ...] = ()
) -> TrainingRecord:
    """The run's parameters (hyper-parameters, features, target, holdout) and data versions;
    the metrics are added when the model has been scored against the champion."""
    params = {
        **estimator.get_params(),
        "features": ",".join(metadata["features"]),
        "model_type": metadata["model_type"],
        "target": metadata["target"],
        "holdout": metadata["holdout"],
        **({"training_set": metadata["training_set"]} if "training_set" in metadata else {}),
    }
    return TrainingRecord(name, params, {}, dict(metadata["trained_on"]), feature_set)


def register_demand(
    settings: Settings, registry: ModelRegistry, fitted: demand.DemandModel
) -> Outcome:
    """Check the demand model's export, log it to MLflow with its global importance (metadata
    and plot), register it and promote it if it beats the champion."""
    _checked(demand.MODEL, fitted.exported.max_abs_diff)
    meta = demand.metadata(fitted)
    return register_and_promote(
        settings,
        registry,
        fitted.exported,
        meta,
        training_record(demand.MODEL, fitted.model, meta, FEATURE_SET),
        fitted.holdout,
        lambda scores: demand.wape(fitted.holdout_units, scores),
        "wape",
        higher_is_better=False,
        files=demand.files(meta),
    )


def train_models(
    settings: Settings, catalogue: pa.Table, step: Callable[[str], None] = lambda _: None
) -> Trained:
    require_mlflow(settings)  # before minutes of training whose result could not be logged
    registry = ModelRegistry.from_settings(settings)
    data = demand.training_set(settings, demand.list_prices(catalogue))
    fitted = demand.train_demand(data)
    outcomes = {demand.MODEL: register_demand(settings, registry, fitted)}
    step("train demand")
    ranked = ranker.train_ranker(settings.lake_dir, catalogue)
    _checked(ranker.MODEL, ranked.exported.max_abs_diff)
    meta = ranker.metadata(ranked)
    outcomes[ranker.MODEL] = register_and_promote(
        settings,
        registry,
        ranked.exported,
        meta,
        training_record(ranker.MODEL, ranked.model, meta),
        ranked.test.features,
        ranker.ndcg_of(ranked.test),
        "ndcg_at_10",
        higher_is_better=True,
    )
    step("train ranker")
    return Trained(fitted, ranked, outcomes)


def run_training(
    settings: Settings, catalogue: pa.Table, step: Callable[[str], None] = lambda _: None
) -> StepResult:
    trained = train_models(settings, catalogue, step)
    details: dict[str, object] = {}
    for name, outcome in trained.outcomes.items():
        details[f"{name}_version"] = outcome.version.label
        details[f"{name}_promoted"] = outcome.promoted
        details[f"{name}_mlflow_run"] = outcome.run_id
    details.update({f"demand_{k}": v for k, v in trained.demand.metrics.items()})
    details.update({f"ranker_{k}": v for k, v in trained.ranker.metrics.items()})
    rows_in = len(trained.demand.data.units) + len(trained.ranker.test.labels)
    outcomes = trained.outcomes.values()
    return StepResult(
        rows_in=rows_in,
        rows_out=2,
        inputs=(f"feast/{SKU_DAILY_FEATURES}", "silver/user_activity", "silver/order_lines"),
        outputs=tuple(f"models/{o.version.name}/{o.version.version}" for o in outcomes),
        details=details,
    )
