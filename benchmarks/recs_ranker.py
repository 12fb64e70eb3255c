"""The recs benchmark's ranker phase: lists served through the API's path, the ranker trained
on what shoppers chose from them, and the ranked discover list scored.

While the log is replayed (``benchmarks/recs.py``), it pauses at :data:`SERVE_AT` of the sent
events; once the flow has processed everything before a pause, every shopper who acts in
the next part of the log is served a discover list as the API serves one with a ranker
loaded (:func:`served`: ``api.recommendations.read_shopper`` with the shopper's features and
the sources' signals, ``pool``, ``read_items``, ``ranker_rows``), :data:`POOL` candidates
deep. Each list is one training query: the items shown that the shopper then carts or buys
in the next part are its positives (:func:`taken`, as the batch training labels served
lists), the items shown and not taken its real negatives, viewed or not (:func:`labelled`).
The project's ranker (``batch.ranker.estimator``, LightGBM, exported to ONNX by
``batch.onnx_export.export`` and loaded by ``api.onnx_models.load``) is fitted on
the lists of every pause but the last, and the batch training's order gate
(``batch.ranker.order_gate``) compares it with the candidates' own order on the last pause's
lists (later than any it was trained on; their first ``depth_for(10)`` candidates, as the API
ranks them: :func:`held_out`): the API serves it only if it passes. The held-out users'
discover lists are ranked by ``api.recommendations.ranked``, the API's re-ranking, from the
``depth_for(10)`` candidates the API ranks for a list of 10 (:func:`ranked_lists`) and from
:data:`POOL`, whether it passed or not (``Ranked.passed`` says).

The replayed shoppers do not see these lists: what they did next was in the log already.
"Taken" therefore means "carted or bought next, whether shown or not", which is what the
held-out items are too (a positive the shopper had not touched); there is no position bias
to learn. The held-out items themselves are never sent, so neither the training nor the
gate sees them.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import redis.asyncio as aioredis

from api.catalogue import read_categories
from api.discover import GraphReads
from api.features import FeatureReads
from api.onnx_models import LoadedModel, load
from api.recommendations import (
    POPULAR_DEPTH,
    Item,
    ListedItem,
    Shopper,
    depth_for,
    pool,
    ranked,
    ranker_rows,
    read_items,
    read_popular,
    read_shopper,
)
from batch.onnx_export import export
from batch.ranker import Gate, estimator, order_gate
from batch.ranker_data import TAKEN, RankingSet
from benchmarks.recs_data import POSITIVE, Interaction
from online_models.factors import factors_path
from online_models.ranking import RANKER_FEATURES
from registry.copies import MODEL_FILE
from registry.store import ModelVersion
from schemas.settings import Settings

SERVE_AT = (0.5, 0.6, 0.7, 0.8, 0.9)  # where the replay pauses to serve lists (share of events)
POOL = 100  # candidates per served list (the deepest the API builds)
K = 10
SERVED_DEPTH = depth_for(K)  # candidates the API ranks for a list of 10


@dataclass(frozen=True)
class Served:
    """One list served: the candidates shown, in order, and their ranker rows."""

    user: str
    skus: list[str]
    rows: np.ndarray[Any, Any]


@dataclass(frozen=True)
class Listed:
    """One shopper's discover candidates as the API reads them with a ranker loaded."""

    shopper: Shopper
    candidates: list[ListedItem]
    items: dict[str, Item]


async def listed(s: Settings, users: list[str], depth: int) -> list[Listed]:
    """The discover candidates (``depth`` deep) of each of ``users`` with a stored shopper:
    ``read_shopper`` with the features and the sources' signals (and the item factors
    published by then: :func:`factor_reads`), ``pool``, ``read_items``."""
    client = aioredis.Redis.from_url(s.redis_url)
    reads = FeatureReads.create(s)
    graph = factor_reads(s)
    try:
        popular = await read_popular(client, s.keys, POPULAR_DEPTH)
        categories = await read_categories(client, s.keys)
        out = []
        for user in users:
            shopper = await read_shopper(
                client, s.keys, reads, user, True, depth, popular.counts, graph
            )
            if shopper.known:
                candidates = pool(shopper, "discover", popular.top, depth)
                skus = [c.sku for c in candidates]
                items = await read_items(client, s.keys, reads, skus, categories)
                out.append(Listed(shopper, candidates, items))
        return out
    finally:
        await client.aclose()


