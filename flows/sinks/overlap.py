"""Sink writes overlapped with processing, and joined at the end of each recovery epoch.

A writer's batch is handed to a thread of its own and ``write_batch`` returns at once, so the
worker goes on with the next input while Redis or the lake takes the write (their clients wait
on sockets and files with the GIL released). The thread writes the batches in the order they
were handed over, so a later value of a key still lands after an earlier one.

**What waits is written together.** When the thread comes back for more and several batches
wait (the worker handed them over while it wrote), it writes them as one batch, in order: one
Redis pipeline or Delta commit instead of one each, and a key written in several of them is
written once, with its latest value (each writer keeps the latest per key of a batch:
:mod:`flows.sinks.serving`). A flow tailing a live load hands over a batch per small input
batch, so a product's feature row or a shopper's lists would otherwise be written again for
every batch that touched them. Nothing waits for this: the thread takes only what is there.

**Nothing is lost on a crash.** The sink is a Bytewax ``FixedPartitionedSink``: Bytewax calls
a partition's ``snapshot()`` once at the end of every epoch in which it wrote, after that
epoch's last ``write_batch``, and the recovery store commits an epoch only once every
snapshot of it is taken. ``snapshot()`` waits there until every batch handed over so far is
written, so the output of a committed epoch is in Redis and the lake; a crash loses only
writes of epochs not committed, which the restarted flow reads and writes again
(at-least-once, as with a write that blocks). The snapshot itself holds nothing.

**Errors surface.** An exception in the thread (whatever the writer's own retrying,
flows/sinks/outage.py, does not ride out) is raised by the partition's next ``write_batch``
or ``snapshot`` in the worker, so the flow fails before the epoch commits and recovers as it
would from a failed write; the batches handed over after the failure are not written.

**Bounded.** At most ``TILLFLOW_SINK_IN_FLIGHT`` batches (default 4) wait per sink; beyond
that ``write_batch`` waits, so a service that is away blocks the flow as before instead of
filling memory.

**Where items go.** Each flow process has one partition per sink (named by its process index,
:func:`partition_name`) and writes its own items there, as a ``DynamicSink`` does: the
partition function sends every item to the partition of the process it is in, so no item
crosses to another process. Process 0 also lists the partitions of processes beyond the
current count (up to ``MAX_PROCESSES``), so a recovery folder written by more processes
resumes with fewer: their snapshots are loaded into idle partitions nothing is routed to.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition, StatelessSinkPartition

from flows.metrics import cli_option, process_index

X = TypeVar("X")
MAX_PROCESSES = 256
Build = Callable[[str, int], StatelessSinkPartition[X]]  # (step id, process index) -> writer


def partition_name(process: int) -> str:
    """A process's partition: zero-padded, so sorting the names sorts the processes.

    >>> partition_name(3), sorted(partition_name(p) for p in (10, 9))
    ('003', ['009', '010'])
    """
    return f"{process:03d}"


def process_count(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """How many processes the Bytewax cluster has (the ``-a``/``--addresses`` list).

    >>> process_count(["bytewax.run", "f:flow", "-i", "1", "-a", "h:1;h:2;h:3"], {})
    3
    >>> process_count(["bytewax.run", "f:flow", "--addresses=h:1;h:2"], {})
    2
    >>> process_count(["bytewax.run", "f:flow"], {"BYTEWAX_ADDRESSES": "h:1;h:2"})
    2
    >>> process_count(["bytewax.run", "f:flow"], {})
    1
    """
    addresses = cli_option(argv, "-a", "--addresses") or env.get("BYTEWAX_ADDRESSES", "")
    return max(1, len([a for a in addresses.split(";") if a]))


class OverlappedSink(FixedPartitionedSink[Sequence[X], None], Generic[X]):
    """A sink whose items are sequences of values, written by ``build``'s writer in a thread
    (module doc); ``argv`` and ``env`` say which process this is."""

    def __init__(
        self,
        build: Build[X],
        in_flight: int,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.build = build
        self.in_flight = in_flight
        argv = sys.argv if argv is None else argv
        env = os.environ if env is None else env
        self.process = process_index(argv, env)
        self.processes = max(process_count(argv, env), self.process + 1)

    def list_parts(self) -> list[str]:
        """This process's partition; process 0 also the idle ones of absent processes."""
        parts = [partition_name(self.process)]
        if self.process == 0:
            parts += [partition_name(p) for p in range(self.processes, MAX_PROCESSES)]
        return parts

    def part_fn(self, item_key: str) -> int:
        """The partition of the process the item is in, whatever its key (module doc)."""
        return self.process

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> StatefulSinkPartition[Sequence[X], None]:
        if for_part != partition_name(self.process):
            return _Idle(step_id, for_part)
        return Overlapped(self.build(step_id, self.process), step_id, self.in_flight)


class Overlapped(StatefulSinkPartition[Sequence[X], None]):
    """Hands each batch to ``writer`` in a thread; ``snapshot`` waits for them (module doc)."""

    def __init__(self, writer: StatelessSinkPartition[X], step_id: str, in_flight: int) -> None:
        self.writer = writer
        self.waiting: queue.Queue[list[X] | None] = queue.Queue(in_flight)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._write, name=f"sink {step_id}", daemon=True)
        self.thread.start()

    def write_batch(self, values: list[Sequence[X]]) -> None:
        self._raise_failure()
        items = [x for v in values for x in v]
        if items:
            self.waiting.put(items)

    def snapshot(self) -> None:
        """Return once every batch handed over is written (the epoch may then commit)."""
        self.waiting.join()
        self._raise_failure()

    def close(self) -> None:
        self.waiting.join()
        self.waiting.put(None)
        self.thread.join()
        self._raise_failure()
        self.writer.close()

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _write(self) -> None:
        while True:
            batches = [self.waiting.get()]
            while batches[-1] is not None:  # what else waits already goes in the same write
                try:
                    batches.append(self.waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                items = [x for batch in batches if batch is not None for x in batch]
                if items and self.failure is None:
                    self.writer.write_batch(items)
            except BaseException as exc:  # noqa: BLE001 -- raised again in the worker
                self.failure = exc
            finally:
                for _ in batches:
                    self.waiting.task_done()
            if batches[-1] is None:
                return


class _Idle(StatefulSinkPartition[Sequence[X], None]):
    """The partition of a process that is not running (module doc): nothing is routed here."""

    def __init__(self, step_id: str, part: str) -> None:
        self.step_id = step_id
        self.part = part

    def write_batch(self, values: list[Sequence[X]]) -> None:
        raise RuntimeError(f"{self.step_id}: items routed to the idle partition {self.part}")

    def snapshot(self) -> None:
        return None
