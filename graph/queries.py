"""What the graph serves: a product's "bought together" list and its influence.

Async functions for the API (one driver per process, from the lifespan) and a bulk read for
the recommender's candidate source. A Neo4j that does not answer raises ServiceUnavailable
naming it; an unknown sku gives None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString

import neo4j
from neo4j.exceptions import DatabaseError, DriverError, Neo4jError, TransientError
from pydantic import BaseModel, Field

from graph import cypher
from infra.errors import ServiceUnavailable
from schemas.serving import RelatedItem, RelatedProducts
from schemas.settings import Settings


class Influence(BaseModel):
    sku: str
    category: str | None = None
    pagerank: float | None = Field(description="PageRank over CO_PURCHASED (sums to 1)")
    weighted_degree: float | None = Field(description="Sum of co-purchase weights")
    rank: int | None = Field(description="1 = the most influential product")
    products: int = Field(description="Products in the graph")
    neighbours: int = Field(description="Products co-purchased with this one")
    buyers: int | None = Field(description="Shoppers who bought the product")


def _unavailable(settings: Settings, exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(
        "Neo4j",
        settings.neo4j_uri,
        f"{type(exc).__name__}: {exc}; start it with `tillflow up`, or set TILLFLOW_NEO4J_URI",
    )


async def _single(
    driver: neo4j.AsyncDriver, settings: Settings, query: LiteralString, **params: Any
) -> dict[str, Any] | None:
    try:
        async with driver.session(default_access_mode=neo4j.READ_ACCESS) as session:
            result = await session.run(query, ns=settings.graph_namespace, **params)
            record = await result.single()
    except (DriverError, Neo4jError, OSError) as exc:
        raise _unavailable(settings, exc) from None
    return None if record is None else record.data()


async def related(
    driver: neo4j.AsyncDriver, settings: Settings, sku: str, limit: int
) -> RelatedProducts | None:
    """The products most often bought by the same shoppers as ``sku``; None if unknown."""
    row = await _single(driver, settings, cypher.RELATED, sku=sku, limit=limit)
    if row is None:
        return None
    return RelatedProducts(sku=sku, items=[RelatedItem(**item) for item in row["related"]])


async def influence(driver: neo4j.AsyncDriver, settings: Settings, sku: str) -> Influence | None:
    """The product's PageRank, weighted degree and rank; None if unknown."""
    row = await _single(driver, settings, cypher.INFLUENCE, sku=sku)
    return None if row is None else Influence(**row)


def related_lists(
    driver: neo4j.Driver, settings: Settings, skus: Sequence[str], limit: int
) -> list[RelatedProducts]:
    """The bought-together lists of many products (for the Redis serving copy)."""
    records, _, _ = driver.execute_query(
        cypher.NEIGHBOURS,
        ns=settings.graph_namespace,
        skus=list(skus),
        limit=limit,
        routing_="r",
    )
    return [
        RelatedProducts(sku=r["sku"], items=[RelatedItem(**i) for i in r["related"]])
        for r in records
    ]


def candidates(
    driver: neo4j.Driver, settings: Settings, skus: Sequence[str], limit: int, min_weight: int
) -> dict[str, list[tuple[str, float]]]:
    """The recommender's graph candidates for many products: ``sku -> [(other, lift)]``, the
    ``limit`` highest-lift co-purchases bought by at least ``min_weight`` shoppers."""
    records, _, _ = driver.execute_query(
        cypher.CANDIDATES,
        ns=settings.graph_namespace,
        skus=list(skus),
        limit=limit,
        min_weight=min_weight,
        routing_="r",
    )
    return {r["sku"]: [(c[0], float(c[1])) for c in r["candidates"]] for r in records}


# The reads the API (the product's related items, its influence) and the graph jobs (the
# serving copy, the recommender's candidates) send, each with parameters for a product no
# graph holds
WARM_UP: tuple[tuple[LiteralString, dict[str, Any]], ...] = (
    (cypher.RELATED, {"sku": "", "limit": 1}),
    (cypher.INFLUENCE, {"sku": ""}),
    (cypher.NEIGHBOURS, {"skus": [""], "limit": 1}),
    (cypher.CANDIDATES, {"skus": [""], "limit": 1, "min_weight": 1}),
)


def warm_up(driver: neo4j.Driver, settings: Settings) -> int:
    """Send each read of :data:`WARM_UP` once; how many were sent. A Neo4j just started
    plans and compiles a query the first time it meets it: on the 2-core machine the related
    products' first answer took 7.1 s, the influence's 1.4 s, and each 0.04-0.07 s after
    (docs/graph.md). ``tillflow up`` sends them once Neo4j answers, so that the first
    shopper's request after a start does not pay for it (nor wait past a client's timeout).
    ServiceUnavailable naming Neo4j when it does not answer; a query Neo4j refuses (a client
    error: a parameter missing) is raised as it is."""
    try:
        for query, params in WARM_UP:
            driver.execute_query(query, ns=settings.graph_namespace, routing_="r", **params)
    except (DriverError, TransientError, DatabaseError, OSError) as exc:
        raise _unavailable(settings, exc) from None
    return len(WARM_UP)
