"""``benchmarks.stream.stop_flows`` leaves no flow process behind: one that ends on SIGTERM is
reaped, one that ignores it is SIGKILLed by its PID after the grace period, and one that has
already exited (killed under the benchmark) is only reaped. Real child processes."""

from __future__ import annotations

import signal
import subprocess
import sys

from benchmarks.stream import stop_flows
from tests.flow_processes import alive

IGNORES_SIGTERM = (
    "import signal, sys, threading\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "threading.Event().wait()\n"
)
ENDS_ON_SIGTERM = "import sys, threading\nprint('ready', flush=True)\nthreading.Event().wait()\n"


def _started(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # its SIGTERM handling is in place
    return proc


def test_every_flow_process_ends_whatever_it_does_with_sigterm() -> None:
    stubborn, polite, killed = (
        _started(IGNORES_SIGTERM),
        _started(ENDS_ON_SIGTERM),
        _started(ENDS_ON_SIGTERM),
    )
    killed.kill()
    killed.wait()
    procs = [stubborn, polite, killed]
    try:
        stop_flows(procs, grace_s=0.5)
        assert [p.returncode for p in procs] == [-signal.SIGKILL, -signal.SIGTERM, -signal.SIGKILL]
        assert not any(alive(p.pid) for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            assert p.stdout is not None
            p.stdout.close()
