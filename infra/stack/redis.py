"""Redis from Debian's ``redis-server``, on 127.0.0.1, with AOF persistence and a memory cap.

The append-only file is fsynced every second, so a crash loses at most about a second of
writes; ``maxmemory`` with ``volatile-lru`` evicts only keys that carry an idle TTL (the
shoppers' and products' serving keys, rebuilt from the flow's state when missing), never the
keys without one (catalogue, current prices, popularity lists, scheduler cursors).
"""

from __future__ import annotations

from pathlib import Path

from infra.readiness import redis_answers
from infra.stack.processes import (
    ServiceFiles,
    debian_binary,
    running_pid,
    spawn,
    wait_until_ready,
)
from schemas.settings import Settings


def files(settings: Settings) -> ServiceFiles:
    return ServiceFiles(settings.runtime_dir, "redis")


def server_args(settings: Settings, data_dir: Path) -> list[str]:
    """The ``redis-server`` options of the local Redis.

    >>> args = server_args(Settings(), Path("/tmp/redis"))
    >>> args[args.index("--appendonly") + 1], args[args.index("--maxmemory-policy") + 1]
    ('yes', 'volatile-lru')
    """
    return [
        "--bind",
        "127.0.0.1",
        "--port",
        str(settings.redis_port),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory",
        settings.redis_maxmemory,
        "--maxmemory-policy",
        settings.redis_maxmemory_policy,
        "--daemonize",
        "no",
        "--dir",
        str(data_dir),
        "--maxclients",
        "10000",
    ]


def start(settings: Settings) -> int:
    """Start redis-server unless it already runs; return its pid."""
    svc = files(settings)
    pid = running_pid(svc)
    if pid is not None:
        return pid
    binary = debian_binary("redis-server", "redis-server")
    svc.prepare()
    return spawn(svc, [binary, *server_args(settings, svc.data_dir.resolve())])


def wait_ready(settings: Settings, timeout_s: float = 20.0) -> None:
    """Block until Redis answers PING; raise with its log tail if it does not."""
    wait_until_ready(
        files(settings),
        "Redis",
        settings.redis_url,
        lambda: redis_answers(settings, 1.0),
        timeout_s,
        poll_s=0.1,
    )
