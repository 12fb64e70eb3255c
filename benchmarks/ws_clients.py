"""Websocket clients for the fan-out benchmark (run as a separate process).

Opens N connections to ``/ws/prices``, says ``ready`` on stdout, then records for every
message (a ``PriceView``) the delay between the change (``updated_at``) and its arrival;
prints the delays (ms) as JSON when each client has received ``--expect`` messages.

The N clients share one process, so a message's arrival is read only after the process has
handled the messages that came before it: what it spends per message lands in the delays of
the clients served after it, and the figure would be this process's as much as the API's.
So it does as little as possible per message, as a browser tab does for its one connection:
the connections offer compression as a browser does (the server decides), the loop is
uvloop's, each arrival is stored with its time and parsed only after the last one,
garbage collection is off while the changes arrive (the connections, all opened by then,
are frozen out of it first), and no connection closes before every client has its last
message.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from datetime import datetime

import orjson
import uvloop
from websockets.asyncio.client import connect


class Turnout:
    """How many clients have reached a point, and an event set when all of them have."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.everyone = asyncio.Event()

    def arrive(self) -> None:
        self.count += 1
        if self.count == self.total:
            self.everyone.set()


async def client(
    url: str,
    expect: int,
    arrivals: list[tuple[float, bytes]],
    opened: Turnout,
    received: Turnout,
) -> None:
    async with connect(url, max_queue=None, open_timeout=60) as ws:
        opened.arrive()
        for _ in range(expect):
            message = await ws.recv(decode=False)
            arrivals.append((time.time(), message))
        # Closing is work for this process and the API: none until the last change is in.
        received.arrive()
        await received.everyone.wait()


def delay_ms(arrived: float, message: bytes) -> float:
    sent = datetime.fromisoformat(orjson.loads(message)["updated_at"]).timestamp()
    return (arrived - sent) * 1000


async def main(url: str, clients: int, expect: int) -> None:
    arrivals: list[tuple[float, bytes]] = []
    opened, received = Turnout(clients), Turnout(clients)
    tasks = [
        asyncio.create_task(client(url, expect, arrivals, opened, received)) for _ in range(clients)
    ]
    await asyncio.wait_for(opened.everyone.wait(), timeout=120)
    gc.freeze()
    gc.disable()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
    gc.enable()
    delays = [delay_ms(arrived, message) for arrived, message in arrivals]
    sys.stdout.write(orjson.dumps(delays).decode() + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--expect", type=int, default=20)
    args = parser.parse_args()
    uvloop.run(main(args.url, args.clients, args.expect))
