"""Redis from Debian's ``redis-server``, on 127.0.0.1, in memory only."""

from __future__ import annotations

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


def start(settings: Settings) -> int:
    """Start redis-server unless it already runs; return its pid."""
    svc = files(settings)
    pid = running_pid(svc)
    if pid is not None:
        return pid
    binary = debian_binary("redis-server", "redis-server")
    svc.prepare()
    return spawn(
        svc,
        [binary, "--bind", "127.0.0.1", "--port", str(settings.redis_port),
         "--save", "", "--appendonly", "no", "--daemonize", "no",
         "--dir", str(svc.data_dir.resolve()), "--maxclients", "10000"],
    )  # fmt: skip


def wait_ready(settings: Settings, timeout_s: float = 20.0) -> None:
    """Block until Redis answers PING; raise with its log tail if it does not."""
    wait_until_ready(
        files(settings), "Redis", settings.redis_url,
        lambda: redis_answers(settings, 1.0), timeout_s, poll_s=0.1,
    )  # fmt: skip
