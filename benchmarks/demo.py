"""The demo's phases, from start to a living shop -> benchmarks/results/demo.json.

Runs :func:`cli.demo.run_demo` as ``make demo`` does (the running stack reused; the API, the
flows, the scheduler and the search indexer started detached) in a fresh project folder with
topic, Redis, graph and model-name prefixes and an API port of its own, so that it runs beside
a running demo or test suite without touching them; everything it started is stopped and its
topics and graph are deleted at the end.

Figures, from the phase lines the demo prints:

- ``alive_seconds``: from the start until the last phase before the live shop completed
  (backfill done, models trained, registered and served, graph loaded). Goal: 120 s on the
  2-core reference machine. Baseline: ``sequential_seconds``, the phases' own durations added
  up, i.e. what they would take one after another.
- ``<phase>_seconds`` for stack, backfill, pipeline and graph; ``backfill_events`` and
  ``flows_events_per_s`` (events through Kafka and the flows into the lake per second of the
  backfill phase).
- What the pages show afterwards: the demand model's WAPE next to the naive forecast's, the
  ranker's HR@10 next to popularity's, and over every product of ``GET /pricing/{sku}``: the
  median of the elasticity's buckets and standard deviation, the share of products with a
  price history and the median number of price changes in it.
- ``load_average``: the machine's 1-minute load average at the start and at the end.

``python -m benchmarks.demo --sessions-per-day N --competitor-updates-per-day M --days D``
measures another shop size (results written only with ``--out``); ``--smoke`` a tiny shop.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import Mode, free_port, write_result

PHASES = ("stack", "backfill", "pipeline", "graph")
PHASE_LINE = re.compile(r"^\[ *([0-9.]+)s\] (\w+) done in ([0-9.]+)s: (.*)$", re.MULTILINE)
TRAINED = re.compile(
    r"WAPE ([0-9.]+) vs naive ([0-9.]+)\).*HR@10 ([0-9.]+) vs popularity ([0-9.]+)\)"
)
BACKFILLED = re.compile(r"^([0-9,]+) events")
SHOP_FIELDS = {"products", "shoppers", "sessions_per_day", "competitor_updates_per_day"}


class Tee(io.TextIOBase):
    """Writes to the real stdout and keeps a copy (the phase lines are read from it)."""

    def __init__(self, out: Any) -> None:
        self.out, self.kept = out, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return int(self.out.write(text))

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def isolated(folder: Path) -> Iterator[None]:
    """Prefixes and ports of this run's own, read by the detached services from the env."""
    rid = uuid.uuid4().hex[:6]
    env = {
        "TILLFLOW_TOPIC_PREFIX": f"benchdemo{rid}.",
        "TILLFLOW_REDIS_PREFIX": f"benchdemo{rid}:",
        "TILLFLOW_GRAPH_NAMESPACE": f"benchdemo{rid}",
        "TILLFLOW_MLFLOW_MODEL_PREFIX": f"bench-demo{rid}-",
        "TILLFLOW_API_PORT": str(free_port()),
        "TILLFLOW_FLOW_BASE_PORT": str(free_port()),
        "TILLFLOW_FLOW_METRICS_PORT": "0",
        "TILLFLOW_SCHEDULER_METRICS_PORT": "0",
        "TILLFLOW_RATE_LIMIT_PER_S": "0",
    }
    saved = {k: os.environ.get(k) for k in env}
    here = Path.cwd()
    os.environ.update(env)
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cleanup(settings: Any) -> None:
    from graph.load import drop_namespace
    from infra.clients import neo4j_driver
    from infra.stack import local
    from infra.stack.topics import delete_topics
    from schemas.topics import ALL_TOPICS

    local.down(settings)  # only what this folder started: api, flows, scheduler, indexer
    delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
    with neo4j_driver(settings) as driver:
        drop_namespace(driver, settings.graph_namespace)


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: dict[str, Any] = json.loads(answer.read())
    return body


