"""Register a trained model and make it current only when it beats the current one.

"Beats" is measured on the new model's holdout with both ONNX files, the new one and the
current one, scored on the same rows by the same runtime: exactly what would be served, so a
retrained model that predicts the same is not "better" by a rounding difference. A current
version with another feature list cannot be scored on these rows and is replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from batch.onnx_export import INPUT, Export, onnx_scores, session
from registry.store import NATIVE_FILE, ModelRegistry, ModelVersion

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    version: ModelVersion
    promoted: bool
    current_score: float | None  # the previous current version on the same holdout


def register_and_promote(
    registry: ModelRegistry,
    name: str,
    exported: Export,
    metadata: dict[str, Any],
    holdout: np.ndarray,
    score: Callable[[np.ndarray], float],
    metric: str,
    higher_is_better: bool,
    files: Mapping[str, bytes] | None = None,
) -> Outcome:
    """Register ``exported`` (with its native booster and ``files``); promote it if it beats
    the current version on ``holdout``."""
    current = registry.current(name)
    new = score(onnx_scores(session(exported.onnx), exported.output, holdout))
    current_score = None
    if current is not None and current.metadata.get("features") == metadata["features"]:
        sess = session(current.model_path.read_bytes())
        output = str(current.metadata.get("onnx_output", exported.output))
        current_score = score(onnx_scores(sess, output, holdout))
    metrics = {**metadata["metrics"], f"{metric}_onnx": new}
    if current_score is not None:
        metrics[f"{metric}_current_on_holdout"] = current_score
    version = registry.register(
        name,
        exported.onnx,
        {**metadata, "metrics": metrics, "onnx_input": INPUT, "onnx_output": exported.output},
        {NATIVE_FILE: exported.native.encode(), **(files or {})},
    )
    better = current_score is None or (
        new > current_score if higher_is_better else new < current_score
    )
    if better:
        registry.promote(name, version.version)
    log.info(
        "model.registered", model=version.label, metric=metric, value=round(new, 4),
        current=None if current is None else current.label, current_value=current_score,
        promoted=better,
    )  # fmt: skip
    return Outcome(version, better, current_score)
