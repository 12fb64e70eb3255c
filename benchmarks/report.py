"""Write BENCHMARKS.md from the latest benchmarks/results/*.json.

Also re-derives the capacity table of docs/scaling.md from the same figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchmarks import capacity
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
        ("events_per_s_1proc", "raw_consume_events_per_s", "goal ≥ 25,000"),
        ("events_per_s_2proc", "events_per_s_1proc", "two processes, the same partitions"),
        ("scaling_2proc", "", "2proc / 1proc; goal ≥ 1.0 (0.43 in the issue's reference run)"),
        ("raw_consume_events_per_s", "", "baseline: confluent-kafka consume + orjson"),
        ("ratio_to_raw_consume", "", "goal ≥ 0.25"),
        ("freshness_p50_ms", "", "probe produced → shopper features in Feast, 5,000/s load"),
        ("freshness_p99_ms", "", "at 5,000 events/s; goal ≤ 250"),
        ("freshness_missed", "", "probes not seen within 5 s (counted as 5 s above)"),
        ("freshness_cpu_us_per_event", "", "flow CPU per load event then; > 200 µs: behind"),
        ("freshness_2proc_p99_ms", "", "two processes at 5,000 events/s; goal ≤ 250"),
        ("freshness_2proc_missed", "", "probes not seen within 5 s, two processes"),
        ("freshness_sustained_rate", "", "events/s: 0.8 × this run's 1proc rate (≤ 5,000)"),
        ("freshness_sustained_p50_ms", "", "one process at that rate"),
        ("freshness_sustained_p99_ms", "", "one process at that rate: its pauses"),
        ("startup_s", "", "flow start-up, subtracted from the throughput runs"),
        ("exchange_items_per_event", "", "items one event sends to keyed steps"),
        ("exchange_bytes_per_event", "", "their pickled size"),
        ("exchange_us_per_event", "", "pickle + unpickle of them, in-process"),
    ],
    "quality": [
        ("elasticity_mae", "", "`both`, products with ≥ meta.runs.min_units units; goal ≤ 0.10"),
        ("profit_vs_oracle", "profit_oracle", "goal ≥ 0.95"),
        ("profit_vs_static", "profit_static", "goal ≥ 1.10"),
        ("profit_tillflow", "", "simulated days and seed in meta.runs"),
        ("hr_at_10", "hr_at_10_popularity", "session's purchase in the top-10 shown on arrival"),
        ("hr_at_10_vs_popularity", "", "goal ≥ 2"),
    ],
    "serving": [
        ("prices_rps", "", "GET /prices/{sku}, wrk paced at ~2,000/s; goal ≥ 2,000"),
        ("prices_p50_ms", "floor_p50_ms", "at that rate; goal ≤ 2× the floor"),
        ("prices_p99_ms", "", "at that rate; goal ≤ 2 ms"),
        ("prices_p50_vs_floor", "", "goal ≤ 2"),
        ("prices_cpu_ms", "", "API CPU (all its processes) per answered request"),
        ("prices_loadgen_cpu_ms", "", "wrk's own CPU per answered request, on the same cores"),
        ("prices_nocache_p50_ms", "", "cache off: every request reads Redis"),
        ("prices_nocache_p99_ms", "", "cache off"),
        ("prices_nocache_cpu_ms", "prices_cpu_ms", "cache off"),
        ("prices_cache_vs_nocache_p99", "", "prices p99 cache on / off; goal ≤ 1.0 (was 1.8)"),
        ("prices_max_rps", "", "saturating: 4 requests in flight, as many as answered"),
        ("prices_max_p99_ms", "", "saturating: what queueing adds"),
        ("recs_rps", "", "GET /recommendations/{user}, ranked by ONNX, paced; goal ≥ 1,000"),
        ("recs_p50_ms", "", "at that rate"),
        ("recs_p99_ms", "", "at that rate; goal ≤ 5 ms"),
        ("recs_cpu_ms", "", "API CPU per answered request"),
        ("recs_loadgen_cpu_ms", "", "wrk's own CPU per answered request"),
        ("recs_max_rps", "", "saturating, 4 in flight"),
        ("recs_max_p99_ms", "", "saturating"),
        ("floor_p50_ms", "", "baseline: Redis round trip + one ONNX run, no HTTP"),
        ("ws_fanout_p99_ms", "", "price change → each of 1,000 websocket clients; goal ≤ 100"),
    ],
    "governance": [
        (
            "explain_ms_per_row",
            "forecast_onnx_ms_per_row",
            "one forecast's pred_contrib, one new row per call (pricing detail); goal ≤ 1",
        ),
        ("explain_cpu_ms_per_row", "", "CPU time of the same calls (the machine is shared)"),
        (
            "explain_cached_ms_per_row",
            "explain_ms_per_row",
            "a row explained before, answered from the explainer's cache",
        ),
        ("explain_cached_cpu_ms_per_row", "", "CPU time of the same calls"),
        ("explain_batch_ms_per_row", "", "1,000 rows per call"),
        ("explain_batch_cpu_ms_per_row", "", "CPU time: the same per row as one by one"),
        ("forecast_onnx_ms_per_row", "", "baseline: the forecast itself through ONNX Runtime"),
        ("forecast_native_ms_per_row", "", "baseline: the forecast by the native booster"),
        ("explain_trees", "", "trees of the explained demand model (7 leaves each)"),
        ("explain_model_wape", "", "its holdout WAPE (31-leaf trees: 0.3445 on the same set)"),
        (
            "audit_s_1m_events",
            "audit_pandas_s",
            "Fairlearn audit + gold rows on the inputs of 1M events; goal ≤ 30",
        ),
        ("audit_cpu_s_1m_events", "audit_pandas_cpu_s", "CPU time of the same runs"),
        ("audit_pandas_s", "", "baseline: the same group figures by a plain pandas groupby"),
        ("audit_pandas_cpu_s", "", "its CPU time"),
        ("audit_load_1m", "", "machine load average when the audit section ended (2 cores)"),
        ("audit_events", "", "order lines (and recommended slots) audited"),
        (
            "train_s_with_tracking",
            "train_s_without_tracking",
            "the train job: the training and gate + importance and its plot, MLflow run, "
            "model, registration, alias",
        ),
        (
            "train_s_without_tracking",
            "train_s_bare",
            "baseline: the same job without MLflow (fit, ONNX, parity, champion scored, gate)",
        ),
        ("train_s_bare", "", "baseline: fit, ONNX export and parity check alone"),
        ("tracking_overhead_ratio", "", "median of paired with / without, wall; goal ≤ 1.10"),
        ("tracking_overhead_ratio_ci90", "", "90 % bootstrap interval of that median (wall)"),
        ("tracking_overhead_ratio_min", "", "the lowest paired ratio (wall)"),
        ("tracking_overhead_ratio_max", "", "the highest paired ratio (wall)"),
        ("train_cpu_s_with_tracking", "train_cpu_s_without_tracking", "CPU time of the same"),
        ("tracking_overhead_cpu_ratio", "", "median of paired with / without, CPU of this process"),
        ("tracking_overhead_cpu_ratio_min", "", "the lowest paired CPU ratio"),
        ("tracking_overhead_cpu_ratio_max", "", "the highest paired CPU ratio"),
        (
            "train_server_cpu_s_with_tracking",
            "train_server_cpu_s_without_tracking",
            "the local MLflow server's CPU during the same trainings",
        ),
        (
            "tracking_overhead_cpu_with_server_ratio",
            "",
            "median of paired with / without, CPU of this process and the MLflow server",
        ),
        ("tracking_overhead_cpu_with_server_ratio_ci90", "", "its 90 % bootstrap interval"),
        ("governance_overhead_ratio", "", "median of paired with / bare, wall: all the job adds"),
        ("governance_overhead_cpu_ratio", "", "the same in CPU time"),
        ("load_1m", "", "machine load average when the tracking section ended (2 cores)"),
        ("tracking_import_s", "", "importing mlflow once per process"),
        ("tracking_import_cpu_s", "", "its CPU time"),
        ("feast_import_s", "", "importing Feast (the train job needs it anyway)"),
        ("feast_import_cpu_s", "", "its CPU time"),
        ("tracking_train_rows", "", "synthetic sku-days trained on"),
        ("tracking_model_wape", "", "the tracked model's holdout WAPE (31-leaf trees: 0.4983)"),
    ],
    "search": [
        ("search_rps", "", "GET /search through the API, wrk, 2 connections; goal ≥ 200"),
        ("search_p50_ms", "engine_p50_ms", "typo'd names, facets, popularity blend"),
        ("search_p99_ms", "engine_p99_ms", "goal ≤ 20"),
        ("search_rps_wide", "search_rps", "the same with 4 connections"),
        ("search_p99_ms_wide", "search_p99_ms", "4 connections: what queueing adds"),
        ("engine_p50_ms", "", "baseline: the same queries straight to OpenSearch"),
        ("engine_p99_ms", "", "baseline"),
        ("api_cpu_ms_per_search", "", "API process CPU per answered search, under the load"),
        (
            "engine_cpu_ms_per_search",
            "",
            "OpenSearch node CPU per answered search, under the load",
        ),
        ("index_freshness_p50_ms", "refresh_interval_ms", "price published → visible in search"),
        ("index_freshness_p99_ms", "refresh_interval_ms", "goal ≤ 1,500"),
        ("bulk_docs_per_s", "single_docs_per_s", "the indexer's bulk requests"),
        ("single_docs_per_s", "", "baseline: one update request per document"),
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
        (
            "spark_pipeline_seconds_1m_events",
            "duckdb_transform_seconds_1m_events",
            "silver → gold → Feast export on Spark (local[*], driver 1g)",
        ),
        (
            "duckdb_transform_seconds_1m_events",
            "",
            "baseline: the same on DuckDB, same bronze, same run",
        ),
        ("spark_parity", "", "1 when both engines wrote identical tables; goal 1"),
        ("spark_startup_s", "", "Spark session start (JVM, Delta jars), not in the above"),
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
    "demo": [
        ("alive_seconds", "baseline_alive_seconds", "start → living shop; goal ≤ 120 when quiet"),
        ("baseline_alive_seconds", "", "baseline: main's demo, run next under the same load"),
        ("alive_vs_baseline", "", "ratio of the two above"),
        ("sequential_seconds", "", "this demo's phases' own durations added up"),
        ("stack_seconds", "", "services answer, catalogue stored, flows and API spawned"),
        ("backfill_seconds", "", "history produced and through the flows into the lake"),
        ("backfill_events", "", "14 simulated days of the demo's shop"),
        ("flows_events_per_s", "", "backfill events per second of the backfill phase"),
        ("pipeline_seconds", "", "silver → gold → Feast → both models trained and served"),
        ("graph_seconds", "", "Neo4j load from gold, alongside the training"),
        ("demand_wape", "demand_wape_naive", "what the pricing page's forecasts rest on"),
        ("ranker_hr_at_10", "ranker_hr_at_10_popularity", "ranked recommendations"),
        ("elasticity_buckets_median", "", "pricing page: evidence per product"),
        ("share_with_price_history", "", "pricing page: products with price changes"),
        ("load_average_start", "", "1-minute load average when the run began"),
    ],
    "fuzz": [
        ("hostile_messages", "", "generated hostile messages, mixed 1:1 with simulator events"),
        ("dead_lettered", "hostile_messages", "hostile messages found as dead letters; goal = all"),
        ("hostile_accepted", "", "hostile messages found in bronze; goal 0"),
        ("crashes", "", "flow exits with an error; goal 0"),
        ("good_events_lost", "good_events", "good events missing from bronze; goal 0"),
        ("truncated_dead_letters", "", "~900 kB messages whose dead letter was cut to fit"),
        ("events_per_s", "clean_events_per_s", "messages (good + hostile) read per second"),
        ("ratio_to_clean", "", "goal ≥ 0.9 (within 10 % of the clean run)"),
        ("good_events_per_s", "clean_events_per_s", "good events per second, hostile run"),
        ("startup_s", "", "flow start-up, subtracted from both runs"),
    ],
    "bench_smoke": [
        ("parallel_s", "baseline_serial_s", "make bench-smoke, passes at once; goal < 120 s"),
        ("baseline_serial_s", "", "baseline: the previous make bench-smoke (serial, old sizes)"),
        ("parallel_vs_baseline", "", "ratio of the two"),
        ("parallel_passes_one_after_another_s", "", "the passes' wall times added up"),
        ("parallel_cpu_s", "baseline_serial_cpu_s", "CPU seconds of the passes and what they ran"),
        ("load_1m_max", "", "the shared machine's 1-minute load average, highest seen"),
    ],
    "soak": [
        ("minutes", "", "the real flow tailing its topics; goal ≥ 10"),
        ("events_per_s", "produced_events_per_s", "read by the flow; goal ≥ 2,000"),
        ("produced_events_per_s", "", "offered load (the producer's pace)"),
        ("distinct_shoppers", "distinct_shoppers_produced", "read by the flow; goal ≥ 1,000,000"),
        ("flow_rss_mb", "", "[start, middle, end]"),
        ("redis_used_mb", "", "[start, middle, end], the run's own Redis"),
        ("recovery_mb", "", "[start, middle, end], recovery store on disk"),
        ("late_growth_ratio", "", "max (end − middle) / (middle − start); goal ≤ 0.25"),
        (
            "bytes_per_dedupe_id",
            "bytes_per_dedupe_id_as_strings_in_memory",
            "pickled dedupe snapshots per id; goal ≤ 16",
        ),
        ("bytes_per_dedupe_id_in_memory", "", "a SeenIds holding as many ids, in memory"),
        ("lag_at_end", "", "events produced but not read when the run ended"),
        ("load_1m", "", "machine load average [start, middle, end] (2 shared cores)"),
    ],
}

NOTES: dict[str, str] = {
    "bench_smoke": (
        "`python -m benchmarks.smoke --record --baseline-ref REF $(BENCH_MODULES)`: the passes "
        "at once (4 at a time, serving started when batch has published its models), then, in "
        "the same run, `make bench-smoke` of commit REF (one pass after another, its own "
        "sizes, from a fresh export). Measured while other engineers' tests and benchmarks "
        "kept the 2 cores at a load average of 16-17 during the passes at once and 6-16 "
        "during the baseline, which ran after them (`meta.runs.load_1m`): wall times are "
        "several times what the passes need, and the comparison favours the baseline; read "
        "the CPU seconds too (each pass and the processes it waited for, from `wait4`; a JVM "
        "left running is not counted). In this run serving, once batch's models were there, "
        "waited for its turn behind passes nobody waits for. "
        "Per pass, wall and CPU seconds: `meta.runs.passes`. Most of a pass's CPU is start-up "
        "(imports of every flow, API and benchmark process, one Spark session), so the flows "
        "import neither River's drift data sets nor the Neo4j driver and the API imports "
        "LightGBM only for a booster to explain. The 2-minute goal is for 2 quiet cores and "
        "was not measured on them: the machine was never quiet that day."
    ),
    "governance": (
        "Tracking measured on quiet cores 2026-11-30 15:33–15:37 UTC (load average 0.9–1.2), "
        "two runs in a row after the model folder was built from the bytes in hand (9.7 → "
        "1.6 ms of CPU a tracked training) and with a warm-up round and a garbage collection "
        "before every training: `tracking_overhead_ratio` 1.062 (90 % interval 1.057–1.100) "
        "and 1.056 (1.045–1.089; the run shown): the goal (≤ 1.10) met in both, with the "
        "interval's upper end at or under it. Process CPU 1.086 and 1.101; counting the "
        "local MLflow server's CPU too (0.09 s a tracked training), 1.196 and 1.214 "
        "(`tracking_overhead_cpu_with_server_ratio`): what a shop pays in all, beside the "
        "job's wait. Earlier, "
        "tracking measured on quiet cores 2026-11-30 12:02–12:07 UTC (load average 1.0–1.1), "
        "two runs of the section, each the median of 31 rounds of three trainings: "
        "`tracking_overhead_ratio` 1.045 (90 % interval of the median 1.031–1.071) and 1.114 "
        "(1.042–1.142; the run shown); CPU 1.081 and 1.133. The goal (≤ 1.10) is not shown "
        "met: the two runs' intervals barely overlap, and one pair's ratio spreads from 0.78 "
        "to 1.33, so the true figure sits near the goal. The untracked arm is now the job "
        "without MLflow (fit, export, parity and the promotion gate's scoring of the "
        "champion, which the job does whether or not it tracks); `governance_overhead_ratio` "
        "is against the bare fit (1.099 and 1.158). Three earlier 11-round runs (11:59–12:01) "
        "gave 1.113, 0.988, 1.166, pooled median 1.065. The MLflow store now commits without "
        "a disk sync each time (PRAGMA synchronous=NORMAL; docs/governance.md). "
        "What tracking adds in the training process: the global importance (mean |TreeSHAP| "
        "over 200 holdout rows) ~32 ms, the model folder ~9 ms, ~14 requests ~10 ms; the "
        "MLflow server spends another 80–110 ms of CPU on the 2 cores. "
        "The demand model is 300 trees of 7 leaves instead of 31: TreeSHAP costs about "
        "trees × leaves × depth² per row, and on the batch benchmark's 1M-event shop 7 leaves "
        "forecast as well (holdout WAPE 0.3347 against 0.3358; naive 0.4531), as on this "
        "benchmark's two sets (`explain_model_wape` 0.3434 against 0.3445, "
        "`tracking_model_wape` 0.4969 against 0.4983). Early stopping on the last fit days "
        "cut the 31-leaf model to 140–225 trees at the same WAPE but kept 289–296 of the "
        "7-leaf model's 300 (the grid is in docs/governance.md). A new row's explanation: "
        "2.16 ms of CPU before (10 ms wall at load 14), 0.32 ms of CPU now (0.26 ms wall), "
        "goal ≤ 1 ms; per-call overhead was measured small (LightGBM's single-row C API saved "
        "0.07 of 1.62 ms) and is not worked around. "
        "`tracking_import_s` counts mlflow alone (no "
        "matplotlib); Feast is reported apart (`feast_import_s`): the job loads it anyway. "
        "The audit's wall/CPU gap is the load: its pandas baseline, timed in the same run, "
        "shows the same gap. The audit runs Fairlearn's `MetricFrame` on each group's "
        "sums (every audit metric is a ratio of sums): over the rows, Fairlearn's per-row "
        "conversion took ~50 s of CPU for 1M rows."
    ),
    "demo": (
        "Measured while other sessions' work kept the 1-minute load average at 3–16 on the 2 core"
        "s, so the absolute times are not the quiet machine's (docs/getting-started.md has those)"
        ": six runs back to back (meta.runs), main's demo and this one interleaved. The figures a"
        "bove are this demo (load 3.1–3.6) and main's run right after it (load 3.6–5.2): 103 s ag"
        "ainst 214 s. Where the time went: the backfill passes 204k events instead of 360k (2,000"
        " sessions a day instead of 3,000; competitors' prices re-checked once a day instead of f"
        "our times); the stack phase no longer waits for the API (it starts while the flows catch"
        " up) and the flows start first; the pipeline starts with Feast, LightGBM and MLflow alre"
        "ady imported (imported while the flows catch up; 50 s → 22 s here) and the graph loads a"
        "longside it from the moment gold is written. This code with the busier shop (r4, while t"
        "he load fell from 9 to 3) took 221 s; two flow processes are slower than one (the stream"
        " benchmark: 0.86×), so the demo keeps one. What the pages show after 14 days, this shop "
        "against the busier one: every product priced, with a price history (median 54–55 changes"
        " against 65) and a demand forecast; elasticities from a median 33 price buckets against "
        "50 (posterior sd 0.74 against 0.66–0.69); the demand model WAPE 0.66 against naive 0.82 "
        "(busier: 0.60–0.68 against 0.75–0.77); the ranker HR@10 0.31–0.32 against popularity 0.1"
        "5 (busier: 0.35–0.38 against 0.17–0.19); the co-purchase graph is thinner, ~2,500 edges "
        "against ~6,500."
    ),
    "fuzz": (
        "Correctness holds at full size: every one of the 100,000 hostile messages (kinds and "
        "counts in meta.runs.kinds: extreme and future event times, bad ids, numbers and "
        "actions, missing fields, cut JSON, random bytes, non-objects, deep nesting, escaped "
        "lone surrogates, four ~900 kB messages whose dead letters were cut to fit) is exactly "
        "one dead letter at its own partition and offset, none reached bronze, no good event "
        "was lost and the flow never crashed. Throughput was measured while the 2 shared cores "
        "ran at a load average of 14–18 (other engineers' flows and tests), so both rates are "
        "about a tenth of the stream benchmark's and the two clean runs took 201 s and 92 s "
        "for the same work (meta.runs.seconds); the hostile runs took 231 s and 226 s for "
        "twice the messages. Read per message, the flow kept its pace with hostile input "
        "mixed in (ratio 1.05, goal ≥ 0.9); per good event it is about half the clean rate, "
        "since half of what it reads is hostile and each refused message still costs a parse, "
        "a dead-letter message, a counter and a warning log line. The parse step itself "
        "(flows.parse.parse_message, 5,000 simulator events, CPU time, best of 25, three "
        "alternating pairs) ran at 74k/86k/91k events/s before the bounds and the event-time "
        "policy and 74k/92k/82k after: the pattern on ids (~40 ns each) and the policy check "
        "(~0.3 µs) are within the noise of this machine."
    ),
    "batch": (
        "Quiet run, 2026-12-01 08:59–09:03 UTC on the machine of the other current figures "
        "(load average 1.3–2.9, nothing else running): the pipeline 12.6 s wall and 15.3 s of "
        "CPU for 1M events (repeats 15.8, 12.0, 12.6 s), training 9.8 s, silver 2.1 s; Spark "
        "68 s against DuckDB 3.9 s (~17×) after a 3.8 s session start, parity 1. This machine "
        "runs the same code ~2.4× faster than the one of the runs below (the stream and "
        "serving figures were re-recorded on it too). "
        "Quiet run, 2026-11-30 09:17–09:24 UTC on the previous machine (nothing else running): "
        "the pipeline 31.9 s wall and 38.7 s of CPU for 1M events (repeats 34.0, 28.5, 31.9 "
        "s), within the 60 s goal; training 23.0 s against 18.3 s at 06:42, the difference "
        "being mostly the new implicit-ALS item factors `tillflow batch train` now fits for "
        "the discover lists (~2 s the fit on one thread, the rest Python building the matrix "
        "from rows). Spark 129 s against DuckDB 5.4 s, parity 1. A first full run at 08:40 "
        "lost a Spark task result (`TaskResultLost`, result lost from block manager) in silver "
        "and stopped; the run above, the same code, did not: intermittent, not reproduced by "
        "a 40 MB result in isolation. "
        "Earlier quiet run, 2026-11-30 06:42–06:46 UTC (nothing else running): the pipeline took "
        "23.1 s wall and 28.6 s of CPU for 1M events, within the 60 s goal (02:48 the same "
        "day: 26.4 s and 34.3 s). Gold 2.9 → 1.0 s: `sku_daily` carries each store's last "
        "stock level over by a window function instead of a range join quadratic in the days "
        "(its query 1.04 → 0.10 s, identical rows; docs/batch-engines.md). The run recorded "
        "on 2026-11-26 (before MLflow tracking, the ranker's source features and served-list "
        "negatives) took 15.3 s and 19.0 s: training 11.8 s against 18.3 s now, silver 2.5 s "
        "against 3.7 s. The ranker's HR@10 moved 0.496 → 0.489 with its new source features. "
        "Spark 4.2 (`local[*]` on the 2 cores, driver 1g) ran silver → gold → Feast export "
        "over the same 1M-event bronze in 92 s against DuckDB's 4.1 s in the same run (~22×), "
        "after a 5.8 s session start, and wrote identical tables (`spark_parity` 1): on one "
        "machine Spark's stages, shuffles and the increments passing through the driver are "
        "mostly fixed cost (docs/batch-engines.md); docs/scaling.md sizes Spark with it. "
        "Bronze is written straight from the simulator (benchmarks/batch_data.py, with daily "
        "±15 % price experiments), not through Kafka and the flow, whose throughput is the "
        "stream benchmark. Profile (pyinstrument, 1M events): silver is DuckDB JSON typing and "
        "Delta writes; training is dominated by rebuilding the ranker's point-in-time shopper "
        "and item states (DuckDB) and building candidate rows in Python; LightGBM runs on one "
        "thread because two OpenMP threads were ~10× slower on the busy shared 2 cores. An "
        "earlier run under load average ~4 took 25.6 s wall and 19 s CPU, one under load "
        "average 14–18 62 s wall for the same CPU time, so the CPU figure is the steadier one. "
        "The serving benchmark "
        "serves the models this run trains (copied to .tillflow/bench-models)."
    ),
    "ingest": (
        "Profile (pyinstrument, 100k events): of the simulator's time, about half is the shop "
        "itself (sessions, ids, timestamps) and a third is aiokafka's per-message `send`; "
        "the baseline sends pre-generated bytes through librdkafka (C), so the ratio is bounded "
        "by generation (~100k events/s) before Kafka is involved. The demo needs 2,000/s."
    ),
    "soak": (
        "One 10-minute run (2026-11-29 20:12 UTC) with nothing else on the 2 cores (load "
        "average 1.4–2.3: the flow, the producer and the soak's own Redis). The producer "
        "offered 2,100 events/s (5 % above the goal, so the rate read can reach it) from "
        "1,000,000 shoppers; the flow read 2,098/s and ended 1,641 events behind, so it saw "
        "all 1,000,000 shoppers. Horizons of the run: dedupe and shopper idle time 120 s. "
        "Flow RSS 332 → 1,359 → 1,452 MB (state filling up to the horizon in the first two "
        "minutes, then flat within ±50 MB), Redis 22 → 204 → 215 MB, the recovery store "
        "37 → 274 → 311 MB: `late_growth_ratio` 0.16 (goal ≤ 0.25), set by the recovery "
        "store, whose SQLite files grow in steps when a snapshot needs more pages than the "
        "freed ones. Same-run baseline, the code before the recovery store's compaction, "
        "measured the same way an hour earlier (quiet, 2,000 events/s offered, 1,999/s read): "
        "recovery store 35 → 306 → 379 MB, ratio 0.27, growing ~14 MB a minute for good: "
        "Bytewax keeps a deletion marker for every key a step drops (every idle shopper), "
        "~130 bytes per shopper ever seen. Now a compactor process beside each flow process "
        "deletes the markers older than the committed epoch every minute "
        "(`flows/compaction.py`). The dedupe snapshots took 8.0 bytes per id (332,317 ids at "
        "the end); a SeenIds holding as many ids takes 11.2 bytes per id in memory, against "
        "110 bytes per id as a set of strings."
    ),
    "stream": (
        "Run of 2026-12-01 19:25–19:35 UTC (nothing else running; load from the benchmark "
        "itself), the table above: one process 9,537 events/s (repeats 10,064, 9,481, 9,537), "
        "two 10,512 (10,512, 10,815, 9,628), `scaling_2proc` 1.10; freshness p50 28 ms, "
        "**p99 634 ms at 5,000/s** with one process (repeats 506, 634, 746 ms; goal ≤ 250 ms "
        "not met), 916 ms with two; sustained at 5,000/s p99 655 ms; 187 µs of flow CPU per "
        "load event (178–187). Since the previous record (16:08–16:16 UTC: 10,599 / 10,586 "
        "events/s, freshness p99 608 ms, 184 µs an event) a sink's writer thread writes "
        "together the batches waiting for it, a product's feature row goes out at most once "
        "per 100 ms while tailing (docs/scaling.md, thirteenth round and after), and reading "
        "a posterior no longer changes the learner (docs/pricing.md, round 21). The replay "
        "A/B below (the session's start, the commit before the posterior change, and the "
        "recorded code; 150,000 events, three interleaved repeats) reads 16.98 / 15.33 / "
        "16.53 CPU-s (medians; repeats of one commit spread 14.5–18.2): no change resolved. "
        "With the flow's events timed, the freshness p99 at 5,000/s is a queue on this "
        "machine: one process needs 0.8–0.9 of a core at that rate, and the repeats differ by "
        "the share of a core it got (docs/scaling.md, thirteenth round). The earlier runs "
        "and what each round changed are in docs/scaling.md and this file's history."
    ),
    "serving": (
        "Quiet run of 2026-12-01 15:39–15:48 UTC (load 0.2–1.3, nothing else running), the "
        "table above; exponential pauses (independent arrivals, docs/scaling.md, *The paced "
        "load*), 6 list connections. Prices: 2,351/s, p50 0.089 ms (0.75× this run's 0.119 ms "
        "floor: a hit reads no Redis and runs no model, which the floor does), p99 0.94 ms, "
        "0.061 ms of API CPU each, at most 54,786/s; cache on ÷ off p99 0.39. Lists: 1,040/s, "
        "p50 1.42 ms, **p99 6.41 ms** (repeats 5.82, 6.41, 7.05: goal ≤ 5 ms at ≥ 1,000/s not "
        "met), 0.77 ms of API CPU each (0.75–0.80), at most 1,390/s; two uvicorn workers p99 "
        "6.26 ms at 1,030/s; Granian one worker 6.13 ms, two 5.70 ms. The lists are now "
        "measured as a shop serves them (docs/scaling.md, *The lists in the whole benchmark*): "
        "over 20 s (~21,000 lists; the window was 5 s, ~5,500 lists, whose p99 is the ~55th "
        "slowest and wandered 4.2–6.5 ms between repeats), right after a 2 s warm-up at their "
        "own rate (before, 1 s at 500/s ran ahead of ~10 s of price phases, so the window "
        "opened on expired reads). On the same API code the steadier window reads a higher CPU "
        "a list (0.70 → 0.77 ms) and a lower saturating rate (1,755 → 1,390/s, taken after the "
        "20 s); in four interleaved pairs of the old and new sequence at load 0.6–2.0 the p99 "
        "did not differ (7.82 → 8.02 ms medians), so most of the change from the previous "
        "record is the machine's day and the window, not the code. Websocket fan-out to 1,000 "
        "clients p99 36 ms (repeats 32–40; goal ≤ 100 ms). The previous quiet run (2026-12-01 "
        "12:58–13:04, 5 s lists window): prices p50 0.078 ms (0.70× a 0.111 ms floor), p99 "
        "0.75 ms; lists 1,079/s, p99 5.43 ms (5.43, 4.20, 6.48), 0.70 ms of CPU each. The "
        "earlier runs and what each round changed are in docs/scaling.md and this file's "
        "history."
    ),
    "search": (
        "Measured 2026-11-29 20:30 UTC with nothing else on the 2 cores (the demo's idle stack "
        "running beside it), after 2,000 warm-up queries straight to the node (a just-started "
        "JVM answers several times slower: a run right after the node started gave 141 "
        "requests/s at p99 32 ms, and the first repeat 96/s at 92 ms). Median of 3 repeats "
        "of 10 s each: with 2 requests in flight (one per core) 294 requests/s at p50 6.5 ms "
        "and p99 13.0 ms (repeats 12.0–14.0 ms at 288–317/s): both goals met (≥ 200/s, p99 ≤ "
        "20 ms). With 4 in flight 402/s at p99 21.5 ms: the cores are full and the extra "
        "requests queue. Same-run baseline, the queries straight to the node one at a time: "
        "p50 3.6 ms, p99 6.1 ms, so the API adds ~3 ms at the median (its CPU 1.5 ms a "
        "search, the node's 3.2 ms). The query: the fuzzy match runs once per word on one "
        "field the mapping copies name, brand, category and description into (`copy_to`), "
        "the boosts come from an exact `multi_match`, the phrase is asked of the name only "
        "and only for two words or more (before this, ~8 ms of node CPU a search: the fuzzy "
        "match expanded each word once per field); relevance on the 500 typo'd queries is "
        "unchanged (the product the typo came from in the first 20 for 56 % against 55 %). "
        "Freshness p99 0.87 s (goal ≤ 1.5 s) against the index's 0.5 s refresh interval. "
        "Bulk indexing 18,382 documents/s against 638/s one request per document."
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
    ("oracle_vs_static", "the oracle's own: the room any price policy had"),
    ("hr_at_10", ""),
    ("hr_at_10_vs_popularity", "≥ 2"),
    ("hr_at_10_ceiling_vs_popularity", "the truth's own: the most any list could reach"),
    ("products_scored", ""),
    ("pricing_us_per_signal", "pricing path, in-process, per product signal"),
]
DIAGNOSTICS: list[tuple[str, str]] = [
    ("median_elasticity_std", "posterior std of a scored product's elasticity"),
    ("mae_floor", "MAE a calibrated posterior of that width implies: std·√(2/π)"),
    ("median_information", "Fisher information on the elasticity per product"),
    ("median_log_price_spread", "std of the log prices a product sold at"),
    ("category_prior_std_mean", "a category prior's predictive std: spread and mean's error"),
    ("category_spread_mean", "learned spread of elasticities within a category (τ)"),
    ("true_category_spread_mean", "the truth's spread within a category"),
    ("slope", "least squares of estimated on true elasticity (1: follows the truth)"),
    ("true_prior_mae", "baseline: same evidence read under the true prior"),
    ("true_prior_slope", "baseline: slope under the true prior"),
    ("mae_floor_true_prior", "MAE this information implies under the true prior"),
    ("median_information_widest_test", "information had units sold half at floor, half at ceiling"),
    ("mae_floor_widest_test", "MAE that widest possible test would imply"),
    ("share_priced_at_a_bound", "priced at the floor, ceiling or competitor cap (±1 test leg)"),
    ("day_effect_std_mean", "learned day-to-day std of log demand, mean over categories"),
    ("evidence_z_var", "variance of the evidence's errors in its own std (1: honest width)"),
    ("prior_z_var", "variance of the category prior's errors in its own std (1: honest width)"),
    ("truth_minus_prior_mean", "true − prior mean (× the prior's weight: the bias)"),
]


def quality_modes(
    data: dict[str, object],
    title: str = "Per channel mode (`modes`; the top-level figures are `both`)",
) -> str:
    """The quality benchmark per channel mode, goals beside, then what bounds the error."""
    modes = data["modes"]
    assert isinstance(modes, dict)
    names = list(modes)
    head = "| figure | " + " | ".join(names) + " | goal |\n|---|" + "---:|" * len(names) + "---|"
    rows = [f"\n{title}:\n\n{head}"]
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


MODE_NAMES = {"pos": "point of sale", "web": "web", "both": "web and tills"}


def render_quality_full() -> str:
    """The full-size runs of the quality modes (``--full``: ``quality_full.json``, or
    ``quality_<modes>_full.json`` for some of them), those kept."""
    parts = []
    for path in sorted(RESULTS.glob("quality*_full.json")):
        data = json.loads(path.read_text())
        runs = data.get("meta", {}).get("runs", {})
        modes = " / ".join(MODE_NAMES.get(m, m) for m in data.get("modes", {}))
        parts.append(
            quality_modes(
                data,
                f"Full size, {modes} (`benchmarks/results/{path.name}`, measured "
                f"{data.get('meta', {}).get('measured_at', '?')}: "
                f"{runs.get('products', '?')} products, {runs.get('days', '?')} days, "
                f"seed {runs.get('seed', '?')}, with the day effect)",
            )
        )
    return "\n".join(parts)


ELASTICITY_FIGURES = ("bias", "mae", "slope", "coverage_90", "z_mean", "median_std")
ELASTICITY_READINGS = {
    "learned": "the learner (its category's prior without its own report)",
    "own_counted_twice": "baseline: same evidence, category prior holding its own report",
    "true_prior": "baseline: same evidence, prior at the true mean and spread",
    "data_only": "baseline: same evidence, flat prior",
}
ELASTICITY_CONTEXT = (
    "prior_centre_error",
    "prior_std_mean",
    "true_category_std_mean",
    "median_information",
    "median_log_price_spread",
    "mae_floor_true_prior",
    "mae_floor_widest_test",
)
ELASTICITY_BEFORE = (
    "learned.bias",
    "learned.mae",
    "learned.slope",
    "learned.coverage_90",
    "median_information",
    "median_log_price_spread",
    "prior_centre_error",
    "profit_vs_oracle",
    "profit_vs_static",
)
ELASTICITY_PROFIT = (
    "profit_vs_oracle",
    "profit_vs_static",
    "shop_mean",
    "shop_mean_std",
    "true_mean",
)


def _seed_mean(run: dict[str, Any], path: tuple[str, ...]) -> float:
    """A figure of one mode, averaged over its seeds."""
    runs = run.get("seeds", [run])
    values = []
    for r in runs:
        for key in path:
            r = r.get(key) if isinstance(r, dict) else None
        values.append(float(r) if r is not None else math.nan)
    return sum(values) / len(values)


def render_elasticity() -> str:
    """Every product's elasticity against the truth, per mode and reading of the evidence."""
    path = RESULTS / "elasticity.json"
    if not path.exists():
        return "## elasticity\n\nNot measured yet: run `python -m benchmarks.elasticity`.\n"
    data = json.loads(path.read_text())
    meta = data.get("meta", {})
    runs = meta.get("runs", {})
    head = " | ".join(f"`{f}`" for f in ELASTICITY_FIGURES)
    parts = [
        f"## elasticity (`benchmarks/results/elasticity.json`)\n\nMeasured "
        f"{meta.get('measured_at', '?')} on {meta.get('cpus', '?')} CPUs; "
        f"{runs.get('products', '?')} products, {runs.get('days', '?')} simulated days, "
        f"seeds {runs.get('seeds', '?')} (figures are their mean). Every product is scored."
        f"\n\n| mode | reading | {head} |\n|---|---|" + "---:|" * len(ELASTICITY_FIGURES)
    ]
    for mode, run in data["modes"].items():
        for reading, note in ELASTICITY_READINGS.items():
            if reading not in run.get("seeds", [run])[0]:
                continue
            values = " | ".join(fmt(_seed_mean(run, (reading, f))) for f in ELASTICITY_FIGURES)
            parts.append(f"| {mode} | {reading}: {note} | {values} |")
    head = " | ".join(f"`{f}`" for f in ELASTICITY_CONTEXT)
    parts.append(f"\n| mode | {head} |\n|---|" + "---:|" * len(ELASTICITY_CONTEXT))
    for mode, run in data["modes"].items():
        values = " | ".join(fmt(_seed_mean(run, (f,))) for f in ELASTICITY_CONTEXT)
        parts.append(f"| {mode} | {values} |")
    first = next(iter(data["modes"].values()))
    if "profit_vs_oracle" in first.get("seeds", [first])[0]:
        head = " | ".join(f"`{f}`" for f in ELASTICITY_PROFIT)
        parts.append(
            f"\nWhat learning costs (goals: `profit_vs_oracle` ≥ 0.95, `profit_vs_static` ≥ "
            f"1.10), and the shop level's mean against the true mean:\n\n| mode | {head} |\n|---|"
            + "---:|"
            * len(ELASTICITY_PROFIT)
        )
        for mode, run in data["modes"].items():
            values = " | ".join(fmt(_seed_mean(run, (f,))) for f in ELASTICITY_PROFIT)
            parts.append(f"| {mode} | {values} |")
    before = data.get("before")
    if isinstance(before, dict):
        parts.append(f"\n{before.get('note', 'Before')}\n")
        head = " | ".join(f"`{f}`" for f in ELASTICITY_BEFORE)
        parts.append(f"| mode | run | {head} |\n|---|---|" + "---:|" * len(ELASTICITY_BEFORE))
        for mode, runs in before.get("modes", {}).items():
            now = data["modes"].get(mode, {})
            for label, run in (("before", runs), ("now", now)):
                values = " | ".join(
                    fmt(_seed_mean(run, tuple(f.split(".")))) for f in ELASTICITY_BEFORE
                )
                parts.append(f"| {mode} | {label} | {values} |")
    parts.extend(_across_seeds(data["modes"]))
    parts.extend(_pool_refit(data.get("pool_refit")))
    parts.extend(_elasticity_seeds())
    parts.append(f"\n{ELASTICITY_NOTE}\n")
    return "\n".join(parts)


