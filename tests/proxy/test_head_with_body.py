"""A response head leaves with its first body bytes (one write, one segment), and is never held past a loop turn."""

from __future__ import annotations

import asyncio
from typing import Any

from meter.apps.proxy.protocol import _HeadWithBody

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class _Recorder:
    """The few transport methods a response cycle calls, recording every write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _run(steps: Any) -> list[bytes]:
    async def main() -> list[bytes]:
        recorder = _Recorder()
        await steps(_HeadWithBody(recorder, asyncio.get_running_loop()), recorder)  # type: ignore[arg-type]
        return recorder.writes

    return asyncio.run(main())


def test_a_head_and_its_body_written_in_one_turn_leave_in_one_write() -> None:
    async def steps(transport: _HeadWithBody, recorder: _Recorder) -> None:
        transport.write(HEAD)
        transport.write(b"ok")
        await asyncio.sleep(0)

    assert _run(steps) == [HEAD + b"ok"]


def test_a_head_whose_body_is_not_there_yet_leaves_at_the_end_of_the_turn() -> None:
    async def steps(transport: _HeadWithBody, recorder: _Recorder) -> None:
        transport.write(HEAD)
        assert recorder.writes == []
        await asyncio.sleep(0)
        assert recorder.writes == [HEAD]
        await asyncio.sleep(0.01)
        transport.write(b"ok")

    assert _run(steps) == [HEAD, b"ok"]


def test_100_continue_is_not_held_and_close_sends_a_held_head_first() -> None:
    async def steps(transport: _HeadWithBody, recorder: _Recorder) -> None:
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert recorder.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        transport.write(HEAD)
        transport.close()
        assert recorder.closed and transport.is_closing()

    assert _run(steps) == [b"HTTP/1.1 100 Continue\r\n\r\n", HEAD]
