"""The ``train`` job: both models trained, exported to ONNX, checked, logged to MLflow,
registered and promoted (the ``champion`` alias) when they beat the champion.

Each model's MLflow run is opened and its champion scored while it fits, and its files are
logged while it is exported (:func:`fit_beside_run`): what tracking adds after the export is
the model's metrics and registered version, then its alias."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from batch import demand, ranker
from batch.factors import publish_item_factors
from batch.onnx_export import Checked, score_output
from batch.promotion import (
    SIGNATURE_ROWS,
    Groundwork,
    Outcome,
    lay_groundwork,
    register_and_promote,
)
from batch.result import StepResult, WaitingForData
from governance.importance_plot import IMPORTANCE_FILE
from infra.readiness import require_mlflow
from online_models.demand_features import DEMAND_FEATURES
from online_models.ranking import RANKER_FEATURES
from registry.store import NATIVE_FILE, ModelRegistry
from registry.tracking import TrainingRecord, fail_run, log_file, log_model
from schemas.features import BATCH_SKU_FEATURES
from schemas.lake import SKU_DAILY_FEATURES
from schemas.settings import Settings

MAX_ONNX_DIFF = 1e-3

FitT = TypeVar("FitT")
ModelT = TypeVar("ModelT")
ExtraT = TypeVar("ExtraT")


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


@dataclass(frozen=True)
class RunPlan:
    """What a model's MLflow run and promotion gate need before its fit: the run's record
    (parameters, data versions) and the holdout rows (of ``features``) the champion is scored
    on (``output``: its score tensor when the champion's metadata does not name it)."""

    record: TrainingRecord
    features: list[str]
    holdout: np.ndarray
    output: str


def fit_beside_run(
    settings: Settings,
    registry: ModelRegistry,
    plan: RunPlan,
    fit: Callable[[], FitT],
    evaluate: Callable[[FitT, Callable[[Checked], None]], ModelT],
    beside_export: Callable[[FitT], tuple[dict[str, bytes], ExtraT]],
) -> tuple[ModelT, Groundwork, ExtraT]:
    """Fit and evaluate a model (``fit``, then ``evaluate``, which exports it and hands the
    checked export to its callback) while its MLflow run is logged on other threads:

    - during the fit, the run is opened (parameters, data versions, environment files) and the
      champion scored on the holdout (:func:`batch.promotion.lay_groundwork`);
    - during the export, ``beside_export`` computes files for the model folder from the fitted
      model (and a value of its own, returned), which are uploaded;
    - once the export is loaded in onnxruntime and matches the native model, while the export
      measures its latencies, the model folder (ONNX file, ``MLmodel``) and the native
      booster are uploaded.

    Fitting, exporting and ONNX scoring spend their time in C code that releases the GIL. The
    groundwork returned knows every file logged, so registering the model sends only its
    metrics and the version. A failure marks the run ``FAILED``."""
    with ThreadPoolExecutor(3, thread_name_prefix="beside-fit") as pool:
        laid = pool.submit(
            lay_groundwork,
            settings,
            registry,
            plan.record,
            plan.features,
            plan.holdout,
            plan.output,
        )
        logged: list[Future[tuple[bytes, tuple[tuple[str, bytes], ...]]]] = []

        def checked(export: Checked) -> None:
            if export.max_abs_diff <= MAX_ONNX_DIFF:  # a mismatch fails the registration
                logged.append(pool.submit(_log_checked, settings, laid, export, plan.holdout))

        try:
            fitted = fit()
            aside = pool.submit(_log_beside, settings, laid, beside_export, fitted)
            model = evaluate(fitted, checked)
            files, extra = aside.result()
            ground = laid.result()
            run, loaded = ground.run.having(files), None
            for future in logged:
                loaded, uploaded = future.result()
                run = run.having(uploaded)
        except BaseException:
            if laid.exception() is None:
                fail_run(settings, laid.result().run)
            raise
    return model, replace(ground, run=run, loaded_onnx=loaded), extra


def _log_beside(
    settings: Settings,
    laid: Future[Groundwork],
    beside_export: Callable[[FitT], tuple[dict[str, bytes], ExtraT]],
    fitted: FitT,
) -> tuple[tuple[tuple[str, bytes], ...], ExtraT]:
    files, extra = beside_export(fitted)
    run = laid.result().run
    for name, content in files.items():
        run = log_file(settings, run, name, content)
    return tuple(files.items()), extra


def _log_checked(
    settings: Settings, laid: Future[Groundwork], export: Checked, holdout: np.ndarray
) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """Upload the model folder of a checked export and its native booster; return the ONNX
    bytes (loaded in onnxruntime by the check) and the files now in the folder."""
    uploaded = log_model(
        settings,
        laid.result().run,
        export.onnx,
        holdout[:SIGNATURE_ROWS],
        export.check_scores[:SIGNATURE_ROWS],
        {NATIVE_FILE: export.native.encode()},
    )
    return export.onnx, uploaded


def _nothing_beside(_: object) -> tuple[dict[str, bytes], None]:
    return {}, None


def train_and_register_demand(
    settings: Settings, registry: ModelRegistry, data: demand.DemandSet
) -> tuple[demand.DemandModel, Outcome]:
    """Train the demand model on ``data`` and register it (:func:`register_demand`), its run
    logged during the fit and the export (:func:`fit_beside_run`); the global importance and
    its plot are computed during the export."""
    plan = RunPlan(
        training_record(demand.MODEL, demand.estimator(), demand.description(data), FEATURE_SET),
        list(DEMAND_FEATURES),
        data.features[demand.holdout_rows(data.days)],
        score_output(classifier=False),
    )
    fitted, ground, importance = fit_beside_run(
        settings,
        registry,
        plan,
        lambda: demand.fit_demand(data),
        demand.evaluate_demand,
        _plotted_importance,
    )
    return fitted, register_demand(settings, registry, fitted, ground, importance)


def _plotted_importance(fit: demand.DemandFit) -> tuple[dict[str, bytes], dict[str, float]]:
    """The global importance of the fitted booster (which splits every float32 row as the
    exported one does) and its plot."""
    importance = demand.importance(fit.model.booster_, fit.holdout)
    return {IMPORTANCE_FILE: demand.plot(importance)}, importance


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


def train_and_register_ranker(
    settings: Settings, registry: ModelRegistry, data: ranker.RankerData
) -> tuple[ranker.RankerModel, Outcome]:
    """Train the ranker on ``data`` and register it, its run logged during the fit and the
    export (:func:`fit_beside_run`)."""
    plan = RunPlan(
        training_record(
            ranker.MODEL,
            ranker.estimator(),
            ranker.description(data.trained_on, data.training_set),
        ),
        list(RANKER_FEATURES),
        data.test.features,
        score_output(classifier=True),
    )
    ranked, ground, _ = fit_beside_run(
        settings,
        registry,
        plan,
        lambda: ranker.fit_ranker(data),
        ranker.evaluate_ranker,
        _nothing_beside,
    )
    return ranked, register_ranker(settings, registry, ranked, ground)


def register_ranker(
    settings: Settings,
    registry: ModelRegistry,
    ranked: ranker.RankerModel,
    groundwork: Groundwork | None = None,
) -> Outcome:
    """Check the ranker's export, log it to MLflow, register it and promote it if it beats
    the champion's NDCG@10 on the holdout and, when that holdout is served lists, orders them
    no worse than their own order (``batch.ranker.order_gate``; ``groundwork``: laid during
    the fit)."""
    try:
        _checked(ranker.MODEL, ranked.exported.max_abs_diff)
    except BaseException:
        if groundwork is not None:
            fail_run(settings, groundwork.run)
        raise
    meta = ranker.metadata(ranked)
    return register_and_promote(
        settings,
        registry,
        ranked.exported,
        meta,
        training_record(ranker.MODEL, ranked.model, meta),
        ranked.test.features,
        ranker.ndcg_of(ranked.test),
        "ndcg_at_10",
        higher_is_better=True,
        groundwork=groundwork,
        refused=ranked.gate.reason if ranked.gate.refuses else None,
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
    rows = ranker.ranker_data(settings.lake_dir, catalogue)
    ranked, outcomes[ranker.MODEL] = train_and_register_ranker(settings, registry, rows)
    step("train ranker")
    return Trained(fitted, ranked, outcomes)


def run_training(
    settings: Settings, catalogue: pa.Table, step: Callable[[str], None] = lambda _: None
) -> StepResult:
    # The item factors need only silver, so they are fitted first: a young shop's discover
    # lists get them from its first run, not once the demand model has its days, and a demand
    # or ranker fit that fails does not hold them back.
    step("fit item factors")
    factors = publish_item_factors(settings)
    try:
        trained = train_models(settings, catalogue, step)
    except WaitingForData as exc:
        raise WaitingForData(f"{exc} (item factors published: {factors.rows_out} items)") from exc
    details: dict[str, object] = {}
    for name, outcome in trained.outcomes.items():
        details[f"{name}_version"] = outcome.version.label
        details[f"{name}_promoted"] = outcome.promoted
        details[f"{name}_mlflow_run"] = outcome.run_id
    details.update({f"demand_{k}": v for k, v in trained.demand.metrics.items()})
    details.update({f"ranker_{k}": v for k, v in trained.ranker.metrics.items()})
    details["ranker_order_gate"] = trained.ranker.gate.reason
    rows_in = len(trained.demand.data.units) + len(trained.ranker.test.labels)
    outcomes = trained.outcomes.values()
    return (
        StepResult(
            rows_in=rows_in,
            rows_out=2,
            inputs=(f"feast/{SKU_DAILY_FEATURES}", "silver/user_activity", "silver/order_lines"),
            outputs=tuple(f"models/{o.version.name}/{o.version.version}" for o in outcomes),
            details=details,
        )
        + factors
    )