def _across_seeds(modes: dict[str, Any]) -> list[str]:
    """Each mode's figures over its seeds: mean ± standard error, whole shops the units."""
    keys = sorted({k for run in modes.values() for k in run.get("across_seeds", {})})
    if not keys:
        return []
    seeds = max(
        (v["seeds"] for run in modes.values() for v in run.get("across_seeds", {}).values()),
        default=0,
    )
    rows = [
        f"\nOver the {seeds} shops (seeds), mean ± standard error with each shop one unit (its "
        "products share the shop mean's error, so they are not independent draws):\n\n"
        f"| mode | {' | '.join(f'`{k}`' for k in keys)} |\n|---|" + "---:|" * len(keys)
    ]
    for mode, run in modes.items():
        figures = run.get("across_seeds", {})
        cells = [
            f"{fmt(figures[k]['mean'])} ± {fmt(figures[k]['se'])}" if k in figures else "n/a"
            for k in keys
        ]
        rows.append(f"| {mode} | {' | '.join(cells)} |")
    return rows


def _pool_refit(refit: Any) -> list[str]:
    """The category prior's cost per report, refitting on a material change against refitting
    at every change (the baseline, measured in the same run)."""
    if not isinstance(refit, dict):
        return []
    return [
        f"\nThe category prior's refits (`pool_refit`: {refit['reports']:,} product reports of "
        "a synthetic shop, 20 categories × 7 products learning one observation at a time; CPU, "
        "median of 3 interleaved repetitions):\n\n| figure | refit on a material change | "
        "baseline: refit at every change | tolerance (unit test) |\n|---|---:|---:|---|",
        f"| µs of CPU per report | {fmt(refit['us_per_report'])} | "
        f"{fmt(refit['us_per_report_exact'])} | |",
        f"| share of reports that refit | {fmt(refit['refit_share'])} | "
        f"{fmt(refit['refit_share_exact'])} | |",
        f"| largest error of a product's prior: mean, in its std | "
        f"{fmt(refit['max_mean_error_in_std'])} | 0 | ≤ 0.05 |",
        f"| largest error of a product's prior: std, relative | "
        f"{fmt(refit['max_std_error'])} | 0 | ≤ 0.05 |",
    ]


