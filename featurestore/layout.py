"""Feast's Redis online-store layout, written without Feast: what the flows' sink writes.

Feast keeps one Redis hash per entity: the key is the serialised entity key (format version
3) followed by the project name; each feature is a field named by the murmur3 hash of
``"<view>:<feature>"`` holding a serialised ``feast.types.Value``; the field
``_ts:<view>`` holds the event time as a ``google.protobuf.Timestamp``. This module encodes
exactly that, so ``FeatureStore.get_online_features`` reads what the flows write, while the
flow processes never import Feast (7 s of imports, pandas) or build a ``FeatureStore``.

The unit tests compare every byte with Feast's own helpers
(``feast.infra.online_stores.helpers._redis_key``, ``_mmh3``, ``ValueProto``), and an
integration test reads the flow's output back through ``get_online_features``.

>>> layout = FeastLayout("shop", "sku_features", "sku", {"views_5m": "int"})
>>> layout.key("A")
b'\\x01\\x00\\x00\\x00\\x02\\x00\\x00\\x00\\x03\\x00\\x00\\x00sku\\x02\\x00\\x00\\x00\\x01\\x00\\x00\\x00Ashop'
>>> encode_value("int", 3), encode_value("string", "x")
(b' \\x03', b'\\x12\\x01x')
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from typing import Any

import mmh3
from google.protobuf.timestamp_pb2 import Timestamp

from schemas.features import SKU_FEATURES, USER_FEATURES, Feature, stored_in
from schemas.settings import Settings

SKU_VIEW, SKU_JOIN_KEY = "sku_features", "sku"
USER_VIEW, USER_JOIN_KEY = "user_features", "user_id"
SERIALIZATION_VERSION = 3  # Feast's entity_key_serialization_version
_STRING_TYPE = 2  # feast.value_type.ValueType.STRING
# Field numbers of feast.types.Value (protos/feast/types/Value.proto), as wire-format tags.
_STRING_TAG = b"\x12"  # string_val = 2, length-delimited
_INT64_TAG = b"\x20"  # int64_val = 4, varint
_DOUBLE_TAG = b"\x29"  # double_val = 5, 64-bit


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values are ten bytes of two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_value(dtype: str, value: Any) -> bytes:
    """A serialised ``feast.types.Value`` of a feature of ``dtype`` (schemas.features)."""
    if dtype == "int":
        return _INT64_TAG + _varint(int(value))
    if dtype == "float":
        return _DOUBLE_TAG + struct.pack("<d", float(value))
    if dtype == "json":
        value = json.dumps(value, separators=(",", ":"))
    raw = str(value).encode()
    return _STRING_TAG + _varint(len(raw)) + raw


def field_name(view: str, feature: str) -> bytes:
    """The hash field of one feature: murmur3_32 of ``view:feature``, little-endian."""
    return struct.pack("<I", mmh3.hash(f"{view}:{feature}", signed=False))


def timestamp(t: float) -> bytes:
    """The ``_ts:<view>`` value: event time (epoch seconds) as a protobuf Timestamp."""
    micros = round(t * 1_000_000)
    stamp = Timestamp(seconds=micros // 1_000_000, nanos=micros % 1_000_000 * 1000)
    encoded: bytes = stamp.SerializeToString()
    return encoded


class FeastLayout:
    """Keys and hash fields of one feature view of one Feast project, in Redis."""

    __slots__ = ("_fields", "_join", "_project", "dtypes", "ts_field", "view")

    def __init__(self, project: str, view: str, join_key: str, dtypes: Mapping[str, str]) -> None:
        self.view = view
        self.dtypes = dict(dtypes)
        self.ts_field = f"_ts:{view}".encode()
        self._fields = {name: field_name(view, name) for name in self.dtypes}
        self._project = project.encode()
        join = join_key.encode()
        self._join = struct.pack("<III", 1, _STRING_TYPE, len(join)) + join

    def key(self, entity: str) -> bytes:
        """The Redis key of one entity (Feast's ``_redis_key`` with one string join key)."""
        value = entity.encode()
        return self._join + struct.pack("<II", _STRING_TYPE, len(value)) + value + self._project

    def fields(self, values: Mapping[str, Any], t: float) -> dict[bytes, bytes]:
        """The hash fields for the view's features found in ``values``, stamped at ``t``."""
        out = {self.ts_field: timestamp(t)}
        for name, dtype in self.dtypes.items():
            if name in values:
                out[self._fields[name]] = encode_value(dtype, values[name])
        return out


def project_name(settings: Settings) -> str:
    """A Feast project per Redis prefix (``tillflow:`` → ``tillflow``).

    >>> project_name(Settings(redis_prefix="shop-1:"))
    'shop_1'
    """
    return re.sub(r"[^a-zA-Z0-9_]", "_", settings.redis_prefix).strip("_") or "tillflow"


def _layout(
    settings: Settings, view: str, join_key: str, features: tuple[Feature, ...]
) -> FeastLayout:
    dtypes = {f.name: f.dtype for f in stored_in(features, "feast")}
    return FeastLayout(project_name(settings), view, join_key, dtypes)


def sku_layout(settings: Settings) -> FeastLayout:
    """Where the flows write the Feast-managed product features."""
    return _layout(settings, SKU_VIEW, SKU_JOIN_KEY, SKU_FEATURES)


def user_layout(settings: Settings) -> FeastLayout:
    """Where the flows write the Feast-managed shopper features."""
    return _layout(settings, USER_VIEW, USER_JOIN_KEY, USER_FEATURES)
