"""Apache Kafka 4.x in KRaft mode (one combined broker+controller) from Maven Central jars."""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

from infra.errors import StackError
from infra.readiness import kafka_answers
from infra.stack import jvm
from infra.stack.processes import ServiceFiles, spawn, wait_until_ready
from schemas.settings import Settings

KAFKA = jvm.JavaService("kafka", "Kafka", "kafka_2.13-*.jar")


def files(settings: Settings) -> ServiceFiles:
    return KAFKA.files(settings)


def server_properties(settings: Settings, log_dir: Path) -> str:
    """The broker configuration: one node that is both broker and KRaft controller."""
    host = "127.0.0.1"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{settings.kafka_controller_port}",
            f"listeners=PLAINTEXT://{host}:{settings.kafka_port},"
            f"CONTROLLER://{host}:{settings.kafka_controller_port}",
            f"advertised.listeners=PLAINTEXT://{host}:{settings.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={log_dir}",
            f"num.partitions={settings.input_partitions}",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=168",
            "log.segment.bytes=268435456",
            "",
        ]
    )


def _cluster_id(draw: Callable[[], uuid.UUID] = uuid.uuid4) -> str:
    """A random KRaft cluster id: 16 bytes in URL-safe base64, as Kafka's `Uuid` writes them.

    About one id in 64 would start with `-`, which the storage tool's argument parser reads as
    an option ("--cluster-id: expected one argument"); Kafka's own `Uuid.randomUuid` draws
    again in that case, and so does this.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(draw().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start(settings: Settings) -> int:
    """Format the storage on first use and start the broker; return its pid (idempotent)."""

    def launch(svc: ServiceFiles, run: jvm.JavaRun) -> int:
        log_dir = (svc.data_dir / "logs").resolve()
        config = svc.data_dir / "server.properties"
        config.write_text(server_properties(settings, log_dir))
        logging = (
            f"-Dlog4j2.configurationFile={KAFKA.infra_file('log4j2.xml')}",
            f"-Dkafka.logs.dir={svc.log_file.parent.resolve()}",
        )
        if not (log_dir / "meta.properties").exists():
            _format_storage(run, logging, config)
        return spawn(
            svc,
            [
                *run.command(settings.kafka_heap, "-XX:MaxGCPauseMillis=20", *logging),
                "kafka.Kafka",
                str(config.resolve()),
            ],
        )

    return KAFKA.start(settings, launch)


def _format_storage(run: jvm.JavaRun, logging: tuple[str, ...], config: Path) -> None:
    """Format a new broker's storage with a fresh cluster id (KRaft needs one before start)."""
    fmt = subprocess.run(
        [
            run.java,
            *logging,
            "-cp",
            run.classpath,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(config.resolve()),
            "--ignore-formatted",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if fmt.returncode != 0:
        raise StackError(f"Kafka storage format failed:\n{fmt.stdout}{fmt.stderr}"[-2000:])


def wait_ready(settings: Settings, timeout_s: float = 90.0) -> None:
    """Block until the broker answers metadata requests; raise with its log tail if not."""
    wait_until_ready(
        files(settings),
        "Kafka",
        settings.kafka_bootstrap,
        lambda: kafka_answers(settings, 2.0),
        timeout_s,
        poll_s=0.5,
    )