SEED_FIGURES = ("learned_bias", "coverage_90", "mae", "flat_prior_lean", "shop_mean_z")


def _elasticity_seeds() -> list[str]:
    """More shops of the same size (``elasticity_seeds.json``), main's learner next to this one."""
    path = RESULTS / "elasticity_seeds.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    meta = data.get("meta", {})
    head = " | ".join(f"`{f}`" for f in SEED_FIGURES)
    rows = [
        f"\nMore shops (`benchmarks/results/elasticity_seeds.json`, {meta.get('measured_at', '?')}"
        f"; {meta.get('note', '')}):\n\n| mode | seed | learner | {head} |\n|---|---:|---|"
        + "---:|"
        * len(SEED_FIGURES)
    ]
    for run in data.get("runs", []):
        values = " | ".join(fmt(run.get(f, "n/a")) for f in SEED_FIGURES)
        rows.append(f"| {run['mode']} | {run['seed']} | {run['learner']} | {values} |")
    return rows


RECS_ROWS: list[tuple[str, str, str]] = [
    ("users", "", "targets evaluated (half discover, half again holdouts)"),
    (
        "hr_at_10_discover",
        "hr_at_10_item_knn",
        "held-out new item in the discover top-10 as served (`discover_served` below)",
    ),
    ("ndcg_at_10_discover", "", ""),
    ("hr_at_10_popularity_unseen", "", "baseline: most popular items the user has not touched"),
    ("hr_at_10_item_knn", "", "baseline: batch item-kNN (cosine, 50 neighbours)"),
    ("discover_vs_best_baseline", "", "goal ≥ 1.5 (the list as served)"),
    ("discover_served", "", "which discover list the headline is"),
    (
        "hr_at_10_discover_ranked",
        "hr_at_10_discover_unranked",
        "ranked by the ranker trained on the served lists, from the 20 candidates the API "
        "ranks for a list of 10 (what the API serves with that ranker loaded)",
    ),
    ("ndcg_at_10_discover_ranked", "ndcg_at_10_discover_unranked", ""),
    ("discover_ranked_vs_best_baseline", "discover_unranked_vs_best_baseline", ""),
    (
        "hr_at_10_discover_ranked_from_100",
        "hr_at_10_discover_unranked",
        "the same ranker over 100 candidates (not what the API serves)",
    ),
    ("discover_ranked_from_100_vs_best_baseline", "", ""),
    ("hr_at_10_discover_unranked", "", "the streaming blend's own order (served without a ranker)"),
    ("hr_at_10_again", "", "held-out repeat in the buy-again top-10 (n/a: the log has no repeats)"),
    (
        "recall_at_100_discover",
        "hr_at_10_discover_unranked",
        "held-out item in the unranked discover list 100 deep: how far the sources reach",
    ),
    ("hr_at_10_item_knn_only", "", "item-kNN's top-10 holds the target, unranked discover's not"),
]


