"""The API's garbage collection on a clock (``infra.runtime.collect_on_a_clock``): young
passes every interval, a full one every ``full_s``, CPython's own collection off meanwhile
and back once it stops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import Any

from infra.runtime import collect_on_a_clock


def test_young_passes_on_the_clock_a_full_one_in_between_and_thresholds_back_after() -> None:
    started: list[int] = []
    enough = asyncio.Event()  # five young passes and a full one seen

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":  # in the task's own thread: the loop's
            started.append(info["generation"])
            if started.count(0) >= 5 and 2 in started:
                enough.set()

    async def scenario() -> tuple[bool, list[int]]:
        task = asyncio.create_task(collect_on_a_clock(young_s=0.005, full_s=0.1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enough.wait(), timeout=10)
        enabled_while_running = gc.isenabled()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return enabled_while_running, list(started)

    assert gc.isenabled()
    gc.callbacks.append(seen)
    try:
        enabled_while_running, passes = asyncio.run(scenario())
    finally:
        gc.callbacks.remove(seen)
    assert not enabled_while_running  # no threshold-triggered passes meanwhile
    assert passes.count(0) >= 5  # the young generation alone, on the clock
    assert 2 in passes  # and everything, every full_s
    assert set(passes) <= {0, 2}
    assert gc.isenabled()  # cancelled: CPython's thresholds collect again
