"""Neo4j 5.26 LTS Community, embedded in a one-file Java launcher, Bolt on 127.0.0.1.

The jars come from Maven Central (``infra/neo4j/pom.xml``); ``infra/neo4j/Launcher.java`` starts
the database with ``DatabaseManagementServiceBuilder`` and the Bolt connector, and shuts it down
cleanly on SIGTERM. Data lives in ``<runtime_dir>/data/neo4j``.
"""

from __future__ import annotations

from pathlib import Path

from infra.readiness import neo4j_answers
from infra.stack import jvm
from infra.stack.processes import ServiceFiles, spawn, wait_until_ready
from schemas.settings import Settings

MAX_JAVA = 21  # Neo4j 5.26 runs on Java 17 or 21
NEO4J = jvm.JavaService("neo4j", "Neo4j", "neo4j-kernel-*.jar", MAX_JAVA)


def files(settings: Settings) -> ServiceFiles:
    return NEO4J.files(settings)


def command(settings: Settings, run: jvm.JavaRun, home: Path) -> list[str]:
    """The launcher's command line: heap, class path, home, Bolt address and page cache."""
    return [
        *run.command(settings.neo4j_heap, "-Dfile.encoding=UTF-8"),
        str(NEO4J.infra_file("Launcher.java")),
        str(home.resolve()),
        "127.0.0.1",
        str(settings.neo4j_port),
        settings.neo4j_pagecache,
    ]


def start(settings: Settings) -> int:
    """Start Neo4j unless it already runs; return its pid."""
    password = settings.neo4j_password.get_secret_value()
    return NEO4J.start(
        settings,
        lambda svc, run: spawn(
            svc, command(settings, run, svc.data_dir), env={"NEO4J_PASSWORD": password}
        ),
    )


def wait_ready(settings: Settings, timeout_s: float = 180.0) -> None:
    """Block until Neo4j answers on Bolt; raise with its log tail if it does not."""
    wait_until_ready(
        files(settings),
        "Neo4j",
        settings.neo4j_uri,
        lambda: neo4j_answers(settings, 2.0),
        timeout_s,
        poll_s=1.0,
    )
