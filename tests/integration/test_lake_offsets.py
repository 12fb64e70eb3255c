"""A lake buffer's rows, snapshotted as their offsets, read again from the real Kafka: the rows
ingest made of the same messages when the flow first read them (flows/lake_offsets.py)."""

from __future__ import annotations

import pickle

import orjson
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from flows.ingest import Ingest
from flows.kafka_in import SourceMessage
from flows.lake_offsets import KafkaOffsets
from flows.records import LakeRow
from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS, INVENTORY
from simulator.config import ShopConfig
from simulator.shop import Shop

N = 40


def _produce(settings: Settings) -> list[int]:
    """N inventory events in partition 0 of this run's topic; their offsets."""
    events = (e for e in Shop(ShopConfig(seed=11)).events() if e.topic == INVENTORY)
    offsets: list[int] = []

    def delivered(err: object, msg: Message) -> None:
        assert err is None, err
        offsets.append(msg.offset() or 0)

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for _, e in zip(range(N), events, strict=False):
        producer.produce(
            settings.topic(INVENTORY), orjson.dumps(e.payload), e.key, 0, on_delivery=delivered
        )
    assert producer.flush(30) == 0
    return sorted(offsets)


def _first_read(settings: Settings, offsets: list[int]) -> list[LakeRow]:
    """The lake rows ingest makes of those messages, read as the flow's input reads them."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "lake-offsets-test"}
    )
    consumer.assign([TopicPartition(settings.topic(INVENTORY), 0, offsets[0])])
    read: list[SourceMessage] = []
    while len(read) < len(offsets):
        read += [SourceMessage.of(m) for m in consumer.consume(100, 1.0) if m.error() is None]
    consumer.close()
    topics = {settings.topic(t): t for t in INPUT_TOPICS}
    (ingested,) = Ingest(topics, settings.event_time_policy())(read[: len(offsets)])
    ((_key, rows),) = ingested.lake
    return rows


def test_buffered_rows_kept_as_offsets_are_read_again_from_kafka_as_they_were(
    stack: Settings,
) -> None:
    offsets = _produce(stack)
    rows = _first_read(stack, offsets)
    assert [r.offset for r in rows] == offsets
    topics = {stack.topic(t): t for t in INPUT_TOPICS}
    parse = Ingest(topics, stack.event_time_policy()).parse
    # the smallest read-ahead: a resume reads its rows however little is fetched at a time
    store = KafkaOffsets([stack.kafka_bootstrap], topics, parse, read_ahead_kb=1)
    buffered = rows[5:30:2]  # a buffer holds some of a partition's rows, with gaps
    kept = pickle.loads(pickle.dumps(store.keep(buffered)))
    assert store.restore(kept) == buffered
