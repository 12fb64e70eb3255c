"""Prometheus metrics of a flow process, its ``/metrics`` endpoint and its consumer lag.

Each flow process serves ``/metrics`` on ``TILLFLOW_FLOW_METRICS_PORT`` + its process index.
The dataflow reports through a few hooks (called for each message parsed by the ingest step,
for each unique event by the fan-out step, and by the sinks); the metric objects live in one
:class:`FlowMetrics` per process.

=============================================  =========  ===================  ==================
name                                           type       labels               meaning
=============================================  =========  ===================  ==================
``tillflow_flow_events_total``                 counter    topic                messages read
``tillflow_flow_dead_lettered_total``          counter    topic                invalid messages
``tillflow_flow_duplicate_events_total``       counter                         repeated event ids
``tillflow_flow_late_events_total``            counter                         late product signals
``tillflow_flow_processing_lag_seconds``       histogram  topic                now − event_time
``tillflow_flow_last_event_timestamp_seconds`` gauge      topic                newest event time
``tillflow_flow_consumer_lag_messages``        gauge      topic, partition     high-water − next
``tillflow_flow_consumed_offset``              gauge      topic, partition     last offset read
``tillflow_flow_learner_mean_absolute_error``  gauge      model                mean learner error
``tillflow_flow_drift_detections_total``       counter    model                ADWIN detections
``tillflow_flow_price_changes_total``          counter    direction            up or down
``tillflow_flow_price_change_ratio``           histogram                       abs(new/old − 1)
``tillflow_flow_price_last_change_timestamp``  gauge                           wall time of the
``_seconds``                                                                   last publication
``tillflow_flow_revenue_total``                counter                         order revenue
``tillflow_flow_units_sold_total``             counter                         units ordered
``tillflow_flow_consumer_errors_total``       counter    code                 Kafka consumer
                                                                               errors (not fatal)
``tillflow_flow_restarts``                     gauge                           restarts by the
                                                                               supervisor so far
``tillflow_flow_sink_blocked``                 gauge      step                 1 while a sink
                                                                               waits for a service
``tillflow_flow_sink_retries_total``           counter    step                 failed sink writes
``tillflow_flow_sink_set_aside_total``         counter    step                 values a sink could
                                                                               not encode
=============================================  =========  ===================  ==================
"""

from __future__ import annotations

import math
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from flows.records import Accepted, FeatureRow, Rejected
from flows.supervise import env_restarts
from observability.exposition import MetricsServer, serve_metrics
from observability.logs import LogBudget
from online_models.pricer import PriceChange
from schemas.settings import Settings
from schemas.topics import LAKE_TOPICS, by_name

if TYPE_CHECKING:
    from flows.steps import Routed

SCRAPE_BUDGET_S = 3.0  # the broker time one scrape may spend on consumer lag

LAG_BUCKETS = (
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    21_600.0,
    86_400.0,
)
CHANGE_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25)
MODELS = ("elasticity",)
log = structlog.get_logger(__name__)


# Dead letters keep their reason in the dead-letter topic; the log shows a sample of them.
DEAD_LETTER_LINES_PER_S = 20


