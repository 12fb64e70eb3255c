"""The MLflow tracking server and model registry, on 127.0.0.1, from its own virtualenv.

The full ``mlflow`` package pins older pyarrow and gunicorn than the project does, so the server
runs from ``<runtime_dir>/cache/mlflow-venv`` (``make setup`` builds it from
``infra/mlflow/requirements.lock``) and tillflow talks to it over HTTP with ``mlflow-skinny``.
The backend store is SQLite and the artifact root a folder, both under
``<runtime_dir>/data/mlflow``; the server proxies artifacts (``mlflow-artifacts:/``), so clients
need no access to that folder.

One worker and no job runner keep it lean (~550 MB instead of ~3.4 GB for the default fifteen
processes); SIGTERM to its process group stops it.

The server runs MLflow's Flask application under gunicorn (``--gunicorn-opts``: one process, four
threads) rather than its default uvicorn, which serves the same Flask application through a
FastAPI/Starlette layer and a thread hop per request: a training's requests (runs, parameters,
artifacts, registry) cost the server ~40% less CPU that way (5.5 against 9.2 ms per request,
measured interleaved), CPU taken from the training on the same cores. tillflow uses only the
REST API, the artifact proxy and the UI, which the Flask application serves alike. The SQLite
store is in write-ahead-log mode (:func:`prepare_store`), and the worker's connections commit
without syncing the log to disk each time (``infra/mlflow/gunicorn_conf.py``, :data:`CONFIG`).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from infra.errors import StackError
from infra.readiness import mlflow_answers
from infra.stack.processes import ServiceFiles, running_pid, spawn, wait_until_ready
from schemas.settings import Settings


def files(settings: Settings) -> ServiceFiles:
    return ServiceFiles(settings.runtime_dir, "mlflow")


def server_binary(settings: Settings) -> Path:
    """The ``mlflow`` command of the server's virtualenv; StackError naming `make setup`."""
    binary = (settings.runtime_dir / "cache" / "mlflow-venv" / "bin" / "mlflow").resolve()
    if not binary.exists():
        raise StackError(f"the MLflow server is not installed at {binary}; run `make setup`")
    return binary


GUNICORN_OPTIONS = "--threads 4 --timeout 120 --no-control-socket"
"""Four threads so that a training's concurrent uploads and the API's reads do not queue behind
one another; a two-minute limit per request (gunicorn's default of 30 s would restart the worker
under a large upload on a busy machine); no control socket (gunicorn puts one in the home
folder, which every server of the machine would share, and nothing uses it)."""

CONFIG = Path(__file__).resolve().parents[1] / "mlflow" / "gunicorn_conf.py"
"""The gunicorn settings file (``-c``): the store's connections commit with
``PRAGMA synchronous=NORMAL``. A training's ~12 commits each waited for a sync of the log to
disk (median 2.6 ms, 1 in 10 over 12 ms, up to 39 ms measured on the shared machine), the ones
after the model's export on the training's critical path."""


def gunicorn_options(config: Path | str = CONFIG) -> str:
    """``--gunicorn-opts`` of the server: :data:`GUNICORN_OPTIONS` and the settings file
    (its path inside the compose service's container there).

    >>> gunicorn_options("/etc/mlflow/gunicorn_conf.py")
    '--threads 4 --timeout 120 --no-control-socket -c /etc/mlflow/gunicorn_conf.py'
    """
    return f"{GUNICORN_OPTIONS} -c {config}"


def command(settings: Settings, binary: Path, data_dir: Path) -> list[str]:
    """The server's command line: SQLite store, proxied artifact folder, one gunicorn worker.

    >>> command(Settings(), Path("mlflow"), Path("/d"))[1:6]
    ['server', '--host', '127.0.0.1', '--port', '5000']
    """
    return [
        str(binary),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.mlflow_port),
        "--workers",
        "1",
        "--gunicorn-opts",
        gunicorn_options(),
        "--backend-store-uri",
        f"sqlite:///{store_path(data_dir).resolve()}",
        "--artifacts-destination",
        str((data_dir / "artifacts").resolve()),
    ]


def store_path(data_dir: Path) -> Path:
    return data_dir / "mlflow.db"


def prepare_store(db: Path) -> None:
    """Put the SQLite store (created empty when it does not exist: the server migrates it on
    its first start) in write-ahead-log mode, which the file keeps: a commit appends to the log
    instead of rewriting pages through a rollback journal. Each request of a training commits
    once or more; the server spent ~17% less CPU per request (4.2 against 5.0 ms) and answered
    ~15% sooner, measured interleaved."""
    with closing(sqlite3.connect(db, timeout=30.0)) as store:
        store.execute("PRAGMA journal_mode=WAL")


def start(settings: Settings) -> int:
    """Start the server unless it already runs; return its pid."""
    svc = files(settings)
    pid = running_pid(svc)
    if pid is not None:
        return pid
    binary = server_binary(settings)
    svc.prepare()
    prepare_store(store_path(svc.data_dir))
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return spawn(svc, command(settings, binary, svc.data_dir), env)


def wait_ready(settings: Settings, timeout_s: float = 120.0) -> None:
    """Block until ``/health`` answers; raise with the log tail if it does not.

    Start-up takes ~15 s on two busy cores (the database schema is migrated on first start).
    """
    wait_until_ready(
        files(settings),
        "MLflow",
        settings.mlflow_url,
        lambda: mlflow_answers(settings, 1.0),
        timeout_s,
        poll_s=0.5,
    )
