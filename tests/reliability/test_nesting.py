"""Defect: nested metering counted twice; re-wrapping moved a client to another meter silently.

``MeteredTransport(MeteredTransport(inner))``, or ``wrap()`` over a transport that
hides a metered one, gave two records per HTTP attempt. Now the outermost metered
transport meters and the ones inside pass through; a request reused with
``client.send(request)`` is metered again each time (one record per attempt).
Wrapping a client metered by one Meter with another raises, and changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
import pytest

import meter
from meter.apps.emulator import Emulator
from tests.support.emulator_fixtures import API_KEY, API_VERSION

CHAT = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=" + API_VERSION
BODY = {"messages": [{"role": "user", "content": "hi"}]}
STACKS = [httpx, httpx2]


def _meter(records: list[meter.CallRecord]) -> meter.Meter:
    return meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)


class Hiding:
    """A user's wrapper (retries, logging) that hides a metered transport from ``wrap``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def handle_request(self, request: Any) -> Any:
        return self.inner.handle_request(request)

    async def handle_async_request(self, request: Any) -> Any:
        return await self.inner.handle_async_request(request)

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("stream", [False, True])
def test_nested_transports_give_one_record(stack: Any, stream: bool, emu: Emulator) -> None:
    outer_records: list[meter.CallRecord] = []
    inner_records: list[meter.CallRecord] = []
    inner_meter, outer_meter = _meter(inner_records), _meter(outer_records)
    transport = meter.MeteredTransport(meter.MeteredTransport(stack.HTTPTransport(), meter=inner_meter),
                                       meter=outer_meter)
    with stack.Client(transport=transport) as client:
        response = client.post(emu.url + CHAT, headers={"api-key": API_KEY}, json={**BODY, "stream": stream})
        assert response.status_code == 200
    assert inner_meter.flush(10) and outer_meter.flush(10)
    assert len(outer_records) == 1 and inner_records == []
    assert outer_records[0].usage is not None


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
async def test_nested_async_transports_give_one_record(stack: Any, emu: Emulator) -> None:
    records: list[meter.CallRecord] = []
    m = _meter(records)
    transport = meter.AsyncMeteredTransport(meter.AsyncMeteredTransport(stack.AsyncHTTPTransport(), meter=m),
                                            meter=m)
    async with stack.AsyncClient(transport=transport) as client:
        async with client.stream("POST", emu.url + CHAT, headers={"api-key": API_KEY},
                                 json={**BODY, "stream": True}) as response:
            async for _ in response.aiter_bytes():
                pass
    assert m.flush(10)
    assert len(records) == 1 and records[0].usage is not None


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
def test_wrap_over_a_hidden_metered_transport_counts_once(stack: Any, emu: Emulator) -> None:
    records: list[meter.CallRecord] = []
    m = _meter(records)
    client = stack.Client(transport=Hiding(meter.MeteredTransport(stack.HTTPTransport(), meter=m)))
    meter.wrap(client, meter=m)
    client.post(emu.url + CHAT, headers={"api-key": API_KEY}, json=BODY)
    assert m.flush(10)
    assert len(records) == 1
    client.close()


def test_a_reused_request_is_metered_on_every_send(emu: Emulator) -> None:
    records: list[meter.CallRecord] = []
    m = _meter(records)
    transport = meter.MeteredTransport(meter.MeteredTransport(httpx2.HTTPTransport(), meter=m), meter=m)
    with httpx2.Client(transport=transport) as client:
        request = client.build_request("POST", emu.url + CHAT, headers={"api-key": API_KEY}, json=BODY)
        for _ in range(3):
            client.send(request)
    assert m.flush(10)
    assert len(records) == 3


def test_the_inner_meter_meters_what_the_outer_one_does_not_recognise(emu: Emulator) -> None:
    """Pass-through applies only while an outer transport is metering: foreign to it is not foreign inside."""
    outer: list[meter.CallRecord] = []
    inner: list[meter.CallRecord] = []
    host = "127.0.0.1"
    inner_meter = meter.Meter(on_record=inner.append, otel=False, prometheus=False, price_book=False, hosts=[host])
    outer_meter = _meter(outer)
    transport = meter.MeteredTransport(meter.MeteredTransport(httpx2.HTTPTransport(), meter=inner_meter),
                                       meter=outer_meter)
    with httpx2.Client(transport=transport) as client:
        client.post(emu.url + "/openai/v1/chat/completions".replace("/openai", ""), headers={"api-key": API_KEY},
                    json={**BODY, "model": "gpt-4o-mini"})
    assert inner_meter.flush(10) and outer_meter.flush(10)
    assert outer == [] and len(inner) == 1


def test_wrapping_with_another_meter_is_refused_and_changes_nothing() -> None:
    a, b = _meter([]), _meter([])
    client = meter.wrap(httpx2.Client(proxy="http://127.0.0.1:3128"), meter=a)
    before = (client._transport, dict(client._mounts))
    with pytest.raises(ValueError, match="already metered by another Meter"):
        meter.wrap(client, meter=b)
    assert (client._transport, dict(client._mounts)) == before
    assert client._transport.meter is a
    meter.wrap(client, meter=a)  # the same meter again: fine, nothing changes
    meter.wrap(client)  # no meter: fine, keeps its meter
    assert client._transport.meter is a


def test_wrapping_a_default_metered_client_with_the_default_meter_is_fine() -> None:
    client = meter.wrap(httpx2.Client())
    meter.wrap(client, meter=meter.default_meter())
    with pytest.raises(ValueError):
        meter.wrap(client, meter=_meter([]))
