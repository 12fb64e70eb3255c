"""What a sink partition knows about where it runs."""

from __future__ import annotations

from dataclasses import dataclass

from flows.metrics import FlowMetrics, flow_metrics


@dataclass(frozen=True)
class SinkContext:
    """The Bytewax step and worker a sink partition writes for, and the process's metrics."""

    step_id: str
    worker: int
    metrics: FlowMetrics

    @classmethod
    def standalone(cls, step_id: str) -> SinkContext:
        """For a writer used outside a dataflow (tests, benchmarks): worker 0."""
        return cls(step_id, 0, flow_metrics())
