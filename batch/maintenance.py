"""Compaction and vacuum of every Delta table in the lake, with a configurable retention.

``optimize.compact()`` rewrites small files into large ones (readers keep working: the old
files stay until vacuum); ``vacuum`` then deletes files no version younger than the retention
needs. Time travel (``DeltaTable(path, version=n)``, ``tillflow batch history``) reaches back
as far as the retention: older versions lose their files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog
from deltalake import DeltaTable

from batch.result import StepResult

log = structlog.get_logger(__name__)

LAYERS = ("bronze", "silver", "gold")


def lake_tables(lake_dir: Path) -> list[Path]:
    """Every Delta table under the lake's bronze, silver and gold folders."""
    return sorted(
        p.parent
        for layer in LAYERS
        for p in (lake_dir / layer).glob("*/_delta_log")
        if (lake_dir / layer).exists()
    )


def maintain(
    lake_dir: Path, retention_hours: int, step: Callable[[str], None] = lambda _: None
) -> StepResult:
    """Compact, vacuum and checkpoint every table; returns files removed/added in details."""
    compacted = vacuumed = 0
    names = []
    for path in lake_tables(lake_dir):
        name = str(path.relative_to(lake_dir))
        table = DeltaTable(str(path))
        metrics = table.optimize.compact()
        table = DeltaTable(str(path))
        deleted = table.vacuum(
            retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False
        )
        table.create_checkpoint()
        added, removed = metrics.get("numFilesAdded", 0), metrics.get("numFilesRemoved", 0)
        compacted += int(removed)
        vacuumed += len(deleted)
        names.append(name)
        log.info(
            "maintain.table",
            table=name,
            files_compacted=removed,
            files_written=added,
            files_vacuumed=len(deleted),
            version=table.version(),
        )
        step(f"maintain {name}")
    return StepResult(
        rows_in=0,
        rows_out=0,
        inputs=tuple(names),
        outputs=tuple(names),
        details={"files_compacted": compacted, "files_vacuumed": vacuumed},
    )
