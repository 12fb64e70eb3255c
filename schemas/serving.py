"""The serving values: what the flows write to Redis and the API reads back or pushes, one
model each.

A writer stores :meth:`PriceDetails.to_hash` / :meth:`StoredShopper.encode` /
:meth:`PricingState.encode` / :meth:`CurrentPrices.to_hash`; a reader gets the model back
with ``from_hash`` / ``model_validate_json``. Keys are in ``schemas/keys.py``. The API answers
and pushes :class:`PriceView` and :class:`Recommendations`, the same model over HTTP and
websocket.

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
>>> CurrentPrices({"tea": 4.2}).to_hash()
{'tea': '4.20'}
>>> CurrentPrices.from_hash({b"tea": b"4.20"}).root
{'tea': 4.2}
>>> state = PricingState.from_hash(PricingState.encode({"elasticity": -1.4, "observations": 3,
...     "views_5m": 7}))
>>> state.elasticity, state.observations, state.evidence_views
(-1.4, 3, 0)
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
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    field_serializer,
)

from schemas.events import Identifier
from schemas.features import SKU_FEATURES, stored_in

PRICE_DECIMALS = 2
"""Prices are published and stored in cents."""

PublishedPrice = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def price_text(price: float) -> str:
    """A price as Redis stores it, in cents.

    >>> price_text(4.2)
    '4.20'
    """
    return f"{price:.{PRICE_DECIMALS}f}"


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class PriceDetails(BaseModel):
    """The last published change of one product's price: the hash at ``price:{sku}``.

    Written by the pricing flow with every change (and by a rebuild); read by the API for
    ``GET /prices/{sku}`` and the pricing page. Redis holds every field as text.
    """

    model_config = ConfigDict(frozen=True)

    price: PublishedPrice
    previous_price: PublishedPrice
    updated_at: AwareDatetime
    reason: str
    model_version: str

    def to_hash(self) -> dict[str, str]:
        """The hash fields, prices in cents."""
        return {
            "price": price_text(self.price),
            "previous_price": price_text(self.previous_price),
            "updated_at": self.updated_at.isoformat(),
            "reason": self.reason,
            "model_version": self.model_version,
        }

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> PriceDetails | None:
        """The details in ``fields`` (an ``HGETALL``), or None when no change was published."""
        return cls.model_validate(fields) if fields else None


class CurrentPrices(RootModel[dict[Identifier, PublishedPrice]]):
    """Every published price by sku: the hash at ``prices:current``, written with each
    :class:`PriceDetails` and read in bulk (``GET /products``, the simulator's price book)."""

    model_config = ConfigDict(frozen=True)

    def to_hash(self) -> dict[str, str]:
        """The hash fields, prices in cents."""
        return {sku: price_text(price) for sku, price in self.root.items()}

    @classmethod
    def from_hash(cls, fields: Mapping[str, str] | Mapping[bytes, bytes]) -> CurrentPrices:
        """The prices in ``fields`` (an ``HGETALL``, text or bytes)."""
        return cls.model_validate({_text(k): _text(v) for k, v in fields.items()})


def _count(value: Any) -> Any:
    """A count stored as text, ``"3"`` or ``"3.0"``."""
    return int(float(value)) if isinstance(value, str | bytes) else value


Count = Annotated[int, BeforeValidator(_count)]
PRICING_FIELDS: tuple[str, ...] = tuple(f.name for f in stored_in(SKU_FEATURES, "redis"))
"""The features the flows keep in the plain pricing hash (``store="redis"``)."""


class PricingState(BaseModel):
    """What the pricing flow knows of a product beside its price: the hash at
    ``features:sku:{sku}``, one field per ``SKU_FEATURES`` entry whose store is ``"redis"``
    (``schemas/features.py`` describes each). Absent fields read as unknown (None) or zero.

    >>> tuple(PricingState.model_fields) == PRICING_FIELDS
    True
    """

    model_config = ConfigDict(frozen=True)

    FIELDS: ClassVar[tuple[str, ...]] = PRICING_FIELDS

    published_price: float | None = None
    elasticity: float | None = None
    elasticity_std: float | None = None
    observations: Count = 0
    elasticity_prior: float | None = None
    elasticity_prior_std: float | None = None
    evidence_views: Count = 0
    evidence_units: float = 0.0
    exposure_hours: float = 0.0
    elasticity_information: float = 0.0
    decision: str | None = None

    @staticmethod
    def encode(values: Mapping[str, Any]) -> dict[str, str]:
        """The hash fields of a product's feature values (the others are left out), written
        without building the model: the flows write one for every product that changes."""
        return {name: str(values[name]) for name in PRICING_FIELDS if name in values}

    @classmethod
    def from_hash(cls, fields: Mapping[str, str] | Mapping[bytes, bytes]) -> PricingState:
        """The state in ``fields`` (an ``HGETALL``, text or bytes); empty values are unknown."""
        found = {_text(k): _text(v) for k, v in fields.items()}
        return cls.model_validate({k: v for k, v in found.items() if v != ""})


class ScoredSku(BaseModel):
    """One recommended product and its score (higher is better)."""

    model_config = ConfigDict(frozen=True)

    sku: Identifier
    score: Annotated[float, Field(allow_inf_nan=False)]


ListName = Literal["discover", "again", "mixed"]
"""A shopper's lists: ``again`` (their own items: buy again, continue), ``discover`` (items
they have not interacted with) and ``mixed`` (the two: buy again first, places kept for
discover)."""
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


class PriceView(BaseModel):
    """A product's current price and what the pricing model knows about it: the answer of
    ``GET /prices/{sku}`` and the message ``/ws/prices`` pushes on each change."""

    sku: str
    price: float = Field(description="The published price (the list price until a change).")
    previous_price: float | None = Field(None, description="The price before the last change.")
    updated_at: datetime | None = Field(None, description="When the price last changed (UTC).")
    reason: str | None = Field(None, description="Why it changed (pricer decision, guardrail).")
    model_version: str | None = Field(None, description="The online pricer that set it.")
    elasticity: float | None = Field(None, description="Posterior mean of the price elasticity.")
    elasticity_std: float | None = Field(None, description="Its posterior standard deviation.")
    observations: int = Field(0, description="Price/demand buckets the elasticity learned from.")
    elasticity_prior: float | None = Field(
        None, description="The category's pooled prior of the elasticity (mean)."
    )
    elasticity_prior_std: float | None = Field(None, description="Its standard deviation.")
    evidence_views: int = Field(0, description="Views the elasticity learned from.")
    evidence_units: float = Field(0.0, description="Conversions or units sold it learned from.")
    exposure_hours: float = Field(
        0.0, description="Busy-weighted hours of till sales it learned from (no views)."
    )
    decision: str | None = Field(None, description="Why the latest decision set or kept it.")
    expected_units_per_day: float | None = Field(
        None, description="Demand model forecast at this price (when a model is loaded)."
    )
    demand_model: str | None = Field(None, description="The ONNX demand model that forecast it.")
    stale: bool = Field(False, description="True when Redis was unavailable: last-known value.")


ListSource = Literal["ranker", "streaming", "popularity"]
"""What served a shopper's list: ``ranker`` (the ONNX ranker re-ranking the flows'
candidates), ``streaming`` (the lists built from what the flows store, no ranker loaded) or
``popularity`` (a shopper the flows have not seen)."""

DiscoverOrigin = Literal["similar", "category", "popularity"]
"""Where the best item of a discover list came from: the neighbours of the shopper's history
(``similar``), their categories' best sellers (``category``) or the popular items."""


CandidateSource = Literal["again", "similar", "factors", "category", "popular"]
"""Where a served item came from: the shopper's own items (``again``), the neighbours of their
history (``similar``), the item factors the shopper is folded into (``factors``), their
categories' best sellers (``category``) or the popular items (``popular``). A discover item
is named by the source that gave the largest part of its blended score. The ranker reads it
as a feature, so it learns how much each source is worth."""
CANDIDATE_SOURCES: tuple[CandidateSource, ...] = (
    "again",
    "similar",
    "factors",
    "category",
    "popular",
)


class RecommendedItem(BaseModel):
    """One item of a served list and its score (higher is better)."""

    sku: str
    score: float
    source: CandidateSource | None = Field(
        None,
        description="Where the item came from: `again`, `similar`, `factors`, `category`, "
        "`popular`.",
    )


class Recommendations(BaseModel):
    """A shopper's top-k of one list and what served it: the answer of
    ``GET /recommendations/{user_id}`` and the message ``/ws/recommendations/{user_id}``
    pushes on each change."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    user_id: str
    list_name: ListName = Field(
        "mixed",
        alias="list",
        description="`again` (the shopper's own items: buy again, continue), "
        "`discover` (items they have not interacted with) or `mixed` (both: buy again first, "
        "places kept for discover).",
    )
    items: list[RecommendedItem]
    source: ListSource = Field(
        description="What served the list: `ranker` (the ONNX ranker re-ranking the flows' "
        "candidates, topped up from popularity), `streaming` (the flows' lists as stored, when "
        "no ranker is loaded) or `popularity` (shoppers the flows have not seen)."
    )
    model_version: str | None = Field(None, description="The ranker version, when it ranked.")
    updated_at: datetime | None = Field(None, description="When the flows last refreshed it.")
    stale: bool = Field(False, description="True when Redis was unavailable: last-known list.")


class RelatedItem(BaseModel):
    """A product bought by the same shoppers as another."""

    sku: str
    category: str | None = None
    weight: int = Field(description="Shoppers who bought both products")
    lift: float | None = Field(
        default=None, description="How much more often than by chance (1 = independent)"
    )


class RelatedProducts(BaseModel):
    """A product's strongest co-purchases: the JSON at ``graph:related:{namespace}:{sku}``
    (written by each graph load, ``graph/serving.py``) and the answer of
    ``GET /graph/products/{sku}/related``."""

    sku: str
    items: list[RelatedItem] = Field(description="Strongest co-purchases first")
