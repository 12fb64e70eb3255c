"""Dependencies shared by the routes and the websocket handlers, as ``Annotated`` aliases.

Each takes the connection (an HTTP request or a websocket alike), so both kinds of handler
reach the same services.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends
from starlette.requests import HTTPConnection

from api.catalogue import CatalogueService
from api.prices import PriceService
from api.recommendations import RecommendationService
from api.state import AppState


async def get_state(connection: HTTPConnection) -> AppState:
    return cast(AppState, connection.app.state.tillflow)


State = Annotated[AppState, Depends(get_state)]


# The hot routes' services are read from the connection directly rather than through
# ``State``: each level of dependencies is solved again on every request.
async def get_prices(connection: HTTPConnection) -> PriceService:
    return cast(AppState, connection.app.state.tillflow).price_service


async def get_recommender(connection: HTTPConnection) -> RecommendationService:
    return cast(AppState, connection.app.state.tillflow).recommendation_service


async def get_catalogue(state: State) -> CatalogueService:
    return state.catalogue_service


Prices = Annotated[PriceService, Depends(get_prices)]
"""Products' prices: ``GET /prices``, ``GET /pricing/{sku}``, ``/ws/prices``."""
Recommender = Annotated[RecommendationService, Depends(get_recommender)]
"""Shoppers' lists: ``GET /recommendations/{user_id}`` and its websocket."""
Catalogue = Annotated[CatalogueService, Depends(get_catalogue)]
"""The catalogue with live prices: ``GET /products``."""
