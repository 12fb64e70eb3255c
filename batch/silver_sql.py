"""The SQL (DuckDB) that types one bronze topic's JSON payloads and names what is wrong.

Each query reads the view ``bronze`` (event_id, event_time, payload, kafka_partition,
kafka_offset, ingested_at) and yields the silver columns plus ``reason``: NULL for a row that
keeps the contract (schemas/events.py), else the first rule it breaks. The JSON is parsed once
per row (``json_transform``); the rules restate the pydantic models' constraints. The queries
run on DuckDB as written and on Spark transpiled (batch/engines/dialect.py), so they keep to
what both can mean alike: lines are numbered with ``range`` rather than ``generate_subscripts``,
and the first bad line is found with ``arg_min``.
"""

from __future__ import annotations

from schemas.lake import COMPETITOR_PRICES, INVENTORY, ORDER_LINES, USER_ACTIVITY

_ID = "VARCHAR"
_ACTIONS = "('view', 'add_to_cart', 'remove_from_cart', 'search', 'wishlist')"


def _id_rule(column: str) -> str:
    """The reason an identifier breaks the contract (missing, empty or over 128 chars)."""
    return (
        f"WHEN {column} IS NULL OR trim({column}) = '' THEN '{column} is missing' "
        f"WHEN length({column}) > 128 THEN '{column} is longer than 128 characters' "
    )


def _money_rule(column: str) -> str:
    return (
        f"WHEN {column} IS NULL THEN '{column} is missing or not a number' "
        f"WHEN NOT isfinite({column}) OR {column} <= 0 THEN '{column} must be a positive number' "
    )


_COMMON = """
    event_id, event_time, strftime(event_time::TIMESTAMP, '%Y-%m-%d') AS date,
    kafka_partition, kafka_offset, payload, ingested_at,
    CASE WHEN json_valid(payload) THEN json_transform(payload, '{shape}') END AS p
"""

_RAW = "SELECT " + _COMMON + " FROM bronze"

USER_ACTIVITY_SQL = f"""
WITH raw AS ({_RAW.format(shape='{"user_id":"VARCHAR","session_id":"VARCHAR","action":"VARCHAR","sku":"VARCHAR","query":"VARCHAR"}')}),
typed AS (
    SELECT *, trim(p.user_id) AS user_id, trim(p.session_id) AS session_id,
           p.action AS action, trim(p.sku) AS sku, p.query AS query
    FROM raw
)
SELECT * EXCLUDE (p), CASE
    WHEN p IS NULL THEN 'payload is not valid JSON'
    {_id_rule("user_id")}
    {_id_rule("session_id")}
    WHEN action IS NULL OR action NOT IN {_ACTIONS} THEN 'action is not one of view, add_to_cart, remove_from_cart, search, wishlist'
    WHEN action = 'search' AND sku IS NOT NULL THEN 'sku must be null when action is ''search'''
    WHEN action = 'search' AND coalesce(trim(query), '') = ''
        THEN 'query is required when action is ''search'''
    WHEN action = 'search' AND length(query) > 512 THEN 'query is longer than 512 characters'
    WHEN action <> 'search' AND query IS NOT NULL
        THEN 'query is only allowed when action is ''search'''
    WHEN action <> 'search' AND coalesce(sku, '') = ''
        THEN 'sku is required when action is ''' || action || ''''
    WHEN length(sku) > 128 THEN 'sku is longer than 128 characters'
END AS reason
FROM typed
"""  # noqa: E501

