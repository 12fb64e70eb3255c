"""``tillflow``: one command for the local stack, the simulator, ingestion and the API."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.batch import batch_app, models_app, scheduler_app
from cli.console import err, out
from cli.console import fail as _fail
from cli.console import settings_with_logging as _settings
from cli.graph import batch_graph
from cli.producers import admin_app, producers_app
from cli.search import search_app
from infra.errors import StackError
from infra.stack.local import ServiceStatus
from schemas.settings import InsecureSettings
from schemas.topics import INPUT_TOPICS, input_topic

app = typer.Typer(
    help="tillflow: live shop events in, prices and recommendations out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Kafka topics of the contract.", no_args_is_help=True)
flows_app = typer.Typer(help="The streaming dataflows (Bytewax).", no_args_is_help=True)
catalogue_app = typer.Typer(
    help="Product master data (its durable file and its Redis copy).", no_args_is_help=True
)
redis_app = typer.Typer(help="Redis, the serving copy: rebuild it.", no_args_is_help=True)
features_app = typer.Typer(help="The Feast feature repository.", no_args_is_help=True)
schemas_app = typer.Typer(help="The event contract.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(flows_app, name="flows")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(redis_app, name="redis")
app.add_typer(features_app, name="features")
app.add_typer(batch_app, name="batch")
app.add_typer(models_app, name="models")
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(producers_app, name="producers")
app.add_typer(admin_app, name="admin")
app.add_typer(search_app, name="search")
batch_app.command("graph")(batch_graph)


@app.command()
def setup() -> None:
    """Fetch what the local stack needs (Kafka, Neo4j, OpenSearch and Delta-for-Spark jars from
    Maven Central); check Java."""
    from batch.engines.spark_session import ensure_jars as ensure_spark_jars
    from infra.stack import kafka, neo4j, opensearch

    settings = _settings()
    try:
        for service in (kafka.KAFKA, neo4j.NEO4J, opensearch.OPENSEARCH):
            service.find_java()
            out.print(f"{service.name} jars ready in {service.ensure_jars(settings)}")
        spark_libs = ensure_spark_jars(settings)
    except StackError as exc:
        raise _fail(exc) from None
    out.print(f"spark (delta) jars ready in {spark_libs}")


@app.command()
def up() -> None:
    """Start Redis (a local three-master Redis Cluster with TILLFLOW_REDIS_CLUSTER=true), Kafka
    (KRaft), Neo4j, OpenSearch, MLflow and Prometheus on 127.0.0.1 and create the topics.
    Idempotent."""
    from infra.stack import local
    from infra.stack.topics import ensure_topics

    settings = _settings()
    try:
        local.up(settings)
        states = ensure_topics(settings)
    except StackError as exc:
        raise _fail(exc) from None
    _print_status(local.status(settings))
    out.print(", ".join(f"{s.name}({s.partitions}) {s.action}" for s in states))


@app.command()
def down() -> None:
    """Stop the services that `tillflow up` started."""
    from infra.stack import local

    stopped = local.down(_settings())
    out.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status() -> None:
    """Say what runs where."""
    from infra.stack import local

    _print_status(local.status(_settings()))


@app.command()
def doctor() -> None:
    """Check Java, ports, disk, memory, every service, the topics, catalogue and models;
    say what to do about each problem. Exit 1 when something is a problem."""
    from infra.doctor import examine

    checks = examine(_settings())
    table = Table("status", "check", "found", "do")
    style = {"ok": "green", "warn": "yellow", "problem": "red"}
    for c in checks:
        table.add_row(f"[{style[c.status]}]{c.status}[/]", c.name, c.found, c.fix)
    out.print(table)
    problems = [c for c in checks if c.status == "problem"]
    out.print(f"{len(problems)} problem(s), {sum(c.status == 'warn' for c in checks)} warning(s)")
    if problems:
        raise typer.Exit(1)


def _print_status(statuses: list[ServiceStatus]) -> None:
    table = Table("service", "state", "address", "pid", "log")
    for s in statuses:
        table.add_row(s.name, s.state, s.address, str(s.pid or "-"), s.log)
    out.print(table)


@topics_app.command("create")
def topics_create() -> None:
    """Create the contract's topics (input topics with TILLFLOW_INPUT_PARTITIONS partitions)."""
    from infra.stack.topics import ensure_topics

    try:
        for s in ensure_topics(_settings()):
            out.print(f"{s.name}\t{s.partitions} partitions\t{s.action}")
    except StackError as exc:
        raise _fail(exc) from None


