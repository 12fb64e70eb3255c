"""Interaction logs, the leave-last-out split and the two baselines of benchmarks/recs.py.

Two logs: the simulator's shop, and MovieLens-100k (GroupLens; 100,000 ratings of 1,682
films by 943 users, 1997–98) as shipped inside the ``recbole`` wheel on PyPI. A rating of 4
or 5 counts as a positive (``add_to_cart``), a lower one as a ``view``; a film's category is
its first genre.

Split, per user, in time order: users alternate between two holdouts.

- *discover*: the target is the item of the user's last positive interaction; everything
  from the user's first interaction with that item on is held out. The target is new to the
  user in what is sent.
- *again*: the target is the item of the user's last positive interaction; that interaction
  and what follows are held out. It counts only when the user had interacted with the item
  before (a repeat).

>>> log = [Interaction("u", s, float(t), k) for t, (s, k) in enumerate(
...     [("a", "view"), ("b", "view"), ("c", "view"), ("d", "view"), ("b", "add_to_cart")])]
>>> split = leave_last_out(log, min_history=1)
>>> [(h.user, h.target, h.kind) for h in split.targets], [i.sku for i in split.sent]
([('u', 'b', 'discover')], ['a'])
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

import numpy as np

from simulator.config import ShopConfig
from simulator.shop import DAY, Shop

POSITIVE = frozenset({"add_to_cart", "purchase"})
MOVIELENS = "recbole/dataset_example/ml-100k"
KNN_NEIGHBOURS = 50
K = 10


@dataclass(frozen=True, slots=True)
class Interaction:
    user: str
    sku: str
    t: float  # epoch seconds
    kind: str  # view, add_to_cart, purchase


@dataclass(frozen=True, slots=True)
class Target:
    user: str
    target: str
    kind: str  # "discover" or "again"


@dataclass(frozen=True)
class Split:
    sent: list[Interaction]  # what is replayed, in time order
    targets: list[Target]


def movielens_100k() -> tuple[list[Interaction], dict[str, str]]:
    """The MovieLens-100k ratings as interactions, and each film's first genre."""
    root = Path(str(distribution("recbole").locate_file(MOVIELENS)))
    log = []
    lines = (root / "ml-100k.inter").read_text().splitlines()[1:]
    for line in lines:
        user, item, rating, stamp = line.split("\t")
        kind = "add_to_cart" if float(rating) >= 4 else "view"
        log.append(Interaction(f"ml-{user}", f"ML-{item}", float(stamp), kind))
    categories = {}
    for line in (root / "ml-100k.item").read_text(encoding="latin-1").splitlines()[1:]:
        fields = line.split("\t")
        genre = fields[-1].split(" ")[0] if fields[-1] else "none"
        categories[f"ML-{fields[0]}"] = genre or "none"
    log.sort(key=lambda i: i.t)  # stable: a user's same-second ratings keep the file's order
    return log, categories


def simulator_log(config: ShopConfig, days: float) -> tuple[list[Interaction], dict[str, str]]:
    """The simulated shop's views, carts, wishlists and order lines for ``days``."""
    shop = Shop(config)
    log = []
    for e in shop.events(until=shop.start + days * DAY):
        p = e.payload
        if e.topic.name == "user-activity" and p["action"] in ("view", "add_to_cart", "wishlist"):
            log.append(Interaction(p["user_id"], p["sku"], e.time, p["action"]))
        elif e.topic.name == "orders":
            for line in p["lines"]:
                log.append(Interaction(p["user_id"], line["sku"], e.time, "purchase"))
    return log, {c.sku: c.category for c in shop.catalogue()}


