"""What travels between the steps of the dataflow (all plain, picklable values)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol

from schemas.events import Event

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid input message with where it came from."""

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


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input message that failed validation, ready for the dead-letter topic."""

    topic: str
    partition: int
    offset: int
    raw: bytes
    error: str
    correlation_id: str | None = None  # the message's x-correlation-id header


SkuKind = Literal["view", "add_to_cart", "sale", "stock", "competitor"]


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


class HasFeatures(Protocol):
    @property
    def watermark(self) -> float:
        """Event time (epoch seconds) of the latest event the values include."""
        ...

    def values(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """An entity (sku or shopper) whose features changed.

    ``source`` is the live state of that entity: the sink computes the values once per
    batch, from the freshest state, however many events touched the entity meanwhile.
    """

    entity: Literal["sku", "user"]
    key: str
    source: HasFeatures