def pages(settings: Any) -> dict[str, float]:
    """What the pricing page shows, over every product with a published price."""
    from infra.clients import redis_client

    with redis_client(settings, decode_responses=True) as client:
        skus = sorted(client.hkeys(settings.keys.current_prices))
    api = f"http://{settings.api_host}:{settings.api_port}"
    details = [_get(f"{api}/pricing/{sku}") for sku in skus]
    if not details:
        return {"priced_products": 0}
    current = [d["current"] for d in details]
    stds = [c["elasticity_std"] for c in current if c["elasticity_std"] is not None]
    return {
        "priced_products": len(details),
        "elasticity_buckets_median": statistics.median(c["observations"] for c in current),
        "elasticity_std_median": statistics.median(stds) if stds else float("nan"),
        "share_with_price_history": sum(1 for d in details if d["history"]) / len(details),
        "price_changes_median": statistics.median(len(d["history"]) for d in details),
        "share_with_forecast": sum(1 for d in details if d["explanation"]) / len(details),
    }


def figures_of(printed: str) -> dict[str, float]:
    """Phase seconds and model quality from the demo's phase lines."""
    lines = PHASE_LINE.findall(printed)
    figures: dict[str, float] = {}
    for at, phase, took, what in lines:
        figures[f"{phase}_seconds"] = float(took)
        figures["alive_seconds"] = max(figures.get("alive_seconds", 0.0), float(at))
        if phase == "pipeline" and (m := TRAINED.search(what)):
            wape, naive, hr, popularity = (float(x) for x in m.groups())
            figures |= {"demand_wape": wape, "demand_wape_naive": naive}
            figures |= {"ranker_hr_at_10": hr, "ranker_hr_at_10_popularity": popularity}
        if phase == "backfill" and (m := BACKFILLED.search(what)):
            figures["backfill_events"] = float(m.group(1).replace(",", ""))
    missing = [p for p in PHASES if f"{p}_seconds" not in figures]
    if missing:
        raise RuntimeError(f"the demo printed no line for {missing}:\n{printed}")
    figures["sequential_seconds"] = sum(figures[f"{p}_seconds"] for p in PHASES)
    figures["flows_events_per_s"] = figures["backfill_events"] / figures["backfill_seconds"]
    return figures


def run(config: Any, backfill_days: float) -> dict[str, float]:
    """One demo in a fresh folder: its figures, then everything it started stopped."""
    from cli.demo import run_demo
    from observability.logs import configure_logging
    from schemas.settings import Settings

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as folder, isolated(Path(folder)):
        settings = Settings()
        logs = settings.runtime_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        tee = Tee(sys.stdout)
        try:
            with (logs / "demo.log").open("a") as log, contextlib.redirect_stdout(tee):
                configure_logging(settings, log)
                run_demo(settings, 200, 0.0005, backfill_days, config, keep_running=True)
            figures = figures_of(tee.kept.getvalue()) | pages(settings)
        finally:
            cleanup(settings)
    return figures | {"load_average_start": load_before, "load_average_end": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> None:
    from cli.demo import demo_shop

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shop, results to a temp dir")
    parser.add_argument("--days", type=float, default=None, help="simulated days of backfill")
    parser.add_argument("--sessions-per-day", type=float, default=None)
    parser.add_argument("--competitor-updates-per-day", type=float, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the result here instead")
    args = parser.parse_args(argv)
    mode = Mode(smoke=args.smoke)
    days = args.days if args.days is not None else mode.size(14.0, 4.0)
    size: dict[str, Any] = {}
    if mode.smoke:
        size = {"products": 40, "shoppers": 300, "sessions_per_day": 1_500, "competitors": 1}
    if args.sessions_per_day is not None:
        size["sessions_per_day"] = args.sessions_per_day
    if args.competitor_updates_per_day is not None:
        size["competitor_updates_per_day"] = args.competitor_updates_per_day
    default = demo_shop(days, datetime.now(UTC)).config  # the shop `make demo` runs
    config = default.model_copy(update=size) if size else None
    started = time.monotonic()
    figures = run(config, days)
    shop = (config or default).model_dump(include=SHOP_FIELDS)
    runs = {"backfill_days": days, "shop": shop, "wall_seconds": time.monotonic() - started}
    print(json.dumps(figures, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps({**figures, "meta": runs}, indent=2) + "\n")
        print(f"wrote {args.out}")
    elif size and not mode.smoke:
        print("another shop size: not written to benchmarks/results (use --out)")
    else:
        print(f"wrote {write_result('demo', figures, runs, mode)}")


if __name__ == "__main__":
    main()
