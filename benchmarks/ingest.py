"""Ingestion benchmark -> benchmarks/results/ingest.json.

- ``simulator_events_per_s``: the whole simulator (generation + aiokafka, acks=all,
  idempotent) producing as fast as it can to the real broker.
- ``raw_producer_events_per_s``: a plain confluent-kafka producer (acks=all, idempotent)
  sending the same pre-generated events, in the same run: the baseline.
- ``produce_p99_ms`` / ``produce_p50_ms``: aiokafka send-to-ack latency at 2,000 events/s,
  next to ``raw_produce_p99_ms`` (confluent-kafka at the same rate).
- ``generate_events_per_s``: the shop alone, without Kafka.
Each figure is the median of REPEATS runs.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
from confluent_kafka import Producer

from benchmarks.common import Mode, parse_mode, percentile, print_repeat, write_medians
from infra.readiness import require_kafka, require_redis
from infra.stack.topics import delete_topics, ensure_topics
from ingest.producer import aiokafka_producer
from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from simulator.shop import Shop

EVENTS = 200_000
REPEATS = 3
LATENCY_RATE = 2_000
LATENCY_SECONDS = 8


def pregenerate(settings: Settings, n: int) -> list[tuple[str, bytes, bytes]]:
    shop = Shop(ShopConfig())
    out = []
    for event in shop.events():
        out.append((settings.topic(event.topic), event.key.encode(), orjson.dumps(event.payload)))
        if len(out) >= n:
            break
    return out


def generate_rate(n: int) -> float:
    shop = Shop(ShopConfig())
    started = time.perf_counter()
    count = 0
    for _ in shop.events():
        count += 1
        if count >= n:
            break
    return count / (time.perf_counter() - started)


def raw_producer_rate(settings: Settings, events: list[tuple[str, bytes, bytes]]) -> float:
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    started = time.perf_counter()
    for topic, key, value in events:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    return len(events) / (time.perf_counter() - started)


async def aiokafka_latencies(
    settings: Settings, events: list[tuple[str, bytes, bytes]]
) -> list[float]:
    producer = aiokafka_producer(settings, linger_ms=5)  # the API's producer (EventProducer)
    await producer.start()
    latencies: list[float] = []
    pending = []
    try:
        started = time.perf_counter()
        for i, (topic, key, value) in enumerate(events[: LATENCY_RATE * LATENCY_SECONDS]):
            ahead = i / LATENCY_RATE - (time.perf_counter() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
            sent_at = time.perf_counter()
            future = await producer.send(topic, value=value, key=key)
            future.add_done_callback(
                lambda _f, t=sent_at: latencies.append((time.perf_counter() - t) * 1000)
            )
            pending.append(future)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return latencies


def raw_latencies(settings: Settings, events: list[tuple[str, bytes, bytes]]) -> list[float]:
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
        }
    )
    latencies: list[float] = []
    topic, key, value = events[0]
    producer.produce(topic, value=value, key=key)  # warm up: connect and get a producer id
    producer.flush(30)
    started = time.perf_counter()
    for i, (topic, key, value) in enumerate(events[: LATENCY_RATE * LATENCY_SECONDS]):
        while (ahead := i / LATENCY_RATE - (time.perf_counter() - started)) > 0:
            producer.poll(min(ahead, 0.005))
        sent_at = time.perf_counter()

        def acked(_err: object, _msg: object, t: float = sent_at) -> None:
            latencies.append((time.perf_counter() - t) * 1000)

        producer.produce(topic, value=value, key=key, on_delivery=acked)
        producer.poll(0)
    producer.flush(30)
    return latencies


def main(mode: Mode) -> None:
    events_n, repeats = mode.size(EVENTS, 2_000), mode.size(REPEATS, 1)
    base = Settings(environment="test")
    require_kafka(base)
    require_redis(base)
    runs: dict[str, list[float]] = {
        k: []
        for k in (
            "simulator_events_per_s",
            "raw_producer_events_per_s",
            "generate_events_per_s",
            "produce_p50_ms",
            "produce_p99_ms",
            "raw_produce_p99_ms",
        )
    }
    for repeat in range(repeats):
        settings = base.model_copy(update={"topic_prefix": f"bench-{uuid.uuid4().hex[:6]}."})
        ensure_topics(settings, INPUT_TOPICS)
        try:
            events = pregenerate(settings, events_n)
            report = asyncio.run(
                run_shop(settings, ShopConfig(), RunOptions(max_events=events_n, batch=2_000))
            )
            runs["simulator_events_per_s"].append(report.events_per_s)
            runs["raw_producer_events_per_s"].append(raw_producer_rate(settings, events))
            runs["generate_events_per_s"].append(generate_rate(events_n))
            lat = asyncio.run(aiokafka_latencies(settings, events))
            runs["produce_p50_ms"].append(percentile(lat, 50))
            runs["produce_p99_ms"].append(percentile(lat, 99))
            runs["raw_produce_p99_ms"].append(percentile(raw_latencies(settings, events), 99))
        finally:
            delete_topics(settings, [settings.topic(t) for t in INPUT_TOPICS])
        print_repeat(repeat, repeats, runs)
    write_medians(
        "ingest",
        runs,
        ("simulator_vs_raw_producer", "simulator_events_per_s", "raw_producer_events_per_s"),
        {"repeats": repeats, "events": events_n},
        mode,
    )


if __name__ == "__main__":
    main(parse_mode(__doc__))
