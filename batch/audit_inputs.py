"""What the fairness audit looks at, gathered from the lake, the registry and Redis.

- demand: the champion demand model's forecasts for the holdout days of gold ``sku_daily``
  (the rows training evaluates on, through Feast), with each product's category; for the
  store view each (sku, day) forecast is split over the stores by the store's share of that
  product's units in gold ``orders_enriched`` (the model forecasts a product's total over all
  stores), and compared with what each store sold that day;
- recommendations: the champion ranker's top 10 for every shopper who buys in the last day of
  silver (the ranker's own test set), with the shopper's segment (``new``: no purchase before)
  and main store, whether one of the 10 was bought, and each slot's category and brand;
- prices: every change in Redis' price history of each catalogue product, and the order lines
  of gold ``orders_enriched`` with the list price, for the price index by store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from batch import demand
from batch.lake import read_all
from batch.onnx_export import onnx_scores, session
from batch.ranker import HORIZON, K
from batch.ranker_data import load_events, ranking_set
from batch.silver import connect
from flows.catalogue import load_catalogue
from infra.clients import redis_client
from online_models.ranking import RANKER_FEATURES
from registry.store import ModelRegistry, ModelVersion
from schemas.lake import ORDERS_ENRICHED, gold_path
from schemas.settings import Settings


@dataclass(frozen=True)
class AuditInputs:
    demand_rows: pd.DataFrame  # sku, category, actual, predicted
    demand_by_store: pd.DataFrame  # store, actual, predicted
    slots: pd.DataFrame  # one row per recommended slot: sku, category, brand
    shoppers: pd.DataFrame  # one row per shopper: hit, segment, store
    catalogue: pd.DataFrame  # sku, category, brand, list_price
    changes: pd.DataFrame  # sku, category, relative_change
    lines: pd.DataFrame  # store, category, unit_price, list_price, quantity
    models: dict[str, str]


def _scores(version: ModelVersion | None, features: np.ndarray, fallback: np.ndarray) -> Any:
    if version is None or version.metadata.get("features") is None:
        return fallback
    onnx = version.model_path.read_bytes()
    return onnx_scores(session(onnx), str(version.metadata.get("onnx_output")), features)


def demand_inputs(
    settings: Settings, catalogue: pd.DataFrame, version: ModelVersion | None, orders: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    prices = dict(zip(catalogue["sku"], catalogue["list_price"], strict=True))
    data = demand.training_set(settings, prices)
    test = demand.holdout_rows(data.days)
    predicted = _scores(version, data.features[test], data.naive[test])
    rows = pd.DataFrame(
        {
            "sku": data.skus[test] if data.skus is not None else "",
            "date": data.days[test],
            "actual": data.units[test],
            "predicted": np.asarray(predicted, dtype=np.float64),
        }
    )
    rows["category"] = rows["sku"].map(
        dict(zip(catalogue["sku"], catalogue["category"], strict=True))
    )
    return rows, by_store(rows, orders)


def by_store(rows: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Each (sku, date) forecast split over the stores by their share of the sku's units.

    >>> rows = pd.DataFrame({"sku": ["a"], "date": ["d"], "actual": [4.0], "predicted": [6.0]})
    >>> orders = pd.DataFrame({"sku": ["a"] * 3, "date": ["x", "d", "d"],
    ...                        "store_id": ["s1", "s1", "s2"], "quantity": [2, 1, 3]})
    >>> by_store(rows, orders).values.tolist()
    [['s1', 1.0, 3.0], ['s2', 3.0, 3.0]]
    """
    units = orders.groupby(["sku", "store_id"], as_index=False)["quantity"].sum()
    units["share"] = units["quantity"] / units.groupby("sku")["quantity"].transform("sum")
    sold = orders.groupby(["sku", "date", "store_id"], as_index=False)["quantity"].sum()
    split = rows.merge(units[["sku", "store_id", "share"]], on="sku")
    split = split.merge(
        sold.rename(columns={"quantity": "sold"}), on=["sku", "date", "store_id"], how="left"
    )
    return pd.DataFrame(
        {
            "store": split["store_id"],
            "actual": split["sold"].fillna(0).astype(float),
            "predicted": split["predicted"] * split["share"],
        }
    ).reset_index(drop=True)


