"""Shoppers with latent tastes, and how they pick what to look at."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.catalogue import Product
from simulator.config import ShopConfig


def user_id_of(index: int) -> str:
    """The user id of shopper ``index``: ``u-000001`` for index 0."""
    return f"u-{index + 1:06d}"


@dataclass(frozen=True)
class Shoppers:
    """Everyone who shops, as arrays indexed by shopper.

    ``category_cdf[u]`` is shopper u's cumulative preference over categories;
    ``item_cdf[u]`` holds, for each category's contiguous block of products, the
    cumulative probability of viewing each product of that block.
    """

    category_tastes: np.ndarray  # (shoppers, categories), rows sum to 1
    latent: np.ndarray  # (shoppers, latent_dim)
    item_latent: np.ndarray  # (products, latent_dim)
    popularity: np.ndarray  # (products,)
    home_store: np.ndarray  # (shoppers,)
    activity: np.ndarray  # (shoppers,) relative visit rate, mean 1
    category_cdf: np.ndarray
    item_cdf: np.ndarray
    block_start: np.ndarray  # (categories,) first product index of each category
    block_end: np.ndarray  # (categories,) one past the last

    @property
    def count(self) -> int:
        return int(self.category_tastes.shape[0])

    def view_probabilities(self) -> np.ndarray:
        """P(product | shopper's session) for every shopper and product: (shoppers, products)."""
        n_users, n_products = self.item_cdf.shape
        probs = np.empty((n_users, n_products))
        for c, (s, e) in enumerate(zip(self.block_start, self.block_end, strict=True)):
            if s == e:
                continue
            block = np.diff(self.item_cdf[:, s:e], axis=1, prepend=0.0)
            probs[:, s:e] = block * self.category_tastes[:, c : c + 1]
        return probs


def make_shoppers(
    config: ShopConfig, products: list[Product], rng: np.random.Generator
) -> Shoppers:
    """Draw shoppers' tastes and precompute their sampling tables."""
    n_u, n_c, d = config.shoppers, config.categories, config.latent_dim
    categories = np.array([p.category for p in products])
    tastes = rng.dirichlet(np.full(n_c, config.taste_concentration), size=n_u)
    # Categories with no product cannot be browsed.
    has_products = np.bincount(categories, minlength=n_c) > 0
    tastes = tastes * has_products
    tastes /= tastes.sum(axis=1, keepdims=True)
    latent = rng.normal(0, 1 / np.sqrt(d), size=(n_u, d))
    item_latent = rng.normal(0, 1, size=(len(products), d))
    popularity = rng.lognormal(0, 1.0, size=len(products))
    scores = np.exp(config.latent_weight * latent @ item_latent.T) * popularity[None, :]
    block_start = np.searchsorted(categories, np.arange(n_c), side="left")
    block_end = np.searchsorted(categories, np.arange(n_c), side="right")
    item_cdf = np.empty_like(scores)
    for s, e in zip(block_start, block_end, strict=True):
        if s == e:
            continue
        block = np.cumsum(scores[:, s:e], axis=1)
        item_cdf[:, s:e] = block / block[:, -1:]
    activity = rng.gamma(2.0, 0.5, size=n_u)
    return Shoppers(
        category_tastes=tastes,
        latent=latent,
        item_latent=item_latent,
        popularity=popularity,
        home_store=rng.integers(0, config.stores, size=n_u),
        activity=activity / activity.mean(),
        category_cdf=np.cumsum(tastes, axis=1),
        item_cdf=item_cdf,
        block_start=block_start,
        block_end=block_end,
    )
