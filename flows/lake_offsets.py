"""The bronze rows a lake buffer holds at an epoch's end, snapshotted as their Kafka offsets and
read again from Kafka on resume.

A partition's rows wait in their buffer (:mod:`flows.buffer`) up to ``TILLFLOW_LAKE_FLUSH_S``
before a Delta commit, so every epoch's snapshot held the raw messages of the last seconds of
input: a third of the bytes an epoch writes to the recovery store at 4,000 events/s
(``docs/scaling.md``, the tenth round), while the input waits. Kafka already holds those
messages. A snapshot keeps only their offsets (8 bytes a row); on resume the offsets are read
again from their partition and put through the same validation (:class:`flows.ingest.Ingest`),
which accepts a message read again as it did the first time: the message's bytes and its Kafka
timestamp are the same, and the event-time check only moves its "now" later. A row that
cannot be read again (the topic's retention deleted it) or is refused fails the resume, loud,
instead of leaving a hole in bronze.

>>> from schemas.topics import INVENTORY
>>> rows = [LakeRow("inventory", 2, o, None, b"{}", "e", 0) for o in (5, 9)]
>>> kept = KafkaOffsets(["x:9092"], {"shop.inventory": INVENTORY}, lambda m: m, 1024).keep(rows)
>>> kept[:2], array("q", kept[2]).tolist()
(('inventory', 2), [5, 9])
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from flows.ingest import Message
from flows.kafka_in import Fetcher, SourceMessage, read_ahead
from flows.records import Accepted, LakeRow, Rejected
from schemas.topics import Topic

READ_AGAIN_S = 60.0  # the longest a resume waits for a partition's rows to be read again
FETCH = 1_000

Kept = tuple[str, int, bytes]  # (contract topic, partition, offsets as array("q") bytes)


class UnreadableRows(RuntimeError):
    """Rows of a resumed lake buffer that Kafka no longer holds, or that validation refused."""


class KafkaOffsets:
    """Keeps a partition's buffered rows as their offsets; reads them again on resume.

    ``topics`` maps broker-side topic names to contract topics (as :class:`flows.ingest.Ingest`
    is given them); ``parse`` validates a message as ingest does (:meth:`Ingest.parse`);
    ``read_ahead_kb`` bounds what a resume's consumer fetches ahead of it, as the flow's own
    consumers are bounded (``TILLFLOW_KAFKA_READ_AHEAD_KB``): a buffer's rows are the last
    seconds of a partition, and librdkafka's default would fetch up to 64 MB past them.
    """

    def __init__(
        self,
        brokers: list[str],
        topics: Mapping[str, Topic],
        parse: Callable[[Message], Accepted | Rejected],
        read_ahead_kb: int,
        consumer: Callable[[str, int, int], Fetcher] | None = None,
    ) -> None:
        self.brokers = brokers
        self.read_ahead_kb = read_ahead_kb
        self.broker_topic = {contract.name: name for name, contract in topics.items()}
        self.parse = parse
        self.consumer = consumer or self._consumer

    def keep(self, rows: list[LakeRow]) -> Kept | None:
        """The rows' partition and offsets (all rows of a buffer are of one partition)."""
        if not rows:
            return None
        first = rows[0]
        return first.topic, first.partition, array("q", [r.offset for r in rows]).tobytes()

    def restore(self, kept: Any) -> list[LakeRow]:
        """The rows at ``kept``'s offsets, read again from Kafka and validated, in order."""
        if kept is None:
            return []
        topic, partition, packed = kept
        offsets = array("q", packed).tolist()
        wanted = set(offsets)
        found: dict[int, LakeRow] = {}
        consumer = self.consumer(self.broker_topic[topic], partition, offsets[0])
        deadline = time.monotonic() + READ_AGAIN_S
        try:
            last, read_to = offsets[-1], -1
            # A partition hands its messages in offset order: once the last buffered offset
            # is read past, what was not found is gone.
            while read_to < last and time.monotonic() < deadline:
                for m in consumer.consume(FETCH, 1.0):
                    if m.error() is not None:
                        continue
                    read_to = max(read_to, m.offset() or 0)
                    if m.offset() not in wanted:
                        continue
                    rec = self.parse(SourceMessage.of(m))
                    if isinstance(rec, Rejected):
                        raise UnreadableRows(
                            f"{topic}:{partition} offset {m.offset()} is refused when read "
                            f"again: {rec.error}"
                        )
                    found[rec.offset] = LakeRow.of(rec)
        finally:
            consumer.close()
        missing = [o for o in offsets if o not in found]
        if missing:
            raise UnreadableRows(
                f"{topic}:{partition}: {len(missing)} buffered rows not read again from Kafka "
                f"(first offset {missing[0]}; read to {read_to} in at most {READ_AGAIN_S:.0f} s): "
                "bronze would miss them"
            )
        return [found[o] for o in offsets]

    def consumer_config(self) -> dict[str, object]:
        """The settings of the consumer that reads a partition's rows again."""
        return {
            "group.id": "tillflow-lake-resume",  # unused: nothing is committed
            "enable.auto.commit": False,
            "bootstrap.servers": ",".join(self.brokers),
            **read_ahead(self.read_ahead_kb),
        }

    def _consumer(self, topic: str, partition: int, start: int) -> Fetcher:
        consumer = Consumer(self.consumer_config())
        consumer.assign([TopicPartition(topic, partition, start)])
        return consumer
