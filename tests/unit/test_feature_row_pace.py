"""A product's feature row at most once per interval of wall time: the rows held in between
are released on a wake-up, at the input's end and after a recovery, and each product's last
row is the one a row per batch ends with."""

from __future__ import annotations

import pickle
import random
import time
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.keyed import KeyedState
from flows.records import FeatureRow, SkuSignal
from flows.steps import CategoryState, ProductsOutput, SkuState
from schemas.catalogue import CatalogueItem

T0 = 1_767_571_200.0  # event time of the first signal
CATALOGUE = {
    f"{c}{i}": CatalogueItem(sku=f"{c}{i}", category=c, list_price=10.0, unit_cost=6.0)
    for c in ("tea", "jam")
    for i in range(4)
}
Batch = list[tuple[str, list[tuple[str, SkuSignal]]]]  # (category, its signals) per key


def _batches(n: int, seed: int) -> list[Batch]:
    """Input batches of a few signals each, over the catalogue and one unknown product."""
    rng = random.Random(seed)
    skus = [*CATALOGUE, "stray"]
    batches = []
    for b in range(n):
        per_key: dict[str, list[tuple[str, SkuSignal]]] = {}
        for i in range(rng.randint(1, 6)):
            sku = rng.choice(skus)
            t = T0 + b * 3_600 + i  # hours apart: the category refits its prior meanwhile
            kind = rng.choice(["view", "view", "add_to_cart", "sale", "stock", "competitor"])
            signal = {
                "sale": SkuSignal("sale", t, rng.randint(1, 3), round(rng.uniform(8, 11), 2)),
                "stock": SkuSignal("stock", t, rng.randint(0, 50), source="s1"),
                "competitor": SkuSignal("competitor", t, price=rng.uniform(8, 12), source="c"),
            }.get(kind, SkuSignal(kind, t))
            key = f"category:{CATALOGUE[sku].category}" if sku in CATALOGUE else f"sku:{sku}"
            per_key.setdefault(key, []).append((sku, signal))
        batches.append(list(per_key.items()))
    return batches


def _category(now: list[float], every_s: float, resume: Any = None) -> KeyedState:  # type: ignore[type-arg]
    """The flow's category step (flows.dataflow) on the clock ``now``."""
    return KeyedState(
        lambda _key: CategoryState(),
        lambda state, items: state.apply_batch(items, CATALOGUE, now[0], every_s),
        resume,
        clock=lambda: now[0],
        when=lambda item: item[1].t,
        grouped=True,
        held_until=lambda state: state.rows_due(every_s),
        release=CategoryState.held_rows,
    )


def _rows(outputs: Any) -> list[FeatureRow]:
    return [row for out in outputs for row in out.features]


def _last(rows: list[FeatureRow]) -> dict[str, FeatureRow]:
    return {row.key: row for row in rows}  # in emission order: the last one stays


def _run(batches: list[Batch], every_s: float, step_s: float) -> list[FeatureRow]:
    return [row for _, row in _run_at(batches, every_s, step_s)]


def _run_at(batches: list[Batch], every_s: float, step_s: float) -> list[tuple[int, FeatureRow]]:
    """The batches ``step_s`` of wall time apart, each key woken as Bytewax wakes it (once its
    notification time has passed), then the input's end; each row with when it went out:
    ``2i`` on a wake-up before batch ``i``, ``2i + 1`` with batch ``i``."""
    now = [1_000.0]
    logics: dict[str, KeyedState] = {}  # type: ignore[type-arg]
    rows: list[tuple[int, FeatureRow]] = []
    for i, batch in enumerate(batches):
        now[0] += step_s
        for logic in logics.values():
            due = logic.notify_at()
            if due is not None and due.timestamp() <= now[0]:
                rows += [(2 * i, row) for row in _rows(logic.on_notify()[0])]
        for key, signals in batch:
            logic = logics.setdefault(key, _category(now, every_s))
            rows += [(2 * i + 1, row) for row in _rows(logic.on_batch([(key, signals)])[0])]
    for logic in logics.values():
        rows += [(2 * len(batches), row) for row in _rows(logic.on_eof()[0])]
    return rows


