"""What the simulated shop looks like: sizes, traffic and the shape of demand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ShopConfig(BaseModel):
    """Parameters of one simulated shop. The same config and seed give the same shop."""

    model_config = ConfigDict(frozen=True)

    seed: int = 42
    products: int = Field(default=500, ge=1)
    categories: int = Field(default=20, ge=1)
    shoppers: int = Field(default=5_000, ge=1)
    stores: int = Field(default=5, ge=1)
    competitors: int = Field(default=3, ge=0)
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday

    # Channels: "web" (views, carts and web orders), "pos" (till orders only: no activity
    # events), "both". The ground truth (products, demand curves) is the same in every mode.
    channels: Literal["web", "pos", "both"] = "web"
    # Traffic: web sessions and till visits per simulated day (before the hour-of-day profile).
    sessions_per_day: float = Field(default=10_000.0, gt=0)
    till_visits_per_day: float = Field(default=10_000.0, gt=0)
    mean_views_per_session: float = Field(default=4.0, ge=1)
    search_probability: float = Field(default=0.35, ge=0, le=1)
    wishlist_probability: float = Field(default=0.03, ge=0, le=1)
    # A carted item is bought with this probability, else removed from the cart.
    checkout_probability: float = Field(default=0.6, ge=0, le=1)

    # True demand: P(add to cart | view) = conversion * (price/list)^elasticity * season * noise.
    elasticity_range: tuple[float, float] = (-3.0, -0.5)
    conversion_range: tuple[float, float] = (0.08, 0.22)
    seasonality_amplitude: tuple[float, float] = (0.05, 0.3)
    daily_noise_sigma: float = Field(default=0.1, ge=0)
    max_cart_probability: float = Field(default=0.95, gt=0, le=1)

    # A till visit is a session nobody sees: its items are bought with P(cart) × checkout.
    # Tastes: Dirichlet concentration of category preferences, latent dimension and weight.
    taste_concentration: float = Field(default=0.3, gt=0)
    latent_dim: int = Field(default=8, ge=1)
    latent_weight: float = Field(default=1.0, ge=0)

    # Inventory: restock each simulated day to this many days of expected demand.
    stock_days: float = Field(default=14.0, gt=0)
    reorder_days: float = Field(default=5.0, ge=0)

    # Competitors: each (product, competitor) price is re-observed this often per day.
    competitor_updates_per_day: float = Field(default=4.0, ge=0)
    competitor_drift_sigma: float = Field(default=0.02, ge=0)
