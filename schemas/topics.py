"""Kafka topics: names, message keys, models and partition counts.

Nothing outside ``schemas/`` spells a topic name. Names carry an optional prefix
(``TILLFLOW_TOPIC_PREFIX=shop1.`` gives ``shop1.orders``).

>>> ORDERS.qualified("shop1.")
'shop1.orders'
>>> [t.name for t in INPUT_TOPICS]
['orders', 'user-activity', 'inventory', 'competitor-prices']
>>> by_name("inventory").key_field
'sku'
>>> [t.name for t in LAKE_TOPICS if t not in INPUT_TOPICS]
['recommendations-served']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.events import (
    CompetitorPrice,
    DeadLetter,
    Event,
    InventoryLevel,
    Order,
    PriceUpdate,
    UserActivity,
)
from schemas.served import ServedList


@dataclass(frozen=True, slots=True)
class Topic:
    """One Kafka topic of the contract."""

    name: str
    model: type[Event]
    key_field: str | None
    direction: Literal["in", "out"]
    description: str
    partitions: int | None = None  # a fixed partition count instead of the settings' default

    def qualified(self, prefix: str) -> str:
        """The topic's name on the broker, with the configured prefix."""
        return f"{prefix}{self.name}"

    def key_of(self, event: Event) -> bytes | None:
        """The message key for ``event``: the entity this topic is about."""
        if self.key_field is None:
            return None
        return str(getattr(event, self.key_field)).encode()


ORDERS = Topic(
    "orders", Order, "order_id", "in", "Completed checkouts from tills and the web shop."
)
USER_ACTIVITY = Topic(
    "user-activity", UserActivity, "user_id", "in", "Views, carts, searches, wishlists."
)
INVENTORY = Topic("inventory", InventoryLevel, "sku", "in", "On-hand units per product and store.")
COMPETITOR_PRICES = Topic(
    "competitor-prices", CompetitorPrice, "sku", "in", "Competitors' observed shelf prices."
)
PRICE_UPDATES = Topic(
    "price-updates", PriceUpdate, "sku", "out", "Every price change tillflow publishes."
)
DEAD_LETTER = Topic(
    "dead-letter", DeadLetter, None, "out", "Rejected input messages with the reason."
)

RECOMMENDATIONS_SERVED = Topic(
    "recommendations-served",
    ServedList,
    "user_id",
    "out",
    "Every recommendation list the API served: shopper, items, each item's source.",
    partitions=1,  # the flow polls every partition; one carries a few hundred lists a second
)

INPUT_TOPICS: tuple[Topic, ...] = (ORDERS, USER_ACTIVITY, INVENTORY, COMPETITOR_PRICES)
OUTPUT_TOPICS: tuple[Topic, ...] = (PRICE_UPDATES, DEAD_LETTER, RECOMMENDATIONS_SERVED)
ALL_TOPICS: tuple[Topic, ...] = INPUT_TOPICS + OUTPUT_TOPICS
LAKE_TOPICS: tuple[Topic, ...] = (*INPUT_TOPICS, RECOMMENDATIONS_SERVED)
"""What the flow reads and keeps in Delta bronze: the input topics (which it also learns from)
and the served-list log (kept only, for the ranker's training)."""

_BY_NAME = {t.name: t for t in ALL_TOPICS}


def by_name(name: str) -> Topic:
    """The topic called ``name`` (without prefix); ``KeyError`` if there is none."""
    return _BY_NAME[name]


def input_topic(name: str) -> Topic | None:
    """The input topic called ``name``, or None when ``name`` is not an input topic."""
    topic = _BY_NAME.get(name)
    return topic if topic is not None and topic.direction == "in" else None
