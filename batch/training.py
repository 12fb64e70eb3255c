"""The ``train`` job: both models trained, exported to ONNX, checked, registered, promoted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from batch import demand, ranker
from batch.promotion import Outcome, register_and_promote
from batch.result import StepResult
from registry.store import ModelRegistry
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


def train_models(
    settings: Settings, catalogue: pa.Table, step: Callable[[str], None] = lambda _: None
) -> Trained:
    registry = ModelRegistry(settings.registry_dir)
    data = demand.training_set(settings, demand.list_prices(catalogue))
    fitted = demand.train_demand(data)
    _checked(demand.MODEL, fitted.exported.max_abs_diff)
    meta = demand.metadata(fitted)
    outcomes = {
        demand.MODEL: register_and_promote(
            registry, demand.MODEL, fitted.exported, meta, fitted.holdout,
            lambda scores: demand.wape(fitted.holdout_units, scores), "wape",
            higher_is_better=False, files=demand.files(meta),
        )
    }  # fmt: skip
    step("train demand")
    ranked = ranker.train_ranker(settings.lake_dir, catalogue)
    _checked(ranker.MODEL, ranked.exported.max_abs_diff)
    outcomes[ranker.MODEL] = register_and_promote(
        registry, ranker.MODEL, ranked.exported, ranker.metadata(ranked), ranked.test.features,
        ranker.ndcg_of(ranked.test), "ndcg_at_10", higher_is_better=True,
    )  # fmt: skip
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
