"""What a sink partition knows about where it runs."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field

from flows.metrics import FlowMetrics, flow_metrics
from flows.recovery_lock import recovery_dir_of, recovery_lineage


@dataclass(frozen=True)
class SinkContext:
    """The Bytewax step and the flow process (``worker``: the process index; each process has
    one writer per sink, flows/sinks/overlap.py) a sink writes for, the process's metrics, the
    lineage of the flow's recovery state (flows/recovery_lock.py): output of one lineage is
    replayed after a crash, output of another never; and how many processes the flow runs."""

    step_id: str
    worker: int
    metrics: FlowMetrics
    lineage: str = field(default_factory=lambda: process_lineage(sys.argv))
    processes: int = 1

    @classmethod
    def standalone(cls, step_id: str) -> SinkContext:
        """For a writer used outside a dataflow (tests, benchmarks): worker 0."""
        return cls(step_id, 0, flow_metrics())


def process_lineage(argv: list[str]) -> str:
    """The recovery lineage of this ``bytewax.run`` process, or a new one without recovery."""
    directory = recovery_dir_of(argv)
    return recovery_lineage(directory) if directory is not None else uuid.uuid4().hex
