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

A run is logged in steps, so that a trainer can overlap them with its own work:
:func:`start_run` creates it with its parameters and data versions (all known before the fit);
:func:`log_model` uploads the model folder (and files beside it) as soon as the ONNX bytes
exist; :func:`submit_logs` and :func:`submit_model` send the metrics and whatever the run has
not logged yet as concurrent requests, one each, on the caller's thread pool; :func:`end_run`
closes it ``FINISHED`` (or ``FAILED``). :func:`log_training_run` chains them.

The requests go through MLflow's REST API (:class:`registry.rest.MlflowRest`, plain
``urllib``): ~0.7 ms of client CPU each where ``MlflowClient`` spent ~2.3 ms (``requests``,
retries, request-header plugins). The ``mlflow`` package builds the model folder's ``MLmodel``
and environment files (:func:`model_folder`); it is imported here only (training), never on
the serving path.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import structlog

from infra.readiness import require_mlflow
from registry.rest import MlflowRest, NotFound
from schemas.settings import Settings

log = structlog.get_logger(__name__)

MODEL_ARTIFACT = "model"
ONNX_FILE = "model.onnx"
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter value
ENVIRONMENT_NAMES = ("conda.yaml", "python_env.yaml", "requirements.txt")
MODEL_FOLDER_NAMES = frozenset(("MLmodel", ONNX_FILE, *ENVIRONMENT_NAMES))
"""What ``mlflow.onnx.save_model`` writes into the model folder (files beside it take others)."""


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
class OpenRun:
    """A run created in MLflow, its parameters, data versions and the model folder's
    environment files logged."""

    run_id: str
    artifact_uri: str  # ``mlflow-artifacts:/<experiment>/<run>/artifacts``
    model: str
    uploaded: tuple[tuple[str, bytes], ...] = ()  # files of the model folder already logged

    @property
    def source(self) -> str:
        """The run's ``model`` artifact folder, what a registry version points to."""
        return f"{self.artifact_uri}/{MODEL_ARTIFACT}"

    def having(self, files: Iterable[tuple[str, bytes]]) -> OpenRun:
        """The run knowing that ``files`` are in its model folder now."""
        return replace(self, uploaded=(*self.uploaded, *files))


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


@functools.cache
def environment_files() -> tuple[tuple[str, bytes], ...]:
    """The environment files of a logged model folder (:data:`ENVIRONMENT_NAMES`). MLflow
    writes them from the requirements and the interpreter alone, the same for every model, so
    they are written once per process (for a one-node ONNX model) and a run logs them when it
    starts, before its model exists; :func:`submit_model` skips them when they are the same."""
    import mlflow.onnx
    from onnx import TensorProto, helper

    tensor = [1]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "environment",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, tensor)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, tensor)],
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / MODEL_ARTIFACT
        mlflow.onnx.save_model(
            helper.make_model(graph), str(folder), pip_requirements=list(runtime_requirements())
        )
        return tuple((name, (folder / name).read_bytes()) for name in ENVIRONMENT_NAMES)


def _rest(settings: Settings) -> MlflowRest:
    return MlflowRest(settings.mlflow_url, settings.mlflow_timeout_s)


def start_run(settings: Settings, record: TrainingRecord) -> OpenRun:
    """Create the run (tags, start time), log its parameters and data versions and the model
    folder's environment files; the record's metrics, if any, are left to :func:`submit_logs`.
    The experiment is looked up by the first run of the process only (:data:`EXPERIMENT_IDS`),
    and again when it no longer exists."""
    rest = _rest(settings)
    tags = {"tillflow.model": record.model, **record.tags}
    body = {
        "run_name": record.model,
        "start_time": _now_ms(),
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }
    known = EXPERIMENT_IDS.get((settings.mlflow_url, settings.mlflow_experiment))
    try:
        experiment_id = known or _experiment_id(rest, settings)
        created = rest.post("runs/create", {"experiment_id": experiment_id, **body})
    except NotFound:
        if known is None:
            raise
        experiment_id = _experiment_id(rest, settings)  # deleted since it was looked up
        created = rest.post("runs/create", {"experiment_id": experiment_id, **body})
    run = created["run"]["info"]
    opened = OpenRun(
        str(run["run_id"]), str(run["artifact_uri"]), record.model, environment_files()
    )
    rest.post(
        "runs/log-batch",
        {
            "run_id": opened.run_id,
            "params": [{"key": k, "value": v} for k, v in run_params(record).items()],
            "tags": [
                {"key": f"data.{t}", "value": str(v)} for t, v in record.data_versions.items()
            ],
        },
    )
    for name, content in opened.uploaded:
        rest.upload(opened.source, name, content)
    log.info("training.run_started", model=record.model, run_id=opened.run_id)
    return opened


