"""Websocket clients for the fan-out benchmark (run as a separate process).

Opens N connections to ``/ws/prices``, says ``ready`` on stdout, then records for every
message (a ``PriceView``) the delay between the change (``updated_at``) and its arrival;
prints the delays (ms) as JSON when each client has received ``--expect`` messages.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime

import orjson
from websockets.asyncio.client import connect


async def client(
    url: str,
    expect: int,
    delays: list[float],
    opened: asyncio.Event,
    counter: list[int],
    total: int,
) -> None:
    async with connect(url, max_queue=None, open_timeout=60) as ws:
        counter[0] += 1
        if counter[0] == total:
            opened.set()
        for _ in range(expect):
            text = await ws.recv()
            now = time.time()
            sent = datetime.fromisoformat(orjson.loads(text)["updated_at"]).timestamp()
            delays.append((now - sent) * 1000)


async def main(url: str, clients: int, expect: int) -> None:
    delays: list[float] = []
    opened = asyncio.Event()
    counter = [0]
    tasks = [
        asyncio.create_task(client(url, expect, delays, opened, counter, clients))
        for _ in range(clients)
    ]
    await asyncio.wait_for(opened.wait(), timeout=120)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
    sys.stdout.write(orjson.dumps(delays).decode() + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--expect", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.clients, args.expect))
