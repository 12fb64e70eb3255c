"""Read the flow's latest keyed state from its Bytewax recovery store (read-only).

The recovery store is a folder of SQLite partitions (``part-*.sqlite3``); table ``snaps``
holds, per step and key, a pickled snapshot per epoch (``NULL`` when the key was discarded).
The newest snapshot of each key is the state the flow would resume from: serving state
lost from Redis is rebuilt from it (:mod:`flows.rebuild`) without waiting for new events.
Only a folder of this version's state format is read (:mod:`flows.snapshots`).
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.keyed import KeyedSnapshot
from flows.snapshots import STATE_FORMAT, StateFormatMismatch, format_of
from flows.steps import CategoryState, ItemNeighbours, ShopperState, SkuState

LATEST = """
SELECT s.step_id, s.state_key, s.ser_change FROM snaps AS s
JOIN (SELECT step_id, state_key, MAX(snap_epoch) AS epoch FROM snaps
      WHERE step_id LIKE ? GROUP BY step_id, state_key) AS newest
  ON s.step_id = newest.step_id AND s.state_key = newest.state_key
 AND s.snap_epoch = newest.epoch
"""


@dataclass
class RecoveredState:
    """The flow's keyed state at its newest snapshots."""

    skus: dict[str, SkuState]
    shoppers: dict[str, ShopperState]
    neighbours: dict[str, ItemNeighbours]


def latest_snapshots(directory: Path, step: str) -> Iterator[tuple[str, Any]]:
    """``(key, state)`` of every live key of step ``step`` (its id's last part)."""
    for part in sorted(directory.glob("part-*.sqlite3")):
        db = sqlite3.connect(f"file:{part}?mode=ro", uri=True)
        try:
            rows = db.execute(LATEST, (f"%.{step}%",)).fetchall()
        finally:
            db.close()
        for step_id, key, blob in rows:
            if blob is not None and f".{step}." in f"{step_id}.":
                yield key, pickle.loads(blob)


def _state(snapshot: Any) -> Any:
    return snapshot.state if isinstance(snapshot, KeyedSnapshot) else snapshot


def recovered_state(directory: Path) -> RecoveredState:
    """Every product's, shopper's and item's newest state in ``directory`` (empty if none).

    Raises :class:`StateFormatMismatch` when the folder holds state of another format."""
    found: dict[str, dict[str, Any]] = {"sku-state": {}, "shopper-state": {}, "co-occurrence": {}}
    written = format_of(directory)
    if written is not None and written != STATE_FORMAT:
        raise StateFormatMismatch(
            f"the recovery folder {directory} holds flow state of format {written}; "
            f"this version reads format {STATE_FORMAT}"
        )
    if directory.is_dir():
        for step, states in found.items():
            for key, snap in latest_snapshots(directory, step):
                state = _state(snap)
                if state is not None:
                    states[key] = state
    # products are priced per category: each category's state holds its products' states
    skus: dict[str, SkuState] = {}
    for state in found["sku-state"].values():
        if isinstance(state, CategoryState):
            skus.update(state.skus)
    return RecoveredState(skus, found["shopper-state"], found["co-occurrence"])
