"""A registered version is handed back only once MLflow says it is READY (pure code: the
server's answers are given, no server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry.copies import LocalCopies
from registry.rest import MlflowRest, RegistryError
from registry.store import ModelRegistry


class Answers(MlflowRest):
    """Answers ``model-versions/create`` with ``created`` and each ``model-versions/get``
    with the next of ``later``."""

    def __init__(self, created: str, later: list[str]) -> None:
        super().__init__("http://mlflow.invalid", 5.0)
        self.created, self.later = created, later
        self.gets = 0

    def post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        assert endpoint == "model-versions/create"
        return {"model_version": {"version": "1", "status": self.created}}

    def get(self, endpoint: str, **query: str) -> dict[str, Any]:
        assert endpoint == "model-versions/get"
        status = self.later[self.gets]
        self.gets += 1
        return {"model_version": {"version": "1", "status": status}}


def _register(rest: Answers, tmp_path: Path) -> int:
    registry = ModelRegistry(rest, LocalCopies(tmp_path), "t-")
    return registry.register("demand", "mlflow-artifacts:/1/r/artifacts/model", "r", {}).version


def test_a_ready_version_is_not_asked_again(tmp_path: Path) -> None:
    rest = Answers("READY", [])
    assert _register(rest, tmp_path) == 1
    assert rest.gets == 0


def test_a_pending_version_is_asked_until_it_is_ready(tmp_path: Path) -> None:
    rest = Answers("PENDING_REGISTRATION", ["PENDING_REGISTRATION", "READY"])
    assert _register(rest, tmp_path) == 1
    assert rest.gets == 2


def test_a_version_that_failed_to_register_raises(tmp_path: Path) -> None:
    rest = Answers("PENDING_REGISTRATION", ["FAILED_REGISTRATION"])
    with pytest.raises(RegistryError, match="FAILED_REGISTRATION"):
        _register(rest, tmp_path)
