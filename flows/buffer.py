"""The bronze rows of one Kafka partition, buffered until a batch is worth a Delta commit.

A key's rows arrive as lists (one per input batch, :mod:`flows.ingest`) and leave as one list
when ``max_rows`` are buffered, ``wait_s`` after the first of them arrived (Bytewax's
notification timer, wall clock), or when the input ends: no row waits longer than ``wait_s``,
whatever the rate. The buffer is the key's snapshot, so it holds only the rows of the last
``wait_s`` seconds, kept as its ``store`` keeps them: the flow's lake keeps their Kafka
offsets, and reads them again on resume (:mod:`flows.lake_offsets`).

>>> from collections import namedtuple
>>> Row = namedtuple("Row", "offset raw")
>>> class AsTuples:  # keeps the rows as plain tuples
...     def keep(self, rows): return tuple(map(tuple, rows))
...     def restore(self, kept): return list(map(Row._make, kept))
>>> clock = iter([0.0, 0.5]).__next__
>>> buffer = RowBuffer(AsTuples(), wait_s=2.0, max_rows=3, clock=clock)
>>> buffer.on_batch([[Row(1, b"a")], [Row(2, b"b")]]), buffer.notify_at().timestamp()
(((), False), 2.0)
>>> buffer.snapshot()
Buffered(rows=((1, b'a'), (2, b'b')), flush_at=2.0)
>>> (rows,), dropped = buffer.on_batch([[Row(3, b"c"), Row(4, b"d")]])  # full: all of it leaves
>>> [r.offset for r in rows], dropped  # and the key's state is dropped
([1, 2, 3, 4], True)
>>> resumed = RowBuffer(AsTuples(), 2.0, 3, Buffered(((5, b"x"),), 9.0))
>>> resumed.notify_at().timestamp(), resumed.on_notify()
(9.0, ([[Row(offset=5, raw=b'x')]], True))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from bytewax.operators import StatefulBatchLogic

R = TypeVar("R", bound=tuple[Any, ...])


class Buffered(NamedTuple):
    rows: Any  # the rows as the buffer's store keeps them
    flush_at: float | None  # wall clock (epoch seconds) when the rows leave at the latest


class RowStore(Protocol[R]):
    """How a buffer's rows are kept in its snapshot and rebuilt on resume."""

    def keep(self, rows: list[R]) -> Any: ...

    def restore(self, kept: Any) -> list[R]: ...


class RowBuffer(StatefulBatchLogic[list[R], list[R], Buffered], Generic[R]):
    """Emits a key's buffered rows as one list when full, when due, or at the end."""

    def __init__(
        self,
        store: RowStore[R],
        wait_s: float,
        max_rows: int,
        resume: Buffered | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.wait_s = wait_s
        self.max_rows = max_rows
        self.clock = clock
        self.rows: list[R] = store.restore(resume.rows) if resume is not None else []
        self.flush_at = resume.flush_at if resume is not None else None

    def on_batch(self, values: list[list[R]]) -> tuple[tuple[()] | list[list[R]], bool]:
        if self.flush_at is None:
            self.flush_at = self.clock() + self.wait_s
        for rows in values:
            self.rows.extend(rows)
        if len(self.rows) >= self.max_rows:
            return self._flush()
        return (), StatefulBatchLogic.RETAIN

    def _flush(self) -> tuple[list[list[R]], bool]:
        return ([self.rows] if self.rows else []), StatefulBatchLogic.DISCARD

    def on_notify(self) -> tuple[list[list[R]], bool]:
        return self._flush()

    def on_eof(self) -> tuple[list[list[R]], bool]:
        return self._flush()

    def notify_at(self) -> datetime | None:
        if self.flush_at is None:
            return None
        return datetime.fromtimestamp(self.flush_at, UTC)

    def snapshot(self) -> Buffered:
        return Buffered(self.store.keep(self.rows), self.flush_at)
