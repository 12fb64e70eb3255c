"""Reading a product's price for serving: the published price, its history and its model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, Field

from api.features import FeatureReads, text
from api.onnx_models import LoadedModel
from api.responses import model_json
from governance.explain import Explanation
from infra.clients import AsyncRedis
from online_models.demand_features import demand_features
from schemas.keys import RedisKeys
from schemas.serving import PriceDetails


class PriceView(BaseModel):
    """A product's current price and what the pricing model knows about it."""

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


class PriceState(BaseModel):
    """Everything Redis holds about one sku that the price routes use (cached as a unit)."""

    sku: str
    details: dict[str, str]
    # The pricing state (plain hash) and the demand model's inputs (Feast: the flows' online
    # features and the batch averages), as text by feature name.
    features: dict[str, str]
    catalogue: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Priced:
    """A product's state with its answer rendered once (what the price cache holds).

    ``body`` is the JSON of its fresh view, forecast by the demand model ``model`` (None:
    no model); a hit sends it as it is, so a cached answer costs no model run and no
    serialisation.
    """

    state: PriceState
    body: bytes
    model: str | None

    @classmethod
    def of(cls, state: PriceState, demand: LoadedModel | None) -> Priced:
        view = price_view(state, demand=demand)
        return cls(state, model_json(view), None if demand is None else demand.label)


async def read_price_states(
    client: AsyncRedis, keys: RedisKeys, reads: FeatureReads, skus: list[str]
) -> dict[str, PriceState]:
    """One pipelined round trip for all ``skus`` (``client`` returns bytes); unknown skus
    are left out."""
    pipe = client.pipeline(transaction=False)
    for sku in skus:
        pipe.hgetall(keys.price(sku))
        pipe.hgetall(keys.sku_features(sku))
        pipe.hmget(reads.sku.key(sku), list(reads.price.fields))  # type: ignore[arg-type]
    pipe.hmget(keys.catalogue, skus)
    replies = await pipe.execute()
    catalogue = replies[-1]
    out: dict[str, PriceState] = {}
    for i, sku in enumerate(skus):
        details, state, model = replies[3 * i : 3 * i + 3]
        item = catalogue[i]
        if not details and item is None:
            continue
        out[sku] = PriceState(
            sku=sku,
            details=text(details),
            features=text(state) | reads.price.decode(model),
            catalogue=None if item is None else orjson.loads(item),
        )
    return out


async def read_priced(
    client: AsyncRedis,
    keys: RedisKeys,
    reads: FeatureReads,
    skus: list[str],
    demand: LoadedModel | None,
) -> dict[str, Priced]:
    """:func:`read_price_states`, each rendered with ``demand``'s forecast."""
    states = await read_price_states(client, keys, reads, skus)
    return {sku: Priced.of(s, demand) for sku, s in states.items()}


def price_view(
    state: PriceState,
    *,
    stale: bool = False,
    demand: LoadedModel | None = None,
    when: datetime | None = None,
) -> PriceView:
    """The response for one sku (list price when nothing was published yet).

    With a demand model, the view carries its forecast of units per day at this price from
    the product's online features and batch averages, the row
    ``online_models.demand_features`` builds in training too.
    """
    d, f = PriceDetails.from_hash(state.details), state.features
    list_price = None if state.catalogue is None else float(state.catalogue["list_price"])
    price = d.price if d is not None else list_price
    assert price is not None  # read_price_states drops skus with neither
    forecast = None
    if demand is not None:
        row = demand_features(state.features, price, when or datetime.now(UTC))
        forecast = max(0.0, round(float(demand.predict(np.array([row]))[0]), 4))
    return PriceView(
        sku=state.sku,
        price=price,
        previous_price=None if d is None else d.previous_price,
        updated_at=None if d is None else d.updated_at,
        reason="list price (no change published yet)" if d is None else d.reason,
        model_version=None if d is None else d.model_version,
        elasticity=_float(f.get("elasticity")),
        elasticity_std=_float(f.get("elasticity_std")),
        observations=int(float(f.get("observations", "0") or 0)),
        elasticity_prior=_float(f.get("elasticity_prior")),
        elasticity_prior_std=_float(f.get("elasticity_prior_std")),
        evidence_views=int(float(f.get("evidence_views", "0") or 0)),
        evidence_units=float(f.get("evidence_units", "0") or 0),
        exposure_hours=float(f.get("exposure_hours", "0") or 0),
        decision=f.get("decision") or None,
        expected_units_per_day=forecast,
        demand_model=None if demand is None else demand.label,
        stale=stale,
    )


def explain_forecast(
    state: PriceState, price: float, demand: LoadedModel, when: datetime
) -> Explanation | None:
    """Why ``demand`` forecasts what it does for this sku at ``price``: the same row as
    :func:`price_view`'s forecast, explained by the served version's own booster."""
    if demand.explainer is None:
        return None
    return demand.explainer.explain_row(np.array(demand_features(state.features, price, when)))


def _float(text: str | None) -> float | None:
    return None if text is None or text == "" else float(text)
