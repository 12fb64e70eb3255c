"""How the local MLflow server is launched: its SQLite store's journal and its HTTP server."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import yaml

from infra.stack.mlflow import GUNICORN_OPTIONS, command, prepare_store
from schemas.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "docker-compose.yml"


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
    assert argv[argv.index("--gunicorn-opts") + 1] == GUNICORN_OPTIONS
    assert argv[argv.index("--backend-store-uri") + 1] == "sqlite:////d/mlflow.db"
    service = yaml.safe_load(COMPOSE.read_text())["services"]["mlflow"]
    script = service["command"][-1]
    assert f'--gunicorn-opts "{GUNICORN_OPTIONS}"' in script
    assert "journal_mode=WAL" in script.split("&&")[0]
