"""The lake's point-in-time recomputation agrees with the flows' own feature code, and a
feature computed differently online shows up as skew on that feature only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.features import SkuFeatures
from flows.records import SkuSignal
from governance.skew import FEATURES, compare, recompute

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _events(seed: int, n: int = 600) -> pd.DataFrame:
    """Views, carts and sales of three products over two days, arriving a little out of order."""
    rng = np.random.default_rng(seed)
    t = np.sort(START + rng.uniform(0, 2 * 86_400, n)) + rng.uniform(-120, 0, n)
    kind = rng.choice(["view", "view", "view", "add_to_cart", "sale"], n)
    return pd.DataFrame(
        {
            "sku": rng.choice(["a", "b", "c"], n),
            "t": t,
            "kind": kind,
            "quantity": np.where(kind == "sale", rng.integers(1, 5, n), 0),
            "price": np.where(kind == "sale", rng.choice([4.99, 5.49], n), 0.0),
        }
    )


def _online(events: pd.DataFrame, features: type[SkuFeatures] = SkuFeatures) -> pd.DataFrame:
    """What the flows would serve: each product's state after its events in arrival order."""
    states: dict[str, SkuFeatures] = {}
    for e in events.itertuples():
        signal = SkuSignal(
            kind="sale" if e.kind == "sale" else e.kind,
            t=e.t,
            quantity=int(e.quantity),
            price=float(e.price),
        )
        states.setdefault(e.sku, features()).apply(signal)
    rows = []
    for sku, state in states.items():
        values = state.values(published_price=5.0)
        rows.extend((sku, f, float(values[f])) for f in FEATURES)
        rows.append((sku, "watermark", state.watermark))
    return pd.DataFrame(rows, columns=["sku", "feature", "value"])


def _split(online: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    marks = online[online["feature"] == "watermark"]
    return online[online["feature"] != "watermark"], dict(
        zip(marks["sku"], marks["value"], strict=True)
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recomputed_features_match_the_flows_features(seed: int) -> None:
    events = _events(seed)
    online, as_of = _split(_online(events))
    offline = recompute(events, as_of)
    report = compare(online, offline, rel_tolerance=1e-6)
    assert {s.feature for s in report} == set(FEATURES)
    assert all(s.compared == 3 for s in report)
    assert [s.feature for s in report if s.mismatches] == []


class LineCountingFeatures(SkuFeatures):
    """An online variant that counts order lines instead of units sold: an injected skew."""

    def apply(self, s: SkuSignal) -> None:
        if s.kind == "sale":
            s = SkuSignal(kind="sale", t=s.t, quantity=1, price=s.price * s.quantity)
        super().apply(s)


def test_an_injected_skew_is_reported_on_the_features_it_touches() -> None:
    events = _events(4)
    online, as_of = _split(_online(events, LineCountingFeatures))
    report = {s.feature: s for s in compare(online, recompute(events, as_of), 1e-6)}
    skewed = {f for f, s in report.items() if s.mismatches}
    # units (and so conversion) differ; revenue stays right: price × 1 = the line's revenue
    assert {"units_24h", "conversion_24h"} <= skewed
    assert report["units_24h"].mismatch_rate == 1.0
    assert not any(f.startswith(("views_", "add_to_carts_", "revenue_")) for f in skewed)
