"""``tillflow demo``: a living shop within minutes.

Phases, each printed as it completes with its duration:

1. **stack** — Kafka, Redis, Neo4j, Prometheus answer, the catalogue is stored and the flows
   run; the API starts meanwhile (its start-up overlaps the backfill);
2. **backfill** — several simulated weeks of the shop's history, up to now, produced to Kafka as
   fast as the machine allows and processed by the running flows into the lake (the demo waits
   until bronze holds every offset Kafka acknowledged);
3. **pipeline** — silver → gold → features → train: the demand model and the ranker are
   trained, registered and promoted (the API follows the registry without a restart);
4. **graph** — the co-purchase graph loaded into Neo4j, from gold: it starts as soon as the
   pipeline has written gold and loads while the models train (Neo4j is another process), so
   its line may come before the pipeline's;
5. **live** — the same shop goes on at ``--rate`` events per second, stamped with wall time,
   and the scheduler starts; the flows, the API and the scheduler are restarted if they die,
   and stopped when the demo ends (Ctrl-C or SIGTERM).

``--backfill-days 0`` skips phases 2–4: a shop that starts empty and learns from the live traffic.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from batch.lake import processed_version
from cli.console import out
from cli.progress import Board, board
from infra.errors import StackError
from schemas.lake import bronze_app_id, bronze_path
from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.producer import RunOptions, RunReport, run_shop
from simulator.shop import DAY, Phases, Shop

DEMO_SHOP = ShopConfig(sessions_per_day=2_000.0, competitor_updates_per_day=1.0)
"""The demo's shop: 500 products, 5,000 shoppers, 2,000 web sessions a day and each
competitor's price of each product checked about once a day: ~14k events a simulated day, so
that two weeks of history pass through the flows in under a minute on two cores. The flows'
throughput sets the backfill's pace, so events are spent where the pages show them: the
shoppers' sessions (elasticities, forecasts, recommendations), not re-checks of the
competitors' prices, which drift by ~2 % a check."""

T = TypeVar("T")


class Clock:
    """Seconds since the demo started, for the phase lines. Phases may overlap (the graph
    loads while the models train), so each says when it began; lines may come from threads.

    >>> ticks = iter([0.0, 5.0, 30.0, 42.0])
    >>> lines: list[str] = []
    >>> clock = Clock(lines.append, lambda: next(ticks))
    >>> began = clock.now()
    >>> clock.done("graph", "loaded", began)
    >>> clock.done("pipeline", "trained", began)
    >>> print("\\n".join(lines))
    [  30.0s] graph done in 25.0s: loaded
    [  42.0s] pipeline done in 37.0s: trained
    """

    def __init__(self, show: Callable[[str], None], now: Callable[[], float] = time.monotonic):
        self.show, self.now = show, now
        self.started = now()
        self._lock = threading.Lock()

    def done(self, phase: str, what: str, began: float) -> None:
        """Print that ``phase``, begun at ``began`` (a reading of :attr:`now`), completed."""
        with self._lock:
            now = self.now()
            self.show(f"[{now - self.started:6.1f}s] {phase} done in {now - began:.1f}s: {what}")


def overlapped(
    main: Callable[[Callable[[str], None]], T], side: Callable[[], object], after: str
) -> T:
    """Run ``main``, which reports each stage it completes, and ``side`` in a thread from the
    moment ``main`` completes the stage ``after`` (once ``main`` returns, when it never does);
    return ``main``'s result when both are done. An error of either is raised, ``main``'s first.

    >>> seen = []
    >>> def main(reached: Callable[[str], None]) -> str:
    ...     reached("silver")
    ...     reached("gold")
    ...     seen.append(side_done.wait(10))  # the side work runs while main goes on
    ...     return "trained"
    >>> side_done = threading.Event()
    >>> overlapped(main, side_done.set, after="gold"), seen
    ('trained', [True])
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlapped") as pool:
        side_work: list[Future[object]] = []

        def reached(stage: str) -> None:
            if stage == after and not side_work:
                side_work.append(pool.submit(side))

        result = main(reached)
        if not side_work:
            side_work.append(pool.submit(side))
        side_work[0].result()
    return result


def demo_shop(backfill_days: float, now: datetime, config: ShopConfig | None = None) -> Shop:
    """The demo's shop (``config``, by default :data:`DEMO_SHOP`), starting at midnight UTC
    ``backfill_days`` before ``now``."""
    start = (now - timedelta(days=backfill_days)).replace(hour=0, minute=0, second=0, microsecond=0)
    config = config or DEMO_SHOP
    return Shop(config.model_copy(update={"start": start}))


def backfill(
    settings: Settings, shop: Shop, phases: Phases, until: float, shown: Board
) -> RunReport:
    """Produce the shop's history up to simulated time ``until`` as fast as Kafka takes it."""
    total = None  # the number of events is known only once they are produced
    with shown.track("backfill: producing", total, "events") as progress:

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
    shown: Board,
    poll_s: float = 0.5,
) -> None:
    """Wait until bronze holds every acknowledged offset (the flows' lake sink commits each
    partition's last offset with its rows); ``StackError`` when the flows stop meanwhile."""
    topics = {settings.topic(t): t for t in INPUT_TOPICS}
    targets = {(topics[name], partition): offset for (name, partition), offset in offsets.items()}
    total = sum(o + 1 for o in targets.values())
    with shown.track("backfill: flows → lake", total, "events") as progress:
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


