"""The plain Redis key layout for serving state.

Every key tillflow reads or writes outside Feast is built here. Keys share one prefix
(``TILLFLOW_REDIS_PREFIX``, default ``tillflow:``) so one Redis can hold several shops.

>>> keys = RedisKeys("tillflow:")
>>> keys.current_prices
'tillflow:prices:current'
>>> keys.price("SKU-00042")
'tillflow:price:SKU-00042'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Builds the Redis keys and pub/sub channels of one tillflow deployment."""

    prefix: str = "tillflow:"

    @property
    def current_prices(self) -> str:
        """Hash ``sku -> price`` (decimal string) of every published price; read in bulk."""
        return f"{self.prefix}prices:current"

    def price(self, sku: str) -> str:
        """Hash with the details of one product's current price.

        Fields: ``price``, ``previous_price``, ``updated_at`` (ISO-8601, UTC), ``reason``,
        ``model_version``.
        """
        return f"{self.prefix}price:{sku}"

    @property
    def price_channel(self) -> str:
        """Pub/sub channel carrying every price change as a ``PriceUpdate`` JSON."""
        return f"{self.prefix}channel:prices"
