"""Progress of long commands: a live bar on a terminal, plain periodic lines elsewhere.

Every long command (replay, simulate, the demo's backfill, batch jobs, graph loads, the
benchmarks) reports through :func:`track`: counts, rate and time left while it runs, and one
summary line when it ends. On a terminal the bar is drawn by rich; when the output is a file or
a pipe (CI logs, ``make demo > log``) a plain line is printed at most every ``every_s`` seconds.

>>> import io
>>> lines = io.StringIO()
>>> ticks = iter([0.0, 1.0, 6.0, 6.5, 8.0])
>>> with track("replay", total=400, unit="events", stream=lines, clock=lambda: next(ticks)) as t:
...     t.advance(100)
...     t.advance(200)
...     t.advance(100)
>>> print(lines.getvalue(), end="")
replay: 300/400 events (75%), 50/s, 2s left
replay: 400 events in 8.0s (50/s)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Tracker:
    """Counts work done; subclasses show it. ``summary`` is the line printed at the end."""

    def __init__(self, name: str, total: float | None, unit: str, clock: Callable[[], float]):
        self.name, self.total, self.unit, self.clock = name, total, unit, clock
        self.done = 0.0
        self.started = clock()
        self.note = ""

    def advance(self, n: float = 1) -> None:
        self.done += n
        self._show()

    def add(self, n: float, note: str = "") -> None:
        """Count ``n`` more, saying what they were."""
        self.update(self.done + n, note)

    def update(self, done: float, note: str = "") -> None:
        """Set the count (for work measured as a level, e.g. offsets caught up)."""
        self.done, self.note = done, note
        self._show()

    def _show(self) -> None:
        return None

    def rate(self, now: float) -> float:
        elapsed = now - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def summary(self) -> str:
        elapsed = self.clock() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        return f"{self.name}: {self.done:,.0f} {self.unit} in {elapsed:.1f}s ({rate:,.0f}/s)"


class _Lines(Tracker):
    def __init__(
        self,
        name: str,
        total: float | None,
        unit: str,
        clock: Callable[[], float],
        stream: TextIO,
        every_s: float,
    ) -> None:
        super().__init__(name, total, unit, clock)
        self.stream, self.every_s = stream, every_s
        self.last = self.started

    def _show(self) -> None:
        now = self.clock()
        if now - self.last < self.every_s:
            return
        self.last = now
        rate = self.rate(now)
        line = f"{self.name}: {self.done:,.0f}"
        if self.total:
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            share = 100 * self.done / self.total
            line += f"/{self.total:,.0f} {self.unit} ({share:.0f}%), {rate:,.0f}/s, "
            line += f"{left:.0f}s left" if left != float("inf") else "time left unknown"
        else:
            line += f" {self.unit}, {rate:,.0f}/s"
        if self.note:
            line += f" — {self.note}"
        print(line, file=self.stream, flush=True)


class _Bar(Tracker):
    def __init__(
        self,
        name: str,
        total: float | None,
        unit: str,
        clock: Callable[[], float],
        progress: Progress,
    ) -> None:
        super().__init__(name, total, unit, clock)
        self.progress = progress
        self.task = progress.add_task(self.name, total=self.total)

    def _show(self) -> None:
        description = f"{self.name} {self.note}".strip()
        self.progress.update(self.task, completed=self.done, description=description)


@contextmanager
def track(
    name: str,
    total: float | None = None,
    unit: str = "events",
    *,
    stream: TextIO | None = None,
    every_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Tracker]:
    """Report progress of ``name`` while the block runs; print its summary line at the end."""
    out = stream or sys.stderr
    if stream is None and out.isatty():
        console = Console(file=out)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn(f"{unit}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            bar = _Bar(name, total, unit, clock, progress)
            yield bar
        console.print(bar.summary())
        return
    lines = _Lines(name, total, unit, clock, out, every_s)
    yield lines
    print(lines.summary(), file=out, flush=True)