def test_each_products_last_row_is_the_one_a_row_per_batch_ends_with() -> None:
    batches = _batches(400, seed=3)
    every = _run(batches, every_s=0.0, step_s=0.005)
    paced = _run(batches, every_s=0.05, step_s=0.005)
    assert _last(paced) == _last(every)
    assert len(_last(every)) == len(CATALOGUE) + 1
    assert len(paced) < len(every) / 3  # a category's rows at most every tenth batch


def test_a_held_row_is_the_one_its_products_last_batch_would_have_built() -> None:
    """Rows are built only when they go out, yet each is the row of its product as of the end
    of the last batch that touched it, though the category refits its products' elasticity
    prior in the batches between (hours of event time apart)."""
    batches = _batches(400, seed=3)
    every = _run_at(batches, every_s=0.0, step_s=0.005)  # a row per product and batch
    paced = _run_at(batches, every_s=0.05, step_s=0.005)
    assert len(paced) < len(every) / 3
    for at, row in paced:
        latest = [r for when, r in every if when <= at and r.key == row.key][-1]
        assert row == latest


def test_a_row_that_a_later_one_replaces_before_it_goes_out_is_never_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = 0
    build = SkuState.feature_row

    def counted(state: SkuState, *prior: tuple[float, float]) -> FeatureRow:
        nonlocal built
        built += 1
        return build(state, *prior)

    monkeypatch.setattr(SkuState, "feature_row", counted)
    paced = _run(_batches(200, seed=4), every_s=0.05, step_s=0.005)
    assert built == len(paced)


def test_held_rows_are_released_on_a_wake_up_when_no_more_input_comes() -> None:
    now = [1_000.0]
    logic = _category(now, every_s=0.05)
    first = [("tea0", SkuSignal("view", T0))]
    assert [r.key for r in _rows(logic.on_batch([("category:tea", first)])[0])] == ["tea0"]
    assert logic.notify_at() is None  # nothing held
    now[0] += 0.01
    later = [("tea1", SkuSignal("sale", T0 + 5, 2, 9.5)), ("tea0", SkuSignal("view", T0 + 6))]
    assert _rows(logic.on_batch([("category:tea", later)])[0]) == []  # within the interval
    assert logic.notify_at().timestamp() == 1_000.05  # type: ignore[union-attr]
    now[0] = 1_000.05
    out, discard = logic.on_notify()
    state = logic.state
    assert not discard
    assert isinstance(state, CategoryState)
    assert _rows(out) == [state.skus["tea1"].feature_row(), state.skus["tea0"].feature_row()]
    assert logic.notify_at() is None


def test_held_rows_survive_a_snapshot_and_go_on_the_recovered_keys_first_wake_up() -> None:
    now = [1_000.0]
    logic = _category(now, every_s=0.05)
    logic.on_batch([("category:tea", [("tea0", SkuSignal("view", T0))])])
    now[0] += 0.01
    logic.on_batch([("category:tea", [("tea2", SkuSignal("add_to_cart", T0 + 1))])])
    resumed = _category(now, 0.05, pickle.loads(pickle.dumps(logic.snapshot())))
    now[0] += 1.0  # the restart took longer than the interval: due at once
    assert resumed.notify_at().timestamp() <= now[0]  # type: ignore[union-attr]
    assert [r.key for r in _rows(resumed.on_notify()[0])] == ["tea2"]


def test_at_the_inputs_end_every_held_row_goes_out_in_a_dataflow() -> None:
    """Run by Bytewax to the end of its input (``--once``): with an interval longer than the
    run, each category's first rows go at once and the rest only at the end."""
    batches = _batches(60, seed=8)

    def ran(every_s: float) -> list[FeatureRow]:
        flow = Dataflow("paced-rows")
        out = op.stateful_batch(
            "sku-state",
            op.input("in", flow, TestingSource([(k, (k, s)) for b in batches for k, s in b], 4)),
            lambda resume: KeyedState(
                lambda _key: CategoryState(),
                lambda state, items: state.apply_batch(items, CATALOGUE, time.time(), every_s),
                resume,
                when=lambda item: item[1].t,
                grouped=True,
                held_until=lambda state: state.rows_due(every_s),
                release=CategoryState.held_rows,
            ),
        )
        got: list[tuple[str, ProductsOutput]] = []
        op.output("out", out, TestingSink(got))
        run_main(flow)
        return _rows(out for _, out in got)

    every, paced = ran(0.0), ran(3_600.0)
    assert _last(paced) == _last(every)
    assert len(paced) < len(every)
