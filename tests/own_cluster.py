"""A Redis Cluster of one test module alone, started by the product's own launcher on free
ports, so that a test may flush or stop it without touching the shared Redis (or cluster)."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.stack import redis_cluster
from schemas.settings import Settings

BUS_OFFSET = 10_000  # each node also listens on its port + 10000 (the cluster bus)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(masters: int = 3) -> int:
    """A first port such that it, the ports after it and their bus ports are free.

    Drawn below the ephemeral range, so that the bus ports stay under 65536.
    """
    for _ in range(200):
        base = random.randrange(20_000, 30_000)
        ports = [base + i for i in range(masters)]
        if all(_free(p) and _free(p + BUS_OFFSET) for p in ports):
            return base
    raise RuntimeError("no free ports for a Redis Cluster")


def cluster_settings(runtime_dir: Path, base_port: int) -> Settings:
    """Settings of a cluster whose masters listen on ``base_port`` and the ports after it."""
    return Settings(
        redis_cluster=True,
        redis_port=base_port,
        redis_url=f"redis://127.0.0.1:{base_port}/0",
        runtime_dir=runtime_dir,
    )


@contextmanager
def own_cluster(runtime_dir: Path) -> Iterator[Settings]:
    """Start a three-master cluster under ``runtime_dir``; stop it on the way out."""
    settings = cluster_settings(runtime_dir, free_cluster_ports())
    try:
        redis_cluster.start(settings)
        yield settings
    finally:
        redis_cluster.stop(runtime_dir)
