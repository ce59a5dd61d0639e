"""Response-stream wrappers: pass every chunk through at once, show it to the call.

Each chunk is shown to the call (a few substring tests on the head, a reference
kept after it, no copy) and then yielded unchanged, so the caller gets exactly
the inner stream's bytes, in the same pieces, with nothing held back. Whatever
ends the stream (exhaustion, ``close``, an exception, cancellation) ends the
call, once.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

from meter.adapters import orphans
from meter.core.call import Call

RUN_CHUNKS = 256
"""Chunks a sync stream passes per run once its call only holds them (see ``SyncStreamLogic.__iter__``)."""


class _EndsCall:
    """A response dropped without ``close()`` still yields its one record (finished by ``orphans``)."""

    _call: Call

    def __del__(self) -> None:
        # Only an enqueue here: a finaliser runs on any thread, maybe one holding a lock that
        # pricing, a span or a subscriber needs (see ``orphans``).
        call: Any = self.__dict__.get("_call")
        if call is not None and not call.finished:
            orphans.adopt(call)


class SyncStreamLogic(_EndsCall):
    """The body of a metered sync response stream; bound to a stack's base class elsewhere."""

    def __init__(self, inner: Iterable[bytes], call: Call) -> None:
        self._inner = inner
        self._call = call
        orphans.track(call)

    def __iter__(self) -> Iterator[bytes]:
        # The head chunk by chunk (the call looks at each); once the call only holds chunks, runs of
        # ``RUN_CHUNKS`` pass through C code alone (``map`` over ``dict.setdefault`` under fresh keys
        # returns each chunk as it stores it): no Python code of meter's per chunk, the same bytes.
        call = self._call
        chunks = iter(self._inner)
        run: dict[int, bytes] | None = None
        try:
            for chunk in chunks:
                call.on_chunk(chunk)
                yield chunk
                if call.holding:
                    run = call.run_store()
                    break
            if run is not None:
                keep, keys = run.setdefault, itertools.count()
                while True:
                    before = len(run)
                    yield from map(keep, keys, itertools.islice(chunks, RUN_CHUNKS))
                    passed = len(run) - before
                    call.end_run()
                    if passed < RUN_CHUNKS:
                        break
        except BaseException as exc:
            if run is not None:
                call.end_run()
            call.on_error(exc)
            raise
        call.on_end()

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._call.on_close()


class AsyncStreamLogic(_EndsCall):
    """The body of a metered async response stream; bound to a stack's base class elsewhere."""

    def __init__(self, inner: AsyncIterable[bytes], call: Call) -> None:
        self._inner = inner
        self._call = call
        orphans.track(call)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        call = self._call
        try:
            async for chunk in self._inner:
                call.on_chunk(chunk)
                yield chunk
        except BaseException as exc:
            call.on_error(exc)
            raise
        call.on_end()

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._inner, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._call.on_close()
