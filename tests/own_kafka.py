"""A Kafka broker of a test's own, on free ports with its own data folder, to kill at will.

Built by the launcher (infra/stack/kafka.py) like the shared one, sharing only its cached
jars, so killing it never disturbs the other tests. The launcher detaches the broker on
purpose (it outlives ``tillflow up``), so a test using it ignores the warning Python gives
when it forgets that running child: mark it with ``DETACHED``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from infra.stack import kafka
from infra.stack.processes import running_pid, terminate
from schemas.settings import Settings
from tests.flow_processes import alive, free_port, wait_until

DETACHED = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class OwnKafka:
    """One KRaft broker under ``<root>``; ``settings`` point every client at it."""

    def __init__(self, base: Settings, root: Path) -> None:
        port, controller = free_port(), free_port()
        root.mkdir(parents=True, exist_ok=True)
        cache = root / "cache"
        if not cache.exists():
            cache.symlink_to((base.runtime_dir / "cache").resolve())
        self.settings = base.model_copy(
            update={
                "runtime_dir": root,
                "kafka_port": port,
                "kafka_controller_port": controller,
                "kafka_bootstrap": f"127.0.0.1:{port}",
                "kafka_heap": "256m",
            }
        )

    def start(self) -> None:
        kafka.start(self.settings)
        kafka.wait_ready(self.settings, timeout_s=180)

    def kill(self) -> None:
        """SIGKILL the broker and wait until it is gone."""
        pid = running_pid(kafka.files(self.settings))
        assert pid is not None, "the test broker is not running"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), "the test broker to die")

    def stop(self) -> None:
        terminate(kafka.files(self.settings))


@contextmanager
def own_kafka(base: Settings, root: Path) -> Iterator[OwnKafka]:
    broker = OwnKafka(base, root)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
