"""Log a trained model to MLflow, register it, and make it champion only when it beats the champion.

"Beats" is measured on the new model's holdout with both ONNX files, the new one and the
champion, scored on the same rows by the same runtime: exactly what would be served, so a
retrained model that predicts the same is not "better" by a rounding difference. A champion
with another feature list cannot be scored on these rows and is replaced. A version that does
not beat the champion gets the ``challenger`` alias instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import structlog

from batch.onnx_export import INPUT, Export, onnx_scores, session
from registry.store import NATIVE_FILE, ModelRegistry, ModelVersion
from registry.tracking import TrainingRecord, log_training_run
from schemas.settings import Settings

log = structlog.get_logger(__name__)

SIGNATURE_ROWS = 5  # holdout rows the logged model's signature is inferred from


@dataclass(frozen=True)
class Outcome:
    version: ModelVersion
    promoted: bool
    current_score: float | None  # the previous champion on the same holdout
    run_id: str


def register_and_promote(
    settings: Settings,
    registry: ModelRegistry,
    exported: Export,
    metadata: dict[str, Any],
    record: TrainingRecord,
    holdout: np.ndarray,
    score: Callable[[np.ndarray], float],
    metric: str,
    higher_is_better: bool,
    files: Mapping[str, bytes] | None = None,
) -> Outcome:
    """Log and register ``exported`` (with its native booster and ``files``, e.g. the
    importance plot, beside the ONNX file); promote it if it beats the champion on ``holdout``,
    the rows ``exported`` was checked on (its ONNX scores of them are the new model's).

    An ONNX file that onnxruntime cannot load fails here, before anything is registered.
    """
    if len(exported.check_scores) != len(holdout):
        raise ValueError(
            f"the holdout has {len(holdout)} rows, the export was checked on "
            f"{len(exported.check_scores)}: pass the rows the export was checked on"
        )
    name = record.model
    session(exported.onnx)  # the bytes about to be registered load in onnxruntime
    current = registry.current(name)
    scores = exported.check_scores
    new = score(scores)
    current_score = None
    if current is not None and current.metadata.get("features") == metadata["features"]:
        sess = session(current.model_path.read_bytes())
        output = str(current.metadata.get("onnx_output", exported.output))
        current_score = score(onnx_scores(sess, output, holdout))
    metrics = {
        **metadata["metrics"],
        f"{metric}_onnx": new,
        "onnx_row_us": exported.onnx_row_us,
        "native_row_us": exported.native_row_us,
    }
    if current_score is not None:
        metrics[f"{metric}_current_on_holdout"] = current_score
    stored = {NATIVE_FILE: exported.native.encode(), **(files or {})}
    logged = log_training_run(
        settings,
        replace(record, metrics=metrics),
        exported.onnx,
        holdout[:SIGNATURE_ROWS],
        scores[:SIGNATURE_ROWS],
        files=stored,
    )
    version = registry.register(
        name,
        logged.source,
        logged.run_id,
        {
            **metadata,
            "metrics": metrics,
            "onnx_input": INPUT,
            "onnx_output": exported.output,
            "run_id": logged.run_id,
            "files": sorted(logged.files),
        },
        onnx=exported.onnx,
        files=stored,
    )
    better = current_score is None or (
        new > current_score if higher_is_better else new < current_score
    )
    if better:
        registry.promote(name, version.version)
    else:
        registry.set_challenger(name, version.version)
    log.info(
        "model.registered",
        model=version.label,
        metric=metric,
        value=round(new, 4),
        current=None if current is None else current.label,
        current_value=current_score,
        promoted=better,
        run_id=logged.run_id,
    )
    return Outcome(version, better, current_score, logged.run_id)