def run_pipeline(
    settings: Settings,
    shown: Board,
    after_stage: Callable[[str], None] = lambda _: None,
    served_within_s: float = 120.0,
) -> str:
    """Train the models on the backfilled history and wait until the API serves the versions
    it registered; a summary of what was registered. ``after_stage`` hears each stage done."""
    from batch.jobs import STEPS, run_job

    with shown.track("pipeline", STEPS["pipeline"], "steps") as progress:
        run, result = run_job(
            settings,
            "pipeline",
            trigger="demo",
            step=lambda _name: progress.advance(),
            after_stage=after_stage,
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


def load_graph_now(settings: Settings, shown: Board) -> str:
    from graph.load import load_graph
    from infra.clients import neo4j_driver, redis_client

    with (
        neo4j_driver(settings) as driver,
        redis_client(settings) as cache,
        shown.track("graph", None, "rows") as progress,
    ):
        report = load_graph(settings, driver, cache, progress.add)
    return ", ".join(f"{k} {v:,}" for k, v in report.written.items() if v) or "up to date"


def train_and_load(settings: Settings, clock: Clock, shown: Board) -> None:
    """The pipeline, and the graph load from the moment gold is written: Neo4j loads the
    graph while the models train. Each phase prints its line when it completes."""

    def graph() -> None:
        began = clock.now()
        clock.done("graph", load_graph_now(settings, shown), began)

    def pipeline(after_stage: Callable[[str], None]) -> None:
        began = clock.now()
        clock.done("pipeline", run_pipeline(settings, shown, after_stage), began)

    overlapped(pipeline, graph, after="gold")


PIPELINE_MODULES = (
    "batch.jobs",
    "batch.silver",
    "batch.gold",
    "batch.features",
    "featurestore.repo",
    "batch.training",
    "graph.load",
)


def warm_up(modules: tuple[str, ...] = PIPELINE_MODULES) -> None:
    """Import what the pipeline and the graph load use (Feast alone takes ~4 s of CPU), so
    that they start at once after the backfill."""
    for name in modules:
        importlib.import_module(name)


def flows_alive(settings: Settings) -> Callable[[], bool]:
    from infra.stack import local
    from infra.stack.processes import running_pid

    files = local.flows_files(settings)
    return lambda: running_pid(files) is not None


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
    from infra.stack.topics import ensure_topics

    with board() as shown, ThreadPoolExecutor(3, thread_name_prefix="start") as starting:
        clock = Clock(shown.print)
        now = datetime.now(UTC)
        shop = demo_shop(backfill_days, now, config)
        phases = Phases(shop.events())
        local.up(settings)
        ensure_topics(settings)
        store_catalogue(settings, shop.catalogue())  # the flows price from it
        flows = starting.submit(local.start_flows, settings)  # starts while history is produced
        clock.done(
            "stack", "Kafka, Redis, Neo4j, Prometheus answer; the flows start", clock.started
        )
        if backfill_days > 0:
            began = clock.now()
            report = backfill(settings, shop, phases, now.timestamp(), shown)
            # the API starts, and the pipeline's modules are imported, while the flows catch
            # up: not before, where they would slow the flows down on two cores, nor after,
            # where the demo would wait for them
            api = starting.submit(local.start_api, settings)
            imported = starting.submit(warm_up)
            flows.result()  # the flows did not exit at start-up (else StackError with their log)
            wait_for_bronze(settings, report.last_offsets, flows_alive(settings), shown)
            clock.done(
                "backfill",
                f"{report.events:,} events of {backfill_days:g} simulated days "
                "through Kafka and the flows into the lake",
                began,
            )
        else:
            api = starting.submit(local.start_api, settings)
        flows.result()
        api.result()  # the API answers (else StackError with the end of its log)
        if backfill_days > 0:
            imported.result()
            train_and_load(settings, clock, shown)
    go_live(settings, shop, phases, rate, now.timestamp() + days * DAY, keep_running)


def go_live(
    settings: Settings,
    shop: Shop,
    phases: Phases,
    rate: float,
    until: float,
    keep_running: bool,
) -> None:
    """The scheduler and the search indexer start; the shop goes on at ``rate`` events/s,
    stamped with wall time, until simulated time ``until``; a service that dies is restarted."""
    from infra.stack import local
    from infra.stack.watchdog import Watchdog, Watched

    local.start_scheduler(settings)
    local.start_search_indexer(settings)
    print_addresses(settings, rate)
    options = RunOptions(
        rate=rate, clock="wall", ground_truth=settings.runtime_dir / "ground_truth.json"
    )
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
            run_shop(settings, shop.config, options, shop=shop, events=phases.until(until))
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
