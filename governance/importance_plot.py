"""The global feature-importance plot of one model version (an SVG stored with the version).

Horizontal bars, the largest on top, written as SVG text directly: a handful of ``<rect>`` and
``<text>`` elements need no plotting library, and the MLflow UI and any browser show SVG like a
PNG. Drawing the same bars with matplotlib (its import aside) cost ~0.14 s of CPU per training
run, most of the tracking overhead that was not the importance itself.

>>> svg = importance_svg({"price": 0.4, "weekday": 0.1}, title="demand:v3")
>>> svg.startswith(b"<svg ") and svg.count(BAR_COLOUR.encode())
2
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape

IMPORTANCE_FILE = "importance.svg"
WIDTH = 640  # px
LABELS = 190  # px left of the bars, for the feature names
BAR, GAP = 18, 6  # px per bar and between bars
TOP, BOTTOM = 40, 40  # px for the title and for the axis label
BAR_COLOUR = "#3b6ea8"
TEXT_STYLE = "font-family:sans-serif;font-size:12px"


def importance_svg(importance: Mapping[str, float], *, title: str) -> bytes:
    """Bars of mean |contribution| per feature, in the order given (the largest first), each
    with its value; an all-zero importance draws empty bars."""
    largest = max((abs(v) for v in importance.values()), default=0.0)
    span = WIDTH - LABELS - 70  # room for the value after the longest bar
    height = TOP + len(importance) * (BAR + GAP) + BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" style="{TEXT_STYLE}">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{WIDTH / 2:g}" y="24" text-anchor="middle" font-size="14">'
        f"{escape(title)}: global feature importance</text>",
    ]
    for i, (name, value) in enumerate(importance.items()):
        y = TOP + i * (BAR + GAP)
        length = span * abs(value) / largest if largest > 0 else 0.0
        middle = y + BAR / 2 + 4
        parts += [
            f'<text x="{LABELS - 8}" y="{middle:g}" text-anchor="end">{escape(name)}</text>',
            f'<rect x="{LABELS}" y="{y}" width="{length:.1f}" height="{BAR}" '
            f'fill="{BAR_COLOUR}"><title>{escape(name)}: {value:.4g}</title></rect>',
            f'<text x="{LABELS + length + 6:.1f}" y="{middle:g}">{value:.3g}</text>',
        ]
    parts += [
        f'<line x1="{LABELS}" y1="{TOP - 4}" x2="{LABELS}" y2="{height - BOTTOM}" stroke="#444"/>',
        f'<text x="{LABELS + span / 2:g}" y="{height - 14}" text-anchor="middle">'
        "mean |contribution| (raw score units)</text>",
        "</svg>",
    ]
    return "\n".join(parts).encode()
