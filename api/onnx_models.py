"""ONNX models served by the API: the ``champion`` of each model in MLflow's registry, loaded
from its local copy and reloaded when the alias moves.

A version that keeps its native booster also gets an :class:`~governance.explain.Explainer`
loaded from the same version directory, so an explanation always belongs to the served model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import structlog

from governance.explain import Explainer
from registry import ModelRegistry, ModelVersion, RegistryError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """One registered version with its inference session."""

    version: ModelVersion
    session: ort.InferenceSession
    input_name: str
    features: tuple[str, ...]
    explainer: Explainer | None = None

    @property
    def label(self) -> str:
        return self.version.label

    def predict(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """One score per row: the regression output, or the positive-class probability."""
        outputs = self.session.run(None, {self.input_name: rows.astype(np.float32, copy=False)})
        out = outputs[-1] if len(outputs) > 1 else outputs[0]
        if isinstance(out, list):  # ZipMap: [{label: probability}, ...]
            return np.array([row.get(1, row.get("1", 0.0)) for row in out], dtype=np.float64)
        arr = np.asarray(out, dtype=np.float64)
        if arr.ndim == 2 and arr.shape[1] == 2:
            return arr[:, 1]
        return arr.reshape(-1)


def load(version: ModelVersion) -> LoadedModel:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one request's rows are few; threads only add latency
    options.inter_op_num_threads = 1
    # Errors only: onnxruntime otherwise writes a line to stderr on every run of a model
    # whose declared output shape is fixed at one row (a ranker scoring 20 candidates).
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(version.model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name
    features = tuple(version.metadata.get("features", ()))
    explainer = None
    if version.native_path.exists() and features:
        explainer = Explainer.from_file(version.native_path, features)
    return LoadedModel(
        version=version,
        session=session,
        input_name=input_name,
        features=features,
        explainer=explainer,
    )


def refusal(label: str, trained_on: tuple[str, ...], expected: tuple[str, ...]) -> str | None:
    """Why a version trained on the columns ``trained_on`` cannot be served by an API that
    builds the rows ``expected`` (None when it can). Its rows would need columns this API
    does not build or would miss ones it does; a column that lost its old meaning (a source
    named apart) is no better, so the version waits for a training on today's columns.

    >>> why = refusal("ranker:v3", ("a", "b", "old"), ("a", "b", "c"))
    >>> why.startswith("ranker:v3 was trained on other input columns")
    True
    >>> "(missing: c; not built: old)" in why
    True
    >>> refusal("ranker:v4", ("a", "b"), ("a", "b")) is None
    True
    """
    if trained_on == expected:
        return None
    missing = [f for f in expected if f not in trained_on]
    unknown = [f for f in trained_on if f not in expected]
    what = "; ".join(
        part
        for part in (
            f"missing: {', '.join(missing)}" if missing else "",
            f"not built: {', '.join(unknown)}" if unknown else "",
        )
        if part
    ) or ("in another order" if trained_on else "no column list in its metadata")
    return (
        f"{label} was trained on other input columns than this API builds ({what}): not "
        "served; the lists are served without it until a version trained on today's columns "
        "is promoted (the next training)"
    )


class ModelSlot:
    """The champion of one named model; ``refresh`` follows the ``champion`` alias. With
    ``features`` (the input columns the API builds for it), a champion trained on other
    columns is not loaded: the slot keeps what it served and says why (:func:`refusal`)."""

    def __init__(
        self, registry: ModelRegistry, name: str, features: tuple[str, ...] | None = None
    ) -> None:
        self.registry = registry
        self.name = name
        self.features = features
        self.model: LoadedModel | None = None
        self.error: str | None = None
        self.refused: int | None = None  # the version refused last (not checked again)

    def refresh(self) -> bool:
        """Load the champion if the alias moved; True when the slot changed."""
        try:
            current = self.registry.current(self.name)
        except (RegistryError, OSError, ValueError) as exc:
            self.error = f"registry unreadable: {exc}"
            return False
        loaded = self.model.version.version if self.model else None
        if current is None or current.version == loaded:
            self.error = None if current else f"no current version of {self.name!r}"
            return False
        if current.version == self.refused:
            return False
        if self.features is not None:
            trained_on = tuple(current.metadata.get("features", ()))
            reason = refusal(current.label, trained_on, self.features)
            if reason is not None:
                self.error, self.refused = reason, current.version
                log.warning("model refused", model=current.label, reason=reason)
                return False
        try:
            model = load(current)
        except Exception as exc:  # noqa: BLE001 - a broken model must not take the API down
            self.error = f"{current.label} failed to load: {exc}"
            log.error("model load failed", model=current.label, error=str(exc))
            return False
        self.model, self.error = model, None
        log.info("model loaded", model=model.label, previous=loaded)
        return True
