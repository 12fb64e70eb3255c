"""Where the API reads a product's and a shopper's features in Redis (one place).

Model features are in the Feast online store, in Feast's layout (featurestore/layout.py):
the flows' views ``sku_features`` and ``user_features`` and the batch view
``sku_daily_features``, which share each entity's hash, so one ``HMGET`` per entity reads
every view. The pricing state the flows keep beside a price (published price, elasticity) is
in the plain hash ``keys.sku_features``. The API never imports Feast: it reads the bytes.
Values come back as text by feature name, the form ``online_models.demand_features`` and
``online_models.ranking`` read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from featurestore.layout import FeastLayout, Selection, batch_sku_layout, sku_layout, user_layout
from online_models.demand_features import BATCH_INPUTS, ONLINE_INPUTS
from online_models.ranking import ITEM_INPUTS
from schemas.features import SKU_FEATURES, stored_in
from schemas.settings import Settings

PRICING_STATE = tuple(f.name for f in stored_in(SKU_FEATURES, "redis"))
# What the pricing page shows beside the demand model's inputs.
PAGE_EXTRAS = ("days_of_cover",)


@dataclass(frozen=True, slots=True)
class FeatureReads:
    """The keys and fields of every feature read, built once per app."""

    sku: FeastLayout
    user: FeastLayout
    price: Selection  # the demand row and the pricing page (online + batch views)
    item: Selection  # the ranker's item part, apart from the plain pricing state
    item_state: tuple[str, ...]  # the ranker's item fields in the plain hash
    shopper: Selection

    @classmethod
    def create(cls, settings: Settings) -> FeatureReads:
        sku, user = sku_layout(settings), user_layout(settings)
        batch = batch_sku_layout(settings)
        return cls(
            sku=sku,
            user=user,
            price=sku.select(ONLINE_INPUTS + PAGE_EXTRAS) + batch.select(BATCH_INPUTS),
            item=sku.select(n for n in ITEM_INPUTS if n not in PRICING_STATE),
            item_state=tuple(n for n in ITEM_INPUTS if n in PRICING_STATE),
            shopper=user.select(),
        )

    def hmget_shopper(self, client: Any, user_id: str) -> Any:
        """The ``HMGET`` of a shopper's features, sent by ``client`` or queued on a pipeline
        (``shopper.decode`` reads its reply): the one read of them every reader shares."""
        return client.hmget(self.user.key(user_id), list(self.shopper.fields))


def text(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    """A plain hash read with the bytes client, as text."""
    return {k.decode(): v.decode() for k, v in raw.items()}