class FlowMetrics:
    """The metric objects of one flow process, and what each hook does to them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.duplicates = Counter(
            "tillflow_flow_duplicate_events",
            "Events dropped as repeats of an event_id.",
            registry=r,
        )
        self.unknown_products = Counter(
            "tillflow_flow_unknown_product_events",
            "Events naming a product missing from the catalogue (kept in the lake; never "
            "priced, never in popularity lists or recommendations).",
            registry=r,
        )
        self.late = Counter(
            "tillflow_flow_late_events",
            "Product signals more than 5 min older than their product's newest event.",
            registry=r,
        )
        self.learner_error = Gauge(
            "tillflow_flow_learner_mean_absolute_error",
            "Mean over products of each online learner's recent absolute error (ADWIN mean).",
            ["model"],
            registry=r,
        )
        self.drift = Counter(
            "tillflow_flow_drift_detections",
            "Drift detections on learner error.",
            ["model"],
            registry=r,
        )
        self.price_changes = Counter(
            "tillflow_flow_price_changes", "Published price changes.", ["direction"], registry=r
        )
        self.price_change_ratio = Histogram(
            "tillflow_flow_price_change_ratio",
            "Size of published changes, abs(new/old - 1).",
            buckets=CHANGE_BUCKETS,
            registry=r,
        )
        self.last_price_change = Gauge(
            "tillflow_flow_price_last_change_timestamp_seconds",
            "Wall time of the last published price change, unix time.",
            registry=r,
        )
        self.revenue = Counter(
            "tillflow_flow_revenue", "Revenue of unique orders (currency).", registry=r
        )
        self.units = Counter("tillflow_flow_units_sold", "Units in unique orders.", registry=r)
        self.restarts = Gauge(
            "tillflow_flow_restarts",
            "Times the supervisor restarted this flow after a process died.",
            registry=r,
        )
        self.consumer_errors = Counter(
            "tillflow_flow_consumer_errors",
            "Kafka consumer errors, logged and ridden out.",
            ["code"],
            registry=r,
        )
        self.sink_blocked = Gauge(
            "tillflow_flow_sink_blocked",
            "1 while the sink waits for its service (Redis, Kafka) to take a write.",
            ["step"],
            registry=r,
        )
        self.sink_retries = Counter(
            "tillflow_flow_sink_retries",
            "Sink writes that failed and were retried.",
            ["step"],
            registry=r,
        )
        self.sink_set_aside = Counter(
            "tillflow_flow_sink_set_aside",
            "Values a sink could not encode and left out.",
            ["step"],
            registry=r,
        )
        self.messages = MessageStats([topic.name for topic in LAKE_TOPICS])
        registry.register(self.messages)
        self.offsets = self.messages.offsets
        self._late_seen: dict[str, int] = {}
        self._errors: dict[str, float] = {}
        self._dead_letter_lines = LogBudget(per_s=DEAD_LETTER_LINES_PER_S)
        self._declare()

    def _declare(self) -> None:
        """Create every labelled series at zero, so dashboards and alerts see them at once."""
        for model in MODELS:
            self.drift.labels(model)
        for direction in ("up", "down"):
            self.price_changes.labels(direction)

    # -- hooks ---------------------------------------------------------------------------
    def on_parsed(self, _step_id: str, item: Accepted | Rejected) -> None:
        """After parsing: count, measure lag and freshness, remember the offset read."""
        stats, topic = self.messages, item.topic
        stats.offsets[(topic, item.partition)] = item.offset
        stats.events[topic] += 1
        if isinstance(item, Rejected):
            stats.dead_lettered[topic] += 1
            left_out = self._dead_letter_lines.take(time.monotonic())
            if left_out is not None:
                log.warning(
                    "dead-lettered",
                    topic=item.topic,
                    partition=item.partition,
                    offset=item.offset,
                    error=item.error[:200],
                    correlation_id=item.correlation_id,
                    lines_left_out=left_out,
                )
            return
        stats.observe_lag(topic, time.time() - item.t)
        if item.t > stats.newest.get(topic, -math.inf):
            stats.newest[topic] = item.t
        if item.correlation_id is not None:
            log.debug(
                "event read",
                topic=item.topic,
                partition=item.partition,
                offset=item.offset,
                event_id=item.event.event_id,
                correlation_id=item.correlation_id,
            )

    def on_consumer_error(self, err: KafkaError) -> None:
        """librdkafka reports an error (a broker away, a partition failing); it retries."""
        self.consumer_errors.labels(err.name()).inc()
        log.warning(
            "kafka consumer error",
            code=err.name(),
            error=err.str(),
            retriable=err.retriable(),
            fatal=err.fatal(),
        )

    def on_unique(self, _step_id: str, item: Routed) -> None:
        """After dedupe: business totals of orders (their sale signals)."""
        for _sku, (_, signal) in item.sku:
            if signal.kind == "sale":
                self.units.inc(signal.quantity)
                self.revenue.inc(signal.price * signal.quantity)

    def on_features(self, rows: Iterable[FeatureRow]) -> None:
        """Products' features were written: late signals and learner error (the mean over
        products, set once for the rows)."""
        learned = False
        for row in rows:
            if row.entity != "sku":
                continue
            key = row.key
            late = int(row.values.get("late_events", 0))
            before = self._late_seen.get(key, 0)
            if late > before:
                self.late.inc(late - before)
            self._late_seen[key] = late
            if row.model_error is not None:
                self._errors[key] = row.model_error
                learned = True
        if learned:
            self.learner_error.labels("elasticity").set(
                sum(self._errors.values()) / len(self._errors)
            )

    def on_price_changes(self, changes: Sequence[PriceChange]) -> None:
        for change in changes:
            up = change.price >= change.previous_price
            self.price_changes.labels("up" if up else "down").inc()
            if change.previous_price > 0:
                self.price_change_ratio.observe(abs(change.price / change.previous_price - 1))
        if changes:
            self.last_price_change.set(time.time())

    def on_stats(self, totals: Mapping[str, int]) -> None:
        """The counters the stats sink adds to Redis (duplicates, unknown products, drift
        detections)."""
        self.duplicates.inc(totals.get("duplicates", 0))
        self.unknown_products.inc(totals.get("unknown_products", 0))
        self.drift.labels("elasticity").inc(totals.get("drift_detections", 0))


class MessageStats(Collector):
    """The per-message figures, kept as plain numbers by the worker and turned into metric
    families at each scrape: prometheus_client's locked objects cost more per message than
    most of the flow's own steps (``python -m benchmarks.observability``).

    >>> stats = MessageStats(["orders"])
    >>> stats.observe_lag("orders", 0.3)
    >>> stats.lag_buckets["orders"][LAG_BUCKETS.index(0.5)]
    1
    """

    def __init__(self, topics: Sequence[str]) -> None:
        self.events = dict.fromkeys(topics, 0)
        self.dead_lettered = dict.fromkeys(topics, 0)
        self.lag_buckets = {t: [0] * (len(LAG_BUCKETS) + 1) for t in topics}  # last: +Inf
        self.lag_sum = dict.fromkeys(topics, 0.0)
        self.newest: dict[str, float] = {}  # a topic's freshness series starts with its data
        self.offsets: dict[tuple[str, int], int] = {}

    def observe_lag(self, topic: str, seconds: float) -> None:
        self.lag_buckets[topic][bisect_left(LAG_BUCKETS, seconds)] += 1
        self.lag_sum[topic] += seconds

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "tillflow_flow_events", "Input messages read.", labels=["topic"]
        )
        dead = CounterMetricFamily(
            "tillflow_flow_dead_lettered",
            "Invalid messages sent to the dead-letter topic.",
            labels=["topic"],
        )
        lag = HistogramMetricFamily(
            "tillflow_flow_processing_lag_seconds",
            "Wall time when parsed minus event time.",
            labels=["topic"],
        )
        newest = GaugeMetricFamily(
            "tillflow_flow_last_event_timestamp_seconds",
            "Newest event time read, unix time.",
            labels=["topic"],
        )
        for topic in self.events:
            events.add_metric([topic], self.events[topic])
            dead.add_metric([topic], self.dead_lettered[topic])
            counts = list(self.lag_buckets[topic])
            cumulative = list(accumulate(counts))
            bounds = [*(str(float(b)) for b in LAG_BUCKETS), "+Inf"]
            lag.add_metric(
                [topic], list(zip(bounds, cumulative, strict=True)), sum_value=self.lag_sum[topic]
            )
        for topic, t in self.newest.copy().items():
            newest.add_metric([topic], t)
        yield from (events, dead, lag, newest)


class ConsumerLagCollector(Collector):
    """``tillflow_flow_consumer_lag_messages`` and ``..._consumed_offset`` per partition read.

    At each scrape the offsets this process consumed are compared with the broker's
    high-water marks (one metadata client per process). A scrape asks the broker for at most
    ``SCRAPE_BUDGET_S`` and stops asking at its first failure, so that with the broker away
    the other figures are still served within Prometheus' scrape timeout (10 s), lag aside.
    """

    def __init__(self, settings: Settings, offsets: dict[tuple[str, int], int]) -> None:
        self.settings = settings
        self.offsets = offsets
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()

    def _client(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self.settings.kafka_bootstrap,
                    "log_level": 0,
                    "group.id": "tillflow-lag-metrics",
                    "enable.auto.commit": False,
                }
            )
        return self._consumer

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "tillflow_flow_consumer_lag_messages",
            "Messages in the partition after the last one this process read.",
            labels=["topic", "partition"],
        )
        consumed = GaugeMetricFamily(
            "tillflow_flow_consumed_offset",
            "Offset of the last message read.",
            labels=["topic", "partition"],
        )
        with self._lock:
            deadline = time.monotonic() + SCRAPE_BUDGET_S
            broker_away = False
            for (topic, partition), offset in sorted(self.offsets.copy().items()):
                labels = [topic, str(partition)]
                consumed.add_metric(labels, float(offset))
                left = deadline - time.monotonic()
                if broker_away or left <= 0:
                    continue  # the rest of this scrape: offsets only, no lag
                name = self.settings.topic(by_name(topic))
                try:
                    _low, high = self._client().get_watermark_offsets(
                        TopicPartition(name, partition), timeout=left
                    )
                except KafkaException as exc:
                    log.warning(
                        "no high-water mark", topic=name, partition=partition, error=str(exc)
                    )
                    broker_away = True
                    continue
                lag.add_metric(labels, float(max(0, high - offset - 1)))
        yield lag
        yield consumed


_process_metrics: FlowMetrics | None = None


def flow_metrics() -> FlowMetrics:
    """This process's metrics (created on first use, in the default registry)."""
    global _process_metrics
    if _process_metrics is None:
        _process_metrics = FlowMetrics(REGISTRY)
    return _process_metrics


