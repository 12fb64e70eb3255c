"""Helpers for tests that run the flows as real processes: environment, progress, lake.

Every wait polls an observed fact (bronze rows, a child pid, an exit) with a deadline that
only turns a hang into a failure; nothing waits for a fixed time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from confluent_kafka import Consumer, TopicPartition
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from flows.run import TAIL_ENV, process_commands
from schemas.lake import bronze_path
from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS

T = TypeVar("T")
POLL_S = 0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flow_env(settings: Settings, tail: bool = True) -> dict[str, str]:
    """The settings as the ``TILLFLOW_*`` environment of a child process, with the test run's
    own secrets (outside development the development ones are refused at start)."""
    secrets = {"admin_password", "admin_password_hash", "jwt_secret", "neo4j_password"}
    values = settings.model_dump(mode="json", exclude=secrets)
    return {
        **os.environ,
        "PYTHONPATH": str(Path.cwd()),
        TAIL_ENV: "1" if tail else "0",
        "TILLFLOW_LOG_LEVEL": "warning",
        **{
            f"TILLFLOW_{k.upper()}": str(v)
            for k, v in values.items()
            if v is not None and k != "log_level"
        },
        "TILLFLOW_JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "TILLFLOW_ADMIN_PASSWORD": settings.admin_password.get_secret_value(),
        "TILLFLOW_NEO4J_PASSWORD": settings.neo4j_password.get_secret_value(),
    }


def start_flow(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """One tailing flow process with recovery, as ``tillflow flows run`` starts it; its output
    in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            process_commands(settings, 1, 1, recovery=True)[0],
            env=flow_env(settings),
            stdout=out,
            stderr=out,
        )


def wait_until(observe: Callable[[], T | None], what: str, timeout_s: float = 180.0) -> T:
    """Poll ``observe`` until it returns something truthy; fail naming ``what`` on timeout."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout_s
    while True:
        got = observe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        pause.wait(POLL_S)


def metric_values(port: int, name: str) -> list[float]:
    """Every sample of metric ``name`` on ``http://127.0.0.1:<port>/metrics`` ([] if none
    or nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return []
    return [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
    ]


def read_so_far(port: int) -> int:
    """Messages a flow process has read: over partitions, its last offset read + 1."""
    return sum(int(v) + 1 for v in metric_values(port, "tillflow_flow_consumed_offset"))


def read_by(port: int) -> int:
    """Messages a flow process has read since it started (``tillflow_flow_events_total``)."""
    return int(sum(metric_values(port, "tillflow_flow_events_total")))


def bronze_offsets(settings: Settings) -> list[tuple[str, int, int]]:
    """Every (topic, partition, offset) in the bronze tables, sorted (repeats kept)."""
    out: list[tuple[str, int, int]] = []
    for topic in INPUT_TOPICS:
        try:
            table = DeltaTable(str(bronze_path(settings.lake_dir, topic))).to_pyarrow_table(
                columns=["kafka_partition", "kafka_offset"]
            )
        except TableNotFoundError:
            continue
        parts = table.column("kafka_partition").to_pylist()
        offsets = table.column("kafka_offset").to_pylist()
        out += [(topic.name, p, o) for p, o in zip(parts, offsets, strict=True)]
    return sorted(out)


def topic_offsets(settings: Settings) -> list[tuple[str, int, int]]:
    """Every (topic, partition, offset) the input topics hold, sorted."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "offsets"})
    out = []
    try:
        for topic in INPUT_TOPICS:
            name = settings.topic(topic)
            parts = consumer.list_topics(name, timeout=10).topics[name].partitions
            for p in parts:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                out += [(topic.name, p, o) for o in range(low, high)]
    finally:
        consumer.close()
    return sorted(out)


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(c) for c in text.split()]


def flow_children(pid: int) -> list[int]:
    """The ``bytewax.run`` processes among the children of ``pid``."""
    out = []
    for child in children(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"bytewax.run" in argv:
            out.append(child)
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def isolated_settings(base: Settings, name: str, root: Path, **more: object) -> Settings:
    """``base`` for one test module's own run of the flow and the API: topics and keys under a
    fresh prefix (``name`` and a random tag), the lake and the model registry under ``root``
    (an empty registry: no ranker, lists served as the flows store them), no rate limit;
    ``more`` on top."""
    rid = f"{name}{os.urandom(3).hex()}"
    return base.model_copy(
        update={
            "topic_prefix": f"{base.topic_prefix}{rid}.",
            "redis_prefix": f"{base.redis_prefix}{rid}:",
            "lake_dir": root / "lake",
            "registry_dir": root / "models",
            "rate_limit_per_s": 0.0,
            **more,
        }
    )


def flow_settings(base: Settings, name: str, root: Path, **more: object) -> Settings:
    """``base`` for one test's own flow process: topics and keys under a fresh prefix, lake and
    recovery under ``root``, frequent snapshots and lake flushes, free cluster and metrics ports;
    the registry and the rate limit as in ``base``; ``more`` on top."""
    own: dict[str, object] = {
        "registry_dir": base.registry_dir,
        "rate_limit_per_s": base.rate_limit_per_s,
        "recovery_dir": root / "recovery",
        "snapshot_s": 1,
        "lake_flush_s": 0.2,
        "flow_base_port": free_port(),
        "flow_metrics_port": free_port(),
    }
    return isolated_settings(base, name, root, **(own | more))
