"""Co-purchases: two products bought by the same shopper, counted over shoppers, with lift.

``weight(a, b)`` is the number of shoppers who bought both ``a`` and ``b``; ``lift(a, b)`` is
``weight · N / (buyers(a) · buyers(b))`` where ``N`` is the number of shoppers who bought
anything: how much more often the pair occurs than if the two were bought independently.
Only pairs with at least ``MIN_SUPPORT`` shoppers become edges.

>>> m = PurchaseMatrix.of([("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "a")])
>>> m.shoppers, m.buyers()
(3, {'a': 3, 'b': 2})
>>> [(p.a, p.b, p.weight) for p in m.pairs()]
[('a', 'b', 2)]
>>> lift(weight=2, buyers_a=3, buyers_b=2, shoppers=3)
1.0
>>> lift(weight=2, buyers_a=2, buyers_b=2, shoppers=10)
5.0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

MIN_SUPPORT = 2  # shoppers who bought both, for a pair to become a CO_PURCHASED edge


def lift(weight: int, buyers_a: int, buyers_b: int, shoppers: int) -> float:
    """How much more often ``a`` and ``b`` are bought together than by chance."""
    return weight * shoppers / (buyers_a * buyers_b)


@dataclass(frozen=True, slots=True)
class Pair:
    a: str  # a < b: one edge per unordered pair
    b: str
    weight: int


@dataclass(frozen=True)
class PurchaseMatrix:
    """Shoppers × products, 1 where the shopper bought the product (sparse)."""

    matrix: sp.csr_matrix
    users: list[str]
    skus: list[str]

    @classmethod
    def of(cls, bought: Iterable[tuple[str, str]], skus: Sequence[str] = ()) -> PurchaseMatrix:
        """From ``(user, sku)`` pairs; ``skus`` fixes the column order (others are appended)."""
        user_index: dict[str, int] = {}
        sku_index: dict[str, int] = {s: i for i, s in enumerate(skus)}
        rows, cols = [], []
        for user, sku in bought:
            rows.append(user_index.setdefault(user, len(user_index)))
            cols.append(sku_index.setdefault(sku, len(sku_index)))
        data = np.ones(len(rows), dtype=np.int64)
        shape = (len(user_index), len(sku_index))
        matrix = sp.csr_matrix((data, (rows, cols)), shape=shape)
        matrix.data[:] = 1  # a repeated (user, sku) counts once
        return cls(matrix, list(user_index), list(sku_index))

    @property
    def shoppers(self) -> int:
        """Shoppers who bought anything."""
        return int((self.matrix.getnnz(axis=1) > 0).sum())

    def buyers(self) -> dict[str, int]:
        counts = np.asarray(self.matrix.sum(axis=0)).ravel()
        return {s: int(c) for s, c in zip(self.skus, counts, strict=True) if c > 0}

    def counts(self) -> sp.coo_matrix:
        """Upper triangle of ``BᵀB`` (pairs a < b by column index): shoppers per pair."""
        co = (self.matrix.T @ self.matrix).tocoo()
        keep = co.row < co.col
        return sp.coo_matrix(
            (co.data[keep], (co.row[keep], co.col[keep])), shape=co.shape, dtype=np.int64
        )

    def pairs(self, min_support: int = 1) -> list[Pair]:
        """Every pair bought by at least ``min_support`` shoppers, ``a < b`` by sku."""
        co = self.counts()
        out = []
        for i, j, w in zip(co.row, co.col, co.data, strict=True):
            if w >= min_support:
                a, b = sorted((self.skus[i], self.skus[j]))
                out.append(Pair(a, b, int(w)))
        return sorted(out, key=lambda p: (p.a, p.b))


def pairs_of(baskets: Iterable[Iterable[str]]) -> set[tuple[str, str]]:
    """Every unordered pair ``(a, b)``, ``a < b``, within each basket.

    >>> sorted(pairs_of([["b", "a", "c"], ["a"]]))
    [('a', 'b'), ('a', 'c'), ('b', 'c')]
    """
    out: set[tuple[str, str]] = set()
    for basket in baskets:
        items = sorted(set(basket))
        for i, a in enumerate(items):
            for b in items[i + 1 :]:
                out.add((a, b))
    return out
