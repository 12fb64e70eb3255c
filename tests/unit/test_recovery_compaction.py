"""Compaction of a real Bytewax recovery store: dropped keys' markers go, a resume reads
the same state as from the store left alone."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.compaction import compact
from tests.flow_processes import wait_until

DROP_AT = 3  # a counted key is dropped at its third value; "kept-*" keys never are


def count(state: int | None, key_value: str) -> tuple[int | None, int]:
    n = (state or 0) + 1
    dropped = n >= DROP_AT and not key_value.startswith("kept")
    return (None if dropped else n), n


def run_counts(recovery: Path, keys: list[str]) -> list[tuple[str, int]]:
    """Count each key's values through a recovered flow; what it emitted."""
    out: list[tuple[str, int]] = []
    flow = Dataflow("compaction")
    items = op.input("in", flow, TestingSource([(k, k) for k in keys], batch_size=1))
    op.output("out", op.stateful_map("count", items, count), TestingSink(out))
    run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(recovery)))
    return out


def markers(recovery: Path) -> list[tuple[int, int]]:
    """(marker epoch, commit epoch) of every deletion marker in the store."""
    rows: list[tuple[int, int]] = []
    for path in recovery.glob("*.sqlite3"):
        with sqlite3.connect(path) as conn:
            rows += conn.execute(
                "SELECT snap_epoch, (SELECT MAX(commit_epoch) FROM commits) FROM snaps "
                "WHERE ser_change IS NULL"
            ).fetchall()
        conn.close()
    return rows


def test_compaction_removes_markers_and_a_resume_reads_the_same_state(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    init_db_dir(store, 1)
    first = [f"shopper-{i % 40}" for i in range(40 * DROP_AT)] + ["kept-a", "kept-a", "kept-b"]
    run_counts(store, first)
    before = markers(store)
    assert len(before) == 40
    assert all(epoch < commit for epoch, commit in before)

    untouched = tmp_path / "untouched"
    shutil.copytree(store, untouched)
    assert compact(store) == 40
    assert markers(store) == []
    assert compact(store) == 0

    # the source resumes after the values it already gave: only ``later`` is read again
    later = [*first, "shopper-1", "kept-a", "kept-b", "shopper-2", "new"]
    resumed = run_counts(store, later)
    assert resumed == run_counts(untouched, later)
    assert dict(resumed) == {"shopper-1": 1, "kept-a": 3, "kept-b": 2, "shopper-2": 1, "new": 1}


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_the_compactor_ends_with_the_flow_process_that_started_it(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, threading; from pathlib import Path; "
            "from flows.compaction import spawn_compactor; "
            f"print(spawn_compactor(Path({str(tmp_path)!r}), 3600.0).pid, flush=True); "
            "threading.Event().wait()",
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert parent.stdout is not None
    compactor = int(parent.stdout.readline())
    assert _alive(compactor)
    parent.kill()  # as a crash would: no chance to stop its children
    parent.wait()
    parent.stdout.close()
    # the kernel's TERM may meet another stop signal (a process group's): both must end it
    for _ in range(2):
        with contextlib.suppress(ProcessLookupError):
            os.kill(compactor, signal.SIGTERM)
    wait_until(lambda: not _alive(compactor), "the compactor to end", timeout_s=60)
