"""Keep detached services running: restart one that died, with backoff, and count it.

``tillflow demo`` starts the flows, the API and the scheduler as detached processes (pid
files under the runtime folder) and watches them with a :class:`Watchdog` while it runs;
when the demo stops, it stops them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from infra.errors import StackError
from infra.stack.processes import ServiceFiles, running_pid, terminate

log = structlog.get_logger(__name__)
CHECK_S = 1.0
HEALTHY_S = 60.0  # running this long resets a service's backoff


@dataclass
class Watched:
    """One service: where its pid file is, and how to start it (idempotent)."""

    name: str
    files: ServiceFiles
    start: Callable[[], object]
    restarts: int = 0
    failures_in_a_row: int = 0
    next_try: float = 0.0
    up_since: float | None = None


def restart_delay(failures_in_a_row: int, base_s: float = 1.0, cap_s: float = 30.0) -> float:
    """Backoff between restarts of one service.

    >>> [restart_delay(n) for n in (1, 2, 3, 6, 9)]
    [1.0, 2.0, 4.0, 30.0, 30.0]
    """
    return float(min(cap_s, base_s * 2 ** min(failures_in_a_row - 1, 16)))


@dataclass
class Watchdog:
    """Checks every ``CHECK_S`` that each service runs; restarts the dead ones."""

    services: list[Watched]
    clock: Callable[[], float] = time.monotonic
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def check(self) -> None:
        """One pass: restart every service that is down and due for a try."""
        now = self.clock()
        for s in self.services:
            if running_pid(s.files) is not None:
                s.up_since = now if s.up_since is None else s.up_since
                if now - s.up_since >= HEALTHY_S:
                    s.failures_in_a_row = 0
                continue
            s.up_since = None
            if now < s.next_try:
                continue
            s.failures_in_a_row += 1
            s.restarts += 1
            s.next_try = now + restart_delay(s.failures_in_a_row)
            log.error("service died; restarting it", service=s.name, restarts=s.restarts)
            try:
                s.start()
            except StackError as exc:
                log.error("restart failed", service=s.name, error=str(exc))

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(CHECK_S):
                self.check()

        self._thread = threading.Thread(target=loop, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self, terminate_services: bool = True) -> None:
        """Stop watching and (by default) stop the services, last started first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if terminate_services:
            for s in reversed(self.services):
                terminate(s.files)
