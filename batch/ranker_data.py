"""Point-in-time training and evaluation sets for the recommendation ranker.

For a cut-off time ``c``: every shopper who buys within ``(c, c + horizon]`` is a query; their
state (recent views and purchases, category affinity) and every product's state (24 h
activity, last price, stock, competitor gap) are rebuilt from silver events strictly before
``c`` in the very hash forms the flows write to Redis; candidates are both of the flow's lists
(``online_models.recommender.again`` and ``discover``, over co-interaction pairs of the week
before ``c``), so the ranker learns to blend the sources; labels are the products bought in
the horizon, and every candidate the shopper did not buy is a negative. Rows are built with
``online_models.ranking.ranker_features``, as at serving time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from batch.lake import read_all
from batch.result import WaitingForData
from online_models.ranking import RANKER_FEATURES, candidate_row, item_values, shopper
from online_models.recommender import (
    CATEGORY_ITEMS,
    HISTORY,
    NEIGHBOURS,
    Profile,
    again,
    discover,
    new_interest,
)
from online_models.similarity import BACKWARD, PAIR_DECAY, PAIR_DEPTH
from schemas.lake import COMPETITOR_PRICES, INVENTORY, ORDER_LINES, USER_ACTIVITY, silver_path

CANDIDATES = 50
RECENT = 20
INTEREST_EVENTS = 500  # 0.99 ** 500 < 0.01: older interactions no longer count (recommender)
AFFINITY_EVENTS = 50  # 0.9 ** 50 < 0.01: older interactions no longer count (flows.features)
AFFINITY_DECAY = 0.9


@dataclass(frozen=True)
class RankingSet:
    """Candidate rows of several queries (shoppers at a cut-off), grouped by query."""

    features: np.ndarray  # float32, (rows, len(RANKER_FEATURES))
    labels: np.ndarray  # 1 when the shopper bought the candidate in the horizon
    groups: np.ndarray  # query index of each row
    candidate_skus: list[str]
    positives: list[set[str]]  # per query: everything bought in the horizon
    popular: list[str]  # the popularity baseline's list at the cut-off, most popular first
    users: list[str] = field(default_factory=list)  # per query: the shopper

    @property
    def queries(self) -> int:
        return len(self.positives)


EVENTS_SQL = """
CREATE OR REPLACE TEMP TABLE events AS
SELECT user_id, sku, action AS kind, event_time::TIMESTAMP AS t, 0 AS quantity, NULL AS price
FROM user_activity WHERE sku IS NOT NULL AND action IN ('view', 'add_to_cart', 'wishlist')
UNION ALL
SELECT user_id, sku, 'purchase', event_time::TIMESTAMP, quantity, unit_price FROM order_lines;
"""


_LAGS = " UNION ALL ".join(
    f"SELECT lag(sku, {k}) OVER w AS a, sku AS b, {PAIR_DECAY ** (k - 1)} AS w, t FROM events "
    "WINDOW w AS (PARTITION BY user_id ORDER BY t, kind, sku)"  # ties: an order's lines
    for k in range(1, PAIR_DEPTH + 1)
)
PAIRS_SQL = f"""
CREATE OR REPLACE TEMP TABLE pairs AS
WITH pairs AS (SELECT a, b, w, t FROM ({_LAGS}) WHERE a IS NOT NULL AND a <> b)
SELECT a, b, w, t FROM pairs UNION ALL SELECT b, a, {BACKWARD} * w, t FROM pairs;
"""
"""Co-interaction pairs as the flow forms them (``online_models.similarity.pairs``): a
shopper's interaction with each of their :data:`PAIR_DEPTH` previous ones, older → newer at
``PAIR_DECAY**(distance - 1)``, newer → older at :data:`BACKWARD` times that, stamped with the
time of the later one (repeats of an item count as distinct steps here)."""


def load_events(lake_dir: Path, con: duckdb.DuckDBPyConnection) -> tuple[datetime, datetime]:
    """Register silver activity, orders, inventory and competitor prices; the time span."""
    for name in (USER_ACTIVITY, ORDER_LINES, INVENTORY, COMPETITOR_PRICES):
        rows = read_all(silver_path(lake_dir, name))
        if rows is None:
            raise WaitingForData(
                f"waiting for silver table {name!r}: `tillflow batch silver` makes it"
            )
        con.register(name, rows)
    con.execute(EVENTS_SQL)
    con.execute(PAIRS_SQL)
    ((first, last),) = con.sql("SELECT min(t), max(t) FROM events").fetchall()
    if first is None or last is None:
        raise WaitingForData("waiting for shopper events in silver; none so far")
    return first.replace(tzinfo=UTC), last.replace(tzinfo=UTC)


def _naive(t: datetime) -> datetime:
    """UTC wall time without tzinfo: DuckDB (without ICU) compares it with TIMESTAMP columns."""
    return t.astimezone(UTC).replace(tzinfo=None)


def _by_key(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> dict[str, object]:
    return {row[0]: row[1] for row in con.execute(sql, params).fetchall()}


def ranking_set(
    con: duckdb.DuckDBPyConnection, cutoff: datetime, horizon: timedelta, categories: dict[str, str]
) -> RankingSet:
    """The candidate rows of every shopper who buys within ``(cutoff, cutoff + horizon]``."""
    c = _naive(cutoff)
    end, day, week = c + horizon, c - timedelta(days=1), c - timedelta(days=7)
    bought = _by_key(
        con,
        "SELECT user_id, list(DISTINCT sku ORDER BY sku) FROM events WHERE kind = 'purchase'"
        " AND t > ? AND t <= ? GROUP BY ALL ORDER BY user_id",
        [c, end],
    )
    con.register("shoppers", pa.table({"user_id": list(bought)}))
    users, interests = _user_states(con, c, categories)
    items = _item_states(con, c, day)
    neighbours = _neighbours(con, week, c)
    counts = con.execute(
        "SELECT sku, count(*) AS n FROM events WHERE t >= ? AND t < ? GROUP BY sku"
        " ORDER BY n DESC, sku",
        [week, c],
    ).fetchall()
    popular = counts[:CANDIDATES]
    by_category: dict[str, list[tuple[str, float]]] = {}
    for sku, n in counts:
        best = by_category.setdefault(categories.get(sku, ""), [])
        if len(best) < CATEGORY_ITEMS:
            best.append((sku, float(n)))
    con.unregister("shoppers")
    rows: list[list[float]] = []
    labels: list[int] = []
    groups: list[int] = []
    skus: list[str] = []
    positives: list[set[str]] = []
    shoppers: list[str] = []
    item_parts = {sku: item_values(state) for sku, state in items.items()}
    no_item = item_values({})
    for query, (user, purchased) in enumerate(bought.items()):
        state = users.get(user, {})
        who = shopper(state)
        wanted = set(purchased)  # type: ignore[call-overload]
        positives.append(wanted)
        shoppers.append(str(user))
        latest = interests.get(user, [])
        profile = _profile(latest, categories, list(dict.fromkeys(latest))[:HISTORY])
        found, _ = discover(profile, by_category, neighbours, popular, CANDIDATES)
        candidates = again(profile, CANDIDATES // 2) + found[: CANDIDATES - CANDIDATES // 2]
        for rank, (sku, score) in enumerate(candidates):
            part = item_parts.get(sku, no_item)
            rows.append(candidate_row(who, part, score, rank, categories.get(sku), sku))
            labels.append(int(sku in wanted))
            groups.append(query)
            skus.append(sku)
    features = np.asarray(rows, dtype=np.float32).reshape(-1, len(RANKER_FEATURES))
    return RankingSet(
        features,
        np.asarray(labels),
        np.asarray(groups),
        skus,
        positives,
        [s for s, _ in popular],
        shoppers,
    )


def _profile(latest: list[str], categories: dict[str, str], recent: list[str]) -> Profile:
    """The recommender's profile of a shopper whose interactions were ``latest`` (newest
    first), replayed oldest first as flows.steps.ShopperState learns them."""
    interest = new_interest()
    for sku in reversed(latest):
        interest.add(sku, 1.0)
    return Profile.of(interest, categories, recent)


def _user_states(
    con: duckdb.DuckDBPyConnection, c: datetime, categories: dict[str, str]
) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    """Each shopper's feature values at ``c`` and their latest interactions, newest first."""
    recent = con.execute(
        f"""
        SELECT user_id,
               list(sku ORDER BY t DESC, sku) FILTER (WHERE kind = 'view')[1:{RECENT}],
               list(sku ORDER BY t DESC, sku) FILTER (WHERE kind = 'purchase')[1:{RECENT}],
               list(sku ORDER BY t DESC, sku)[1:{AFFINITY_EVENTS}],
               list(sku ORDER BY t DESC, sku)[1:{INTEREST_EVENTS}]
        FROM events JOIN shoppers USING (user_id) WHERE t < ? GROUP BY user_id
        """,
        [c],
    ).fetchall()
    states: dict[str, dict[str, str]] = {}
    interests: dict[str, list[str]] = {}
    for user, views, purchases, latest, interactions in recent:
        interests[user] = interactions or []
        affinity: dict[str, float] = defaultdict(float)
        for i, sku in enumerate(latest or []):
            category = categories.get(sku)
            if category is not None:
                affinity[category] += AFFINITY_DECAY**i
        total = sum(affinity.values()) or 1.0
        states[user] = {
            "recent_views": json.dumps(views or []),
            "recent_purchases": json.dumps(purchases or []),
            "category_affinity": json.dumps({k: round(v / total, 4) for k, v in affinity.items()}),
        }
    return states, interests


