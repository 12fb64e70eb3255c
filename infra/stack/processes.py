"""Detached service processes tracked by pid files under the runtime folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.errors import ServiceUnavailable, StackError


@dataclass(frozen=True, slots=True)
class ServiceFiles:
    """Where one service keeps its pid file, log and data."""

    runtime_dir: Path
    name: str

    @property
    def pid_file(self) -> Path:
        return self.runtime_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.runtime_dir / "logs" / f"{self.name}.log"

    @property
    def data_dir(self) -> Path:
        return self.runtime_dir / "data" / self.name

    def prepare(self) -> None:
        for d in (self.pid_file.parent, self.log_file.parent, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)


def running_pid(files: ServiceFiles) -> int | None:
    """The pid recorded for the service if that process is still alive, else None."""
    try:
        pid = int(files.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    # A zombie (exited child not yet reaped) counts as stopped.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return pid
    return None if state == "Z" else pid


def spawn(
    files: ServiceFiles,
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` detached from this process, logging to the service log; return its pid.

    It runs in ``cwd``, by default the service's data folder (servers that keep files there);
    tillflow's own processes run in the project folder, where their relative settings paths
    (lake, recovery, models) mean the same as for the command that started them.
    """
    files.prepare()
    with files.log_file.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=files.data_dir if cwd is None else cwd,
        )
    files.pid_file.write_text(f"{proc.pid}\n")
    # Detached on purpose: the pid file tracks it and nothing here waits for it, so the
    # Popen object must not warn, when collected, that its child still runs.
    proc.returncode = 0
    return proc.pid


def terminate(files: ServiceFiles, timeout_s: float = 20.0) -> bool:
    """Stop the service (SIGTERM, then SIGKILL after ``timeout_s``). True if it was running."""
    pid = running_pid(files)
    if pid is None:
        files.pid_file.unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if running_pid(files) is None:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    files.pid_file.unlink(missing_ok=True)
    return True


def log_tail(files: ServiceFiles, lines: int = 20) -> str:
    """The last ``lines`` lines of the service log, for error messages."""
    try:
        text = files.log_file.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log yet)"
    return "\n".join(text.splitlines()[-lines:])


def wait_until_ready(
    files: ServiceFiles,
    service: str,
    address: str,
    answers: Callable[[], bool],
    timeout_s: float,
    poll_s: float = 0.2,
) -> None:
    """Poll ``answers`` until it says yes; fail with the log tail if the process dies first
    or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if answers():  # first: a service that answers but was not started by us is fine
            return
        if running_pid(files) is None:
            raise StackError(
                f"{service} exited during start-up. Last log lines:\n{log_tail(files)}"
            )
        time.sleep(poll_s)
    raise ServiceUnavailable(
        service, address, f"not ready after {timeout_s:.0f}s. Last log lines:\n{log_tail(files)}"
    )


def debian_binary(name: str, package: str) -> str:
    """The path of ``name`` on PATH, or a StackError saying which Debian package provides it."""
    binary = shutil.which(name)
    if binary is None:
        raise StackError(
            f"{name} is missing (Debian: apt-get install {package}; `make setup` does it)."
        )
    return binary
