"""Product influence over the co-purchase graph: weighted PageRank and weighted degree.

Neo4j Community has no Graph Data Science library, so PageRank runs here (power iteration
on the sparse, symmetric co-purchase matrix) and is written back to the Product nodes.

>>> scores = pagerank(["a", "b", "c"], [("a", "b", 2.0), ("a", "c", 2.0)])
>>> max(scores, key=scores.__getitem__)
'a'
>>> round(sum(scores.values()), 6)
1.0
>>> weighted_degree([("a", "b", 2.0), ("a", "c", 1.0)])
{'a': 3.0, 'b': 2.0, 'c': 1.0}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

DAMPING = 0.85
TOLERANCE = 1e-10
MAX_ITERATIONS = 200

Edge = tuple[str, str, float]  # undirected, weighted


def pagerank(
    nodes: Sequence[str], edges: Sequence[Edge], damping: float = DAMPING
) -> dict[str, float]:
    """PageRank of every node over undirected weighted ``edges``; sums to 1.

    A node without edges (dangling) spreads its rank evenly, as in the standard formulation.
    """
    n = len(nodes)
    if n == 0:
        return {}
    index = {s: i for i, s in enumerate(nodes)}
    rows = [index[a] for a, _, _ in edges] + [index[b] for _, b, _ in edges]
    cols = [index[b] for _, b, _ in edges] + [index[a] for a, _, _ in edges]
    weights = [w for *_, w in edges] * 2
    adjacency = sp.csr_matrix((weights, (rows, cols)), shape=(n, n), dtype=np.float64)
    out_weight = np.asarray(adjacency.sum(axis=1)).ravel()
    dangling = out_weight == 0
    inverse = np.divide(1.0, out_weight, out=np.zeros(n), where=~dangling)
    transition = sp.diags(inverse) @ adjacency  # row-stochastic where not dangling
    rank = np.full(n, 1.0 / n)
    for _ in range(MAX_ITERATIONS):
        spread = rank[dangling].sum() / n
        new = (1 - damping) / n + damping * (transition.T @ rank + spread)
        if np.abs(new - rank).sum() < TOLERANCE:
            rank = new
            break
        rank = new
    rank = rank / rank.sum()
    return {s: float(rank[i]) for s, i in index.items()}


def weighted_degree(edges: Sequence[Edge]) -> dict[str, float]:
    """Sum of edge weights per node."""
    degree: dict[str, float] = {}
    for a, b, w in edges:
        degree[a] = degree.get(a, 0.0) + w
        degree[b] = degree.get(b, 0.0) + w
    return degree


def ranks(scores: dict[str, float]) -> dict[str, int]:
    """1 for the highest score, ties broken by key.

    >>> ranks({"a": 0.2, "b": 0.5, "c": 0.2})
    {'b': 1, 'a': 2, 'c': 3}
    """
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return {s: i for i, (s, _) in enumerate(ordered, start=1)}
