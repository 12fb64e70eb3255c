"""``GET /recommendations/{user_id}``: the shopper's top-k, ranked when a ranker is loaded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Security

from api.auth import bearer, session_cookie, shopper_reader
from api.deps import Recommender
from api.ids import UserPath
from api.problems import responses
from api.recommendations import LIST_HELP, MAX_K
from api.responses import JsonBytes
from api.tokens import Claims
from schemas.serving import ListName, Recommendations

router = APIRouter(tags=["recommendations"])


async def _own_list(request: Request, user_id: UserPath) -> Claims:
    """The reader's claims (a coroutine: FastAPI would run a plain function in a thread)."""
    return shopper_reader(request, user_id)


@router.get(
    "/recommendations/{user_id:path}",
    response_model=Recommendations,
    summary="A shopper's recommended products",
    description="One of the shopper's lists from the streaming recommender (`list`: buy "
    "again, discover, or both: buy again first, places kept for discover), re-ranked by the "
    "registry's current ONNX ranker over the shopper's and items' online features; a "
    "popularity list for shoppers the flows "
    "have not seen yet. `source` says which served. "
    "Readable with that shopper's session (`POST /session`) or an admin token only.",
    responses=responses(401, 403, 404, 429, 503),  # 404: an id no path can carry (a newline)
    dependencies=[Security(bearer), Security(session_cookie)],
)
async def get_recommendations(
    request: Request,
    user_id: UserPath,
    recommender: Recommender,
    _reader: Annotated[Claims, Depends(_own_list)],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many items.")] = 10,
    list_name: Annotated[ListName, Query(alias="list", description=LIST_HELP)] = "mixed",
) -> JsonBytes:
    query = request.scope["query_string"].decode("latin-1")
    return JsonBytes(await recommender.answer(user_id, k, list_name, query))
