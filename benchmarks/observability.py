"""Cost of the flows' metrics hooks -> benchmarks/results/observability.json.

Every message the flow reads passes ``FlowMetrics.on_parsed`` (counter, processing-lag
histogram, freshness gauge, offset) and every unique event ``on_unique`` (order revenue). In
the same run, over the same simulated messages:

- ``parse_events_per_s``: the flow's parse and route steps alone
  (``flows.parse.parse_message``, ``flows.steps.Routed.of``), the baseline;
- ``parse_and_hooks_events_per_s``: parse plus both hooks;
- ``hooks_us_per_event``: the hooks' added time per event; ``hooks_vs_parse`` the ratio of
  the two rates (1.0 = free).
- ``scrape_ms``: one ``/metrics`` exposition of the flow's registry with every series in use.
Each figure is the median of REPEATS runs.
"""

from __future__ import annotations

import time

import orjson
from prometheus_client import CollectorRegistry, generate_latest

from benchmarks.common import Mode, parse_mode, print_repeat, write_medians
from flows.metrics import FlowMetrics
from flows.parse import parse_message
from flows.records import Accepted
from flows.steps import Routed
from schemas.event_time import EventTimePolicy
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.shop import Shop

REPEATS = 5
MESSAGES = 100_000


def messages(count: int) -> list[tuple[str, int, int, bytes, bytes]]:
    shop = Shop(ShopConfig(seed=3, products=200, shoppers=2_000, sessions_per_day=50_000))
    out = []
    for offset, event in enumerate(shop.events(until=shop.start + 5 * 86_400.0)):
        out.append(
            (event.topic.name, offset % 3, offset, event.key.encode(), orjson.dumps(event.payload))
        )
        if len(out) >= count:
            break
    return out


def main(mode: Mode) -> None:
    topics = {t.name: t for t in INPUT_TOPICS}
    policy = EventTimePolicy()
    raw = messages(mode.size(MESSAGES, 2_000))
    repeats = mode.size(REPEATS, 1)
    runs: dict[str, list[float]] = {
        "parse_events_per_s": [],
        "parse_and_hooks_events_per_s": [],
        "hooks_us_per_event": [],
        "scrape_ms": [],
    }
    for repeat in range(repeats):
        started = time.perf_counter()
        for topic, partition, offset, key, value in raw:
            rec = parse_message(topics, topic, partition, offset, key, value, policy=policy)
            if isinstance(rec, Accepted):
                Routed.of(rec)
        base = time.perf_counter() - started

        metrics = FlowMetrics(CollectorRegistry())
        started = time.perf_counter()
        for topic, partition, offset, key, value in raw:
            rec = parse_message(topics, topic, partition, offset, key, value, policy=policy)
            metrics.on_parsed("metrics-parsed", rec)
            if isinstance(rec, Accepted):
                metrics.on_unique("metrics-unique", Routed.of(rec))
        hooked = time.perf_counter() - started

        started = time.perf_counter()
        generate_latest(metrics.registry)
        runs["scrape_ms"].append((time.perf_counter() - started) * 1000)
        runs["parse_events_per_s"].append(len(raw) / base)
        runs["parse_and_hooks_events_per_s"].append(len(raw) / hooked)
        runs["hooks_us_per_event"].append((hooked - base) / len(raw) * 1e6)
        print_repeat(repeat, repeats, runs)
    write_medians(
        "observability",
        runs,
        ("hooks_vs_parse", "parse_and_hooks_events_per_s", "parse_events_per_s"),
        {"messages": len(raw), "repeats": repeats},
        mode,
    )


if __name__ == "__main__":
    main(parse_mode(__doc__))