def factor_reads(s: Settings) -> GraphReads:
    """Reads that follow the item factors published for ``s`` as the API does (nothing kept
    between reads: the benchmark writes the graph while it reads)."""
    return GraphReads.kept_for(0.0, factors_path(s.registry_dir, s.mlflow_model_prefix))


async def served(s: Settings, users: list[str]) -> list[Served]:
    """A discover list of :data:`POOL` candidates for each of ``users`` who has a stored
    shopper, with the rows the API's ranker would score."""
    return [
        Served(one.shopper.user_id, [c.sku for c in one.candidates], ranker_rows(*_parts(one)))
        for one in await listed(s, users, POOL)
    ]


def _parts(one: Listed) -> tuple[Shopper, list[ListedItem], dict[str, Item]]:
    return one.shopper, one.candidates, one.items


def next_users(part: list[Interaction]) -> list[str]:
    """The shoppers who act in ``part``, in order of their first act."""
    return list(dict.fromkeys(i.user for i in part))


def taken(part: list[Interaction]) -> dict[str, set[str]]:
    """Per shopper, the items they carted or bought in ``part`` (``batch.ranker_data.TAKEN``,
    the batch training's positives; a view is not one)."""
    out: dict[str, set[str]] = {}
    for i in part:
        if i.kind in TAKEN:
            out.setdefault(i.user, set()).add(i.sku)
    return out


def labelled(lists: list[Served], part: list[Interaction]) -> tuple[np.ndarray, np.ndarray, int]:
    """Training rows and labels: every list with an item its shopper took in ``part`` (1),
    each other item shown a real negative (0); and how many lists that was."""
    chosen = taken(part)
    xs, ys, kept = [], [], 0
    for one in lists:
        wanted = chosen.get(one.user, set())
        labels = np.array([1 if sku in wanted else 0 for sku in one.skus], dtype=np.int32)
        if labels.any():
            xs.append(one.rows)
            ys.append(labels)
            kept += 1
    if not xs:
        return np.zeros((0, len(RANKER_FEATURES)), np.float32), np.zeros(0, np.int32), 0
    return np.concatenate(xs), np.concatenate(ys), kept


def trained(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], workdir: Path) -> LoadedModel:
    """The project's ranker fitted on ``x``, ``y``, exported to ONNX and loaded as the API
    loads a registered version."""
    model = estimator()
    model.fit(x, y)
    exported = export(model, x[: min(len(x), 2_000)], latency_rows=1)
    folder = Path(tempfile.mkdtemp(prefix="ranker-", dir=workdir))
    (folder / MODEL_FILE).write_bytes(exported.onnx)
    version = ModelVersion("ranker", 0, folder, {"features": list(RANKER_FEATURES)})
    return load(version)


async def ranked_lists(
    s: Settings, users: list[str], model: LoadedModel, depth: int
) -> dict[str, list[str]]:
    """Each user's discover top-:data:`K` as the API serves it with ``model`` loaded, ranked
    from ``depth`` candidates."""
    out = {}
    for one in await listed(s, users, depth):
        answer = ranked(*_parts(one), model, K, name="discover")
        out[one.shopper.user_id] = [i.sku for i in answer.items]
    return out


class Ranked(NamedTuple):
    """The ranker phase's outcome: the ranked discover top-10 per user, by pool depth, and
    whether the order gate let the API serve the ranker."""

    lists: dict[int, dict[str, list[str]]]
    run: dict[str, Any]
    passed: bool = True


def held_out(lists: list[Served], part: list[Interaction], depth: int = SERVED_DEPTH) -> RankingSet:
    """The order gate's holdout: each list's first ``depth`` candidates (what the API ranks)
    with the items its shopper took in ``part``; lists without a taken one are left out."""
    chosen = taken(part)
    rows: list[np.ndarray[Any, Any]] = []
    labels: list[int] = []
    groups: list[int] = []
    skus: list[str] = []
    positives: list[set[str]] = []
    for one in lists:
        shown = one.skus[:depth]
        wanted = chosen.get(one.user, set()) & set(shown)
        if wanted:
            rows.append(one.rows[:depth])
            labels.extend(int(sku in wanted) for sku in shown)
            groups.extend([len(positives)] * len(shown))
            skus.extend(shown)
            positives.append(wanted)
    features = np.concatenate(rows) if rows else np.zeros((0, len(RANKER_FEATURES)), np.float32)
    return RankingSet(features, np.array(labels), np.array(groups), skus, positives, [])


