"""Executing the notebooks in notebooks/ against a shop's settings (nbclient on an ipykernel)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from pydantic import SecretStr

from schemas.settings import Settings

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def settings_env(settings: Settings) -> dict[str, str]:
    """``TILLFLOW_*`` variables that make ``Settings()`` in a kernel equal ``settings``
    (secrets are left out: the notebooks need none)."""
    env = {}
    for name, value in settings:
        if isinstance(value, SecretStr) or value is None:
            continue
        if isinstance(value, str | int | float | bool | Path):
            env[f"TILLFLOW_{name.upper()}"] = str(value)
    return env


def execute(name: str, settings: Settings, timeout_s: int = 600) -> nbformat.NotebookNode:
    """Run every cell of ``notebooks/<name>`` in a fresh kernel; return the executed copy
    (the file itself is not written)."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    previous = dict(os.environ)
    os.environ.update(settings_env(settings))  # the kernel inherits this process's environment
    try:
        client = NotebookClient(
            notebook,
            timeout=timeout_s,
            kernel_name="python3",
            resources={"metadata": {"path": str(Path.cwd())}},
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(previous)
    return notebook
