"""The ranker's training rows describe each candidate by the factor source a shop would have
served at the cut-off: item factors fitted on the silver interactions before it only (an
in-memory DuckDB over silver-shaped tables)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa

from batch.factors import INTERACTIONS_SQL, interactions, interactions_sql
from batch.ranker_data import EVENTS_SQL, PAIRS_SQL, CutoffFactors, ranking_set
from online_models.factors import Interactions, fit_item_factors
from online_models.ranking import RANKER_FEATURES
from schemas.lake import (
    COMPETITOR_PRICES,
    INVENTORY,
    ORDER_LINES,
    SILVER_SCHEMAS,
    USER_ACTIVITY,
)

CUTOFF = datetime(2026, 1, 10, tzinfo=UTC)
PRODUCTS = [f"P{n:02d}" for n in range(12)]
CATEGORIES = {sku: ("tea", "jam", "bread")[n % 3] for n, sku in enumerate(PRODUCTS)}
LATE = "LATE"  # an item nobody touched before the cut-off, viewed and bought after it


def _silver(con: duckdb.DuckDBPyConnection) -> None:
    views: list[tuple[str, str, datetime]] = []
    lines: list[tuple[str, str, datetime]] = []
    start = CUTOFF - timedelta(days=3)
    for n in range(40):  # shoppers of two halves of the catalogue, before the cut-off
        half = PRODUCTS[: len(PRODUCTS) // 2] if n % 2 else PRODUCTS[len(PRODUCTS) // 2 :]
        for i, sku in enumerate(half[n % 3 : n % 3 + 4]):
            views.append((f"u{n:02d}", sku, start + timedelta(hours=n, minutes=i)))
    for n in range(40):  # after it, everyone goes for the new item and buys it
        views.append((f"u{n:02d}", LATE, CUTOFF + timedelta(minutes=n)))
        lines.append((f"u{n:02d}", LATE, CUTOFF + timedelta(minutes=n, seconds=30)))
    lines.append(("u01", PRODUCTS[0], CUTOFF - timedelta(hours=1)))
    con.register(USER_ACTIVITY, _table(USER_ACTIVITY, views, action="view"))
    con.register(ORDER_LINES, _table(ORDER_LINES, lines))
    for name in (INVENTORY, COMPETITOR_PRICES):
        con.register(name, SILVER_SCHEMAS[name].empty_table())
    con.execute(EVENTS_SQL)
    con.execute(PAIRS_SQL)


def _table(name: str, rows: list[tuple[str, str, datetime]], action: str = "") -> pa.Table:
    schema = SILVER_SCHEMAS[name].empty_table().schema
    n = len(rows)
    columns: dict[str, list[object]] = {
        "event_id": [f"{name}-{i}" for i in range(n)],
        "event_time": [t for _, _, t in rows],
        "date": [t.date().isoformat() for _, _, t in rows],
        "user_id": [u for u, _, _ in rows],
        "sku": [s for _, s, _ in rows],
    }
    if name == USER_ACTIVITY:
        columns |= {"session_id": ["s"] * n, "action": [action] * n, "query": [None] * n}
    else:
        columns |= {
            "order_id": [f"o{i}" for i in range(n)],
            "store_id": ["web"] * n,
            "line": [0] * n,
            "quantity": [1] * n,
            "unit_price": [2.0] * n,
        }
    return pa.table({field.name: columns[field.name] for field in schema}, schema=schema)


def test_the_interactions_before_a_cut_off_leave_out_every_event_from_it_on() -> None:
    con = duckdb.connect()
    _silver(con)
    before = interactions(con, CUTOFF)
    assert before
    assert LATE not in before.skus
    at = before.shoppers.index("u01"), before.skus.index(PRODUCTS[0])
    assert before.matrix[at] == 3.0  # an order line weighs 3
    assert LATE in interactions(con).skus  # no cut-off: every event


def test_the_training_rows_factor_source_is_fitted_before_the_cut_off() -> None:
    """Fitted on all of silver, the factors would hold the item every shopper buys in the
    horizon and offer it to each as a factor candidate: the label would leak into the rows."""
    con = duckdb.connect()
    _silver(con)
    rows = ranking_set(con, CUTOFF, timedelta(days=1), CATEGORIES)
    assert rows.queries == 40
    assert all(LATE in bought for bought in rows.positives)
    assert LATE not in rows.candidate_skus
    # the factor source is there (fitted on the days before): it leads some candidates
    part = RANKER_FEATURES.index("factor_part")
    assert (rows.features[:, part] > 0).any()
    assert (rows.features[:, RANKER_FEATURES.index("from_factors")] == 1).any()


def test_each_cut_off_is_fitted_once_on_its_own_past_whatever_the_order_asked() -> None:
    """The training asks for its cut-offs newest first and the holdout's last; the fits run
    oldest first (each later one starting from the one before), and none reads past its
    own cut-off."""
    con = duckdb.connect()
    _silver(con)
    later = CUTOFF + timedelta(hours=2)  # after every shopper viewed and bought LATE
    factors = CutoffFactors(con, [later, CUTOFF])
    at_later = factors.at(later)
    at_cutoff = factors.at(CUTOFF)
    assert at_later is not None
    assert at_cutoff is not None
    assert LATE in at_later.skus
    assert LATE not in at_cutoff.skus
    assert factors.at(later) is at_later  # kept, not fitted again
    # the oldest is fitted from scratch: started from the later one, it would carry what
    # shoppers did after its cut-off
    alone = fit_item_factors(interactions(con, CUTOFF))
    assert at_cutoff.skus == alone.skus
    assert (at_cutoff.factors == alone.factors).all()


def test_the_interactions_read_as_columns_are_the_matrix_the_triples_give() -> None:
    """The same shoppers, items (in the same order) and weights as the pairs read row by row
    and built one triple at a time: the seeded fit then gives the same factors."""
    con = duckdb.connect()
    _silver(con)
    for before, sql in ((CUTOFF, interactions_sql(before=True)), (None, INTERACTIONS_SQL)):
        params = [CUTOFF.replace(tzinfo=None)] if before else []
        rows = con.execute(sql, params).fetchall()
        by_rows = Interactions.of((u, s, float(w)) for u, s, w in rows)
        read = interactions(con, before)
        assert (read.shoppers, read.skus) == (by_rows.shoppers, by_rows.skus)
        assert (read.matrix != by_rows.matrix).nnz == 0
        assert len(read) == len(rows)
