"""``tillflow batch …``, ``tillflow models …`` and ``tillflow scheduler``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.console import fail as _fail
from cli.console import out
from cli.console import settings_with_logging as _settings
from cli.progress import track
from infra.errors import StackError

batch_app = typer.Typer(
    help="Lakehouse jobs: bronze → silver → gold, features, training.", no_args_is_help=True
)
models_app = typer.Typer(help="The model registry (demand, ranker).", no_args_is_help=True)
scheduler_app = typer.Typer(
    help="Run the batch jobs on a schedule, on drift and on request.", invoke_without_command=True
)


CatalogueOption = Annotated[
    Path | None,
    typer.Option(
        "--catalogue",
        exists=True,
        dir_okay=False,
        help="Catalogue JSON lines (default: the catalogue in Redis).",
    ),
]


EngineOption = Annotated[
    str | None,
    typer.Option("--engine", help="duckdb or spark (default TILLFLOW_BATCH_ENGINE, duckdb)."),
]
MasterOption = Annotated[
    str | None,
    typer.Option("--master", help="Spark master URL (default TILLFLOW_SPARK_MASTER, local[*])."),
]


def _run(
    job: str,
    catalogue: Path | None = None,
    retention_hours: int | None = None,
    engine: str | None = None,
    master: str | None = None,
) -> None:
    from batch.engines import ENGINES
    from batch.jobs import STEPS, JobOptions, run_job
    from batch.maintenance import lake_tables

    settings = _settings()
    if master is not None:
        settings = settings.model_copy(update={"spark_master": master})
    chosen = next((e for e in ENGINES if e == engine), None)
    if engine is not None and chosen is None:
        raise _fail(ValueError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}"))
    total = STEPS[job] or len(lake_tables(settings.lake_dir))
    options = JobOptions(catalogue_file=catalogue, retention_hours=retention_hours, engine=chosen)
    with track(job, total, "steps") as progress:

        def step(name: str) -> None:
            progress.add(1, name)

        try:
            run, result = run_job(settings, job, options=options, step=step)
        except StackError as exc:
            raise _fail(exc) from None
    out.print(
        f"{run.job}: {run.status} in {run.duration_s:.1f}s, "
        f"rows in {run.rows_in:,}, rows out {run.rows_out:,}"
    )
    if result is not None:
        for key, value in result.details.items():
            out.print(f"  {key}: {value}")
    if run.status != "ok":
        raise _fail(RuntimeError(run.error or run.status))


@batch_app.command("silver")
def silver(engine: EngineOption = None, master: MasterOption = None) -> None:
    """Bronze → silver: typed, deduplicated by event_id, bad rows quarantined."""
    _run("silver", engine=engine, master=master)


@batch_app.command("gold")
def gold(
    catalogue: CatalogueOption = None, engine: EngineOption = None, master: MasterOption = None
) -> None:
    """Silver → gold: sku_daily, user_item_interactions, orders_enriched."""
    _run("gold", catalogue, engine=engine, master=master)


@batch_app.command("features")
def features(engine: EngineOption = None, master: MasterOption = None) -> None:
    """Gold → Feast: export sku_daily_features, materialise them to the online store."""
    _run("features", engine=engine, master=master)


@batch_app.command("train")
def train(catalogue: CatalogueOption = None) -> None:
    """Train demand and ranker, export to ONNX, register, promote when better."""
    _run("train", catalogue)


@batch_app.command("maintain")
def maintain(
    retention_hours: Annotated[
        int | None, typer.Option(help="Vacuum retention (TILLFLOW_VACUUM_RETENTION_HOURS).")
    ] = None,
) -> None:
    """Compact and vacuum every Delta table; time travel reaches back the retention."""
    _run("maintain", retention_hours=retention_hours)


@batch_app.command("pipeline")
def pipeline(
    catalogue: CatalogueOption = None, engine: EngineOption = None, master: MasterOption = None
) -> None:
    """silver → gold → features → train, each stage under its own lock."""
    _run("pipeline", catalogue, engine=engine, master=master)


@batch_app.command("tables")
def tables(master: MasterOption = None) -> None:
    """Register the lake's tables in the catalogue (Hive metastore) and list them with their
    Delta versions; Spark and DuckDB both read them as tillflow.<layer>_<table>."""
    from batch.engines.spark_engine import SparkEngine
    from batch.metastore import register

    settings = _settings()
    if master is not None:
        settings = settings.model_copy(update={"spark_master": master})
    try:
        engine = SparkEngine(settings)
    except StackError as exc:
        raise _fail(exc) from None
    try:
        entries = register(engine.spark, settings.lake_dir)
    finally:
        engine.close()
    table = Table("table", "version", "location")
    for entry in entries:
        table.add_row(entry.qualified, str(entry.version), str(entry.location))
    out.print(table)


@batch_app.command("audit")
def audit(catalogue: CatalogueOption = None) -> None:
    """Fairness audit of the champion models and the prices → gold fairness_audit."""
    _run("audit", catalogue)


@batch_app.command("skew")
def skew() -> None:
    """Online/offline skew: served stream features vs recomputed from the lake."""
    _run("skew")


@batch_app.command("runs")
def runs(
    n: Annotated[int, typer.Option("-n", help="How many.")] = 20,
    job: Annotated[str | None, typer.Option(help="Only this job.")] = None,
) -> None:
    """The latest job runs (what the admin page shows)."""
    from batch.runs import latest_runs
    from infra.clients import redis_client
    from infra.readiness import require_redis

    settings = _settings()
    try:
        require_redis(settings)
    except StackError as exc:
        raise _fail(exc) from None
    client = redis_client(settings, decode_responses=True)
    table = Table(
        "job", "status", "trigger", "started_at", "duration_s", "rows_in", "rows_out", "error"
    )
    for r in latest_runs(client, settings.keys, n, job):
        table.add_row(
            r.job,
            r.status,
            r.trigger,
            r.started_at,
            f"{r.duration_s:.1f}",
            f"{r.rows_in:,}",
            f"{r.rows_out:,}",
            r.error or "",
        )
    client.close()
    out.print(table)


@batch_app.command("history")
def history(
    table: Annotated[str, typer.Argument(help="A table path in the lake, e.g. gold/sku_daily.")],
    limit: Annotated[int, typer.Option(help="How many versions.")] = 10,
) -> None:
    """A table's versions (time travel: read one with DeltaTable(path, version=N))."""
    from batch.lake import open_table

    settings = _settings()
    delta = open_table(settings.lake_dir / table)
    if delta is None:
        raise _fail(ValueError(f"no Delta table at {settings.lake_dir / table}"))
    rows = Table("version", "timestamp", "operation", "tillflow", "files added")
    for h in delta.history(limit):
        metrics = h.get("operationMetrics", {})
        added = metrics.get("num_added_files", metrics.get("numFilesAdded", ""))
        rows.add_row(
            str(h.get("version")),
            str(h.get("timestamp")),
            str(h.get("operation")),
            str(h.get("tillflow.operation", "")),
            str(added),
        )
    out.print(rows)


