"""The flow's Kafka input: consumer errors never enter the dataflow nor move the resume
offset, and a worker's partitions are handed over merged in timestamp order, each partition
in offset order at its partition time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import cast

from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer
from confluent_kafka import KafkaError as ConfluentError

from flows.dataflow import build_flow
from flows.kafka_in import IDLE_WAIT, IDLE_WAIT_MAX, REFETCH_MS, Merge, Merged, TolerantKafkaSource
from schemas.settings import Settings


class Raw:
    """What ``Consumer.consume`` returns: a message (offset, timestamp) or an error."""

    def __init__(self, offset: int, ts: int = 0, error: ConfluentError | None = None) -> None:
        self._offset, self._ts, self._error = offset, ts, error

    def error(self) -> ConfluentError | None:
        return self._error

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_CREATE_TIME, self._ts

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes:
        return b"{}"

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def headers(self) -> None:
        return None

    def latency(self) -> None:
        return None


def eof() -> Raw:
    return Raw(-1001, error=ConfluentError(ConfluentError._PARTITION_EOF))


class Scripted:
    """A consumer that answers the given fetches, then nothing."""

    def __init__(self, fetches: list[list[Raw]]) -> None:
        self.fetches = fetches
        self.timeouts: list[float] = []  # of every fetch asked of it

    def consume(self, num_messages: int, timeout: float) -> list[Raw]:
        self.timeouts.append(timeout)
        return self.fetches.pop(0) if self.fetches else []

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


WALL_S = 10.0  # the wall clock of these merges (epoch seconds)
MAX_AHEAD_S = 5.0


def merge_of(
    fetches: dict[str, list[list[Raw]]],
    tail: bool = False,
    clock: Clock | None = None,
    batch_size: int = 100,
) -> tuple[list[Merged], list[ConfluentError]]:
    errors: list[ConfluentError] = []
    merge = Merge(
        tail=tail,
        batch_size=batch_size,
        grace_s=5,
        on_error=errors.append,
        max_ahead_s=MAX_AHEAD_S,
        clock=clock or Clock(),
        wall=lambda: WALL_S,
    )
    return [Merged(merge, merge.add(n, Scripted(f), 0)) for n, f in fetches.items()], errors


def drain(parts: list[Merged], max_polls: int = 1_000) -> list[list[tuple[str, int]]]:
    """Poll the partitions in name order, as a worker does in each activation, until every
    one has ended; per activation that handed anything over, ``(partition, timestamp)`` of
    each message, in the order handed over."""
    out: list[list[tuple[str, int]]] = []
    live = sorted(parts, key=lambda p: p.name)
    for _ in range(max_polls):
        if not live:
            return out
        activation = []
        for p in list(live):
            try:
                activation.extend((p.name, m.timestamp[1]) for m in p.next_batch() if m.timestamp)
            except StopIteration:
                live.remove(p)
        if activation:
            out.append(activation)
    raise AssertionError(f"stalled after {sum(map(len, out))} messages")


def times(activations: list[list[tuple[str, int]]]) -> list[list[int]]:
    return [[t for _, t in a] for a in activations]


def test_consumer_errors_are_reported_and_never_move_the_resume_offset() -> None:
    down = ConfluentError(ConfluentError._ALL_BROKERS_DOWN)
    (part,), errors = merge_of(
        {"0-t": [[Raw(5), Raw(6)], [Raw(-1001, error=down)], [Raw(7)]]}, tail=True
    )
    assert [m.offset for m in part.next_batch()] == [5, 6]
    assert list(part.next_batch()) == []
    assert part.snapshot() == 7  # the next real message, not the error's offset
    assert [m.offset for m in part.next_batch()] == [7]
    assert part.snapshot() == 8
    assert [e.code() for e in errors] == [ConfluentError._ALL_BROKERS_DOWN]


class Full(Raw):
    """A message with a key, headers and latency, as a broker hands them over."""

    def key(self) -> bytes:
        return b"SKU-1"

    def topic(self) -> str:
        return "shop.orders"

    def partition(self) -> int:
        return 2

    def headers(self) -> list[tuple[str, bytes]]:  # type: ignore[override]
        return [("x-correlation-id", b"req-9")]

    def latency(self) -> float:  # type: ignore[override]
        return 0.25


def test_a_message_is_handed_over_with_every_field_the_consumer_gave() -> None:
    (part,), _ = merge_of({"2-shop.orders": [[Full(7, 1_000)]]}, tail=True)
    (m,) = part.next_batch()
    assert (m.key, m.value, m.topic, m.partition, m.offset) == (
        b"SKU-1",
        b"{}",
        "shop.orders",
        2,
        7,
    )
    assert list(m.headers) == [("x-correlation-id", b"req-9")]
    assert (m.latency, m.timestamp) == (0.25, (TIMESTAMP_CREATE_TIME, 1_000))


def test_a_backlog_is_handed_over_in_timestamp_order_across_partitions() -> None:
    # "a" fetches its whole backlog at once; "b" brings the same hours in three fetches
    a = [[Raw(i, 1000 * i) for i in range(6)], [eof()]]
    b = [[Raw(i, 1000 * i + 500) for i in range(3)], [Raw(3, 3500)], [Raw(4, 9000)], [eof()]]
    parts, _ = merge_of({"a": a, "b": b})
    order = drain(parts)
    # each activation (what the steps downstream order by event time) ends before the next
    assert [sorted(t) for t in times(order)] == [
        [0, 500, 1000, 1500, 2000, 2500],
        [3000, 3500],
        [4000, 5000],
        [9000],
    ]
    assert [p.snapshot() for p in parts] == [6, 5]  # each: the offset after its last one


def test_the_first_partition_runs_the_round_and_each_hands_over_its_own_share() -> None:
    parts, _ = merge_of({"b": [[Raw(7, 5)]], "a": [[Raw(0, 10)]]}, tail=True)
    first, second = sorted(parts, key=lambda p: p.name)  # Bytewax polls in name order
    # "a" holds 10 back until "b", which had reached 5, has nothing more waiting
    assert list(first.next_batch()) == []
    assert second.snapshot() == 0  # "b"'s share is not handed over yet: its offset stays
    assert first.next_awake() is None  # a share waits: no idle wait
    assert list(first.next_batch()) == []  # no next round before every share is handed over
    assert [m.offset for m in second.next_batch()] == [7]
    assert second.snapshot() == 8
    assert [m.offset for m in first.next_batch()] == [0]
    assert first.snapshot() == 1


def test_a_restart_from_any_epoch_loses_no_message_when_partitions_close_epochs_apart() -> None:
    """Bytewax closes each partition's epochs on its own timer and snapshots the partition at
    the end of its own epoch; a restart from epoch E keeps what the flow received in the
    epochs before E and resumes each partition from its snapshot of epoch E - 1. With the
    epochs of two partitions closing in different activations, every restart must resume
    each partition exactly after the messages it gave the flow before E: none skipped."""
    a = [[Raw(i, 100 * i) for i in range(j, j + 3)] for j in range(0, 30, 3)] + [[eof()]]
    b = [[Raw(i, 100 * i + 50) for i in range(j, j + 2)] for j in range(0, 30, 2)] + [[eof()]]
    parts, _ = merge_of({"a": a, "b": b})
    epoch = {p.name: 0 for p in parts}
    given: list[tuple[str, int, int]] = []  # (partition, offset, epoch it was given in)
    source = {0: "a", 50: "b"}  # a message's partition, by its timestamp
    snapshots: dict[tuple[str, int], int | None] = {}  # (partition, epoch) -> resume offset
    live = sorted(parts, key=lambda p: p.name)
    for activation in itertools.count():
        if not live:
            break
        assert activation < 1_000, "stalled"
        for p in list(live):
            try:
                given += [
                    (source[(m.timestamp or (0, 0))[1] % 100], m.offset or 0, epoch[p.name])
                    for m in p.next_batch()
                ]
                ended = False
            except StopIteration:
                live.remove(p)
                ended = True
            # "a" closes its epochs in even activations, "b" in odd ones; both at their end
            if ended or activation % 2 == (p.name == "b"):
                snapshots[p.name, epoch[p.name]] = p.snapshot()
                epoch[p.name] += 1
    assert len(given) == 60
    for p in parts:
        for e in range(epoch[p.name]):
            kept = sorted(o for name, o, at in given if name == p.name and at <= e)
            assert kept == list(range(snapshots[p.name, e] or 0)), (p.name, e)


def test_a_partition_whose_first_fetch_has_not_answered_holds_the_others_for_a_while() -> None:
    clock = Clock()
    parts, _ = merge_of({"a": [[Raw(0, 9_000)]], "late": []}, tail=True, clock=clock)
    assert list(parts[0].next_batch()) == []  # "late" may still bring older messages
    clock.now = 5.0
    assert [m.offset for m in parts[0].next_batch()] == [0]


def test_timestamps_that_go_back_within_a_partition_never_stall_the_merge() -> None:
    # "a"'s producer retried a batch: its offset 2 (200) is older than its offset 1 (900)
    a = [[Raw(0, 100), Raw(1, 900), Raw(2, 200)], [Raw(3, 950)], [eof()]]
    b = [[Raw(0, 300)], [Raw(1, 400)], [Raw(2, 1_000)], [eof()]]
    parts, _ = merge_of({"a": a, "b": b})
    # each partition in offset order; "a"'s 200 leaves at its partition's time, 900
    assert times(drain(parts)) == [[100, 300], [400], [900, 200], [950], [1_000]]
    assert [p.snapshot() for p in parts] == [4, 3]


def test_a_timestamp_far_ahead_of_the_clock_does_not_hold_its_partition_back() -> None:
    future = int((WALL_S + MAX_AHEAD_S) * 1000) + 1
    a = [[Raw(0, 100), Raw(1, future), Raw(2, 300)], [eof()]]
    b = [[Raw(0, 200), Raw(1, 400)], [eof()]]
    parts, _ = merge_of({"a": a, "b": b})
    # the far-future message leaves at its partition's time (100), and 300 before "b"'s 400
    assert times(drain(parts)) == [[100, future, 300, 200], [400]]


def test_fetches_never_wait_and_only_a_round_that_found_nothing_waits_before_the_next() -> None:
    # "quiet" never has anything: waiting on it would delay "busy"'s messages in every round
    parts, _ = merge_of({"busy": [[Raw(0, 10)], [], [Raw(1, 20)]], "quiet": [[eof()]]}, tail=True)
    leader = parts[0]
    assert [m.offset for m in leader.next_batch()] == [0]
    assert leader.next_awake() is None  # it handed something over: straight on
    assert list(leader.next_batch()) == []
    waited = leader.next_awake()
    assert waited is not None
    assert waited - datetime.now(UTC) <= IDLE_WAIT  # a short wait before the next round
    assert [m.offset for m in leader.next_batch()] == [1]
    assert leader.next_awake() is None
    busy, quiet = (cast(Scripted, p.part.consumer) for p in parts)
    assert quiet.timeouts  # the quiet partition was asked in every round, and never waited
    assert all(t == 0 for t in busy.timeouts + quiet.timeouts)


def test_a_quiet_merge_backs_off_to_the_longest_idle_wait_and_a_message_resets_it() -> None:
    quiet = [[]] * 8
    (leader,), _ = merge_of({"a": [*quiet, [Raw(0, 10)], [], []]}, tail=True)
    waits = []
    for _ in quiet:
        assert list(leader.next_batch()) == []
        at = leader.next_awake()
        assert at is not None
        waits.append(at - datetime.now(UTC))
    # each empty round in a row waits about twice as long as the last, never beyond the cap
    assert waits[0] <= IDLE_WAIT
    assert waits[2] > IDLE_WAIT * 2
    assert all(w <= IDLE_WAIT_MAX for w in waits)
    assert waits[-1] > IDLE_WAIT_MAX / 2
    assert [m.offset for m in leader.next_batch()] == [0]
    assert leader.next_awake() is None
    assert list(leader.next_batch()) == []
    again = leader.next_awake()  # a message came: the next quiet round waits the short wait
    assert again is not None
    assert again - datetime.now(UTC) <= IDLE_WAIT


def test_the_flow_s_consumers_read_ahead_no_more_than_the_setting() -> None:
    flow = build_flow(Settings(environment="test", kafka_read_ahead_kb=256), {})
    (source,) = [s.source for s in flow.substeps if s.step_name == "kafka-in"]
    assert isinstance(source, TolerantKafkaSource)
    config = source.consumer_config()
    assert config["queued.max.messages.kbytes"] == 256
    # a full read-ahead is fetched again soon, not after librdkafka's default second
    assert config["fetch.queue.backoff.ms"] == REFETCH_MS < 1_000
    Consumer(config).close()  # librdkafka knows every setting (an unknown name raises)
