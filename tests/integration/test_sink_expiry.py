"""The Redis sinks set a key's expiry with its first write and then only when it is due
(flows/sinks/expiry.py): a key without a TTL in between stays without one until then."""

from __future__ import annotations

import pytest

from featurestore.layout import user_layout
from flows.records import FeatureRow
from flows.sinks.serving import FeatureWriter
from infra.clients import SyncRedis
from schemas.settings import Settings

pytestmark = pytest.mark.integration


def test_feature_rows_set_the_expiry_when_due(stack: Settings, redis_client: SyncRedis) -> None:
    now = [0.0]
    writer = FeatureWriter(stack)
    writer.expiry["user"].clock = lambda: now[0]
    key = user_layout(stack).key("expiry-shopper")
    row = FeatureRow("user", "expiry-shopper", {"session_events": 1}, 1_767_607_200.0)
    try:
        writer.write_batch([row])
        assert 0 < redis_client.ttl(key) <= stack.shopper_ttl_s  # type: ignore[operator]
        redis_client.persist(key)  # as if a minute's writes had set nothing since
        now[0] = 30.0
        writer.write_batch([row._replace(values={"session_events": 2})])
        assert redis_client.ttl(key) == -1  # written, its expiry not due yet
        now[0] = 61.0
        writer.write_batch([row._replace(values={"session_events": 3})])
        assert 0 < redis_client.ttl(key) <= stack.shopper_ttl_s  # type: ignore[operator]
    finally:
        redis_client.delete(key)
        writer.close()
