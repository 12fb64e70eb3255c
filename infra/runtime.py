"""Process-wide tuning of the long-running Python processes (flow processes, the API)."""

from __future__ import annotations

import asyncio
import gc
import time

GC_THRESHOLDS = (50_000, 20, 100)


_DEFAULT_THRESHOLDS = gc.get_threshold()


def tune_gc() -> None:
    """Collect garbage less often, and never scan the objects that exist at start-up.

    A flow process holds hundreds of thousands of long-lived objects (per-product and
    per-shopper state). With CPython's default thresholds (700, 10, 10) the collector
    walked them all every ~70k allocations: about half of the flow's CPU in profiles, and
    the pauses showed in freshness. Reference counting still frees everything acyclic at
    once; cycles are collected, just less often (gen 0 every 50k allocations). In the API,
    full collections over the imported libraries' objects showed as tens of ms in p99.
    """
    gc.collect()
    gc.freeze()  # imports, settings, catalogue: never garbage, never scanned again
    gc.set_threshold(*GC_THRESHOLDS)


def restore_gc() -> None:
    """Undo :func:`tune_gc` (the API's shutdown: frozen objects become collectable again)."""
    gc.unfreeze()
    gc.set_threshold(*_DEFAULT_THRESHOLDS)


async def collect_on_a_clock(young_s: float, full_s: float) -> None:
    """Collect the youngest generation every ``young_s`` seconds and everything every
    ``full_s``, instead of when allocations pass a threshold (the API, while it serves).

    The API keeps each shopper's read and answers for a cache interval: ~150 objects a list,
    tracked by the collector and freed by reference counting about an interval later. The
    threshold counts allocations less deallocations, so with the caches turning over it
    fired only every ~2 s at 1,000 lists/s, and each young pass then scanned everything
    allocated since — 160–180k objects, 32–52 ms in which no request is answered: the lists'
    p99 (docs/scaling.md, *The lists' p99 stalls*). A pass every 50 ms scans what the last
    50 ms allocated (~1 ms); what survives is scanned again only by the full collection,
    which frees the cycles that span generations, so memory stays bounded. Restores the
    thresholds' collection when cancelled.
    """
    gc.disable()
    try:
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(young_s)
            if time.monotonic() - last_full >= full_s:
                gc.collect()
                last_full = time.monotonic()
            else:
                gc.collect(0)
    finally:
        gc.enable()
