"""The prices shoppers see: tillflow's published prices, falling back to list prices."""

from __future__ import annotations

from collections.abc import Mapping

from simulator.catalogue import Product


class PriceBook:
    """Current shelf price per product index, updated in bulk from whatever publishes prices.

    >>> from simulator.catalogue import Product
    >>> book = PriceBook([Product(0, "SKU-00001", 0, 10.0, 6.0, -2.0, 0.1, (1.0,) * 7)])
    >>> book.update({"SKU-00001": "9.50", "SKU-99999": "1"})
    1
    >>> book.current[0]
    9.5
    """

    def __init__(self, products: list[Product]) -> None:
        self._list = [p.list_price for p in products]
        self._index = {p.sku: p.index for p in products}
        self.current: list[float] = list(self._list)

    def update(self, prices: Mapping[str, str | bytes | float] | Mapping[bytes, bytes]) -> int:
        """Set published prices by sku (unknown skus and non-positive prices are ignored).

        Products missing from ``prices`` go back to their list price. Returns how many
        products now have a published price.
        """
        fresh = list(self._list)
        applied = 0
        for sku, raw in prices.items():
            key = sku.decode() if isinstance(sku, bytes) else sku
            i = self._index.get(key)
            if i is None:
                continue
            try:
                value = float(raw)
            except ValueError:
                continue
            if value > 0:
                fresh[i] = value
                applied += 1
        self.current = fresh
        return applied

    def set(self, index: int, price: float) -> None:
        """Set one product's price (used by pricing policies inside the simulation)."""
        self.current[index] = price
