"""The co-purchase graph: what is bought together, and which products carry the others."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import State
from api.ids import SkuPath
from graph.queries import Influence
from schemas.serving import RelatedProducts

router = APIRouter(prefix="/graph", tags=["graph"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "The product is not in the graph"},
    503: {"description": "Neo4j does not answer"},
}


def _unknown(sku: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"product {sku!r} is not in the graph")


@router.get(
    "/products/{sku:path}/related",
    response_model=RelatedProducts,
    summary="Products bought by the same shoppers, strongest first",
    responses=RESPONSES,
)
async def related(
    sku: SkuPath, state: State, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> RelatedProducts:
    found = await state.graph.related(sku, limit)
    if found is None:
        raise _unknown(sku)
    return found


@router.get(
    "/products/{sku:path}/influence",
    response_model=Influence,
    summary="PageRank and weighted degree over co-purchases",
    responses=RESPONSES,
)
async def influence(sku: SkuPath, state: State) -> Influence:
    found = await state.graph.influence(sku)
    if found is None:
        raise _unknown(sku)
    return found
