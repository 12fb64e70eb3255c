"""The flow's Kafka input: consumer errors are never fatal, and a worker's partitions are
merged in timestamp order.

**Errors.** Bytewax's ``KafkaSource`` either raises on a consumer error (its default: one
broker restart ends the flow) or emits ``KafkaError`` items among the messages and moves its
resume offset to the errored message's offset, which librdkafka sets to -1001 for errors
that belong to no message. Here errors never enter the dataflow
(``tillflow_flow_consumer_errors_total{code}`` and a log line instead), and each partition's
snapshot is always the offset after the last of its messages handed to the flow, so a
restart resumes exactly there. librdkafka itself reconnects and refetches.

**Merged.** Each partition has its own consumer, and each consumer fetches as fast as its
broker answers. Read one partition at a time, as Bytewax reads partitions, a backlog in the
topics (a replay, a restart after an outage) reaches the flow a partition's batch at a time:
days of one partition's events before the first hour of another's, and a product's learner,
which counts the time between sales, sees time run backwards. So, as Kafka Streams does within
a task, the partitions a worker reads are merged by message timestamp (the time the shop
produced each event): a merge round takes from every partition the messages up to the newest
time all partitions with messages waiting have reached. A partition with nothing waiting
holds nobody back (its next fetch may bring older messages: the disorder is at most one
fetch), except before its first fetch has answered, for at most ``grace_s``. Across workers
partitions are not merged (each merges its own).

**Each partition hands over its own messages.** The worker's first partition in Bytewax's
order (the smallest name) runs each round when it is polled; every partition then hands
over its own share of the round when Bytewax polls it, right after in the same activation,
and the downstream steps order what they receive by event time. The next round waits until
every share is handed over. A partition's resume offset therefore moves only with what that
partition gave the flow, which is what Bytewax's recovery needs: it closes the epochs of a
worker's partitions each on its own timer and snapshots each partition at the end of its own
epoch, so one partition handing over another's messages could do so in an epoch after the one
in which the other snapshotted the offset past them, and a restart from that epoch would skip
them (seen as a few hundred events missing from the features after a restart, though their
bronze rows, written before the kill, were all there).

**Partition time.** Within a partition messages always leave in offset order, and the time a
message is merged at is its *partition time*, the newest timestamp of its partition so far
(Kafka Streams' name), not its own timestamp. Timestamps are set by producers, so they need
not grow along a partition (two tills with different clocks, a batch the producer retried
behind a later one); merged at their own timestamps, a partition whose last fetched message is
older than its first would hold every partition back for good. A time that only grows means
the partition that sets the limit hands over all it fetched, so every merge step moves on. A
timestamp more than ``max_ahead_s`` ahead of the wall clock (a producer's broken clock, or a
hostile one) does not move its partition's time: it would hold that partition's later
messages behind every other partition's backlog.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol

from bytewax.connectors.kafka import KafkaSource
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_NOT_AVAILABLE, Consumer, TopicPartition
from confluent_kafka import KafkaError as ConfluentError
from confluent_kafka import Message as RawMessage

# How long the merge waits before fetching again after a round that found nothing waiting
# in any of its partitions (fetches themselves never wait: see Merge); each further empty
# round in a row doubles the wait, up to IDLE_WAIT_MAX.
IDLE_WAIT = timedelta(milliseconds=5)
IDLE_WAIT_MAX = timedelta(milliseconds=50)
IDLE_DOUBLINGS = math.ceil(math.log2(IDLE_WAIT_MAX / IDLE_WAIT))

# How soon librdkafka fetches a partition again once its read-ahead was full
# (``fetch.queue.backoff.ms``, a second by default): a reader that drains a bounded read-ahead
# in less than that would wait out the rest with nothing to read.
REFETCH_MS = 10


def read_ahead(kb: int) -> dict[str, int]:
    """A consumer's settings bounding what it fetches ahead of its reader to ``kb`` KiB a
    partition (one more fetch, ``max.partition.fetch.bytes``, may land on top). librdkafka's
    defaults fetch ahead until 100,000 messages or 64 MB wait a partition, so replaying a
    backlog held it in the process's memory, partition by partition (docs/flows.md)."""
    return {"queued.max.messages.kbytes": kb, "fetch.queue.backoff.ms": REFETCH_MS}


class SourceMessage(NamedTuple):
    """A Kafka message as the flow's input hands it over: the fields of Bytewax's
    ``KafkaSourceMessage``, in a tuple. One is made for every message read, and a tuple is
    built without running Python code per field (the frozen dataclass sets each one through
    ``object.__setattr__``, ~1 % of a flow process's CPU)."""

    key: bytes | None
    value: bytes | None
    topic: str | None = None
    headers: Sequence[tuple[str, bytes]] = ()
    latency: float | None = None
    offset: int | None = None
    partition: int | None = None
    timestamp: tuple[int, int] | None = None

    @classmethod
    def of(cls, m: RawMessage) -> SourceMessage:
        """A message a consumer fetched (without an error)."""
        return cls(
            m.key(),
            m.value(),
            m.topic(),
            m.headers() or (),  # type: ignore[arg-type]  # bytes values here
            m.latency(),
            m.offset(),
            m.partition(),
            m.timestamp(),
        )