def leave_last_out(log: Iterable[Interaction], min_history: int = 3, parity: int = 0) -> Split:
    """Hold out each user's target as described above (users alternate between holdouts;
    ``parity=1`` swaps the halves: the other half of the users are the discover users)."""
    by_user: dict[str, list[Interaction]] = defaultdict(list)
    for i in log:
        by_user[i.user].append(i)
    keep: dict[str, int] = {}
    targets = []
    for n, (user, events) in enumerate(sorted(by_user.items())):
        last = max((j for j, e in enumerate(events) if e.kind in POSITIVE), default=None)
        keep[user] = len(events)
        if last is None:
            continue
        target = events[last].sku
        if n % 2 == parity:
            cut = next(j for j, e in enumerate(events) if e.sku == target)
            kind = "discover"
        else:
            cut = last
            if not any(e.sku == target for e in events[:cut]):
                keep[user] = cut  # not a repeat: the user's rest is still held out
                continue
            kind = "again"
        if cut < min_history:
            continue
        keep[user] = cut
        targets.append(Target(user, target, kind))
    sent = [i for user, events in by_user.items() for i in events[: keep[user]]]
    sent.sort(key=lambda i: i.t)
    return Split(sent, targets)


def validation_split(log: Iterable[Interaction], parity: int = 0) -> Split:
    """The split made again inside what :func:`leave_last_out` sends: each discover user's
    target is their last positive before the benchmark's target, which is not sent. Settings
    chosen on it are not chosen on the targets the benchmark scores.

    >>> log = [Interaction("u", s, float(t), "add_to_cart") for t, s in enumerate("abcdef")]
    >>> split = validation_split(log)
    >>> [(h.target, h.kind) for h in split.targets], [i.sku for i in split.sent]
    ([('e', 'discover')], ['a', 'b', 'c', 'd'])
    """
    return leave_last_out(leave_last_out(log).sent, parity=parity)


def seen_by_user(sent: Iterable[Interaction]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for i in sent:
        seen[i.user].add(i.sku)
    return seen


def popularity_unseen(sent: list[Interaction], users: Iterable[str]) -> dict[str, list[str]]:
    """Per user: the most interacted-with items overall that the user has not touched."""
    counts = Counter(i.sku for i in sent)
    ranked = [sku for sku, _ in counts.most_common()]
    seen = seen_by_user(sent)
    out = {}
    for user in users:
        mine = seen.get(user, set())
        out[user] = [s for s in ranked[: K + len(mine)] if s not in mine][:K]
    return out


def item_knn(sent: list[Interaction], users: Iterable[str]) -> dict[str, list[str]]:
    """Per user: batch item-kNN over everything sent (binary user–item matrix, cosine
    similarity, :data:`KNN_NEIGHBOURS` neighbours per item, scores summed over the user's
    items), the user's own items left out."""
    seen = seen_by_user(sent)
    items = sorted({sku for mine in seen.values() for sku in mine})
    index = {sku: j for j, sku in enumerate(items)}
    rows = sorted(seen)
    x = np.zeros((len(rows), len(items)), dtype=np.float32)
    for r, user in enumerate(rows):
        x[r, [index[s] for s in seen[user]]] = 1.0
    co = x.T @ x
    norms = np.sqrt(np.diag(co)).clip(min=1.0)
    sim = co / norms[:, None] / norms[None, :]
    np.fill_diagonal(sim, 0.0)
    if len(items) > KNN_NEIGHBOURS:  # keep each item's strongest neighbours
        weakest = np.argpartition(-sim, KNN_NEIGHBOURS, axis=1)[:, KNN_NEIGHBOURS:]
        np.put_along_axis(sim, weakest, 0.0, axis=1)
    out = {}
    for user in users:
        mine = [index[s] for s in seen.get(user, ())]
        scores = sim[mine].sum(axis=0) if mine else np.zeros(len(items))
        scores[mine] = -np.inf
        best = np.argsort(-scores, kind="stable")[:K]
        out[user] = [items[j] for j in best if scores[j] > 0]
    return out


def hit_and_ndcg(ranked: list[str], target: str, k: int = K) -> tuple[float, float]:
    """HR@k and NDCG@k of one list against one held-out item.

    >>> hit_and_ndcg(["a", "b"], "b")
    (1.0, 0.63093)
    """
    for i, sku in enumerate(ranked[:k]):
        if sku == target:
            return 1.0, round(1.0 / math.log2(i + 2), 5)
    return 0.0, 0.0
