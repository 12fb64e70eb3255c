"""The API's Redis gate bounds each call as a whole (``api/redis_gate.py``): its clients set
no per-command socket timeout, so a Redis that accepts connections and never answers must
still cost one ``TILLFLOW_API_REDIS_TIMEOUT_S``, then a 503-able ServiceUnavailable."""

from __future__ import annotations

import asyncio
import socket

import pytest

from api.redis_gate import RedisGate
from infra.clients import AsyncRedis
from infra.errors import ServiceUnavailable
from schemas.settings import Settings


async def _silent_server() -> tuple[asyncio.Server, int]:
    """A listener that accepts connections and never replies (a hung Redis)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(-1)  # read and ignore until the client goes away
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0, family=socket.AF_INET)
    return server, server.sockets[0].getsockname()[1]


async def _pipelined(client: AsyncRedis) -> list[object]:
    pipe = client.pipeline(transaction=False)
    pipe.get("a")
    pipe.hmget("b", ["x", "y"])
    result: list[object] = await pipe.execute()
    return result


@pytest.mark.parametrize("raw", [False, True])
def test_a_redis_that_never_answers_costs_one_timeout_then_pauses_the_gate(raw: bool) -> None:
    async def scenario() -> None:
        server, port = await _silent_server()
        settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0", api_redis_timeout_s=0.2)
        gate = RedisGate(settings)
        try:
            # Bounded from outside too, so a gate that waits forever fails the test
            # instead of hanging it.
            with pytest.raises(ServiceUnavailable, match="Timeout"):
                await asyncio.wait_for(gate.run(_pipelined, raw=raw), timeout=10)
            assert gate.down
            with pytest.raises(ServiceUnavailable, match="less than a second ago"):
                await gate.run(_pipelined, raw=raw)
        finally:
            await gate.close()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
