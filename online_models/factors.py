"""Implicit-feedback matrix factorisation: item factors fitted in batch, shoppers folded in.

Implicit ALS (Hu, Koren and Volinsky) factorises the shoppers × items matrix of interaction
weights: each item gets a vector ``y_i`` (the rows of ``Y``), fitted in batch over the whole
history (:func:`fit_item_factors`, the ``implicit`` package). A shopper's vector is not stored:
it is solved from their current interactions when their list is built (:func:`fold_in`), so a
shopper who acted a second ago is scored on what they just did, and a shopper the batch never
saw needs no retraining. With confidences ``c_i = alpha × w_i`` of the items they touched
(``w_i`` their interaction weight) the shopper's vector is the ridge solution

    x = (YᵀY + Σ_i (c_i − 1) y_i y_iᵀ + λI)⁻¹ Σ_i c_i y_i

— the same least squares ALS solves for every shopper in training (and ``implicit``'s
``recalculate_user`` solves), one ``f × f`` system for a few items, where ``YᵀY`` is
computed once per set of factors (:class:`ItemFactors`). The items scored highest by ``Y x``
that the shopper has not touched are the factor source (:func:`factor_source`), blended
with the neighbours and the category best sellers in the discover replay
(``benchmarks/recs_replay.py --factors``; docs/recommendations.md, sixth and seventh
rounds).

>>> import numpy as np
>>> items = ItemFactors(["tea", "milk", "lemon"], np.eye(3, 2, dtype=np.float32), 0.1, 1.0)
>>> [round(float(v), 3) for v in fold_in(items, {"tea": 2.0})]
[0.952, 0.0]
>>> factor_source(items, {"tea": 2.0}, seen={"tea"}, n=2)
{'milk': 0.0, 'lemon': 0.0}
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

FACTORS = 32  # latent dimensions of an item
REGULARIZATION = 0.1  # λ of the ridge, in training and in the fold-in
ALPHA = 3.0  # confidence per unit of interaction weight
# ALS sweeps in training: from implicit's small random start, 15 left the fit (and the lists)
# depending on the start; by 50 the loss falls < 0.1 % a sweep (docs/recommendations.md,
# thirteenth round)
ITERATIONS = 50
# ALS sweeps from a start (:func:`fit_item_factors`'s ``start``, the factors of a day before):
# the items' top-10 neighbours then agree with a fit from scratch as much as two fits from
# scratch with other seeds agree with each other (docs/recommendations.md, fifteenth round)
WARM_ITERATIONS = 10
FACTOR_ITEMS = 100  # items of the factor source per shopper
RECENT_DECAY = 0.7  # a profile's i-th most recent item weighs RECENT_DECAY**i in the fold-in
SHARE_SCALE = 30.0  # ... plus this × its share of the shopper's decayed interest
WEIGHTS = {"view": 1.0, "wishlist": 1.0, "add_to_cart": 2.0, "purchase": 3.0}


@dataclass(frozen=True)
class Interactions:
    """What :func:`fit_item_factors` factorises: the shoppers × items matrix of interaction
    weights (a pair's weights added up), with the shoppers and items of its rows and columns
    in the order each first appears in the input (the same input, the same matrix, so the
    seeded fit gives the same factors). ``len`` is the number of shopper × item pairs."""

    shoppers: list[str]
    skus: list[str]
    matrix: csr_matrix  # float32, (shoppers, skus)

    @classmethod
    def of(cls, triples: Iterable[tuple[str, str, float]]) -> Interactions:
        """From ``(shopper, sku, weight)`` triples.

        >>> pairs = Interactions.of([("ann", "tea", 1.0), ("bob", "jam", 2.0), ("ann", "tea", 3.0)])
        >>> pairs.shoppers, pairs.skus, len(pairs), pairs.matrix.toarray().tolist()
        (['ann', 'bob'], ['tea', 'jam'], 2, [[4.0, 0.0], [0.0, 2.0]])
        """
        users: dict[str, int] = {}
        skus: dict[str, int] = {}
        rows, cols, weights = [], [], []
        for user, sku, weight in triples:
            rows.append(users.setdefault(user, len(users)))
            cols.append(skus.setdefault(sku, len(skus)))
            weights.append(weight)
        return cls.of_codes(list(users), list(skus), rows, cols, weights)

    @classmethod
    def of_codes(
        cls,
        shoppers: list[str],
        skus: list[str],
        rows: Sequence[int] | np.ndarray,
        cols: Sequence[int] | np.ndarray,
        weights: Sequence[float] | np.ndarray,
    ) -> Interactions:
        """From each entry's shopper and item positions in ``shoppers`` and ``skus`` and its
        weight (a pair's repeated entries are added up by the conversion to CSR)."""
        shape = (len(shoppers), len(skus))
        matrix = csr_matrix((weights, (rows, cols)), shape=shape, dtype=np.float32)
        return cls(shoppers, skus, matrix)

    @classmethod
    def in_order(
        cls,
        shoppers: Sequence[str],
        skus: Sequence[str],
        rows: np.ndarray,
        cols: np.ndarray,
        weights: np.ndarray,
    ) -> Interactions:
        """From entries already in the order they are read, whose codes index ``shoppers``
        and ``skus`` in any order: the codes are renumbered in the order each first appears,
        as :meth:`of` numbers them (names no entry holds are left out).

        >>> pairs = Interactions.in_order(
        ...     ["ann", "bob"], ["jam", "tea"], np.array([1, 0]), np.array([1, 0]), np.ones(2)
        ... )
        >>> pairs.shoppers, pairs.skus, pairs.matrix.toarray().tolist()
        (['bob', 'ann'], ['tea', 'jam'], [[1.0, 0.0], [0.0, 1.0]])
        """
        shopper_names, row_codes = _first_appearance(shoppers, rows)
        sku_names, col_codes = _first_appearance(skus, cols)
        return cls.of_codes(shopper_names, sku_names, row_codes, col_codes, weights)

    def __len__(self) -> int:
        return int(self.matrix.nnz)


def _first_appearance(names: Sequence[str], codes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The names ``codes`` hold in the order each first appears, and the codes renumbered
    to index them."""
    held, first = np.unique(codes, return_index=True)
    appearance = held[np.argsort(first, kind="stable")]
    renumbered = np.empty(len(names), dtype=np.int64)
    renumbered[appearance] = np.arange(len(appearance))
    return [names[c] for c in appearance], renumbered[codes]


@dataclass(frozen=True)
class ItemFactors:
    """Fitted item vectors (one row per sku) and what a fold-in needs from them."""

    skus: Sequence[str]
    factors: np.ndarray  # (items, FACTORS)
    regularization: float = REGULARIZATION
    alpha: float = ALPHA
    index: dict[str, int] = field(init=False)
    gram: np.ndarray = field(init=False)  # YᵀY + λI, shared by every fold-in

    def __post_init__(self) -> None:
        y = np.asarray(self.factors, dtype=np.float64)
        object.__setattr__(self, "factors", y)
        object.__setattr__(self, "index", {sku: i for i, sku in enumerate(self.skus)})
        gram = y.T @ y + self.regularization * np.eye(y.shape[1])
        object.__setattr__(self, "gram", gram)


def fold_in(items: ItemFactors, weights: Mapping[str, float]) -> np.ndarray:
    """The shopper's vector from their interaction ``weights`` per sku (unknown skus are
    left out; no known sku gives the zero vector)."""
    index = items.index
    rows = [(i, w) for s, w in weights.items() if (i := index.get(s)) is not None and w > 0]
    if not rows:
        return np.zeros(items.factors.shape[1])
    idx, touched = zip(*rows, strict=True)
    c = items.alpha * np.array(touched, dtype=np.float64)
    y = items.factors[list(idx)]
    a = items.gram + (y.T * (c - 1.0)) @ y
    return np.linalg.solve(a, y.T @ c)


def profile_weights(items: Sequence[tuple[str, float]], recent: Sequence[str]) -> dict[str, float]:
    """What the fold-in weighs a stored shopper profile by: :data:`RECENT_DECAY` ``**i``
    for the ``i``-th most recent item (the latest 1) plus :data:`SHARE_SCALE` × the item's
    share of the shopper's decayed interest. The recent items say what the shopper is after
    now, the shares what they keep coming back to.

    >>> {s: round(w, 2) for s, w in profile_weights([("tea", 0.5)], ["milk", "tea", "jam"]).items()}
    {'milk': 1.0, 'tea': 15.7, 'jam': 0.49}
    """
    out = {sku: RECENT_DECAY**i for i, sku in enumerate(recent)}
    for sku, share in items:
        out[sku] = out.get(sku, 0.0) + SHARE_SCALE * share
    return out


def factor_source(
    items: ItemFactors,
    weights: Mapping[str, float],
    seen: Collection[str],
    n: int = FACTOR_ITEMS,
) -> dict[str, float]:
    """The ``n`` unseen items the folded-in shopper scores highest, each with its score less
    the lowest of the ``n`` (non-negative, so that the blend can scale it to a distribution;
    the ``n``-th item scores 0)."""
    x = fold_in(items, weights)
    if not x.any():
        return {}
    scores = items.factors @ x
    # the seen items scored below every other, so the n best are the n best unseen:
    # partition, then sort only those (no check per item)
    index = items.index
    seen_at = [i for sku in seen if (i := index.get(sku)) is not None]
    scores[seen_at] = -np.inf
    head = min(n, len(scores) - len(seen_at))
    if head <= 0:
        return {}
    best = np.argpartition(-scores, head - 1)[:head] if head < len(scores) else np.arange(head)
    order = best[np.argsort(-scores[best], kind="stable")]
    skus = items.skus
    # as Python ints and floats: indexing numpy arrays item by item boxes a scalar each time
    top = scores[order].tolist()
    floor = top[-1]
    return {skus[i]: s - floor for i, s in zip(order.tolist(), top, strict=True)}


def fit_item_factors(
    interactions: Interactions | Sequence[tuple[str, str, float]],
    seed: int = 0,
    factors: int = FACTORS,
    start: ItemFactors | None = None,
) -> ItemFactors:
    """Item factors fitted by implicit ALS on ``interactions`` (or ``(shopper, sku, weight)``
    triples, :meth:`Interactions.of`), single-threaded and seeded: the same input gives the
    same factors.

    With ``start`` (factors fitted on an earlier part of the same interactions) its items
    begin where it left them, new items at the seeded random start, and
    :data:`WARM_ITERATIONS` sweeps replace :data:`ITERATIONS`: for a chain of fits over a
    growing history (the ranker's cut-offs) at a fifth of the sweeps. What the API serves is
    always a fit from scratch (``batch/factors.py``)."""
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    pairs = interactions
    if not isinstance(pairs, Interactions):
        pairs = Interactions.of(pairs)
    with threadpool_limits(1, "blas"):  # implicit warns of (and is slowed by) BLAS threads
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=REGULARIZATION,
            alpha=ALPHA,
            iterations=ITERATIONS if start is None else WARM_ITERATIONS,
            random_state=seed,
            calculate_training_loss=False,
            num_threads=1,
        )
        if start is not None:
            model.item_factors = _started(start, pairs.skus, factors, seed)
            # the first sweep solves the shoppers from the items: no start of their own
            model.user_factors = np.zeros((len(pairs.shoppers), factors), dtype=np.float32)
        model.fit(pairs.matrix, show_progress=False)
    return ItemFactors(list(pairs.skus), np.asarray(model.item_factors))


def _started(start: ItemFactors, skus: list[str], factors: int, seed: int) -> np.ndarray:
    """The item rows a warm fit begins from: ``start``'s vector for each item it knows, the
    small seeded random start of implicit's fit for the others."""
    rng = np.random.default_rng(seed)
    out = rng.random((len(skus), factors), dtype=np.float32) * 0.01
    known = [(i, j) for i, sku in enumerate(skus) if (j := start.index.get(sku)) is not None]
    if known and start.factors.shape[1] == factors:
        rows, from_rows = zip(*known, strict=True)
        out[list(rows)] = start.factors[list(from_rows)]
    return out


def factors_path(registry_dir: Path, prefix: str) -> Path:
    """Where the batch job publishes a shop's item factors and the API follows them: beside
    the local copies of the registered models, named by the shop's model prefix."""
    return registry_dir / f"{prefix}item-factors.npz"


def save_factors(items: ItemFactors, path: Path) -> None:
    """``items`` as an ``.npz`` (``skus``, ``factors`` as float32, ``regularization``,
    ``alpha``), written beside ``path`` and renamed over it: a reader sees the previous file
    or the new one whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with partial.open("wb") as out:
        np.savez(
            out,
            skus=np.asarray(list(items.skus), dtype=str),
            factors=items.factors.astype(np.float32),
            regularization=np.float64(items.regularization),
            alpha=np.float64(items.alpha),
        )
    os.replace(partial, path)


def load_factors(path: Path) -> ItemFactors:
    """The item factors :func:`save_factors` wrote (no pickled objects are read); ValueError
    when the file does not hold one finite vector per sku."""
    with np.load(path, allow_pickle=False) as data:
        skus = [str(s) for s in data["skus"]]
        factors = np.asarray(data["factors"], dtype=np.float64)
        regularization, alpha = float(data["regularization"]), float(data["alpha"])
    if factors.ndim != 2 or factors.shape[0] != len(skus) or not np.isfinite(factors).all():
        raise ValueError(f"{path}: {len(skus)} skus, factors of shape {factors.shape}")
    if not (regularization > 0 and alpha > 0):
        raise ValueError(f"{path}: regularization {regularization}, alpha {alpha}")
    return ItemFactors(skus, factors, regularization, alpha)
