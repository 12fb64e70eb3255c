"""A small client of MLflow's REST API: the registry calls the API and the trainer need.

The serving side reads aliases and downloads ONNX files through these few HTTP calls instead of
the ``mlflow`` package: importing ``mlflow`` loads every installed MLflow plugin (Feast registers
one), which takes tens of seconds on a busy machine and would delay every API start. Training
logs its runs with the ``mlflow`` client itself (:mod:`registry.tracking`).

Every failure to reach the server raises :class:`MlflowUnavailable`, naming MLflow and its address.
"""

from __future__ import annotations

import json
import mimetypes
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from infra.redact import redact

ARTIFACTS_SCHEME = "mlflow-artifacts:/"


class RegistryError(Exception):
    """An unknown model or version, or nothing to roll back to."""


class MlflowUnavailable(RegistryError):
    """The MLflow tracking server did not answer."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"MLflow is not reachable at {redact(url)}: {reason}; start the local stack with "
            "`tillflow up` (or `make up`), or set TILLFLOW_MLFLOW_URL"
        )


class NotFound(RegistryError):
    """MLflow answered RESOURCE_DOES_NOT_EXIST (or an alias that is not set)."""


class MlflowRest:
    """JSON calls to ``<url>/api/2.0/mlflow/...`` with a timeout; no retries (callers fall back)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def get(self, endpoint: str, **query: str) -> dict[str, Any]:
        return self._call("GET", f"{endpoint}?{urllib.parse.urlencode(query)}", None)

    def post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", endpoint, body)

    def delete(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("DELETE", endpoint, body)

    def _call(self, method: str, endpoint: str, body: dict[str, Any] | None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/api/2.0/mlflow/{endpoint}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error(exc)
            if detail.get("error_code") == "RESOURCE_DOES_NOT_EXIST" or (
                detail.get("error_code") == "INVALID_PARAMETER_VALUE"
                and "alias" in str(detail.get("message", ""))
            ):
                raise NotFound(str(detail.get("message", exc))) from None
            raise RegistryError(f"MLflow {method} {endpoint}: {exc.code} {detail}") from None
        except (OSError, TimeoutError) as exc:
            raise MlflowUnavailable(self.url, str(exc)) from None
        parsed: dict[str, Any] = json.loads(raw) if raw else {}
        return parsed

    def download(self, source: str, name: str, target: Path) -> None:
        """Write the artifact ``<source>/<name>`` (a ``mlflow-artifacts:/`` URI) to ``target``."""
        try:
            with urllib.request.urlopen(
                self._artifact_url(source, name), timeout=self.timeout_s
            ) as response:
                target.write_bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise RegistryError(f"MLflow artifact {source}/{name}: {exc.code}") from None
        except (OSError, TimeoutError) as exc:
            raise MlflowUnavailable(self.url, str(exc)) from None

    def upload(self, folder: str, name: str, content: bytes) -> None:
        """Store ``content`` as the artifact ``<folder>/<name>`` (a ``mlflow-artifacts:/`` URI)."""
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        request = urllib.request.Request(
            self._artifact_url(folder, name),
            data=content,
            method="PUT",
            headers={"Content-Type": kind},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise RegistryError(f"MLflow artifact upload {folder}/{name}: {exc.code}") from None
        except (OSError, TimeoutError) as exc:
            raise MlflowUnavailable(self.url, str(exc)) from None

    def _artifact_url(self, folder: str, name: str) -> str:
        """The server's address of ``<folder>/<name>``.

        >>> MlflowRest("http://m:5000", 1)._artifact_url("mlflow-artifacts:/1/r/artifacts", "a b")
        'http://m:5000/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a%20b'
        """
        if not folder.startswith(ARTIFACTS_SCHEME):
            raise RegistryError(f"artifact {folder!r} is not served by the MLflow server")
        path = urllib.parse.quote(f"{folder.removeprefix(ARTIFACTS_SCHEME).strip('/')}/{name}")
        return f"{self.url}/api/2.0/mlflow-artifacts/artifacts/{path}"


def _error(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        detail: dict[str, Any] = json.loads(exc.read())
    except (ValueError, OSError):
        return {}
    return detail
