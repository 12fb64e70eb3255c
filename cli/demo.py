"""``tillflow demo``: a living shop within minutes.

Phases, each printed as it completes with its duration:

1. **stack** — Kafka, Redis, Neo4j, Prometheus, the API and the flows;
2. **backfill** — several simulated weeks of the shop's history, up to now, produced to Kafka as
   fast as the machine allows and processed by the running flows into the lake (the demo waits
   until bronze holds every offset Kafka acknowledged);
3. **pipeline** — silver → gold → features → train: the demand model and the ranker are
   trained, registered and promoted (the API follows the registry without a restart);
4. **graph** — the co-purchase graph loaded into Neo4j;
5. **live** — the same shop goes on at ``--rate`` events per second, stamped with wall time,
   and the scheduler starts; the flows, the API and the scheduler are restarted if they die,
   and stopped when the demo ends (Ctrl-C or SIGTERM).

``--backfill-days 0`` skips phases 2–4 (a shop that starts empty, as before).
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from batch.lake import processed_version
from cli.console import out
from cli.progress import track
from infra.errors import StackError
from schemas.lake import bronze_app_id, bronze_path
from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.producer import RunOptions, RunReport, run_shop
from simulator.shop import DAY, Phases, Shop

DEMO_SESSIONS_PER_DAY = 3_000.0
"""Sessions per simulated day of the demo's shop: ~26k events a day, so that two weeks of
history pass through the flows in about a minute on two cores."""


class Clock:
    """Seconds since the demo started, for the phase lines."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.started = now()
        self.phase_started = self.started

    def done(self, phase: str, what: str) -> None:
        now = self.now()
        out.print(
            f"[{now - self.started:6.1f}s] {phase} done in {now - self.phase_started:.1f}s: {what}"
        )
        self.phase_started = now


def demo_shop(backfill_days: float, now: datetime, config: ShopConfig | None = None) -> Shop:
    """The demo's shop (``config``, by default ~26k events a simulated day), starting at
    midnight UTC ``backfill_days`` before ``now``."""
    start = (now - timedelta(days=backfill_days)).replace(hour=0, minute=0, second=0, microsecond=0)
    config = config or ShopConfig(sessions_per_day=DEMO_SESSIONS_PER_DAY)
    return Shop(config.model_copy(update={"start": start}))


def backfill(settings: Settings, shop: Shop, phases: Phases, until: float) -> RunReport:
    """Produce the shop's history up to simulated time ``until`` as fast as Kafka takes it."""
    total = None  # the number of events is known only once they are produced
    with track("backfill: producing", total, "events") as progress:

        def advance(sent: int) -> None:
            progress.update(sent)

        return asyncio.run(
            run_shop(
                settings,
                shop.config,
                RunOptions(ground_truth=None),
                advance,
                shop=shop,
                events=phases.until(until),
            )
        )


def wait_for_bronze(
    settings: Settings,
    offsets: dict[tuple[str, int], int],
    alive: Callable[[], bool],
    poll_s: float = 0.5,
) -> None:
    """Wait until bronze holds every acknowledged offset (the flows' lake sink commits each
    partition's last offset with its rows); ``StackError`` when the flows stop meanwhile."""
    topics = {settings.topic(t): t for t in INPUT_TOPICS}
    targets = {(topics[name], partition): offset for (name, partition), offset in offsets.items()}
    total = sum(o + 1 for o in targets.values())
    with track("backfill: flows → lake", total, "events") as progress:
        while True:
            done = 0
            for (topic, partition), target in targets.items():
                path = bronze_path(settings.lake_dir, topic)
                committed = processed_version(path, bronze_app_id(topic, partition))
                done += min(target, -1 if committed is None else committed) + 1
            progress.update(done)
            if done >= total:
                return
            if not alive():
                raise StackError("the flows stopped during the backfill: see .tillflow/logs")
            time.sleep(poll_s)


def run_pipeline(settings: Settings, served_within_s: float = 120.0) -> str:
    """Train the models on the backfilled history and wait until the API serves the versions
    it registered; a summary of what was registered."""
    from batch.jobs import STEPS, run_job

    with track("pipeline", STEPS["pipeline"], "steps") as progress:
        run, result = run_job(
            settings, "pipeline", trigger="demo", step=lambda _name: progress.advance()
        )
    if run.status != "ok":
        return f"{run.status}: {run.error} (the scheduler retries on its schedule)"
    d = result.details if result else {}
    wanted = {m: str(d[f"{m}_version"]) for m in ("demand", "ranker") if f"{m}_version" in d}
    wait_until_served(settings, wanted, served_within_s)
    return (
        f"{d.get('demand_version')} (WAPE {d.get('demand_wape', 0):.2f} vs naive "
        f"{d.get('demand_wape_naive', 0):.2f}), {d.get('ranker_version')} (HR@10 "
        f"{d.get('ranker_hr_at_10', 0):.2f} vs popularity "
        f"{d.get('ranker_hr_at_10_popularity', 0):.2f}) registered and served"
    )


