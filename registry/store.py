"""A file-system model registry.

Layout under the registry root (``TILLFLOW_REGISTRY_DIR``, default ``.tillflow/models``)::

    <name>/<version>/model.onnx     the exported model
    <name>/<version>/model.lgb.txt  the native booster it was exported from (explanations)
    <name>/<version>/<file>         further files of the version (e.g. its importance plot)
    <name>/<version>/metadata.json  features, metrics, trained_on (Delta versions), created_at
    <name>/current.json             {"version": n, "history": [earlier versions, newest last]}

A version directory is written under a temporary name and renamed into place, and
``current.json`` is replaced with ``os.replace``: readers never see half a model or half a pointer.

>>> import tempfile
>>> reg = ModelRegistry(Path(tempfile.mkdtemp()))
>>> v1 = reg.register("demand", b"onnx-1", {"metrics": {"wape": 0.30}})
>>> reg.promote_if_better("demand", v1.version, metric="wape", higher_is_better=False)
True
>>> v2 = reg.register("demand", b"onnx-2", {"metrics": {"wape": 0.35}})
>>> reg.promote_if_better("demand", v2.version, metric="wape", higher_is_better=False)
False
>>> reg.current("demand").version
1
>>> reg.promote("demand", 2).label, reg.rollback("demand").label
('demand:v2', 'demand:v1')
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# A model name is one plain path segment: no dots, slashes or traversal (``..``).
MODEL_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
MODEL_FILE = "model.onnx"
NATIVE_FILE = "model.lgb.txt"
METADATA_FILE = "metadata.json"
CURRENT_FILE = "current.json"


class RegistryError(Exception):
    """An unknown model or version, or nothing to roll back to."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    name: str
    version: int
    path: Path
    metadata: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def native_path(self) -> Path:
        """The native LightGBM booster (text) the ONNX file was exported from."""
        return self.path / NATIVE_FILE

    @property
    def label(self) -> str:
        """``name:vN``, the form logs, metrics and API responses use."""
        return f"{self.name}:v{self.version}"


class ModelRegistry:
    """Register, list, promote and roll back model versions under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, name: str) -> Path:
        """The model's directory; RegistryError for a name that is not a plain model name.

        >>> ModelRegistry(Path("/r"))._dir("../etc")
        Traceback (most recent call last):
        ...
        registry.store.RegistryError: invalid model name '../etc': expected ^[a-z][a-z0-9_-]{0,63}$
        """
        if not re.fullmatch(MODEL_NAME_PATTERN, name):
            raise RegistryError(f"invalid model name {name!r}: expected {MODEL_NAME_PATTERN}")
        return self.root / name

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            p.name for p in self.root.iterdir()
            if p.is_dir() and re.fullmatch(MODEL_NAME_PATTERN, p.name) and _versions_in(p)
        )  # fmt: skip

    def register(
        self,
        name: str,
        onnx_bytes: bytes,
        metadata: dict[str, Any],
        files: Mapping[str, bytes] | None = None,
    ) -> ModelVersion:
        """Store a new version (the next integer) and return it; ``current`` is not changed.

        ``files`` are stored beside the model under their names (plain file names only).
        """
        model_dir = self._dir(name)
        model_dir.mkdir(parents=True, exist_ok=True)
        meta = {"created_at": datetime.now(UTC).isoformat(), **metadata}
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))
        (staging / MODEL_FILE).write_bytes(onnx_bytes)
        for file_name, content in (files or {}).items():
            if Path(file_name).name != file_name or file_name in (MODEL_FILE, METADATA_FILE):
                shutil.rmtree(staging, ignore_errors=True)
                raise RegistryError(f"invalid file name {file_name!r} for a model version")
            (staging / file_name).write_bytes(content)
        (staging / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        while True:  # another writer may take the same number: retry with the next one
            version = max(_versions_in(model_dir), default=0) + 1
            meta["version"] = version
            (staging / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
            try:
                staging.rename(model_dir / str(version))
                break
            except OSError:
                if not (model_dir / str(version)).exists():
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
        return self.version(name, version)

    def versions(self, name: str) -> list[ModelVersion]:
        return [self.version(name, v) for v in sorted(_versions_in(self._dir(name)))]

    def version(self, name: str, version: int) -> ModelVersion:
        path = self._dir(name) / str(version)
        if not (path / MODEL_FILE).exists():
            raise RegistryError(f"model {name!r} has no version {version}")
        metadata = json.loads((path / METADATA_FILE).read_text())
        return ModelVersion(name=name, version=version, path=path, metadata=metadata)

    def current(self, name: str) -> ModelVersion | None:
        pointer = self._pointer(name)
        return None if pointer is None else self.version(name, int(pointer["version"]))

    def promote(self, name: str, version: int) -> ModelVersion:
        """Make ``version`` current; the previous current goes on the rollback history."""
        target = self.version(name, version)
        pointer = self._pointer(name)
        history: list[int] = [] if pointer is None else list(pointer["history"])
        if pointer is not None and int(pointer["version"]) != version:
            history.append(int(pointer["version"]))
        self._write_pointer(name, {"version": version, "history": history[-50:]})
        return target

    def rollback(self, name: str) -> ModelVersion:
        """Return to the version that was current before the last promotion."""
        pointer = self._pointer(name)
        if pointer is None or not pointer["history"]:
            raise RegistryError(f"model {name!r} has no earlier version to roll back to")
        history = list(pointer["history"])
        previous = int(history.pop())
        self._write_pointer(name, {"version": previous, "history": history})
        return self.version(name, previous)

    def promote_if_better(
        self, name: str, version: int, *, metric: str, higher_is_better: bool
    ) -> bool:
        """Promote ``version`` when there is no current one or it beats the current on ``metric``.

        Both versions' ``metadata["metrics"][metric]`` must be measured on the same holdout.
        """
        candidate = self.version(name, version)
        current = self.current(name)
        if current is not None:
            new = float(candidate.metadata["metrics"][metric])
            old = float(current.metadata.get("metrics", {}).get(metric, float("nan")))
            if old == old and not (new > old if higher_is_better else new < old):
                return False
        self.promote(name, version)
        return True

    def _pointer(self, name: str) -> dict[str, Any] | None:
        path = self._dir(name) / CURRENT_FILE
        if not path.exists():
            return None
        pointer: dict[str, Any] = json.loads(path.read_text())
        return pointer

    def _write_pointer(self, name: str, pointer: dict[str, Any]) -> None:
        path = self._dir(name) / CURRENT_FILE
        fd, tmp = tempfile.mkstemp(prefix=".current-", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(pointer, fh)
        os.replace(tmp, path)


def _versions_in(model_dir: Path) -> list[int]:
    if not model_dir.exists():
        return []
    return [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
