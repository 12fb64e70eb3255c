"""Feast objects built from ``schemas.features``: entities, feature views, the store itself.

tillflow applies this repository itself (``tillflow features apply``, and ``tillflow flows
run`` on start); the streaming flows write the model features (``store="feast"`` in
schemas.features) to Feast's Redis online store in batches, in Feast's own layout
(featurestore/layout.py). Offline sources are parquet files under the lake's ``gold`` folder
(Feast cannot read Delta beside deltalake 1.x; see docs/dependencies.md), filled by the batch
jobs: ``sku_daily_features`` (``BATCH_SKU_FEATURES``) is exported from gold ``sku_daily`` by
``tillflow batch features``, which also materialises it online.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
from feast.infra.online_stores.redis import RedisOnlineStoreConfig, RedisType
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

from featurestore.layout import (
    SERIALIZATION_VERSION,
    SKU_JOIN_KEY,
    SKU_VIEW,
    USER_JOIN_KEY,
    USER_VIEW,
    project_name,
)
from schemas.features import BATCH_SKU_FEATURES, SKU_FEATURES, USER_FEATURES, Feature, stored_in
from schemas.lake import SKU_DAILY_FEATURES, feast_source_path
from schemas.settings import Settings

BATCH_SKU_VIEW = SKU_DAILY_FEATURES  # batch features from gold (batch/features.py)
__all__ = [
    "BATCH_SKU_VIEW",
    "SKU_VIEW",
    "USER_VIEW",
    "apply",
    "definitions",
    "online_features",
    "project_name",
]
TIMESTAMP = "event_timestamp"
_TYPES = {"int": Int64, "float": Float64, "string": String, "json": String}


def repo_config(settings: Settings) -> RepoConfig:
    host_port = settings.redis_url.split("://", 1)[-1].split("/", 1)[0]
    registry = settings.runtime_dir / "feast" / f"{project_name(settings)}.registry.db"
    registry.parent.mkdir(parents=True, exist_ok=True)
    return RepoConfig(
        project=project_name(settings),
        registry=str(registry.resolve()),
        provider="local",
        online_store=RedisOnlineStoreConfig(
            connection_string=host_port,
            redis_type=RedisType.redis_cluster if settings.redis_cluster else RedisType.redis,
        ),
        offline_store={"type": "file"},
        entity_key_serialization_version=SERIALIZATION_VERSION,
    )


def _schema(features: tuple[Feature, ...]) -> list[Field]:
    return [
        Field(name=f.name, dtype=_TYPES[f.dtype], description=f.description)
        for f in stored_in(features, "feast")
    ]


def definitions(settings: Settings) -> list[Any]:
    gold = (settings.lake_dir / "gold").resolve()
    sku = Entity(name="sku", join_keys=[SKU_JOIN_KEY], value_type=ValueType.STRING)
    user = Entity(name="user", join_keys=[USER_JOIN_KEY], value_type=ValueType.STRING)
    views = [
        FeatureView(
            name=SKU_VIEW,
            entities=[sku],
            ttl=timedelta(0),  # no expiry: simulated event times may lie in the past
            schema=_schema(SKU_FEATURES),
            source=FileSource(path=str(gold / "sku_features.parquet"), timestamp_field=TIMESTAMP),
            online=True,
        ),
        FeatureView(
            name=USER_VIEW,
            entities=[user],
            ttl=timedelta(0),
            schema=_schema(USER_FEATURES),
            source=FileSource(path=str(gold / "user_features.parquet"), timestamp_field=TIMESTAMP),
            online=True,
        ),
        FeatureView(
            name=BATCH_SKU_VIEW,
            entities=[sku],
            ttl=timedelta(0),
            schema=_schema(BATCH_SKU_FEATURES),
            source=FileSource(
                path=str(feast_source_path(settings.lake_dir, BATCH_SKU_VIEW).resolve()),
                timestamp_field=TIMESTAMP,
            ),
            online=True,
        ),
    ]
    return [sku, user, *views]


def feature_store(settings: Settings) -> FeatureStore:
    config = repo_config(settings)
    return FeatureStore(config=config, repo_path=str(settings.runtime_dir / "feast"))


def apply(settings: Settings) -> FeatureStore:
    """Register the entities and feature views (idempotent); return the store."""
    store = feature_store(settings)
    store.apply(definitions(settings))
    return store


def online_features(
    store: FeatureStore, entity: str, keys: list[str], names: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Read features of ``entity`` ("sku" or "user") for ``keys``; missing keys are left out."""
    view, join_key, features = (
        (SKU_VIEW, SKU_JOIN_KEY, SKU_FEATURES)
        if entity == "sku"
        else (USER_VIEW, USER_JOIN_KEY, USER_FEATURES)
    )
    wanted = names or [f.name for f in stored_in(features, "feast")]
    rows = store.get_online_features(
        features=[f"{view}:{n}" for n in wanted], entity_rows=[{join_key: k} for k in keys]
    ).to_dict()
    out: dict[str, dict[str, Any]] = {}
    for i, key in enumerate(rows[join_key]):
        values = {n: rows[n][i] for n in wanted}
        if any(v is not None for v in values.values()):
            out[key] = values
    return out
