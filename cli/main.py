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
from infra.stack.errors import StackError
from infra.stack.local import ServiceStatus
from schemas.topics import INPUT_TOPICS, input_topic

app = typer.Typer(
    help="tillflow: live shop events in, prices and recommendations out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Kafka topics of the contract.", no_args_is_help=True)
flows_app = typer.Typer(help="The streaming dataflows (Bytewax).", no_args_is_help=True)
catalogue_app = typer.Typer(help="Product master data in Redis.", no_args_is_help=True)
features_app = typer.Typer(help="The Feast feature repository.", no_args_is_help=True)
schemas_app = typer.Typer(help="The event contract.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(flows_app, name="flows")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(features_app, name="features")
app.add_typer(batch_app, name="batch")
app.add_typer(models_app, name="models")
app.add_typer(scheduler_app, name="scheduler")
batch_app.command("graph")(batch_graph)


@app.command()
def setup() -> None:
    """Fetch what the local stack needs (Kafka and Neo4j jars from Maven Central); check Java."""
    from infra.stack import kafka, neo4j

    settings = _settings()
    try:
        kafka.find_java()
        libs = kafka.ensure_jars(settings)
        neo4j.find_java()
        graph_libs = neo4j.ensure_jars(settings)
    except StackError as exc:
        raise _fail(exc) from None
    out.print(f"kafka jars ready in {libs}")
    out.print(f"neo4j jars ready in {graph_libs}")


@app.command()
def up() -> None:
    """Start Redis, Kafka (KRaft) and Neo4j on 127.0.0.1 and create the topics. Idempotent."""
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
    except StackError as exc:
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
    """Load products (sku, category, list_price, unit_cost per line) into Redis."""
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
    ground_truth: Annotated[
        Path | None, typer.Option(help="Write the ground truth JSON here at the end.")
    ] = Path(".tillflow/ground_truth.json"),
) -> None:
    """Run the closed-loop shop: produce its events to Kafka, read published prices from Redis."""
    from simulator.config import ShopConfig
    from simulator.producer import RunOptions, run_shop

    if clock not in ("sim", "wall"):
        raise _fail(ValueError("--clock must be 'sim' or 'wall'"))
    settings = _settings()
    config = ShopConfig(
        seed=seed, products=products, shoppers=shoppers, sessions_per_day=sessions_per_day
    )
    options = RunOptions(
        rate=rate, clock=clock, days=days, max_events=max_events, ground_truth=ground_truth
    )
    try:
        report = asyncio.run(run_shop(settings, config, options))
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
    rate: Annotated[float, typer.Option(help="Simulated events per second.")] = 300,
    days: Annotated[float, typer.Option(help="Simulated days to run.")] = 28.0,
) -> None:
    """The live demo: the stack, the flows, the API, the scheduler and the shop simulator."""
    from infra.stack import local
    from infra.stack.topics import ensure_topics
    from infra.stack.watchdog import Watchdog, Watched
    from simulator.config import ShopConfig
    from simulator.producer import RunOptions, run_shop

    settings = _settings()
    try:
        local.up(settings)
        ensure_topics(settings)
        local.start_api(settings)
        from flows.catalogue import store_catalogue
        from simulator.shop import Shop

        store_catalogue(settings, Shop(ShopConfig()).catalogue())  # the flows price from it
        local.start_flows(settings)
        local.start_scheduler(settings)
    except StackError as exc:
        raise _fail(exc) from None
    _print_status(local.status(settings))
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    out.print(f"storefront: {api_url}/   pricing: {api_url}/pricing   admin: {api_url}/admin")
    out.print(
        f"API: {api_url}/docs   metrics: {api_url}/metrics   ingest: POST {api_url}/events/<topic>"
    )
    out.print(
        f"Prometheus: http://127.0.0.1:{settings.prometheus_port}/alerts   Grafana: "
        "http://127.0.0.1:3000 with `docker compose -f infra/docker-compose.yml up` or any "
        "local Grafana (README: Observability)"
    )
    out.print(
        "models: the scheduler trains them on its first pipeline run with enough data "
        "(`tillflow batch pipeline` runs it now; /admin shows runs)"
    )
    out.print(f"watch: kcat -b {settings.kafka_bootstrap} -C -t {settings.topic_prefix}orders")
    out.print(
        f"simulating at {rate:,.0f} events/s; the flows, API and scheduler are restarted if they "
        "die; Ctrl-C stops the demo and them, `make down` the stack"
    )
    options = RunOptions(
        rate=rate, clock="wall", days=days, ground_truth=settings.runtime_dir / "ground_truth.json"
    )
    watchdog = Watchdog([
        Watched("flows", local.flows_files(settings), lambda: local.start_flows(settings)),
        Watched("api", local.api_files(settings), lambda: local.start_api(settings)),
        Watched("scheduler", local.scheduler_files(settings),
                lambda: local.start_scheduler(settings)),
    ])  # fmt: skip
    watchdog.start()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        report = asyncio.run(run_shop(settings, ShopConfig(), options))
    except StackError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        watchdog.stop()
    out.print(f"produced {report.events} events ({report.events_per_s:,.0f}/s)")


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
    from ingest.replay import replay as run_replay

    target = input_topic(topic)
    if target is None:
        names = ", ".join(t.name for t in INPUT_TOPICS)
        raise _fail(ValueError(f"unknown input topic {topic!r}; choose one of: {names}"))
    try:
        report = asyncio.run(run_replay(_settings(), file, target, rate=rate))
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
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    settings = _settings()
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_config=None,
        access_log=False,  # the API logs each request itself (with its request id)
        ws="websockets-sansio",
    )