def _item_states(
    con: duckdb.DuckDBPyConnection, c: datetime, day: datetime
) -> dict[str, dict[str, str]]:
    rows = con.execute(
        """
        WITH activity AS (
            SELECT sku,
                   count(*) FILTER (WHERE kind = 'view' AND t >= ?) AS views_24h,
                   count(*) FILTER (WHERE kind = 'add_to_cart' AND t >= ?) AS add_to_carts_24h,
                   coalesce(sum(quantity) FILTER (WHERE kind = 'purchase' AND t >= ?), 0)
                       AS units_24h,
                   arg_max(price, t) FILTER (WHERE kind = 'purchase') AS last_price
            FROM events WHERE t < ? GROUP BY sku
        ), stock AS (
            SELECT sku, sum(on_hand) AS on_hand FROM (
                SELECT sku, store_id, arg_max(on_hand, event_time) AS on_hand FROM inventory
                WHERE event_time::TIMESTAMP < ? GROUP BY ALL) GROUP BY sku
        ), competition AS (
            SELECT sku, min(price) AS competitor FROM (
                SELECT sku, competitor, arg_max(price, event_time) AS price
                FROM competitor_prices WHERE event_time::TIMESTAMP < ? GROUP BY ALL) GROUP BY sku
        )
        SELECT a.sku, views_24h, add_to_carts_24h, units_24h, last_price, on_hand, competitor
        FROM activity a LEFT JOIN stock USING (sku) LEFT JOIN competition USING (sku)
        """,
        [day, day, day, c, c, c],
    ).fetchall()
    states = {}
    for sku, views, carts, units, price, on_hand, competitor in rows:
        gap = (price - competitor) / competitor if price and competitor else 0.0
        states[sku] = {
            "views_24h": str(views),
            "add_to_carts_24h": str(carts),
            "units_24h": str(units),
            "conversion_24h": str(round(units / views, 6) if views else 0.0),
            "last_price": str(price or 0.0),
            "on_hand": str(on_hand or 0),
            "competitor_gap": str(round(gap, 6)),
        }
    return states


def _neighbours(
    con: duckdb.DuckDBPyConnection, start: datetime, c: datetime
) -> dict[str, dict[str, float]]:
    """Each item's top co-interacted items among the pairs formed in ``[start, c)``, as the
    share of all its pair weight (``online_models.similarity.CoOccurrence.similar``)."""
    rows = con.execute(
        f"""
        WITH weights AS (
            SELECT a, b, sum(w) AS w FROM pairs WHERE t >= ? AND t < ? GROUP BY ALL
        )
        SELECT a, b, w / sum(w) OVER (PARTITION BY a) FROM weights
        QUALIFY row_number() OVER (PARTITION BY a ORDER BY w DESC, b) <= {NEIGHBOURS}
        """,
        [start, c],
    ).fetchall()
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for a, b, w in rows:
        out[a][b] = w
    return out
