"""featurestore.layout writes byte for byte what Feast's own Redis online store writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

from featurestore.layout import (
    SERIALIZATION_VERSION,
    FeastLayout,
    batch_sku_layout,
    decode_value,
    encode_value,
    project_name,
    sku_layout,
    timestamp,
    user_layout,
)
from schemas.features import SKU_FEATURES, USER_FEATURES
from schemas.settings import Settings


@pytest.mark.parametrize(
    ("dtype", "value", "expected"),
    [
        ("int", 0, Value(int64_val=0)),
        ("int", 3, Value(int64_val=3)),
        ("int", 300, Value(int64_val=300)),
        ("int", -1, Value(int64_val=-1)),
        ("int", 2**40 + 7, Value(int64_val=2**40 + 7)),
        ("float", 0.0, Value(double_val=0.0)),
        ("float", -2.75, Value(double_val=-2.75)),
        ("float", 999.0, Value(double_val=999.0)),
        ("string", "", Value(string_val="")),
        ("string", "2026-01-05T10:00:00+00:00", Value(string_val="2026-01-05T10:00:00+00:00")),
        ("string", "é" * 200, Value(string_val="é" * 200)),
        ("json", ["SKU-1", "SKU-2"], Value(string_val='["SKU-1","SKU-2"]')),
        ("json", {"cat-01": 0.5}, Value(string_val=json.dumps({"cat-01": 0.5}).replace(" ", ""))),
    ],
)
def test_values_encode_as_feast_value_protos(dtype: str, value: object, expected: Value) -> None:
    assert encode_value(dtype, value) == expected.SerializeToString()


def test_integers_around_the_one_byte_table_encode_as_feast_does() -> None:
    """The integers below 128 are looked up (one varint byte), the rest encoded."""
    for n in [*range(-3, 300), 2**14 - 1, 2**14, 2**63 - 1, -(2**63)]:
        assert encode_value("int", n) == Value(int64_val=n).SerializeToString(), n
    assert encode_value("int", 127.0) == Value(int64_val=127).SerializeToString()


@pytest.mark.parametrize("entity", ["SKU-00001", "u-000042", "", "ü-1"])
def test_keys_are_feasts_redis_keys(entity: str) -> None:
    layout = FeastLayout("shop_1", "sku_features", "sku", {})
    proto = EntityKey(join_keys=["sku"], entity_values=[Value(string_val=entity)])
    assert layout.key(entity) == _redis_key("shop_1", proto, SERIALIZATION_VERSION)


def test_fields_are_murmur_hashed_and_stamped() -> None:
    layout = FeastLayout("p", "user_features", "user_id", {"session_events": "int", "x": "float"})
    t = datetime(2026, 1, 5, 10, 0, 1, 250_000, tzinfo=UTC)
    fields = layout.fields({"session_events": 4, "other": 1}, t.timestamp())
    stamp = Timestamp()
    stamp.FromDatetime(t)
    assert fields == {
        b"_ts:user_features": stamp.SerializeToString(),
        _mmh3("user_features:session_events"): Value(int64_val=4).SerializeToString(),
    }


def test_layouts_cover_exactly_the_feast_managed_features() -> None:
    settings = Settings(redis_prefix="shop-1:")
    assert project_name(settings) == "shop_1"
    sku, user = sku_layout(settings), user_layout(settings)
    assert list(sku.dtypes) == [f.name for f in SKU_FEATURES if f.store == "feast"]
    assert list(user.dtypes) == [f.name for f in USER_FEATURES]
    assert not {"published_price", "elasticity"} & set(sku.dtypes)


@pytest.mark.parametrize(
    ("proto", "text"),
    [
        (Value(int64_val=0), "0"),
        (Value(int64_val=300), "300"),
        (Value(int64_val=-1), "-1"),
        (Value(int64_val=-(2**40)), str(-(2**40))),
        (Value(double_val=0.0), "0.0"),
        (Value(double_val=-2.75), "-2.75"),
        (Value(double_val=0.1), "0.1"),
        (Value(string_val=""), ""),
        (Value(string_val="é" * 200), "é" * 200),
        (Value(string_val='["SKU-1","SKU-2"]'), '["SKU-1","SKU-2"]'),
        (Value(), None),
    ],
)
def test_values_decode_from_feasts_protos(proto: Value, text: str | None) -> None:
    assert decode_value(proto.SerializeToString()) == text


def test_a_selection_reads_several_views_of_one_entity() -> None:
    settings = Settings(redis_prefix="shop-1:")
    sku, batch = sku_layout(settings), batch_sku_layout(settings)
    assert sku.key("SKU-1") == batch.key("SKU-1")  # one hash per entity, every view in it
    selection = sku.select(["units_24h"]) + batch.select(["units_per_day_7d"])
    assert selection.fields == (
        _mmh3("sku_features:units_24h"),
        _mmh3("sku_daily_features:units_per_day_7d"),
    )
    raw = [Value(int64_val=4).SerializeToString(), Value(double_val=2.5).SerializeToString()]
    assert selection.decode(raw) == {"units_24h": "4", "units_per_day_7d": "2.5"}
    assert selection.decode([None, raw[1]]) == {"units_per_day_7d": "2.5"}


@pytest.mark.parametrize(
    "t", [0.0, 0.5, 1.0, 1e-6, 1_767_607_200.0, 1_767_607_200.123456, 1_767_607_200.5]
)
def test_event_times_encode_as_protobuf_timestamps(t: float) -> None:
    micros = round(t * 1_000_000)
    expected = Timestamp(seconds=micros // 1_000_000, nanos=micros % 1_000_000 * 1000)
    assert timestamp(t) == expected.SerializeToString()
