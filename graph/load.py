"""``tillflow batch graph``: load gold into Neo4j, incrementally.

Each run reads the Delta version of every gold table it loaded last time (``:LoadState``),
diffs it against the current version (``graph.gold``) and writes only what changed, in
batched ``UNWIND`` transactions. Every write sets absolute values (counts recomputed from the
whole gold table), so a run that dies half-way is simply run again. Co-purchase edges are
recomputed for the pairs whose shoppers changed; lift and PageRank move with every load, so
they are rewritten for the whole graph (lift inside Neo4j, PageRank from the pair counts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, LiteralString

import neo4j
import pandas as pd
import structlog

from graph import cypher
from graph.copurchase import MIN_SUPPORT, PurchaseMatrix
from graph.gold import Changes, changes, current_version
from graph.influence import pagerank, ranks, weighted_degree
from graph.serving import cache_related
from infra.clients import SyncRedis
from schemas.lake import ORDERS_ENRICHED, SKU_DAILY, USER_ITEM_INTERACTIONS
from schemas.settings import Settings

log = structlog.get_logger(__name__)

KEYS = {
    USER_ITEM_INTERACTIONS: ["user_id", "sku"],
    ORDERS_ENRICHED: ["order_id", "sku"],
    SKU_DAILY: ["sku", "date"],
}


@dataclass
class LoadReport:
    """What one run did: the gold versions it loaded and how many rows it wrote."""

    versions: dict[str, int] = field(default_factory=dict)
    full: dict[str, bool] = field(default_factory=dict)  # tables loaded in full
    written: dict[str, int] = field(default_factory=dict)  # rows written per kind
    seconds: dict[str, float] = field(default_factory=dict)  # time per step

    @property
    def unchanged(self) -> bool:
        return not self.full and not any(self.written.values())


def _batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The driver's parameters: plain Python values, timestamps as epoch milliseconds (packing
    a datetime in the driver costs ~20x an int; Cypher turns them back with ``datetime()``)."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.as_unit("ms").astype("int64")
    records: list[dict[str, Any]] = out.to_dict("records")
    return records


class GraphWriter:
    """Runs the loader's statements in batched write transactions, timing each step."""

    def __init__(
        self,
        driver: neo4j.Driver,
        settings: Settings,
        report: LoadReport,
        on_rows: Callable[[int, str], None] | None = None,
    ) -> None:
        self.on_rows = on_rows
        self.driver = driver
        self.ns = settings.graph_namespace
        self.batch = settings.graph_batch_rows
        self.report = report

    def write(self, kind: str, query: LiteralString, rows: list[dict[str, Any]]) -> None:
        started = time.perf_counter()
        for chunk in _batches(rows, self.batch):
            self.driver.execute_query(query, rows=chunk, ns=self.ns, routing_="w")
            if self.on_rows is not None:
                self.on_rows(len(chunk), kind)
        self.report.written[kind] = self.report.written.get(kind, 0) + len(rows)
        self._took(kind, started)

    def run(self, kind: str, query: LiteralString, **params: Any) -> None:
        """An auto-commit statement (``CALL … IN TRANSACTIONS`` needs one)."""
        started = time.perf_counter()
        with self.driver.session() as session:
            session.run(query, ns=self.ns, **params).consume()
        self._took(kind, started)

    def _took(self, kind: str, started: float) -> None:
        seconds = self.report.seconds
        seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - started


def ensure_schema(driver: neo4j.Driver) -> None:
    """Create the constraints and indexes (idempotent) and wait until they are online."""
    for statement in cypher.SCHEMA:
        driver.execute_query(statement, routing_="w")


def drop_namespace(driver: neo4j.Driver, namespace: str) -> None:
    """Delete every node and relationship of ``namespace`` (tests, benchmarks, re-imports)."""
    with driver.session() as session:
        session.run(cypher.DROP_EDGES, ns=namespace).consume()
        session.run(cypher.DROP_NODES, ns=namespace).consume()


def loaded_versions(driver: neo4j.Driver, namespace: str) -> dict[str, int]:
    records, _, _ = driver.execute_query(cypher.LOAD_STATE, ns=namespace, routing_="r")
    return {r["table"]: r["version"] for r in records}


