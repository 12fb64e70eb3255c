"""``tillflow flows run`` supervises its Bytewax process: a killed process is restarted from
its recovery state (counted, and shown by ``tillflow status``), a second flow on the same
recovery folder is refused, and SIGTERM stops the supervisor and its process together (no
orphan left consuming)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from infra.stack.local import flow_restarts, status
from infra.stack.topics import delete_topics, ensure_topics
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from tests.flow_processes import (
    alive,
    bronze_offsets,
    flow_children,
    flow_env,
    flow_settings,
    topic_offsets,
    wait_until,
)

pytestmark = pytest.mark.integration

CONFIG = ShopConfig(seed=21, products=20, shoppers=200, sessions_per_day=4_000, competitors=1)


def _flows_run(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "flows", "run"],
            env=flow_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_a_killed_flow_is_restarted_a_second_is_refused_and_sigterm_leaves_no_orphan(
    stack: Settings, tmp_path: Path
) -> None:
    settings = flow_settings(stack, "sup", tmp_path)
    ensure_topics(settings)
    log = tmp_path / "flows.log"
    supervisor = _flows_run(settings, log)
    try:
        asyncio.run(run_shop(settings, CONFIG, RunOptions(days=0.2)))
        first = wait_until(lambda: flow_children(supervisor.pid), "the flow process")[0]
        wait_until(lambda: bronze_offsets(settings), "the first bronze rows")

        second = _flows_run(settings, tmp_path / "second.log")
        assert second.wait(timeout=120) != 0
        refused = (tmp_path / "second.log").read_text()
        assert "runs on the recovery folder" in refused, refused[-2000:]

        os.kill(first, signal.SIGKILL)
        restarted = wait_until(
            lambda: [c for c in flow_children(supervisor.pid) if c != first], "a restarted process"
        )[0]
        asyncio.run(run_shop(settings, CONFIG, RunOptions(days=0.1)))
        expected = topic_offsets(settings)
        wait_until(lambda: len(bronze_offsets(settings)) >= len(expected), "every offset in bronze")
        assert bronze_offsets(settings) == expected  # each offset once, across the restart
        assert "restarting the flow from its recovery state" in log.read_text()
        wait_until(lambda: flow_restarts(settings) == 1, "the restart counted in the metrics")
        [flows] = [s for s in status(settings) if s.name == "flows"]
        assert flows.address == "1 process(es), 1 restart(s)"

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
        wait_until(lambda: not alive(restarted), "the flow process to end with its supervisor")
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
