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

Work that overlaps (the demo loads the graph while the models train) shares one
:func:`board`: one live display with a bar each on a terminal, and each tracker's lines and
summary elsewhere.

>>> lines = io.StringIO()
>>> ticks = iter([0.0, 0.0, 1.0, 2.0, 3.0, 4.0])
>>> with board(stream=lines, clock=lambda: next(ticks)) as shown:
...     with shown.track("pipeline", 4, "steps") as pipeline:
...         with shown.track("graph", None, "rows") as graph:
...             graph.add(500)
...         pipeline.advance(4)
>>> print(lines.getvalue(), end="")
graph: 500 rows in 2.0s (250/s)
pipeline: 4 steps in 4.0s (1/s)
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
        self.task = progress.add_task(self.name, total=self.total, unit=unit)

    def _show(self) -> None:
        description = f"{self.name} {self.note}".strip()
        self.progress.update(self.task, completed=self.done, description=description)


COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TaskProgressColumn(),
    TextColumn("{task.fields[unit]}"),
    TimeElapsedColumn(),
    TextColumn("left"),
    TimeRemainingColumn(),
)


class Board:
    """Where trackers show: a bar each in one live display (``progress``), or plain lines on
    ``stream`` every ``every_s`` seconds. Trackers may run at once, from several threads."""

    def __init__(
        self,
        stream: TextIO,
        every_s: float,
        clock: Callable[[], float],
        progress: Progress | None = None,
    ) -> None:
        self.stream, self.every_s, self.clock, self.progress = stream, every_s, clock, progress

    @contextmanager
    def track(
        self, name: str, total: float | None = None, unit: str = "events"
    ) -> Iterator[Tracker]:
        """Report progress of ``name`` while the block runs; print its summary at the end."""
        if self.progress is None:
            lines = _Lines(name, total, unit, self.clock, self.stream, self.every_s)
            yield lines
            print(lines.summary(), file=self.stream, flush=True)
            return
        bar = _Bar(name, total, unit, self.clock, self.progress)
        try:
            yield bar
        finally:
            self.progress.remove_task(bar.task)
        self.progress.console.print(bar.summary())

    def print(self, line: str) -> None:
        """Print ``line`` on stdout, or above the bars while they are shown."""
        if self.progress is None:
            sys.stdout.write(f"{line}\n")
            sys.stdout.flush()
        else:
            self.progress.console.print(line, markup=False, highlight=False)


@contextmanager
def board(
    *,
    stream: TextIO | None = None,
    every_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Board]:
    """A live display on a terminal (stderr unless ``stream``), plain lines elsewhere."""
    out = stream or sys.stderr
    if stream is None and out.isatty():
        with Progress(*COLUMNS, console=Console(file=out), transient=True) as progress:
            yield Board(out, every_s, clock, progress)
        return
    yield Board(out, every_s, clock)


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
    with (
        board(stream=stream, every_s=every_s, clock=clock) as shown,
        shown.track(name, total, unit) as tracker,
    ):
        yield tracker
