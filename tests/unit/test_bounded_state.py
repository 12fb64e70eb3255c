"""Bounded keyed state, products missing from the catalogue, the catalogue file and Redis's
persistence options: the pure parts, without services."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from flows.catalogue import read_catalogue_file, write_catalogue_file
from flows.keyed import KeyedSnapshot, KeyedState
from flows.records import SkuSignal, UserSignal
from flows.steps import ShopperState, SkuState, new_sku_state
from infra.stack.redis import server_args
from schemas.catalogue import CatalogueItem
from schemas.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "docker-compose.yml"
CATALOGUE = {"SKU-1": CatalogueItem(sku="SKU-1", category="tea", list_price=10.0, unit_cost=5.0)}


def _shopper_logic(
    idle_s: float, now: list[float], resume: KeyedSnapshot | None = None
) -> KeyedState:  # type: ignore[type-arg]
    return KeyedState(
        ShopperState,
        lambda s, signals: s.apply_batch(signals, {"SKU-1": "tea"}, 10),
        resume,
        idle_s=idle_s,
        clock=lambda: now[0],
    )


def test_keyed_state_is_created_from_its_key_and_dropped_an_idle_time_after_its_last_value() -> (
    None
):
    now = [1_000.0]
    logic = _shopper_logic(60.0, now)
    out = logic.on_batch([("U-1", UserSignal("view", 1_000.0, "s-1", ("SKU-1",)))])
    assert [o.features.key for o in out[0]] == ["U-1"]
    assert out[1] is False  # retained
    now[0] = 1_030.0
    logic.on_batch([("U-1", UserSignal("view", 1_030.0, "s-1", ("SKU-1",)))])
    assert logic.notify_at() == datetime.fromtimestamp(1_090.0, UTC)  # the deadline moved
    now[0] = 1_089.0  # woken before its deadline (for output it held): kept
    assert logic.on_notify() == ((), False)
    now[0] = 1_090.0
    assert logic.on_notify() == ((), True)  # discarded


def test_a_resumed_key_keeps_its_state_and_its_deadline() -> None:
    now = [1_000.0]
    logic = _shopper_logic(60.0, now)
    logic.on_batch([("U-1", UserSignal("view", 1_000.0, "s-1", ("SKU-1",)))])
    snap = pickle.loads(pickle.dumps(logic.snapshot()))
    now[0] = 5_000.0
    resumed = _shopper_logic(60.0, now, snap)
    assert resumed.notify_at() == datetime.fromtimestamp(1_060.0, UTC)  # already due
    assert isinstance(resumed.state, ShopperState)
    assert resumed.state.user_id == "U-1"
    assert resumed.state.features.recent_items(1) == ["SKU-1"]


@pytest.mark.parametrize(
    ("sku", "priced", "listed"),
    [("SKU-1", True, True), ("SKU-unknown", False, False)],
)
def test_only_catalogue_products_are_priced_and_listed(
    sku: str, priced: bool, listed: bool
) -> None:
    state: SkuState = new_sku_state(sku, CATALOGUE)
    outputs = [state.apply(SkuSignal("view", 1_000.0 + i)) for i in range(30)]
    assert (state.pricer is not None) is priced
    assert any(o.popularity is not None for o in outputs) is listed
    assert all(o.sku == sku for o in outputs)
    row = state.feature_row()  # features either way
    assert (row.key, row.values["views_5m"]) == (sku, 30)
    assert ("elasticity" in row.values) is priced


def test_products_missing_from_the_catalogue_never_become_recommendation_candidates() -> None:
    shopper = ShopperState("U-1")
    categories = {"SKU-1": "tea", "SKU-2": "tea"}
    shopper.apply(UserSignal("view", 1.0, "s", ("SKU-1",)), categories)
    to_unknown = shopper.apply(UserSignal("view", 2.0, "s", ("SKU-unknown",)), categories)
    assert to_unknown.pairs == []
    assert "SKU-unknown" not in dict(shopper.interest.top())
    to_known = shopper.apply(UserSignal("view", 3.0, "s", ("SKU-2",)), categories)
    # the unknown product never entered the history: SKU-2 pairs with SKU-1 past it
    assert {k for k, _ in to_known.pairs} == {"SKU-1", "SKU-2"}
    assert all(n != "SKU-unknown" for _, (_, counts) in to_known.pairs for n, _ in counts)


def test_the_catalogue_file_is_merged_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "catalogue" / "catalogue.jsonl"
    assert read_catalogue_file(path) == {}
    first = CatalogueItem(sku="A", category="tea", list_price=4.0, unit_cost=2.0)
    second = CatalogueItem(sku="B", category="tea", list_price=6.0, unit_cost=3.0)
    assert write_catalogue_file(path, [first]) == 1
    changed = first.model_copy(update={"list_price": 5.0})
    assert write_catalogue_file(path, [second, changed]) == 2
    assert read_catalogue_file(path) == {"A": changed, "B": second}
    assert [p.name for p in path.parent.iterdir()] == ["catalogue.jsonl"]  # no partial file


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_redis_persists_and_caps_memory_in_the_launcher_and_in_compose() -> None:
    settings = Settings(redis_maxmemory="256mb", redis_maxmemory_policy="noeviction")
    args = server_args(settings, Path("/tmp/redis"))
    assert _option(args, "--appendonly") == "yes"
    assert _option(args, "--appendfsync") == "everysec"
    assert _option(args, "--maxmemory") == "256mb"
    assert _option(args, "--maxmemory-policy") == "noeviction"
    command = yaml.safe_load(COMPOSE.read_text())["services"]["redis"]["command"]
    defaults = server_args(Settings(), Path("/data"))
    for name in ("--appendonly", "--appendfsync", "--maxmemory", "--maxmemory-policy"):
        assert _option(command, name) == _option(defaults, name)


def test_idle_ttls_are_whole_seconds_of_at_least_one() -> None:
    settings = Settings(shopper_idle_s=0.001, product_idle_s=90.5)
    assert settings.shopper_ttl_s == 1
    assert settings.product_ttl_s == 91
