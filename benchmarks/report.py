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
        parts.append("")
    return "\n".join(parts) + "\n"


def main() -> None:
    (ROOT / "BENCHMARKS.md").write_text(render())
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
