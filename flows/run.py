"""Run the dataflow: check the services, prepare recovery, start and supervise processes.

``tillflow flows run`` is the entry point; each process is ``python -m bytewax.run
"flows.run:flow_from_env()" -i <id> -a <addresses> -r <recovery> -s <snapshot>``, restarted
by flows/supervise.py when it dies. The recovery folder is locked (flows/recovery_lock.py)
by the supervisor and by each process, and refused when it holds state of another format
than this version's (flows/snapshots.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import structlog
from bytewax.dataflow import Dataflow

from flows.catalogue import load_catalogue
from flows.compaction import spawn_compactor
from flows.dataflow import build_flow
from flows.metrics import process_index, start_flow_metrics
from flows.recovery_lock import lock_recovery, recovery_dir_of
from flows.snapshots import require_format, stamp_format
from flows.supervise import DEFAULT_POLICY, RestartPolicy, Supervisor, install_stop_signals
from infra.readiness import require_kafka, require_redis, require_topics
from infra.runtime import tune_gc
from observability.logs import configure_logging
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS

TAIL_ENV = "TILLFLOW_FLOW_TAIL"
CATALOGUE_WAIT_S = 30.0
log = structlog.get_logger(__name__)


def check_services(settings: Settings) -> None:
    """Fail fast, naming the service, before Bytewax would hang on an absent broker."""
    require_kafka(settings)
    require_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
    require_redis(settings)


def flow_from_env() -> Dataflow:
    """The factory ``bytewax.run`` calls in each process."""
    settings = Settings()
    settings.require_safe_secrets()
    configure_logging(settings)
    recovery = recovery_dir_of(sys.argv)
    if recovery is not None:  # held until this process exits
        lock_recovery(recovery, f"process-{process_index(sys.argv, os.environ)}")
        require_format(recovery)
    check_services(settings)
    start_flow_metrics(settings, os.environ)
    if recovery is not None:
        spawn_compactor(recovery, settings.recovery_compact_s)
    tail = os.environ.get(TAIL_ENV, "1") != "0"
    catalogue = load_catalogue(settings)
    deadline = time.monotonic() + CATALOGUE_WAIT_S
    while not catalogue and time.monotonic() < deadline:  # e.g. compose starts us first
        time.sleep(1.0)
        catalogue = load_catalogue(settings)
    if not catalogue:
        log.warning(
            "no product catalogue in Redis: features only, no pricing", key=settings.keys.catalogue
        )
    flow = build_flow(settings, catalogue, tail=tail)
    tune_gc()
    return flow


def register_features(settings: Settings) -> None:
    """Apply the Feast repository the flows write to, so readers find their features.

    Done here, once, not in the flow processes: they write Feast's layout directly
    (featurestore/layout.py) and never import Feast.
    """
    from featurestore.repo import apply, project_name  # Feast takes seconds to import

    apply(settings)
    log.info("feast repository applied", project=project_name(settings))


def init_recovery(directory: Path, partitions: int) -> None:
    """Create the recovery partitions once (``python -m bytewax.recovery``), stamped with the
    state format; refuse existing ones of another format (:class:`StateFormatMismatch`)."""
    if directory.exists() and any(directory.glob("part-*.sqlite3")):
        require_format(directory)
        return
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "bytewax.recovery", str(directory), str(partitions)], check=True
    )
    stamp_format(directory)


def process_commands(
    settings: Settings, processes: int, workers: int, recovery: bool
) -> list[list[str]]:
    """One ``bytewax.run`` command line per process."""
    addresses = ";".join(f"127.0.0.1:{settings.flow_base_port + i}" for i in range(processes))
    base = [sys.executable, "-m", "bytewax.run", "flows.run:flow_from_env()"]
    base += ["-w", str(workers)]
    if recovery:
        base += ["-r", str(settings.recovery_dir), "-s", str(settings.snapshot_s), "-b", "0"]
    if processes == 1:
        return [base]
    return [[*base, "-i", str(i), "-a", addresses] for i in range(processes)]


def run(
    settings: Settings,
    processes: int = 1,
    workers: int = 1,
    recovery: bool = True,
    tail: bool = True,
    policy: RestartPolicy = DEFAULT_POLICY,
) -> int:
    """Start the processes and supervise them until stopped (SIGTERM, SIGINT) or finished."""
    settings.require_safe_secrets()
    if recovery:  # before anything else: a second flow on this folder fails here, clearly
        lock_recovery(settings.recovery_dir, "supervisor")
    check_services(settings)
    register_features(settings)
    if recovery:
        init_recovery(settings.recovery_dir, max(1, processes * workers))
    env = {**os.environ, TAIL_ENV: "1" if tail else "0", "PYTHONPATH": str(Path.cwd())}
    supervisor = Supervisor(process_commands(settings, processes, workers, recovery), env, policy)
    install_stop_signals(supervisor)
    return supervisor.run()
