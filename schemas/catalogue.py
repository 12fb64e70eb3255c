"""The product catalogue: master data the pricing flow needs (list price, unit cost, category).

It is not an event stream: the shop's systems load it into Redis
(``tillflow catalogue load FILE``; the simulator loads its own), and the flows read it at start.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import MAX_PRICE, Identifier

Price = Annotated[float, Field(gt=0, le=float(MAX_PRICE), allow_inf_nan=False)]


class CatalogueItem(BaseModel):
    """One product: what it costs us, what it lists at, where it belongs."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: Identifier
    category: Identifier
    list_price: Price
    unit_cost: Price

    @model_validator(mode="after")
    def _cost_below_list(self) -> CatalogueItem:
        if self.unit_cost >= self.list_price:
            raise ValueError("unit_cost must be below list_price")
        return self
