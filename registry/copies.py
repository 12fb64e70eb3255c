"""Local copies of registered model versions, and the last champion seen per model.

Layout under the copies root (``TILLFLOW_REGISTRY_DIR``, default ``.tillflow/models``)::

    <name>/<version>/model.onnx     the version's ONNX file, downloaded once from MLflow
    <name>/<version>/metadata.json  features, metrics, data versions, run id
    <name>/<version>/<file>         the version's further files (``metadata["files"]``: the
                                    native booster ``model.lgb.txt``, an importance plot)
    <name>/champion.json            {"version": n}: the champion when MLflow last answered

A version is immutable in MLflow, so its copy never goes stale. Files are written under a
temporary name and renamed into place: a reader never sees half a model. When MLflow does not
answer, the API keeps serving the champion recorded here.

>>> import tempfile
>>> copies = LocalCopies(Path(tempfile.mkdtemp()))
>>> copies.put("demand", 3, b"onnx", {"features": ["price"]}).name
'3'
>>> copies.set_champion("demand", 3); copies.champion("demand")
3
>>> copies.metadata("demand", 3)
{'features': ['price']}
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
CHAMPION_FILE = "champion.json"


class LocalCopies:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, name: str, version: int) -> Path:
        return self.root / name / str(version)

    def has(self, name: str, version: int) -> bool:
        path = self.path(name, version)
        return (path / MODEL_FILE).exists() and (path / METADATA_FILE).exists()

    def put(
        self,
        name: str,
        version: int,
        onnx: bytes,
        metadata: dict[str, Any],
        files: Mapping[str, bytes] | None = None,
    ) -> Path:
        """Write the version's files; the metadata last, as :meth:`has` looks for it."""
        path = self.path(name, version)
        path.mkdir(parents=True, exist_ok=True)
        for file_name, content in (files or {}).items():
            if Path(file_name).name != file_name or file_name in (MODEL_FILE, METADATA_FILE):
                raise ValueError(f"invalid file name {file_name!r} for a model version")
            _write_atomic(path / file_name, content)
        _write_atomic(path / MODEL_FILE, onnx)
        _write_atomic(path / METADATA_FILE, json.dumps(metadata, sort_keys=True).encode())
        return path

    def metadata(self, name: str, version: int) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.path(name, version) / METADATA_FILE).read_text())
        return loaded

    def champion(self, name: str) -> int | None:
        try:
            return int(json.loads((self.root / name / CHAMPION_FILE).read_text())["version"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def set_champion(self, name: str, version: int) -> None:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        _write_atomic(self.root / name / CHAMPION_FILE, json.dumps({"version": version}).encode())


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
