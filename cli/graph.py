"""``tillflow batch graph``: the co-purchase graph in Neo4j, loaded from gold."""

from __future__ import annotations

from cli.console import fail, out, settings_with_logging
from cli.progress import track
from infra.errors import StackError


def batch_graph() -> None:
    """Load gold into Neo4j (Product, Category, Shopper; BOUGHT, VIEWED, CO_PURCHASED):
    only what changed since the last run, then lift and PageRank influence."""

    from graph.load import load_graph
    from infra.clients import neo4j_driver, redis_client
    from infra.readiness import require_neo4j, require_redis

    settings = settings_with_logging()
    try:
        require_neo4j(settings)
        require_redis(settings)
        with (
            neo4j_driver(settings) as driver,
            redis_client(settings) as cache,
            track("graph", None, "rows") as progress,
        ):
            report = load_graph(settings, driver, cache, progress.add)
    except StackError as exc:
        raise fail(exc) from None
    versions = ", ".join(f"{t}@{v}" for t, v in report.versions.items())
    if report.unchanged:
        out.print(f"graph {settings.graph_namespace} up to date with gold ({versions})")
        return
    written = ", ".join(f"{k} {v:,}" for k, v in report.written.items() if v)
    out.print(f"graph {settings.graph_namespace} loaded gold ({versions}): {written}")
