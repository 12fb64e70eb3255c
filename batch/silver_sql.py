"""The SQL (DuckDB) that types one bronze topic's JSON payloads and names what is wrong.

Each query reads the view ``bronze`` (event_id, event_time, payload, kafka_partition,
kafka_offset, ingested_at) and yields the silver columns plus ``reason``: NULL for a row that
keeps the contract, else the first rule it breaks. The JSON is parsed once per row
(``json_transform``). The rules are rendered from ``schemas/silver_rules.py``, which reads them
off the contract's models, so no limit is restated here. The queries run on DuckDB as written
and on Spark transpiled (batch/engines/dialect.py), so they keep to what both can mean alike:
lines are numbered with ``range`` rather than ``generate_subscripts``, and the first bad line
is found with ``arg_min``.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.lake import COMPETITOR_PRICES, INVENTORY, ORDER_LINES, USER_ACTIVITY
from schemas.silver_rules import CONTROL_CHARACTERS, RULES, SEARCH, WHITESPACE, Rule

_INTEGER_TYPES = "('UBIGINT', 'BIGINT')"
_NUMBER_TYPES = "('UBIGINT', 'BIGINT', 'DOUBLE', 'VARCHAR')"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _shape(rules: Iterable[Rule]) -> str:
    """The ``json_transform`` structure: every field kept as JSON, typed by :func:`_value`."""
    return "{" + ",".join(f'"{rule.field}":"JSON"' for rule in rules) + "}"


def _value(rule: Rule, source: str) -> str:
    """The typed value of ``source`` (a JSON field), NULL when it has the wrong JSON type."""
    text = f"json_extract_string({source}, '$')"
    if rule.kind in ("id", "text"):
        # Trimming with the whole whitespace set costs several times a plain trim: only
        # strings that start or end with whitespace, rare in practice, are trimmed.
        ws = _literal(WHITESPACE)
        ends = f"contains({ws}, left({text}, 1)) OR contains({ws}, right({text}, 1))"
        stripped = f"CASE WHEN {ends} THEN trim({text}, {ws}) ELSE {text} END"
        return f"CASE WHEN json_type({source}) = 'VARCHAR' THEN {stripped} END"
    if rule.kind == "choice":
        return f"CASE WHEN json_type({source}) = 'VARCHAR' THEN {text} END"
    if rule.kind == "count":
        return f"TRY_CAST({text} AS BIGINT)"
    if rule.kind == "money":
        return (
            f"CASE WHEN json_type({source}) IN {_NUMBER_TYPES} THEN TRY_CAST({text} AS DOUBLE) END"
        )
    raise ValueError(f"{rule.field}: {rule.kind} has no single value")


def _columns(rules: Iterable[Rule], parent: str) -> str:
    """``<field>_json`` (as received) and ``<field>`` (typed) for every rule."""
    return ",\n    ".join(
        f"{_present(f'{parent}.{r.field}')} AS {r.field}_json, "
        f"{_value(r, f'{parent}.{r.field}')} AS {r.field}"
        for r in rules
        if r.kind != "lines"
    )


def _present(source: str) -> str:
    """``source`` (a JSON field), NULL when it is missing or the JSON literal null."""
    return f"CASE WHEN json_type({source}) <> 'NULL' THEN {source} END"


def _json_columns(rules: Iterable[Rule]) -> str:
    """The ``<field>_json`` columns of :func:`_columns`: for the rules only, never output (a
    JSON value has no Arrow type on Spark)."""
    return ", ".join(f"{r.field}_json" for r in rules if r.kind != "lines")


def _reasons(rule: Rule) -> str:
    """``WHEN … THEN 'reason'`` clauses for one field, in the order they are checked."""
    c, raw = rule.field, f"{rule.field}_json"
    present = f"{raw} IS NOT NULL AND " if rule.nullable else ""
    if rule.kind in ("id", "text"):
        missing = "is not a string" if rule.nullable else "is missing or not a string"
        when = [
            (f"{raw} IS NOT NULL AND {c} IS NULL" if rule.nullable else f"{c} IS NULL", missing),
            (f"{c} = ''", "must not be empty"),
            (f"length({c}) > {rule.max_chars}", f"is longer than {rule.max_chars} characters"),
        ]
        if rule.kind == "id":
            when.append(
                (f"regexp_matches({c}, '{CONTROL_CHARACTERS}')", "contains a control character")
            )
    elif rule.kind == "choice":
        allowed = ", ".join(rule.choices)
        choices = "(" + ", ".join(_literal(v) for v in rule.choices) + ")"
        when = [(f"{c} IS NULL OR {c} NOT IN {choices}", f"is not one of {allowed}")]
    elif rule.kind == "count":
        low = rule.low if rule.low_inclusive else f"{rule.low} + 1"
        lowest = int(rule.low or 0) + (0 if rule.low_inclusive else 1)
        when = [
            (
                f"{c} IS NULL OR json_type({raw}) NOT IN {_INTEGER_TYPES}",
                "is missing or not an integer",
            ),
            (f"{c} < {low} OR {c} > {rule.high}", f"must be between {lowest} and {rule.high}"),
        ]
    elif rule.kind == "money":
        above = ">=" if rule.low_inclusive else ">"
        when = [
            (f"{c} IS NULL", "is missing or not a number"),
            (
                f"NOT isfinite({c}) OR NOT ({c} {above} {rule.low}) OR {c} > {rule.high}",
                f"must be a positive number up to {rule.high}",
            ),
            (
                f"round({c}, {rule.decimal_places}) <> {c}",
                f"has more than {rule.decimal_places} decimal places",
            ),
        ]
    else:
        raise ValueError(f"{rule.field}: {rule.kind} is checked by its table's query")
    return "\n    ".join(
        f"WHEN {present}{cond} THEN {_literal(f'{c} {why}')}" for cond, why in when
    )


def _all_reasons(rules: Iterable[Rule]) -> str:
    return "\n    ".join(_reasons(r) for r in rules if r.kind != "lines")


_COMMON = """
    event_id, event_time, strftime(event_time::TIMESTAMP, '%Y-%m-%d') AS date,
    kafka_partition, kafka_offset, payload, ingested_at,
    CASE WHEN json_valid(payload) THEN json_transform(payload, '{shape}') END AS p
