"""Run one response through a client twice, raw and metered, and capture everything the caller saw.

The inner transport replays exactly the given chunks (``tests.transport.chunks``),
optionally raising after some of them, so a test controls every byte boundary.
What the caller sees (status, header list, every raw chunk in order, the
exception's type and text) must be the same with and without meter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import meter
from tests.support.replay import encode_body
from tests.transport.chunks import chunk_transport


@dataclass
class Seen:
    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    error: tuple[str, str] | None
    records: list[meter.CallRecord] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)

    def caller_view(self) -> tuple[Any, ...]:
        return (self.status, self.headers, self.chunks, self.error)


def quiet_meter(records: list[meter.CallRecord], **options: Any) -> meter.Meter:
    return meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False,
                       hosts=["api.example.com"], **options)


def _exc_view(exc: BaseException) -> tuple[str, str]:
    return (type(exc).__name__, str(exc))


def read_sync(stack: Any, url: str, body: bytes, status: int, headers: list[tuple[str, str]],
              chunks: list[bytes], *, metered: bool, fail_after: int | None = None,
              exc: BaseException | None = None) -> Seen:
    records: list[meter.CallRecord] = []
    m = quiet_meter(records)
    inner = chunk_transport(stack, status, headers, chunks, fail_after, exc)
    transport = meter.MeteredTransport(inner, meter=m) if metered else inner
    got: list[bytes] = []
    error = None
    seen_status, seen_headers = 0, []
    with stack.Client(transport=transport) as client:
        try:
            with client.stream("POST", url, content=body) as response:
                seen_status, seen_headers = response.status_code, list(response.headers.multi_items())
                for piece in response.iter_raw():
                    got.append(piece)
        except Exception as caught:
            error = _exc_view(caught)
    assert m.flush(10.0)  # the records and faults come on the metering worker, a moment after the call
    return Seen(seen_status, seen_headers, got, error, records, dict(m.faults))


async def read_async(stack: Any, url: str, body: bytes, status: int, headers: list[tuple[str, str]],
                     chunks: list[bytes], *, metered: bool, fail_after: int | None = None,
                     exc: BaseException | None = None) -> Seen:
    records: list[meter.CallRecord] = []
    m = quiet_meter(records)
    inner = chunk_transport(stack, status, headers, chunks, fail_after, exc)
    transport = meter.AsyncMeteredTransport(inner, meter=m) if metered else inner
    got: list[bytes] = []
    error = None
    seen_status, seen_headers = 0, []
    async with stack.AsyncClient(transport=transport) as client:
        try:
            async with client.stream("POST", url, content=body) as response:
                seen_status, seen_headers = response.status_code, list(response.headers.multi_items())
                async for piece in response.aiter_raw():
                    got.append(piece)
        except Exception as caught:
            error = _exc_view(caught)
    assert m.flush(10.0)  # the records and faults come on the metering worker, a moment after the call
    return Seen(seen_status, seen_headers, got, error, records, dict(m.faults))


def encode(body: bytes, encoding: str) -> bytes:
    """``body`` under a Content-Encoding meter can undo; other values (unknown, identity) leave it as is."""
    return encode_body(body, encoding) if encoding in ("gzip", "deflate", "br", "zstd") else body


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} - {0, len(data)}) if data else []
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)] or [b""]
