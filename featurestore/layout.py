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
>>> decode_value(encode_value("int", -3)), decode_value(encode_value("float", 2.5))
('-3', '2.5')

Readers (the API) take a :class:`Selection` of named features, possibly from several views of
one entity (they share the entity's hash), fetch it with one ``HMGET`` and decode the values
to the text the pure row builders read (``online_models.demand_features``, ``ranking``):

>>> sel = layout.select(["views_5m"])
>>> sel.decode([encode_value("int", 7)]), sel.decode([None])
({'views_5m': '7'}, {})
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import mmh3
import orjson

from schemas.features import BATCH_SKU_FEATURES, SKU_FEATURES, USER_FEATURES, Feature, stored_in
from schemas.lake import SKU_DAILY_FEATURES
from schemas.settings import Settings

SKU_VIEW, SKU_JOIN_KEY = "sku_features", "sku"
USER_VIEW, USER_JOIN_KEY = "user_features", "user_id"
SERIALIZATION_VERSION = 3  # Feast's entity_key_serialization_version
_STRING_TYPE = 2  # feast.value_type.ValueType.STRING
# Field numbers of feast.types.Value (protos/feast/types/Value.proto), as wire-format tags.
_STRING_TAG = b"\x12"  # string_val = 2, length-delimited
_INT64_TAG = b"\x20"  # int64_val = 4, varint
_DOUBLE_TAG = b"\x29"  # double_val = 5, 64-bit
_SECONDS_TAG, _NANOS_TAG = b"\x08", b"\x10"  # google.protobuf.Timestamp, varints


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values are ten bytes of two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_TAGGED_DOUBLE = struct.Struct("<cd")  # the tag, then the double (no padding with "<")
# The values of the integers below 128, whose varint is their one byte: most counts a row
# holds, encoded once here instead of by _varint's loop at every row.
_SMALL_INTS = tuple(_INT64_TAG + bytes((n,)) for n in range(0x80))


def _encode_int(value: Any) -> bytes:
    n = int(value)
    if 0 <= n < 0x80:
        return _SMALL_INTS[n]
    return _INT64_TAG + _varint(n)


def _encode_float(value: Any) -> bytes:
    return _TAGGED_DOUBLE.pack(_DOUBLE_TAG, float(value))


def _encode_string(value: Any) -> bytes:
    raw = str(value).encode()
    return _STRING_TAG + _varint(len(raw)) + raw


def _encode_json(value: Any) -> bytes:
    raw = orjson.dumps(value)  # compact, like json.dumps(separators=(",", ":"))
    return _STRING_TAG + _varint(len(raw)) + raw


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "int": _encode_int,
    "float": _encode_float,
    "string": _encode_string,
    "json": _encode_json,
}


def encode_value(dtype: str, value: Any) -> bytes:
    """A serialised ``feast.types.Value`` of a feature of ``dtype`` (schemas.features)."""
    return _ENCODERS[dtype](value)


def _read_varint(raw: bytes, at: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        byte = raw[at]
        n |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return n, at
        shift += 7


def decode_value(raw: bytes) -> str | None:
    """The text of a serialised ``feast.types.Value`` (None for an empty, null value).

    Integers and doubles come back as ``str(int)`` and ``repr(float)``, strings (and JSON)
    as they are: the same text the plain hashes hold, for the pure row builders.
    """
    if not raw:
        return None
    tag = raw[:1]
    if tag == _INT64_TAG:
        n, _ = _read_varint(raw, 1)
        return str(n - (1 << 64) if n >= 1 << 63 else n)
    if tag == _DOUBLE_TAG:
        return repr(struct.unpack_from("<d", raw, 1)[0])
    if tag == _STRING_TAG:
        size, at = _read_varint(raw, 1)
        return raw[at : at + size].decode()
    raise ValueError(f"not a Feast int64, double or string value: {raw[:8]!r}")


def field_name(view: str, feature: str) -> bytes:
    """The hash field of one feature: murmur3_32 of ``view:feature``, little-endian."""
    return struct.pack("<I", mmh3.hash(f"{view}:{feature}", signed=False))


def timestamp(t: float) -> bytes:
    """The ``_ts:<view>`` value: event time (epoch seconds) as a protobuf Timestamp."""
    micros = round(t * 1_000_000)
    seconds, nanos = micros // 1_000_000, micros % 1_000_000 * 1000
    # google.protobuf.Timestamp: seconds = field 1, nanos = field 2, zeros omitted (proto3).
    out = _seconds(seconds)
    return out + _NANOS_TAG + _varint(nanos) if nanos else out


@lru_cache(maxsize=4_096)
def _seconds(seconds: int) -> bytes:
    """A timestamp's seconds field: the rows stamped within one second share it."""
    return _SECONDS_TAG + _varint(seconds) if seconds else b""


@dataclass(frozen=True, slots=True)
class Selection:
    """Named features of one entity's hash (from one or more views), for one ``HMGET``."""

    names: tuple[str, ...]
    fields: tuple[bytes, ...]

    def __add__(self, other: Selection) -> Selection:
        return Selection(self.names + other.names, self.fields + other.fields)

    def decode(self, raw: Sequence[bytes | None]) -> dict[str, str]:
        """``HMGET`` replies (in ``fields`` order) as text by name; missing ones left out."""
        out = {}
        for name, value in zip(self.names, raw, strict=True):
            text = None if value is None else decode_value(value)
            if text is not None:
                out[name] = text
        return out


class FeastLayout:
    """Keys and hash fields of one feature view of one Feast project, in Redis."""

    __slots__ = ("_encoders", "_fields", "_join", "_project", "dtypes", "ts_field", "view")

    def __init__(self, project: str, view: str, join_key: str, dtypes: Mapping[str, str]) -> None:
        self.view = view
        self.dtypes = dict(dtypes)
        self.ts_field = f"_ts:{view}".encode()
        self._fields = {name: field_name(view, name) for name in self.dtypes}
        self._encoders = [(n, self._fields[n], _ENCODERS[d]) for n, d in self.dtypes.items()]
        self._project = project.encode()
        join = join_key.encode()
        self._join = struct.pack("<III", 1, _STRING_TYPE, len(join)) + join

    def key(self, entity: str) -> bytes:
        """The Redis key of one entity (Feast's ``_redis_key`` with one string join key)."""
        value = entity.encode()
        return self._join + struct.pack("<II", _STRING_TYPE, len(value)) + value + self._project

    def select(self, names: Iterable[str] | None = None) -> Selection:
        """The fields of ``names`` (default: every feature of the view)."""
        chosen = tuple(self.dtypes if names is None else names)
        return Selection(chosen, tuple(self._fields[name] for name in chosen))

    def fields(self, values: Mapping[str, Any], t: float) -> dict[bytes, bytes]:
        """The hash fields for the view's features found in ``values``, stamped at ``t``."""
        out = {self.ts_field: timestamp(t)}
        for name, field, encode in self._encoders:
            if name in values:
                out[field] = encode(values[name])
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


def batch_sku_layout(settings: Settings) -> FeastLayout:
    """Where ``tillflow batch features`` materialises the daily batch features (Feast itself
    writes them; they share the product's hash with ``sku_features``)."""
    return _layout(settings, SKU_DAILY_FEATURES, SKU_JOIN_KEY, BATCH_SKU_FEATURES)