def served_models(metrics: str) -> dict[str, str]:
    """``{model: version}`` from the API's ``tillflow_model_info`` lines.

    >>> served_models('tillflow_model_info{model="ranker",version="ranker:v2"} 1.0\\nup 1')
    {'ranker': 'ranker:v2'}
    """
    return dict(
        re.findall(
            r'^tillflow_model_info\{model="([^"]+)",version="([^"]+)"\}', metrics, re.MULTILINE
        )
    )


def wait_until_served(settings: Settings, wanted: dict[str, str], within_s: float) -> None:
    """Poll the API's metrics until it has loaded ``wanted`` (it follows the registry)."""
    url = f"http://{settings.api_host}:{settings.api_port}/metrics"
    deadline = time.monotonic() + within_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                served = served_models(answer.read().decode())
        except OSError:
            served = {}
        if all(served.get(m) == v for m, v in wanted.items()):
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"the API did not load {wanted} within {within_s:.0f}s "
                f"(it serves {served}): see .tillflow/logs/api.log"
            )
        time.sleep(settings.model_poll_s / 2)


def load_graph_now(settings: Settings) -> str:
    from graph.load import load_graph
    from infra.clients import neo4j_driver, redis_client

    with (
        neo4j_driver(settings) as driver,
        redis_client(settings) as cache,
        track("graph", None, "rows") as progress,
    ):
        report = load_graph(settings, driver, cache, progress.add)
    return ", ".join(f"{k} {v:,}" for k, v in report.written.items() if v) or "up to date"


def run_demo(
    settings: Settings,
    rate: float,
    days: float,
    backfill_days: float,
    config: ShopConfig | None = None,
    keep_running: bool = False,
) -> None:
    """Run the demo's phases; at its end the flows, the API and the scheduler are stopped,
    unless ``keep_running`` (for a caller that looks at the shop afterwards)."""
    from flows.catalogue import store_catalogue
    from infra.stack import local
    from infra.stack.processes import running_pid
    from infra.stack.topics import ensure_topics
    from infra.stack.watchdog import Watchdog, Watched

    clock = Clock()
    now = datetime.now(UTC)
    shop = demo_shop(backfill_days, now, config)
    phases = Phases(shop.events())
    local.up(settings)
    ensure_topics(settings)
    local.start_api(settings)
    store_catalogue(settings, shop.catalogue())  # the flows price from it
    local.start_flows(settings)
    clock.done("stack", "Kafka, Redis, Neo4j, Prometheus, the API and the flows run")
    if backfill_days > 0:
        report = backfill(settings, shop, phases, now.timestamp())
        flows = local.flows_files(settings)
        wait_for_bronze(settings, report.last_offsets, lambda: running_pid(flows) is not None)
        clock.done(
            "backfill",
            f"{report.events:,} events of {backfill_days:g} simulated days "
            "through Kafka and the flows into the lake",
        )
        clock.done("pipeline", run_pipeline(settings))
        clock.done("graph", load_graph_now(settings))
    local.start_scheduler(settings)
    local.start_search_indexer(settings)
    print_addresses(settings, rate)
    options = RunOptions(
        rate=rate, clock="wall", ground_truth=settings.runtime_dir / "ground_truth.json"
    )
    live_until = now.timestamp() + days * DAY
    watchdog = Watchdog(
        [
            Watched("flows", local.flows_files(settings), lambda: local.start_flows(settings)),
            Watched("api", local.api_files(settings), lambda: local.start_api(settings)),
            Watched(
                "scheduler",
                local.scheduler_files(settings),
                lambda: local.start_scheduler(settings),
            ),
        ]
    )
    watchdog.start()  # a service that dies is restarted; the demo's end stops them all
    try:
        report = asyncio.run(
            run_shop(settings, shop.config, options, shop=shop, events=phases.until(live_until))
        )
    finally:
        watchdog.stop(terminate_services=not keep_running)
    out.print(f"produced {report.events} live events ({report.events_per_s:,.0f}/s)")


def print_addresses(settings: Settings, rate: float) -> None:
    from infra.stack import local

    api_url = f"http://{settings.api_host}:{settings.api_port}"
    rows = [
        f"storefront: {api_url}/   pricing: {api_url}/pricing   admin: {api_url}/admin",
        f"API: {api_url}/docs   metrics: {api_url}/metrics   ingest: POST {api_url}/events/<topic>"
        " with a producer token (`tillflow producers create NAME --topic T`, then "
        f"POST {api_url}/oauth/token)",
        f"Prometheus: http://127.0.0.1:{settings.prometheus_port}/alerts   Grafana: "
        "http://127.0.0.1:3000 with `docker compose -f infra/docker-compose.yml up` or any "
        "local Grafana (docs/observability.md)",
        f"search: {api_url}/search?q=yogurt   logs: {settings.opensearch_url}/"
        f"{settings.log_index_prefix}*/_search?q=level:warning",
        f"watch: kcat -b {settings.kafka_bootstrap} -C -t {settings.topic_prefix}orders",
        f"live: simulating at {rate:,.0f} events/s; Ctrl-C stops the simulator, `make down` all",
    ]
    for s in local.status(settings):
        out.print(f"{s.name:<11} {s.state:<8} {s.address}")
    for row in rows:
        out.print(row)