def render_recs() -> str:
    """``recs.json`` holds one set of figures per data set: one table each."""
    path = RESULTS / "recs.json"
    if not path.exists():
        return "## recs\n\nNot measured yet: run `python -m benchmarks.recs`.\n"
    data = json.loads(path.read_text())
    meta = data.get("meta", {})
    parts = [
        f"## recs (`benchmarks/results/recs.json`)\n\nMeasured {meta.get('measured_at', '?')} "
        f"on {meta.get('cpus', '?')} CPUs, Python {meta.get('python', '?')}; one run per data set."
    ]
    for name, figures in data.get("datasets", {}).items():
        parts.append(
            f"\n### {name}\n\n| figure | value | baseline (same run) | note |\n|---|---:|---:|---|"
        )
        for key, baseline, note in RECS_ROWS:
            value = figures.get(key)
            base = f"{fmt(figures[baseline])} ({baseline})" if baseline in figures else ""
            parts.append(
                f"| `{key}` | {fmt(value if value is not None else 'n/a')} | {base} | {note} |"
            )
    parts.append(f"\n{RECS_NOTE}\n")
    return "\n".join(parts)


ELASTICITY_NOTE = (
    "The pricing path of the quality benchmark's closed loop (150 products, every one scored), "
    "with the oracle and fixed list prices run on the same shop for the profit ratios. "
    "`learned` is the product's posterior under the prior its category gives it (fitted "
    "without the product's own report), which hangs from the shop level; "
    "`own_counted_twice` reads the same evidence under the category prior that holds the "
    "product's own report (its evidence counted twice); the two baselines read it under the "
    "true prior and under a flat one. `slope` is the least-squares slope of estimated on true "
    "elasticity; `z_mean` the mean error in posterior standard deviations. "
    "`mae_floor_true_prior` is the MAE the information gathered implies under the true "
    "prior; `mae_floor_widest_test` the same had each product's units been sold half at the "
    "floor and half at the ceiling: above 0.15 in every mode, so the MAE goals need more "
    "units per product, not a wider test. Coverage: on the same evidence, leaving the "
    "product's own report out of its prior changes coverage by +0.003 on average over these "
    "six runs (−0.007 to +0.013): the shortfall of single runs is the shop level's shared "
    "error, not double counting (docs/pricing.md: the likelihood alone covers 0.91–0.95). "
    "This run draws the elasticity with half the posterior's std (tempered Thompson "
    "sampling) and refits a category's prior only when its reports or the shop's prior "
    "moved it materially; the baseline above is main's run on the same shops and seeds "
    "(full draws, a refit at every report): `profit_vs_oracle` 0.962 → 0.961 (web), 0.938 "
    "→ 0.952 (pos), 0.944 → 0.959 (both), coverage inside 0.85–0.95 in every mode (web at "
    "its edge, 0.85). Most of that move is the runs' variation, not the policy: one run "
    "moves by a few points for reasons unrelated to it (the loop is chaotic in the "
    "pricer's choices; the refit rule alone moved full-draw runs by −2 to +3 points), and "
    "over nine paired runs half draws gained a median of +0.3 points (docs/pricing.md, "
    "*Tempered draws and lazier refits*). At this size a "
    "run's bias is the shop mean's error, shared by all its products, so the products' "
    "spread gives no standard error for it: over shops (each one unit) the bias is "
    "+0.041 ± 0.037 on the web and −0.037 ± 0.065 in `both` over seeds 42, 7, 1, 2 of the "
    "run before, and over this run's two seeds as in the table above: none distinguishable "
    "from zero nor resolved to ±0.05 (~40 shops per mode would be). Profit: the oracle itself "
    "makes only 1.11–1.16× the list prices' profit, so `profit_vs_static` ≥ 1.10 needs "
    "0.95–0.99 of the oracle's; along main's loop path (seed 42, both, full draws) the "
    "price test cost 0.4 points of the best decisions' expected profit, the Thompson draw "
    "1.2 and the posterior mean's error 1.6. docs/pricing.md has the analysis and the "
    "variants tried."
)


