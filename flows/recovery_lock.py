"""One writer per recovery folder: an exclusive ``flock`` on a file inside it.

Two flows snapshotting into the same folder would each resume from the other's state and
publish everything twice. ``tillflow flows run`` holds ``supervisor.lock`` for its whole life,
and each Bytewax process ``process-<i>.lock`` (so a process left running by a killed
supervisor still keeps a second one out). The kernel releases a lock when its holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from infra.errors import StackError


class RecoveryLocked(StackError):
    """Another process already runs a flow on this recovery folder."""


def lock_recovery(directory: Path, name: str) -> int:
    """Take ``<directory>/<name>.lock``; return its file descriptor (held until closed or exit).

    Raises :class:`RecoveryLocked` naming the holder's pid when it is taken.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RecoveryLocked(
            f"another flow (pid {holder}) runs on the recovery folder {directory} ({path} is "
            "locked); stop it first, or give this one its own TILLFLOW_RECOVERY_DIR"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def recovery_lineage(directory: Path) -> str:
    """The id of the state in ``directory`` (``lineage``, created with the state): it changes
    only when the state starts afresh, so output written under it may be replayed."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "lineage"
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, uuid.uuid4().hex.encode())
        os.close(fd)
    return path.read_text().strip()


def recovery_dir_of(argv: Sequence[str]) -> Path | None:
    """The recovery folder given to ``bytewax.run`` (``-r``/``--recovery-directory``).

    >>> recovery_dir_of(["bytewax.run", "f:flow", "-r", "/tmp/rec", "-s", "5"])
    PosixPath('/tmp/rec')
    >>> recovery_dir_of(["bytewax.run", "f:flow"]) is None
    True
    """
    for i, arg in enumerate(argv):
        if arg in ("-r", "--recovery-directory") and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--recovery-directory="):
            return Path(arg.split("=", 1)[1])
    return None
