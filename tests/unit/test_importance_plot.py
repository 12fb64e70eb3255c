"""The importance plot is a well-formed SVG whose bars follow the importance."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from governance.importance_plot import BAR_COLOUR, importance_svg

SVG = "{http://www.w3.org/2000/svg}"


def _bars(svg: bytes) -> list[tuple[str, float, float]]:
    """(title, y, width) of each bar, top to bottom."""
    root = ET.fromstring(svg)
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("fill") == BAR_COLOUR]
    return [
        (str(r.findtext(f"{SVG}title")), float(r.get("y", "nan")), float(r.get("width", "nan")))
        for r in bars
    ]


def test_one_bar_per_feature_largest_on_top_and_lengths_proportional() -> None:
    importance = {"price": 0.5, "units_24h": 0.25, "weekday": 0.05}
    bars = _bars(importance_svg(importance, title="demand:v3"))
    assert [t.split(":")[0] for t, _, _ in bars] == list(importance)
    assert [y for _, y, _ in bars] == sorted(y for _, y, _ in bars)
    widths = [w for _, _, w in bars]
    assert widths[1] / widths[0] == pytest.approx(0.5, abs=0.01)
    assert widths[2] / widths[0] == pytest.approx(0.1, abs=0.01)


def test_names_are_escaped_and_the_title_shown() -> None:
    svg = importance_svg({"a<b & c": 1.0}, title="demand:v<1>")
    root = ET.fromstring(svg)  # well-formed despite the markup characters
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "a<b & c" in texts
    assert "demand:v<1>: global feature importance" in texts


def test_an_all_zero_importance_draws_empty_bars() -> None:
    bars = _bars(importance_svg({"price": 0.0, "weekday": 0.0}, title="demand"))
    assert [w for _, _, w in bars] == [0.0, 0.0]
