"""Cheap state snapshots.

Bytewax snapshots each changed key's state with ``copy.deepcopy`` at every epoch; for
nested Python state a pickle round trip does the same job several times faster.
"""

from __future__ import annotations

import pickle
from typing import Any, Self


class PickleCopy:
    """Mixin: ``copy.deepcopy(x)`` becomes ``pickle.loads(pickle.dumps(x))``."""

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        copied: Self = pickle.loads(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
        return copied
