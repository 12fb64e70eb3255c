"""The local Redis Cluster launcher, and the Redis writes that must keep to one hash slot.

Each test module gets a cluster of its own, on free ports and under its own runtime folder
(tests/own_cluster.py), started and stopped by the product's launcher.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster
from redis.exceptions import CrossSlotTransactionError

from api.redis_gate import RedisGate
from flows.sinks.serving import ItemGraphWriter
from infra.clients import redis_client
from infra.errors import ServiceUnavailable
from infra.readiness import require_redis
from infra.stack import local, redis_cluster
from schemas.settings import Settings
from tests.own_cluster import cluster_settings, free_cluster_ports, own_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with own_cluster(tmp_path_factory.mktemp("cluster")) as settings:
        yield settings.model_copy(update={"redis_prefix": "rc:"})


@pytest.fixture
def client(cluster: Settings) -> Iterator[RedisCluster]:
    c = redis_client(cluster, decode_responses=True)
    assert isinstance(c, RedisCluster)  # the factory follows TILLFLOW_REDIS_CLUSTER
    yield c
    c.close()


def _per_master(client: RedisCluster, prefix: str) -> list[int]:
    """How many of the keys under ``prefix`` each master holds."""
    return [
        len(list(client.scan_iter(f"{prefix}*", target_nodes=node)))
        for node in client.get_primaries()
    ]


def test_three_masters_share_every_slot_and_status_says_running(
    cluster: Settings, client: RedisCluster
) -> None:
    assert redis_cluster.cluster_ok(cluster, 1.0)
    ports = sorted(n.port for n in client.get_primaries())
    assert ports == redis_cluster.ports(cluster)
    row = next(r for r in local.status(cluster) if r.name == "redis-cluster")
    assert (row.state, row.address) == ("running", redis_cluster.address(cluster))
    assert all(Path(log).is_file() for log in row.log.split(","))


def test_keys_spread_over_the_masters_and_a_prefix_scan_sees_them_all(
    cluster: Settings, client: RedisCluster
) -> None:
    keys = cluster.keys
    for i in range(60):
        client.set(keys.price(f"SKU-{i:03d}"), i)
    counts = _per_master(client, cluster.redis_prefix)
    assert sum(counts) == 60
    assert all(counts), counts  # every master holds some
    found = list(client.scan_iter(f"{cluster.redis_prefix}*"))
    assert len(found) == 60
    assert client.delete(*found) == 60  # the client deletes slot by slot
    assert _per_master(client, cluster.redis_prefix) == [0, 0, 0]


def test_a_transaction_over_two_products_is_refused_and_one_over_a_product_is_not(
    cluster: Settings, client: RedisCluster
) -> None:
    """Why the sinks keep each transaction to one hash tag."""
    keys = cluster.keys
    across = client.pipeline(transaction=True)
    across.set(keys.price("SKU-A"), 1)
    across.set(keys.price("SKU-B"), 1)
    with pytest.raises(CrossSlotTransactionError):
        across.execute()
    within = client.pipeline(transaction=True)
    within.set(keys.price("SKU-A"), 1)
    within.zadd(keys.price_history("SKU-A"), {"x": 1.0})
    within.hset(keys.sku_features("SKU-A"), "price", "1")
    within.execute()
    assert client.get(keys.price("SKU-A")) == "1"
    assert client.zscore(keys.price_history("SKU-A"), "x") == 1.0
    assert client.hget(keys.sku_features("SKU-A"), "price") == "1"


def test_the_item_graph_sink_writes_and_replaces_across_masters(
    cluster: Settings, client: RedisCluster
) -> None:
    settings = cluster.model_copy(update={"redis_prefix": "rc-graph:"})
    keys = settings.keys
    skus = [f"SKU-{i:03d}" for i in range(30)]
    writer = ItemGraphWriter(settings)
    try:
        writer.write_batch([(s, [(t, 1.0) for t in skus if t != s][:3]) for s in skus])
        writer.write_batch([(s, ("toys", float(i))) for i, s in enumerate(skus)])
        writer.write_batch([(skus[0], [("SKU-999", 2.5)]), (skus[1], [])])
    finally:
        writer.close()
    assert all(_per_master(client, settings.redis_prefix))
    assert client.hgetall(keys.neighbours(skus[0])) == {"SKU-999": "2.5"}  # replaced whole
    assert client.exists(keys.neighbours(skus[1])) == 0  # no neighbours left: deleted
    assert len(client.hgetall(keys.neighbours(skus[2]))) == 3
    assert 0 < client.ttl(keys.neighbours(skus[2])) <= settings.product_ttl_s
    assert client.zrevrange(keys.category_popularity("toys"), 0, 0) == [skus[-1]]


def test_a_restarted_cluster_reforms_with_its_data_and_down_stops_it(
    tmp_path: Path,
) -> None:
    with own_cluster(tmp_path) as settings:
        before = redis_client(settings, decode_responses=True)
        before.set(settings.keys.price("SKU-KEPT"), "9.99")
        before.close()
        assert redis_cluster.stop(settings.runtime_dir)
        assert not redis_cluster.cluster_ok(settings, 0.5)
        redis_cluster.start(settings)  # each node's nodes.conf: the same cluster again
        after = redis_client(settings, decode_responses=True)
        assert after.get(settings.keys.price("SKU-KEPT")) == "9.99"  # AOF
        after.close()
        assert local.down(settings) == ["redis-cluster"]  # only the cluster ran here
        assert not redis_cluster.cluster_ok(settings, 0.5)


async def test_a_cluster_that_no_node_answers_for_is_an_outage_naming_redis(
    tmp_path: Path,
) -> None:
    gone = cluster_settings(tmp_path, free_cluster_ports())  # nothing listens there
    with pytest.raises(ServiceUnavailable, match="Redis is not reachable"):
        require_redis(gone, timeout_s=0.5)
    gate = RedisGate(gone)
    try:
        with pytest.raises(ServiceUnavailable, match="Redis is not reachable"):
            await gate.run(lambda c: c.get(gone.keys.catalogue))
    finally:
        await gate.close()
