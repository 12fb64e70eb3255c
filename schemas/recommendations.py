"""A shopper's stored recommendation lists: what the flows write and the API reads.

The flows store both lists of a shopper in one JSON string (``RedisKeys.recommendations``)
and publish the same JSON on the shopper's channel when either changes. ``mixed`` is not
stored: it is the two lists interleaved (``online_models.recommender.mixed``).

>>> lists = StoredLists(user_id="u-1", again=[ListedItem(sku="tea", score=0.6)], discover=[],
...                     source="popularity", updated_at="2026-01-05T10:00:00+00:00")
>>> StoredLists.model_validate_json(lists.model_dump_json()).again[0].sku
'tea'
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

ListName = Literal["discover", "again", "mixed"]
LIST_NAMES: tuple[ListName, ...] = ("discover", "again", "mixed")
DiscoverSource = Literal["similar", "category", "popularity"]


class ListedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    score: float


class StoredLists(BaseModel):
    """``again``: the shopper's own items (buy again / continue); ``discover``: items they
    have not interacted with; ``source``: what the best discover item came from."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    again: list[ListedItem]
    discover: list[ListedItem]
    source: DiscoverSource
    updated_at: AwareDatetime
