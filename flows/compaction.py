"""Recovery-store compaction: forget the deletion markers of keys a step dropped.

Bytewax keeps each recovery partition in SQLite (table ``snaps``: one row per step, key and
snapshot epoch; ``ser_change`` is the pickled state, NULL when the step dropped the key). When
an epoch is committed, Bytewax deletes every snapshot older than each key's newest one at or
before that epoch, in the same transaction that moves the partition's ``commits`` row. The
newest row is kept even when it is a deletion marker, so every key ever dropped stays in the
store for good: with shoppers expiring after an idle time, the store grows by ~130 bytes for
every shopper the shop has ever seen (about 100 MB per million), although the live state is
bounded.

A marker older than the partition's commit epoch is the only row of its key that old (the
commit's own cleanup removed the older ones), so deleting it changes nothing a resume reads: a
resume loads each key's newest snapshot before the resume epoch, and the key is absent either
way. :func:`compact` deletes exactly those markers; each flow process starts a compactor
process (:func:`spawn_compactor`) that runs it every ``recovery_compact_s`` and ends with the
flow process. Bytewax opens the store in WAL mode with a 5 s busy timeout, so this second
writer makes it wait for one short transaction at most. It must be another process: Bytewax
links its own copy of SQLite, and two copies of SQLite in one process break each other's file
locks (closing a file in one drops the other's POSIX locks), which corrupts the database.

The store's schema is Bytewax's (0.21, pinned in the lock); the test
``tests/unit/test_recovery_compaction.py`` runs a real Bytewax flow on a real store,
compacts it and resumes, so an upgrade that changes the layout fails there.

Freed pages are reused by SQLite, so the files stop growing; they do not shrink (no VACUUM
under a running flow).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import structlog

from flows.supervise import die_with_parent

log = structlog.get_logger(__name__)

# Markers older than the partition's newest committed epoch. Read first (no write lock), then
# deleted by primary key in one short transaction.
_MARKERS = """
SELECT step_id, state_key, snap_epoch FROM snaps
WHERE ser_change IS NULL AND snap_epoch < (SELECT MAX(commit_epoch) FROM commits)
"""
_DELETE = """
DELETE FROM snaps
WHERE step_id = ? AND state_key = ? AND snap_epoch = ? AND ser_change IS NULL
"""
BUSY_TIMEOUT_S = 5.0


def partitions(directory: Path) -> list[Path]:
    """The recovery partitions (SQLite files) in ``directory``."""
    return sorted(directory.glob("*.sqlite3"))


def compact_partition(path: Path) -> int:
    """Delete the deletion markers older than the partition's commit; how many."""
    with sqlite3.connect(path, timeout=BUSY_TIMEOUT_S) as conn:
        markers = conn.execute(_MARKERS).fetchall()
        if markers:
            conn.executemany(_DELETE, markers)
    conn.close()
    return len(markers)


def compact(directory: Path) -> int:
    """Compact every partition in ``directory``; markers deleted in all."""
    return sum(compact_partition(path) for path in partitions(directory))


def run_every(directory: Path, every_s: float, stop: threading.Event) -> None:
    """Compact ``directory`` every ``every_s`` until ``stop`` is set.

    A failed round (a file locked past the busy timeout, a partition not created yet) is
    logged and tried again next round: compaction only saves space.
    """
    while not stop.wait(every_s):
        try:
            deleted = compact(directory)
        except sqlite3.Error as error:
            log.warning("recovery compaction failed", error=str(error), folder=str(directory))
            continue
        log.debug("recovery store compacted", markers_deleted=deleted, folder=str(directory))


def spawn_compactor(directory: Path, every_s: float) -> subprocess.Popen[bytes]:
    """Start ``python -m flows.compaction`` on ``directory``; it ends with this process."""
    return subprocess.Popen(
        [sys.executable, "-m", "flows.compaction", str(directory), str(every_s), str(os.getpid())],
        preexec_fn=die_with_parent,
    )


def main(argv: list[str]) -> None:
    """``python -m flows.compaction FOLDER EVERY_S PARENT_PID``: compact until SIGTERM.

    SIGTERM (sent by the kernel when the parent dies) keeps its default action, ending the
    process at once: a transaction it cuts short is rolled back by SQLite. (A handler that
    set an event could deadlock: it runs inside the main thread's own wait on that event.)
    """
    directory, every_s, parent = Path(argv[0]), float(argv[1]), int(argv[2])
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return
    run_every(directory, every_s, threading.Event())


if __name__ == "__main__":
    main(sys.argv[1:])
