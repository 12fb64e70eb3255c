"""Drift on a learner's online error, with River's ADWIN.

The detector is the Rust ADWIN that ``river.drift.ADWIN`` wraps, with the same parameters and
the same restart after a detection: importing ``river.drift`` also imports River's drift data
sets (scikit-learn, SciPy, pandas, SQLAlchemy), seconds of start-up in every flow process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from river._river_rust.drift import AdaptiveWindowing

# river.drift.ADWIN's defaults besides delta.
CLOCK, MAX_BUCKETS, MIN_WINDOW_LENGTH, GRACE_PERIOD = 32, 5, 5, 10


def adaptive_window(delta: float) -> Any:
    return AdaptiveWindowing(
        delta=delta,
        clock=CLOCK,
        max_buckets=MAX_BUCKETS,
        min_window_length=MIN_WINDOW_LENGTH,
        grace_period=GRACE_PERIOD,
    )


@dataclass
class ErrorDrift:
    """Feeds absolute errors to ADWIN; ``update`` says when the error distribution shifted."""

    delta: float = 0.002
    detector: Any = field(init=False)  # river._river_rust.drift.AdaptiveWindowing
    detections: int = 0
    updates: int = 0
    drifted: bool = False  # the last update detected a shift: the next one starts a new window

    def __post_init__(self) -> None:
        self.detector = adaptive_window(self.delta)

    def update(self, error: float) -> bool:
        self.updates += 1
        if self.drifted:
            self.detector = adaptive_window(self.delta)
        self.drifted = bool(self.detector.update(abs(error)))
        if self.drifted:
            self.detections += 1
        return self.drifted

    @property
    def mean_error(self) -> float:
        width = self.detector.get_width()
        return float(self.detector.get_total() / width) if width else 0.0

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Also restores snapshots whose detector is a ``river.drift.ADWIN``."""
        detector = state["detector"]
        if not isinstance(detector, AdaptiveWindowing):
            state = {**state, "detector": detector._helper, "drifted": detector.drift_detected}
        self.__dict__.update(state)
