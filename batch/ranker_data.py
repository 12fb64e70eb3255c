"""Point-in-time training and evaluation sets for the recommendation ranker.

Two kinds of query, both with every shopper and product state rebuilt from silver events
strictly before a cut-off time ``c``, in the very hash forms the flows write to Redis, and
rows built with ``online_models.ranking.candidate_row`` as at serving time (each candidate's
source, ``again``, ``similar``, ``factors``, ``category`` or ``popular``, and what each
discover source says of it, ``online_models.candidate_signals``, are features: the ranker
learns to blend the sources).

The factor source a candidate is described by is the one a shop would have served at the
cut-off: item factors fitted on the silver interactions strictly before it
(``batch.factors.interactions``, one fit per cut-off, as the scheduled training would have
published them), never the factors fitted on all of silver, whose items and vectors would
carry what shoppers did in the horizon the labels come from.

- :func:`served_set` (when the served-list log exists): every list the API served in
  ``[c, c + horizon)`` (bronze ``recommendations-served``), as shown; an item shown and then
  taken (:data:`TAKEN`: carted or bought) within a short horizon is a positive, an item
  shown and not taken a **real negative**, whether the shopper looked at it or not.
- :func:`ranking_set` (the fallback): every shopper who buys within ``(c, c + horizon]``, with
  both of the flow's lists rebuilt at the cut-off (``online_models.recommender.again``,
  ordered by ``likely_again`` over the week's popularity as the API serves it, and
  ``ranked_candidates``, over co-interaction pairs of the week before ``c`` and the factor
  source at ``c``) as candidates;
  the products bought are the positives, and every candidate not bought counts as a negative
  although nobody showed it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import ValidationError

from batch.factors import interactions
from batch.lake import read_all
from batch.result import WaitingForData
from online_models.candidate_signals import signals_of
from online_models.factors import ItemFactors, factor_source, fit_item_factors, profile_weights
from online_models.ranking import RANKER_FEATURES, candidate_row, item_values, shopper
from online_models.recommender import (
    CATEGORY_ITEMS,
    HISTORY,
    NEIGHBOURS,
    Profile,
    again,
    likely_again,
    new_interest,
    ranked_candidates,
    sources,
)
from online_models.similarity import BACKWARD, PAIR_DECAY, PAIR_DEPTH
from schemas.lake import (
    COMPETITOR_PRICES,
    INVENTORY,
    ORDER_LINES,
    USER_ACTIVITY,
    bronze_path,
    silver_path,
)
from schemas.served import ServedList
from schemas.serving import CandidateSource
from schemas.topics import RECOMMENDATIONS_SERVED

CANDIDATES = 50
RECENT = 20
INTEREST_EVENTS = 500  # 0.99 ** 500 < 0.01: older interactions no longer count (recommender)
AFFINITY_EVENTS = 50  # 0.9 ** 50 < 0.01: older interactions no longer count (flows.features)
AFFINITY_DECAY = 0.9
TAKEN = ("add_to_cart", "purchase")
"""What makes a served item a positive: what a shop wants from a list. A view is not one: a
ranker trained to predict what is looked at next learns the shopper's browsing (items they
open and leave), which on the simulator and MovieLens orders the items shoppers go on to want
worse than the blend's own order (docs/recommendations.md, "The label")."""


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
    """UTC wall time without tzinfo: DuckDB (without ICU) compares it with TIMESTAMP columns
    (a time without tzinfo is taken as that already)."""
    return t if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)


