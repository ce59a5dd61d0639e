"""SSE framing: any split of the bytes gives the same events; junk never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meter.core.sse import SSEScanner
from tests.support.splits import split_at

STREAM = (
    b": keep-alive comment\n\n"
    b"event: response.created\ndata: {\"a\":1}\n\n"
    b"data: {\"b\":\n"
    b"data: 2}\n\n"
    b"id: 7\nretry: 100\ndata:{\"c\":3}\r\n\r\n"
    b"data: {\"d\":4}\r\r"
    b"data: [DONE]\n\n"
)
EVENTS = [b'{"a":1}', b'{"b":\n2}', b'{"c":3}', b'{"d":4}', b"[DONE]"]


def feed_all(parts: list[bytes]) -> list[bytes]:
    scanner = SSEScanner()
    out: list[bytes] = []
    for part in parts:
        out.extend(scanner.feed(part))
    out.extend(scanner.flush())
    return out


def test_whole() -> None:
    assert feed_all([STREAM]) == EVENTS


def test_byte_by_byte() -> None:
    assert feed_all([STREAM[i:i + 1] for i in range(len(STREAM))]) == EVENTS


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=30))
@settings(max_examples=300, deadline=None)
def test_any_split_same_events(cuts: list[int]) -> None:
    assert feed_all(split_at(STREAM, cuts)) == EVENTS


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    assert feed_all([b"data: x\r", b"\n\r", b"\ndata: y\n\n"]) == [b"x", b"y"]


def test_last_event_without_blank_line_is_flushed() -> None:
    assert feed_all([b"data: x\n\ndata: tail"]) == [b"x", b"tail"]


@given(st.lists(st.binary(max_size=200), max_size=20))
@settings(max_examples=300, deadline=None)
def test_junk_never_raises(parts: list[bytes]) -> None:
    feed_all(parts)


def test_oversized_event_is_dropped_not_kept(monkeypatch: object) -> None:
    import meter.core.sse as sse

    scanner = SSEScanner()
    old = sse.MAX_EVENT_BYTES
    sse.MAX_EVENT_BYTES = 10
    try:
        assert scanner.feed(b"data: " + b"x" * 50 + b"\n\ndata: ok\n\n") == [b"ok"]
        assert scanner.overflowed
    finally:
        sse.MAX_EVENT_BYTES = old
