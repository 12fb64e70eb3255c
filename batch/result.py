"""What one batch step reports: rows read and written, datasets in and out, and details; and
:class:`WaitingForData`, what a step raises when its input is not there yet."""

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


class WaitingForData(Exception):
    """The step's input is not there yet (a young shop, an empty lake): not a failure.

    The run is recorded as ``skipped`` with this message, which says what the step waits for
    and how much of it there is so far, e.g. "waiting for 2 complete days of gold; 1 so far".
    """
