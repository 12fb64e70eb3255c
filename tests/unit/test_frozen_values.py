"""The keyed steps emit frozen values, once per key and batch; the recovery folder's state
format guards resuming: the pure parts, without services."""

from __future__ import annotations

import pickle
import re
import sqlite3
from pathlib import Path

import pytest

from flows.keyed import KeyedState
from flows.records import SkuSignal, UserSignal
from flows.recovered import recovered_state
from flows.snapshots import (
    STATE_FORMAT,
    StateFormatMismatch,
    format_of,
    require_format,
    stamp_format,
)
from flows.steps import CategoryState, ItemNeighbours, ShopperState, coalesce_pairs
from online_models.recommender import again
from schemas.catalogue import CatalogueItem

T0 = 1_767_571_200.0
CATALOGUE = {
    sku: CatalogueItem(sku=sku, category="tea", list_price=10.0, unit_cost=5.0)
    for sku in ("A", "B")
}
CATEGORIES = {"A": "tea", "B": "tea", "C": "cake"}
FLOWS = Path(__file__).resolve().parents[2] / "flows"


def _category_batch() -> list[tuple[str, SkuSignal]]:
    views = [("A", SkuSignal("view", T0 + i)) for i in range(40)]
    sales = [("A", SkuSignal("sale", T0 + 40 + i, 1, 9.5)) for i in range(5)]
    return [*views, *sales, ("B", SkuSignal("view", T0 + 50)), ("X", SkuSignal("view", T0))]


def test_a_category_batch_emits_one_frozen_row_per_product_it_touched() -> None:
    state = CategoryState()
    (out,) = state.apply_batch(_category_batch(), CATALOGUE)
    assert [r.key for r in out.features] == ["A", "B", "X"]
    row = out.features[0]
    assert row.values == state.skus["A"].values()  # as the batch left the product
    assert row.watermark == state.skus["A"].watermark
    assert row.model_error == state.skus["A"].model_error()
    assert row.values["views_5m"] == 40
    assert row.values["units_5m"] == 5
    frozen = pickle.dumps(out)
    state.apply_batch([("A", SkuSignal("view", T0 + 60 + i)) for i in range(10)], CATALOGUE)
    assert pickle.dumps(out) == frozen  # the state moved on; what was emitted did not
    assert out.features[0].values["views_5m"] == 40 != state.skus["A"].values()["views_5m"]


def test_a_category_batch_keeps_every_price_change_and_each_products_latest_popularity() -> None:
    batch = _category_batch()
    one_by_one = CategoryState()
    outputs = [o for item in batch for o in one_by_one.apply(item, CATALOGUE)]
    (out,) = CategoryState().apply_batch(batch, CATALOGUE)
    assert out.changes == [o.change for o in outputs if o.change is not None]
    assert out.drift == [o.drift for o in outputs if o.drift is not None]
    latest = {o.sku: o.popularity for o in outputs if o.popularity is not None}
    assert dict(out.popularity) == latest
    assert latest
    assert "X" not in latest


def test_a_shopper_batch_emits_its_pairs_in_order_and_its_lists_once() -> None:
    signals = [
        UserSignal("view", T0, "s", ("A",)),
        UserSignal("add_to_cart", T0 + 1, "s", ("B",)),
        UserSignal("view", T0 + 2, "s", ("C",)),
        UserSignal("purchase", T0 + 3, "order:1", ("A", "B")),
    ]
    single = ShopperState("u")
    steps = [single.apply(s, CATEGORIES) for s in signals]
    state = ShopperState("u")
    (out,) = state.apply_batch(signals, CATEGORIES, k=2)
    assert out.pairs == [p for step in steps for p in step.pairs]
    assert coalesce_pairs([out]) == coalesce_pairs(steps)  # the co-occurrence step's messages
    assert out.features.key == "u"
    assert out.features.entity == "user"
    assert out.features.values == single.features.values()
    profile = single.profile(CATEGORIES)
    assert out.lists.user == "u"
    assert list(out.lists.again) == again(profile, 2)
    assert list(out.lists.recent) == profile.recent[:10] == ["B", "A", "C"]
    assert out.lists.seen == profile.seen
    assert list(out.lists.categories) == profile.categories
    frozen = pickle.dumps(out)
    state.apply_batch([UserSignal("view", T0 + 9, "s", ("C",))], CATEGORIES, k=2)
    assert pickle.dumps(out) == frozen
    assert state.lists(CATEGORIES, 2).recent[0] == "C" != out.lists.recent[0]


def test_the_neighbour_step_publishes_once_per_batch_what_single_messages_publish_last() -> None:
    messages = [[[("b", 1.0)], [("c", 2.0)]], [[("b", 0.5)]], [[("d", 1.0)]]]
    single = ItemNeighbours()
    last = None
    for each in messages:
        last = single.add_each(each) or last
    batched = ItemNeighbours()
    assert batched.apply_batch(messages) == [last]
    assert batched == single


def test_the_adapter_creates_the_state_from_its_key_and_resumes_it_with_its_deadline() -> None:
    now = [100.0]
    logic = KeyedState(
        ShopperState,
        lambda s, signals: s.apply_batch(signals, CATEGORIES, 10),
        idle_s=60.0,
        clock=lambda: now[0],
        when=lambda s: s.t,
    )
    late_first = [
        ("u", UserSignal("view", T0 + 5, "s", ("B",))),
        ("u", UserSignal("view", T0, "s", ("A",))),
    ]
    (out,), retained = logic.on_batch(late_first)
    assert retained is False
    assert list(out.lists.recent) == ["B", "A"]  # applied in event-time order
    snap = pickle.loads(pickle.dumps(logic.snapshot()))
    resumed = KeyedState(ShopperState, logic.apply, snap, idle_s=60.0)
    assert resumed.notify_at() == logic.notify_at()
    assert isinstance(resumed.state, ShopperState)
    assert resumed.state.history == ["B", "A"]


def test_a_fresh_folder_is_stamped_and_a_folder_of_another_format_refused(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    require_format(fresh)
    assert format_of(fresh) == STATE_FORMAT
    require_format(fresh)  # its own format: accepted

    old = tmp_path / "old"  # snapshots written before formats were stamped
    old.mkdir()
    db = sqlite3.connect(old / "part-0.sqlite3")
    db.execute("CREATE TABLE snaps (step_id TEXT, state_key TEXT, snap_epoch INT, ser_change BLOB)")
    db.execute("INSERT INTO snaps VALUES ('tillflow.shopper-state', 'u', 1, NULL)")
    db.commit()
    db.close()
    assert format_of(old) == 1
    with pytest.raises(StateFormatMismatch, match="format 1"):
        require_format(old)
    with pytest.raises(StateFormatMismatch, match="format 1"):
        recovered_state(old)

    newer = tmp_path / "newer"
    stamp_format(newer)
    (newer / "state-format").write_text(f"{STATE_FORMAT + 1}\n")
    with pytest.raises(StateFormatMismatch, match=f"format {STATE_FORMAT + 1}"):
        require_format(newer)


def test_no_flow_module_uses_a_private_bytewax_api() -> None:
    private = re.compile(r"bytewax\._|from bytewax\S* import _")
    used = [str(p.relative_to(FLOWS)) for p in FLOWS.rglob("*.py") if private.search(p.read_text())]
    assert used == []
