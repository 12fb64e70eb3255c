"""Register ONNX models in the real MLflow registry for tests, each test module under a model
prefix of its own (one MLflow server serves every test run and every engineer's shop)."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from registry import ModelRegistry, ModelVersion
from registry.tracking import TrainingRecord, log_training_run
from schemas.settings import Settings


def model_prefix() -> str:
    """A fresh registered-model prefix (``test-<hex>-``)."""
    return f"test-{uuid.uuid4().hex[:10]}-"


def register_onnx(
    settings: Settings,
    name: str,
    onnx_bytes: bytes,
    features: tuple[str, ...],
    metrics: dict[str, float] | None = None,
    *,
    promote: bool = True,
) -> ModelVersion:
    """Log ``onnx_bytes`` as a training run's model, register it, and (by default) promote it."""
    registry = ModelRegistry.from_settings(settings)
    metrics = metrics or {"x": 1.0}
    record = TrainingRecord(name, {"features": ",".join(features)}, metrics, {})
    rows = np.zeros((1, len(features)), dtype=np.float32)
    logged = log_training_run(settings, record, onnx_bytes, rows, np.zeros(1))
    metadata: dict[str, Any] = {"features": list(features), "metrics": metrics}
    version = registry.register(name, logged.source, logged.run_id, metadata)
    if promote:
        registry.promote(name, version.version)
    return version


def register_raw(settings: Settings, name: str, payload: bytes) -> ModelVersion:
    """Register a version whose ``model.onnx`` holds ``payload`` as is (e.g. a corrupt file),
    logged without MLflow's ONNX flavour, which would refuse it."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_url)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(settings.mlflow_experiment)
    )
    run = client.create_run(experiment_id, run_name=f"{name}-raw")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "model.onnx").write_bytes(payload)
        client.log_artifact(run.info.run_id, str(Path(tmp) / "model.onnx"), "model")
    client.set_terminated(run.info.run_id)
    registry = ModelRegistry.from_settings(settings)
    return registry.register(
        name, f"{run.info.artifact_uri}/model", run.info.run_id, {"features": ["x"], "metrics": {}}
    )