"""


def _raw(rules: Iterable[Rule]) -> str:
    return "SELECT " + _COMMON.format(shape=_shape(rules)) + " FROM bronze"


def _simple(topic: str, extra: str = "") -> str:
    """A topic whose payload is flat: one silver row per message."""
    rules = RULES[topic]
    return f"""
WITH raw AS ({_raw(rules)}),
typed AS (
    SELECT *,
    {_columns(rules, "p")}
    FROM raw
)
SELECT * EXCLUDE (p, {_json_columns(rules)}), CASE
    WHEN p IS NULL THEN 'payload is not valid JSON'
    {_all_reasons(rules)}
    {extra}
END AS reason
FROM typed
"""


# ``UserActivity``'s cross-field rule: a search names a query and no product, any other
# action a product and no query (the reasons are the contract's own messages).
_SKU_OR_QUERY = f"""
    WHEN action = '{SEARCH}' AND sku_json IS NOT NULL
        THEN 'sku must be null when action is ''{SEARCH}'''
    WHEN action = '{SEARCH}' AND query_json IS NULL
        THEN 'query is required when action is ''{SEARCH}'''
    WHEN action <> '{SEARCH}' AND query_json IS NOT NULL
        THEN 'query is only allowed when action is ''{SEARCH}'''
    WHEN action <> '{SEARCH}' AND sku_json IS NULL
        THEN 'sku is required when action is ''' || action || ''''
"""

USER_ACTIVITY_SQL = _simple("user-activity", _SKU_OR_QUERY)
INVENTORY_SQL = _simple("inventory")
COMPETITOR_PRICES_SQL = _simple("competitor-prices")


def _order_lines_sql() -> str:
    """Orders: one silver row per line. A bad line quarantines its whole order."""
    rules = RULES["orders"]
    (lines,) = [r for r in rules if r.kind == "lines"]
    return f"""
WITH raw AS ({_raw(rules)}),
orders AS (
    SELECT *,
    {_columns(rules, "p")},
    CASE WHEN json_type(p.{lines.field}) = 'ARRAY'
         THEN json_transform(p.{lines.field}::VARCHAR, '[{_shape(lines.items)}]')
    END AS items
    FROM raw
),
lines AS (
    SELECT o.event_id, o.kafka_partition, o.kafka_offset, u.line::INTEGER AS line,
           o.items[u.line + 1] AS item
    FROM orders o CROSS JOIN unnest(range(array_length(o.items))) AS u(line)
    WHERE array_length(o.items) > 0
),
typed_lines AS (
    SELECT event_id, kafka_partition, kafka_offset, line,
    {_columns(lines.items, "item")}
    FROM lines
),
line_reasons AS (
    SELECT *, CASE
    {_all_reasons(lines.items)}
    END AS line_reason
    FROM typed_lines
),
order_reasons AS (
    SELECT event_id, kafka_partition, kafka_offset,
           arg_min('line ' || line || ': ' || line_reason, line)
               FILTER (WHERE line_reason IS NOT NULL) AS first_line_reason
    FROM line_reasons GROUP BY ALL
),
checked AS (
    SELECT o.*, CASE
    WHEN p IS NULL THEN 'payload is not valid JSON'
    {_all_reasons(rules)}
    WHEN items IS NULL THEN '{lines.field} is missing or not a list'
    WHEN array_length(items) < {lines.min_items} THEN '{lines.field} must not be empty'
    WHEN array_length(items) > {lines.max_items} THEN 'an order has at most {lines.max_items} lines'
    ELSE r.first_line_reason
    END AS reason
    FROM orders o LEFT JOIN order_reasons r USING (event_id, kafka_partition, kafka_offset)
)
SELECT c.* EXCLUDE (items, p, {_json_columns(rules)}), l.line, l.sku, l.quantity, l.unit_price
FROM checked c
LEFT JOIN line_reasons l USING (event_id, kafka_partition, kafka_offset)
"""


ORDER_LINES_SQL = _order_lines_sql()

SQL: dict[str, str] = {
    ORDER_LINES: ORDER_LINES_SQL,
    USER_ACTIVITY: USER_ACTIVITY_SQL,
    INVENTORY: INVENTORY_SQL,
    COMPETITOR_PRICES: COMPETITOR_PRICES_SQL,
}
"""Silver table → the query that types its bronze topic."""
