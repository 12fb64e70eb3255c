"""OpenLineage run events for the batch jobs: START, then COMPLETE or FAIL with the datasets
(ABORT when a job waits for data).

Events go to ``TILLFLOW_LINEAGE_URL`` (an OpenLineage HTTP endpoint such as Marquez) when it is
set, else one JSON per line to ``TILLFLOW_LINEAGE_FILE``. Datasets are named by their path in
the lake (``silver/order_lines``) under the namespace ``file://<lake dir>``; models
(``models/demand/3``) under ``file://<registry dir>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.transport import Transport

from schemas.settings import Settings

log = structlog.get_logger(__name__)

NAMESPACE = "tillflow"
PRODUCER = "https://github.com/tillflow/tillflow/tree/main/batch"


def transport(settings: Settings) -> Transport:
    if settings.lineage_url:
        return HttpTransport(HttpConfig.from_dict({"url": settings.lineage_url, "timeout": 5}))
    settings.lineage_file.parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(settings.lineage_file), append=True))


class Lineage:
    """Emits the run events of one job run."""

    def __init__(self, settings: Settings, job: str) -> None:
        self.client = OpenLineageClient(transport=transport(settings))
        self.namespace = f"file://{settings.lake_dir.resolve()}"
        self.models = f"file://{settings.registry_dir.resolve()}"
        self.job = Job(namespace=NAMESPACE, name=f"batch.{job}")
        self.run = Run(runId=str(uuid.uuid4()))

    def _emit(
        self, state: RunState, inputs: Sequence[str] = (), outputs: Sequence[str] = ()
    ) -> None:
        event = RunEvent(
            eventType=state,
            eventTime=datetime.now(UTC).isoformat(),
            run=self.run,
            job=self.job,
            producer=PRODUCER,
            inputs=[InputDataset(namespace=self._namespace(n), name=n) for n in inputs],
            outputs=[OutputDataset(namespace=self._namespace(n), name=n) for n in outputs],
        )
        try:
            self.client.emit(event)
        except Exception as exc:  # noqa: BLE001  (lineage must never fail the job itself)
            log.warning("lineage.emit_failed", job=self.job.name, error=str(exc))

    def _namespace(self, name: str) -> str:
        """Lake tables live under the lake, ``models/<name>/<version>`` under the registry."""
        return self.models if name.startswith("models/") else self.namespace

    def start(self) -> None:
        self._emit(RunState.START)

    def complete(self, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        self._emit(RunState.COMPLETE, inputs, outputs)

    def fail(self) -> None:
        self._emit(RunState.FAIL)

    def abort(self) -> None:
        """The run stopped without failing (its input is not there yet)."""
        self._emit(RunState.ABORT)