STREAM_AB_REFS = {
    "e0c656a": "main at the start of 2026-11-30's ninth session: the baseline",
    "7998bba": "after the ingest, shopper-step, Kafka-message and pricing-path rounds",
    "d94df77": "main, 2026-11-30: the baseline of the sink and bronze round",
    "e48c662": "bronze sink keeps each topic's DeltaTable open across commits",
    "017daa1": "Redis sinks set a key's expiry at most once a minute (and the above)",
    "0176df6": "main before grouping: Bytewax steps one item per message; the baseline",
    "7b30f38": "values grouped per key and input batch up to the keyed states",
    "cf58387": "windows moved only on a new bucket; learner-error gauge once per batch",
    "6389b3c": "all of this round: grouping, windows, compact bronze snapshots, 5 s bronze wait",
    "428bcdf": "before the merged Kafka input",
    "ef2578e": "merged Kafka input, before the recommendation lists: the baseline",
    "d05e860": "recommendation lists and online item similarity",
    "c31bf5b": "co-occurrence fed one message per item and batch; sort-based top-k",
    "440af66": "sinks compute values from the steps' live state: the baseline",
    "9570bb2": "steps emit frozen values once per key and batch; one keyed-state adapter",
}

RECS_NOTE = (
    "Each log is streamed through Kafka and the real flow (one process) at 1,000 events/s. "
    "The replay pauses at 50, 60, 70, 80 and 90 % of the events; at each pause every shopper "
    "who acts in the next part is served a discover list of 100 candidates through the API's "
    "own reads (features and the sources' signals included), and the items they then interact "
    "with in that part are the positives, the items shown and not chosen the real negatives. "
    "The project's ranker (LightGBM, exported to ONNX, loaded as the API loads it) is trained "
    "on the first four pauses' lists and held to the batch job's order gate on the fifth's "
    "(promoted only if the one-sided 90 % lower bound of its mean per-list gain over the "
    "blend's order is at least −0.01, for HR@10 and for NDCG@10). Once the flow has processed "
    "everything, the discover users' lists are what the API serves: ranked when the gate "
    "passed the ranker, the blend's own order when it refused it (`discover_served` says "
    "which; it is the headline). Buy again is read as stored. Leave-last-out per user; "
    "baselines computed from the same sent events in the same run. Discover blends three "
    "sources: the flow's item neighbours, the categories' best sellers and implicit-ALS item "
    "factors, which the benchmark fits on what it has sent at each pause and at the end (as "
    "`tillflow batch train` does from the lake); the seventh round's settings "
    "(docs/recommendations.md) were chosen on a validation split this benchmark does not "
    "score. This run (2026-12-01 07:44–07:48 UTC; the figures are a function of the code and "
    "the logs, not of the load), with popularity decayed in event time (half-life 90 days; "
    "the replay squeezes the logs' times into two hours, so nearly no decay here): the blend "
    "1.49× (simulator) and 1.65× (MovieLens); the gate (with its pseudo-lists) refused both "
    "rankers. Goal 1.5× met on "
    "MovieLens, not on the simulator (1.47–1.51× over this session's and the previous "
    "session's runs)."
)


