"""A response head is kept as the wire's bytes (``RawHeaders``): the caller's thread reads only the two
fields that decide how the body is read, and the whole head, decoded as httpx decodes it, is read when
the end is built (on the metering worker). Real SDK calls through httpx2 to the emulator on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest
from prometheus_client import CollectorRegistry

import meter
import meter.core.headers as headers_mod
from meter.apps.emulator import Emulator
from meter.core.headers import RawHeaders
from tests.support.emulator_fixtures import API_KEY, API_VERSION, emu, fresh_emulator_log

__all__ = ["emu", "fresh_emulator_log"]

HEADS: list[list[tuple[bytes, bytes]]] = [
    [(b"Content-Type", b"application/json"), (b"x-ms-region", b"East US"), (b"APIM-Request-Id", b"a-1")],
    [(b"content-type", b"text/plain"), (b"Content-Type", b"text/event-stream"), (b"x-a", b"1"), (b"X-A", b"2")],
    [(b"x-ms-region", "Zürich".encode()), (b"content-encoding", b"gzip")],  # UTF-8: the whole head as UTF-8
    [(b"x-ms-region", b"Z\xfcrich"), (b"x-request-id", b"r\xe9")],  # not UTF-8: ISO-8859-1
    [(b"X-\xc3\xa9", b"v"), (b"content-type", b"application/json; charset=utf-8")],
    [],
]


@pytest.mark.parametrize("pairs", HEADS)
@pytest.mark.parametrize("stack", [httpx, httpx2])
def test_every_field_reads_as_httpx_decodes_it(pairs: list[tuple[bytes, bytes]], stack: Any) -> None:
    head = stack.Headers(pairs)
    expected = dict(head.multi_items())  # what the adapters built on the caller's thread before
    raw = RawHeaders(head.raw)
    for name, value in expected.items():
        assert raw.get(name) == value
    assert raw.get("absent") is None
    assert raw.reading_fields() == (expected.get("content-type"), expected.get("content-encoding"))


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    yield CollectorRegistry()


def test_the_head_is_decoded_on_the_worker_and_its_azure_fields_reach_the_record(
        emu: Emulator, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded_on: list[str] = []
    decode = headers_mod._decoded

    def spying(raw: Any) -> dict[str, str]:
        decoded_on.append(threading.current_thread().name)
        return decode(raw)

    monkeypatch.setattr(headers_mod, "_decoded", spying)
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, registry=registry, otel=False)
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=API_VERSION,
                                           max_retries=0), meter=m)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                            messages=[{"role": "user", "content": "hi"}])
    assert m.flush(5.0)
    assert decoded_on == ["meter-metering"]
    (record,) = records
    assert record.azure.request_id == raw.headers.get("x-request-id") is not None
    assert record.azure.apim_request_id == raw.headers.get("apim-request-id")
