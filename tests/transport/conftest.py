"""Shared fixtures for transport tests: a loopback replay server and record collection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import meter
from tests.support.replay import ReplayServer


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as srv:
        yield srv


class Records(list[meter.CallRecord]):
    """Records collected by a test's meter."""

    def one(self) -> meter.CallRecord:
        assert len(self) == 1, f"expected exactly one record, got {len(self)}: {self!r}"
        return self[0]


@pytest.fixture
def records() -> Records:
    return Records()


@pytest.fixture
def metered(records: Records) -> meter.Meter:
    return meter.Meter(on_record=records.append)