class Fetcher(Protocol):
    """What a partition needs of its consumer (``confluent_kafka.Consumer``)."""

    def consume(self, num_messages: int, timeout: float) -> list[RawMessage]: ...

    def close(self) -> None: ...


def _timestamp(m: RawMessage) -> float:
    kind, ms = m.timestamp()
    return -math.inf if kind == TIMESTAMP_NOT_AVAILABLE else float(ms)


class Partition:
    """One Kafka partition of a merge: its consumer, what it fetched (each message with its
    partition time), where to resume."""

    def __init__(self, name: str, consumer: Fetcher, resume: int, born: float) -> None:
        self.name = name
        self.consumer = consumer
        self.resume = resume
        self.born = born
        self.fetched: deque[tuple[float, int, SourceMessage]] = deque()
        self.time = -math.inf  # the newest timestamp so far, ignoring those too far ahead
        self.answered = False  # a fetch has brought a message or the partition's end
        self.caught_up = False  # the last fetch reached the partition's end
        self.share: list[SourceMessage] = []  # of the last round, not handed over yet
        self.share_end = resume  # the offset after the share

    def fetch(
        self, batch_size: int, on_error: Callable[[ConfluentError], None], ceiling: float
    ) -> None:
        """Fetch what the consumer has; a timestamp above ``ceiling`` (ms) keeps the time."""
        got = self.consumer.consume(batch_size, 0)
        for m in got:
            error = m.error()
            if error is not None:
                if error.code() == ConfluentError._PARTITION_EOF:
                    self.caught_up = self.answered = True
                else:
                    on_error(error)
                continue
            self.caught_up, self.answered = False, True
            offset = m.offset() or 0
            message = SourceMessage.of(m)
            ts = _timestamp(m)
            if self.time < ts <= ceiling:
                self.time = ts
            self.fetched.append((self.time, offset, message))


