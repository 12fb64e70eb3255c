"""The demo's watchdog restarts a detached service that died (with backoff, counted) and
stops the services when it stops. Real processes; the clock is injected."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from infra.stack.processes import ServiceFiles, running_pid, spawn
from infra.stack.watchdog import Watchdog, Watched
from tests.flow_processes import wait_until

# The watchdog detaches its services on purpose (they outlive the command that starts them).
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_a_dead_service_is_restarted_with_backoff_and_stopped_with_the_watchdog(
    tmp_path: Path,
) -> None:
    files = ServiceFiles(tmp_path, "sleeper")
    argv = [sys.executable, "-c", "import time; time.sleep(600)"]
    now = [0.0]
    service = Watched("sleeper", files, lambda: spawn(files, argv))
    watchdog = Watchdog([service], clock=lambda: now[0])
    first = spawn(files, argv)
    watchdog.check()
    assert service.restarts == 0  # running: nothing to do

    os.kill(first, signal.SIGKILL)
    wait_until(lambda: running_pid(files) is None, "the service to die")
    watchdog.check()
    second = running_pid(files)
    assert second is not None
    assert second != first
    assert service.restarts == 1

    now[0] += 1.0
    watchdog.check()  # up for a second only: not yet healthy, the backoff is kept
    os.kill(second, signal.SIGKILL)
    wait_until(lambda: running_pid(files) is None, "the service to die again")
    watchdog.check()  # the second failure in a row is restarted now, the third waits 2 s
    third = running_pid(files)
    assert third is not None
    assert service.restarts == 2
    os.kill(third, signal.SIGKILL)
    wait_until(lambda: running_pid(files) is None, "the service to die a third time")
    watchdog.check()
    assert running_pid(files) is None
    now[0] += 2.0
    watchdog.check()
    assert running_pid(files) is not None
    assert service.restarts == 3

    watchdog.stop()
    assert running_pid(files) is None
