"""Which smoke passes may start now: each after what it needs, the slowest first.

The passes share only the real stack, each under names of its own (topics, Redis keys,
namespaces, indices, ports), so they may run at once; a pass that reads what another wrote
waits for it (:data:`AFTER`): for the other pass to end, or only for a path in the run's
folder to appear. On two cores the total is bounded by the longest chain, so the passes others
wait for start first, and the passes that waited take the next free slot as soon as they may
start (they end the chain); then the slow ones (:data:`SLOW`), then the rest in the order given.

>>> plan = Plan.of(["ingest", "serving", "graph", "batch"])
>>> plan.order
('batch', 'serving', 'graph', 'ingest')
>>> plan.startable(started=set(), done=set(), present=set())
['batch', 'graph', 'ingest']
>>> plan.startable(started={"batch", "graph", "ingest"}, done=set(), present={"bench-models"})
['serving']
>>> plan.blocked(started={"batch"}, failed={"batch"}, present=set())
['serving']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Need:
    """Pass ``module`` has ended well, or (``path`` given) has written ``path`` in the run's
    folder, whole (written beside and renamed into place)."""

    module: str
    path: str | None = None

    def met(self, done: set[str], present: set[str]) -> bool:
        return self.module in done or (self.path is not None and self.path in present)


# serving serves the models the batch pass trained (Mode.models), copied before its Spark part.
AFTER: Mapping[str, tuple[Need, ...]] = {"serving": (Need("batch", "bench-models"),)}
# The passes that take longest at the smoke size, slowest first (make bench-smoke prints them).
SLOW: tuple[str, ...] = ("batch", "demo", "stream", "governance", "recs", "graph", "search", "soak")


@dataclass(frozen=True)
class Plan:
    """The passes in the order they are started, and what each waits for."""

    order: tuple[str, ...]
    after: Mapping[str, tuple[Need, ...]]

    @classmethod
    def of(
        cls,
        modules: Iterable[str],
        after: Mapping[str, tuple[Need, ...]] = AFTER,
        slow: tuple[str, ...] = SLOW,
    ) -> Plan:
        """A plan over ``modules``; a need outside them is not waited for.

        >>> Plan.of(["serving"]).startable(started=set(), done=set(), present=set())
        ['serving']
        >>> Plan.of(["a", "a"])
        Traceback (most recent call last):
        ...
        ValueError: a pass is listed twice: ['a', 'a']
        """
        given = list(modules)
        if len(set(given)) != len(given):
            raise ValueError(f"a pass is listed twice: {given}")
        needs = {m: tuple(n for n in after.get(m, ()) if n.module in given) for m in given}
        waited_for = {m: sum(n.module == m for ns in needs.values() for n in ns) for m in given}

        def rank(m: str) -> tuple[int, bool, int, int]:
            slowness = slow.index(m) if m in slow else len(slow)
            return (-waited_for[m], not needs[m], slowness, given.index(m))

        return cls(tuple(sorted(given, key=rank)), needs)

    def startable(self, started: set[str], done: set[str], present: set[str]) -> list[str]:
        """Passes not started yet whose needs are all met, in order: the passes they need
        have ended well (``done``) or written their path (``present``)."""
        return [
            m
            for m in self.order
            if m not in started and all(n.met(done, present) for n in self.after[m])
        ]

    def blocked(self, started: set[str], failed: set[str], present: set[str]) -> list[str]:
        """Passes not started yet that need what a failed pass never gave: they cannot run."""
        return [
            m
            for m in self.order
            if m not in started
            and any(n.module in failed and not n.met(set(), present) for n in self.after[m])
        ]

    def paths(self) -> set[str]:
        """The paths in the run's folder that some pass waits for."""
        return {n.path for ns in self.after.values() for n in ns if n.path is not None}
