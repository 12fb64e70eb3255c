"""Every batch query transpiles to Spark SQL, and the DuckDB-only functions become their Spark
equivalents (the queries' results are compared on both engines in
tests/integration/test_batch_engines.py)."""

from __future__ import annotations

import pytest

from batch.engines.dialect import spark_schema, to_spark
from batch.features import FEATURES_SQL
from batch.gold import INTERACTIONS_SQL, ORDERS_ENRICHED_SQL, SKU_DAILY_SQL
from batch.silver import QUARANTINE_SQL, deduplicate_sql
from batch.silver_sql import SQL
from schemas.lake import SILVER_TABLES

QUERIES = {
    **{f"silver {t}": q for t, q in SQL.items()},
    **{f"dedupe {t}": deduplicate_sql(t) for t in SILVER_TABLES.values()},
    "quarantine": QUARANTINE_SQL,
    "sku_daily": SKU_DAILY_SQL,
    "orders_enriched": ORDERS_ENRICHED_SQL,
    "interactions": INTERACTIONS_SQL,
    "features": FEATURES_SQL,
}
DUCKDB_ONLY = (
    "JSON_TRANSFORM",
    "JSON_VALID",
    "JSON_TYPE",
    "ISFINITE",
    "ASOF",
    "QUALIFY",
    "GENERATE_SUBSCRIPTS",
    "EXCLUDE",
    "ARG_MAX",
    "ARG_MIN",
    "STRFTIME",
)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_batch_query_has_a_spark_form_without_duckdb_only_syntax(name: str) -> None:
    spark = to_spark(QUERIES[name]).upper()
    assert "SELECT" in spark
    for word in DUCKDB_ONLY:
        assert word not in spark, f"{name}: {word} left in {spark}"


@pytest.mark.parametrize(
    ("duckdb", "spark"),
    [
        ("SELECT json_valid(x)", "SELECT NOT TRY_PARSE_JSON(x) IS NULL"),
        (
            'SELECT json_transform(x, \'{"a": "VARCHAR", "b": "JSON"}\')',
            "SELECT CASE WHEN NOT IS_VARIANT_NULL(TRY_PARSE_JSON(x)) "
            "THEN FROM_JSON(x, 'STRUCT<`a`: STRING, `b`: VARIANT>') END",
        ),
        (
            "SELECT json_type(x)",
            "SELECT CASE WHEN SCHEMA_OF_VARIANT(x) LIKE 'ARRAY%' THEN 'ARRAY' "
            "WHEN SCHEMA_OF_VARIANT(x) LIKE 'STRING' THEN 'VARCHAR' "
            "WHEN SCHEMA_OF_VARIANT(x) LIKE 'DECIMAL%' THEN 'DOUBLE' "
            "WHEN SCHEMA_OF_VARIANT(x) LIKE 'FLOAT' THEN 'DOUBLE' "
            "WHEN SCHEMA_OF_VARIANT(x) LIKE 'VOID' THEN 'NULL' ELSE SCHEMA_OF_VARIANT(x) END",
        ),
        ("SELECT json_extract_string(x, '$')", "SELECT TRY_VARIANT_GET(x, '$', 'string')"),
        ("SELECT isfinite(x)", "SELECT NOT (ISNAN(x) OR ABS(x) = CAST('Infinity' AS DOUBLE))"),
        ("SELECT items[i + 1]", "SELECT ELEMENT_AT(items, i + 1)"),
        (
            "SELECT arg_min(a, b) FILTER (WHERE a IS NOT NULL) FROM t",
            "SELECT MIN_BY(a, b) FILTER(WHERE NOT a IS NULL) FROM t",
        ),
        (
            "SELECT strftime(t::TIMESTAMP, '%Y-%m-%d')",
            "SELECT DATE_FORMAT(CAST(t AS TIMESTAMP_NTZ), 'yyyy-MM-dd')",
        ),
    ],
)
def test_duckdb_functions_become_their_spark_equivalents(duckdb: str, spark: str) -> None:
    assert to_spark(duckdb) == spark


def test_a_json_structure_spark_cannot_type_is_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        spark_schema({"a": "UUID"})