class Merge:
    """The partitions one worker reads, merged in rounds: each round's messages are handed over
    by the partitions they came from (:class:`Merged`), before the next round.

    A fetch takes what the partition's consumer has already received (librdkafka fetches in
    its own threads) and never waits: waiting even a millisecond on each partition with
    nothing new (the quiet topics, the caught-up partitions) would sleep ~15 ms a round with
    15 partitions while messages wait in the others. Only a round that hands over nothing at
    all makes the worker wait, IDLE_WAIT, before the next (``idle_rounds``); each further empty
    round in a row doubles the wait up to IDLE_WAIT_MAX. Every round is a step of the whole
    dataflow (Bytewax activates the worker for it) and a fetch from every partition, so a
    quiet flow polling every 5 ms spends a few per cent of a core on nothing; backing off to
    IDLE_WAIT_MAX cuts that, and costs the first message after a quiet spell at most
    IDLE_WAIT_MAX of extra wait. A round that hands anything over starts again at IDLE_WAIT,
    so a live load's short gaps wait as before.
    """

    def __init__(
        self,
        *,
        tail: bool,
        batch_size: int,
        grace_s: float,
        on_error: Callable[[ConfluentError], None],
        max_ahead_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.tail = tail
        self.batch_size = batch_size
        self.grace_s = grace_s
        self.on_error = on_error
        self.max_ahead_s = max_ahead_s
        self.clock = clock
        self.wall = wall
        self.parts: dict[str, Partition] = {}
        self.leader: str | None = None  # the partition that runs the rounds
        self.idle_rounds = 0  # rounds in a row that handed over nothing
        self.waiting = 0  # partitions whose share of the last round is not handed over yet

    def add(self, name: str, consumer: Fetcher, resume: int) -> Partition:
        part = Partition(name, consumer, resume, self.clock())
        self.parts[name] = part
        self.leader = min(self.parts)  # Bytewax polls a worker's partitions in name order
        return part

    def done(self, name: str) -> bool:
        """Whether ``name`` has nothing more to hand over (``tail=False``: at its end)."""
        part = self.parts[name]
        return not self.tail and part.caught_up and not part.fetched and not part.share

    def next_batch(self, name: str) -> list[SourceMessage]:
        """What partition ``name`` hands over now: its share of the last round, which the
        leader runs first once every share of the round before has been handed over."""
        if name == self.leader and not self.waiting:
            self._round()
        part = self.parts[name]
        share = part.share
        if share:
            part.share = []
            part.resume = part.share_end
            self.waiting -= 1
        return share

    def _round(self) -> None:
        """Give each partition its share: its messages up to the newest partition time all
        partitions with messages waiting have reached."""
        now = self.clock()
        ceiling = (self.wall() + self.max_ahead_s) * 1000.0
        limit = math.inf
        for part in self.parts.values():
            if not part.fetched and not self.done(part.name):
                part.fetch(self.batch_size, self.on_error, ceiling)
            if part.fetched:
                limit = min(limit, part.fetched[-1][0])
            elif not part.answered and now < part.born + self.grace_s:
                limit = -math.inf  # its first fetch may still bring the oldest messages
        shares = 0
        for part in self.parts.values():
            fetched = part.fetched
            if not fetched or fetched[0][0] > limit:
                continue
            share = []
            while fetched and fetched[0][0] <= limit:
                _, offset, message = fetched.popleft()
                share.append(message)
            part.share, part.share_end = share, offset + 1
            shares += 1
        self.waiting = shares
        self.idle_rounds = 0 if shares else self.idle_rounds + 1

    def awake(self) -> datetime | None:
        """When the partitions may be polled again (None: at once): at once while a share
        waits or after a round that gave some; after a round that found nothing, IDLE_WAIT
        doubled for each earlier empty round in a row (at most IDLE_WAIT_MAX)."""
        if self.waiting or not self.idle_rounds:
            return None
        doublings = min(self.idle_rounds - 1, IDLE_DOUBLINGS)
        return datetime.now(UTC) + min(IDLE_WAIT * (1 << doublings), IDLE_WAIT_MAX)

    def all_done(self) -> bool:
        return all(self.done(name) for name in self.parts)

    def remove(self, name: str) -> None:
        part = self.parts.pop(name)
        part.consumer.close()
        self.leader = min(self.parts) if self.parts else None


class TolerantKafkaSource(FixedPartitionedSource[SourceMessage, int | None]):
    """The partitions of ``topics``, merged per worker; consumer errors go to ``on_error``;
    ``max_ahead_s``: how far ahead of the wall clock a timestamp may move a partition's time."""

    def __init__(
        self,
        brokers: list[str],
        topics: list[str],
        *,
        tail: bool,
        batch_size: int,
        on_error: Callable[[ConfluentError], None],
        max_ahead_s: float,
        read_ahead_kb: int,
        grace_s: float = 5.0,
    ) -> None:
        self.brokers = brokers
        self.topics = topics
        self.tail = tail
        self.batch_size = batch_size
        self.on_error = on_error
        self.max_ahead_s = max_ahead_s
        self.grace_s = grace_s
        self.read_ahead_kb = read_ahead_kb
        self.lister = KafkaSource(brokers, topics)
        self._merges: dict[int, Merge] = {}  # per worker thread
        self._lock = threading.Lock()

    def list_parts(self) -> list[str]:
        return self.lister.list_parts()

    def consumer_config(self) -> dict[str, object]:
        """The settings of each partition's consumer."""
        return {
            "group.id": "tillflow-flow",  # unused: offsets live in the recovery store
            "enable.auto.commit": False,
            "bootstrap.servers": ",".join(self.brokers),
            "enable.partition.eof": True,  # "caught up" is how a partition stops waiting
            "error_cb": self.on_error,  # client-wide errors (all brokers down, transport)
            **read_ahead(self.read_ahead_kb),
        }

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> Merged:
        index, topic = for_part.split("-", 1)
        start = OFFSET_BEGINNING if resume_state is None else resume_state
        consumer = Consumer(self.consumer_config())
        consumer.assign([TopicPartition(topic, int(index), start)])
        with self._lock:
            merge = self._merges.setdefault(
                threading.get_ident(),
                Merge(
                    tail=self.tail,
                    batch_size=self.batch_size,
                    grace_s=self.grace_s,
                    on_error=self.on_error,
                    max_ahead_s=self.max_ahead_s,
                ),
            )
        return Merged(merge, merge.add(for_part, consumer, start))


class Merged(StatefulSourcePartition[SourceMessage, int | None]):
    """One partition of a worker's merge, as Bytewax sees it: it hands over its own share of
    each round, and its snapshot is the offset after the last message it handed over."""

    def __init__(self, merge: Merge, part: Partition) -> None:
        self.merge = merge
        self.part = part
        self.name = part.name

    def next_batch(self) -> list[SourceMessage]:
        merge = self.merge
        if self.name == merge.leader:
            if merge.all_done():  # it runs the rounds until every partition has ended
                raise StopIteration
        elif merge.done(self.name):
            raise StopIteration
        return merge.next_batch(self.name)

    def next_awake(self) -> datetime | None:
        return self.merge.awake()  # every partition is polled with the leader

    def snapshot(self) -> int | None:
        return self.part.resume

    def close(self) -> None:
        self.merge.remove(self.name)
