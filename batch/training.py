"""The ``train`` job: both models trained, exported to ONNX, checked, logged to MLflow,
registered and promoted (the ``champion`` alias) when they beat the champion.

The demand model's MLflow run is opened and its champion scored while it fits
(:func:`train_and_register_demand`): what tracking adds after the fit is the model's own
figures and files, sent as concurrent requests."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from batch import demand, ranker
from batch.onnx_export import score_output
from batch.promotion import Groundwork, Outcome, lay_groundwork, register_and_promote
from batch.result import StepResult
from governance.importance_plot import IMPORTANCE_FILE
from infra.readiness import require_mlflow
from online_models.demand_features import DEMAND_FEATURES
from registry.store import ModelRegistry
from registry.tracking import TrainingRecord, fail_run, log_file
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


def train_and_register_demand(
    settings: Settings, registry: ModelRegistry, data: demand.DemandSet
) -> tuple[demand.DemandModel, Outcome]:
    """Train the demand model on ``data`` and register it (:func:`register_demand`). What does
    not wait for the model runs beside it on other threads: the MLflow run is opened
    (parameters, data versions, environment files) and the champion scored on the holdout
    during the fit; the global importance is computed and its plot logged during the ONNX
    export (the fit, the scoring and the importance spend their time in C code that releases
    the GIL). A failed fit marks the run ``FAILED``."""
    with ThreadPoolExecutor(2, thread_name_prefix="beside-fit") as pool:
        laid = pool.submit(_demand_groundwork, settings, registry, data)
        try:
            fit = demand.fit_demand(data)
            ranked = pool.submit(_plotted_importance, settings, laid, fit)
            fitted = demand.evaluate_demand(fit)
            ground, importance = ranked.result()
        except BaseException:
            if laid.exception() is None:
                fail_run(settings, laid.result().run)
            raise
    return fitted, register_demand(settings, registry, fitted, ground, importance)


def _demand_groundwork(
    settings: Settings, registry: ModelRegistry, data: demand.DemandSet
) -> Groundwork:
    """The demand run (parameters of the model before its fit) and the champion's scores."""
    return lay_groundwork(
        settings,
        registry,
        training_record(demand.MODEL, demand.estimator(), demand.description(data), FEATURE_SET),
        list(DEMAND_FEATURES),
        data.features[demand.holdout_rows(data.days)],
        score_output(classifier=False),
    )


def _plotted_importance(
    settings: Settings, laid: Future[Groundwork], fit: demand.DemandFit
) -> tuple[Groundwork, dict[str, float]]:
    """The global importance of the fitted booster, its plot logged into the run's model
    folder; the groundwork returned knows the plot is there."""
    importance = demand.importance(fit.model.booster_, fit.holdout)
    ground = laid.result()
    run = log_file(settings, ground.run, IMPORTANCE_FILE, demand.plot(importance))
    return replace(ground, run=run), importance


def register_demand(
    settings: Settings,
    registry: ModelRegistry,
    fitted: demand.DemandModel,
    groundwork: Groundwork | None = None,
    importance: dict[str, float] | None = None,
) -> Outcome:
    """Check the demand model's export, log it to MLflow with its global importance (metadata
    and plot), register it and promote it if it beats the champion (``groundwork``: the run
    and the champion's scores, laid while the model was fitted; ``importance``: computed
    already)."""
    try:
        _checked(demand.MODEL, fitted.exported.max_abs_diff)
        meta = demand.metadata(fitted, importance)
        files = demand.files(meta)
    except BaseException:
        if groundwork is not None:
            fail_run(settings, groundwork.run)
        raise
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
        files=files,
        groundwork=groundwork,
    )


def train_models(
    settings: Settings, catalogue: pa.Table, step: Callable[[str], None] = lambda _: None
) -> Trained:
    require_mlflow(settings)  # before minutes of training whose result could not be logged
    registry = ModelRegistry.from_settings(settings)
    data = demand.training_set(settings, demand.list_prices(catalogue))
    fitted, outcome = train_and_register_demand(settings, registry, data)
    outcomes = {demand.MODEL: outcome}
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