def submit_logs(
    settings: Settings,
    run: OpenRun,
    metrics: Mapping[str, float],
    files: Mapping[str, bytes],
    pool: Executor,
) -> list[Future[Any]]:
    """Submit to ``pool`` the ``log-batch`` of ``metrics`` and one upload per file of
    ``files`` into the run's model folder (plain names, none of MLflow's own) that the run has
    not logged already (:func:`log_file`)."""
    _check_beside(files)
    rest = _rest(settings)
    now = _now_ms()
    batch = {
        "run_id": run.run_id,
        "metrics": [
            {"key": k, "value": float(v), "timestamp": now, "step": 0}
            for k, v in metrics.items()
            if v == v  # NaN is not a metric
        ],
    }
    logged = dict(run.uploaded)
    return [pool.submit(rest.post, "runs/log-batch", batch)] + [
        pool.submit(rest.upload, run.source, name, content)
        for name, content in files.items()
        if logged.get(name) != content
    ]


def log_file(settings: Settings, run: OpenRun, name: str, content: bytes) -> OpenRun:
    """Upload one file into the run's model folder now (e.g. a plot ready before the model
    is); the run returned knows it, so :func:`submit_logs` does not send it again."""
    _rest(settings).upload(run.source, name, content)
    return run.having([(name, content)])


def submit_model(
    settings: Settings,
    run: OpenRun,
    onnx_bytes: bytes,
    example_rows: np.ndarray,
    example_scores: np.ndarray,
    pool: Executor,
) -> list[Future[Any]]:
    """Submit one upload per file of the model folder (:func:`model_folder`) that the run has
    not logged already; nothing at all (not even the folder's writing) when the run logged
    the folder of these ONNX bytes already (:func:`log_model`)."""
    logged = {(MODEL_ARTIFACT, name): content for name, content in run.uploaded}
    if logged.get((MODEL_ARTIFACT, ONNX_FILE)) == onnx_bytes:
        return []
    rest = _rest(settings)
    return [
        pool.submit(rest.upload, f"{run.artifact_uri}/{parent}", name, content)
        for (parent, name), content in model_folder(
            onnx_bytes, example_rows, example_scores
        ).items()
        if logged.get((parent, name)) != content
    ]


def model_folder(
    onnx_bytes: bytes, example_rows: np.ndarray, example_scores: np.ndarray
) -> dict[tuple[str, str], bytes]:
    """The model folder's files by (artifact folder, name): what ``mlflow.onnx.save_model``
    writes for these ONNX bytes — the ONNX file, ``MLmodel`` (the ``onnx`` and
    ``python_function`` flavours, the signature inferred from the example rows and their
    scores, the model's size) and the environment files — built from the bytes in hand.
    ``save_model`` would parse the ONNX bytes and serialise them again (the same bytes),
    check every requirement against the installed packages and describe the interpreter on
    every call (~11 ms of CPU per run); the environment files are the same for every model
    (:func:`environment_files`) and ``MLmodel`` is written with MLflow's own ``Model``."""
    import mlflow.onnx
    import onnx
    from mlflow import pyfunc
    from mlflow.models import Model, infer_signature

    model = Model(
        signature=infer_signature(
            example_rows.astype(np.float32), example_scores.astype(np.float32)
        )
    )
    pyfunc.add_to_model(
        model,
        loader_module="mlflow.onnx",
        data=ONNX_FILE,
        conda_env=ENVIRONMENT_NAMES[0],
        python_env=ENVIRONMENT_NAMES[1],
        code=None,
    )
    model.add_flavor(
        mlflow.onnx.FLAVOR_NAME,
        onnx_version=onnx.__version__,
        data=ONNX_FILE,
        providers=mlflow.onnx.ONNX_EXECUTION_PROVIDERS,
        onnx_session_options=None,
        code=None,
    )
    model.model_size_bytes = len(onnx_bytes)  # the folder's size when MLflow measures it
    files = {
        ONNX_FILE: onnx_bytes,
        "MLmodel": model.to_yaml().encode(),
        **dict(environment_files()),
    }
    return {(MODEL_ARTIFACT, name): files[name] for name in sorted(files)}


