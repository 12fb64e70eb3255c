"""Comparing two lakes table by table: do two engines' silver, gold and Feast export agree?

Rows are compared in a canonical order (every column ascending) and ``quarantined_at``, the
moment a run quarantined a row, is left out; everything else must be equal, value for value.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from batch.lake import read_all
from schemas.lake import (
    GOLD_SCHEMAS,
    SILVER_SCHEMAS,
    SKU_DAILY_FEATURES,
    feast_source_path,
    gold_path,
    silver_path,
)

RUN_STAMPED = ("quarantined_at",)


def canonical(table: pa.Table) -> pa.Table:
    """``table`` without run-stamped columns, its rows sorted by every column."""
    table = table.drop_columns([c for c in RUN_STAMPED if c in table.column_names])
    return table.sort_by([(c, "ascending") for c in table.column_names])


def lake_outputs(lake: Path) -> dict[str, pa.Table]:
    """Every silver and gold table and the Feast export of ``lake``, canonical (empty if absent)."""
    tables: dict[str, pa.Table] = {}
    for name, schema in SILVER_SCHEMAS.items():
        tables[f"silver/{name}"] = read_all(silver_path(lake, name)) or schema.empty_table()
    for name, schema in GOLD_SCHEMAS.items():
        tables[f"gold/{name}"] = read_all(gold_path(lake, name)) or schema.empty_table()
    export = feast_source_path(lake, SKU_DAILY_FEATURES)
    if export.exists():
        tables[f"feast/{SKU_DAILY_FEATURES}"] = pq.read_table(export)
    return {name: canonical(table) for name, table in tables.items()}


def differences(expected: dict[str, pa.Table], got: dict[str, pa.Table]) -> list[str]:
    """What differs between two lakes' outputs, one sentence per table; empty when identical."""
    found = [f"{name} is missing" for name in expected.keys() - got.keys()]
    found += [f"{name} is unexpected" for name in got.keys() - expected.keys()]
    for name in sorted(expected.keys() & got.keys()):
        a, b = expected[name], got[name]
        if a.schema != b.schema:
            found.append(f"{name}: schema {b.schema} instead of {a.schema}")
        elif a.num_rows != b.num_rows:
            found.append(f"{name}: {b.num_rows} rows instead of {a.num_rows}")
        elif not a.equals(b):
            found.append(f"{name}: same row count ({a.num_rows}), different values")
    return found
