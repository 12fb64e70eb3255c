"""Write BENCHMARKS.md from the latest benchmarks/results/*.json."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.common import RESULTS

ROOT = Path(__file__).resolve().parents[1]

# (figure, baseline it is read against, goal) per benchmark, in reading order.
TABLES: dict[str, list[tuple[str, str, str]]] = {
    "ingest": [
        ("simulator_events_per_s", "raw_producer_events_per_s", "fills topics at ≥ 2,000/s"),
        ("raw_producer_events_per_s", "", "baseline: plain confluent-kafka producer"),
        ("simulator_vs_raw_producer", "", "ratio of the two above"),
        ("generate_events_per_s", "", "the shop alone, no Kafka"),
        ("produce_p50_ms", "", "aiokafka send→ack at 2,000 events/s"),
        ("produce_p99_ms", "raw_produce_p99_ms", "aiokafka send→ack at 2,000 events/s"),
        ("raw_produce_p99_ms", "", "baseline: confluent-kafka at the same rate"),
    ],
    "stream": [
        ("events_per_s_1proc", "raw_consume_events_per_s", "goal ≥ 20,000"),
        ("events_per_s_2proc", "events_per_s_1proc", "two processes, 3 partitions"),
        ("raw_consume_events_per_s", "", "baseline: confluent-kafka consume + orjson"),
        ("ratio_to_raw_consume", "", "goal ≥ 0.25"),
        ("freshness_p50_ms", "", "probe produced → shopper features in Feast, 5,000/s load"),
        ("freshness_p99_ms", "", "goal ≤ 250"),
        ("startup_s", "", "flow start-up, subtracted from the throughput runs"),
    ],
    "quality": [
        ("elasticity_mae", "", "`both` mode, products with ≥ 200 units; goal ≤ 0.10"),
        ("profit_vs_oracle", "profit_oracle", "goal ≥ 0.95"),
        ("profit_vs_static", "profit_static", "goal ≥ 1.10"),
        ("profit_tillflow", "", "simulated days and seed in meta.runs"),
        ("hr_at_10", "hr_at_10_popularity", "session's purchase in the top-10 shown on arrival"),
        ("hr_at_10_vs_popularity", "", "goal ≥ 2"),
    ],
    "serving": [
        ("prices_rps", "", "GET /prices/{sku}, wrk, fixed concurrency; goal ≥ 1,000"),
        ("prices_p50_ms", "floor_p50_ms", "goal ≤ 2× the floor"),
        ("prices_p99_ms", "", "goal ≤ 2 ms"),
        ("prices_p50_vs_floor", "", "goal ≤ 2"),
        ("prices_nocache_p50_ms", "", "cache off: every request reads Redis"),
        ("prices_nocache_p99_ms", "", "cache off"),
        ("recs_rps", "", "GET /recommendations/{user}, ranked by ONNX; goal ≥ 1,000"),
        ("recs_p50_ms", "", ""),
        ("recs_p99_ms", "", "goal ≤ 5 ms"),
        ("floor_p50_ms", "", "baseline: Redis round trip + one ONNX run, no HTTP"),
        ("ws_fanout_p99_ms", "", "price change → each of 1,000 websocket clients; goal ≤ 100"),
    ],
    "observability": [
        (
            "parse_and_hooks_events_per_s",
            "parse_events_per_s",
            "the flow's parse step + metrics hooks",
        ),
        ("parse_events_per_s", "", "baseline: the parse step alone"),
        ("hooks_vs_parse", "", "ratio of the two above"),
        ("hooks_us_per_event", "", "goal ≤ 2.5 µs: 5 % of the 50 µs/event of the 20,000/s goal"),
        ("scrape_ms", "", "one /metrics exposition of a flow process"),
    ],
    "batch": [
        (
            "pipeline_seconds_1m_events",
            "",
            "bronze → … → 2 models; goal ≤ 60",
        ),
        ("pipeline_cpu_seconds", "", "CPU time of the same run (the 2 cores are shared)"),
        ("silver_s", "", "bronze → silver"),
        ("gold_s", "", "silver → gold"),
        ("features_s", "", "Feast export + materialisation"),
        ("train_s", "", "both models: Feast PIT set, LightGBM, ONNX, registry"),
        ("startup_s", "", "imports (Feast, LightGBM, …) in a fresh process, not in the above"),
        ("onnx_max_abs_diff", "", "ONNX vs native on held-out rows; goal ≤ 0.001"),
        ("demand_wape", "demand_wape_naive", "holdout: last 20 % of days"),
        ("demand_wape_naive", "", "baseline: units as the day before"),
        ("demand_wape_vs_naive", "", "goal ≤ 0.8"),
        ("onnx_row_us", "native_row_us", "demand model, one-row prediction"),
        ("native_row_us", "", "baseline: LightGBM predict, one row"),
        ("ranker_onnx_row_us", "ranker_native_row_us", "ranker, one row"),
        ("ranker_hr_at_10", "ranker_hr_at_10_popularity", "next-day purchase in the top 10"),
        ("ranker_ndcg_at_10", "ranker_ndcg_at_10_popularity", "same, NDCG@10"),
    ],
    "graph": [
        ("load_seconds_1m_events", "read_gold_seconds", "1M events of gold; goal ≤ 120"),
        ("incremental_load_seconds", "", "the next 7 simulated days on top"),
        ("related_p50_ms", "raw_cypher_p50_ms", "GET /graph/products/{sku}/related, 4 in flight"),
        ("related_p99_ms", "raw_cypher_p99_ms", "goal ≤ 10; baseline: the Cypher via the driver"),
        ("hr_at_10_with_graph", "hr_at_10_without_graph", "streaming + graph neighbours"),
        ("hr_at_10_without_graph", "", "streaming recommender alone"),
    ],
}

NOTES: dict[str, str] = {
    "batch": (
        "Bronze is written straight from the simulator (benchmarks/batch_data.py, with daily "
        "±15 % price experiments), not through Kafka and the flow, whose throughput is the "
        "stream benchmark. Profile (pyinstrument, 1M events): silver is DuckDB JSON typing and "
        "Delta writes; training is dominated by rebuilding the ranker's point-in-time shopper "
        "and item states (DuckDB) and building candidate rows in Python; LightGBM runs on one "
        "thread because two OpenMP threads were ~10× slower on the busy shared 2 cores. The "
        "latest run (load average ~4 from other work on the 2 cores) took 25.6 s wall and 19 s "
        "CPU, within the 60 s goal; an earlier run under load average 14–18 needed 62 s wall "
        "for the same CPU time, so the CPU figure is the steadier one. The serving benchmark "
        "serves the models this run trains (copied to .tillflow/bench-models)."
    ),
    "ingest": (
        "Profile (pyinstrument, 100k events): of the simulator's time, about half is the shop "
        "itself (sessions, ids, timestamps) and a third is aiokafka's per-message `send`; "
        "the baseline sends pre-generated bytes through librdkafka (C), so the ratio is bounded "
        "by generation (~100k events/s) before Kafka is involved. The demo needs 2,000/s."
    ),
    "stream": (
        "Below its goals, but moved: one process ~9–10k/s (was 6,714/s in the previous "
        "recorded run, 5,704/s before that; single repeats range 8.2k–11.4k/s on these shared "
        "cores, and two full runs today gave medians of 10,252/s and 8,930/s), freshness p99 "
        "~0.8 s (778 and 856 ms; was 2,463 ms), p50 80 ms. "
        "What changed, each found by profiling (pyinstrument on a 150k-event replay, py-spy "
        "on the live 5,000/s run, snapshot and GC timers): (1) CPython's garbage collector "
        "walked the long-lived per-product and per-shopper state at every full collection — "
        "about half of the CPU; flow processes now freeze start-up objects and collect less "
        "often (infra/runtime.py): 28.1 s → 17.4 s for the same replay. (2) The dedupe state "
        "was 64 sets each holding the whole 24 h horizon, all copied at every 5 s snapshot: "
        "now keyed by event-time minute × 4 shards with expiry timers, so a snapshot copies "
        "only the minutes being read. (3) The lake buffer's rows were deep-copied at each "
        "snapshot (now shared: they are immutable); (4) bronze makes one commit per topic "
        "instead of one per partition. (5) The probe process's own full collections (200k "
        "pre-built messages) had been counted as flow latency. What is left in the p99: one "
        "stall per snapshot (~100 ms of Python pickling of the changed states plus Bytewax's "
        "serialisation and SQLite writes, 300–600 ms in all); longer snapshot intervals make "
        "the stall rarer but not shorter. Two processes (~6.4–6.7k/s) stay below one on these 2 "
        "cores shared with Kafka and Redis: the exchange between workers costs more than the "
        "second core gives. Remaining profile (one process): sinks ~28 % (recommendation "
        "re-ranking ~15 %, feature encoding ~10 %), keyed states ~22 %, parse/route ~17 %, "
        "Bytewax's own per-step work ~15 %. 20,000/s needs fewer Python steps per event "
        "(fusing parse, route and lake row; batching per key) or more processes on more cores."
    ),
    "quality": (
        "Closed loop in one process per channel mode (web, pos, both; `--jobs 3` runs them in "
        "parallel): the shop's events drive the same state classes the dataflow runs "
        "(flows.steps: CategoryState), and price changes apply at once; the oracle prices "
        "at each true demand curve under the same guardrails. The elasticity is a Poisson "
        "model with an exposure offset (views, or busy-weighted hours of till sales) and a "
        "category prior. Where `elasticity_mae` misses its goal, compare it with `mae_floor` "
        "in the same column: the error a calibrated posterior of that width must have. The "
        "width follows from the Fisher information (`median_information`, about units × "
        "var(log price)); guardrails keep a product's log price within a spread of ~0.07, so "
        "a product with a few hundred units holds an information of ~1–5 and a posterior std "
        "of ~0.4–0.7. An MAE of 0.15 needs an information of ~30 per product: ~6,000 units "
        "at this price spread, or price swings of ±30 % that cost more profit than the "
        "oracle goal allows. Coverage near 0.90 and a bias near 0 say the posterior is "
        "honest; the remaining error is the data's. Hit rates in `pos` are taken on till "
        "orders (the list shown before the order is seen), as there are no sessions. The "
        "recorded run is 10 simulated days per mode (not 28: time), 500 products, and "
        "predates the last changes to the hour pattern (shrinkage by observed time, a 2-day "
        "warm-up before hours buckets are learned, sales rescaled to the list price before "
        "they enter the pattern): re-run `python -m benchmarks.quality --jobs 3` before "
        "reading the pos column as current."
    ),
    "serving": (
        "One uvicorn worker on the 2 shared cores, wrk (1 thread, 4 connections, 10 s) in its "
        "own process, the batch benchmark's LightGBM models in ONNX. Since the previous run "
        "the API reads the Feast online store's bytes itself (api/features.py; it no longer "
        "imports Feast, which held the GIL ~20 s at start-up) and freezes its start-up "
        "objects for the garbage collector: recommendations p99 went from 79 ms to 6.9 ms "
        "(goal 5), prices p99 from 23 ms to 6.2 ms (goal 2), fan-out p99 to 1,000 websockets "
        "from 75–430 ms to 73–94 ms (goal 100, met). Throughput meets its goal on both "
        "routes. Prices p50 stays ≈ 6× the no-HTTP floor (goal 2×): FastAPI routing, "
        "validation and serialisation cost ~1 ms of Python per request; next steps are orjson "
        "responses without response-model validation on the hot routes and more uvicorn "
        "workers per core pair. Recommendations re-rank up to 20 candidates per request "
        "(features of uncached items in one pipeline, one ONNX run)."
    ),
    "observability": (
        "Micro-benchmark over 100k simulated messages in one process (no Kafka): every message "
        "passes the flow's two metrics hooks (events, dead letters, processing-lag histogram, "
        "freshness, offsets for consumer lag; order revenue). The per-message figures are plain "
        "numbers turned into metric families at scrape time: with prometheus_client's locked "
        "objects the hooks cost ~12 µs per message, as much as parsing; now ~2 µs. The "
        "machine was shared with other jobs, so single repeats scatter; medians are quoted."
    ),
    "graph": (
        "1M simulator events of gold (280k VIEWED, 46k BOUGHT, 51k CO_PURCHASED) load into an "
        "empty namespace in the time above; the same load took 40–68 s in earlier runs while "
        "other work kept the load average at 10–12 on these 2 cores. Profile (per-step timings "
        "in the JSON): two thirds is the VIEWED `UNWIND … CREATE` (~28k rows/s here); passing "
        "times as epoch milliseconds instead of datetimes made parameter packing ~20× cheaper, "
        "and the driver's Rust extension another ~5×. The incremental run (7 more days, 166k "
        "changed rows) uses MERGE so that a run that died half-way can simply be repeated; that "
        "is ~3× slower per row than CREATE. Related lists are served from the Redis copy each "
        "load writes (Neo4j on a miss); p99 4.7 ms now meets its 10 ms goal (it missed at "
        "73 ms while the API imported Feast at start-up and scanned its start-up objects at "
        "every full garbage collection). HR@10 here is taken at checkout (the list shown when "
        "the order is placed, which counts items already in the cart, unlike the quality "
        "benchmark's list at arrival), against the streaming recommender with its per-shopper "
        "interests: graph candidates (highest-lift co-purchases, ≥ 3 shoppers) add about "
        "0.3 points at the default weight 0.1 and 1.3 points at 0.5 "
        "(meta.runs.hr_at_10_by_graph_weight) — small, because the simulator's next purchase "
        "follows the session's views, which the stream already ranks."
    ),
}

INTRO = """# Benchmarks

