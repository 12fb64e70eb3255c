"""Item factors for the discover lists, fitted on silver and published where the API reads them.

Implicit ALS (``online_models.factors``) over every shopper's interactions in silver, each
weighted as the flows weigh it (view and wishlist 1, add to cart 2, an order line 3), the
weights of a shopper × product pair added up. The fitted vectors are written atomically to
``online_models.factors.factors_path`` (beside the local copies of the registered models); the
API follows that file and folds each shopper in when their discover list is built.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from batch.lake import read_all
from batch.result import StepResult, WaitingForData
from online_models.factors import (
    FACTORS,
    ITERATIONS,
    WEIGHTS,
    Interactions,
    factors_path,
    fit_item_factors,
    save_factors,
)
from schemas.lake import ORDER_LINES, SILVER_SCHEMAS, USER_ACTIVITY, silver_path
from schemas.settings import Settings

_ACTIONS = ", ".join(f"'{a}'" for a in WEIGHTS if a != "purchase")
_WEIGHT = " ".join(f"WHEN '{a}' THEN {w}" for a, w in WEIGHTS.items() if a != "purchase")


def interactions_sql(before: bool = False) -> str:
    """Each shopper × product pair's summed interaction weight over silver's ``user_activity``
    and ``order_lines`` (sorted: the same lake gives the same matrix, so the seeded fit gives
    the same factors); with ``before``, only the events strictly before the query's one
    parameter (a naive UTC timestamp): what a fit made at that moment could read."""
    when = " AND event_time::TIMESTAMP < $1" if before else ""
    return f"""
SELECT user_id, sku, sum(w) AS w FROM (
    SELECT user_id, sku, CASE action {_WEIGHT} END AS w FROM user_activity
    WHERE sku IS NOT NULL AND action IN ({_ACTIONS}){when}
    UNION ALL
    SELECT user_id, sku, {WEIGHTS["purchase"]} FROM order_lines WHERE TRUE{when}
) GROUP BY user_id, sku ORDER BY user_id, sku
"""


INTERACTIONS_SQL = interactions_sql()
COLUMNS = {
    USER_ACTIVITY: ["user_id", "sku", "action", "event_time"],
    ORDER_LINES: ["user_id", "sku", "event_time"],
}
"""The silver columns the fit reads."""


def interactions(con: duckdb.DuckDBPyConnection, before: datetime | None = None) -> Interactions:
    """The shopper × product weights the factors are fitted on (:func:`interactions_sql`, every
    event, or those strictly before ``before``, timezone-aware) from the silver tables
    registered on ``con``. Read as Arrow columns and encoded there: a Python tuple per pair
    cost three times the CPU (~280,000 pairs in the batch benchmark, read once for the
    published fit and once per cut-off of a ranker training)."""
    if before is None:
        rows = con.sql(INTERACTIONS_SQL).to_arrow_table()
    else:
        naive = before.astimezone(UTC).replace(tzinfo=None)
        rows = con.sql(interactions_sql(before=True), params=[naive]).to_arrow_table()
    # codes in order of first appearance, as Interactions.of gives them
    shoppers, skus = (_encoded(rows.column(name)) for name in ("user_id", "sku"))
    weights = rows.column("w").to_numpy()
    return Interactions.of_codes(
        shoppers.dictionary.to_pylist(),
        skus.dictionary.to_pylist(),
        shoppers.indices.to_numpy(),
        skus.indices.to_numpy(),
        weights,
    )


def _encoded(column: pa.ChunkedArray) -> pa.DictionaryArray:
    encoded = pc.dictionary_encode(column.combine_chunks())
    assert isinstance(encoded, pa.DictionaryArray)
    return encoded


def publish_item_factors(settings: Settings, seed: int = 0) -> StepResult:
    """Fit the item factors on silver and publish them; WaitingForData while silver holds no
    interaction (a missing table counts as one without rows)."""
    con = duckdb.connect()
    try:
        for name, columns in COLUMNS.items():
            rows = read_all(silver_path(settings.lake_dir, name), columns)
            if rows is None:  # not written yet: none of its kind of interaction so far
                rows = SILVER_SCHEMAS[name].empty_table().select(columns)
            con.register(name, rows)
        pairs = interactions(con)
    finally:
        con.close()
    if not pairs:
        raise WaitingForData("waiting for shopper interactions in silver to fit item factors")
    items = fit_item_factors(pairs, seed)
    path = factors_path(settings.registry_dir, settings.mlflow_model_prefix)
    save_factors(items, path)
    return StepResult(
        rows_in=len(pairs),
        rows_out=len(items.skus),
        inputs=("silver/user_activity", "silver/order_lines"),
        outputs=(f"models/{path.name}",),
        details={"factor_items": len(items.skus), "factors": FACTORS, "factor_sweeps": ITERATIONS},
    )
