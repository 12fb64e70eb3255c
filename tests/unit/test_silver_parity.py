"""The silver SQL and the event contract give every payload the same verdict.

Payloads are built field by field from values at and beyond each field's limits (read from
``schemas/silver_rules.py``) and from values of the wrong JSON type; each one goes through the
contract (``ingest.validation.parse_one``, as the flows and the API parse) and through the
silver query of its topic. A limit added to the contract and not to the silver rules, or a
rule of the SQL that the contract does not have, makes some payload's verdicts differ.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest

from ingest.validation import InvalidEvent, parse_one
from schemas.event_time import EventTimePolicy
from schemas.lake import SILVER_TABLES
from schemas.silver_rules import RULES, SEARCH, Rule
from schemas.topics import INPUT_TOPICS, Topic
from tests.unit.test_silver_rules import typed

MISSING = ""  # the field is left out of the payload
WRONG_TYPES = ["null", "true", "[]", "{}"]
PAYLOADS_PER_TOPIC = 1_500
POLICY = EventTimePolicy(clock=lambda: 1_800_000_000.0)


def js(value: object) -> str:
    return orjson.dumps(value).decode()


def string_values(rule: Rule) -> tuple[list[str], list[str]]:
    """(valid, other) JSON texts for an id or a text field."""
    n = rule.max_chars or 0
    valid = [js("a"), js("x" * n), js(" padded\t"), js("é" * n), js("SKU-00070")]
    other = [js(""), js("   "), js("\u2003"), js("x" * (n + 1)), js("a\x01b"), js("a\x7f"), "7"]
    return valid, other


def count_values(rule: Rule) -> tuple[list[str], list[str]]:
    low = int(rule.low or 0) + (0 if rule.low_inclusive else 1)
    high = int(rule.high or 0)
    valid = [str(low), str(low + 1), str(high)]
    other = [str(low - 1), str(high + 1), "1.5", "2.0", '"3"', "1e400", str(10**30)]
    return valid, other


def money_values(rule: Rule) -> tuple[list[str], list[str]]:
    high = Decimal(rule.high or 0)
    step = Decimal(1).scaleb(-(rule.decimal_places or 0))
    valid = [str(step), "1", "74.57", '"2.25"', str(high), '"1e2"', f'"{high - step}"']
    other = ["0", "-1", str(step / 10), str(high + step), '"abc"', '"NaN"', '"Infinity"']
    other += ["1e400", "1.23456", "0.30000000000000004", '""']
    return valid, other


def values(rule: Rule) -> tuple[list[str], list[str]]:
    """Valid and other JSON texts for one field (MISSING leaves it out)."""
    if rule.kind in ("id", "text"):
        valid, other = string_values(rule)
    elif rule.kind == "choice":
        valid, other = (
            [js(v) for v in rule.choices],
            [js("buy"), js(""), js(rule.choices[0].upper())],
        )
    elif rule.kind == "count":
        valid, other = count_values(rule)
    elif rule.kind == "money":
        valid, other = money_values(rule)
    else:
        raise AssertionError(f"no values for {rule.kind}")
    if rule.nullable:
        valid = [*valid, MISSING, "null"]
    return valid, [*other, *WRONG_TYPES, MISSING]


def obj(fields: dict[str, str]) -> str:
    return "{" + ",".join(f"{js(k)}:{v}" for k, v in fields.items() if v != MISSING) + "}"


def field_value(rule: Rule, rng: random.Random) -> str:
    if rule.kind == "lines":
        return lines_value(rule, rng)
    valid, other = values(rule)
    return rng.choice(valid if rng.random() < 0.85 else other)


def lines_value(rule: Rule, rng: random.Random) -> str:
    draw = rng.random()
    if draw < 0.05:
        return rng.choice([js("x"), "[]", *WRONG_TYPES[:2], MISSING])
    count = rng.randint(rule.min_items or 0, 3)
    items = [obj({r.field: field_value(r, rng) for r in rule.items}) for _ in range(count)]
    return "[" + ",".join(items) + "]"


def payloads(topic: Topic, rng: random.Random) -> Iterator[str]:
    head = {"event_id": js("e1"), "event_time": js("2026-01-05T10:00:00+00:00"), "extra": "1"}
    yield "{not json"
    yield "[]"
    for rule in RULES[topic.name]:
        if rule.kind == "lines":  # at and beyond the longest order, with the smallest lines
            line = obj({r.field: values(r)[0][0] for r in rule.items})
            for count in (rule.max_items or 0, (rule.max_items or 0) + 1):
                yield obj(
                    head
                    | {r.field: values(r)[0][0] for r in RULES[topic.name] if r is not rule}
                    | {rule.field: "[" + ",".join([line] * count) + "]"}
                )
    for _ in range(PAYLOADS_PER_TOPIC):
        fields = {r.field: field_value(r, rng) for r in RULES[topic.name]}
        if topic.name == "user-activity" and rng.random() < 0.7:
            fields |= sku_or_query(fields["action"] == js(SEARCH), rng)
        yield obj(head | fields)


def sku_or_query(search: bool, rng: random.Random) -> dict[str, str]:
    """Mostly what the action asks for: a search names a query, other actions a product."""
    rules = {r.field: r for r in RULES["user-activity"]}
    sku, query = (rng.choice(values(rules[f])[0][:-2]) for f in ("sku", "query"))
    return {"sku": MISSING, "query": query} if search else {"sku": sku, "query": MISSING}


def contract_accepts(topic: Topic, payload: str) -> bool:
    try:
        parse_one(topic, payload.encode(), POLICY)
    except InvalidEvent:
        return False
    return True


@pytest.mark.parametrize("topic", INPUT_TOPICS, ids=lambda t: t.name)
def test_silver_and_the_contract_agree_on_every_payload(topic: Topic) -> None:
    sample = list(payloads(topic, random.Random(topic.name)))
    rows = typed(SILVER_TABLES[topic.name], sample)
    silver = {int(str(r["event_id"])[1:]): r["reason"] for r in rows}
    disagreements = [
        (payload, silver[i])
        for i, payload in enumerate(sample)
        if contract_accepts(topic, payload) != (silver[i] is None)
    ]
    accepted = sum(reason is None for reason in silver.values())
    assert 0.2 * len(sample) < accepted < 0.9 * len(sample), "the sample mixes good and bad"
    assert not disagreements, disagreements[:5]