def gate_of(model: LoadedModel, holdout: RankingSet) -> Gate:
    """The batch training's order gate on ``holdout``, with the ONNX scores the API ranks by."""
    scores = model.predict(holdout.features) if holdout.queries else np.zeros(0)
    return order_gate(holdout, np.asarray(scores))


def rank_phase(
    s: Settings,
    shown: list[tuple[list[Served], list[Interaction]]],
    targets: dict[str, str],
    workdir: Path,
    dump: Path | None = None,
) -> Ranked:
    """Train the ranker on the lists served at every pause but the last (what was chosen
    next against what was shown and not chosen), gate it on the last pause's lists as the
    batch training does, and rank the ``targets``' users' discover lists as the API does;
    ``dump`` receives the training rows and the targets' candidate rows (``.npz``) for
    analysis."""
    if len(shown) < 2:
        return Ranked({}, {"skipped": "one pause: no later lists to gate the ranker on"}, False)
    *training, (last, after_last) = shown
    parts = [labelled(lists, after) for lists, after in training]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    holdout = held_out(last, after_last)
    run: dict[str, Any] = {
        "served_lists": sum(len(lists) for lists, _ in shown),
        "training_lists": sum(p[2] for p in parts),
        "training_rows": len(y),
        "training_positives": int(y.sum()),
        "gate_lists": holdout.queries,
    }
    if dump is not None:
        dump_rows(dump, s, shown, targets)
    if not 0 < y.sum() < len(y):
        return Ranked({}, run | {"skipped": "no list with both chosen and unchosen items"}, False)
    started = time.process_time()
    model = trained(x, y, workdir)
    run["fit_cpu_s"] = round(time.process_time() - started, 2)
    gate = gate_of(model, holdout)
    run |= {"order_gate": gate.reason, **gate.metrics}
    users = list(targets)
    lists = {d: asyncio.run(ranked_lists(s, users, model, d)) for d in (SERVED_DEPTH, POOL)}
    return Ranked(lists, run, gate.passed)


def dump_rows(
    folder: Path,
    s: Settings,
    shown: list[tuple[list[Served], list[Interaction]]],
    targets: dict[str, str],
) -> None:
    """The served lists' rows with what each shopper touched next (``y``: any interaction;
    ``order``: the item's place among the distinct items the shopper touched next, -1 when
    not touched; ``positive``: carted or bought, the ranker's label; ``pause``: the pause
    that served the list), and the targets' candidate rows with their held-out item, as
    ``served.npz`` and ``targets.npz``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[np.ndarray[Any, Any]] = []
    order: list[list[int]] = []
    positive: list[list[bool]] = []
    query: list[np.ndarray[Any, Any]] = []
    pause: list[np.ndarray[Any, Any]] = []
    for n, (lists, after) in enumerate(shown):
        touched: dict[str, dict[str, int]] = {}
        kept: set[tuple[str, str]] = set()
        for i in after:
            mine = touched.setdefault(i.user, {})
            mine.setdefault(i.sku, len(mine))
            if i.kind in POSITIVE:
                kept.add((i.user, i.sku))
        for one in lists:
            rows.append(one.rows)
            places = touched.get(one.user, {})
            order.append([places.get(sku, -1) for sku in one.skus])
            positive.append([(one.user, sku) in kept for sku in one.skus])
            query.append(np.full(len(one.skus), len(query)))
            pause.append(np.full(len(one.skus), n))
    np.savez(
        folder / "served.npz",
        x=np.concatenate(rows),
        y=np.concatenate(order) >= 0,
        order=np.concatenate(order),
        positive=np.concatenate(positive),
        q=np.concatenate(query),
        pause=np.concatenate(pause),
    )
    found = asyncio.run(served(s, list(targets)))
    np.savez(
        folder / "targets.npz",
        x=np.concatenate([one.rows for one in found]),
        y=np.concatenate([[sku == targets[one.user] for sku in one.skus] for one in found]),
        q=np.concatenate([np.full(len(one.skus), n) for n, one in enumerate(found)]),
        users=np.array(list(targets)),
    )