def _load_of(runs: dict[str, Any]) -> str:
    """The machine's 1-minute load average over an A/B run's replays, when recorded."""
    load = runs.get("load_1m")
    if not load:
        return ""
    return (
        f" Load average (1 min) as the replays ended: {load['min']:.1f}–{load['max']:.1f}, "
        f"median {load['median']:.1f}."
    )


def render_stream_ab() -> str:
    """``stream_ab.json``: the same replay at several commits in one run, by CPU and wall time."""
    path = RESULTS / "stream_ab.json"
    if not path.exists():
        return "\nNo A/B replay yet: run `python -m benchmarks.stream_ab BASE OTHER...`."
    data = json.loads(path.read_text())
    meta = data.get("meta", {})
    runs = meta.get("runs", {})
    refs: list[str] = runs.get("refs", [])
    rows = [
        f"\nA/B replay (`benchmarks/results/stream_ab.json`, {meta.get('measured_at', '?')}): "
        f"the same {fmt(runs.get('events', '?'))} events through one flow process at each "
        f"commit, interleaved, median of {runs.get('repeats', '?')}; the first commit is the "
        "baseline. CPU seconds (the flow process, all threads) hold on a loaded machine; wall "
        f"seconds do not.{_load_of(runs)}"
        "\n\n| commit | CPU s | vs first | wall s | vs first | note |"
        "\n|---|---:|---:|---:|---:|---|"
    ]
    notes = STREAM_AB_REFS
    for ref in refs:
        rows.append(
            f"| `{ref}` | {data['cpu_s'][ref]:.2f} | {data['cpu_ratio_to_first'][ref]:.3f} | "
            f"{data['wall_s'][ref]:.1f} | {data['wall_ratio_to_first'][ref]:.3f} | "
            f"{notes.get(ref, '')} |"
        )
    return "\n".join(rows)


