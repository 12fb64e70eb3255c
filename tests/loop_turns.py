"""Counting the event loop's turns that other tasks get while a block runs: for the tests
of code that must not hold the loop (the served-list log, the producer)."""

from __future__ import annotations

import asyncio


class LoopTurns:
    """Counts the turns of the event loop that another task (a request's, say) gets while
    the block it enters runs."""

    def __init__(self) -> None:
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopTurns:
        self._task = asyncio.create_task(self._turns())
        await asyncio.sleep(0)  # its first turn
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()

    async def _turns(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)
