"""Log a training run to MLflow: parameters, metrics, data versions, feature set, ONNX model.

One run per trained model, in the experiment ``TILLFLOW_MLFLOW_EXPERIMENT``:

- parameters: the estimator's hyper-parameters, the feature list, the target and the holdout;
  ``data.<table>`` the Delta version of every lake table read, ``feast.feature_set`` the Feast
  feature references joined into the training set;
- metrics: the model's figures (demand WAPE and the naive baseline's, ranker HR@10 / NDCG@10 and
  the popularity list's, ...), among them ``onnx_max_abs_diff``, the largest gap between ONNX
  and native predictions on the holdout;
- the artifact folder ``model``: the ONNX file in MLflow's ``onnx`` flavour with its signature
  (a float32 tensor of the features in, the score out), which the registry version points to.

The run is created, logged and closed through MLflow's REST API (:class:`registry.rest.MlflowRest`,
plain ``urllib``): one request per step, ~0.7 ms of client CPU each where ``MlflowClient``
spent ~2.3 ms (``requests``, retries, request-header plugins). Each file of the model folder is
one upload; they go :data:`UPLOADS` at a time, beside the ``log-batch`` of parameters and metrics.
The ``mlflow`` package writes the model folder (``mlflow.onnx.save_model``: the flavour, the
signature, the requirements); it is imported here only (training), never on the serving path.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from infra.readiness import require_mlflow
from registry.rest import MlflowRest, NotFound
from schemas.settings import Settings

log = structlog.get_logger(__name__)

MODEL_ARTIFACT = "model"
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter value
UPLOADS = 4  # files of the model folder uploaded at once (each one is a PUT through the server)


@dataclass(frozen=True)
class TrainingRecord:
    """What one training run logs besides its model."""

    model: str
    params: dict[str, Any]
    metrics: dict[str, float]
    data_versions: dict[str, int]  # lake table (``gold/sku_daily``) → Delta version read
    feature_set: tuple[str, ...] = ()  # Feast references (``view:feature``) read
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    source: str  # the run's ``model`` artifact folder, what a registry version points to
    files: tuple[str, ...] = ()  # further files logged beside the model (native booster, plots)


def run_params(record: TrainingRecord) -> dict[str, str]:
    """Every parameter of the run as MLflow strings (data versions and feature set included).

    >>> r = TrainingRecord("demand", {"lr": 0.05}, {}, {"gold/sku_daily": 4}, ("v:a", "v:b"))
    >>> run_params(r)
    {'lr': '0.05', 'data.gold/sku_daily': '4', 'feast.feature_set': 'v:a,v:b'}
    """
    params = {k: str(v)[:MAX_PARAM_CHARS] for k, v in record.params.items()}
    params.update({f"data.{table}": str(v) for table, v in record.data_versions.items()})
    if record.feature_set:
        params["feast.feature_set"] = ",".join(record.feature_set)[:MAX_PARAM_CHARS]
    return params


@functools.cache
def runtime_requirements() -> tuple[str, ...]:
    """What the logged model needs to run: the project's pins of onnx and onnxruntime. Given
    explicitly: MLflow would otherwise infer them by loading the model in a subprocess, which
    took ~20 s per run on the busy 2-core machine. Read once per process (installed packages
    do not change under it; each lookup parses the package's metadata file)."""
    return (f"onnx=={version('onnx')}", f"onnxruntime=={version('onnxruntime')}")


def log_training_run(
    settings: Settings,
    record: TrainingRecord,
    onnx_bytes: bytes,
    example_rows: np.ndarray,
    example_scores: np.ndarray,
    files: Mapping[str, bytes] | None = None,
) -> LoggedRun:
    """Log ``record`` and the ONNX model (signature from the example rows and their scores);
    ``files`` (plain names) go into the model's folder beside it."""
    import mlflow.onnx
    import onnx
    from mlflow.models import infer_signature

    require_mlflow(settings)
    rest = MlflowRest(settings.mlflow_url, settings.mlflow_timeout_s)
    experiment_id = _experiment_id(rest, settings.mlflow_experiment)
    now = int(time.time() * 1000)
    tags = {"tillflow.model": record.model, **record.tags}
    run = rest.post(
        "runs/create",
        {
            "experiment_id": experiment_id,
            "run_name": record.model,
            "start_time": now,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        },
    )["run"]["info"]
    run_id, artifact_uri = str(run["run_id"]), str(run["artifact_uri"])
    batch = {
        "run_id": run_id,
        "metrics": [
            {"key": k, "value": float(v), "timestamp": now, "step": 0}
            for k, v in record.metrics.items()
            if v == v  # NaN is not a metric
        ],
        "params": [{"key": k, "value": v} for k, v in run_params(record).items()],
        "tags": [{"key": f"data.{t}", "value": str(v)} for t, v in record.data_versions.items()],
    }
    signature = infer_signature(example_rows.astype(np.float32), example_scores.astype(np.float32))
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(UPLOADS) as pool:
        logged = pool.submit(rest.post, "runs/log-batch", batch)
        folder = Path(tmp) / MODEL_ARTIFACT
        mlflow.onnx.save_model(
            onnx.load_from_string(onnx_bytes),
            str(folder),
            signature=signature,
            pip_requirements=list(runtime_requirements()),
        )
        for name, content in (files or {}).items():
            if Path(name).name != name or (folder / name).exists():
                raise ValueError(f"invalid file name {name!r} beside a logged model")
            (folder / name).write_bytes(content)
        _all_done(
            [logged]
            + [
                pool.submit(
                    rest.upload,
                    f"{artifact_uri}/{_artifact_dir(folder, path)}",
                    path.name,
                    path.read_bytes(),
                )
                for path in sorted(folder.rglob("*"))
                if path.is_file()
            ]
        )
    _finish(rest, run_id)
    log.info("training.logged", model=record.model, run_id=run_id, experiment=experiment_id)
    return LoggedRun(run_id, f"{artifact_uri}/{MODEL_ARTIFACT}", tuple(sorted(files or ())))


def _experiment_id(rest: MlflowRest, name: str) -> str:
    """The id of the experiment ``name``, created when it does not exist yet."""
    try:
        found = rest.get("experiments/get-by-name", experiment_name=name)
    except NotFound:
        return str(rest.post("experiments/create", {"name": name})["experiment_id"])
    return str(found["experiment"]["experiment_id"])


def _artifact_dir(folder: Path, path: Path) -> str:
    """Where a file of the local model folder goes in the run's artifacts.

    >>> _artifact_dir(Path("/t/model"), Path("/t/model/sub/x.txt"))
    'model/sub'
    """
    return "/".join((MODEL_ARTIFACT, *path.relative_to(folder).parent.parts))


def _all_done(futures: list[Any]) -> None:
    """Wait for every upload; the first failure is raised once all have ended."""
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error


def _finish(rest: MlflowRest, run_id: str) -> None:
    """Mark the run FINISHED with one request (``MlflowClient.set_terminated`` reads the run back
    first, only to print its address on stdout)."""
    rest.post(
        "runs/update",
        {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)},
    )


def log_audit_run(
    settings: Settings,
    audit_id: str,
    models: Mapping[str, str],
    metrics: Mapping[str, float],
    rows_json: str,
) -> str:
    """Log one fairness audit as an MLflow run beside the training runs: the audited model
    versions as tags, each check's between-group ratio and breach as metrics, every group's
    figures as ``fairness_audit.json``; return the run id."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    require_mlflow(settings)
    client = MlflowClient(tracking_uri=settings.mlflow_url)
    rest = MlflowRest(settings.mlflow_url, settings.mlflow_timeout_s)
    experiment_id = _experiment_id(rest, settings.mlflow_experiment)
    tags = {
        "tillflow.kind": "fairness-audit",
        "tillflow.audit_id": audit_id,
        **{f"model.{name}": label for name, label in models.items()},
    }
    run = client.create_run(experiment_id, run_name="fairness-audit", tags=tags)
    now = int(time.time() * 1000)
    client.log_batch(
        run.info.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()]
    )
    client.log_text(run.info.run_id, rows_json, "fairness_audit.json")
    _finish(rest, run.info.run_id)
    return str(run.info.run_id)
