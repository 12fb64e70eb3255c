"""What travels between the steps of the dataflow: plain, picklable values that no step
changes after emitting them.

In: :class:`Accepted` (a valid message) or :class:`Rejected` (for the dead-letter topic);
bronze keeps a :class:`LakeRow` of each valid one. The keyed steps receive signals
(:class:`SkuSignal`, :class:`UserSignal`) and emit, once per key and batch, frozen values of
what changed: :class:`FeatureRow` (a product's or shopper's feature values with their
watermark), :class:`ShopperLists` (what a shopper's recommendations are served from),
:class:`Drift`, :data:`Popularity` and :data:`Neighbours`, besides each price change
(``online_models.pricer.PriceChange``). The sinks write what they receive and never call
into a step's state (docs/flows.md, "What travels down the flow").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from schemas.events import Event

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Accepted(NamedTuple):
    """A valid input message with where it came from (a tuple: one is made per message, and
    a tuple is built without running Python code per field)."""

    topic: str  # contract name, without prefix
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    event: Event
    t: float  # event time, epoch seconds (computed once, read by every step)
    correlation_id: str | None = None  # the message's x-correlation-id header

    @classmethod
    def of(
        cls,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        raw: bytes,
        event: Event,
        correlation_id: str | None = None,
    ) -> Accepted:
        t = event.event_time.timestamp()
        return cls(topic, partition, offset, key, raw, event, t, correlation_id)


class LakeRow(NamedTuple):
    """What bronze keeps of a valid message: plain values, cheap to snapshot."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    event_id: str
    event_us: int  # event time, microseconds since the epoch (UTC)

    @classmethod
    def of(cls, r: Accepted) -> LakeRow:
        t = r.event.event_time
        us = (t - EPOCH) // timedelta(microseconds=1)
        return cls(r.topic, r.partition, r.offset, r.key, r.raw, r.event.event_id, us)

    def __deepcopy__(self, memo: dict[int, Any]) -> LakeRow:
        # Immutable all the way down: the lake buffer's snapshot need not copy its rows
        # (copy.deepcopy rebuilt every buffered row at each snapshot).
        return self


class Rejected(NamedTuple):
    """An input message that failed validation, ready for the dead-letter topic."""

    topic: str
    partition: int
    offset: int
    raw: bytes
    error: str
    correlation_id: str | None = None  # the message's x-correlation-id header


SkuKind = Literal["view", "add_to_cart", "remove_from_cart", "sale", "stock", "competitor"]


class SkuSignal(NamedTuple):
    """One thing that happened to a product, in event time.

    A tuple, not a dataclass: signals cross process boundaries (pickled by Bytewax), and a
    tuple unpickles without running Python code per field.
    """

    kind: SkuKind
    t: float
    quantity: int = 0  # units sold, or units on hand
    price: float = 0.0  # unit price of a sale, or a competitor's price
    source: str = ""  # store (stock) or competitor


UserKind = Literal["view", "add_to_cart", "remove_from_cart", "wishlist", "search", "purchase"]


class UserSignal(NamedTuple):
    """One thing a shopper did, in event time (a tuple, as :class:`SkuSignal`)."""

    kind: UserKind
    t: float
    session_id: str
    skus: tuple[str, ...] = ()


class FeatureRow(NamedTuple):
    """An entity's (product's or shopper's) feature values as its keyed step left them at the
    end of a batch: the sinks write them as they are.

    Frozen: ``values`` is built for this row alone (no state refers to it or to what it holds),
    so the row says what the state was when it was made, whatever the state did since. A step
    makes one per entity and batch, however many of the entity's events the batch held.
    """

    entity: Literal["sku", "user"]
    key: str
    values: Mapping[str, Any]  # feature name → value (schemas.features)
    watermark: float  # event time (epoch seconds) of the latest event the values include
    model_error: float | None = None  # a product's elasticity learner's recent mean abs. error


class ShopperLists(NamedTuple):
    """What a shopper's recommendations are served from, as of the end of a batch: their
    buy-again list, recent items, touched items and categories (``schemas.serving.StoredShopper``).
    Built for this value alone, like :class:`FeatureRow`'s values."""

    user: str
    again: Sequence[tuple[str, float]]  # own items by interest share, at most k
    recent: Sequence[str]  # distinct items of the history, newest first: discover's seeds
    seen: frozenset[str]  # items known touched, never offered as discoveries
    categories: Sequence[tuple[str, float]]  # (category, share), strongest first


class Drift(NamedTuple):
    """A product's elasticity learner drifted (ADWIN on its error), in event time."""

    model: str
    sku: str
    t: float
    mean_error: float


Neighbours = tuple[str, list[tuple[str, float]]]  # (sku, [(neighbour, weight), ...])
Popularity = tuple[str, tuple[str, float]]  # (sku, (category, online_models.popularity score))
