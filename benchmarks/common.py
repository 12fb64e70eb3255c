"""What every benchmark records next to its figures: when, where, and how many repeats."""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

N = TypeVar("N", int, float)

RESULTS = Path(__file__).resolve().parent / "results"
SMOKE_DIR_ENV = "TILLFLOW_BENCH_SMOKE_DIR"  # set by benchmarks.smoke: a folder per run


def smoke_results() -> Path:
    """Where ``--smoke`` passes write: ``$TILLFLOW_BENCH_SMOKE_DIR`` (``make bench-smoke`` gives
    each run a folder of its own), else ``<tmp>/tillflow-bench-smoke``."""
    chosen = os.environ.get(SMOKE_DIR_ENV)
    return Path(chosen) if chosen else Path(tempfile.gettempdir()) / "tillflow-bench-smoke"


@dataclass(frozen=True)
class Mode:
    """Full size, or ``--smoke``: a tiny size through the same real path, so a broken
    benchmark fails CI (``make bench-smoke``); its results never replace the real ones.

    >>> Mode(smoke=True).size(150_000, 2_000), Mode(smoke=False).size(150_000, 2_000)
    (2000, 150000)
    """

    smoke: bool = False

    def size(self, full: N, smoke: N) -> N:
        return smoke if self.smoke else full

    @property
    def results(self) -> Path:
        return smoke_results() if self.smoke else RESULTS

    @property
    def models(self) -> Path:
        """Where the batch benchmark leaves the models the serving benchmark serves."""
        return smoke_results() / "bench-models" if self.smoke else BENCH_MODELS

    @property
    def model_prefix(self) -> str:
        """The MLflow registered-model prefix of the batch benchmark's models."""
        return "bench-smoke-" if self.smoke else "bench-"


def parse_mode(doc: str | None, argv: Sequence[str] | None = None) -> Mode:
    """The benchmark's command line: ``--smoke`` for the tiny size."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny size, results to a temp dir")
    return Mode(smoke=parser.parse_args(argv).smoke)


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
    name: str,
    runs: dict[str, list[float]],
    ratio: tuple[str, str, str],
    meta: dict[str, Any],
    mode: Mode = Mode(),
    more_ratios: tuple[tuple[str, str, str], ...] = (),
) -> None:
    """Write the median of every figure plus ``ratio = (name, numerator, denominator)`` (and
    each of ``more_ratios``), each a ratio of the two medians."""
    figures = {k: median(v) for k, v in runs.items()}
    for key, num, den in (ratio, *more_ratios):
        figures[key] = figures[num] / figures[den]
    print(f"wrote {write_result(name, figures, {**meta, **runs}, mode)}")


def meta(runs: dict[str, Any]) -> dict[str, Any]:
    """A result's ``meta``: when and on what it was measured, and how (``runs``)."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": runs,
    }


def write_result(
    name: str, figures: dict[str, Any], runs: dict[str, Any], mode: Mode = Mode()
) -> Path:
    """Write ``results/<name>.json`` (a smoke run: :func:`smoke_results`): the
    figures (medians), every run, and the machine."""
    mode.results.mkdir(parents=True, exist_ok=True)
    path = mode.results / f"{name}.json"
    payload = {
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()},
        "meta": meta(runs),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its live descendants
    (the server and its workers; Linux ``/proc``)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:  # it ended meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pending.extend(int(c) for c in children)
    return total


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now (the OS's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