@flows_app.command("run")
def flows_run(
    processes: Annotated[
        int | None, typer.Option(help="Processes (TILLFLOW_FLOW_PROCESSES).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Workers per process.")] = None,
    recovery: Annotated[bool, typer.Option(help="Snapshot state for crash recovery.")] = True,
    once: Annotated[bool, typer.Option(help="Stop at the end of the topics (backfill).")] = False,
) -> None:
    """Run the dataflow over every partition of the input topics."""
    from flows.run import run

    settings = _settings()
    try:
        code = run(
            settings,
            processes=processes or settings.flow_processes,
            workers=workers or settings.flow_workers,
            recovery=recovery,
            tail=not once,
        )
    except (StackError, InsecureSettings) as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


@features_app.command("apply")
def features_apply() -> None:
    """Register the Feast entities and feature views (idempotent)."""
    from featurestore.repo import apply, project_name

    settings = _settings()
    store = apply(settings)
    names = ", ".join(v.name for v in store.list_feature_views())
    out.print(f"feast project {project_name(settings)}: {names}")


@catalogue_app.command("load")
def catalogue_load(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines.")],
) -> None:
    """Load products (one JSON object a line: sku, category, list_price, unit_cost and,
    optionally, name, brand and description) into the durable catalogue file and Redis."""
    from pydantic import ValidationError

    from flows.catalogue import store_catalogue
    from schemas.catalogue import CatalogueItem

    items, bad = [], 0
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(CatalogueItem.model_validate_json(line))
        except ValidationError as exc:
            bad += 1
            err.print(f"{file}:{number}: rejected: {exc.errors()[0]['msg']}", markup=False)
    out.print(f"loaded {store_catalogue(_settings(), items)} products; rejected {bad}")
    if bad:
        raise typer.Exit(1)


@redis_app.command("rebuild")
def redis_rebuild(
    graph: Annotated[bool, typer.Option(help="Copy the bought-together lists from Neo4j.")] = True,
) -> None:
    """Write back the serving state Redis lacks: catalogue, features, prices, lists, graph."""
    import redis as redis_errors

    from flows.rebuild import rebuild
    from infra.readiness import require_redis

    settings = _settings()
    try:
        require_redis(settings)
        report = rebuild(settings, graph=graph)
    except (StackError, redis_errors.RedisError) as exc:
        raise _fail(exc) from None
    for part, n in report.written.items():
        out.print(f"{part}\t{n} written back")
    for part, why in report.skipped.items():
        out.print(f"{part}\tnot rebuilt: {why}")


@schemas_app.command("export")
def schemas_export(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the files.")] = Path(
        "schemas/json"
    ),
) -> None:
    """Write one JSON Schema file per topic."""
    from schemas.export import export_json_schemas

    for path in export_json_schemas(out_dir):
        out.print(str(path))


