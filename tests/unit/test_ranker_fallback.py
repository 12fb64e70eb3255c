"""The ranker's fallback training set (no served-list log) over an in-memory DuckDB: its
buy-again candidates come in the order the API serves them, so that their candidate rank
means at training what it means when the API ranks a list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb

from batch.ranker_data import PAIRS_SQL, ranking_set
from online_models.ranking import RANKER_FEATURES
from schemas.lake import ORDER_LINES, SILVER_SCHEMAS, USER_ACTIVITY

CUTOFF = datetime(2026, 1, 10, tzinfo=UTC)
CATEGORIES = {"tea": "drinks", "jam": "spreads", "bread": "bakery"}


def _events(con: duckdb.DuckDBPyConnection) -> None:
    start = CUTOFF.replace(tzinfo=None) - timedelta(days=2)
    rows: list[tuple[str, str, str, datetime]] = []
    # the shopper comes to tea more often than to jam; everybody else looks at jam
    for n, sku in enumerate(["tea", "jam", "tea", "jam", "tea"]):
        rows.append(("u", sku, "view", start + timedelta(minutes=n)))
    for n in range(30):
        rows.append((f"other{n}", "jam", "view", start + timedelta(hours=1, minutes=n)))
    rows.append(("u", "bread", "purchase", CUTOFF.replace(tzinfo=None) + timedelta(hours=1)))
    con.execute(
        "CREATE TEMP TABLE events (user_id VARCHAR, sku VARCHAR, kind VARCHAR, t TIMESTAMP,"
        " quantity INTEGER, price DOUBLE)"
    )
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, 1, 2.0)", rows)
    con.execute(PAIRS_SQL)
    for name in (USER_ACTIVITY, ORDER_LINES):  # what the item factors are fitted on: none
        con.register(name, SILVER_SCHEMAS[name].empty_table())
    con.execute(
        "CREATE TEMP TABLE inventory (sku VARCHAR, store_id VARCHAR, on_hand INTEGER,"
        " event_time TIMESTAMP)"
    )
    con.execute(
        "CREATE TEMP TABLE competitor_prices (sku VARCHAR, competitor VARCHAR, price DOUBLE,"
        " event_time TIMESTAMP)"
    )


def test_fallback_buy_again_candidates_are_ordered_as_the_api_serves_them() -> None:
    con = duckdb.connect()
    _events(con)
    rows = ranking_set(con, CUTOFF, timedelta(days=1), CATEGORIES)
    assert rows.users == ["u"]
    rank = RANKER_FEATURES.index("candidate_rank")
    again = [
        (sku, int(row[rank]))
        for sku, row in zip(rows.candidate_skus, rows.features, strict=True)
        if sku in ("tea", "jam")
    ]
    # share × popularity^0.5 (online_models.recommender.likely_again): jam first
    assert again == [("jam", 0), ("tea", 1)]
