"""Keyed state kept for as long as the flow runs: one item's co-interaction neighbours.

Each key's state is created from the key on its first value (the value carries its key,
``(key, value)``) and updated by every value; what the update returns is emitted. Snapshots
are the state pickled once (:mod:`flows.snapshots`). For state that is dropped when idle, see
:mod:`flows.expiry`.

>>> import pickle
>>> logic = KeyedState(lambda key: [key], lambda s, v: s.append(v) or len(s))
>>> logic.on_item(("a", "x")), logic.on_item(("a", "y"))
(([2], False), ([3], False))
>>> KeyedState(list, list.append, pickle.loads(pickle.dumps(logic.snapshot()))).state
['a', 'x', 'y']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from bytewax.operators import StatefulLogic

from flows.snapshots import Snapshot, pickled

S = TypeVar("S")  # the state
V = TypeVar("V")  # what a value carries besides its key
W = TypeVar("W")  # what the step emits per value


class KeyedState(StatefulLogic[tuple[str, V], W, Snapshot], Generic[S, V, W]):
    """Applies each ``(key, value)`` to the key's state and emits the result."""

    def __init__(
        self, new: Callable[[str], S], apply: Callable[[S, V], W], resume: Any = None
    ) -> None:
        self.new = new
        self.apply = apply
        self.state: S | None = resume  # a recovered snapshot loads as the state itself

    def on_item(self, value: tuple[str, V]) -> tuple[list[W], bool]:
        key, v = value
        if self.state is None:
            self.state = self.new(key)
        return [self.apply(self.state, v)], StatefulLogic.RETAIN

    def snapshot(self) -> Snapshot:
        return pickled(self.state)
