"""Cheap state snapshots.

Bytewax snapshots each changed key's state with ``copy.deepcopy`` at every epoch, then
pickles the copy into the recovery store. For nested Python state, ``deepcopy`` is slow and
the copy is pickled once more anyway, so a snapshot here is the state already pickled: an
immutable blob whose own pickle is "unpickle this blob". One ``pickle.dumps`` per key and
snapshot, instead of a deep copy and a dumps.

>>> import copy, pickle
>>> from flows.steps import ItemNeighbours
>>> item = ItemNeighbours()
>>> snap = copy.deepcopy(item)
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


class PickleCopy:
    """Mixin: ``copy.deepcopy(x)`` becomes a :class:`Snapshot` of ``x``."""

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> Snapshot:
        return Snapshot(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
