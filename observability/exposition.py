"""Serve ``/metrics`` from a long-running process that has no web server of its own.

The flows and the batch scheduler call :func:`serve_metrics` once at start-up; the API
serves ``/metrics`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running ``/metrics`` endpoint (a daemon thread); ``close`` stops it."""

    server: WSGIServer
    url: str

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_metrics(
    host: str, port: int, registry: CollectorRegistry = REGISTRY
) -> MetricsServer | None:
    """Serve ``registry`` on ``http://host:port/metrics`` in a daemon thread.

    Returns None, with a logged warning, when the port is taken: a process keeps working
    without its metrics rather than dying for them.
    """
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.warning("metrics endpoint not started", host=host, port=port, error=str(exc))
        return None
    url = f"http://{host}:{server.server_port}/metrics"
    log.info("metrics endpoint started", url=url)
    return MetricsServer(server, url)