def recommendation_inputs(
    settings: Settings,
    catalogue: pd.DataFrame,
    version: ModelVersion | None,
    orders: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    categories = dict(zip(catalogue["sku"], catalogue["category"], strict=True))
    con = connect()
    try:
        _, last = load_events(settings.lake_dir, con)
        cutoff = last - HORIZON
        test = ranking_set(con, cutoff, HORIZON, categories)
        earlier = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT user_id FROM events WHERE kind = 'purchase' AND t <= ?",
                [cutoff.replace(tzinfo=None)],
            ).fetchall()
        }
    finally:
        con.close()
    rank = -test.features[:, RANKER_FEATURES.index("candidate_rank")]
    scores = np.asarray(_scores(version, test.features, rank))
    home = main_store(orders)
    slots, shoppers = [], []
    for query, user in enumerate(test.users):
        rows = np.flatnonzero(test.groups == query)
        top = [test.candidate_skus[i] for i in rows[np.argsort(-scores[rows], kind="stable")][:K]]
        slots.extend(top)
        shoppers.append(
            {
                "user_id": user,
                "hit": float(bool(set(top) & test.positives[query])),
                "segment": "returning" if user in earlier else "new",
                "store": home.get(user),
            }
        )
    brands = dict(zip(catalogue["sku"], catalogue["brand"], strict=True))
    shown = pd.DataFrame({"sku": slots})
    shown["category"] = shown["sku"].map(categories)
    shown["brand"] = shown["sku"].map(brands)
    return shown, pd.DataFrame(shoppers, columns=["user_id", "hit", "segment", "store"])


def main_store(orders: pd.DataFrame) -> dict[str, str]:
    """Each shopper's store: where they bought the most units (the first by name on a tie)."""
    if orders.empty:
        return {}
    units = orders.groupby(["user_id", "store_id"], as_index=False)["quantity"].sum()
    units = units.sort_values(["user_id", "quantity", "store_id"], ascending=[True, False, True])
    return dict(units.drop_duplicates("user_id")[["user_id", "store_id"]].to_numpy().tolist())


def price_changes(settings: Settings, catalogue: pd.DataFrame) -> pd.DataFrame:
    """Every change in the products' price histories (Redis), with its relative size."""
    client = redis_client(settings)
    try:
        pipe = client.pipeline(transaction=False)
        for sku in catalogue["sku"]:
            pipe.zrange(settings.keys.price_history(sku), 0, -1)
        histories = pipe.execute()
    finally:
        client.close()
    rows = []
    for sku, category, history in zip(
        catalogue["sku"], catalogue["category"], histories, strict=True
    ):
        for raw in history:
            event = orjson.loads(raw)
            before = float(event["previous_price"])
            if before > 0:
                rows.append((sku, category, float(event["price"]) / before - 1.0))
    return pd.DataFrame(rows, columns=["sku", "category", "relative_change"])


def order_lines(settings: Settings, catalogue: pd.DataFrame) -> pd.DataFrame:
    columns = ["user_id", "store_id", "sku", "date", "quantity", "unit_price"]
    table = read_all(gold_path(settings.lake_dir, ORDERS_ENRICHED), columns)
    orders = pd.DataFrame(columns=columns) if table is None else table.to_pandas()
    listed = catalogue[["sku", "category", "list_price"]]
    return orders.merge(listed, on="sku", how="left")


def gather(settings: Settings, catalogue: pa.Table) -> AuditInputs:
    items = catalogue.to_pandas()
    if "brand" not in items:  # the batch catalogue has no brand: the master data in Redis has
        brands = {sku: item.brand for sku, item in load_catalogue(settings).items()}
        items["brand"] = items["sku"].map(brands)
    registry = ModelRegistry.from_settings(settings)
    demand_version = registry.current(demand.MODEL)
    ranker_version = registry.current("ranker")
    orders = order_lines(settings, items)
    rows, stores = demand_inputs(settings, items, demand_version, orders)
    shown, shoppers = recommendation_inputs(settings, items, ranker_version, orders)
    models = {
        "demand": "none (units the day before)" if demand_version is None else demand_version.label,
        "ranker": "none (candidate order)" if ranker_version is None else ranker_version.label,
    }
    return AuditInputs(
        demand_rows=rows,
        demand_by_store=stores,
        slots=shown,
        shoppers=shoppers,
        catalogue=items,
        changes=price_changes(settings, items),
        lines=orders.rename(columns={"store_id": "store"}),
        models=models,
    )
