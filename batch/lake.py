"""Delta Lake reads and writes of the batch jobs: incremental reads, idempotent commits.

Each job remembers how far it read an input table in a Delta transaction marker
(``app_transactions``) committed atomically with its output, so a job that is re-run, or that
crashed before its commit, reads exactly the input it has not yet turned into output.

New input is the set of data files in the input's current snapshot that were not in the
snapshot last read. A compaction of the input rewrites old rows into new files; they are read
again once, and the readers' dedupe by key (event_id) drops them.

>>> sorted(touched_dates(["date=2026-01-05/part-0.parquet", "x/date=2026-01-06/p.parquet"]))
['2026-01-05', '2026-01-06']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

_DATE = re.compile(r"date=(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True, slots=True)
class Increment:
    """The rows of an input table added since a version, and the version they go up to."""

    rows: pa.Table
    files: list[str]
    version: int  # the input's current version (-1: the table does not exist yet)

    @property
    def dates(self) -> set[str]:
        return touched_dates(self.files)


def open_table(path: Path, version: int | None = None) -> DeltaTable | None:
    """The Delta table at ``path`` (at ``version``), or None when there is none."""
    try:
        return DeltaTable(str(path), version=version)
    except TableNotFoundError:
        return None


def table_version(path: Path) -> int:
    """The current version of the table at ``path``; -1 when it does not exist."""
    table = open_table(path)
    return -1 if table is None else table.version()


def processed_version(path: Path, app_id: str) -> int | None:
    """The input version the job ``app_id`` committed into the table at ``path`` last."""
    table = open_table(path)
    return None if table is None else table.transaction_version(app_id)


def touched_dates(files: Iterable[str]) -> set[str]:
    """The ``date`` partitions the given data files belong to."""
    return {m.group(1) for f in files if (m := _DATE.search(f))}


def new_files(path: Path, since: int | None) -> tuple[list[str], int]:
    """Data files of the table at ``path`` not in its snapshot at version ``since``."""
    table = open_table(path)
    if table is None:
        return [], -1
    current = table.version()
    files = table.file_uris()
    if since is None:
        return files, current
    if since >= current:
        return [], current
    try:
        before = DeltaTable(str(path), version=since, without_files=False)
        seen = set(before.file_uris())
    except Exception:  # noqa: BLE001  (log cleaned up: read everything, dedupe downstream)
        seen = set()
    return [f for f in files if f not in seen], current


def read_increment(path: Path, since: int | None, columns: list[str]) -> Increment:
    """The rows (``columns`` only) added to the table at ``path`` since version ``since``."""
    files, version = new_files(path, since)
    if not files:
        return Increment(pa.table({}), [], version)
    local = [f.removeprefix("file://") for f in files]
    hive = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
    dataset = ds.dataset(
        local, format="parquet", partitioning=hive, partition_base_dir=str(path.resolve())
    )
    rows = dataset.to_table(columns=columns)
    return Increment(rows, files, version)


def read_dates(path: Path, dates: Iterable[str], columns: list[str] | None = None) -> pa.Table:
    """The rows of the ``date`` partitions ``dates`` (all columns unless ``columns``)."""
    table = open_table(path)
    wanted = sorted(dates)
    if table is None or not wanted:
        return pa.table({})
    dataset = table.to_pyarrow_dataset()
    return dataset.to_table(columns=columns, filter=ds.field("date").isin(wanted))


def read_all(path: Path, columns: list[str] | None = None) -> pa.Table | None:
    table = open_table(path)
    return None if table is None else table.to_pyarrow_dataset().to_table(columns=columns)


def _commit(marks: dict[str, int], operation: str) -> CommitProperties:
    return CommitProperties(
        app_transactions=[Transaction(app_id=a, version=v) for a, v in marks.items() if v >= 0],
        custom_metadata={"tillflow.operation": operation},
    )


def append(
    path: Path, rows: pa.Table, *, marks: dict[str, int], partition_by: list[str] | None
) -> None:
    """Append ``rows`` and record the input versions ``marks`` (app id → version); one commit."""
    path.mkdir(parents=True, exist_ok=True)
    write_deltalake(
        str(path),
        rows,
        mode="append",
        partition_by=partition_by,
        commit_properties=_commit(marks, "append"),
    )


def replace(
    path: Path,
    rows: pa.Table,
    *,
    marks: dict[str, int],
    partition_by: list[str] | None,
    dates: Iterable[str] | None = None,
) -> None:
    """Replace the ``dates`` partitions (the whole table when None) with ``rows``; one commit."""
    path.mkdir(parents=True, exist_ok=True)
    wanted = sorted(dates) if dates is not None else None
    exists = open_table(path) is not None
    predicate = None
    if exists and wanted is not None:
        if not wanted:
            return
        predicate = "date IN (" + ", ".join(f"'{d}'" for d in wanted) + ")"
    write_deltalake(
        str(path),
        rows,
        mode="overwrite",
        partition_by=partition_by,
        predicate=predicate,
        commit_properties=_commit(marks, "replace"),
    )
