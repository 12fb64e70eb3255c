"""The served-list log: every recommendation list the API served, as one event.

The API produces a :class:`ServedList` to the ``recommendations-served`` topic each time it
answers ``GET /recommendations/{user}`` or pushes a list on ``/ws/recommendations/{user}``;
the flow's lake sink keeps them in bronze like the input topics. The ranker's training joins
them with what the shopper did next: an item shown and then viewed, carted or bought is a
positive, an item shown and not chosen a real negative.

>>> served = ServedList(event_id="sv-1", event_time="2026-01-05T10:00:00Z", user_id="u1",
...     list_name="discover", served_by="ranker", model_version="ranker-3",
...     items=[ServedItem(sku="tea", source="similar", score=0.4),
...            ServedItem(sku="milk", source="popular", score=0.1)])
>>> [(i.sku, i.source) for i in served.items], served.event_time.isoformat()
([('tea', 'similar'), ('milk', 'popular')], '2026-01-05T10:00:00+00:00')
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Event, Identifier
from schemas.serving import CandidateSource, ListName, ListSource

MAX_SERVED_ITEMS = 50  # the API's largest k


class ServedItem(BaseModel):
    """One item as shown: its position is its index in :attr:`ServedList.items`."""

    model_config = ConfigDict(frozen=True)

    sku: Identifier
    source: CandidateSource | None = None  # None: the served list did not say
    score: Annotated[float, Field(allow_inf_nan=False)] = 0.0


class ServedList(Event):
    """One list shown to a shopper; ``event_time`` is when it was served."""

    user_id: Identifier
    list_name: ListName
    served_by: ListSource
    model_version: Identifier | None = None
    items: Annotated[list[ServedItem], Field(max_length=MAX_SERVED_ITEMS)]
