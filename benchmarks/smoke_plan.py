"""Which smoke passes may start now: each after the passes it needs, the slowest first.

The passes share only the real stack, each under names of its own (topics, Redis keys,
namespaces, indices, ports), so they may run at once; a pass that reads what another wrote
waits for it (:data:`AFTER`). On two cores the total is bounded by the longest chain, so the
passes others wait for start first, then the slow ones (:data:`SLOW`), then the rest in the
order given.

>>> plan = Plan.of(["ingest", "serving", "graph", "batch"])
>>> plan.order
('batch', 'graph', 'ingest', 'serving')
>>> plan.startable(started=set(), done=set())
['batch', 'graph', 'ingest']
>>> plan.startable(started={"batch", "graph", "ingest"}, done={"batch"})
['serving']
>>> plan.blocked(started={"batch"}, failed={"batch"})
['serving']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# serving serves the models the batch pass trained (Mode.models).
AFTER: Mapping[str, tuple[str, ...]] = {"serving": ("batch",)}
# The passes that take longest at the smoke size, slowest first (make bench-smoke prints them).
SLOW: tuple[str, ...] = ("batch", "graph", "stream", "governance", "soak", "search", "recs")


@dataclass(frozen=True)
class Plan:
    """The passes in the order they are started, and what each waits for."""

    order: tuple[str, ...]
    after: Mapping[str, frozenset[str]]

    @classmethod
    def of(
        cls,
        modules: Iterable[str],
        after: Mapping[str, tuple[str, ...]] = AFTER,
        slow: tuple[str, ...] = SLOW,
    ) -> Plan:
        """A plan over ``modules``; a need outside them is not waited for.

        >>> Plan.of(["serving"]).startable(started=set(), done=set())
        ['serving']
        >>> Plan.of(["a", "a"])
        Traceback (most recent call last):
        ...
        ValueError: a pass is listed twice: ['a', 'a']
        """
        given = list(modules)
        if len(set(given)) != len(given):
            raise ValueError(f"a pass is listed twice: {given}")
        needs = {m: frozenset(n for n in after.get(m, ()) if n in given) for m in given}
        waited_for = {m: sum(m in n for n in needs.values()) for m in given}

        def rank(m: str) -> tuple[int, int, int]:
            return (-waited_for[m], slow.index(m) if m in slow else len(slow), given.index(m))

        return cls(tuple(sorted(given, key=rank)), needs)

    def startable(self, started: set[str], done: set[str]) -> list[str]:
        """Passes not started yet whose needs have all succeeded (``done``), in order."""
        return [m for m in self.order if m not in started and self.after[m] <= done]

    def blocked(self, started: set[str], failed: set[str]) -> list[str]:
        """Passes not started yet that need a pass that failed: they cannot run."""
        return [m for m in self.order if m not in started and self.after[m] & failed]
