"""The product catalogue for batch jobs: from Redis (master data) or from a JSON-lines file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from flows.catalogue import load_catalogue
from schemas.catalogue import CatalogueItem
from schemas.settings import Settings

CATALOGUE_SCHEMA = pa.schema(
    [
        pa.field("sku", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("list_price", pa.float64(), nullable=False),
        pa.field("unit_cost", pa.float64(), nullable=False),
    ]
)


def catalogue_table(items: Iterable[CatalogueItem]) -> pa.Table:
    """The catalogue as an arrow table (sku, category, list_price, unit_cost)."""
    rows = [item.model_dump() for item in items]
    return pa.Table.from_pylist(rows, schema=CATALOGUE_SCHEMA)


def read_catalogue(settings: Settings, file: Path | None = None) -> pa.Table:
    """Products from ``file`` (one ``CatalogueItem`` JSON per line) or else from Redis."""
    if file is None:
        return catalogue_table(load_catalogue(settings).values())
    lines = (line for line in file.read_text().splitlines() if line.strip())
    return catalogue_table(CatalogueItem.model_validate_json(line) for line in lines)
