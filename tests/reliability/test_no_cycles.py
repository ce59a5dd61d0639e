"""A finished call leaves no reference cycles: it is freed at once, not by the cyclic collector.

Cycles would keep every stream's state (scanner, observer, held chunks) alive until a GC
run, and make the collector run more often under load. Measured the way the benchmarks
do: the real openai SDK over an in-process Azure transport, garbage counted with the
collector off; only meter's own objects count (another test's leftovers may be collected meanwhile).
"""

from __future__ import annotations

import asyncio
import collections
import gc

import pytest

from benchmarks import overhead
from benchmarks.azure import Answers


def _meters(garbage: list[object]) -> collections.Counter[str]:
    """meter's own objects among the garbage (a leftover of another test, a socket say, is not ours)."""
    return collections.Counter(type(x).__qualname__ for x in garbage
                               if type(x).__module__.startswith(("meter", "pricing")))


@pytest.mark.parametrize("arm", ["raw", "pricing", "prometheus", "full"])
@pytest.mark.parametrize("scenario", ["S1", "S2", "S3", "S4"])
def test_sync_calls_leave_no_cyclic_garbage(arm: str, scenario: str) -> None:
    client = overhead.sync_client(arm, Answers(40))
    call = overhead.sync_call(scenario)
    for _ in range(3):
        call(client)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            call(client)
        gc.collect()
        found = _meters(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not found


@pytest.mark.parametrize("scenario", ["S1", "S2", "S3", "S4"])
def test_async_calls_leave_no_cyclic_garbage(scenario: str) -> None:
    async def run() -> collections.Counter[str]:
        client = overhead.async_client("full", Answers(40))
        call = overhead.async_call(scenario)
        for _ in range(3):
            await call(client)
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(20):
                await call(client)
            gc.collect()
            return _meters(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()

    assert not asyncio.run(run())
