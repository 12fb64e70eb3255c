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
        ("elasticity_mae", "", "products with ≥ 200 units; goal ≤ 0.10"),
        ("profit_vs_oracle", "profit_oracle", "goal ≥ 0.95"),
        ("profit_vs_static", "profit_static", "goal ≥ 1.10"),
        ("profit_tillflow", "", "28 simulated days, seed 42"),
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
        "Below its goals (before this round: 5,704/s one process, 4,508/s two, p99 2.7 s). "
        "Measured on a stack started from this worktree on spare ports, because the shared "
        "one was stopped mid-run; repeats vary a lot on the shared 2 cores. Done: features go "
        "to Feast's Redis layout without pandas (featurestore/layout.py); a state snapshot is "
        "one pickle instead of deepcopy + pickle; plain routed signals cross workers instead "
        "of pydantic events (two processes now near one); pyarrow's pandas import is paid at "
        "start-up; one co-occurrence pair per interaction instead of three. Profile "
        "(pyinstrument, 60k events, one process, before the last four changes): snapshots "
        "~12 %, Delta ~12 % (mostly the pandas import), shopper state ~10 %, recommendation "
        "sink ~9 %, product state ~8 %, pydantic parsing ~6 %, feature sink ~5 %, Kafka "
        "source ~5 %, the rest Bytewax's per-step overhead: no single hot spot is left; "
        "20,000/s needs fewer Python steps per event (fusing the keyed "
        "states, batching per key) or more processes on more cores. Freshness p99 stays "
        "high because 5,000 events/s is close to one process's capacity."
    ),
    "quality": (
        "Closed loop in one process over 28 simulated days: the shop's events drive the same "
        "state classes the dataflow runs (flows.steps), and price changes apply at once. "
        "Recommendations (per-shopper decayed interests + their categories' best sellers + "
        "co-occurrence) reach 2.6× popularity; a second seed (7) gives 2.63× (HR 0.415 vs "
        "0.158). The hit rate is now taken on the list shown when the shopper arrives: the "
        "earlier definition (list at checkout) counted items already in the cart, which any "
        "recommender repeating the session's items would win (0.99 here). Profit: 0.952 of "
        "the oracle (goal kept) and 1.080× static, below the 1.10 goal (seed 7: 0.959 and "
        "1.069). Elasticity MAE 0.39 (seed 7: 0.43), far from 0.10: the elasticity is now "
        "learned from add-to-carts (twice the orders, decided at the shown price) with ±5 % "
        "price experiments, but a scored product has ~300–1,000 carts in 28 days and prices "
        "inside the guardrails vary by a few percent, so the Fisher information "
        "(carts × var(log price)) caps the posterior std at ~0.3–0.5; 0.10 needs var(log "
        "price) ≈ 0.1–0.3, i.e. price swings of ±30–50 %, which cost more profit than the "
        "oracle goal allows (±5 % experiments cost ~1 % of profit in one 28-day run). A "
        "pricer simulation with 4,000 carts also shows a ~0.3 bias toward zero that is not "
        "explained yet."
    ),
    "serving": (
        "One uvicorn worker on the 2 shared cores, wrk (1 thread, 4 connections, 10 s) in its "
        "own process, the batch benchmark's LightGBM models in ONNX; load starts once the API "
        "has finished its start-up work (the Feast import for the batch features held the GIL "
        "for ~20 s and had pushed p99 to ~150 ms in an earlier run). Throughput meets its "
        "goal on both routes; the rest misses: prices p50 is ≈ 6× the no-HTTP floor (goal 2×: "
        "FastAPI routing, validation and serialisation cost ~1 ms of Python per request), and "
        "the p99 tails (tens of ms) miss their 2 and 5 ms: with wrk, Redis and the API on two "
        "cores — and other work on the machine during this run (load average ~4) — a request "
        "waits behind the scheduler. "
        "Recommendations re-rank up to 20 candidates per request (features of uncached items "
        "in one pipeline, one ONNX run). Fan-out sends each change to 1,000 websockets from one "
        "event loop (~0.1 ms per client) with the clients' process on the same cores; between "
        "75 and 430 ms p99 across runs. Next steps: more uvicorn workers per core pair, "
        "orjson responses without response-model validation on the hot routes, pre-framed "
        "websocket broadcasts."
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
        "load writes (Neo4j on a miss). p99 misses its goal here: at 4 requests in flight on a "
        "machine whose load average was ~7, both the API and the bare Cypher baseline show "
        "scheduling tails (an earlier, smaller run at lower load: p50 4.2 ms, p99 11.5 ms). Graph "
        "candidates (highest-lift co-purchases, ≥ 3 shoppers) do not raise HR@10 here: "
        "every weight of the sweep (meta.runs.hr_at_10_by_graph_weight) is at or below the "
        "streaming recommender alone — the simulator's next purchase follows the session's views, "
        "which the stream already ranks; ranked by weight the graph only repeats popular items."
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
        if name in NOTES:
            parts.append(f"\n{NOTES[name]}")
        parts.append("")
    return "\n".join(parts) + "\n"


def main() -> None:
    (ROOT / "BENCHMARKS.md").write_text(render())
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
