"""What every benchmark records next to its figures: when, where, and how many repeats."""

from __future__ import annotations

import json
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
BENCH_MODELS = Path(".tillflow/bench-models")  # the batch benchmark's models, served by serving


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    """
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def print_repeat(repeat: int, repeats: int, runs: dict[str, list[float]]) -> None:
    """One line with the latest value of every measured figure."""
    latest = ", ".join(f"{k}={v[-1]:,.1f}" for k, v in runs.items())
    print(f"repeat {repeat + 1}/{repeats}: {latest}")


def write_medians(
    name: str, runs: dict[str, list[float]], ratio: tuple[str, str, str], meta: dict[str, Any]
) -> None:
    """Write the median of every figure plus ``ratio = (name, numerator, denominator)``."""
    figures = {k: median(v) for k, v in runs.items()}
    key, num, den = ratio
    figures[key] = figures[num] / figures[den]
    print(f"wrote {write_result(name, figures, {**meta, **runs})}")


def write_result(name: str, figures: dict[str, Any], runs: dict[str, Any]) -> Path:
    """Write ``results/<name>.json``: the figures (medians), every run, and the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()},
        "meta": {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "runs": runs,
        },
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
