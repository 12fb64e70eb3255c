"""Supervision of the flow processes: restart from the recovery state, stop them with us.

:class:`Supervisor` starts one ``bytewax.run`` process per command and waits. When one dies
(a Bytewax cluster cannot continue without a member) it stops the others and starts them all
again after a capped exponential backoff; they resume from their recovery snapshots. The
restart count reaches each process as ``TILLFLOW_FLOW_RESTARTS`` (the metric
``tillflow_flow_restarts``) and is logged. :meth:`Supervisor.stop` (SIGTERM, SIGINT) ends the
children first: SIGINT, then SIGKILL after a grace period; each child also gets SIGTERM from
the kernel if the supervisor itself is killed, so no flow process is ever left orphaned.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

RESTARTS_ENV = "TILLFLOW_FLOW_RESTARTS"
POLL_S = 0.2
PR_SET_PDEATHSIG = 1
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff between restarts; a run that lasted ``healthy_after_s`` resets it.

    >>> policy = RestartPolicy(base_s=1.0, cap_s=30.0)
    >>> [policy.delay(n) for n in range(1, 8)]
    [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    """

    base_s: float = 1.0
    cap_s: float = 30.0
    healthy_after_s: float = 60.0
    grace_s: float = 10.0

    def delay(self, failures_in_a_row: int) -> float:
        return float(min(self.cap_s, self.base_s * 2 ** min(failures_in_a_row - 1, 32)))


DEFAULT_POLICY = RestartPolicy()


def die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGTERM when its parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Runs ``commands`` as one group of processes, restarting the group when one dies."""

    def __init__(
        self,
        commands: Sequence[list[str]],
        env: Mapping[str, str],
        policy: RestartPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.commands = commands
        self.env = dict(env)
        self.policy = policy
        self.clock = clock
        self.restarts = 0
        self._stop = threading.Event()

    def stop(self, *_signal: object) -> None:
        """Ask :meth:`run` to stop the processes and return (a signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Supervise until stopped (0) or until every process ends by itself (their worst code)."""
        failures = 0
        while True:
            started = self.clock()
            procs = self._start()
            codes = self._wait(procs)
            if self._stop.is_set():
                return 0
            if all(code == 0 for code in codes):
                return 0
            failures = 1 if self.clock() - started >= self.policy.healthy_after_s else failures + 1
            self.restarts += 1
            delay = self.policy.delay(failures)
            log.error(
                "flow process died; restarting the flow from its recovery state",
                exit_codes=codes,
                restarts=self.restarts,
                in_s=delay,
            )
            if self._stop.wait(delay):
                return 0

    def _start(self) -> list[subprocess.Popen[bytes]]:
        env = {**self.env, RESTARTS_ENV: str(self.restarts)}
        return [subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent) for cmd in self.commands]

    def _wait(self, procs: list[subprocess.Popen[bytes]]) -> list[int]:
        """Wait until one process ends (or a stop); end the others; return every exit code."""
        while not self._stop.wait(POLL_S):
            codes = [p.poll() for p in procs]
            if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
                break
        return self._end(procs)

    def _end(self, procs: list[subprocess.Popen[bytes]]) -> list[int]:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = self.clock() + self.policy.grace_s
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                log.warning("flow process ignored SIGINT; killing it", pid=p.pid)
                p.kill()
                p.wait()
        return [p.returncode for p in procs]


def install_stop_signals(supervisor: Supervisor) -> None:
    """SIGTERM and SIGINT stop the supervisor (and so its children) instead of orphaning them."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, supervisor.stop)


def env_restarts(env: Mapping[str, str]) -> int:
    """How many times this flow process's supervisor restarted it (0 when unsupervised)."""
    return int(env.get(RESTARTS_ENV, "0") or 0)