def _by_key(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> dict[str, object]:
    return {row[0]: row[1] for row in con.execute(sql, params).fetchall()}


@dataclass(frozen=True)
class Context:
    """What every query of one cut-off shares: states strictly before the cut-off."""

    users: dict[str, dict[str, str]]  # feature values per shopper
    interests: dict[str, list[str]]  # latest interactions per shopper, newest first
    items: dict[str, tuple[float, ...]]  # online_models.ranking.item_values per product
    neighbours: dict[str, dict[str, float]]
    popular: list[tuple[str, float]]
    by_category: dict[str, list[tuple[str, float]]]
    popularity: dict[str, float]  # every product's interactions in the week before
    factors: ItemFactors | None  # fitted on the interactions before the cut-off (None: none)

    def profile(self, user: str, categories: dict[str, str]) -> Profile:
        """The recommender's profile of ``user`` at the cut-off."""
        latest = self.interests.get(user, [])
        return _profile(latest, categories, list(dict.fromkeys(latest))[:HISTORY])

    def factored(self, profile: Profile) -> dict[str, float]:
        """The shopper's factor source at the cut-off, as the API folds a stored profile in
        (``api.discover.FoldedProfiles``); {} without factors."""
        if self.factors is None:
            return {}
        weights = profile_weights(profile.items, profile.recent)
        return factor_source(self.factors, weights, profile.seen)

    def reads(self, user: str, categories: dict[str, str]) -> Reads:
        """What the shopper's discover list is built from at the cut-off: their profile, the
        neighbour and category sources (``online_models.recommender.sources``) and their
        factor source."""
        profile = self.profile(user, categories)
        similar, by_category = sources(profile, self.by_category, self.neighbours)
        return Reads(profile, similar, by_category, self.factored(profile))


class Reads(NamedTuple):
    """:meth:`Context.reads`: one shopper's discover inputs at a cut-off."""

    profile: Profile
    similar: dict[str, float]
    by_category: dict[str, float]
    factored: dict[str, float]


class CutoffFactors:
    """The item factors of each cut-off a training reads: fitted on the silver interactions
    strictly before it (``batch.factors.interactions``), as the scheduled training would
    have published them, each fitted once. The cut-offs are fitted oldest first, each one
    after the first from the one before it (``fit_item_factors``'s ``start``; a fifth of the
    sweeps): a later cut-off's history holds the earlier one's, never the reverse, so no fit
    reads past its own cut-off."""

    def __init__(self, con: duckdb.DuckDBPyConnection, cutoffs: Iterable[datetime]) -> None:
        self._con = con
        self._due = sorted({_naive(c) for c in cutoffs})
        self._fitted: dict[datetime, ItemFactors | None] = {}
        self._last: ItemFactors | None = None

    def at(self, cutoff: datetime) -> ItemFactors | None:
        """The factors at ``cutoff`` (one of the cut-offs given); None when nothing before it
        was an interaction."""
        c = _naive(cutoff)
        for due in [d for d in self._due if d <= c and d not in self._fitted]:
            fitted = interactions(self._con, due.replace(tzinfo=UTC))
            factors = fit_item_factors(fitted, start=self._last) if fitted else None
            self._fitted[due] = factors
            self._last = factors or self._last
        return self._fitted[c]


def _context(
    con: duckdb.DuckDBPyConnection,
    c: datetime,
    users: list[str],
    categories: dict[str, str],
    factors: CutoffFactors,
) -> Context:
    """The states at ``c`` (naive UTC) of ``users`` and of every product."""
    day, week = c - timedelta(days=1), c - timedelta(days=7)
    con.register("shoppers", pa.table({"user_id": pa.array(users, pa.string())}))
    states, interests = _user_states(con, c, categories)
    con.unregister("shoppers")
    items = {sku: item_values(state) for sku, state in _item_states(con, c, day).items()}
    counts = con.execute(
        "SELECT sku, count(*) AS n FROM events WHERE t >= ? AND t < ? GROUP BY sku"
        " ORDER BY n DESC, sku",
        [week, c],
    ).fetchall()
    by_category: dict[str, list[tuple[str, float]]] = {}
    for sku, n in counts:
        best = by_category.setdefault(categories.get(sku, ""), [])
        if len(best) < CATEGORY_ITEMS:
            best.append((sku, float(n)))
    return Context(
        states,
        interests,
        items,
        _neighbours(con, week, c),
        counts[:CANDIDATES],
        by_category,
        {sku: float(n) for sku, n in counts},
        factors.at(c),
    )


class _Rows:
    """Accumulates the rows of a :class:`RankingSet`."""

    def __init__(self) -> None:
        self.rows: list[list[float]] = []
        self.labels: list[int] = []
        self.groups: list[int] = []
        self.skus: list[str] = []
        self.positives: list[set[str]] = []
        self.users: list[str] = []

    def query(
        self,
        ctx: Context,
        user: str,
        candidates: Sequence[tuple[str, float, CandidateSource | None]],
        wanted: set[str],
        categories: dict[str, str],
        reads: Reads | None = None,
    ) -> None:
        """One query's rows; ``reads``: the shopper's discover inputs when the caller has
        them already (else read from ``ctx``)."""
        query = len(self.positives)
        who = shopper(ctx.users.get(user, {}))
        no_item = item_values({})
        profile, similar, by_category, factored = reads or ctx.reads(user, categories)
        signals = signals_of(
            profile,
            similar,
            by_category,
            ctx.neighbours,
            ctx.popularity,
            [sku for sku, _, _ in candidates],
            factored,
        )
        self.positives.append(wanted)
        self.users.append(user)
        for rank, (sku, score, source) in enumerate(candidates):
            part = ctx.items.get(sku, no_item)
            self.rows.append(
                candidate_row(
                    who, part, score, rank, categories.get(sku), sku, source, signals[sku]
                )
            )
            self.labels.append(int(sku in wanted))
            self.groups.append(query)
            self.skus.append(sku)

    def done(self, ctx: Context) -> RankingSet:
        features = np.asarray(self.rows, dtype=np.float32).reshape(-1, len(RANKER_FEATURES))
        return RankingSet(
            features,
            np.asarray(self.labels),
            np.asarray(self.groups),
            self.skus,
            self.positives,
            [s for s, _ in ctx.popular],
            self.users,
        )


def ranking_set(
    con: duckdb.DuckDBPyConnection,
    cutoff: datetime,
    horizon: timedelta,
    categories: dict[str, str],
    factors: CutoffFactors | None = None,
) -> RankingSet:
    """The candidate rows of every shopper who buys within ``(cutoff, cutoff + horizon]``:
    both of the flow's lists rebuilt at the cut-off; every candidate not bought is a
    negative (the fallback when no served-list log exists). ``factors``: the training's
    (None: the cut-off's own fit)."""
    c = _naive(cutoff)
    bought = _by_key(
        con,
        "SELECT user_id, list(DISTINCT sku ORDER BY sku) FROM events WHERE kind = 'purchase'"
        " AND t > ? AND t <= ? GROUP BY ALL ORDER BY user_id",
        [c, c + horizon],
    )
    ctx = _context(con, c, list(bought), categories, factors or CutoffFactors(con, [c]))
    out = _Rows()
    for user, purchased in bought.items():
        reads = ctx.reads(str(user), categories)
        profile, similar, by_category, factored = reads
        found = ranked_candidates(profile, similar, by_category, ctx.popular, CANDIDATES, factored)
        own = likely_again(again(profile, CANDIDATES // 2), ctx.popularity)  # as served
        candidates: list[tuple[str, float, CandidateSource | None]] = [
            (sku, score, "again") for sku, score in own
        ]
        candidates.extend(found[: CANDIDATES - CANDIDATES // 2])
        wanted = set(purchased)  # type: ignore[call-overload]
        out.query(ctx, str(user), candidates, wanted, categories, reads)
    return out.done(ctx)


SERVED_ROWS = pa.schema(
    [
        ("list_id", pa.string()),
        ("user_id", pa.string()),
        ("t", pa.timestamp("us")),
        ("rank", pa.int32()),
        ("sku", pa.string()),
        ("source", pa.string()),
        ("score", pa.float64()),
    ]
)
"""The served-list log as ``load_served`` registers it: one row per item shown."""


def load_served(lake_dir: Path, con: duckdb.DuckDBPyConnection) -> int:
    """Register the served-list log (bronze ``recommendations-served``) as table ``served``,
    one row per item shown; the number of lists (0 when there is no log yet)."""
    bronze = read_all(bronze_path(lake_dir, RECOMMENDATIONS_SERVED), ["payload"])
    lists = [] if bronze is None else bronze.column("payload").to_pylist()
    columns: dict[str, list[object]] = {name: [] for name in SERVED_ROWS.names}
    seen: set[str] = set()
    for payload in lists:
        try:
            served = ServedList.model_validate_json(payload)
        except ValidationError:
            continue  # the flow validated it; a row from an older contract is skipped
        if served.event_id in seen:
            continue  # produced twice (an API shutting down mid-send): counted once
        seen.add(served.event_id)
        at = _naive(served.event_time)
        for rank, item in enumerate(served.items):
            for name, value in zip(
                columns,
                (served.event_id, served.user_id, at, rank, item.sku, item.source, item.score),
                strict=True,
            ):
                columns[name].append(value)
    con.register("served", pa.table(columns, schema=SERVED_ROWS))
    return len(seen)


def served_set(
    con: duckdb.DuckDBPyConnection,
    cutoff: datetime,
    horizon: timedelta,
    chosen_within: timedelta,
    categories: dict[str, str],
    factors: CutoffFactors | None = None,
) -> RankingSet:
    """The rows of the lists served in ``[cutoff, cutoff + horizon)`` (``load_served``), one
    query per list with at least one item taken: an item shown and then carted or bought
    (:data:`TAKEN`) by the shopper within ``chosen_within`` is a positive, every other item
    shown is a real negative (viewed or not). Features are the states at the cut-off (before
    any of these lists was served: nothing the shopper did after is in them). ``factors``: the
    training's (None: the cut-off's own fit)."""
    c = _naive(cutoff)
    seconds = int(chosen_within.total_seconds())
    taken = ", ".join(f"'{kind}'" for kind in TAKEN)
    shown = con.execute(
        f"""
        SELECT s.list_id, any_value(s.user_id), s.rank, any_value(s.sku), any_value(s.source),
               any_value(s.score), count(e.sku) > 0 AS chosen, min(s.t) AS served_at
        FROM served s LEFT JOIN events e
          ON e.user_id = s.user_id AND e.sku = s.sku
         AND e.t > s.t AND e.t <= s.t + INTERVAL '{seconds} seconds' AND e.kind IN ({taken})
        WHERE s.t >= ? AND s.t < ?
        GROUP BY s.list_id, s.rank ORDER BY served_at, s.list_id, s.rank
        """,
        [c, c + horizon],
    ).fetchall()
    lists: dict[str, tuple[str, list[tuple[str, float, CandidateSource | None]], set[str]]] = {}
    for list_id, user, _rank, sku, source, score, chosen, _at in shown:
        _, items, wanted = lists.setdefault(list_id, (user, [], set()))
        items.append((sku, float(score), source))
        if chosen:
            wanted.add(sku)
    kept = {k: v for k, v in lists.items() if v[2]}
    users = sorted({user for user, _, _ in kept.values()})
    ctx = _context(con, c, users, categories, factors or CutoffFactors(con, [c]))
    out = _Rows()
    for user, items, wanted in kept.values():
        out.query(ctx, user, items, wanted, categories)
    return out.done(ctx)


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
    for user, views, purchases, latest, interacted in recent:
        interests[user] = interacted or []
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
