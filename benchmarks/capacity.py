"""The capacity model of docs/scaling.md, computed from the recorded benchmark figures.

The model turns per-core figures measured on the reference machine into counts of
partitions, flow processes, Redis shards, API workers and batch cores for shops of 1k, 10k
and 100k events/s with 10 million shoppers. It lives in code so that the table in
docs/scaling.md is re-derived whenever a benchmark is re-recorded (``benchmarks.report``
rewrites it) instead of trusting numbers copied by hand. The assumptions below are the
ones docs/scaling.md states; change them there and here together.

    python -m benchmarks.capacity      # print the table from benchmarks/results/*.json
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS

SCALING_DOC = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"
TABLE_START = "<!-- capacity-table:start -->"
TABLE_END = "<!-- capacity-table:end -->"

SHOPS = (1_000, 10_000, 100_000)
SHOPPERS = 10_000_000
SECONDS_PER_DAY = 86_400

FLOW_HEADROOM = 0.8  # a process planned at 80 % of a core: freshness needs room for pauses
API_HEADROOM = 0.7  # 30 % left for the p99
PRICE_SHARE = 0.5  # one storefront read per event, half prices, half lists
PRICE_CACHE_HITS = 0.5  # the in-process cache answers about half of the price reads
FLOW_COMMANDS_PER_EVENT = 3  # features, lists or price state, pub/sub; pipelined per batch
COMMANDS_PER_MISS = 2
SHARD_COMMANDS = 250_000  # half of a pipelined single-threaded Redis
SHARD_MEMORY_GB = 8
MIN_PARTITIONS = 3
BATCH_WINDOW_S = 7_200
WEBSOCKET_CLIENTS_PER_PROCESS = 1_000


@dataclass(frozen=True)
class Inputs:
    """The measured figures the model uses, each named by its benchmark key."""

    flow_cpu_us_per_event: float  # stream.freshness_cpu_us_per_event
    price_hits_per_worker: float  # serving.prices_max_rps (saturated: nearly every read a hit)
    price_miss_cpu_ms: float  # serving.prices_nocache_cpu_ms (every read a miss, paced)
    lists_per_worker: float  # serving.recs_max_rps
    redis_kb_per_shopper: float  # soak.redis_used_mb / soak.distinct_shoppers
    duckdb_cpu_s_per_m_events: float  # batch.pipeline_cpu_seconds
    spark_core_s_per_m_events: float  # batch.spark_pipeline_seconds_1m_events x its cores

    @property
    def flow_events_per_process(self) -> float:
        return FLOW_HEADROOM * 1e6 / self.flow_cpu_us_per_event

    @property
    def prices_per_worker(self) -> float:
        """Prices a worker serves when the cache answers PRICE_CACHE_HITS of them."""
        hit_s = 1 / self.price_hits_per_worker
        miss_s = self.price_miss_cpu_ms / 1e3
        return 1 / (PRICE_CACHE_HITS * hit_s + (1 - PRICE_CACHE_HITS) * miss_s)

    @property
    def reads_per_worker(self) -> float:
        """Reads a worker serves at the mix of prices and lists, before headroom."""
        return 1 / (
            PRICE_SHARE / self.prices_per_worker + (1 - PRICE_SHARE) / self.lists_per_worker
        )


@dataclass(frozen=True)
class Plan:
    events_per_s: int
    partitions: int
    flow_processes: int
    redis_commands_per_s: float
    redis_memory_gb: float
    redis_shards: int
    api_workers: int
    duckdb_cpu_hours_per_day: float
    spark_cores: int

    @property
    def batch_on_one_machine(self) -> bool:
        """DuckDB suffices while a day's batch fits the window on one 8-core machine."""
        return self.duckdb_cpu_hours_per_day * 3_600 <= 8 * BATCH_WINDOW_S

    @property
    def bottleneck(self) -> str:
        """The always-on part that needs the most cores (a Redis shard is one core).

        The batch is left out: its cores run two hours a day, the others all day.
        """
        cores = {
            "API workers": self.api_workers,
            "flow processes": self.flow_processes,
            "Redis shards": self.redis_shards,
        }
        return max(cores, key=lambda name: cores[name])


