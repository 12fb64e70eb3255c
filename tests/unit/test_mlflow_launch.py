"""How the local MLflow server is launched: its SQLite store's journal and its HTTP server."""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy
import yaml
from sqlalchemy import event
from sqlalchemy.engine import Engine

from infra.stack.mlflow import CONFIG, command, gunicorn_options, prepare_store
from schemas.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "docker-compose.yml"
SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _journal_mode(db: Path) -> str:
    with closing(sqlite3.connect(db)) as store:
        return str(store.execute("PRAGMA journal_mode").fetchone()[0])


def test_the_store_is_put_in_write_ahead_log_mode_and_keeps_its_tables(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    prepare_store(db)  # before the server's first start: an empty store
    assert _journal_mode(db) == "wal"
    with closing(sqlite3.connect(db)) as store:
        store.execute("CREATE TABLE runs (run_uuid TEXT)")
        store.execute("INSERT INTO runs VALUES ('r1')")
        store.commit()
    prepare_store(db)  # every later start: the same store, unchanged
    assert _journal_mode(db) == "wal"
    with closing(sqlite3.connect(db)) as store:
        assert store.execute("SELECT run_uuid FROM runs").fetchall() == [("r1",)]


def test_the_server_and_its_compose_service_run_gunicorn_with_the_same_options() -> None:
    argv = command(Settings(), Path("mlflow"), Path("/d"))
    assert argv[argv.index("--gunicorn-opts") + 1] == gunicorn_options(CONFIG)
    assert CONFIG.is_file()
    assert argv[argv.index("--backend-store-uri") + 1] == "sqlite:////d/mlflow.db"
    service = yaml.safe_load(COMPOSE.read_text())["services"]["mlflow"]
    script = service["command"][-1]
    mounted = "/etc/mlflow/gunicorn_conf.py"
    assert f'--gunicorn-opts "{gunicorn_options(mounted)}"' in script
    assert f"./mlflow/{CONFIG.name}:{mounted}:ro" in service["volumes"]
    assert "journal_mode=WAL" in script.split("&&")[0]


@pytest.fixture
def gunicorn_conf() -> Iterator[ModuleType]:
    """The settings file as gunicorn loads it; its listener removed again afterwards."""
    spec = importlib.util.spec_from_file_location("gunicorn_conf", CONFIG)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    if event.contains(Engine, "connect", module.synchronous_normal):
        event.remove(Engine, "connect", module.synchronous_normal)


def _synchronous(db: Path) -> str:
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA synchronous").scalar_one()
    finally:
        engine.dispose()
    return SYNCHRONOUS[int(mode)]


def test_the_workers_store_connections_commit_without_a_sync_each_time(
    tmp_path: Path, gunicorn_conf: ModuleType
) -> None:
    db = tmp_path / "mlflow.db"
    prepare_store(db)
    assert _synchronous(db) == "FULL"  # SQLite's default, before the worker's hook
    gunicorn_conf.post_fork(None, None)
    gunicorn_conf.post_fork(None, None)  # listens once however often it runs
    assert _synchronous(db) == "NORMAL"
    assert _journal_mode(db) == "wal"
