"""Drift on a learner's online error, with River's ADWIN."""

from __future__ import annotations

from dataclasses import dataclass, field

from river import drift


@dataclass
class ErrorDrift:
    """Feeds absolute errors to ADWIN; ``update`` says when the error distribution shifted."""

    delta: float = 0.002
    detector: drift.ADWIN = field(init=False)
    detections: int = 0
    updates: int = 0

    def __post_init__(self) -> None:
        self.detector = drift.ADWIN(delta=self.delta)  # type: ignore[no-untyped-call]

    def update(self, error: float) -> bool:
        self.updates += 1
        self.detector.update(abs(error))  # type: ignore[no-untyped-call]
        if self.detector.drift_detected:
            self.detections += 1
            return True
        return False

    @property
    def mean_error(self) -> float:
        return float(self.detector.estimation)
