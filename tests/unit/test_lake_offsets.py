"""A lake buffer's snapshot keeps its rows' Kafka offsets, and a resume reads the same rows
again (flows/lake_offsets.py): the partition is a stand-in holding the messages ingest read
first (the real Kafka: tests/integration/test_lake_offsets.py)."""

from __future__ import annotations

import pickle
from itertools import chain
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer

from flows.buffer import RowBuffer
from flows.ingest import Ingest
from flows.kafka_in import REFETCH_MS, SourceMessage
from flows.lake_offsets import KafkaOffsets, UnreadableRows
from flows.records import LakeRow
from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.shop import Shop

SETTINGS = Settings(environment="test")
TOPICS = {SETTINGS.topic(t): t for t in INPUT_TOPICS}
BAD = (3, 7)  # offsets whose bytes are not an event: dead-lettered, never buffered


class _Raw:
    """A message as a consumer fetches it (``confluent_kafka.Message``'s methods)."""

    def __init__(self, m: SourceMessage) -> None:
        self.m = m

    def error(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.m, name)
        return lambda: value


class _Partition:
    """A partition's messages from ``start`` on, a few per fetch, as a consumer hands them."""

    def __init__(self, messages: list[SourceMessage], start: int) -> None:
        self.left = [_Raw(m) for m in messages if (m.offset or 0) >= start]
        self.closed = False

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        got, self.left = self.left[:3], self.left[3:]
        return got

    def close(self) -> None:
        self.closed = True


def _messages(n: int = 12) -> list[SourceMessage]:
    """``n`` simulator events of one topic in partition 0, two of them not events at all."""
    events = Shop(ShopConfig(seed=3)).events()
    first = next(events)
    same = chain([first], (e for e in events if e.topic == first.topic))
    return [
        SourceMessage(
            e.key.encode(),
            b"{" if i in BAD else orjson.dumps(e.payload),
            SETTINGS.topic(e.topic),
            offset=i,
            partition=0,
            timestamp=(1, 1_767_600_000_000 + i),
        )
        for i, e in zip(range(n), same, strict=False)
    ]


def _rows(messages: list[SourceMessage]) -> list[LakeRow]:
    """What ingest buffered of ``messages`` for the lake (the valid ones)."""
    (ingested,) = Ingest(TOPICS, SETTINGS.event_time_policy())(messages)
    ((_key, rows),) = ingested.lake
    return rows


def _store(messages: list[SourceMessage]) -> tuple[KafkaOffsets, list[_Partition]]:
    opened: list[_Partition] = []

    def consumer(topic: str, partition: int, start: int) -> _Partition:
        assert (topic, partition) == (messages[0].topic, 0)
        opened.append(_Partition(messages, start))
        return opened[-1]

    parse = Ingest(TOPICS, SETTINGS.event_time_policy()).parse
    return KafkaOffsets(["unused:9092"], TOPICS, parse, 1_024, consumer), opened


def test_a_resumed_lake_buffer_holds_the_rows_ingest_made_read_again_from_their_offsets() -> None:
    messages = _messages()
    rows = _rows(messages)
    assert [r.offset for r in rows] == [i for i in range(12) if i not in BAD]
    store, opened = _store(messages)
    buffer = RowBuffer(store, wait_s=5.0, max_rows=100, clock=lambda: 10.0)
    buffer.on_batch([rows[:4], rows[4:]])
    snapshot = pickle.loads(pickle.dumps(buffer.snapshot()))
    assert len(pickle.dumps(snapshot)) < sum(len(r.raw) for r in rows) / 2  # offsets, not rows
    resumed = RowBuffer(store, wait_s=5.0, max_rows=100, resume=snapshot)
    assert resumed.notify_at() == buffer.notify_at()
    assert resumed.on_eof() == ([rows], True)
    assert len(opened) == 1
    assert opened[0].closed


def test_a_buffer_resumed_from_part_of_a_partition_reads_only_its_own_offsets() -> None:
    messages = _messages()
    later = [r for r in _rows(messages) if r.offset >= 5]
    store, _ = _store(messages)
    assert store.restore(pickle.loads(pickle.dumps(store.keep(later)))) == later
    assert store.keep([]) is None
    assert store.restore(None) == []


def test_rows_kafka_no_longer_holds_fail_the_resume() -> None:
    messages = _messages()
    rows = _rows(messages)
    deleted = [m for m in messages if m.offset != 5]  # retention took offset 5
    store, _ = _store(deleted)
    with pytest.raises(UnreadableRows, match="1 buffered rows not read again"):
        store.restore(store.keep(rows))


def test_a_buffered_row_refused_when_read_again_fails_the_resume() -> None:
    messages = _messages()
    rows = _rows(messages)
    changed = [m._replace(value=b"[]") if m.offset == 6 else m for m in messages]
    store, _ = _store(changed)
    with pytest.raises(UnreadableRows, match="offset 6 is refused when read again"):
        store.restore(store.keep(rows))


def test_a_resume_reads_ahead_no_more_than_the_flow_s_setting() -> None:
    parse = Ingest(TOPICS, SETTINGS.event_time_policy()).parse
    config = KafkaOffsets(["unused:9092"], TOPICS, parse, 256).consumer_config()
    assert config["queued.max.messages.kbytes"] == 256
    assert config["fetch.queue.backoff.ms"] == REFETCH_MS
    Consumer(config).close()  # librdkafka knows every setting (an unknown name raises)
