"""Sink writes run in a thread and are joined at each epoch's end: a committed epoch's writes
are all done, errors surface in the worker, and each process writes its own items."""

from __future__ import annotations

import queue
import threading
from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.outputs import StatelessSinkPartition
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main

from flows.sinks.overlap import MAX_PROCESSES, Overlapped, OverlappedSink, partition_name


class Recorder(StatelessSinkPartition[int]):
    """Records what it writes; each write waits for ``gate`` and fails on ``fail_on``."""

    def __init__(self, gate: threading.Event | None = None, fail_on: int | None = None) -> None:
        self.gate = gate
        self.fail_on = fail_on
        self.lost = threading.Event()  # set: what is written from now on is lost (a crash)
        self.written: list[int] = []
        self.closed = False

    def write_batch(self, items: list[int]) -> None:
        if self.gate is not None:
            self.gate.wait()
        if self.fail_on in items:
            raise ConnectionAbortedError(f"refused {self.fail_on}")
        if not self.lost.is_set():
            self.written.extend(items)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def gate_opened_by_the_join(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """A gate that writes wait for, opened only when someone waits for the writes: a write
    the partition does not wait for at the epoch's end is still pending when the flow stops."""
    gate = threading.Event()
    join = queue.Queue.join

    def opening_join(self: queue.Queue[object]) -> None:
        gate.set()
        join(self)

    monkeypatch.setattr(queue.Queue, "join", opening_join)
    return gate


def test_the_snapshot_returns_once_every_batch_handed_over_is_written(
    gate_opened_by_the_join: threading.Event,
) -> None:
    writer = Recorder(gate_opened_by_the_join)
    part = Overlapped(writer, "features", 4)
    for batch in ([1, 2], [3], [], [4, 5]):
        part.write_batch([batch])  # returns before the write: the gate is shut
    assert writer.written == []
    part.snapshot()
    assert writer.written == [1, 2, 3, 4, 5]  # in the order handed over
    part.close()
    assert writer.closed


class Calls(StatelessSinkPartition[int]):
    """Records each ``write_batch`` call, made once ``gate`` is open (``begun``: one has begun)."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate
        self.begun = threading.Event()
        self.calls: list[list[int]] = []

    def write_batch(self, items: list[int]) -> None:
        self.begun.set()
        self.gate.wait()
        self.calls.append(items)


def test_batches_waiting_while_the_thread_writes_are_written_together_in_order() -> None:
    gate = threading.Event()
    writer = Calls(gate)
    part = Overlapped(writer, "features", 4)
    part.write_batch([[1]])
    assert writer.begun.wait(10)  # the thread writes [1] and holds there
    for batch in ([2, 3], [4], [5]):
        part.write_batch([batch])
    gate.set()
    part.snapshot()
    part.write_batch([[6]])
    part.close()
    assert writer.calls == [[1], [2, 3, 4, 5], [6]]


def test_an_error_in_the_thread_is_raised_in_the_worker_and_nothing_after_it_is_written() -> None:
    writer = Recorder(fail_on=3)
    part = Overlapped(writer, "prices", 4)
    part.write_batch([[1, 2], [3]])
    with pytest.raises(ConnectionAbortedError, match="refused 3"):
        part.snapshot()
    with pytest.raises(ConnectionAbortedError):
        part.write_batch([[4]])
    assert writer.written == []  # the failed batch held 1, 2 and 3 together


def test_each_process_writes_to_its_own_partition() -> None:
    def build(_step: str, _process: int) -> Recorder:
        return Recorder()

    second = OverlappedSink(build, 4, argv=["bytewax.run", "f", "-i", "1", "-a", "a:1;a:2"], env={})
    first = OverlappedSink(build, 4, argv=["bytewax.run", "f", "-i", "0", "-a", "a:1;a:2"], env={})
    assert second.list_parts() == ["001"]
    # Process 0 also holds the partitions a larger flow left in its recovery state.
    assert first.list_parts() == ["000", *(partition_name(p) for p in range(2, MAX_PROCESSES))]
    known = sorted({*first.list_parts(), *second.list_parts()})
    assert [known[s.part_fn(key) % len(known)] for s in (first, second) for key in "ab"] == [
        "000",
        "000",
        "001",
        "001",
    ]
    assert isinstance(first.build_part("features", "000", None), Overlapped)
    idle = first.build_part("features", "005", None)
    assert idle.snapshot() is None
    with pytest.raises(RuntimeError, match="idle partition 005"):
        idle.write_batch([[1]])


def test_a_flow_stopped_abruptly_has_written_every_epoch_it_committed(
    tmp_path: Path, gate_opened_by_the_join: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run in Bytewax with recovery, an epoch per item, stopped abruptly after three items,
    then resumed. A killed process never closes its sinks, so whatever a partition has not
    written by the time Bytewax closes it counts as lost. The resumed flow replays only what
    was not committed, so every item must be written once the two runs are over."""
    init_db_dir(tmp_path, 1)
    writers: list[Recorder] = []
    close = Overlapped.close

    def killed_first(part: Overlapped[int]) -> None:
        for w in writers:
            w.lost.set()
        close(part)

    monkeypatch.setattr(Overlapped, "close", killed_first)

    def build(_step: str, _process: int) -> Recorder:
        writers.append(Recorder(gate_opened_by_the_join))
        return writers[-1]

    def run(items: list[object]) -> None:
        flow = Dataflow("overlap")
        source = op.input("in", flow, TestingSource(items))
        op.output("out", source, OverlappedSink(build, 4, argv=[], env={}))
        run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(tmp_path)))

    # One list for both runs: the resumed source knows its ABORT was triggered.
    items = [("k", [i]) for i in range(3)] + [TestingSource.ABORT(), ("k", [3]), ("k", [4])]
    run(items)
    run(items)
    assert [w.written for w in writers] == [[0, 1, 2], [3, 4]]
