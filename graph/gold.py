"""Gold Delta tables as the graph reads them: a snapshot per version, and what changed.

The loader remembers the Delta version of each gold table it loaded. On the next run it
reads that version and the current one and keeps only rows that are new or differ (by a
hash of the whole row), plus the keys that disappeared. This works whether the batch job
appends (order lines) or rewrites a table (aggregates), and survives compaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from infra.errors import StackError
from schemas.lake import GOLD_SCHEMAS, gold_path


@dataclass(frozen=True)
class Changes:
    """Rows of ``table`` at ``version`` that are new or changed since the loaded version."""

    table: str
    version: int
    current: pd.DataFrame  # the whole table at ``version``
    upserts: pd.DataFrame  # new or changed rows
    deleted: pd.DataFrame  # keys (only) of rows that are gone
    previous: pd.DataFrame | None  # the table at the loaded version; None on a full load

    @property
    def full(self) -> bool:
        """True when nothing usable was loaded before: every row is an upsert."""
        return self.previous is None


def _read(path: Path, table: str, version: int | None) -> tuple[int, pd.DataFrame]:
    dt = DeltaTable(str(path), version=version)
    columns = GOLD_SCHEMAS[table].names
    frame = dt.to_pyarrow_table(columns=columns).to_pandas()
    return dt.version(), frame


def current_version(lake_dir: Path, table: str) -> int:
    """The latest version of a gold table; StackError naming it when it does not exist."""
    path = gold_path(lake_dir, table)
    try:
        return DeltaTable(str(path)).version()
    except TableNotFoundError:
        raise StackError(
            f"gold table {table!r} not found at {path}: run the gold batch job first "
            "(or point TILLFLOW_LAKE_DIR at the lake)"
        ) from None


def _row_hashes(frame: pd.DataFrame) -> pd.Series:
    return pd.util.hash_pandas_object(frame, index=False)


def changes(lake_dir: Path, table: str, key: list[str], loaded: int | None) -> Changes:
    """What changed in ``table`` since version ``loaded`` (everything when ``loaded`` is None
    or that version can no longer be read, e.g. after a vacuum)."""
    path = gold_path(lake_dir, table)
    version, current = _read(path, table, None)
    previous: pd.DataFrame | None = None
    if loaded is not None:
        try:
            previous = _read(path, table, loaded)[1]
        except DeltaError:
            previous = None  # history vacuumed: reload in full
    if previous is None:
        return Changes(table, version, current, current, current.iloc[:0][key], None)
    upserts = current[~_row_hashes(current).isin(set(_row_hashes(previous)))]
    old_keys, new_keys = _row_hashes(previous[key]), set(_row_hashes(current[key]))
    deleted = previous.loc[~old_keys.isin(new_keys), key]
    return Changes(table, version, current, upserts, deleted, previous)
