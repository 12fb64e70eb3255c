"""The demand model's batch features (7- and 28-day averages from gold), held in memory.

The demand model trains on the flows' 24 h features plus Feast's batch view
``sku_daily_features``. Those change once a day, so the API reads them for every product in
the background (``TILLFLOW_BATCH_FEATURES_REFRESH_S``) instead of on the request path, and
merges them into the product's hash exactly as training does.

>>> merged({"units_24h": "4"}, {"units_per_day_7d": 2.5, "views_per_day_7d": None})
{'units_24h': '4', 'units_per_day_7d': '2.5'}
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog

from infra.clients import redis_client
from schemas.settings import Settings

log = structlog.get_logger(__name__)

# The batch values online_models.demand_features reads from the merged hash.
USED = ("units_per_day_7d", "views_per_day_7d", "units_per_day_28d")


def merged(online: Mapping[str, str], batch: Mapping[str, Any]) -> dict[str, str]:
    """The product's online hash with its batch averages added (missing ones left out)."""
    out = dict(online)
    for name in USED:
        value = batch.get(name)
        if value is not None:
            out[name] = repr(float(value))
    return out


class BatchFeatures:
    """Per-sku batch features, replaced as a whole by each refresh."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}
        self.refreshed_at: float | None = None
        self.error: str | None = None
        self.attempted = False  # the first refresh (which imports Feast) has finished

    def status(self) -> str:
        """For /readyz: ``loading``, ``ok (N skus)`` or why forecasts use 24 h values."""
        if not self.attempted:
            return "loading"
        if self.error is not None:
            return f"unavailable ({self.error[:120]}); forecasts use 24 h values"
        return f"ok ({len(self.values)} skus)"

    def get(self, sku: str) -> dict[str, Any]:
        return self.values.get(sku, {})

    def refresh(self, settings: Settings) -> None:
        """Read every catalogued sku's batch features from the Feast online store (blocking)."""
        try:
            self._refresh(settings)
        finally:
            self.attempted = True

    def _refresh(self, settings: Settings) -> None:
        try:
            client = redis_client(settings, decode_responses=True)
            try:
                skus = sorted(client.hkeys(settings.keys.catalogue))  # type: ignore[arg-type]
            finally:
                client.close()
            if not skus:
                return
            from featurestore.repo import BATCH_SKU_VIEW, feature_store

            rows = (
                feature_store(settings)
                .get_online_features(
                    features=[f"{BATCH_SKU_VIEW}:{name}" for name in USED],
                    entity_rows=[{"sku": sku} for sku in skus],
                )
                .to_dict()
            )
        except Exception as exc:  # noqa: BLE001 - no batch run yet, Feast or Redis away: keep going
            if self.error != str(exc):
                log.warning("batch features unavailable; forecasts use 24 h values", error=str(exc))
            self.error = str(exc)
            return
        self.values = {
            sku: {name: rows[name][i] for name in USED} for i, sku in enumerate(rows["sku"])
        }
        self.refreshed_at, self.error = time.time(), None
        log.info("batch features loaded", skus=len(self.values))
