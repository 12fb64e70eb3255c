"""Cheap state snapshots: the state pickled once, when the epoch closes.

Bytewax pickles each changed key's snapshot into the recovery store. A keyed state's
``snapshot()`` (``flows/expiry.py``, ``flows/keyed.py``, ``flows/dedupe.py``) returns
:func:`pickled` of its state: an immutable blob whose own pickle is "unpickle this blob", so a
recovered step gets the state itself back. One ``pickle.dumps`` per key and snapshot, and the
snapshot does not change when the live state does.

>>> import pickle
>>> from flows.steps import ItemNeighbours
>>> item = ItemNeighbours()
>>> snap = pickled(item)
>>> _ = item.add([("b", 1.0)])  # the snapshot does not change with the state
>>> len(pickle.loads(pickle.dumps(snap)).similarity.co.weights), len(item.similarity.co.weights)
(0, 1)
"""

from __future__ import annotations

import pickle
from typing import Any


def _restore(blob: bytes) -> Any:
    return pickle.loads(blob)


class Snapshot:
    """A pickled state; pickling it yields the state itself when loaded."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return _restore, (self.blob,)


def pickled(state: Any) -> Snapshot:
    """A snapshot of ``state`` as it is now."""
    return Snapshot(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
