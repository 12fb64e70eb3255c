"""``tillflow search …``: the product index kept fresh from the stream, and product queries."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from cli.console import fail, out, settings_with_logging
from infra.errors import StackError

search_app = typer.Typer(help="Product search on OpenSearch.", no_args_is_help=True)


@search_app.command("index")
def index() -> None:
    """Keep the product index fresh: catalogue and popularity from Redis, prices and stock
    from Kafka, in bulk. Runs until Ctrl-C or SIGTERM."""
    from infra.readiness import require_kafka, require_opensearch, require_redis
    from search.indexer import Indexer

    settings = settings_with_logging()
    try:
        require_opensearch(settings)
        require_kafka(settings)
        require_redis(settings)
    except StackError as exc:
        raise fail(exc) from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    Indexer(settings).run(stop)


@search_app.command("query")
def query(
    text: Annotated[str, typer.Argument(help="What to look for (typos are fine).")],
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    size: Annotated[int, typer.Option(min=1, max=100)] = 10,
) -> None:
    """Search the product index directly (no API), best first."""
    from infra.readiness import require_opensearch
    from search.client import opensearch_client
    from search.query import SearchQuery, parse_response, search_body

    settings = settings_with_logging()
    try:
        require_opensearch(settings)
    except StackError as exc:
        raise fail(exc) from None
    with opensearch_client(settings) as client:
        body = search_body(
            SearchQuery(
                q=text,
                category=category,
                size=size,
                popularity_weight=settings.search_popularity_weight,
            )
        )
        results = parse_response(client.search(index=settings.search_index, body=body))
    out.print(f"{results.total} match(es)")
    for hit in results.items:
        out.print(
            f"{hit.score:8.3f}  {hit.sku}  {hit.title}  [{hit.category}]  {hit.price}", markup=False
        )