def load_graph(
    settings: Settings,
    driver: neo4j.Driver,
    cache: SyncRedis | None = None,
    on_rows: Callable[[int, str], None] | None = None,
) -> LoadReport:
    """Bring the namespace's graph up to date with the gold tables under the lake, and copy
    the bought-together lists to Redis (``cache``) for serving. ``on_rows(n, kind)`` is told
    of every batch of rows written."""
    report = LoadReport()
    ensure_schema(driver)
    loaded = loaded_versions(driver, settings.graph_namespace)
    current = {t: current_version(settings.lake_dir, t) for t in KEYS}
    todo = [t for t in KEYS if loaded.get(t) != current[t]]
    report.versions = current
    if not todo:
        log.info("graph up to date", versions=current)
        return report
    started = time.perf_counter()
    diffs = {t: changes(settings.lake_dir, t, KEYS[t], loaded.get(t)) for t in todo}
    report.seconds["read_gold"] = time.perf_counter() - started
    report.full = {t: d.full for t, d in diffs.items()}
    writer = GraphWriter(driver, settings, report, on_rows)
    if USER_ITEM_INTERACTIONS in diffs and diffs[USER_ITEM_INTERACTIONS].full:
        writer.run("clear", cypher.CLEAR_SHOPPER_EDGES)
        writer.run("clear", cypher.CLEAR_CO_PURCHASED)
    _merge_nodes(writer, diffs.values())
    if ORDERS_ENRICHED in diffs:
        _categories(writer, diffs[ORDERS_ENRICHED])
    if SKU_DAILY in diffs:
        _totals(writer, diffs[SKU_DAILY])
    if USER_ITEM_INTERACTIONS in diffs:
        interactions = diffs[USER_ITEM_INTERACTIONS]
        _interactions(writer, interactions)
        _co_purchases(writer, interactions)
    if cache is not None:  # every list: lifts and categories may have moved
        started = time.perf_counter()
        records, _, _ = driver.execute_query(cypher.ALL_PRODUCTS, ns=settings.graph_namespace)
        skus = [r["sku"] for r in records]
        report.written["redis_related"] = cache_related(settings, driver, cache, skus)
        report.seconds["redis_related"] = time.perf_counter() - started
    writer.write(
        "load_state",
        cypher.SAVE_LOAD_STATE,
        [{"table": t, "version": diffs[t].version} for t in todo],
    )
    log.info("graph loaded", versions=current, written=report.written, seconds=report.seconds)
    return report


def _merge_nodes(writer: GraphWriter, diffs: Iterable[Changes]) -> None:
    skus: set[str] = set()
    users: set[str] = set()
    for d in diffs:
        skus.update(d.upserts["sku"])
        if d.table == USER_ITEM_INTERACTIONS:
            users.update(d.upserts["user_id"])
    writer.write("products", cypher.MERGE_PRODUCTS, [{"sku": s} for s in sorted(skus)])
    writer.write("shoppers", cypher.MERGE_SHOPPERS, [{"user_id": u} for u in sorted(users)])


def _categories(writer: GraphWriter, orders: Changes) -> None:
    """Each product's category: the latest one its order lines carry."""
    lines = orders.upserts.dropna(subset=["category"]).sort_values("event_time")
    latest = lines.groupby("sku", sort=True)["category"].last()
    rows = [{"sku": sku, "category": c} for sku, c in latest.items()]
    writer.write("categories", cypher.SET_CATEGORIES, rows)


def _totals(writer: GraphWriter, daily: Changes) -> None:
    """Units, revenue, orders and views per product over all days, for the changed products."""
    affected = set(daily.upserts["sku"]) | set(daily.deleted["sku"])
    current = daily.current[daily.current["sku"].isin(affected)]
    totals = current.groupby("sku")[["units", "revenue", "orders", "views"]].sum().reset_index()
    gone = affected - set(totals["sku"])
    zero = pd.DataFrame({"sku": sorted(gone), "units": 0, "revenue": 0.0, "orders": 0, "views": 0})
    writer.write("product_totals", cypher.SET_PRODUCT_TOTALS, _records(pd.concat([totals, zero])))


def _interactions(writer: GraphWriter, inter: Changes) -> None:
    rows = inter.upserts
    viewed = rows[(rows["views"] > 0) | (rows["carts"] > 0)]
    bought = rows[rows["purchases"] > 0]
    if inter.previous is None:  # a full load: the edges were cleared
        writer.write("viewed", cypher.CREATE_VIEWED, _records(viewed))
        writer.write("bought", cypher.CREATE_BOUGHT, _records(bought))
        return
    writer.write("viewed", cypher.MERGE_VIEWED, _records(viewed))
    writer.write("bought", cypher.MERGE_BOUGHT, _records(bought))
    keys = ["user_id", "sku"]
    before = rows[keys].join(inter.previous.set_index(keys), on=keys)  # NaN: a new row
    had_view = ((before["views"] > 0) | (before["carts"] > 0)) & ~rows.index.isin(viewed.index)
    had_bought = (before["purchases"] > 0) & ~rows.index.isin(bought.index)
    not_viewed = pd.concat([rows.loc[had_view, keys], inter.deleted])
    not_bought = pd.concat([rows.loc[had_bought, keys], inter.deleted])
    writer.write("viewed_removed", cypher.DELETE_VIEWED, _records(not_viewed))
    writer.write("bought_removed", cypher.DELETE_BOUGHT, _records(not_bought))


