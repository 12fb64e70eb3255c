"""The product catalogue: master data the pricing flow needs (list price, unit cost, category)
and, optionally, what shoppers read and search (name, brand, description).

It is not an event stream: the shop's systems load it into Redis
(``tillflow catalogue load FILE``; the simulator loads its own), and the flows read it at start.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import MAX_PRICE, Identifier

Price = Annotated[float, Field(gt=0, le=float(MAX_PRICE), allow_inf_nan=False)]


class CatalogueItem(BaseModel):
    """One product: what it costs us, what it lists at, where it belongs, what it is called.

    >>> CatalogueItem(sku="A", category="dairy", list_price=2.0, unit_cost=1.0).title
    'A'
    >>> CatalogueItem(sku="A", category="dairy", list_price=2.0, unit_cost=1.0,
    ...               name="Greek Yogurt").title
    'Greek Yogurt'
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: Identifier
    category: Identifier
    list_price: Price
    unit_cost: Price
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    brand: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None

    @property
    def title(self) -> str:
        """What a shopper sees: the name, or the sku for products without one."""
        return self.name or self.sku

    @model_validator(mode="after")
    def _cost_below_list(self) -> CatalogueItem:
        if self.unit_cost >= self.list_price:
            raise ValueError("unit_cost must be below list_price")
        return self