INVENTORY_SQL = f"""
WITH raw AS ({_RAW.format(shape='{"sku":"VARCHAR","store_id":"VARCHAR","on_hand":"JSON"}')}),
typed AS (
    SELECT *, trim(p.sku) AS sku, trim(p.store_id) AS store_id,
           json_type(p.on_hand) AS on_hand_type,
           TRY_CAST(p.on_hand::VARCHAR AS BIGINT) AS on_hand
    FROM raw
)
SELECT * EXCLUDE (p), CASE
    WHEN p IS NULL THEN 'payload is not valid JSON'
    {_id_rule("sku")}
    {_id_rule("store_id")}
    WHEN on_hand IS NULL OR on_hand_type NOT IN ('UBIGINT', 'BIGINT')
        THEN 'on_hand is missing or not an integer'
    WHEN on_hand < 0 THEN 'on_hand must be at least 0'
END AS reason
FROM typed
"""

COMPETITOR_PRICES_SQL = f"""
WITH raw AS ({_RAW.format(shape='{"sku":"VARCHAR","competitor":"VARCHAR","price":"VARCHAR"}')}),
typed AS (
    SELECT *, trim(p.sku) AS sku, trim(p.competitor) AS competitor,
           TRY_CAST(p.price AS DOUBLE) AS price
    FROM raw
)
SELECT * EXCLUDE (p), CASE
    WHEN p IS NULL THEN 'payload is not valid JSON'
    {_id_rule("sku")}
    {_id_rule("competitor")}
    {_money_rule("price")}
END AS reason
FROM typed
"""

# Orders: one silver row per line. A bad line quarantines its whole order.
ORDER_LINES_SQL = f"""
WITH raw AS ({_RAW.format(shape='{"order_id":"VARCHAR","user_id":"VARCHAR","store_id":"VARCHAR","lines":"JSON"}')}),
orders AS (
    SELECT *, trim(p.order_id) AS order_id, trim(p.user_id) AS user_id,
           trim(p.store_id) AS store_id,
           CASE WHEN json_type(p.lines) = 'ARRAY'
                THEN json_transform(p.lines::VARCHAR, '[{{"sku":"VARCHAR","quantity":"JSON","unit_price":"VARCHAR"}}]')
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
    SELECT event_id, kafka_partition, kafka_offset, line, item.sku AS sku,
           json_type(item.quantity) AS quantity_type,
           TRY_CAST(item.quantity::VARCHAR AS BIGINT) AS quantity,
           TRY_CAST(item.unit_price AS DOUBLE) AS unit_price
    FROM lines
),
line_reasons AS (
    SELECT *, CASE
        {_id_rule("sku")}
        WHEN quantity IS NULL OR quantity_type NOT IN ('UBIGINT', 'BIGINT')
            THEN 'quantity is missing or not an integer'
        WHEN quantity <= 0 OR quantity > 10000 THEN 'quantity must be between 1 and 10000'
        {_money_rule("unit_price")}
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
        WHEN o.p IS NULL THEN 'payload is not valid JSON'
        {_id_rule("o.order_id").replace("'o.order_id", "'order_id")}
        {_id_rule("o.user_id").replace("'o.user_id", "'user_id")}
        {_id_rule("o.store_id").replace("'o.store_id", "'store_id")}
        WHEN o.items IS NULL THEN 'lines is missing or not a list'
        WHEN array_length(o.items) = 0 THEN 'lines must not be empty'
        WHEN array_length(o.items) > 1000 THEN 'an order has at most 1000 lines'
        ELSE r.first_line_reason
    END AS reason
    FROM orders o LEFT JOIN order_reasons r USING (event_id, kafka_partition, kafka_offset)
)
SELECT c.* EXCLUDE (items, p), l.line, l.sku, l.quantity, l.unit_price
FROM checked c
LEFT JOIN line_reasons l USING (event_id, kafka_partition, kafka_offset)
"""  # noqa: E501

SQL: dict[str, str] = {
    ORDER_LINES: ORDER_LINES_SQL,
    USER_ACTIVITY: USER_ACTIVITY_SQL,
    INVENTORY: INVENTORY_SQL,
    COMPETITOR_PRICES: COMPETITOR_PRICES_SQL,
}
"""Silver table → the query that types its bronze topic."""
