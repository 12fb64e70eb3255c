"""The global feature-importance plot of one model version (a PNG stored with the version).

Drawn with matplotlib's object API (``Figure``, no pyplot state), so it is safe in any process.

>>> png = importance_png({"price": 0.4, "weekday": 0.1}, title="demand:v3")
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from matplotlib.figure import Figure

IMPORTANCE_FILE = "importance.png"


def importance_png(importance: Mapping[str, float], *, title: str) -> bytes:
    """Horizontal bars of mean |contribution| per feature, the largest on top."""
    names = list(importance)[::-1]
    values = [importance[n] for n in names]
    height = 0.35 * len(names) + 1.2  # inches
    figure = Figure(figsize=(6, height), dpi=100)
    # fixed margins (inches) for the feature names, the title and the axis label: a tight
    # layout measures every text first and cost as much again as drawing the figure
    axes = figure.add_axes((0.3, 0.6 / height, 0.65, 1 - 1.0 / height))
    axes.barh(names, values, color="#3b6ea8")
    axes.set_xlabel("mean |contribution| (raw score units)")
    axes.set_title(f"{title}: global feature importance")
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