@models_app.command("list")
def models_list() -> None:
    """Every model version with its metrics; * marks the champion, c the challenger."""
    from registry import CHALLENGER, ModelRegistry, RegistryError

    registry = ModelRegistry.from_settings(_settings())
    table = Table("model", "version", "alias", "created_at", "metrics", "trained_on")
    try:
        listed = [
            (n, registry.current(n), registry.alias(n, CHALLENGER), registry.versions(n))
            for n in registry.names()
        ]
    except RegistryError as exc:
        raise _fail(exc) from None
    for name, current, challenger, versions in listed:
        for v in versions:
            metrics = v.metadata.get("metrics", {})
            numbers = sorted((k, val) for k, val in metrics.items() if isinstance(val, int | float))
            shown = ", ".join(f"{k}={val:.4g}" for k, val in numbers if not k.endswith("rows"))
            mark = "*" if current is not None and current.version == v.version else ""
            mark += "c" if challenger == v.version else ""
            table.add_row(
                name,
                str(v.version),
                mark,
                str(v.metadata.get("created_at", "")),
                shown,
                str(v.metadata.get("trained_on", "")),
            )
    out.print(table)


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="demand or ranker")],
    version: Annotated[int, typer.Argument(help="The version to make current.")],
) -> None:
    """Move the champion alias to a version (the API follows it)."""
    from registry import ModelRegistry, RegistryError

    try:
        target = ModelRegistry.from_settings(_settings()).promote(name, version)
    except RegistryError as exc:
        raise _fail(exc) from None
    out.print(f"current {name}: {target.label}")


@models_app.command("rollback")
def models_rollback(name: Annotated[str, typer.Argument(help="demand or ranker")]) -> None:
    """Move the champion alias back to where it was before the last promotion."""
    from registry import ModelRegistry, RegistryError

    try:
        target = ModelRegistry.from_settings(_settings()).rollback(name)
    except RegistryError as exc:
        raise _fail(exc) from None
    out.print(f"current {name}: {target.label}")


@scheduler_app.callback()
def scheduler(
    schedule: Annotated[
        str | None, typer.Option(help="job=seconds,… (TILLFLOW_BATCH_SCHEDULE).")
    ] = None,
    once: Annotated[bool, typer.Option(help="Run what is due now, then stop.")] = False,
    catalogue: CatalogueOption = None,
) -> None:
    """Run jobs on their schedule, retrain on drift, serve run requests; Ctrl-C stops."""
    from batch.jobs import JobOptions, run_job
    from batch.result import StepResult
    from batch.scheduler import Scheduler, parse_schedule
    from flows.rebuild import RedisGuard
    from infra.readiness import require_redis
    from observability.jobs import start_scheduler_metrics
    from schemas.jobs import JobRun

    settings = _settings()
    try:
        settings.require_safe_secrets()
        plan = parse_schedule(settings.batch_schedule if schedule is None else schedule)
        require_redis(settings)
    except (ValueError, StackError) as exc:
        raise _fail(exc) from None
    jobs, server = None, None
    if not once:  # a running scheduler serves its job, registry and governance metrics
        try:
            jobs, server = start_scheduler_metrics(settings)
        except OSError as exc:
            port = settings.scheduler_metrics_port
            raise _fail(
                OSError(
                    f"the scheduler's /metrics port {port} cannot be served: {exc}; "
                    "set TILLFLOW_SCHEDULER_METRICS_PORT (0: not served)"
                )
            ) from None

    def run_and_record(*args: Any, **kwargs: Any) -> tuple[JobRun, StepResult | None]:
        run, result = run_job(*args, **kwargs)
        if jobs is not None:
            jobs.record(run)
        return run, result

    guard = RedisGuard(settings)
    runner = Scheduler(
        settings,
        plan,
        options=JobOptions(catalogue_file=catalogue),
        runner=run_and_record,
        guard=guard,
    )
    try:
        runner.run(ticks=1 if once else None)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        runner.close()
        if server is not None:
            server.close()
