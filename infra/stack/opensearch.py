"""OpenSearch 2.19 (Apache-2.0), embedded in a one-file Java launcher, HTTP on 127.0.0.1.

The jars come from Maven Central (``infra/opensearch/pom.xml``); ``infra/opensearch/Launcher.java``
builds a single node with the Netty transport, common analysis and Painless plugins and closes
it cleanly on SIGTERM. The node's home (config, data, logs) is ``<runtime_dir>/data/opensearch``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.readiness import opensearch_answers
from infra.stack import jvm
from infra.stack.processes import ServiceFiles, spawn, wait_until_ready
from schemas.settings import Settings

MAX_JAVA = 21  # OpenSearch 2.19 supports Java 11 to 23; tillflow's floor is 17
OPENSEARCH = jvm.JavaService("opensearch", "OpenSearch", "opensearch-2.*.jar", MAX_JAVA)


def files(settings: Settings) -> ServiceFiles:
    return OPENSEARCH.files(settings)


def command(settings: Settings, run: jvm.JavaRun, home: Path) -> list[str]:
    """The launcher's command line: heap, class path, home, HTTP and transport ports."""
    return [
        *run.command(
            settings.opensearch_heap, "-Dfile.encoding=UTF-8", "-Dlog4j2.formatMsgNoLookups=true"
        ),
        str(OPENSEARCH.infra_file("Launcher.java")),
        str(home.resolve()),
        "127.0.0.1",
        str(settings.opensearch_port),
        str(settings.opensearch_transport_port),
    ]


def start(settings: Settings) -> int:
    """Start the node unless it already runs; return its pid."""

    def launch(svc: ServiceFiles, run: jvm.JavaRun) -> int:
        config = svc.data_dir / "config"
        config.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(OPENSEARCH.infra_file("log4j2.properties"), config / "log4j2.properties")
        return spawn(svc, command(settings, run, svc.data_dir))

    return OPENSEARCH.start(settings, launch)


def wait_ready(settings: Settings, timeout_s: float = 300.0) -> None:
    """Block until the node's cluster health answers; raise with its log tail if it does not.

    The launcher compiles itself and the node loads ~60 jars: on two busy cores that takes
    half a minute or more, hence the long timeout (a dead process still fails at once).
    """
    wait_until_ready(
        files(settings),
        "OpenSearch",
        settings.opensearch_url,
        lambda: opensearch_answers(settings, 2.0),
        timeout_s,
        poll_s=1.0,
    )
