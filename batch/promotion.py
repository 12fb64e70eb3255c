"""Log a trained model to MLflow, register it, and make it champion only when it beats the champion.

"Beats" is measured on the new model's holdout with both ONNX files, the new one and the
champion, scored on the same rows by the same runtime: exactly what would be served, so a
retrained model that predicts the same is not "better" by a rounding difference. A champion
with another feature list cannot be scored on these rows and is replaced. A version that does
not beat the champion, or that a trainer's own gate refused (``refused``: why, e.g. a ranker
that orders worse than the candidates' own order), gets the ``challenger`` alias instead.

Only the model's own figures and files wait for its fit: the MLflow run (with its parameters
and data versions) and the champion's scores of the holdout do not, so a trainer lays that
:class:`Groundwork` on another thread while LightGBM fits (its C code releases the GIL), and
may log the model's files while it exports it (``batch.training.fit_beside_run``). Then the
metrics, the files not logged yet and the version's registration go as concurrent requests,
the run closes ``FINISHED`` once every file is logged, and the alias moves only once all of
these have answered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import structlog

from batch.onnx_export import INPUT, Export, onnx_scores, session
from registry.store import NATIVE_FILE, ModelRegistry, ModelVersion
from registry.tracking import (
    MODEL_FOLDER_NAMES,
    OpenRun,
    TrainingRecord,
    all_done,
    end_run,
    fail_run,
    start_run,
    submit_logs,
    submit_model,
)
from schemas.settings import Settings

log = structlog.get_logger(__name__)

SIGNATURE_ROWS = 5  # holdout rows the logged model's signature is inferred from


@dataclass(frozen=True)
class Outcome:
    version: ModelVersion
    promoted: bool
    current_score: float | None  # the previous champion on the same holdout
    run_id: str
    refused: str | None = None  # why the trainer's own gate kept it from promotion


@dataclass(frozen=True)
class Groundwork:
    """What registering a model needs that its fit does not change, so a trainer can lay it
    while the model fits: the MLflow run (parameters and data versions logged) and the
    champion with its ONNX scores of the holdout."""

    run: OpenRun
    champion: ModelVersion | None
    champion_scores: np.ndarray | None  # None without a champion or when its features differ
    loaded_onnx: bytes | None = None  # ONNX bytes onnxruntime has loaded (the export's check)


def lay_groundwork(
    settings: Settings,
    registry: ModelRegistry,
    record: TrainingRecord,
    features: list[str],
    holdout: np.ndarray,
    output: str,
) -> Groundwork:
    """Open the run of ``record`` and score the champion on ``holdout`` (rows of
    ``features``; ``output`` the score tensor when the champion's metadata does not name it).
    A champion with another feature list cannot score these rows: it gets no scores and is
    replaced."""
    run = start_run(settings, record)
    try:
        current = registry.current(record.model)
        scores = champion_scores(current, features, holdout, output)
    except BaseException:
        fail_run(settings, run)
        raise
    return Groundwork(run, current, scores)


def champion_scores(
    current: ModelVersion | None, features: list[str], holdout: np.ndarray, output: str
) -> np.ndarray | None:
    """The champion's ONNX scores of ``holdout`` for the promotion gate; None without a
    champion or when its feature list is not ``features``."""
    if current is None or current.metadata.get("features") != features:
        return None
    stat = current.model_path.stat()
    sess = _champion_session(str(current.model_path), stat.st_size, stat.st_mtime_ns)
    return onnx_scores(sess, str(current.metadata.get("onnx_output", output)), holdout)


@functools.lru_cache(maxsize=4)
def _champion_session(path: str, size: int, mtime_ns: int) -> ort.InferenceSession:
    """The onnxruntime session of a champion's local copy, loaded once per process while the
    file is the same (its size and modification time): a long-running scheduler trains many
    times against the same champion. onnxruntime sessions may run on several threads."""
    return session(Path(path).read_bytes())


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
    groundwork: Groundwork | None = None,
    refused: str | None = None,
) -> Outcome:
    """Log and register ``exported`` (with its native booster and ``files``, e.g. the
    importance plot, beside the ONNX file); promote it if it beats the champion on ``holdout``,
    the rows ``exported`` was checked on (its ONNX scores of them are the new model's).

    ``groundwork`` is the run and the champion's scores laid while the model was fitted
    (:func:`lay_groundwork` with ``record`` and the same holdout); without it they are laid
    here. An ONNX file that onnxruntime cannot load fails here, before anything is registered
    (and before the run is created when it is created here); a run that fails is marked
    ``FAILED``. ``refused`` (the trainer's gate said why not) keeps it from promotion whatever
    the comparison with the champion says.
    """
    if len(exported.check_scores) != len(holdout):
        raise ValueError(
            f"the holdout has {len(holdout)} rows, the export was checked on "
            f"{len(exported.check_scores)}: pass the rows the export was checked on"
        )
    if groundwork is None:
        session(exported.onnx)  # loads in onnxruntime: a broken export logs nothing
    ground = groundwork or lay_groundwork(
        settings, registry, record, metadata["features"], holdout, exported.output
    )
    try:
        new = score(exported.check_scores)
        current_score = None if ground.champion_scores is None else score(ground.champion_scores)
        metrics = {
            **metadata["metrics"],
            f"{metric}_onnx": new,
            "onnx_row_us": exported.onnx_row_us,
            "native_row_us": exported.native_row_us,
        }
        if current_score is not None:
            metrics[f"{metric}_current_on_holdout"] = current_score
        better = refused is None and (
            current_score is None
            or (new > current_score if higher_is_better else new < current_score)
        )
        version = _log_and_register(
            settings,
            registry,
            exported,
            {**metadata, "metrics": metrics},
            holdout,
            {NATIVE_FILE: exported.native.encode(), **(files or {})},
            ground.run,
            promote=better,
            loaded=groundwork is None or ground.loaded_onnx == exported.onnx,
        )
    except BaseException:
        fail_run(settings, ground.run)
        raise
    log.info(
        "model.registered",
        model=version.label,
        metric=metric,
        value=round(new, 4),
        current=None if ground.champion is None else ground.champion.label,
        current_value=current_score,
        promoted=better,
        refused=refused,
        run_id=ground.run.run_id,
    )
    return Outcome(version, better, current_score, ground.run.run_id, refused)


def _log_and_register(
    settings: Settings,
    registry: ModelRegistry,
    exported: Export,
    metadata: dict[str, Any],
    holdout: np.ndarray,
    stored: dict[str, bytes],
    run: OpenRun,
    *,
    promote: bool,
    loaded: bool,
) -> ModelVersion:
    """Log the metrics, the files beside the model and the model folder, and register the
    version, all as concurrent requests (with, for a promotion, the read of the aliases and
    the champion history); once every file is in MLflow, close the run ``FINISHED`` beside the
    metrics and the registration still in flight (MLflow takes metrics into a finished run);
    only once all of them have answered move the alias (``champion`` when ``promote``, after
    the history; else ``challenger``): an alias never names a version that is not ``READY``
    (:meth:`ModelRegistry.register`) or whose run is not ``FINISHED`` with all its metrics and
    files. The version is registered only once onnxruntime has loaded the ONNX bytes (here,
    unless the caller did: ``loaded``)."""
    with ThreadPoolExecutor(len(MODEL_FOLDER_NAMES) + 4 + len(stored)) as pool:
        state = pool.submit(registry.model_state, run.model) if promote else None
        logs = submit_logs(settings, run, metadata["metrics"], stored, pool)
        model = pool.submit(
            submit_model,
            settings,
            run,
            exported.onnx,
            holdout[:SIGNATURE_ROWS],
            exported.check_scores[:SIGNATURE_ROWS],
            pool,
        )
        if not loaded:
            session(exported.onnx)  # beside the model folder's writing: it releases the GIL
        registered = pool.submit(
            registry.register,
            run.model,
            run.source,
            run.run_id,
            {
                **metadata,
                "onnx_input": INPUT,
                "onnx_output": exported.output,
                "run_id": run.run_id,
                "files": sorted(stored),
            },
            onnx=exported.onnx,
            files=stored,
        )
        metrics, uploads = logs[0], logs[1:]
        all_done([*uploads, model])
        all_done(model.result())  # the model folder's uploads
        finished = pool.submit(end_run, settings, run.run_id, "FINISHED")
        all_done([metrics, registered, finished, *([state] if state else [])])
        version = registered.result()
        if state is not None:
            registry.record_previous_champion(version, state.result())
            registry.point_champion(version, state.result())
        else:
            registry.set_challenger(run.model, version.version)
    return version
