"""The Feast repository generated from schemas/features.py, applied to the real Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from featurestore.repo import (
    BATCH_SKU_VIEW,
    SKU_VIEW,
    USER_VIEW,
    apply,
    online_features,
    project_name,
)
from schemas.features import SKU_FEATURES, USER_FEATURES, stored_in
from schemas.settings import Settings

pytestmark = pytest.mark.integration


@pytest.mark.cluster
def test_repository_applies_idempotently_and_serves_what_is_written(stack: Settings) -> None:
    store = apply(stack)
    store = apply(stack)  # a second apply changes nothing
    views = {v.name: v for v in store.list_feature_views()}
    assert set(views) == {SKU_VIEW, USER_VIEW, BATCH_SKU_VIEW}
    feast_sku = stored_in(SKU_FEATURES, "feast")
    assert [f.name for f in views[SKU_VIEW].features] == [f.name for f in feast_sku]
    assert [f.name for f in views[USER_VIEW].features] == [f.name for f in USER_FEATURES]
    assert "elasticity" not in {f.name for f in views[SKU_VIEW].features}  # plain Redis
    assert project_name(stack) == stack.redis_prefix.strip(":").replace("-", "_")
    row = {f.name: 3 if f.dtype == "int" else 1.5 if f.dtype == "float" else "x" for f in feast_sku}
    store.write_to_online_store(
        SKU_VIEW,
        pd.DataFrame([{**row, "sku": "SKU-FEAST", "event_timestamp": datetime.now(UTC)}]),
    )
    got = online_features(store, "sku", ["SKU-FEAST", "SKU-ABSENT"], ["views_5m", "event_time"])
    assert got == {"SKU-FEAST": {"views_5m": 3, "event_time": "x"}}


def test_cli_applies_the_repository(stack: Settings) -> None:
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "TILLFLOW_REDIS_PREFIX": stack.redis_prefix + "cli:"}
    result = subprocess.run(
        [sys.executable, "-m", "cli", "features", "apply"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "sku_features" in result.stdout
    assert "user_features" in result.stdout
