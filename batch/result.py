"""What one batch step reports: rows read and written, datasets in and out, and details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepResult:
    """The outcome of one job step (a job may sum several)."""

    rows_in: int = 0
    rows_out: int = 0
    inputs: tuple[str, ...] = ()  # dataset names relative to the lake (``bronze/orders``)
    outputs: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def __add__(self, other: StepResult) -> StepResult:
        return StepResult(
            self.rows_in + other.rows_in,
            self.rows_out + other.rows_out,
            tuple(dict.fromkeys(self.inputs + other.inputs)),
            tuple(dict.fromkeys(self.outputs + other.outputs)),
            {**self.details, **other.details},
        )
