"""DuckDB SQL → Spark SQL: SQLGlot's transpiler, plus the few DuckDB functions it passes through.

The batch queries are written once, in DuckDB's dialect. SQLGlot translates most of it
(``GROUP BY ALL``, ``arg_max``, ``generate_series``, ``UNNEST``, casts, ``strftime``); the rest
is rewritten here on the syntax tree before Spark SQL is generated, each to a Spark equivalent
with the same result:

- ``json_valid(x)`` → ``try_parse_json(x) IS NOT NULL``;
- ``json_transform(x, '{"a": "VARCHAR", "b": "JSON"}')`` → ``from_json(x, 'a STRING, b VARIANT')``
  (a field typed JSON stays a JSON value, its type known: DuckDB's JSON, Spark's VARIANT;
  ``[{...}]`` is an array of structs; ``x`` is JSON text: cast a JSON value to VARCHAR first;
  the JSON literal ``null`` gives NULL, as in DuckDB);
- ``json_type(x)`` of such a JSON value → its type name (``BIGINT``, ``ARRAY`` for any array);
- ``json_extract_string(x, '$')`` of such a JSON value → ``try_variant_get(x, '$', 'string')``
  (a string's text, a number's digits, as in DuckDB);
- ``isfinite(x)`` → neither NaN nor ±infinity;
- ``list[i]`` (1-based in DuckDB) → ``element_at(list, i)`` (1-based in Spark too).

Anything SQLGlot cannot express for Spark raises :class:`sqlglot.errors.UnsupportedError`
instead of producing a query that would mean something else.

>>> to_spark("SELECT json_valid(payload) AS ok FROM bronze")
'SELECT NOT TRY_PARSE_JSON(payload) IS NULL AS ok FROM bronze'
>>> to_spark("SELECT arg_max(on_hand, event_time) FROM inventory GROUP BY ALL")
'SELECT MAX_BY(on_hand, event_time) FROM inventory GROUP BY ALL'
"""

from __future__ import annotations

import json
from functools import cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

_SPARK_TYPES = {
    "VARCHAR": "STRING",
    "JSON": "VARIANT",
    "BIGINT": "BIGINT",
    "DOUBLE": "DOUBLE",
    "INTEGER": "INT",
    "BOOLEAN": "BOOLEAN",
}


def spark_schema(shape: object) -> str:
    """A ``json_transform`` structure as a Spark type.

    >>> spark_schema({"sku": "VARCHAR", "lines": [{"quantity": "JSON"}]})
    'STRUCT<`sku`: STRING, `lines`: ARRAY<STRUCT<`quantity`: VARIANT>>>'
    """
    if isinstance(shape, dict):
        fields = ", ".join(f"`{name}`: {spark_schema(kind)}" for name, kind in shape.items())
        return f"STRUCT<{fields}>"
    if isinstance(shape, list) and len(shape) == 1:
        return f"ARRAY<{spark_schema(shape[0])}>"
    if isinstance(shape, str) and shape.upper() in _SPARK_TYPES:
        return _SPARK_TYPES[shape.upper()]
    raise ValueError(f"json_transform structure not supported for Spark: {shape!r}")


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _json_type(value: exp.Expression) -> exp.Expression:
    """DuckDB's name for the JSON type of ``value``: Spark says ``STRING`` for ``VARCHAR``,
    ``DECIMAL(p,s)`` for a number with a fraction (DuckDB: ``DOUBLE``), ``ARRAY<…>``, and
    ``VOID`` for the JSON literal null (DuckDB: ``NULL``)."""
    kind = _call("SCHEMA_OF_VARIANT", value)

    def like(pattern: str) -> exp.Expression:
        return exp.Like(this=kind.copy(), expression=exp.Literal.string(pattern))

    return exp.Case(
        ifs=[
            exp.If(this=like("ARRAY%"), true=exp.Literal.string("ARRAY")),
            exp.If(this=like("STRING"), true=exp.Literal.string("VARCHAR")),
            exp.If(this=like("DECIMAL%"), true=exp.Literal.string("DOUBLE")),
            exp.If(this=like("FLOAT"), true=exp.Literal.string("DOUBLE")),
            exp.If(this=like("VOID"), true=exp.Literal.string("NULL")),
        ],
        default=kind,
    )


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        args = node.expressions
        if name == "json_valid":
            return exp.not_(exp.Is(this=_call("TRY_PARSE_JSON", args[0]), expression=exp.Null()))
        if name == "json_transform":
            shape = json.loads(args[1].name)
            # DuckDB transforms the JSON literal null to NULL; from_json would give a struct.
            is_null = _call("IS_VARIANT_NULL", _call("TRY_PARSE_JSON", args[0].copy()))
            parsed = _call("FROM_JSON", args[0], exp.Literal.string(spark_schema(shape)))
            return exp.Case(ifs=[exp.If(this=exp.not_(is_null), true=parsed)])
        if name == "isfinite":
            x = args[0]
            infinite = exp.EQ(
                this=exp.Abs(this=x.copy()),
                expression=exp.cast(exp.Literal.string("Infinity"), "DOUBLE"),
            )
            return exp.not_(exp.or_(_call("ISNAN", x.copy()), infinite))
    if isinstance(node, exp.JSONType):
        return _json_type(node.this)
    if isinstance(node, exp.JSONExtractScalar) and node.expression.sql() in ("'$'", "$"):
        return _call(
            "TRY_VARIANT_GET", node.this, exp.Literal.string("$"), exp.Literal.string("string")
        )
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        return _call("ELEMENT_AT", node.this, node.expressions[0])
    return node


@cache
def to_spark(sql: str) -> str:
    """``sql`` (DuckDB) as Spark SQL; UnsupportedError for what has no Spark equivalent."""
    tree = sqlglot.parse_one(sql, read="duckdb").transform(_rewrite)
    return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