def process_index(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """The Bytewax process id of this process (``-i``/``--process-id`` or its env variable).

    >>> process_index(["bytewax.run", "f:flow", "-i", "2", "-a", "x"], {})
    2
    >>> process_index(["bytewax.run", "f:flow", "--process-id=1"], {})
    1
    >>> process_index(["bytewax.run", "f:flow"], {"BYTEWAX_PROCESS_ID": "3"})
    3
    >>> process_index(["bytewax.run", "f:flow"], {})
    0
    """
    given = cli_option(argv, "-i", "--process-id")
    return int(given if given is not None else env.get("BYTEWAX_PROCESS_ID", "0"))


def cli_option(argv: Sequence[str], short: str, long: str) -> str | None:
    """The value of a ``bytewax.run`` option (``short v``, ``long v`` or ``long=v``), or None.

    >>> cli_option(["f:flow", "-a", "h:1;h:2"], "-a", "--addresses")
    'h:1;h:2'
    >>> cli_option(["f:flow", "--addresses=h:1"], "-a", "--addresses"), cli_option([], "-a", "--a")
    ('h:1', None)
    """
    for i, arg in enumerate(argv):
        if arg in (short, long) and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"{long}="):
            return arg.split("=", 1)[1]
    return None


def start_flow_metrics(settings: Settings, env: Mapping[str, str]) -> MetricsServer | None:
    """Serve this process's ``/metrics`` (port = base + process index; base 0 turns it off)."""
    if settings.flow_metrics_port == 0:
        return None
    metrics = flow_metrics()
    metrics.restarts.set(env_restarts(env))
    REGISTRY.register(ConsumerLagCollector(settings, metrics.offsets))
    port = settings.flow_metrics_port + process_index(sys.argv, env)
    return serve_metrics(settings.metrics_host, port, REGISTRY)