def log_model(
    settings: Settings,
    run: OpenRun,
    onnx_bytes: bytes,
    example_rows: np.ndarray,
    example_scores: np.ndarray,
    files: Mapping[str, bytes],
) -> tuple[tuple[str, bytes], ...]:
    """Upload now, concurrently, the model folder and ``files`` beside it (plain names) that
    the run has not logged already, e.g. while the trainer still measures the model; return
    what the model folder holds now: a run that knows it (:meth:`OpenRun.having`) skips them
    in :func:`submit_model` and :func:`submit_logs`."""
    _check_beside(files)
    rest = _rest(settings)
    folder = model_folder(onnx_bytes, example_rows, example_scores)
    top = {name: content for (parent, name), content in folder.items() if parent == MODEL_ARTIFACT}
    logged = dict(run.uploaded)
    with ThreadPoolExecutor(len(folder) + len(files)) as pool:
        all_done(
            [
                pool.submit(rest.upload, f"{run.artifact_uri}/{parent}", name, content)
                for (parent, name), content in folder.items()
                if parent != MODEL_ARTIFACT or logged.get(name) != content
            ]
            + [
                pool.submit(rest.upload, run.source, name, content)
                for name, content in files.items()
                if logged.get(name) != content
            ]
        )
    return (*top.items(), *files.items())


def end_run(settings: Settings, run_id: str, status: Literal["FINISHED", "FAILED"]) -> None:
    """Close the run with one request (``MlflowClient.set_terminated`` reads the run back
    first, only to print its address on stdout)."""
    _rest(settings).post("runs/update", {"run_id": run_id, "status": status, "end_time": _now_ms()})


def fail_run(settings: Settings, run: OpenRun) -> None:
    """Mark a run whose training or logging failed ``FAILED``; a failure to say so is logged,
    not raised over the error that ended the run."""
    try:
        end_run(settings, run.run_id, "FAILED")
    except Exception as exc:  # noqa: BLE001 - the caller re-raises the error that matters
        log.warning("training.run_not_closed", run_id=run.run_id, error=str(exc))


def all_done(futures: list[Future[Any]]) -> None:
    """Wait for every future; the first failure is raised once all have ended."""
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error


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
    require_mlflow(settings)
    run = start_run(settings, record)
    try:
        with ThreadPoolExecutor(len(MODEL_FOLDER_NAMES) + 1 + len(files or {})) as pool:
            futures = submit_logs(settings, run, record.metrics, files or {}, pool)
            futures += submit_model(settings, run, onnx_bytes, example_rows, example_scores, pool)
            all_done(futures)
        end_run(settings, run.run_id, "FINISHED")
    except BaseException:
        fail_run(settings, run)
        raise
    log.info("training.logged", model=record.model, run_id=run.run_id)
    return LoggedRun(run.run_id, run.source, tuple(sorted(files or ())))


def _check_beside(files: Iterable[str]) -> None:
    for name in files:
        if Path(name).name != name or name in MODEL_FOLDER_NAMES:
            raise ValueError(f"invalid file name {name!r} beside a logged model")


def _now_ms() -> int:
    return int(time.time() * 1000)


EXPERIMENT_IDS: dict[tuple[str, str], str] = {}
"""Experiment ids by (server URL, experiment name), looked up once per process: a training
process opens a run per model, and the lookup was one request of each run's."""


def _experiment_id(rest: MlflowRest, settings: Settings) -> str:
    """The id of the experiment ``TILLFLOW_MLFLOW_EXPERIMENT``, created when it does not exist
    yet; remembered in :data:`EXPERIMENT_IDS`."""
    name = settings.mlflow_experiment
    try:
        found = rest.get("experiments/get-by-name", experiment_name=name)
        experiment_id = str(found["experiment"]["experiment_id"])
    except NotFound:
        experiment_id = str(rest.post("experiments/create", {"name": name})["experiment_id"])
    EXPERIMENT_IDS[(settings.mlflow_url, name)] = experiment_id
    return experiment_id


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
    experiment_id = _experiment_id(rest, settings)
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
    end_run(settings, run.info.run_id, "FINISHED")
    return str(run.info.run_id)
