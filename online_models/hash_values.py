"""Reading the string values of the flows' Redis feature hashes as numbers (pure).

>>> hash_number({"a": "2.5", "b": "nan", "c": "x"}, "a"), hash_number({"b": "nan"}, "b", 1.0)
(2.5, 1.0)
>>> hash_number({"c": "x"}, "c"), hash_number({}, "d", 3.0)
(0.0, 3.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def hash_number(values: Mapping[str, str], name: str, default: float = 0.0) -> float:
    """``values[name]`` as a finite float; ``default`` when missing, empty or unreadable."""
    raw = values.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if math.isfinite(value) else default
