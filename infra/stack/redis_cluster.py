"""A local Redis Cluster of Debian's ``redis-server`` masters, on 127.0.0.1.

With ``TILLFLOW_REDIS_CLUSTER=true``, ``tillflow up`` starts ``TILLFLOW_REDIS_CLUSTER_MASTERS``
(three by default) cluster-enabled masters on ``TILLFLOW_REDIS_PORT`` and the ports after it,
each with its own data folder, log and pid file under the runtime folder (``redis-node-<port>``),
AOF persistence and the same memory cap as the single Redis (infra/stack/redis.py). The first
start joins them with ``redis-cli --cluster create`` (the 16,384 slots spread evenly, no
replicas); each node remembers the cluster in its ``nodes.conf``, so a restart re-forms it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import redis

from infra.errors import ServiceUnavailable, StackError
from infra.stack import redis as single
from infra.stack.processes import (
    ServiceFiles,
    debian_binary,
    running_pid,
    spawn,
    terminate,
    wait_until_ready,
)
from schemas.settings import Settings

NODE_PREFIX = "redis-node-"
NODE_TIMEOUT_MS = 5_000


def ports(settings: Settings) -> list[int]:
    """The masters' ports: ``redis_port`` and the ones after it.

    >>> ports(Settings(redis_port=7100))
    [7100, 7101, 7102]
    """
    return [settings.redis_port + i for i in range(settings.redis_cluster_masters)]


def files(port: int, runtime_dir: Path) -> ServiceFiles:
    return ServiceFiles(runtime_dir, f"{NODE_PREFIX}{port}")


def server_args(settings: Settings, port: int, data_dir: Path) -> list[str]:
    """The options of one cluster master: the single Redis's, cluster-enabled, on ``port``.

    >>> args = server_args(Settings(), 7101, Path("/tmp/n"))
    >>> args[args.index("--port") + 1], args[args.index("--cluster-enabled") + 1]
    ('7101', 'yes')
    """
    args = single.server_args(settings, data_dir)
    args[args.index("--port") + 1] = str(port)
    return [
        *args,
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        str(NODE_TIMEOUT_MS),
    ]


def _info(port: int, timeout_s: float) -> dict[str, str]:
    """``CLUSTER INFO`` of the node on ``port`` (raises RedisError when it does not answer)."""
    client = redis.Redis(port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        info: Any = client.cluster("INFO")  # redis-py parses the reply into a dict
    finally:
        client.close()
    return {str(k): str(v) for k, v in info.items()}


def cluster_ok(settings: Settings, timeout_s: float) -> bool:
    """Whether every master answers and sees the cluster whole (``cluster_state:ok``, every
    slot assigned, all masters known). Never raises."""
    want = str(settings.redis_cluster_masters)
    try:
        infos = [_info(p, timeout_s) for p in ports(settings)]
    except (redis.RedisError, OSError):
        return False
    return all(
        i.get("cluster_state") == "ok"
        and i.get("cluster_slots_assigned") == "16384"
        and i.get("cluster_known_nodes") == want
        for i in infos
    )


def _answers(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5) as client:
            client.ping()
    except (redis.RedisError, OSError):
        return False
    return True


def _wait_answers(svc: ServiceFiles, port: int, timeout_s: float) -> None:
    wait_until_ready(
        svc,
        f"Redis Cluster node {port}",
        f"127.0.0.1:{port}",
        lambda: _answers(port),
        timeout_s,
        poll_s=0.1,
    )


def start(settings: Settings, timeout_s: float = 20.0) -> list[int]:
    """Start the masters that do not run yet, join them into one cluster unless they already
    are one, and wait until every master sees it whole; return the masters' pids."""
    binary = debian_binary("redis-server", "redis-server")
    pids = []
    for port in ports(settings):
        svc = files(port, settings.runtime_dir)
        pid = running_pid(svc)
        if pid is None:
            if _answers(port):
                raise StackError(
                    f"port {port} of the Redis Cluster is taken by another Redis; "
                    "choose other ports with TILLFLOW_REDIS_PORT"
                )
            svc.prepare()
            pid = spawn(svc, [binary, *server_args(settings, port, svc.data_dir.resolve())])
        pids.append(pid)
    for port in ports(settings):
        _wait_answers(files(port, settings.runtime_dir), port, timeout_s)
    if not _has_slots(settings):
        _create(settings)
    wait_ready(settings, timeout_s)
    return pids


def _has_slots(settings: Settings) -> bool:
    """Whether the masters already carry slots (a cluster created before, re-formed from
    each node's ``nodes.conf``)."""
    return any(_info(p, 1.0).get("cluster_slots_assigned", "0") != "0" for p in ports(settings))


def _create(settings: Settings) -> None:
    """``redis-cli --cluster create`` over the masters: slots spread evenly, no replicas."""
    cli = debian_binary("redis-cli", "redis-tools")
    nodes = [f"127.0.0.1:{p}" for p in ports(settings)]
    done = subprocess.run(
        [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise StackError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")


def wait_ready(settings: Settings, timeout_s: float = 20.0) -> None:
    """Block until every master sees the cluster whole; raise with the first node's log tail."""
    first = files(ports(settings)[0], settings.runtime_dir)
    try:
        wait_until_ready(
            first,
            "Redis Cluster",
            address(settings),
            lambda: cluster_ok(settings, 1.0),
            timeout_s,
            poll_s=0.2,
        )
    except ServiceUnavailable as exc:
        raise ServiceUnavailable("Redis Cluster", address(settings), str(exc)) from None


def address(settings: Settings) -> str:
    """The masters, as ``127.0.0.1:<port>,...``.

    >>> address(Settings(redis_port=7100))
    '127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102'
    """
    return ",".join(f"127.0.0.1:{p}" for p in ports(settings))


def running_nodes(runtime_dir: Path) -> list[ServiceFiles]:
    """Every cluster node whose pid file is under ``runtime_dir`` (whatever the settings now
    say), so that ``tillflow down`` stops what ``up`` started."""
    run = runtime_dir / "run"
    found = sorted(run.glob(f"{NODE_PREFIX}*.pid")) if run.is_dir() else []
    return [ServiceFiles(runtime_dir, p.stem) for p in found]


def stop(runtime_dir: Path) -> bool:
    """Stop every cluster node started from ``runtime_dir``; True if one was running."""
    stopped = [terminate(svc) for svc in running_nodes(runtime_dir)]
    return any(stopped)


def logs(settings: Settings) -> str:
    """The log files of the masters, comma-separated (``tillflow status`` shows them)."""
    return ",".join(str(files(p, settings.runtime_dir).log_file) for p in ports(settings))
