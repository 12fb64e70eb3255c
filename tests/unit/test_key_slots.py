"""The Redis keys that change together share a Redis Cluster hash slot (schemas/keys.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from redis.crc import key_slot

from schemas.keys import RedisKeys
from schemas.settings import Settings

KEYS = RedisKeys("shop:")
IDS = ["SKU-00042", "SKU-1", "U-123", "a:b", "x}y", "{braced}", "é-ü"]


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


@pytest.mark.parametrize("sku", IDS)
def test_a_products_keys_share_one_slot(sku: str) -> None:
    product = [
        KEYS.price(sku),
        KEYS.price_history(sku),
        KEYS.sku_features(sku),
        KEYS.neighbours(sku),
        KEYS.graph_related("ns", sku),
    ]
    assert {slot(k) for k in product} == {slot(KEYS.price(sku))}


@pytest.mark.parametrize("user", IDS)
def test_a_shoppers_keys_share_one_slot(user: str) -> None:
    assert slot(KEYS.recommendations(user)) == slot(KEYS.user_features(user))


@pytest.mark.parametrize("lineage", ["0f3a", "lineage-7"])
def test_the_price_bookkeeping_of_a_lineage_shares_one_slot(lineage: str) -> None:
    """Sequences, pending marks and what a crash left produced change in one transaction
    (flows/sinks/prices.py)."""
    bookkeeping = [
        KEYS.price_sequences(lineage),
        KEYS.price_pending(lineage),
        KEYS.price_produced(lineage),
    ]
    assert len({slot(k) for k in bookkeeping}) == 1


def test_products_spread_over_the_slots() -> None:
    """Tagging by product keeps different products apart, so a cluster shares their load."""
    slots = {slot(KEYS.price(f"SKU-{i:05d}")) for i in range(1_000)}
    assert len(slots) > 900


def test_the_prefix_refuses_braces_that_would_become_the_hash_tag() -> None:
    with pytest.raises(ValidationError, match="redis_prefix"):
        Settings(redis_prefix="{shop}:")
