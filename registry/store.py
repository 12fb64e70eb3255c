"""The model registry: MLflow's registered models, seen through a thin adapter.

A model ``demand`` is the registered model ``<TILLFLOW_MLFLOW_MODEL_PREFIX>demand``; each training
run registers a new version of it. Two aliases say which version does what:

- ``champion``: the version the API serves. Promotion moves it; rollback moves it back to the
  version it pointed to before (the registered model's tag ``tillflow.champion_history`` keeps
  those, newest last).
- ``challenger``: the latest version that did not beat the champion, kept for a look or a
  manual promotion.

A version's metadata (features, metrics, data versions) is a JSON tag of the version. Versions
are copied locally by number (:class:`registry.copies.LocalCopies`) the first time they are
read, so the API loads an ONNX file from disk, and keeps serving the last champion it saw when
MLflow does not answer. A version that onnxruntime cannot load is never made champion.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onnxruntime as ort
import structlog

from registry.copies import MODEL_FILE, LocalCopies
from registry.rest import MlflowRest, MlflowUnavailable, NotFound, RegistryError
from schemas.settings import Settings

log = structlog.get_logger(__name__)

# A model name is one plain path segment: no dots, slashes or traversal (``..``).
MODEL_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
CHAMPION = "champion"
CHALLENGER = "challenger"
METADATA_TAG = "tillflow.metadata"
HISTORY_TAG = "tillflow.champion_history"
KEEP_HISTORY = 50
READY = "READY"  # a model version's status once its files are registered
READY_POLL_S = 0.05
NATIVE_FILE = "model.lgb.txt"  # the native LightGBM booster the ONNX file was exported from


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model (``path``: its local copy)."""

    name: str
    version: int
    path: Path
    metadata: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def native_path(self) -> Path:
        """The native LightGBM booster (text) the ONNX file was exported from (explanations)."""
        return self.path / NATIVE_FILE

    @property
    def label(self) -> str:
        """``name:vN``, the form logs, metrics and API responses use."""
        return f"{self.name}:v{self.version}"


def check_name(name: str) -> str:
    """``name`` if it is a plain model name, else RegistryError.

    >>> check_name("../etc")
    Traceback (most recent call last):
    ...
    registry.rest.RegistryError: invalid model name '../etc': expected ^[a-z][a-z0-9_-]{0,63}$
    """
    if not re.fullmatch(MODEL_NAME_PATTERN, name):
        raise RegistryError(f"invalid model name {name!r}: expected {MODEL_NAME_PATTERN}")
    return name


def _tags(entity: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in entity.get("tags", [])}


def _aliases(model: dict[str, Any]) -> dict[str, int]:
    """A registered model's aliases → versions.

    >>> _aliases({"aliases": [{"alias": "champion", "version": "3"}]})
    {'champion': 3}
    """
    return {a["alias"]: int(a["version"]) for a in model.get("aliases", [])}


def _history(model: dict[str, Any]) -> list[int]:
    """The champions before the current one, newest last (the registered model's tag)."""
    return [int(v) for v in json.loads(_tags(model).get(HISTORY_TAG, "[]"))]