Written by `make bench` (`python -m benchmarks.report`) from `benchmarks/results/*.json`.
Every figure is the median of the repeats listed in its JSON file (`meta.runs`), measured
on this project's reference machine (2 cores, 24 GiB) against the real local stack, each
next to its baseline measured in the same run. Tests never assert timings.
"""


def fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


# (figure, goal, is the goal met) for the per-mode table of the quality benchmark.
MODE_GOALS: list[tuple[str, str]] = [
    ("elasticity_mae", "≤ 0.15 (≤ 0.10 in both)"),
    ("elasticity_bias", "within ±0.05"),
    ("elasticity_coverage_90", "0.85 – 0.95"),
    ("profit_vs_oracle", "≥ 0.95"),
    ("profit_vs_static", "≥ 1.10"),
    ("hr_at_10", ""),
    ("hr_at_10_vs_popularity", "≥ 2"),
    ("products_scored", ""),
    ("pricing_us_per_signal", "pricing path, in-process, per product signal"),
]
DIAGNOSTICS: list[tuple[str, str]] = [
    ("median_elasticity_std", "posterior std of a scored product's elasticity"),
    ("mae_floor", "MAE a calibrated posterior of that width implies: std·√(2/π)"),
    ("median_information", "Fisher information on the elasticity per product"),
    ("median_log_price_spread", "std of the log prices a product sold at"),
    ("category_prior_std_mean", "learned spread of elasticities within a category"),
]


def quality_modes(data: dict[str, object]) -> str:
    """The quality benchmark per channel mode, goals beside, then what bounds the error."""
    modes = data["modes"]
    assert isinstance(modes, dict)
    names = list(modes)
    head = "| figure | " + " | ".join(names) + " | goal |\n|---|" + "---:|" * len(names) + "---|"
    rows = [f"\nPer channel mode (`modes`; the top-level figures are `both`):\n\n{head}"]
    for key, goal in MODE_GOALS:
        values = " | ".join(fmt(modes[m].get(key, "n/a")) for m in names)
        rows.append(f"| `{key}` | {values} | {goal} |")
    for key, note in DIAGNOSTICS:
        values = " | ".join(fmt(modes[m].get("diagnostics", {}).get(key, "n/a")) for m in names)
        rows.append(f"| `{key}` | {values} | {note} |")
    learner = data.get("learner")
    if isinstance(learner, dict):
        rows.append(
            f"\nOne Laplace update of a product's posterior: "
            f"{fmt(learner.get('us_per_update'))} µs (`learner.us_per_update`)."
        )
    return "\n".join(rows)


def render() -> str:
    parts = [INTRO]
    for name, rows in TABLES.items():
        path = RESULTS / f"{name}.json"
        if not path.exists():
            parts.append(f"## {name}\n\nNot measured yet: run `make bench`.\n")
            continue
        data = json.loads(path.read_text())
        meta = data.get("meta", {})
        parts.append(
            f"## {name} (`benchmarks/results/{name}.json`)\n\n"
            f"Measured {meta.get('measured_at', '?')} on {meta.get('cpus', '?')} CPUs, "
            f"Python {meta.get('python', '?')}; "
            f"repeats: {meta.get('runs', {}).get('repeats', '?')}."
            "\n\n| figure | value | baseline (same run) | note |\n|---|---:|---:|---|"
        )
        for key, baseline, note in rows:
            base = f"{fmt(data[baseline])} ({baseline})" if baseline in data else ""
            parts.append(f"| `{key}` | {fmt(data.get(key, 'n/a'))} | {base} | {note} |")
        if name == "quality" and "modes" in data:
            parts.append(quality_modes(data))
        if name in NOTES:
            parts.append(f"\n{NOTES[name]}")
        parts.append("")
    return "\n".join(parts) + "\n"


def main() -> None:
    (ROOT / "BENCHMARKS.md").write_text(render())
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
