"""The silver rules: what each input topic's fields must satisfy, read off the event contract.

The batch engines type bronze payloads in SQL and need the contract's limits as data: which
fields are ids, their length, the allowed actions, the money and count bounds, the order lines.
They are derived here from the pydantic models of ``schemas/events.py``, so the SQL can never
hold a limit the contract does not (``tests/unit/test_silver_parity.py`` feeds the same
payloads through the contract and the silver SQL and requires the same verdicts).

>>> [(r.field, r.kind) for r in RULES["inventory"]]
[('sku', 'id'), ('store_id', 'id'), ('on_hand', 'count')]
>>> on_hand = RULES["inventory"][2]
>>> on_hand.low, on_hand.low_inclusive, on_hand.high
(0, True, 10000000)
>>> RULES["user-activity"][2].choices
('view', 'add_to_cart', 'remove_from_cart', 'search', 'wishlist')
>>> lines = RULES["orders"][3]
>>> lines.kind, lines.min_items, lines.max_items, [r.field for r in lines.items]
('lines', 1, 1000, ['sku', 'quantity', 'unit_price'])
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from schemas.events import (
    Action,
    CompetitorPrice,
    Event,
    InventoryLevel,
    Order,
    UserActivity,
)

Kind = Literal["id", "text", "choice", "count", "money", "lines"]

WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
"""What the contract strips from both ends of every string (``str.strip``'s whitespace)."""

CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"
"""A regular expression for the characters an id may not contain."""

SEARCH = Action.SEARCH.value
"""The action that carries a ``query`` and no ``sku`` (``UserActivity``'s cross-field rule)."""


@dataclass(frozen=True)
class Rule:
    """One field of a topic's payload and the limits the contract puts on it."""

    field: str
    kind: Kind
    nullable: bool = False
    max_chars: int | None = None
    low: int | Decimal | None = None
    low_inclusive: bool = True
    high: int | Decimal | None = None
    decimal_places: int | None = None
    choices: tuple[str, ...] = ()
    min_items: int | None = None
    max_items: int | None = None
    items: tuple[Rule, ...] = ()


def _constraints(info: FieldInfo) -> dict[str, object]:
    """The field's limits, from annotated-types and pydantic metadata alike."""
    found: dict[str, object] = {}
    for item in info.metadata:
        if isinstance(item, at.MinLen):
            found["min_length"] = item.min_length
        elif isinstance(item, at.MaxLen):
            found["max_length"] = item.max_length
        elif isinstance(item, at.Gt):
            found["gt"] = item.gt
        elif isinstance(item, at.Ge):
            found["ge"] = item.ge
        elif isinstance(item, at.Le):
            found["le"] = item.le
        else:
            found.update({k: v for k, v in getattr(item, "__dict__", {}).items() if v is not None})
    return found


def _unwrap(info: FieldInfo) -> tuple[object, FieldInfo, bool]:
    """The field's type and constraints, looking through ``X | None``."""
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        (inner,) = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(inner) is Annotated:
            base, *extras = get_args(inner)
            return base, FieldInfo.merge_field_infos(*extras), True
        return inner, FieldInfo(annotation=inner), True
    return annotation, info, False


def _rule(name: str, info: FieldInfo) -> Rule:
    annotation, info, nullable = _unwrap(info)
    limits = _constraints(info)
    if annotation is str:
        kind: Kind = "id" if "pattern" in limits else "text"
        return Rule(name, kind, nullable, max_chars=_int(limits["max_length"]))
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return Rule(name, "choice", nullable, choices=tuple(m.value for m in annotation))
    if annotation is Decimal:
        return Rule(
            name,
            "money",
            nullable,
            low=_dec(limits["gt"]),
            low_inclusive=False,
            high=_dec(limits["le"]),
            decimal_places=_int(limits["decimal_places"]),
        )
    if annotation is int:
        inclusive = "ge" in limits
        low = _int(limits["ge"] if inclusive else limits["gt"])
        return Rule(
            name, "count", nullable, low=low, low_inclusive=inclusive, high=_int(limits["le"])
        )
    if get_origin(annotation) is list:
        (item_model,) = get_args(annotation)
        return Rule(
            name,
            "lines",
            nullable,
            min_items=_int(limits["min_length"]),
            max_items=_int(limits["max_length"]),
            items=rules_of(item_model),
        )
    raise TypeError(f"no silver rule for {name}: {annotation!r}")


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer limit, got {value!r}")
    return value


def _dec(value: object) -> Decimal:
    if not isinstance(value, Decimal | int):
        raise TypeError(f"expected a decimal limit, got {value!r}")
    return Decimal(value)


def rules_of(model: type[BaseModel]) -> tuple[Rule, ...]:
    """The rules of ``model``'s payload fields (``event_id``/``event_time`` are bronze columns)."""
    return tuple(
        _rule(name, info)
        for name, info in model.model_fields.items()
        if name not in Event.model_fields
    )


RULES: dict[str, tuple[Rule, ...]] = {
    "orders": rules_of(Order),
    "user-activity": rules_of(UserActivity),
    "inventory": rules_of(InventoryLevel),
    "competitor-prices": rules_of(CompetitorPrice),
}
"""Input topic → the rules of its payload's fields, in the contract's order."""