@app.command()
def simulate(
    rate: Annotated[float, typer.Option(help="Events per second; 0 = as fast as possible.")] = 0,
    days: Annotated[float, typer.Option(help="Simulated days to run.")] = 28.0,
    max_events: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    clock: Annotated[
        str, typer.Option(help="sim: accelerated simulated time; wall: stamp with wall time.")
    ] = "sim",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same shop.")] = 42,
    products: Annotated[int, typer.Option(help="Products in the catalogue.")] = 500,
    shoppers: Annotated[int, typer.Option(help="Shoppers.")] = 5_000,
    sessions_per_day: Annotated[float, typer.Option(help="Sessions per simulated day.")] = 10_000,
    channels: Annotated[
        str,
        typer.Option(help="web: views, carts, orders; pos: till orders only; both: the two."),
    ] = "web",
    till_visits_per_day: Annotated[
        float, typer.Option(help="Till visits per simulated day (pos and both).")
    ] = 10_000,
    ground_truth: Annotated[
        Path | None, typer.Option(help="Write the ground truth JSON here at the end.")
    ] = Path(".tillflow/ground_truth.json"),
) -> None:
    """Run the closed-loop shop: produce its events to Kafka, read published prices from Redis."""
    from simulator.config import ShopConfig
    from simulator.producer import RunOptions, run_shop

    if clock not in ("sim", "wall"):
        raise _fail(ValueError("--clock must be 'sim' or 'wall'"))
    if channels not in ("web", "pos", "both"):
        raise _fail(ValueError("--channels must be 'web', 'pos' or 'both'"))
    settings = _settings()
    config = ShopConfig(
        seed=seed,
        products=products,
        shoppers=shoppers,
        sessions_per_day=sessions_per_day,
        channels=channels,
        till_visits_per_day=till_visits_per_day,
    )
    options = RunOptions(
        rate=rate, clock=clock, days=days, max_events=max_events, ground_truth=ground_truth
    )
    from cli.progress import track

    try:
        # events per simulated day are known only as they come: the bar counts events, and
        # "time left" follows from max_events when it is given
        with track("simulate", max_events, "events") as progress:
            report = asyncio.run(run_shop(settings, config, options, progress.update))
    except StackError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    out.print(
        f"produced {report.events} events in {report.seconds:.1f}s "
        f"({report.events_per_s:,.0f}/s): {report.per_topic}"
    )


@app.command()
def demo(
    rate: Annotated[float, typer.Option(help="Live simulated events per second.")] = 300,
    days: Annotated[float, typer.Option(help="Simulated days to run live.")] = 28.0,
    backfill_days: Annotated[
        float, typer.Option(help="Simulated days of history first; 0 skips the backfill.")
    ] = 14.0,
) -> None:
    """The live demo: stack, flows, API; history backfilled and models trained; then live.

    Its own log lines go to .tillflow/logs/demo.log; the terminal shows the phases."""
    from cli.demo import run_demo
    from observability.logs import configure_logging
    from schemas.settings import Settings

    settings = Settings()
    logs = settings.runtime_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with (logs / "demo.log").open("a") as log:
            configure_logging(settings, log)
            run_demo(settings, rate, days, backfill_days)
    except StackError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    """SIGTERM ends the demo like Ctrl-C: its services are stopped on the way out."""
    raise KeyboardInterrupt


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .jsonl file.")],
    topic: Annotated[str, typer.Option(help="Input topic the lines belong to.")],
    rate: Annotated[float, typer.Option(help="Events per second; 0 = as fast as possible.")] = 0,
) -> None:
    """Stream a JSON-lines file into Kafka; report rejected lines with their line numbers."""
    from cli.progress import track
    from ingest.replay import count_lines
    from ingest.replay import replay as run_replay

    target = input_topic(topic)
    if target is None:
        names = ", ".join(t.name for t in INPUT_TOPICS)
        raise _fail(ValueError(f"unknown input topic {topic!r}; choose one of: {names}"))
    try:
        with track(f"replay {file.name}", count_lines(file), "lines") as progress:
            report = asyncio.run(
                run_replay(_settings(), file, target, rate=rate, on_progress=progress.update)
            )
    except StackError as exc:
        raise _fail(exc) from None
    for r in report.rejected:
        err.print(f"{file}:{r.line}: rejected: {r.error}", markup=False)
    out.print(f"produced {report.produced} events to {topic}; rejected {len(report.rejected)}")
    if report.rejected:
        raise typer.Exit(code=1)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (TILLFLOW_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (TILLFLOW_API_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (TILLFLOW_API_WORKERS).")
    ] = None,
    server: Annotated[
        str | None, typer.Option(help="uvicorn or granian (TILLFLOW_API_SERVER).")
    ] = None,
) -> None:
    """Serve the HTTP API (uvicorn or Granian, one or more worker processes)."""
    from api.server import serve

    settings = _settings()
    try:
        settings.require_safe_secrets()
    except InsecureSettings as exc:
        raise _fail(exc) from None
    if server not in (None, "uvicorn", "granian"):
        raise _fail(ValueError(f"unknown server {server!r}; choose uvicorn or granian"))
    chosen = settings.model_copy(
        update={
            "api_workers": workers or settings.api_workers,
            "api_server": server or settings.api_server,
        }
    )
    serve(chosen, host or settings.api_host, port or settings.api_port)
