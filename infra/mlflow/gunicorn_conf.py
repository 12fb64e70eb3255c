"""gunicorn settings of the MLflow server (``--gunicorn-opts "... -c <this file>"``).

Every SQLite connection the server's worker opens commits with ``PRAGMA synchronous=NORMAL``
instead of SQLite's default ``FULL``. The store is in write-ahead-log mode
(``infra.stack.mlflow.prepare_store``), where ``FULL`` syncs the log to disk on every commit
and ``NORMAL`` only when the log is copied back into the database (a checkpoint): each request
of a training commits once or more, and one writer's sync makes the next writer wait. Under
``NORMAL`` the store stays consistent after a crash of the server or of the machine; a power
loss or an operating-system crash can roll back the commits of the last moments before it
(SQLite's documentation: "WAL mode is always consistent with synchronous=NORMAL").
"""

from __future__ import annotations

from typing import Any


def synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    """SQLAlchemy ``connect`` listener: ``PRAGMA synchronous=NORMAL`` on SQLite connections."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def post_fork(server: Any, worker: Any) -> None:
    """In the worker, before it loads MLflow's application and opens its store."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", synchronous_normal):
        event.listen(Engine, "connect", synchronous_normal)
