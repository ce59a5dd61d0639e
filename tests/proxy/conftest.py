"""Fixtures for the proxy tests: one emulator per module as upstream, a fresh metered proxy per test.

Every test talks to the proxy over real loopback sockets, like a non-Python
client would; each proxy has its own ``Meter`` (own Prometheus registry, no
OTel) so records and metrics belong to that test alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

import meter
from meter.apps.emulator import Emulator
from meter.apps.proxy import ProxyServer
from tests.support.emulator_fixtures import API_KEY, API_VERSION, emu, fresh_emulator_log
from tests.support.waiting import wait_until

__all__ = ["API_KEY", "API_VERSION", "emu", "fresh_emulator_log"]


class Metered:
    """A meter collecting its records, with its own registry; like the proxy's own, it injects nothing by default."""

    def __init__(self, upstream: str, **options: object) -> None:
        options.setdefault("inject_stream_usage", False)
        options.setdefault("otel", False)
        self.records: list[meter.CallRecord] = []
        self.registry = CollectorRegistry()
        host = upstream.split("//", 1)[1].split(":", 1)[0]
        self.meter = meter.Meter(on_record=self.records.append, registry=self.registry, hosts=[host],
                                 price_book=False, **options)  # type: ignore[arg-type]

    def wait_records(self, count: int, timeout: float = 5.0) -> list[meter.CallRecord]:
        """The records once there are ``count`` (a stream's record is final just after its last byte)."""
        wait_until(lambda: len(self.records) >= count, timeout)
        time.sleep(0.05)  # a late extra record would show up here
        return list(self.records)


@pytest.fixture
def metered(emu: Emulator) -> Metered:
    return Metered(emu.url)


@pytest.fixture
def proxy(emu: Emulator, metered: Metered) -> Iterator[ProxyServer]:
    with ProxyServer(emu.url, meter=metered.meter) as running:
        yield running