class ModelRegistry:
    """List, register, promote and roll back model versions in MLflow's registry."""

    def __init__(self, rest: MlflowRest, copies: LocalCopies, prefix: str) -> None:
        self.rest = rest
        self.copies = copies
        self.prefix = prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        return cls(
            MlflowRest(settings.mlflow_url, settings.mlflow_timeout_s),
            LocalCopies(settings.registry_dir),
            settings.mlflow_model_prefix,
        )

    def registered_name(self, name: str) -> str:
        return f"{self.prefix}{check_name(name)}"

    def names(self) -> list[str]:
        """The models with at least one version."""
        found = self.rest.get(
            "registered-models/search", max_results="1000", filter=f"name LIKE '{self.prefix}%'"
        )
        names = (m["name"].removeprefix(self.prefix) for m in found.get("registered_models", ()))
        return sorted(n for n in names if re.fullmatch(MODEL_NAME_PATTERN, n))

    def register(
        self,
        name: str,
        source: str,
        run_id: str,
        metadata: dict[str, Any],
        *,
        onnx: bytes | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> ModelVersion:
        """A new version from the run's logged model folder ``source``; no alias moves. Given
        the bytes just logged there (``onnx`` and the further ``files``), the local copy is
        written from them at once instead of being downloaded back on the first read."""
        full = self.registered_name(name)
        tag = {"key": METADATA_TAG, "value": json.dumps(metadata, sort_keys=True)}
        body = {"name": full, "source": source, "run_id": run_id, "tags": [tag]}
        try:
            created = self.rest.post("model-versions/create", body)
        except NotFound:  # the model's first version: the registered model comes first
            self.rest.post("registered-models/create", {"name": full})
            created = self.rest.post("model-versions/create", body)
        version = int(created["model_version"]["version"])
        self._await_ready(full, created["model_version"])
        if onnx is not None:
            copied = self._from(name, {**created["model_version"], "tags": [tag]})
            self.copies.put(name, version, onnx, copied.metadata, files)
        return ModelVersion(name, version, self.copies.path(name, version), metadata)

    def _await_ready(self, full: str, mv: dict[str, Any]) -> None:
        """Return once the version is ``READY``: MLflow's database store creates it so, a
        store that copies the files first answers ``PENDING_REGISTRATION`` and is asked again
        (for at most the client's timeout). A version that failed or stays pending raises:
        nothing may point an alias at it."""
        deadline = time.monotonic() + self.rest.timeout_s
        while (status := mv.get("status", READY)) == "PENDING_REGISTRATION":
            if time.monotonic() > deadline:
                break
            time.sleep(READY_POLL_S)
            mv = self.rest.get("model-versions/get", name=full, version=str(mv["version"]))[
                "model_version"
            ]
        if status != READY:
            raise RegistryError(f"{full} version {mv['version']} is {status}, not {READY}")

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version, oldest first (metadata from MLflow; the local copy may not exist)."""
        found = self.rest.get(
            "model-versions/search",
            max_results="10000",
            filter=f"name='{self.registered_name(name)}'",
        )
        out = [self._from(name, mv) for mv in found.get("model_versions", ())]
        return sorted(out, key=lambda v: v.version)

    def version(self, name: str, version: int) -> ModelVersion:
        """One version, copied locally first if it is not yet."""
        if not isinstance(version, int) or version < 1:
            raise RegistryError(f"model {name!r} has no version {version}")
        try:
            mv = self.rest.get(
                "model-versions/get", name=self.registered_name(name), version=str(version)
            )["model_version"]
        except NotFound:
            raise RegistryError(f"model {name!r} has no version {version}") from None
        return self._copied(name, mv)

    def alias(self, name: str, alias: str) -> int | None:
        """The version ``alias`` points to, or None when it is not set."""
        try:
            mv = self.rest.get(
                "registered-models/alias", name=self.registered_name(name), alias=alias
            )["model_version"]
        except NotFound:
            return None
        return int(mv["version"])

    def current(self, name: str) -> ModelVersion | None:
        """The champion (copied locally); when MLflow does not answer, the last one seen here."""
        try:
            mv = self.rest.get(
                "registered-models/alias", name=self.registered_name(name), alias=CHAMPION
            )["model_version"]
        except NotFound:
            return None
        except MlflowUnavailable as exc:
            last = self.copies.champion(name)
            if last is None or not self.copies.has(name, last):
                raise
            log.warning("registry.offline", model=name, serving=f"{name}:v{last}", error=str(exc))
            return ModelVersion(
                name, last, self.copies.path(name, last), self.copies.metadata(name, last)
            )
        current = self._copied(name, mv)
        if self.copies.champion(name) != current.version:  # the API asks every few seconds
            self.copies.set_champion(name, current.version)
        return current

    def promote(self, name: str, version: int) -> ModelVersion:
        """Point ``champion`` at ``version`` once onnxruntime loads it; the previous champion
        goes on the history."""
        target = self.version(name, version)
        _check_loadable(target)
        self._move_champion(target)
        return target

    def _move_champion(self, target: ModelVersion) -> None:
        """One read (the aliases and the history), then the history, the alias and, when the
        version was the challenger, that alias's removal."""
        model = self.model_state(target.name)
        self.record_previous_champion(target, model)
        self.point_champion(target, model)

    def model_state(self, name: str) -> dict[str, Any]:
        """The registered model's aliases and champion history, read once before a promotion
        (:meth:`record_previous_champion`, then :meth:`point_champion`); nothing for a model
        not registered yet (its first version is being registered beside the read)."""
        try:
            found = self.rest.get("registered-models/get", name=self.registered_name(name))
        except NotFound:
            return {}
        model: dict[str, Any] = found["registered_model"]
        return model

    def record_previous_champion(self, target: ModelVersion, model: dict[str, Any]) -> None:
        """Append the champion of ``model`` (:meth:`model_state`) to the history that
        rollback reads, unless it is ``target`` already: done before the alias moves, so a
        rollback always finds the version it replaced."""
        previous = _aliases(model).get(CHAMPION)
        if previous is not None and previous != target.version:
            history = [*_history(model), previous][-KEEP_HISTORY:]
            self._set_history(history, self.registered_name(target.name))

    def point_champion(self, target: ModelVersion, model: dict[str, Any]) -> None:
        """Move ``champion`` to ``target`` and, when ``model`` (:meth:`model_state`) had it
        as challenger, remove that alias."""
        full = self.registered_name(target.name)
        self.rest.post(
            "registered-models/alias",
            {"name": full, "alias": CHAMPION, "version": str(target.version)},
        )
        if _aliases(model).get(CHALLENGER) == target.version:
            self.rest.delete("registered-models/alias", {"name": full, "alias": CHALLENGER})
        self.copies.set_champion(target.name, target.version)

    def set_challenger(self, name: str, version: int) -> None:
        self.rest.post(
            "registered-models/alias",
            {"name": self.registered_name(name), "alias": CHALLENGER, "version": str(version)},
        )

    def rollback(self, name: str) -> ModelVersion:
        """Move ``champion`` back to the version it pointed to before the last promotion."""
        history = _history(self._model(name))
        if not history:
            raise RegistryError(f"model {name!r} has no earlier version to roll back to")
        previous = history.pop()
        target = self.version(name, previous)
        full = self.registered_name(name)
        self._set_history(history, full)
        self.rest.post(
            "registered-models/alias", {"name": full, "alias": CHAMPION, "version": str(previous)}
        )
        self.copies.set_champion(name, previous)
        return target

    def _model(self, name: str) -> dict[str, Any]:
        """The registered model: its tags (the champion history) and its aliases."""
        try:
            found = self.rest.get("registered-models/get", name=self.registered_name(name))
        except NotFound:
            raise RegistryError(f"model {name!r} is not registered") from None
        model: dict[str, Any] = found["registered_model"]
        return model

    def _set_history(self, history: list[int], full: str) -> None:
        body = {"name": full, "key": HISTORY_TAG, "value": json.dumps(history)}
        self.rest.post("registered-models/set-tag", body)

    def _from(self, name: str, mv: dict[str, Any]) -> ModelVersion:
        version = int(mv["version"])
        metadata = json.loads(_tags(mv).get(METADATA_TAG, "{}"))
        metadata.setdefault("run_id", mv.get("run_id"))
        if "creation_timestamp" in mv:
            created = datetime.fromtimestamp(int(mv["creation_timestamp"]) / 1000, UTC)
            metadata.setdefault("created_at", created.isoformat(timespec="seconds"))
        return ModelVersion(name, version, self.copies.path(name, version), metadata)

    def _copied(self, name: str, mv: dict[str, Any]) -> ModelVersion:
        found = self._from(name, mv)
        if not self.copies.has(name, found.version):
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / MODEL_FILE
                self.rest.download(str(mv["source"]), MODEL_FILE, target)
                extra = {}
                for file_name in found.metadata.get("files", ()):
                    self.rest.download(str(mv["source"]), file_name, Path(tmp) / file_name)
                    extra[file_name] = (Path(tmp) / file_name).read_bytes()
                self.copies.put(name, found.version, target.read_bytes(), found.metadata, extra)
            log.info("registry.copied", model=found.label, path=str(found.path))
        return found


class UnloadableModel(RegistryError):
    """A version whose ONNX file onnxruntime cannot load: it never becomes champion."""


def _check_loadable(version: ModelVersion) -> None:
    try:
        ort.InferenceSession(str(version.model_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
        raise UnloadableModel(f"{version.label} is not a loadable ONNX model: {exc}") from None
