"""``tillflow batch graph``: the co-purchase graph in Neo4j, loaded from gold."""

from __future__ import annotations

from rich.console import Console

from infra.stack.errors import StackError
from observability.logs import configure_logging
from schemas.settings import Settings

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def batch_graph() -> None:
    """Load gold into Neo4j (Product, Category, Shopper; BOUGHT, VIEWED, CO_PURCHASED):
    only what changed since the last run, then lift and PageRank influence."""
    import typer

    from graph.load import load_graph
    from infra.clients import neo4j_driver, redis_client
    from infra.readiness import require_neo4j, require_redis

    settings = Settings()
    configure_logging(settings)
    try:
        require_neo4j(settings)
        require_redis(settings)
        with neo4j_driver(settings) as driver, redis_client(settings) as cache:
            report = load_graph(settings, driver, cache)
    except StackError as exc:
        err.print("error: ", style="bold red", end="")
        err.print(str(exc), markup=False)
        raise typer.Exit(code=1) from None
    versions = ", ".join(f"{t}@{v}" for t, v in report.versions.items())
    if report.unchanged:
        out.print(f"graph {settings.graph_namespace} up to date with gold ({versions})")
        return
    written = ", ".join(f"{k} {v:,}" for k, v in report.written.items() if v)
    out.print(f"graph {settings.graph_namespace} loaded gold ({versions}): {written}")
