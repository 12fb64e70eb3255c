"""The event contract: one pydantic model per Kafka message type.

Every event is a JSON object with an ``event_id`` (unique; the dedupe key) and an
``event_time`` (ISO-8601 with a UTC offset). Unknown extra fields are ignored, so
producers may send more than the contract names; everything the contract names is checked.

>>> e = UserActivity.model_validate_json(
...     '{"event_id": "e1", "event_time": "2026-01-05T10:00:00+01:00", "user_id": "u1",'
...     ' "session_id": "s1", "action": "view", "sku": "SKU-00001"}')
>>> e.event_time.isoformat()
'2026-01-05T09:00:00+00:00'
>>> from pydantic import ValidationError
>>> try:
...     UserActivity.model_validate({"event_id": "e2", "event_time": "2026-01-05T10:00:00",
...         "user_id": "u1", "session_id": "s1", "action": "view", "sku": "x"})
... except ValidationError as exc:
...     print(exc.errors()[0]["msg"])
Input should have timezone info
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    model_validator,
)

from schemas.event_time import check_range

MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 512
MAX_PRICE = Decimal(1_000_000)
MAX_QUANTITY = 10_000
MAX_ON_HAND = 10_000_000
MAX_ORDER_LINES = 1_000
MAX_ERROR_CHARS = 4_096


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
"""What an id may contain: anything but control characters (the API's path and query ids too)."""

Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]
"""An id: a non-empty string of at most 128 characters, without control characters (ids
become Redis keys, file names in the lake and log fields)."""

Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
"""Free text (a search query, a reason): non-empty, at most 512 characters."""

EventTime = Annotated[AwareDatetime, AfterValidator(check_range), AfterValidator(_to_utc)]
"""A timezone-aware timestamp from 2000 to 2100 (``schemas.event_time``), normalised to UTC.
Naive timestamps are refused."""

Money = Annotated[
    Decimal,
    Field(gt=0, le=MAX_PRICE, max_digits=12, decimal_places=4, allow_inf_nan=False),
    PlainSerializer(float, return_type=float, when_used="json"),
]
"""A positive decimal amount up to a million; accepted as a JSON number or string, written as
a JSON number."""


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    event_id: Identifier
    event_time: EventTime


class OrderLine(BaseModel):
    """One line of an order: a product, how many, at what unit price."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    sku: Identifier
    quantity: Annotated[StrictInt, Field(gt=0, le=MAX_QUANTITY)]
    unit_price: Money


class Order(Event):
    """A completed checkout, from a till (POS) or the web/app shop. Topic ``orders``."""

    order_id: Identifier
    user_id: Identifier
    store_id: Identifier
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=MAX_ORDER_LINES)]


class Action(StrEnum):
    """What a shopper did."""

    VIEW = "view"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    SEARCH = "search"
    WISHLIST = "wishlist"


class UserActivity(Event):
    """A web or app interaction. Topic ``user-activity``.

    ``sku`` is required for every action but ``search``, where it must be null and
    ``query`` carries the search text instead.
    """

    user_id: Identifier
    session_id: Identifier
    action: Action
    sku: Identifier | None = None
    query: Text | None = None

    @model_validator(mode="after")
    def _sku_or_query(self) -> Self:
        if self.action is Action.SEARCH:
            if self.sku is not None:
                raise ValueError("sku must be null when action is 'search'")
            if self.query is None:
                raise ValueError("query is required when action is 'search'")
        else:
            if self.sku is None:
                raise ValueError(f"sku is required when action is '{self.action.value}'")
            if self.query is not None:
                raise ValueError("query is only allowed when action is 'search'")
        return self


class InventoryLevel(Event):
    """Units on hand for one product in one store. Topic ``inventory``."""

    sku: Identifier
    store_id: Identifier
    on_hand: Annotated[StrictInt, Field(ge=0, le=MAX_ON_HAND)]


class CompetitorPrice(Event):
    """A competitor's observed shelf price for one product. Topic ``competitor-prices``."""

    sku: Identifier
    competitor: Identifier
    price: Money


class PriceUpdate(Event):
    """A price change that tillflow published. Topic ``price-updates`` (output)."""

    sku: Identifier
    price: Money
    previous_price: Money
    reason: Text
    model_version: Identifier


class DeadLetter(Event):
    """An input message that could not be accepted, with the reason. Topic ``dead-letter``.

    ``raw`` holds the original bytes as text when they are UTF-8, else base64
    (``raw_encoding`` says which). ``raw_size`` is the original message's size in bytes;
    ``raw_truncated`` says that ``raw`` holds only its beginning, cut so that the dead letter
    fits the topic's largest message (the whole message stays in the input topic at
    ``partition``/``offset``). ``error`` starts with the exception's type when parsing failed
    for a reason other than the contract.
    """

    topic: Identifier
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]
    raw: str
    raw_encoding: Annotated[str, Field(pattern="^(utf-8|base64)$")] = "utf-8"
    raw_size: Annotated[int, Field(ge=0)] = 0
    raw_truncated: bool = False
    error: Annotated[str, Field(min_length=1, max_length=MAX_ERROR_CHARS)]
    # the message's ``x-correlation-id`` header, if any (at most 128 characters kept)
    correlation_id: Annotated[str, Field(max_length=MAX_ID_CHARS)] | None = None
