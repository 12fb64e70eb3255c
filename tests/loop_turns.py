"""Counting the event loop's turns that other tasks get while a block runs: for the tests
of code that must not hold the loop (the served-list log, the producer)."""

from __future__ import annotations

import asyncio


class LoopTurns:
    """Counts the turns of the event loop that another task (a request's, say) gets while
    the block it enters runs: a callback that schedules itself again runs once a turn."""

    def __init__(self) -> None:
        self.count = 0
        self._next: asyncio.Handle | None = None

    async def __aenter__(self) -> LoopTurns:
        self._turn()  # the turn the block is entered in
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._next is not None
        self._next.cancel()

    def _turn(self) -> None:
        self.count += 1
        self._next = asyncio.get_running_loop().call_soon(self._turn)
