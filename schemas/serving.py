"""The serving values: what the flows write to Redis and the API reads back, one model each.

A writer stores :meth:`PriceDetails.to_hash` / :meth:`StoredShopper.encode`; a reader
gets the model back with :meth:`PriceDetails.from_hash` / ``model_validate_json``. Keys are in
``schemas/keys.py``.

>>> from datetime import UTC, datetime
>>> details = PriceDetails(price=76.49, previous_price=74.57, reason="elasticity -1.4",
...     updated_at=datetime(2026, 1, 5, 10, 15, tzinfo=UTC), model_version="elasticity-1")
>>> fields = details.to_hash()
>>> fields["price"], fields["updated_at"]
('76.49', '2026-01-05T10:15:00+00:00')
>>> PriceDetails.from_hash(fields) == details
True
>>> PriceDetails.from_hash({}) is None
True
>>> stored = StoredShopper(user_id="u1", again=[ScoredSku(sku="tea", score=0.5)],
...     recent=["tea"], seen=["tea"], categories=[("drinks", 1.0)],
...     updated_at=datetime(2026, 1, 5, tzinfo=UTC))
>>> StoredShopper.model_validate_json(stored.model_dump_json()) == stored
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

from schemas.events import Identifier

PRICE_DECIMALS = 2
"""Prices are published and stored in cents."""


class PriceDetails(BaseModel):
    """The last published change of one product's price: the hash at ``price:{sku}``.

    Written by the pricing flow with every change (and by a rebuild); read by the API for
    ``GET /prices/{sku}`` and the pricing page. Redis holds every field as text.
    """

    model_config = ConfigDict(frozen=True)

    price: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    previous_price: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    updated_at: AwareDatetime
    reason: str
    model_version: str

    def to_hash(self) -> dict[str, str]:
        """The hash fields, prices in cents."""
        return {
            "price": f"{self.price:.{PRICE_DECIMALS}f}",
            "previous_price": f"{self.previous_price:.{PRICE_DECIMALS}f}",
            "updated_at": self.updated_at.isoformat(),
            "reason": self.reason,
            "model_version": self.model_version,
        }

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> PriceDetails | None:
        """The details in ``fields`` (an ``HGETALL``), or None when no change was published."""
        return cls.model_validate(fields) if fields else None


class ScoredSku(BaseModel):
    """One recommended product and its score (higher is better)."""

    model_config = ConfigDict(frozen=True)

    sku: Identifier
    score: Annotated[float, Field(allow_inf_nan=False)]


ListName = Literal["discover", "again", "mixed"]
"""A shopper's lists: ``again`` (their own items: buy again, continue), ``discover`` (items
they have not interacted with) and ``mixed`` (the two interleaved)."""
LIST_NAMES: tuple[ListName, ...] = ("discover", "again", "mixed")


class StoredShopper(BaseModel):
    """What the flows keep of a shopper for their lists: the JSON at ``reco:user:{user}``, also
    published on ``channel:reco:{user}`` when it changes.

    ``again``: the shopper's own items (buy again / continue), best first; ``recent``: their
    latest distinct items, newest first; ``seen``: the items they are known to have touched
    (discover leaves them out); ``categories``: their strongest categories with their share of
    the shopper's interest. The API builds ``discover`` from these and the item neighbours the
    flows publish at that moment (``api/discover.py``).
    """

    model_config = ConfigDict(frozen=True)

    user_id: Identifier
    again: tuple[ScoredSku, ...]
    recent: tuple[str, ...]
    seen: tuple[str, ...]
    categories: tuple[tuple[str, float], ...]
    updated_at: AwareDatetime

    @field_serializer("updated_at")
    def _milliseconds(self, value: datetime) -> str:
        return value.isoformat(timespec="milliseconds")

    @staticmethod
    def encode(
        user_id: str,
        again: Sequence[tuple[str, float]],
        recent: Sequence[str],
        seen: Sequence[str],
        categories: Sequence[tuple[str, float]],
        updated_at: datetime,
    ) -> str:
        """The JSON this model reads back, written without building the model.

        The flows write one for every shopper who acts: encoding the values directly costs a
        fifth of validating and dumping a model. A non-finite score raises ``ValueError``.

        >>> from datetime import UTC, datetime
        >>> text = StoredShopper.encode("u1", [("tea", 0.5)], ["tea"], ["tea"],
        ...     [("drinks", 1.0)], datetime(2026, 1, 5, tzinfo=UTC))
        >>> StoredShopper.model_validate_json(text).again
        (ScoredSku(sku='tea', score=0.5),)
        """
        scores = [score for _, score in again] + [share for _, share in categories]
        if not all(math.isfinite(score) for score in scores):
            raise ValueError(f"a score of {user_id}'s lists is not finite")
        body = {
            "user_id": user_id,
            "again": [{"sku": sku, "score": score} for sku, score in again],
            "recent": list(recent),
            "seen": list(seen),
            "categories": [[cat, share] for cat, share in categories],
            "updated_at": updated_at.isoformat(timespec="milliseconds"),
        }
        return orjson.dumps(body).decode()
