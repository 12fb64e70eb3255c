"""What the flows store of a shopper for their recommendation lists, and the lists' names.

The flows store one JSON string per shopper (``RedisKeys.recommendations``) and publish the
same JSON on the shopper's channel when it changes: the *buy again* list, ranked, and what
the *discover* list is built from when it is asked for (the shopper's recent items, the
items they have touched, their categories). The API builds ``discover`` from these and the
item neighbours the flows publish at that moment (``api/discover.py``); ``mixed`` is the two
interleaved (``online_models.recommender.mixed``).

>>> stored = StoredShopper(user_id="u-1", again=[ListedItem(sku="tea", score=0.6)],
...                        recent=["tea"], seen=["tea"], categories=[("drinks", 1.0)],
...                        updated_at="2026-01-05T10:00:00+00:00")
>>> StoredShopper.model_validate_json(stored.model_dump_json()).again[0].sku
'tea'
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

ListName = Literal["discover", "again", "mixed"]
LIST_NAMES: tuple[ListName, ...] = ("discover", "again", "mixed")


class ListedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    score: float


class StoredShopper(BaseModel):
    """``again``: the shopper's own items (buy again / continue), best first; ``recent``:
    their latest distinct items, newest first; ``seen``: the items they are known to have
    touched (discover leaves them out); ``categories``: their strongest categories with
    their share of the shopper's interest."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    again: list[ListedItem]
    recent: list[str]
    seen: list[str]
    categories: list[tuple[str, float]]
    updated_at: AwareDatetime