def plan(inputs: Inputs, events_per_s: int, shoppers: int = SHOPPERS) -> Plan:
    flow = math.ceil(events_per_s / inputs.flow_events_per_process)
    price_misses = events_per_s * PRICE_SHARE * (1 - PRICE_CACHE_HITS)
    list_reads = events_per_s * (1 - PRICE_SHARE)
    commands = FLOW_COMMANDS_PER_EVENT * events_per_s + COMMANDS_PER_MISS * (
        price_misses + list_reads
    )
    memory_gb = shoppers * inputs.redis_kb_per_shopper / 1e6
    events_per_day_m = events_per_s * SECONDS_PER_DAY / 1e6
    return Plan(
        events_per_s=events_per_s,
        # Twice the processes: room to double them before the topic grows (that re-maps keys).
        partitions=max(MIN_PARTITIONS, 2 * flow),
        flow_processes=flow,
        redis_commands_per_s=commands,
        redis_memory_gb=memory_gb,
        redis_shards=max(
            math.ceil(commands / SHARD_COMMANDS), math.ceil(memory_gb / SHARD_MEMORY_GB)
        ),
        api_workers=math.ceil(events_per_s / (API_HEADROOM * inputs.reads_per_worker)),
        duckdb_cpu_hours_per_day=events_per_day_m * inputs.duckdb_cpu_s_per_m_events / 3_600,
        spark_cores=math.ceil(events_per_day_m * inputs.spark_core_s_per_m_events / BATCH_WINDOW_S),
    )


def load_inputs(results: Path = RESULTS) -> Inputs:
    def read(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((results / f"{name}.json").read_text())
        return data

    stream, serving, soak, batch = (read(name) for name in ("stream", "serving", "soak", "batch"))
    redis_mb = soak["redis_used_mb"]
    redis_mb = max(redis_mb) if isinstance(redis_mb, list) else redis_mb
    return Inputs(
        flow_cpu_us_per_event=stream["freshness_cpu_us_per_event"],
        price_hits_per_worker=serving["prices_max_rps"],
        price_miss_cpu_ms=serving["prices_nocache_cpu_ms"],
        lists_per_worker=serving["recs_max_rps"],
        redis_kb_per_shopper=redis_mb * 1e3 / soak["distinct_shoppers"],
        duckdb_cpu_s_per_m_events=batch["pipeline_cpu_seconds"],
        spark_core_s_per_m_events=batch["spark_pipeline_seconds_1m_events"] * batch["meta"]["cpus"],
    )


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _batch(plan_: Plan) -> str:
    duckdb = f"{plan_.duckdb_cpu_hours_per_day:,.1f} CPU-h on DuckDB"
    if plan_.batch_on_one_machine:
        return f"DuckDB, one machine ({duckdb})"
    return f"{plan_.spark_cores:,} Spark executor cores ({duckdb})"


def render_table(inputs: Inputs) -> str:
    plans = [plan(inputs, rate) for rate in SHOPS]
    rows = [
        ("events per day", [f"{p.events_per_s * SECONDS_PER_DAY / 1e6:,.0f} M" for p in plans]),
        ("input partitions per topic", [_count(p.partitions) for p in plans]),
        ("flow processes (one core each)", [_count(p.flow_processes) for p in plans]),
        (
            "Redis shards (commands/s; memory)",
            [
                f"{p.redis_shards} ({p.redis_commands_per_s / 1e3:,.1f}k/s; "
                f"{p.redis_memory_gb:.1f} GB)"
                for p in plans
            ],
        ),
        ("API workers (one core each)", [_count(p.api_workers) for p in plans]),
        ("daily batch in 2 h", [_batch(p) for p in plans]),
        ("bottleneck (most cores, always on)", [p.bottleneck for p in plans]),
    ]
    head = "| shop | " + " | ".join(f"{rate // 1000}k events/s" for rate in SHOPS) + " |"
    lines = [head, "|---|" + "---:|" * len(SHOPS)]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    lines.append("")
    lines.append(
        f"Inputs: {inputs.flow_cpu_us_per_event:.0f} µs of flow CPU an event "
        f"({inputs.flow_events_per_process:,.0f} events/s planned per process); "
        f"{inputs.price_hits_per_worker:,.0f} cached prices/s, "
        f"{inputs.price_miss_cpu_ms:.2f} ms a price missing the cache "
        f"({inputs.prices_per_worker:,.0f} prices/s at half missing) and "
        f"{inputs.lists_per_worker:,.0f} lists/s per API worker "
        f"({API_HEADROOM * inputs.reads_per_worker:,.0f} reads/s planned at half each); "
        f"{inputs.redis_kb_per_shopper:.2f} KB of Redis a shopper; "
        f"{inputs.duckdb_cpu_s_per_m_events:.1f} DuckDB CPU-s and "
        f"{inputs.spark_core_s_per_m_events:.0f} Spark core-s per 1 M events."
    )
    return "\n".join(lines)


def rewrite_doc(table: str, doc: Path = SCALING_DOC) -> bool:
    """Replace the table between the markers in docs/scaling.md; True if the text changed."""
    text = doc.read_text()
    pattern = re.compile(re.escape(TABLE_START) + r".*?" + re.escape(TABLE_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{doc} has no {TABLE_START} ... {TABLE_END} block")
    new = pattern.sub(lambda _: f"{TABLE_START}\n{table}\n{TABLE_END}", text)
    if new != text:
        doc.write_text(new)
    return new != text


def main() -> None:
    print(render_table(load_inputs()))


if __name__ == "__main__":
    main()
