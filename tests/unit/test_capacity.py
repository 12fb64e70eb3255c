"""The capacity model's formulas, and the docs' table matching the recorded figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import capacity

INPUTS = capacity.Inputs(
    flow_cpu_us_per_event=200.0,  # 4,000 events/s planned per process
    price_hits_per_worker=20_000.0,  # 0.05 ms a hit
    price_miss_cpu_ms=0.15,  # half missing: 1 / (0.5 x 0.05 + 0.5 x 0.15 ms) = 10,000 prices/s
    lists_per_worker=1_000.0,  # 1 / (0.5/10,000 + 0.5/1,000) = 1,818.2 reads/s, 1,272.7 planned
    redis_kb_per_shopper=0.25,
    duckdb_cpu_s_per_m_events=40.0,
    spark_core_s_per_m_events=250.0,
)


def test_plan_follows_the_formulas() -> None:
    assert INPUTS.prices_per_worker == pytest.approx(10_000)
    small = capacity.plan(INPUTS, 1_000)
    assert small.flow_processes == 1
    assert small.partitions == 3
    assert small.api_workers == 1  # 1,000 / 1,272.7
    assert small.redis_commands_per_s == pytest.approx(3_000 + 2 * (250 + 500))
    assert small.redis_memory_gb == pytest.approx(2.5)
    assert small.redis_shards == 1
    assert small.batch_on_one_machine  # 86.4 M events x 40 CPU-s = 0.96 CPU-h

    big = capacity.plan(INPUTS, 100_000)
    assert big.flow_processes == 25
    assert big.partitions == 50
    assert big.api_workers == 79  # 100,000 / 1,272.7 = 78.6
    assert big.redis_shards == 2  # 450k commands/s over 250k a shard
    assert not big.batch_on_one_machine  # 96 CPU-h > 8 cores x 2 h
    assert big.spark_cores == 300  # 8,640 M events x 250 core-s / 7,200 s
    assert big.bottleneck == "API workers"


def test_bottleneck_is_the_always_on_part_with_most_cores() -> None:
    cheap_lists = capacity.Inputs(
        **{**INPUTS.__dict__, "lists_per_worker": 100_000.0, "flow_cpu_us_per_event": 1_000.0}
    )
    assert capacity.plan(cheap_lists, 10_000).bottleneck == "flow processes"


def test_rewrite_doc_replaces_only_the_marked_block(tmp_path: Path) -> None:
    doc = tmp_path / "scaling.md"
    doc.write_text(f"before\n{capacity.TABLE_START}\nold\n{capacity.TABLE_END}\nafter\n")
    assert capacity.rewrite_doc("new table", doc)
    assert (
        doc.read_text()
        == f"before\n{capacity.TABLE_START}\nnew table\n{capacity.TABLE_END}\nafter\n"
    )
    assert not capacity.rewrite_doc("new table", doc)
    doc.write_text("no markers\n")
    with pytest.raises(ValueError, match="capacity-table"):
        capacity.rewrite_doc("new table", doc)


def test_docs_table_is_derived_from_the_recorded_figures() -> None:
    """docs/scaling.md must hold the table the recorded figures give (run benchmarks.report)."""
    table = capacity.render_table(capacity.load_inputs())
    assert (
        f"{capacity.TABLE_START}\n{table}\n{capacity.TABLE_END}" in capacity.SCALING_DOC.read_text()
    )


def test_load_inputs_reads_each_named_key(tmp_path: Path) -> None:
    for name in ("stream", "serving", "soak", "batch"):
        shutil.copy(capacity.RESULTS / f"{name}.json", tmp_path / f"{name}.json")
    serving = json.loads((tmp_path / "serving.json").read_text())
    serving["recs_max_rps"] = 500.0
    (tmp_path / "serving.json").write_text(json.dumps(serving))
    assert capacity.load_inputs(tmp_path).lists_per_worker == 500.0