def _purchase_sets(frame: pd.DataFrame, users: set[str]) -> dict[str, set[str]]:
    rows = frame[(frame["purchases"] > 0) & frame["user_id"].isin(users)]
    return {u: set(g) for u, g in rows.groupby("user_id")["sku"]}


def pair_deltas(
    before: Mapping[str, set[str]], after: Mapping[str, set[str]]
) -> dict[tuple[str, str], int]:
    """How the co-purchase count of each pair moves when shoppers' purchases go from
    ``before`` to ``after`` (only pairs with a product that entered or left a shopper's set).

    >>> pair_deltas({"u": {"a", "b"}, "v": {"a", "c"}}, {"u": {"a", "b", "c"}, "v": {"a"}})
    {('a', 'c'): 0, ('b', 'c'): 1}
    """
    deltas: dict[tuple[str, str], int] = {}
    for user in set(before) | set(after):
        old, new = before.get(user, set()), after.get(user, set())
        moved = old ^ new
        for x in moved:
            for y in old | new:
                if x == y or (y in moved and y < x):  # each pair once per shopper
                    continue
                pair = (x, y) if x < y else (y, x)
                change = int(x in new and y in new) - int(x in old and y in old)
                deltas[pair] = deltas.get(pair, 0) + change
    return dict(sorted(deltas.items()))


def _co_purchases(writer: GraphWriter, inter: Changes) -> None:
    """Write the changed co-purchase edges, then every lift and every product's PageRank."""
    started = time.perf_counter()
    current = inter.current
    bought = current.loc[current["purchases"] > 0, ["user_id", "sku"]]
    skus = sorted(set(current["sku"]))
    matrix = PurchaseMatrix.of(bought.itertuples(index=False, name=None), skus)
    counts = matrix.counts()
    weights = {
        (a, b) if a < b else (b, a): int(w)
        for a, b, w in zip(
            (skus[i] for i in counts.row), (skus[j] for j in counts.col), counts.data, strict=True
        )
    }
    buyers = matrix.buyers()
    if inter.previous is None:
        deltas = {p: w for p, w in weights.items() if w >= MIN_SUPPORT}  # all new
        touched_skus = set(skus)
    else:
        changed_users = set(inter.upserts["user_id"]) | set(inter.deleted["user_id"])
        before = _purchase_sets(inter.previous, changed_users)
        after = _purchase_sets(current, changed_users)
        deltas = pair_deltas(before, after)
        touched_skus = {
            s for u in changed_users for s in before.get(u, set()) ^ after.get(u, set())
        }
    writer.report.seconds["co_purchase_counts"] = time.perf_counter() - started
    keep, drop = [], []
    for (a, b), delta in deltas.items():
        weight = weights.get((a, b), 0)
        if weight >= MIN_SUPPORT:
            keep.append({"a": a, "b": b, "weight": weight})
        elif weight - delta >= MIN_SUPPORT:  # it was an edge before this load
            drop.append({"a": a, "b": b})
    buyer_rows = [{"sku": s, "buyers": buyers.get(s, 0)} for s in sorted(touched_skus)]
    writer.write("buyers", cypher.SET_BUYERS, buyer_rows)
    writer.write("co_purchased", cypher.MERGE_PAIRS, keep)
    writer.write("co_purchased_removed", cypher.DELETE_PAIRS, drop)
    writer.run("lift", cypher.UPDATE_LIFT, shoppers=matrix.shoppers)
    started = time.perf_counter()
    edges = [(a, b, float(w)) for (a, b), w in weights.items() if w >= MIN_SUPPORT]
    rank = pagerank(skus, edges)
    degree = weighted_degree(edges)
    order = ranks(rank)
    rows = [
        {"sku": s, "pagerank": rank[s], "degree": degree.get(s, 0.0), "rank": order[s]}
        for s in skus
    ]
    writer.report.seconds["pagerank"] = time.perf_counter() - started
    writer.write("influence", cypher.SET_INFLUENCE, rows)