SERVER_FIGURES = (
    "prices_rps",
    "prices_p50_ms",
    "prices_p99_ms",
    "prices_cpu_ms",
    "prices_max_rps",
    "recs_rps",
    "recs_p99_ms",
    "recs_cpu_ms",
    "recs_max_rps",
)


def render_servers(data: dict[str, Any]) -> str:
    """The serving figures of every server and worker count measured in the same run."""
    servers = data.get("meta", {}).get("runs", {}).get("servers", [])
    labels = [f"{s['name']}_{s['workers']}w" for s in servers]
    if not labels:
        return ""
    head = " | ".join(f"`{f}`" for f in SERVER_FIGURES)
    rows = [
        "\nServers compared in the same run (each started in turn within every repeat; "
        f"`{data['meta']['runs'].get('default_server', '?')}` is the default):\n\n"
        f"| server | {head} |\n|---|" + "---:|" * len(SERVER_FIGURES)
    ]
    for label in labels:
        values = " | ".join(fmt(data.get(f"{label}_{f}", "n/a")) for f in SERVER_FIGURES)
        rows.append(f"| {label} | {values} |")
    return "\n".join(rows)


SETUP = {"events": "events", "input_partitions": "input partitions a topic"}


def setup(meta: dict[str, Any]) -> str:
    """What a run recorded of its own set-up (the sizes it ran at), as the header states it."""
    runs = meta.get("runs", {})
    return "".join(f"; {label}: {runs[key]:,}" for key, label in SETUP.items() if key in runs)


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
            f"repeats: {meta.get('runs', {}).get('repeats', '?')}{setup(meta)}."
            "\n\n| figure | value | baseline (same run) | note |\n|---|---:|---:|---|"
        )
        for key, baseline, note in rows:
            base = f"{fmt(data[baseline])} ({baseline})" if baseline in data else ""
            parts.append(f"| `{key}` | {fmt(data.get(key, 'n/a'))} | {base} | {note} |")
        if name == "quality" and "modes" in data:
            parts.append(quality_modes(data))
            parts.append(render_quality_full())
        if name == "stream":
            parts.append(render_stream_ab())
        if name == "serving":
            parts.append(render_servers(data))
        if name in NOTES:
            parts.append(f"\n{NOTES[name]}")
        parts.append("")
    parts.append(render_elasticity())
    parts.append(render_recs())
    return "\n".join(parts) + "\n"


def main() -> None:
    (ROOT / "BENCHMARKS.md").write_text(render())
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")
    if capacity.rewrite_doc(capacity.render_table(capacity.load_inputs())):
        print(f"re-derived the capacity table in {capacity.SCALING_DOC}")


if __name__ == "__main__":
    main()
