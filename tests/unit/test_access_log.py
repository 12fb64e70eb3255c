"""The API's access log line: written per request only when ``api_access_log`` is on; the
request id and the request metrics are there either way."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive, Scope, Send
from structlog.testing import capture_logs

from api.metrics import ApiMetrics, ObservabilityMiddleware


async def _teapot(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 418, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _get(middleware: ObservabilityMiddleware) -> list[Message]:
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/tea",
        "headers": [(b"x-request-id", b"req-1")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent


@pytest.mark.parametrize("access_log", [True, False])
def test_access_line_only_when_asked(access_log: bool) -> None:
    metrics = ApiMetrics()
    with capture_logs() as lines:
        sent = _get(ObservabilityMiddleware(_teapot, metrics, access_log=access_log))
    requests = [line for line in lines if line["event"] == "request"]
    if access_log:
        assert requests == [
            {
                "event": "request",
                "log_level": "info",
                "method": "GET",
                "route": "unmatched",
                "path": "/tea",
                "status": 418,
                "ms": requests[0]["ms"],
            }
        ]
    else:
        assert requests == []
    assert (b"x-request-id", b"req-1") in sent[0]["headers"]
    counted = metrics.registry.get_sample_value(
        "tillflow_http_requests_total", {"route": "unmatched", "method": "GET", "status": "418"}
    )
    assert counted == 1.0
